"""Committees, uncertainty-aware MD, frame selection and fine-tuning (issue 15)."""

import csv
import json
import re

import numpy as np
import pytest
import torch
import yaml
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import read
from conftest import emt_frames, tiny_config
from symmetry import assert_forces_are_gradients, evaluate
from test_train import mlpot_cli

import mlpot
from mlpot import MLPotError
from mlpot.calculators import MLPotCalculator
from mlpot.data.extxyz import write_extxyz
from mlpot.models.committee import Committee

TINY = {"hidden_irreps": "4x0e+4x1o", "max_ell": 1, "correlation": 2, "radial_mlp": [8], "readout_mlp": 4, "num_bessel": 4}


def potential(seed, elements=("Cu", "Au"), r_max=4.0):
    torch.manual_seed(seed)
    return mlpot.build_model({"elements": list(elements), "r_max": r_max, **TINY})


def cuau_cell(seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    atoms = bulk("Cu", "fcc", a=3.7 * scale, cubic=True)
    atoms.symbols[[1, 2]] = "Au"
    atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
    return atoms


@pytest.fixture(scope="module")
def trained_committee(tmp_path_factory, emt_files):
    """A committee of 3 trained with bootstrap on the tiny EMT set (through mlpot train)."""
    directory = tmp_path_factory.mktemp("committee")
    config = tiny_config(*emt_files, directory / "run", max_epochs=20, committee=3, bootstrap=True)
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = mlpot_cli("train", path)
    assert result.returncode == 0, result.stderr
    return directory / "run", path, result.stdout


# ----------------------------------------------------------------------------- the committee model
def test_identical_members_have_zero_spread():
    member = potential(0)
    committee = Committee([member, potential(0)])
    out = evaluate(member, [cuau_cell()])
    atoms = cuau_cell()
    atoms.calc = MLPotCalculator(committee)
    np.testing.assert_allclose(atoms.get_potential_energy(), out["energy"][0], rtol=1e-12)
    assert atoms.calc.results["max_force_std"] == 0.0 and atoms.calc.results["energy_std"] == 0.0


def test_mean_forces_are_finite_difference_exact_and_the_file_round_trips(tmp_path):
    committee = Committee([potential(0), potential(1), potential(2)])
    assert_forces_are_gradients(committee, cuau_cell())
    mlpot.save_model(committee, tmp_path / "c.model")
    loaded = mlpot.load_model(tmp_path / "c.model")
    assert isinstance(loaded, Committee) and len(loaded.members) == 3
    first, second = cuau_cell(), cuau_cell()
    first.calc, second.calc = MLPotCalculator(committee), MLPotCalculator(loaded)
    assert first.get_potential_energy() == second.get_potential_energy()
    np.testing.assert_array_equal(first.calc.results["forces_std"], second.calc.results["forces_std"])
    for index, member in enumerate([potential(0), potential(1)]):
        mlpot.save_model(member, tmp_path / f"m{index}.model")
    from_list = mlpot.load_model([tmp_path / "m0.model", tmp_path / "m1.model"])
    assert isinstance(from_list, Committee) and len(from_list.members) == 2


def test_members_of_other_elements_or_cutoffs_are_refused(tmp_path):
    with pytest.raises(MLPotError, match="members must share elements"):
        Committee([potential(0), potential(1, elements=("Cu", "Ag"))])
    with pytest.raises(MLPotError, match="members must share the cutoff"):
        Committee([potential(0), potential(1, r_max=3.5)])
    mlpot.save_model(potential(0), tmp_path / "a.model")
    mlpot.save_model(potential(1, r_max=3.5), tmp_path / "b.model")
    write_extxyz(tmp_path / "s.xyz", [(cuau_cell(), {}, {})])
    result = mlpot_cli("md", "--model", tmp_path / "a.model", tmp_path / "b.model", "--structure", tmp_path / "s.xyz", "--steps", "1")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["mlpot: error: committee member 1 has r_max 3.5, member 0 has 4.0; members must share the cutoff"]


def test_trained_committee_is_more_unsure_far_from_its_data(trained_committee):
    run, _, stdout = trained_committee
    assert "test errors of the committee of 3" in stdout and "Spearman rank correlation" in stdout
    assert (run / "plots" / "calibration_forces.png").is_file()
    calibration = json.loads((run / "test_metrics.json").read_text())["calibration_forces"]
    assert -1.0 <= calibration["spearman"] <= 1.0 and calibration["atoms"] > 0
    committee = mlpot.load_model(run / "best.model")
    assert isinstance(committee, Committee) and len(committee.members) == 3

    def spread(atoms):
        atoms.calc = MLPotCalculator(committee)
        atoms.get_forces()
        return atoms.calc.results["max_force_std"]

    usual = np.mean([spread(cuau_cell(seed)) for seed in range(3)])
    compressed = np.mean([spread(cuau_cell(seed, scale=0.8)) for seed in range(3)])
    assert compressed > 2.0 * usual


def test_committee_run_resumes_finished_members(trained_committee):
    run, path, _ = trained_committee
    before = (run / "best.model").read_bytes()
    again = mlpot_cli("train", path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already finished") == 3
    assert (run / "best.model").read_bytes() != b"" and mlpot.load_model(run / "best.model") is not None
    assert len(before) > 0


# ----------------------------------------------------------------------------- MD, selection, calibration
def test_md_logs_the_spread_stops_on_it_and_dumps_frames(trained_committee, tmp_path):
    run, _, _ = trained_committee
    write_extxyz(tmp_path / "start.xyz", [(cuau_cell(), {}, {})])
    common = ["md", "--model", run / "best.model", "--structure", tmp_path / "start.xyz", "--steps", "30", "--interval", "5",
              "--temperature", "600"]
    logged = mlpot_cli(*common, "--log", tmp_path / "md.csv", "--output", tmp_path / "traj.xyz")
    assert logged.returncode == 0, logged.stderr
    rows = list(csv.DictReader(open(tmp_path / "md.csv")))
    assert len(rows) == 7 and all(float(row["max_force_std_eV_per_A"]) > 0 for row in rows)
    frame = read(tmp_path / "traj.xyz", -1)
    assert frame.arrays["forces_std"].shape == (len(frame),) and frame.info["max_force_std"] > 0
    low = 0.5 * float(rows[0]["max_force_std_eV_per_A"])
    stopped = mlpot_cli(*common, "--uncertainty-stop", str(low), "--uncertainty-dump", tmp_path / "dump.xyz",
                        "--dump-threshold", str(low / 2), "--log", tmp_path / "stop.csv")
    assert stopped.returncode == 3, stopped.stderr
    assert re.search(r"stopped at step 0: committee force spread [\d.]+ eV/Å passed --uncertainty-stop [\d.e-]+ eV/Å on atom\(s\) \d", stopped.stdout)
    assert len(read(tmp_path / "dump.xyz", ":")) == 1
    no_committee = mlpot_cli("md", "--model", run / "member-0" / "best.model", "--structure", tmp_path / "start.xyz",
                             "--steps", "2", "--uncertainty-stop", "0.1")
    assert no_committee.returncode == 2 and "need a committee" in no_committee.stderr


def test_select_picks_the_largest_spreads_and_explains(trained_committee, tmp_path):
    run, _, _ = trained_committee
    pool = [cuau_cell(seed) for seed in range(8)] + [cuau_cell(seed, scale=0.8) for seed in range(2)]
    write_extxyz(tmp_path / "pool.xyz", [(atoms, {"tag": index}, {}) for index, atoms in enumerate(pool)])
    result = mlpot_cli("select", "--model", run / "best.model", "--pool", tmp_path / "pool.xyz", "-n", "2", "-o", tmp_path / "chosen.xyz")
    assert result.returncode == 0, result.stderr
    chosen = read(tmp_path / "chosen.xyz", ":")
    assert sorted(atoms.info["tag"] for atoms in chosen) == [8, 9]  # the compressed cells
    rows = list(csv.DictReader(open(tmp_path / "chosen_scores.csv")))
    assert len(rows) == 10 and sum(int(row["selected"]) for row in rows) == 2
    diverse = mlpot_cli("select", "--model", run / "best.model", "--pool", tmp_path / "pool.xyz", "-n", "3", "--diverse",
                        "-o", tmp_path / "diverse.xyz")
    assert diverse.returncode == 0 and len(read(tmp_path / "diverse.xyz", ":")) == 3
    single = mlpot_cli("select", "--model", run / "member-0" / "best.model", "--pool", tmp_path / "pool.xyz", "-n", "2",
                       "-o", tmp_path / "x.xyz")
    assert single.returncode == 2 and "needs a committee" in single.stderr


# ----------------------------------------------------------------------------- fine-tuning
def finetune_config(emt_files, directory, parent, **changes):
    config = tiny_config(*emt_files, directory, max_epochs=0)
    del config["training"]["lr"]  # fine-tuning has its own default
    config["model"] = {"init_from": str(parent), **changes.pop("model", {})}
    config["training"].update(changes)
    return config


def test_zero_step_fine_tune_is_the_parent(trained_committee, emt_files, tmp_path, write_config):
    run, _, _ = trained_committee
    parent = run / "member-0" / "best.model"
    result = mlpot_cli("train", write_config(finetune_config(emt_files, tmp_path / "ft", parent)))
    assert result.returncode == 0, result.stderr
    child = tmp_path / "ft" / "final.model"
    resolved = yaml.safe_load((tmp_path / "ft" / "config.yaml").read_text())
    assert resolved["training"]["lr"] == 1e-3  # the fine-tuning default
    parent_weights, child_weights = mlpot.load_model(parent).state_dict(), mlpot.load_model(child).state_dict()
    assert all(torch.equal(parent_weights[name], child_weights[name]) for name in parent_weights)
    for seed in range(3):
        first, second = cuau_cell(seed), cuau_cell(seed)
        first.calc, second.calc = MLPotCalculator(parent), MLPotCalculator(child)
        assert first.get_potential_energy() == second.get_potential_energy()
        np.testing.assert_array_equal(first.get_forces(), second.get_forces())


def test_new_element_gets_an_embedding_without_disturbing_the_old_ones(trained_committee, tmp_path, write_config):
    run, _, _ = trained_committee
    parent_path = run / "member-0" / "best.model"
    frames = emt_frames(12, seed=7)
    for atoms, info, arrays in frames[:4]:  # Ag joins: new EMT labels
        atoms.symbols[0] = "Ag"
        atoms.calc = EMT()
        info["energy"], info["stress"], arrays["forces"] = atoms.get_potential_energy(), atoms.get_stress(voigt=False), atoms.get_forces()
        atoms.calc = None
    write_extxyz(tmp_path / "new.xyz", frames)
    config = tiny_config(tmp_path / "new.xyz", tmp_path / "new.xyz", tmp_path / "ft", max_epochs=0)
    config["model"] = {"init_from": str(parent_path)}
    result = mlpot_cli("train", write_config(config))
    assert result.returncode == 0, result.stderr
    parent, child = mlpot.load_model(parent_path), mlpot.load_model(tmp_path / "ft" / "final.model")
    assert child.config.elements == ["Cu", "Ag", "Au"]
    for seed in range(3):
        atoms = cuau_cell(seed)
        old, new = evaluate(parent, [atoms]), evaluate(child, [atoms])
        e0_old = sum(parent.config.atomic_energies[s] for s in atoms.get_chemical_symbols())
        e0_new = sum(child.config.atomic_energies[s] for s in atoms.get_chemical_symbols())
        np.testing.assert_allclose(new["energy"][0] - e0_new, old["energy"][0] - e0_old, rtol=0, atol=1e-10)
        np.testing.assert_allclose(new["forces"], old["forces"], rtol=0, atol=1e-12)
    with_ag = cuau_cell()
    with_ag.symbols[0] = "Ag"
    assert np.isfinite(evaluate(child, [with_ag])["energy"][0])


def test_replay_freeze_and_a_short_fine_tune_run(trained_committee, emt_files, tmp_path, write_config):
    run, _, _ = trained_committee
    parent = run / "member-0" / "best.model"
    config = finetune_config(emt_files, tmp_path / "ft", parent, max_epochs=2, freeze_layers=1)
    config["data"]["replay"] = {"file": str(emt_files[0]), "count": 5}
    result = mlpot_cli("train", write_config(config))
    assert result.returncode == 0, result.stderr
    before, after = mlpot.load_model(parent).state_dict(), mlpot.load_model(tmp_path / "ft" / "final.model").state_dict()
    assert torch.equal(before["backbone.layers.0.interaction.linear_up.weight"], after["backbone.layers.0.interaction.linear_up.weight"])
    assert not torch.equal(before["backbone.layers.1.interaction.linear_up.weight"], after["backbone.layers.1.interaction.linear_up.weight"])


def test_a_committee_fine_tunes_member_by_member(trained_committee, emt_files, tmp_path, write_config):
    run, _, _ = trained_committee
    config = finetune_config(emt_files, tmp_path / "ft", run / "best.model", committee=3)
    result = mlpot_cli("train", write_config(config))
    assert result.returncode == 0, result.stderr
    parent, child = mlpot.load_model(run / "best.model"), mlpot.load_model(tmp_path / "ft" / "final.model")
    parent_weights, child_weights = parent.state_dict(), child.state_dict()
    assert all(torch.equal(parent_weights[name], child_weights[name]) for name in parent_weights)
    assert not torch.equal(child_weights["members.0.readouts.0.linear.weight"], child_weights["members.1.readouts.0.linear.weight"])


def test_a_committee_parent_of_another_size_is_one_line(trained_committee, emt_files, tmp_path, write_config):
    run, _, _ = trained_committee
    for size, message in ((2, r"is a committee of 3, but training.committee is 2; they must match"),
                          (1, r"a committee model cannot be fine-tuned as one potential \(set training.committee")):
        config = finetune_config(emt_files, tmp_path / f"ft{size}", run / "best.model", committee=size)
        result = mlpot_cli("train", write_config(config))
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and re.search(message, lines[0]), lines


@pytest.mark.parametrize(
    "model,message",
    [
        ({"r_max": 3.0}, r"'model.r_max' is 3.0 but the model in model.init_from has 4.0; fine-tuning keeps the parent's architecture"),
        ({"init_from": "missing.model"}, r"model file .*missing.model does not exist"),
    ],
)
def test_fine_tune_mistakes_are_one_line(trained_committee, emt_files, tmp_path, write_config, model, message):
    run, _, _ = trained_committee
    config = finetune_config(emt_files, tmp_path / "ft", run / "member-0" / "best.model", model=model)
    result = mlpot_cli("train", write_config(config))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(message, lines[0]), lines
