"""mlpot potentials exported for metatomic (mlpot.export.metatomic), loaded back by metatomic's own
ASE calculator (metatomic-ase): energies, per-atom energies, forces and stress equal MLPotCalculator's,
a committee's energy is its mean and energy_ensemble its members', and mistakes are one line."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule

import mlpot
from mlpot.calculators import MLPotCalculator
from mlpot.cli.main import main
from mlpot.errors import MLPotError
from mlpot.models.io import load_model

try:  # imports metatomic.torch past torch_geometric's torch.index_select wrapper (see the module)
    import mlpot.export.metatomic  # noqa: F401
except MLPotError:
    pytest.skip("metatomic-torch is in the metatomic extra, not installed", allow_module_level=True)
pytest.importorskip("metatomic_ase", reason="metatomic-ase is in the metatomic extra")

MODELS = Path(__file__).resolve().parent.parent / "models"
CUAU = MODELS / "cuau-emt-demo"  # Cu, Au; r_max 4.5 Å
ETHANOL = MODELS / "ethanol-rmd17"  # H, C, O; a committee of two
RTOL = 1e-10


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The demo potential and the ethanol committee, written by the CLI."""
    directory = tmp_path_factory.mktemp("metatomic")
    paths = {}
    for name, model in (("cuau", CUAU), ("ethanol", ETHANOL)):
        paths[name] = directory / f"{name}.pt"
        assert main(["export", "--model", str(model), "--format", "metatomic", "-o", str(paths[name])]) == 0
    return paths


def metatomic_calculator(path):
    from metatomic_ase import MetatomicCalculator

    return MetatomicCalculator(str(path), check_consistency=True)  # checks the outputs' metadata too


@pytest.fixture(scope="module")
def loaded(exported):
    """metatomic's ASE calculator on each exported file."""
    return {name: metatomic_calculator(path) for name, path in exported.items()}


def cuau_cell(repeat, seed):
    """A rattled, strained, triclinic fcc Cu-Au cell of 4 * prod(repeat) atoms."""
    rng = np.random.default_rng(seed)
    atoms = bulk("Cu", "fcc", a=3.7, cubic=True).repeat(repeat)
    atoms.symbols[rng.random(len(atoms)) < 0.3] = "Au"
    strain = np.eye(3) + rng.uniform(-0.03, 0.03, (3, 3))
    atoms.set_cell(atoms.cell.array @ strain, scale_atoms=True)
    atoms.rattle(0.05, seed=seed)
    return atoms


def ethanols():
    """Ethanol, and two ethanols side by side (9 and 18 atoms, no cell)."""
    first, second = molecule("CH3CH2OH"), molecule("CH3CH2OH")
    second.positions += [3.5, 0.5, 0.2]
    systems = [molecule("CH3CH2OH"), first + second]
    for seed, atoms in enumerate(systems):
        atoms.rattle(0.03, seed=seed)
    return systems


def results(atoms, calculator):
    atoms = atoms.copy()
    atoms.calc = calculator
    out = {"energy": atoms.get_potential_energy(), "energies": atoms.get_potential_energies(), "forces": atoms.get_forces()}
    if atoms.pbc.all():
        out["stress"] = atoms.get_stress()
    return out


def assert_equal_results(got, want):
    assert got.keys() == want.keys()
    for key, value in want.items():
        scale = np.abs(value).max()
        assert scale > 1e-6, key  # the comparison is not of zeros
        np.testing.assert_allclose(got[key], value, rtol=0, atol=RTOL * scale, err_msg=key)


@pytest.mark.parametrize("atoms", [cuau_cell((2, 2, 2), seed=1), cuau_cell((1, 1, 1), seed=2)], ids=["32-atoms", "4-atoms-self-images"])
def test_periodic_cell_equals_calculator(loaded, atoms):
    assert_equal_results(results(atoms, loaded["cuau"]), results(atoms, MLPotCalculator(str(CUAU))))


def test_committee_energy_is_the_mean_and_ensemble_holds_members(loaded):
    from metatomic.torch import ModelOutput

    systems = ethanols()
    calculator = loaded["ethanol"]
    mean = MLPotCalculator(str(ETHANOL))
    members = [MLPotCalculator(member) for member in load_model(str(ETHANOL)).members]
    for atoms in systems:
        assert_equal_results(results(atoms, calculator), results(atoms, mean))
    requests = {"energy_ensemble": ModelOutput(unit="eV", sample_kind="system"), "energy": ModelOutput(unit="eV", sample_kind="atom")}
    out = calculator.run_model(systems, requests)  # both molecules in one call
    ensemble = out["energy_ensemble"].block()
    assert ensemble.values.shape == (2, 2) and ensemble.properties.names == ["energy"]
    per_atom = out["energy"].block()
    assert per_atom.samples.names == ["system", "atom"] and per_atom.values.shape == (27, 1)
    for index, atoms in enumerate(systems):
        want = [results(atoms, member)["energy"] for member in members]
        np.testing.assert_allclose(ensemble.values[index].detach().numpy(), want, rtol=RTOL)
        assert abs(want[0] - want[1]) > 100 * RTOL * abs(want[0])  # the members differ by more than the tolerance
        atom_energies = per_atom.values[per_atom.samples.column("system") == index, 0].detach().numpy()
        np.testing.assert_allclose(atom_energies, results(atoms, mean)["energies"], rtol=RTOL)


def test_selected_atoms_sum_their_energies_with_all_atoms_as_neighbours(loaded):
    from metatensor.torch import Labels
    from metatomic.torch import ModelOutput

    atoms = cuau_cell((2, 2, 1), seed=3)
    selected = [0, 3, 7, 8, 15]
    chosen = Labels(["system", "atom"], torch.tensor([[0, atom] for atom in selected], dtype=torch.int32))
    calculator = loaded["cuau"]
    energies = results(atoms, MLPotCalculator(str(CUAU)))["energies"]
    total = calculator.run_model(atoms, {"energy": ModelOutput(unit="eV", sample_kind="system")}, selected_atoms=chosen)
    assert total["energy"].block().values.detach().item() == pytest.approx(energies[selected].sum(), rel=RTOL)
    per_atom = calculator.run_model(atoms, {"energy": ModelOutput(unit="eV", sample_kind="atom")}, selected_atoms=chosen)
    assert per_atom["energy"].block().samples.column("atom").tolist() == selected
    np.testing.assert_allclose(per_atom["energy"].block().values[:, 0].detach().numpy(), energies[selected], rtol=RTOL)


def test_capabilities_and_cli_line(exported, capsys, tmp_path):
    from metatomic.torch import load_atomistic_model

    capabilities = load_atomistic_model(str(exported["ethanol"])).capabilities()
    assert capabilities.atomic_types == [1, 6, 8] and capabilities.length_unit == "angstrom"
    assert capabilities.interaction_range == pytest.approx(float(load_model(str(ETHANOL)).r_max) * 2)  # 2 interactions
    assert set(capabilities.outputs.keys()) == {"energy", "energy_ensemble"}
    assert main(["export", "--model", str(CUAU), "--format", "metatomic", "-o", str(tmp_path / "m.pt"), "--dtype", "float32"]) == 0
    line = capsys.readouterr().out.strip()
    assert line == f"wrote {tmp_path / 'm.pt'}: metatomic model, elements Cu Au, interaction range 9 Å, float32, outputs energy"
    atoms = cuau_cell((1, 1, 1), seed=5)
    assert results(atoms, metatomic_calculator(tmp_path / "m.pt"))["energy"] == pytest.approx(
        results(atoms, MLPotCalculator(str(CUAU)))["energy"], rel=1e-5)
    assert any("vesin" in library for library in torch.ops.loaded_libraries)  # metatomic_ase's neighbour lists
    extensions = {"extensions": ""}
    torch.jit.load(str(tmp_path / "m.pt"), _extra_files=extensions)
    assert json.loads(extensions["extensions"]) == []  # vesin's library is not recorded as one the model needs


def test_d3_model_is_refused_unless_exported_without_it(tmp_path, capsys):
    pytest.importorskip("torch_dftd", reason="the 'd3' extra (torch-dftd) is not installed")
    torch.manual_seed(3)
    config = {"elements": ["Cu", "Au"], "r_max": 3.0, "hidden_irreps": "6x0e+6x1o", "max_ell": 1, "radial_mlp": [8],
              "num_interactions": 2, "dtype": "float64"}
    plain = mlpot.build_model(config)
    with_d3 = mlpot.build_model({**config, "dispersion": {"kind": "d3bj", "cutoff": 9.0, "cn_cutoff": 7.0}})
    with_d3.load_state_dict(plain.state_dict())
    mlpot.save_model(with_d3, tmp_path / "d3.model")
    command = ["export", "--model", str(tmp_path / "d3.model"), "--format", "metatomic", "-o", str(tmp_path / "d3.pt")]
    assert main(command) == 2
    assert capsys.readouterr().err.strip() == (
        "mlpot: error: the model has D3 dispersion (model.dispersion), which a metatomic export cannot evaluate (torch-dftd is "
        "not TorchScript): export with --without-dispersion and add D3 in the engine (e.g. metatomic's DFTD3 wrapper)"
    )
    assert not (tmp_path / "d3.pt").exists()
    assert main(command + ["--without-dispersion"]) == 0
    atoms = cuau_cell((2, 1, 1), seed=4)
    assert_equal_results(results(atoms, metatomic_calculator(tmp_path / "d3.pt")), results(atoms, MLPotCalculator(plain)))


@pytest.mark.parametrize("extra,message", [
    (["--kernel", "fused"], "mlpot: error: --kernel fused cannot be exported for metatomic: the fused kernels are mlpot's own "
                            "operators, which metatomic engines do not load; use --kernel reference (plain torch, the default here)"),
    (["--dtype", "float16"], "mlpot: error: --dtype must be one of float32, float64, got 'float16'"),
])
def test_bad_options_are_one_line(tmp_path, capsys, extra, message):
    assert main(["export", "--model", str(CUAU), "--format", "metatomic", "-o", str(tmp_path / "m.pt"), *extra]) == 2
    assert capsys.readouterr().err.strip() == message
    assert not (tmp_path / "m.pt").exists()


def test_without_metatomic_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "metatomic.torch", None)  # import metatomic.torch raises ImportError
    monkeypatch.delitem(sys.modules, "mlpot.export.metatomic", raising=False)
    assert main(["export", "--model", str(CUAU), "--format", "metatomic", "-o", str(tmp_path / "m.pt")]) == 2
    assert capsys.readouterr().err.strip() == (
        "mlpot: error: mlpot export --format metatomic: metatomic is not installed; "
        "install the 'metatomic' extra: pip install 'mlpot[metatomic]'"
    )


def test_ipi_metatomic_driver_gets_the_calculator_and_each_member(exported, tmp_path):
    """i-PI's own metatomic client (i-pi-driver-py -m metatomic), called as i-PI's socket loop calls it."""
    pytest.importorskip("ipi", reason="i-PI is in the ipi extra")
    from ipi.pes.metatomic import MetatomicDriver
    from ipi.utils.units import unit_to_user

    atoms = ethanols()[0]
    atoms.set_cell([12.0, 12.0, 12.0])  # i-PI always has a cell; periodic images are 8 Å apart, beyond r_max
    atoms.center()
    atoms.write(tmp_path / "template.xyz")
    driver = MetatomicDriver(template=str(tmp_path / "template.xyz"), model=str(exported["ethanol"]),
                             energy_ensemble=True, force_virial_ensemble=True)
    bohr = unit_to_user("length", "angstrom", 1.0)  # i-PI's atomic units, converted with i-PI's own factors
    energy, forces = unit_to_user("energy", "electronvolt", 1.0), unit_to_user("force", "ev/ang", 1.0)
    potential, force, _, extras = driver.compute(atoms.cell.array.T / bohr, atoms.positions / bohr)
    committee = json.loads(extras)
    atoms.pbc = False
    want = results(atoms, MLPotCalculator(str(ETHANOL)))
    assert potential * energy == pytest.approx(want["energy"], rel=RTOL)
    np.testing.assert_allclose(np.reshape(force, (-1, 3)) * forces, want["forces"], rtol=0, atol=RTOL * np.abs(want["forces"]).max())
    members = load_model(str(ETHANOL)).members
    committee_forces = np.reshape(committee["committee_force"], (len(members), -1, 3)) * forces
    for index, member in enumerate(members):
        want = results(atoms, MLPotCalculator(member))
        assert committee["committee_pot"][index] * energy == pytest.approx(want["energy"], rel=RTOL)
        np.testing.assert_allclose(committee_forces[index], want["forces"], rtol=0, atol=RTOL * np.abs(want["forces"]).max())
