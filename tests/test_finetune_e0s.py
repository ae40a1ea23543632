"""E0s for fine-tuning fitted to what the parent leaves unexplained (mace's ``--E0s estimated``)."""

import json

import numpy as np
import pytest
import yaml
from ase.build import bulk
from conftest import tiny_config
from symmetry import evaluate
from test_finetune_imported import imported

import mlpot
from mlpot.cli.main import main
from mlpot.data.dataset import read_labelled
from mlpot.data.extxyz import write_extxyz
from mlpot.train import finetune

#: What the new level of theory adds per atom (eV) to the parent's energies.
OFFSETS = {"Cu": 0.37, "Au": -0.21}


def cells(count: int, seed: int, au_fraction: float):
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.symbols[rng.random(4) < au_fraction] = "Au"
        atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
        frames.append(atoms)
    return frames


def labelled_by_parent(parent_path, frames, path):
    """``frames`` labelled with the parent's energies and forces, energies moved by OFFSETS per atom."""
    predicted = evaluate(mlpot.load_model(parent_path), frames)
    forces_per_frame = np.split(predicted["forces"], np.cumsum([len(atoms) for atoms in frames])[:-1])
    rows = []
    for atoms, energy, forces in zip(frames, predicted["energy"], forces_per_frame):
        shift = sum(OFFSETS[symbol] for symbol in atoms.get_chemical_symbols())
        rows.append((atoms, {"energy": float(energy) + shift}, {"forces": forces}))
    write_extxyz(path, rows)
    return path


def merged_config(parent_path):
    parent = finetune.parent_config(str(parent_path))
    return parent, finetune.merge_model_config({"init_from": str(parent_path)}, parent, ["Cu", "Au"])


def test_the_e0s_absorb_a_per_element_offset_exactly(tmp_path):
    parent_path = imported("ss_trained_emt_cuau", tmp_path)
    data = read_labelled(labelled_by_parent(parent_path, cells(8, seed=1, au_fraction=0.4), tmp_path / "new.xyz"))
    parent, config = merged_config(parent_path)
    e0s = finetune.estimate_e0s_from_parent(config, data.structures, data.labels)
    for symbol, offset in OFFSETS.items():
        assert e0s[symbol] == pytest.approx(parent["atomic_energies"][symbol] + offset, abs=1e-9)


def test_one_composition_moves_the_e0s_along_its_counts_only(tmp_path):
    """One composition fixes only its E0 sum; the minimum-norm correction is parallel to its counts,
    so a composition orthogonal to them keeps the parent's energy."""
    parent_path = imported("ss_trained_emt_cuau", tmp_path)
    frames = cells(6, seed=2, au_fraction=0.0)
    for atoms in frames:
        atoms.symbols[:1] = "Au"  # every frame Cu3Au
    data = read_labelled(labelled_by_parent(parent_path, frames, tmp_path / "new.xyz"))
    parent, config = merged_config(parent_path)
    e0s = finetune.estimate_e0s_from_parent(config, data.structures, data.labels)
    correction = np.array([e0s["Cu"] - parent["atomic_energies"]["Cu"], e0s["Au"] - parent["atomic_energies"]["Au"]])
    assert 3 * correction[0] + correction[1] == pytest.approx(3 * OFFSETS["Cu"] + OFFSETS["Au"], abs=1e-9)
    assert correction[0] / correction[1] == pytest.approx(3.0, rel=1e-9)


def test_fine_tuning_fits_them_by_default(emt_files, tmp_path, capsys):
    """mlpot train --init-from with 0 epochs: the parent plus the fitted E0s reproduces data that
    differ from the parent by per-element offsets."""
    parent_path = imported("ss_trained_emt_cuau", tmp_path)
    train = labelled_by_parent(parent_path, cells(10, seed=3, au_fraction=0.3), tmp_path / "train.xyz")
    test = labelled_by_parent(parent_path, cells(4, seed=4, au_fraction=0.6), tmp_path / "test.xyz")
    config = tiny_config(train, test, tmp_path / "ft", max_epochs=0)
    del config["training"]["lr"]
    config["model"] = {"init_from": str(parent_path)}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", str(tmp_path / "config.yaml")]) == 0, capsys.readouterr().err
    metrics = json.loads((tmp_path / "ft" / "test_metrics.json").read_text())
    assert metrics["energy"]["mae"] < 1e-8 and metrics["forces"]["mae"] < 1e-8
