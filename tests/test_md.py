"""The ASE calculator in MD and optimisation, neighbour-list reuse, and `mlpot md`."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms, units
from ase.build import bulk
from ase.filters import FrechetCellFilter
from ase.io import read
from ase.md.langevin import Langevin
from ase.md.nptberendsen import NPTBerendsen
from ase.optimize import BFGS, FIRE
from symmetry import evaluate

from mlpot import MLPotError
from mlpot.calculators import MLPotCalculator
from mlpot.md.driver import thermalize_momenta

ROOT = Path(__file__).resolve().parents[1]
DEMO_MODEL = ROOT / "models" / "cuau-emt-demo"
ALLOY = ROOT / "examples" / "structures" / "cuau-fcc-256.xyz"


def small_alloy(seed=0):
    """32 atoms of fcc Cu with a quarter Au, rattled."""
    atoms = bulk("Cu", "fcc", a=3.73, cubic=True) * (2, 2, 2)
    atoms.symbols[np.random.default_rng(seed).permutation(len(atoms))[:8]] = "Au"
    atoms.rattle(0.05, seed=seed)
    return atoms


@pytest.mark.usefixtures("kernel")
def test_stress_through_calculator_is_strain_derivative():
    atoms = small_alloy()
    atoms.calc = MLPotCalculator(DEMO_MODEL)
    stress = atoms.get_stress(voigt=False)
    numeric = np.zeros((3, 3))
    delta = 1e-5
    for a in range(3):
        for b in range(3):
            energies = []
            for sign in (1, -1):
                strained = atoms.copy()
                strain = np.eye(3)
                strain[a, b] += 0.5 * sign * delta
                strain[b, a] += 0.5 * sign * delta
                strained.set_cell(atoms.cell.array @ strain, scale_atoms=True)
                strained.calc = atoms.calc
                energies.append(strained.get_potential_energy())
            numeric[a, b] = (energies[0] - energies[1]) / (2 * delta) / atoms.get_volume()
    np.testing.assert_allclose(stress, numeric, atol=1e-8)


@pytest.mark.usefixtures("kernel")
def test_neighbour_reuse_matches_fresh_graphs_over_200_steps():
    atoms = small_alloy()
    calculator = MLPotCalculator(DEMO_MODEL, skin=1.0)
    atoms.calc = calculator
    thermalize_momenta(atoms, temperature_K=1200, rng=np.random.default_rng(1))
    model = calculator.model
    dynamics = Langevin(atoms, 4 * units.fs, temperature_K=1200, friction=0.02, fixcm=False, rng=np.random.default_rng(2))
    worst = {"energy": 0.0, "forces": 0.0, "stress": 0.0}

    def compare():
        fresh = evaluate(model, [atoms], stress=True)
        worst["energy"] = max(worst["energy"], abs(atoms.get_potential_energy() - fresh["energy"][0]))
        worst["forces"] = max(worst["forces"], np.abs(atoms.get_forces() - fresh["forces"]).max())
        worst["stress"] = max(worst["stress"], np.abs(atoms.get_stress(voigt=False) - fresh["stress"][0]).max())

    dynamics.attach(compare, interval=1)
    dynamics.run(200)
    assert worst["energy"] < 1e-10 and worst["forces"] < 1e-10 and worst["stress"] < 1e-12
    assert 1 < calculator.neighbour_list_builds < 100  # it rebuilt when atoms moved, and not every step


def test_cell_change_rebuilds_and_skin_zero_rebuilds_every_step():
    atoms = small_alloy()
    calculator = MLPotCalculator(DEMO_MODEL, skin=0.0)
    atoms.calc = calculator
    for step in range(3):
        atoms.positions[0, 0] += 0.01
        atoms.get_potential_energy()
    assert calculator.neighbour_list_builds == 3
    reuse = MLPotCalculator(DEMO_MODEL, skin=0.5)
    atoms.calc = reuse
    atoms.get_potential_energy()
    atoms.set_cell(atoms.cell.array * 1.001, scale_atoms=True)
    atoms.get_potential_energy()
    assert reuse.neighbour_list_builds == 2


@pytest.mark.usefixtures("kernel")
def test_works_with_ase_optimisers_cell_filter_and_npt():
    atoms = small_alloy(seed=3)
    atoms.calc = MLPotCalculator(DEMO_MODEL)
    for optimiser in (BFGS, FIRE):
        relaxed = atoms.copy()
        relaxed.calc = atoms.calc
        assert optimiser(relaxed, logfile=None).run(fmax=0.02, steps=300)
        assert np.abs(relaxed.get_forces()).max() < 0.02
    filtered = atoms.copy()
    filtered.calc = atoms.calc
    assert BFGS(FrechetCellFilter(filtered), logfile=None).run(fmax=0.02, steps=300)
    assert np.abs(filtered.get_stress()).max() < 5e-3  # eV/Å^3, under 1 GPa
    npt = atoms.copy()
    npt.calc = atoms.calc
    thermalize_momenta(npt, temperature_K=300, rng=np.random.default_rng(0))
    NPTBerendsen(npt, 2 * units.fs, temperature_K=300, pressure_au=units.bar, taut=100 * units.fs, taup=500 * units.fs, compressibility_au=1e-6 / units.bar).run(20)
    assert np.isfinite(npt.get_potential_energy())


@pytest.mark.usefixtures("kernel")
def test_per_atom_energies_sum_to_energy_and_dtype_choice():
    atoms = small_alloy()
    atoms.calc = MLPotCalculator(DEMO_MODEL, dtype="float32")
    assert atoms.calc.model.atomic_energies.dtype == torch.float32
    energies = atoms.get_potential_energies()
    assert energies.shape == (len(atoms),)
    assert energies.sum() == pytest.approx(atoms.get_potential_energy(), rel=1e-5)
    assert atoms.get_potential_energy() == pytest.approx(atoms.get_potential_energy(force_consistent=True))


def test_unknown_element_is_a_clear_error():
    atoms = Atoms("CuOH", positions=[[0, 0, 0], [2, 0, 0], [0, 2, 0]])
    atoms.calc = MLPotCalculator(DEMO_MODEL)
    with pytest.raises(MLPotError, match=r"structure contains H, O, which the model was not trained on \(model elements: Cu, Au\)"):
        atoms.get_potential_energy()


def test_bad_arguments_are_clear_errors(tmp_path):
    with pytest.raises(MLPotError, match="dtype must be one of"):
        MLPotCalculator(DEMO_MODEL, dtype="float16")
    with pytest.raises(MLPotError, match="does not exist"):
        MLPotCalculator(tmp_path / "missing.model")
    with pytest.raises(MLPotError, match="must hold exactly one .model file"):
        MLPotCalculator(tmp_path)


def mlpot_md(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "mlpot.cli.main", "md", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.mark.usefixtures("kernel")
def test_mlpot_md_writes_trajectory_log_and_drift(tmp_path):
    process = mlpot_md(
        "--model", DEMO_MODEL, "--structure", ALLOY, "--steps", 20, "--interval", 5, "--timestep", 2,
        "--output", tmp_path / "traj.xyz", "--log", tmp_path / "md.csv",
    )
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert "NVE energy drift" in stdout and "ns/day" in stdout
    frames = read(tmp_path / "traj.xyz", ":")
    assert [frame.info["step"] for frame in frames] == [0, 5, 10, 15, 20]
    assert frames[-1].get_forces().shape == (256, 3) and "velocities" in frames[-1].arrays
    rows = (tmp_path / "md.csv").read_text().splitlines()
    assert rows[0] == "step,time_ps,epot_eV,ekin_eV,etot_eV,temperature_K,pressure_bar,volume_A3"
    assert len(rows) == 6 and rows[-1].startswith("20,0.040000,")


@pytest.mark.parametrize("ensemble", ["nvt", "npt"])
def test_mlpot_md_thermostats(tmp_path, ensemble):
    process = mlpot_md("--model", DEMO_MODEL, "--structure", ALLOY, "--steps", 10, "--ensemble", ensemble, "--temperature", 500, "--log", tmp_path / "md.csv")
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert len((tmp_path / "md.csv").read_text().splitlines()) == 3


def test_mlpot_md_stops_cleanly_on_sigterm(tmp_path):
    process = mlpot_md(
        "--model", DEMO_MODEL, "--structure", ALLOY, "--steps", 100000, "--interval", 1,
        "--output", tmp_path / "traj.xyz", "--log", tmp_path / "md.csv",
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        log = tmp_path / "md.csv"
        if log.is_file() and len(log.read_text().splitlines()) >= 4:
            break
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert "stopped by SIGTERM after step" in stdout
    rows = (tmp_path / "md.csv").read_text().splitlines()
    frames = read(tmp_path / "traj.xyz", ":")
    last_step = int(rows[-1].split(",")[0])
    assert frames[-1].info["step"] == last_step >= 3
    assert f"after step {last_step};" in stdout


def test_mlpot_md_refuses_bad_input(tmp_path):
    process = mlpot_md("--model", DEMO_MODEL, "--structure", ROOT / "examples" / "structures" / "ethanol.xyz", "--steps", 1)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 2 and "which the model was not trained on" in stderr
    process = mlpot_md("--model", DEMO_MODEL, "--structure", ROOT / "examples" / "structures" / "ethanol.xyz", "--ensemble", "npt")
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 2
    missing = mlpot_md("--model", DEMO_MODEL, "--structure", tmp_path / "none.xyz")
    _, stderr = missing.communicate(timeout=300)
    assert missing.returncode == 2 and "does not exist" in stderr


@pytest.mark.slow
@pytest.mark.usefixtures("kernel")
def test_nve_with_shipped_ethanol_model_conserves_energy():
    """1 ps of NVE, 300 K, 0.5 fs, float64.

    Bounds: velocity Verlet's total energy fluctuates by about (omega dt)^2 of the kinetic
    energy; for the fastest mode (C-H stretch, ~11 fs period) that is a few per cent of
    3/2 kT = 39 meV/atom, so 0.5 meV/atom bounds the fluctuation. A symplectic integrator with
    conservative, smooth forces has no systematic drift; non-conservative forces or a jump at
    the cutoff would show one. 0.05 meV/atom/ps (2 kT per atom over a nanosecond) is ten times
    the drift measured and above the fit's noise over 1 ps.
    """
    from mlpot.md.driver import MDSettings, run_md

    atoms = read(ROOT / "examples" / "structures" / "ethanol.xyz")
    atoms.calc = MLPotCalculator(ROOT / "models" / "ethanol-rmd17", dtype="float64")
    settings = MDSettings(ensemble="nve", temperature=300, timestep=0.5, steps=2000, interval=5, seed=0)
    summary = run_md(atoms, settings, progress=False)
    assert summary.steps_done == 2000
    assert abs(summary.drift_mev_per_atom_per_ps) < 0.05
    assert summary.fluctuation_mev_per_atom < 0.5
    assert 50 < atoms.get_temperature() < 400  # it moved, and did not blow up
