"""The LAMMPS export, checked in Python by emulating LAMMPS's domains and ghost atoms."""

import itertools

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule
from test_train import mlpot_cli

import mlpot
from mlpot import MLPotError
from mlpot.calculators import MLPotCalculator
from mlpot.cli.main import main
from mlpot.export.lammps import export_lammps, read_metadata
from mlpot.models.committee import Committee

# every physics test runs on the fused kernels and on the reference path (conftest.kernel)
pytestmark = pytest.mark.usefixtures("kernel")


def small_model(elements, seed=1):
    torch.manual_seed(seed)
    config = {"elements": elements, "r_max": 3.0, "hidden_irreps": "6x0e+6x1o", "max_ell": 2, "radial_mlp": [8], "num_interactions": 2}
    return mlpot.build_model(config)


def periodic_structure():
    atoms = bulk("Cu", "fcc", a=3.7) * (2, 2, 1)
    atoms.cell[2] += [0.6, -0.3, 0.0]  # triclinic
    atoms.symbols[[1, 2]] = "Au"
    atoms.rattle(0.1, seed=7)
    return atoms


def domain_with_ghosts(atoms, owned, ghost_cutoff):
    """LAMMPS-like local + ghost atoms: ``owned`` atoms plus every periodic image (of any atom)
    within ghost_cutoff of an owned atom. Returns positions, numbers, owner index, local mask."""
    cell = atoms.cell.array
    reach = [int(np.ceil(ghost_cutoff / (atoms.get_volume() / np.linalg.norm(np.cross(cell[a - 2], cell[a - 1]))))) + 1 for a in range(3)]
    centres = atoms.positions[owned]
    positions, numbers, owners, local = list(atoms.positions[owned]), list(atoms.numbers[owned]), list(owned), [True] * len(owned)
    for image in itertools.product(*[range(-r, r + 1) for r in reach]):
        for i in range(len(atoms)):
            if image == (0, 0, 0) and i in owned:
                continue
            position = atoms.positions[i] + np.array(image) @ cell
            if np.min(np.linalg.norm(centres - position, axis=1)) <= ghost_cutoff:
                positions.append(position)
                numbers.append(atoms.numbers[i])
                owners.append(i)
                local.append(False)
    return np.array(positions), np.array(numbers), np.array(owners), np.array(local)


def plain_edges(positions, r_max):
    distances = np.linalg.norm(positions[:, None] - positions[None], axis=2)
    receiver, sender = np.nonzero((distances < r_max) & (distances > 0))
    return np.stack([sender, receiver])


def run_exported(module, positions, numbers, local, r_max, dtype=torch.float64):
    edges = plain_edges(positions, r_max)
    return module(
        torch.tensor(positions, dtype=dtype),
        torch.tensor(numbers, dtype=torch.long),
        torch.tensor(edges, dtype=torch.long),
        torch.zeros(edges.shape[1], 3, dtype=dtype),
        torch.tensor(local),
    )


@pytest.mark.parametrize("domains", [1, 2, 3])
def test_local_energies_with_ghosts_match_the_periodic_calculator(tmp_path, domains):
    model = small_model(["Cu", "Au"])
    atoms = periodic_structure()
    calculator = MLPotCalculator(model)
    atoms.calc = calculator
    energy, forces, stress = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress(voigt=False)
    path = export_lammps(model, tmp_path / "model.pt")
    module = torch.jit.load(str(path))
    ghost_cutoff = model.num_interactions * model.r_max
    # Split the atoms into domains along x, as MPI ranks would.
    order = np.argsort(atoms.positions[:, 0])
    total_energy, total_forces, total_virial = 0.0, np.zeros_like(forces), np.zeros((3, 3))
    for owned in np.array_split(order, domains):
        positions, numbers, owners, local = domain_with_ghosts(atoms, list(owned), ghost_cutoff)
        out = run_exported(module, positions, numbers, local, model.r_max)
        total_energy += float(out["energy"])
        np.add.at(total_forces, owners, out["forces"].numpy())  # reverse communication of ghost forces
        total_virial += out["virial"].numpy()
        np.testing.assert_allclose(out["atom_virial"].sum(0).numpy(), out["virial"].numpy(), atol=1e-12)
        assert torch.all(out["node_energy"][~torch.tensor(local)] == 0)
    assert total_energy == pytest.approx(energy, abs=1e-9)
    np.testing.assert_allclose(total_forces, forces, atol=1e-9)
    np.testing.assert_allclose(total_virial, -stress * atoms.get_volume(), atol=1e-9)


def test_too_small_ghost_cutoff_gets_the_energy_wrong(tmp_path):
    """The check above can fail: one r_max of ghosts is not enough for two interactions."""
    model = small_model(["Cu", "Au"])
    atoms = periodic_structure()
    atoms.calc = MLPotCalculator(model)
    module = torch.jit.load(str(export_lammps(model, tmp_path / "model.pt")))
    positions, numbers, _, local = domain_with_ghosts(atoms, list(range(len(atoms))), model.r_max)
    assert abs(float(run_exported(module, positions, numbers, local, model.r_max)["energy"]) - atoms.get_potential_energy()) > 1e-6


@pytest.mark.parametrize("dtype,tolerance", [("float64", 1e-10), ("float32", 1e-4)])
def test_committee_exports_its_mean(tmp_path, dtype, tolerance):
    """The exported committee is the members' mean: energy, forces and virial of a periodic cell
    (all atoms local, ghosts as LAMMPS makes them) equal the calculator's committee mean."""
    committee = Committee([small_model(["Cu", "Au"], seed) for seed in (1, 2)])
    atoms = periodic_structure()
    atoms.calc = MLPotCalculator(committee)
    energy, forces, stress = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress(voigt=False)
    assert atoms.calc.results["max_force_std"] > 1e-2  # the members differ: one member alone would fail below
    module = torch.jit.load(str(export_lammps(committee, tmp_path / "committee.pt", dtype=dtype)))
    owned = list(range(len(atoms)))
    positions, numbers, owners, local = domain_with_ghosts(atoms, owned, committee.num_interactions * committee.r_max)
    out = run_exported(module, positions, numbers, local, committee.r_max, getattr(torch, dtype))
    exported_forces = np.zeros_like(forces)
    np.add.at(exported_forces, owners, out["forces"].double().numpy())  # ghost forces back to their atoms
    assert float(out["energy"]) == pytest.approx(energy, abs=tolerance)
    np.testing.assert_allclose(exported_forces, forces, atol=tolerance)
    np.testing.assert_allclose(out["virial"].double().numpy(), -stress * atoms.get_volume(), atol=tolerance)


def test_export_cli_says_a_committee_is_exported_as_its_mean(tmp_path, capsys):
    mlpot.save_model(Committee([small_model(["Cu"], seed) for seed in (1, 2)]), tmp_path / "committee.model")
    command = ["export", "--model", str(tmp_path / "committee.model"), "--format", "lammps", "-o", str(tmp_path / "c.pt")]
    assert main(command) == 2  # the spread would be dropped: only with --committee-mean
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "(energy_std, forces_std) would be dropped: add --committee-mean" in error[0], error
    assert not (tmp_path / "c.pt").exists()
    assert main(command + ["--committee-mean"]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if "committee" in line]
    assert notes == [
        "committee of 2 potentials: exported as their mean; the spread (energy_std, forces_std) is dropped, pair_style mlpot has no place for it"
    ]
    assert read_metadata(tmp_path / "c.pt")["elements"] == "Cu"


def test_molecule_and_metadata(tmp_path, kernel):
    model = small_model(["H", "C", "O"])
    atoms = molecule("CH3CH2OH")
    atoms.calc = MLPotCalculator(model)
    path = export_lammps(model, tmp_path / "ethanol.pt", dtype="float32")
    metadata = read_metadata(path)
    assert metadata == {
        "format": "mlpot-lammps/1",
        "elements": "H C O",
        "r_max": "3.0",
        "num_interactions": "2",
        "dtype": "float32",
        "kernel": kernel,
        "mlpot_version": mlpot.__version__,
        "dispersion": "none",
    }
    module = torch.jit.load(str(path))
    edges = plain_edges(atoms.positions, 3.0)
    out = module(
        torch.tensor(atoms.positions, dtype=torch.float32),
        torch.tensor(atoms.numbers),
        torch.tensor(edges),
        torch.zeros(edges.shape[1], 3),
        torch.ones(len(atoms), dtype=torch.bool),
    )
    assert float(out["energy"]) == pytest.approx(atoms.get_potential_energy(), abs=1e-4)
    np.testing.assert_allclose(out["forces"].numpy(), atoms.get_forces(), atol=1e-4)


def test_export_cli_and_bad_input(tmp_path):
    model = small_model(["Cu"])
    mlpot.save_model(model, tmp_path / "cu.model")
    result = mlpot_cli("export", "--model", tmp_path / "cu.model", "--format", "lammps", "-o", tmp_path / "cu-lammps.pt")
    assert result.returncode == 0, result.stderr
    assert "elements Cu, r_max 3.0 Å, 2 interactions, float64" in result.stdout
    bad = mlpot_cli("export", "--model", tmp_path / "cu-lammps.pt", "-o", tmp_path / "again.pt")
    assert bad.returncode == 2 and "is not an mlpot model file" in bad.stderr
    assert not (tmp_path / "again.pt").exists()
    (tmp_path / "junk.pt").write_text("not a model")
    with pytest.raises(MLPotError, match="not a TorchScript archive"):
        read_metadata(tmp_path / "junk.pt")
