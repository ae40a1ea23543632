"""MD of liquid Cu3Au with a demo potential: does it stay a liquid or do atoms pass through each other?

    python benchmarks/demo_melt/run.py MODEL [MODEL ...] [--steps 2000] [--temperature 2000] [-o result.json]

MODEL is an mlpot model file or ``emt`` (ASE's EMT, which the demo was trained on: the reference liquid).

Starts from the 256-atom L1_2 Cu3Au crystal of examples/scattering (a = 3.70 Å, 2 % wider, a
liquid's density), Langevin NVT at --temperature (2 fs, friction 0.02/fs, seed 0) through
MLPotCalculator, one thread. Every 10 steps it records the closest pair of atoms (Å), the
potential energy per atom (eV) and the temperature; a run stops early when two atoms come
closer than 1.0 Å (collapsed). Prints one summary line per model and writes them all as JSON.
"""

import argparse
import json
import time

import numpy as np
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.md import velocitydistribution
from ase.md.langevin import Langevin

from mlpot.calculators import MLPotCalculator
from mlpot.data.geometry import closest_pair

# ASE 3.29 renamed MaxwellBoltzmannDistribution to thermalize_momenta (same arguments).
thermalize_momenta = getattr(velocitydistribution, "thermalize_momenta", None) or velocitydistribution.MaxwellBoltzmannDistribution

COLLAPSED = 1.0  # Å: closer than any Cu/Au pair in a real liquid (EMT's melt: > 2.0 Å)


def melt(model: str, steps: int, temperature: float) -> dict:
    atoms = bulk("Cu", "fcc", a=3.70, cubic=True)
    atoms.symbols[0] = "Au"
    atoms = atoms.repeat(4)
    atoms.set_cell(atoms.cell * 1.02, scale_atoms=True)
    atoms.calc = EMT() if model == "emt" else MLPotCalculator(model)
    thermalize_momenta(atoms, temperature_K=temperature, rng=np.random.default_rng(0))
    dynamics = Langevin(atoms, 2 * units.fs, temperature_K=temperature, friction=0.02 / units.fs, fixcm=False, rng=np.random.default_rng(0))
    records = []
    start = time.perf_counter()
    while dynamics.nsteps < steps:
        dynamics.run(10)
        pair = closest_pair(atoms, cutoff=3.0)  # some pair of a dense liquid is always nearer than 3 Å
        distance = 3.0 if pair is None else pair[2]
        records.append({"step": dynamics.nsteps, "closest_pair": round(float(distance), 4),
                        "energy_per_atom": round(float(atoms.get_potential_energy()) / len(atoms), 5),
                        "temperature": round(float(atoms.get_temperature()), 1)})
        if distance < COLLAPSED:
            break
    second_half = [r for r in records if r["step"] > records[-1]["step"] / 2]
    return {
        "model": model,
        "temperature_K": temperature,
        "steps": records[-1]["step"],
        "collapsed": records[-1]["closest_pair"] < COLLAPSED,
        "closest_pair_min": min(r["closest_pair"] for r in records),
        "energy_per_atom_first_last": [records[0]["energy_per_atom"], records[-1]["energy_per_atom"]],
        "energy_per_atom_min": min(r["energy_per_atom"] for r in records),
        "mean_temperature_second_half": round(float(np.mean([r["temperature"] for r in second_half])), 1),
        "seconds": round(time.perf_counter() - start, 1),
        "records": records,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--temperature", type=float, default=2000.0)
    parser.add_argument("-o", "--output", default="result.json")
    args = parser.parse_args()
    results = []
    for model in args.models:
        result = melt(model, args.steps, args.temperature)
        print(f"{model}: {result['steps']} steps at {args.temperature:.0f} K, collapsed {result['collapsed']}, "
              f"closest pair {result['closest_pair_min']:.2f} Å, E/atom {result['energy_per_atom_first_last'][0]:.3f} -> "
              f"{result['energy_per_atom_first_last'][1]:.3f} eV (min {result['energy_per_atom_min']:.3f}), "
              f"T {result['mean_temperature_second_half']:.0f} K, {result['seconds']:.0f} s", flush=True)
        results.append(result)
    with open(args.output, "w") as stream:
        json.dump(results, stream, indent=1)


if __name__ == "__main__":
    main()
