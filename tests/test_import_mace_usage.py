"""Imported mace-torch models are ordinary mlpot models (issue 30, point 4).

Fixtures of tests/fixtures/mace, imported with ``mlpot import mace`` in float64 and float32, run
through MLPotCalculator, ``mlpot md``, ``mlpot eval``, committees (the calculator and ``mlpot
select`` with two files) and the LAMMPS export, on the fused kernels and the reference path.
Where mace-torch's own numbers exist (NAME.npz: its calculator on the fixture's structures), the
results must equal them; elsewhere they must equal the calculator's.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.io import read, write
from ase.stress import full_3x3_to_voigt_6_stress
from test_export import domain_with_ghosts, run_exported

import mlpot
from mlpot.calculators import MLPotCalculator
from mlpot.cli.main import main
from mlpot.export.lammps import export_lammps

pytestmark = pytest.mark.usefixtures("kernel")  # every test on the fused kernels and on the reference path

FIXTURES = Path(__file__).parent / "fixtures" / "mace"
CUAU = ["ss_trained_emt_cuau", "ss_zbl_agnesi_cuau"]  # trained weights; ZBL + Agnesi (as MACE-MP has them)
DTYPES = ["float64", "float32"]
# Largest difference over an array relative to its largest entry; float32 as test_mace_numerics's
# noise allowance for ss_zbl_agnesi_cuau (mace's own float32 forces are 1.8e-5 off its float64 ones).
TOLERANCE = {"float64": 1e-9, "float32": 5e-5}


EXTXYZ = 1e-7  # extxyz files hold 8 significant digits


def close(got, want, dtype, at_least=0.0):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert np.max(np.abs(got - want)) <= max(TOLERANCE[dtype], at_least) * max(np.max(np.abs(want)), 1.0)


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """(fixture name, head or None, dtype) -> mlpot model file written by ``mlpot import mace``."""
    directory = tmp_path_factory.mktemp("imported")
    paths = {}
    cases = [(name, None, dtype) for name in CUAU for dtype in DTYPES]
    cases += [("ss_3heads_corr3", head, dtype) for head in ("pbe", "r2scan") for dtype in DTYPES]
    for name, head, dtype in cases:
        path = directory / f"{name}-{head}-{dtype}.model"
        assert main(["import", "mace", str(FIXTURES / f"{name}.model"), "-o", str(path), "--dtype", dtype] + (["--head", head] if head else [])) == 0
        paths[name, head, dtype] = path
    return paths


def mace_structures(name):
    """The fixture's structures, each with mace-torch's float64 and float32 results."""
    stored = dict(np.load(FIXTURES / f"{name}.npz"))
    structures = {}
    for structure in sorted({key.split(".")[0] for key in stored if key.endswith(".numbers")}):
        atoms = Atoms(numbers=stored[f"{structure}.numbers"], positions=stored[f"{structure}.positions"],
                      cell=stored[f"{structure}.cell"], pbc=stored[f"{structure}.pbc"])
        results = {dtype: {key.split(".")[-1]: value for key, value in stored.items() if key.startswith(f"{structure}.{dtype}.Default.")}
                   for dtype in DTYPES}
        structures[structure] = (atoms, results)
    return structures


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CUAU)
def test_calculator_gives_mace_numbers(imported, name, dtype):
    for structure, (atoms, mace) in mace_structures(name).items():
        atoms.calc = MLPotCalculator(imported[name, None, dtype], dtype=dtype)
        close(atoms.get_potential_energy(), mace[dtype]["energy"], dtype)
        close(atoms.get_forces(), mace[dtype]["forces"], dtype)
        close(atoms.get_potential_energies(), mace[dtype]["node_energy"], dtype)
        if atoms.pbc.all():
            close(atoms.get_stress(), mace[dtype]["stress"], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_md_runs_an_imported_model(imported, tmp_path, dtype):
    atoms = mace_structures("ss_trained_emt_cuau")["bulk"][0]
    write(tmp_path / "bulk.xyz", atoms)
    assert main(["md", "--model", str(imported["ss_trained_emt_cuau", None, dtype]), "--structure", str(tmp_path / "bulk.xyz"),
                 "--steps", "4", "--interval", "2", "--temperature", "300", "--dtype", dtype,
                 "--output", str(tmp_path / "md.xyz"), "--log", str(tmp_path / "md.csv")]) == 0
    frames = read(tmp_path / "md.xyz", ":")
    assert len(frames) == 3
    assert not np.allclose(frames[-1].positions, frames[0].positions)
    first = frames[0].copy()
    first.calc = MLPotCalculator(imported["ss_trained_emt_cuau", None, "float64"])
    close(frames[0].get_potential_energy(), first.get_potential_energy(), "float32")  # float32 run vs float64


@pytest.mark.parametrize("dtype", DTYPES)
def test_eval_of_mace_labels_gives_mace_numbers(imported, tmp_path, dtype):
    """Labelled with mace-torch's own results, the imported model's errors are its rounding."""
    frames = []
    for atoms, mace in mace_structures("ss_zbl_agnesi_cuau").values():
        atoms.info["energy"] = float(mace["float64"]["energy"])
        atoms.arrays["forces"] = mace["float64"]["forces"]
        frames.append(atoms)
    write(tmp_path / "labelled.xyz", frames, format="extxyz")
    assert main(["eval", "--model", str(imported["ss_zbl_agnesi_cuau", None, dtype]), "--data", str(tmp_path / "labelled.xyz"),
                 "--output", str(tmp_path / "predicted.xyz")]) == 0
    predicted = read(tmp_path / "predicted.xyz", ":")
    assert len(predicted) == len(frames)
    for got, want in zip(predicted, frames):
        close(got.info["mlpot_energy"], want.info["energy"], dtype, EXTXYZ)
        close(got.arrays["mlpot_forces"], want.arrays["forces"], dtype, EXTXYZ)


@pytest.mark.parametrize("dtype", DTYPES)
def test_committee_of_two_imported_heads(imported, tmp_path, dtype):
    """Two heads of one mace file, imported separately: the calculator's committee is their mean
    and spread, and ``mlpot select`` ranks frames by it."""
    members = [imported["ss_3heads_corr3", head, dtype] for head in ("pbe", "r2scan")]
    atoms = mace_structures("ss_3heads_corr3")["molecule"][0]
    single = []
    for member in members:
        copy = atoms.copy()
        copy.calc = MLPotCalculator(member, dtype=dtype)
        single.append((copy.get_potential_energy(), copy.get_forces()))
    atoms.calc = MLPotCalculator(members, dtype=dtype)
    close(atoms.get_potential_energy(), np.mean([energy for energy, _ in single]), dtype)
    close(atoms.get_forces(), np.mean([forces for _, forces in single], axis=0), dtype)
    assert atoms.calc.results["energy_std"] == pytest.approx(abs(single[0][0] - single[1][0]) / 2, rel=1e-3)
    pool = []
    for seed in range(3):
        frame = atoms.copy()
        frame.rattle(0.05 * (seed + 1), seed=seed)
        pool.append(frame)
    write(tmp_path / "pool.xyz", pool)
    out = tmp_path / "chosen.xyz"
    assert main(["select", "--model", *map(str, members), "--pool", str(tmp_path / "pool.xyz"), "-n", "1", "-o", str(out)]) == 0
    assert len(read(out, ":")) == 1
    assert len((tmp_path / "chosen_scores.csv").read_text().splitlines()) == 1 + len(pool)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CUAU)
def test_lammps_export_equals_the_calculator(imported, tmp_path, name, dtype):
    """The export (LAMMPS's ghosts emulated as in test_export.py) gives the calculator's energy,
    forces and virial, and these are mace's."""
    atoms, mace = mace_structures(name)["bulk"]
    model = mlpot.load_model(imported[name, None, dtype])
    atoms.calc = MLPotCalculator(model, dtype=dtype)
    energy, forces, stress = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress(voigt=False)
    close(energy, mace[dtype]["energy"], dtype)
    module = torch.jit.load(str(export_lammps(model, tmp_path / "model.pt", dtype=dtype)))
    positions, numbers, owners, local = domain_with_ghosts(atoms, list(range(len(atoms))), model.num_interactions * model.r_max)
    out = run_exported(module, positions, numbers, local, model.r_max, getattr(torch, dtype))
    exported_forces = np.zeros_like(forces)
    np.add.at(exported_forces, owners, out["forces"].double().numpy())  # ghost forces back to their atoms
    close(float(out["energy"]), energy, dtype)
    close(exported_forces, forces, dtype)
    close(full_3x3_to_voigt_6_stress(-out["virial"].double().numpy() / atoms.get_volume()), mace[dtype]["stress"], dtype)


def test_lammps_export_of_a_committee_of_imported_heads(imported, tmp_path):
    members = [imported["ss_3heads_corr3", head, "float64"] for head in ("pbe", "r2scan")]
    assert main(["export", "--model", str(members[0]), "-o", str(tmp_path / "single.pt")]) == 0  # the CLI path
    committee = mlpot.load_model(members)
    atoms = mace_structures("ss_3heads_corr3")["molecule"][0]
    atoms.calc = MLPotCalculator(members)
    module = torch.jit.load(str(export_lammps(committee, tmp_path / "committee.pt")))
    out = run_exported(module, atoms.positions, atoms.numbers, np.ones(len(atoms), dtype=bool), committee.r_max)
    close(float(out["energy"]), atoms.get_potential_energy(), "float64")
    close(out["forces"].numpy(), atoms.get_forces(), "float64")
