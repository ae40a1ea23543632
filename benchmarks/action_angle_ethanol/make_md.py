"""Low-temperature NVE MD of ethanol with the shipped potential, and its harmonic normal modes.

  OMP_NUM_THREADS=1 python benchmarks/action_angle_ethanol/make_md.py [--temperatures 10 30 50 100]
      [--steps 12000] [--out runs/action_angle_ethanol]

The potential is member 0 of models/ethanol-rmd17 alone (a third of the committee's mean's cost
per force call, 12 ms against 46 ms here; one member is as conservative as the mean). From the
molecule relaxed with it (BFGS to 1e-4 eV/Å), its finite-difference Hessian gives the harmonic
normal modes (modes.json). Each run starts at that minimum with Maxwell-Boltzmann velocities at
2T, drift and spin removed (mlpot md's start), so equipartition settles the kinetic temperature
near T; velocity Verlet at 0.5 fs, a frame (positions, velocities, time_ps) every 2 steps (1 fs,
five frames per period of the fastest mode, the O-H stretch). Writes md-<T>K.extxyz and
summary.json (mean temperature and energy drift of each run).
"""

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
from ase.io import read

from mlpot.calculators import MLPotCalculator
from mlpot.dynamics.molecule import molecule_normal_modes
from mlpot.md.driver import run_md
from mlpot.md.settings import MDSettings
from mlpot.models.io import load_model

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "ethanol-rmd17" / "ethanol-rmd17.model"
START = ROOT / "examples" / "structures" / "ethanol.xyz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--temperatures", type=float, nargs="+", default=[10.0, 30.0, 50.0, 100.0])
    parser.add_argument("--steps", type=int, default=12000, help="MD steps of 0.5 fs per temperature")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "action_angle_ethanol")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    member = copy.deepcopy(load_model(MODEL).members[0])
    calculator = MLPotCalculator(member, dtype="float64")
    normal = molecule_normal_modes(read(START), calculator)
    minimum = normal.reference
    (args.out / "modes.json").write_text(json.dumps({
        "model": f"{MODEL.relative_to(ROOT)}, member 0",
        "wavenumbers_cm-1": normal.wavenumbers.tolist(),
        "minimum_A": minimum.tolist(),
        "numbers": normal.numbers.tolist(),
    }, indent=1))
    print("harmonic wavenumbers (cm^-1):", " ".join(f"{w:.0f}" for w in normal.wavenumbers))

    summary = {}
    for temperature in args.temperatures:
        atoms = read(START)
        atoms.positions = minimum
        atoms.calc = calculator
        settings = MDSettings(ensemble="nve", temperature=2.0 * temperature, timestep=0.5, steps=args.steps, interval=2, seed=1)
        path = args.out / f"md-{temperature:g}K.extxyz"
        started = time.perf_counter()
        result = run_md(atoms, settings, trajectory=path, progress=False)
        frames = read(path, ":")
        kinetic = [0.5 * np.sum(f.arrays["velocities"] ** 2 * f.get_masses()[:, None]) for f in frames]
        mean_temperature = 2.0 * np.mean(kinetic) / (3 * len(atoms) - 6) / 8.617333262e-5
        summary[f"{temperature:g}"] = {"frames": len(frames), "mean_kinetic_temperature_K": float(mean_temperature),
                                       "drift_meV_per_atom_per_ps": result.drift_mev_per_atom_per_ps,
                                       "seconds": time.perf_counter() - started}
        print(f"{temperature:g} K: {len(frames)} frames, mean T {mean_temperature:.1f} K, drift "
              f"{result.drift_mev_per_atom_per_ps:.2g} meV/atom/ps, {time.perf_counter() - started:.0f} s")
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
