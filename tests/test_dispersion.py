"""DFT-D3(BJ) dispersion as an additive term of a potential (model.dispersion, torch-dftd)."""

import sys

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule
from ase.neighborlist import primitive_neighbor_list
from test_export import domain_with_ghosts, run_exported

import mlpot
from mlpot import MLPotError
from mlpot.calculators import MLPotCalculator
from mlpot.cli.main import main
from mlpot.export.lammps import export_lammps, read_metadata

pytest.importorskip("torch_dftd", reason="the 'd3' extra (torch-dftd) is not installed")

D3 = {"kind": "d3bj", "functional": "pbe", "cutoff": 9.0, "cn_cutoff": 7.0}


def small_models(dispersion=D3):
    """The same network with and without the dispersion term."""
    torch.manual_seed(3)
    config = {"elements": ["H", "C", "O", "Cu", "Au"], "r_max": 3.0, "hidden_irreps": "6x0e+6x1o", "max_ell": 1,
              "radial_mlp": [8], "num_interactions": 2, "dtype": "float64"}
    plain = mlpot.build_model(config)
    with_d3 = mlpot.build_model({**config, "dispersion": dispersion})
    with_d3.load_state_dict(plain.state_dict())
    return with_d3, plain


def periodic_cell():
    atoms = bulk("Cu", "fcc", a=3.7, cubic=True) * (2, 1, 1)
    atoms.cell[2] += [0.5, -0.3, 0.0]  # triclinic
    atoms.symbols[[1, 6]] = "Au"
    atoms.rattle(0.08, seed=5)
    return atoms


def torch_dftd_reference(atoms, settings):
    """torch-dftd's own module on its own neighbour list (ASE's): energy, forces, stress."""
    from torch_dftd.dftd3_xc_params import get_dftd3_default_params
    from torch_dftd.nn.dftd3_module import DFTD3Module

    module = DFTD3Module(get_dftd3_default_params("bj", settings["functional"]), cutoff=settings["cutoff"], cnthr=settings["cn_cutoff"],
                         dtype=torch.float64, bidirectional=True, cutoff_smoothing="poly")
    i, j, shifts = primitive_neighbor_list("ijS", atoms.pbc, atoms.cell.array, atoms.positions, settings["cutoff"])
    cell = torch.tensor(atoms.cell.array) if atoms.pbc.any() else None
    shifts = torch.tensor(shifts, dtype=torch.float64)
    return module.calc_energy_and_forces(
        Z=torch.tensor(atoms.numbers), pos=torch.tensor(atoms.positions), edge_index=torch.tensor(np.stack([i, j])),
        cell=cell, pbc=torch.tensor(atoms.pbc), shift_pos=shifts if cell is None else shifts @ cell, damping="bj",
    )[0]


def difference(atoms, with_d3, plain):
    """Energy, forces, stress of the model with dispersion minus those of the same model without."""
    results = []
    for model in (with_d3, plain):
        copy = atoms.copy()
        copy.calc = MLPotCalculator(model, dtype="float64")
        results.append((copy.get_potential_energy(), copy.get_forces(), copy.get_stress() if atoms.pbc.all() else None))
    (e1, f1, s1), (e0, f0, s0) = results
    return e1 - e0, f1 - f0, None if s1 is None else s1 - s0


@pytest.mark.parametrize("atoms", [periodic_cell(), molecule("CH3CH2OH")], ids=["cuau-cell", "ethanol"])
def test_the_added_energy_forces_and_stress_are_torch_dftds(atoms):
    with_d3, plain = small_models()
    energy, forces, stress = difference(atoms, with_d3, plain)
    reference = torch_dftd_reference(atoms, D3)
    assert energy < -0.01  # dispersion binds
    assert energy == pytest.approx(reference["energy"], abs=1e-10)
    np.testing.assert_allclose(forces, reference["forces"], atol=1e-10)
    if stress is not None:
        np.testing.assert_allclose(stress, reference["stress"], atol=1e-10)


def test_forces_and_stress_are_derivatives_of_the_energy():
    """Through MLPotCalculator: forces = -dE/dx (central differences), stress = dE/d(strain) / V."""
    with_d3, _ = small_models()
    atoms = periodic_cell()
    atoms.calc = MLPotCalculator(with_d3, dtype="float64")
    forces, stress = atoms.get_forces(), atoms.get_stress(voigt=False)
    h = 1e-4
    for atom, axis in [(0, 0), (3, 2), (6, 1)]:
        energies = []
        for sign in (1, -1):
            moved = atoms.copy()
            moved.positions[atom, axis] += sign * h
            moved.calc = MLPotCalculator(with_d3, dtype="float64")
            energies.append(moved.get_potential_energy())
        assert forces[atom, axis] == pytest.approx(-(energies[0] - energies[1]) / (2 * h), abs=1e-6)
    for a, b in [(0, 0), (1, 2), (2, 2)]:
        energies = []
        for sign in (1, -1):
            strain = np.eye(3)
            strain[a, b] += sign * h / 2
            strain[b, a] += sign * h / 2
            strained = atoms.copy()
            strained.set_cell(atoms.cell.array @ strain, scale_atoms=True)
            strained.calc = MLPotCalculator(with_d3, dtype="float64")
            energies.append(strained.get_potential_energy())
        assert stress[a, b] == pytest.approx((energies[0] - energies[1]) / (2 * h) / atoms.get_volume(), abs=1e-7)


def test_a_saved_model_keeps_its_dispersion_and_defaults_fill_in(tmp_path):
    model, _ = small_models({"kind": "d3bj"})
    assert model.config.dispersion == {"kind": "d3bj", "functional": "pbe", "cutoff": pytest.approx(21.16709), "cn_cutoff": pytest.approx(21.16709)}
    mlpot.save_model(model, tmp_path / "d3.model")
    loaded = mlpot.load_model(tmp_path / "d3.model")
    assert loaded.config.dispersion == model.config.dispersion
    assert "dispersion.c6ab" not in loaded.state_dict()  # the reference tables come from torch-dftd, not the file


@pytest.mark.parametrize("dispersion,message", [
    ({"kind": "d4"}, r"'model.dispersion.kind' must be d3bj, got 'd4'"),
    ({"kind": "d3bj", "cutof": 10.0}, r"'model.dispersion' has unknown key 'cutof'"),
    ({"kind": "d3bj", "cutoff": -1}, r"'model.dispersion.cutoff' must be a positive distance in Å, got -1"),
    ({"kind": "d3bj", "functional": "pbe-x"}, r"'model.dispersion.functional' 'pbe-x' has no D3\(BJ\) parameters in torch-dftd"),
    ("d3bj", r"'model.dispersion' must be a mapping"),
])
def test_bad_dispersion_settings_are_one_line(dispersion, message):
    with pytest.raises(MLPotError, match=message):
        small_models(dispersion)


def test_missing_torch_dftd_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_dftd.dftd3_xc_params", None)  # import fails as if not installed
    with pytest.raises(MLPotError, match=r"DFT-D3 dispersion \(model.dispersion\): torch_dftd is not installed; install the 'd3' extra"):
        small_models()


def test_lammps_export_refuses_dispersion_unless_left_out(tmp_path, capsys):
    with_d3, plain = small_models()
    mlpot.save_model(with_d3, tmp_path / "d3.model")
    out = tmp_path / "d3.pt"
    assert main(["export", "--model", str(tmp_path / "d3.model"), "-o", str(out)]) == 2
    assert "export with --without-dispersion and add LAMMPS's 'pair_style dispersion/d3 bj pbe 9 7'" in capsys.readouterr().err
    assert not out.exists()
    assert main(["export", "--model", str(tmp_path / "d3.model"), "-o", str(out), "--without-dispersion"]) == 0
    assert "WARNING: the export leaves out the model's D3 dispersion" in capsys.readouterr().out
    assert read_metadata(out)["dispersion"] == "pair_style dispersion/d3 bj pbe 9 7"
    # What is exported is the network alone: the model without dispersion.
    atoms = periodic_cell()
    atoms.calc = MLPotCalculator(plain, dtype="float64")
    positions, numbers, _, local = domain_with_ghosts(atoms, list(range(len(atoms))), plain.num_interactions * plain.r_max)
    exported = run_exported(torch.jit.load(str(out)), positions, numbers, local, plain.r_max)
    assert float(exported["energy"]) == pytest.approx(atoms.get_potential_energy(), abs=1e-9)
    assert read_metadata(export_lammps(plain, tmp_path / "plain.pt"))["dispersion"] == "none"


def test_partitioned_evaluation_refuses_dispersion_instead_of_dropping_it(tmp_path, capsys):
    with_d3, _ = small_models()
    with pytest.raises(MLPotError, match="partitioned evaluation cannot include the model's D3 dispersion"):
        MLPotCalculator(with_d3, dtype="float64", partitions=2)
    mlpot.save_model(with_d3, tmp_path / "d3.model")
    atoms = periodic_cell()
    atoms.write(tmp_path / "cell.xyz")
    assert main(["eval", "--model", str(tmp_path / "d3.model"), "--data", str(tmp_path / "cell.xyz"), "--partitions", "2"]) == 2
    assert "cannot include the model's D3 dispersion" in capsys.readouterr().err


def test_the_neighbour_list_is_reused_within_the_skin_and_stays_exact():
    """As in MD: small moves reuse the cached D3 list (cutoff + skin) with energies equal to a
    fresh list's; a move past half the skin, or a new cell, rebuilds it."""
    from mlpot.models.dispersion import SKIN, D3BJDispersion

    atoms = periodic_cell()
    cell = torch.tensor(atoms.cell.array).unsqueeze(0)
    pbc = torch.tensor(atoms.pbc).unsqueeze(0)
    numbers = torch.tensor(atoms.numbers)
    batch = torch.zeros(len(atoms), dtype=torch.long)
    kept = D3BJDispersion(cutoff=D3["cutoff"], cn_cutoff=D3["cn_cutoff"]).double()
    rng = np.random.default_rng(0)
    first = None
    for step, largest_move in enumerate([0.0, 0.2, 0.45 * SKIN, 0.6 * SKIN]):
        displacement = rng.normal(size=atoms.positions.shape)
        displacement *= largest_move / max(np.linalg.norm(displacement, axis=1).max(), 1e-12)
        positions = torch.tensor(atoms.positions + displacement)
        energy = kept(positions, numbers, cell, pbc, batch)
        fresh = D3BJDispersion(cutoff=D3["cutoff"], cn_cutoff=D3["cn_cutoff"]).double()
        torch.testing.assert_close(energy, fresh(positions, numbers, cell, pbc, batch), rtol=1e-13, atol=1e-15)
        edges = kept._edges
        first = first or edges
        assert (edges is first) == (largest_move <= 0.5 * SKIN), step
    kept(positions, numbers, 1.01 * cell, pbc, batch)
    assert kept._edges is not edges
