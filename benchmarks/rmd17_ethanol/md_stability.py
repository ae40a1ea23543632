"""MD stability check of a molecular potential: NVE from a reference geometry, bonds watched.

    python md_stability.py MODEL STRUCTURE OUT_DIR [--temperature 500] [--time-ps 100]

Starts from frame --index of STRUCTURE (an rMD17 test frame: a 500 K DFT geometry) with
Maxwell-Boltzmann velocities (no drift, no spin), equilibrates for --equilibrate-ps with a
Langevin thermostat at --temperature, then runs NVE with velocity Verlet for --time-ps, in
float64 through `mlpot md`'s driver, and writes OUT_DIR/md.xyz, md.csv and stability.json (of
the NVE part; the bonds are watched from the start of the NVE part).

A bond is a pair closer than 1.2 times the sum of ASE's natural cutoffs (covalent radii) in the
starting geometry. The run counts as stable when no bond ever stretches or shrinks by more than
--max-deviation Å from its starting length (0.5 Å: the criterion of Fu et al., "Forces are not
enough", TMLR 2023) and no atom pair that was not bonded comes closer than 0.75 Å. The energy drift is the slope of a
linear fit of the total energy (meV/atom/ps); the fluctuation the RMS about it.
"""

import argparse
import json
from pathlib import Path

import numpy as np
from ase.io import read
from ase.neighborlist import natural_cutoffs, neighbor_list

from mlpot.calculators import MLPotCalculator
from mlpot.data.dataset import read_structure
from mlpot.md.driver import MDSettings, describe, run_md

BOND_FACTOR = 1.2  # rMD17 geometries are 500 K snapshots: bonds may start stretched
CLOSE_CONTACT = 0.75  # Å: a non-bonded pair this close means the molecule has collapsed


def bonded_pairs(atoms) -> np.ndarray:
    """[n_bonds, 2] index pairs (i < j) within the natural-cutoff sum in this geometry."""
    first, second = neighbor_list("ij", atoms, natural_cutoffs(atoms, mult=BOND_FACTOR))
    keep = first < second
    return np.stack([first[keep], second[keep]], axis=1)


def pair_distances(positions: np.ndarray) -> np.ndarray:
    """[frames, n, n] distances of positions [frames, n, 3]."""
    return np.linalg.norm(positions[:, :, None, :] - positions[:, None, :, :], axis=-1)


def check_bonds(frames, times_ps: np.ndarray, max_deviation: float) -> dict:
    """Largest bond-length deviation, closest non-bonded contact, and when the first failure came."""
    bonds = bonded_pairs(frames[0])
    distances = pair_distances(np.stack([frame.positions for frame in frames]))  # [frames, n, n]
    bond_lengths = distances[:, bonds[:, 0], bonds[:, 1]]  # [frames, n_bonds]
    deviation = np.abs(bond_lengths - bond_lengths[0])  # [frames, n_bonds]
    non_bonded = np.ones(distances.shape[1:], dtype=bool)
    np.fill_diagonal(non_bonded, False)
    non_bonded[bonds[:, 0], bonds[:, 1]] = non_bonded[bonds[:, 1], bonds[:, 0]] = False
    closest = np.where(non_bonded, distances, np.inf).min(axis=(1, 2))  # [frames]
    failed = (deviation.max(axis=1) > max_deviation) | (closest < CLOSE_CONTACT)
    worst_frame, worst_bond = np.unravel_index(np.argmax(deviation), deviation.shape)
    symbols = frames[0].get_chemical_symbols()
    i, j = bonds[worst_bond]
    return {
        "bonds": len(bonds),
        "max_bond_deviation_A": float(deviation.max()),
        "worst_bond": f"{symbols[i]}{i}-{symbols[j]}{j}",
        "worst_bond_time_ps": float(times_ps[worst_frame]),
        "closest_non_bonded_A": float(closest.min()),
        "first_failure_ps": float(times_ps[np.argmax(failed)]) if failed.any() else None,
        "stable": not bool(failed.any()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("structure")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=500.0)
    parser.add_argument("--time-ps", type=float, default=100.0)
    parser.add_argument("--equilibrate-ps", type=float, default=5.0, help="Langevin at --temperature before NVE")
    parser.add_argument("--timestep", type=float, default=0.5, help="fs")
    parser.add_argument("--interval", type=int, default=20, help="steps between written frames")
    parser.add_argument("--max-deviation", type=float, default=0.5, help="Å")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    args.out_dir.mkdir(parents=True, exist_ok=True)
    atoms = read_structure(args.structure, args.index)
    atoms.calc = MLPotCalculator(args.model, dtype="float64")
    common = dict(temperature=args.temperature, timestep=args.timestep, interval=args.interval, seed=args.seed)
    if args.equilibrate_ps > 0:
        equilibration = MDSettings(ensemble="nvt", steps=round(args.equilibrate_ps * 1000.0 / args.timestep), **common)
        run_md(atoms, equilibration, progress=False)
    settings = MDSettings(ensemble="nve", steps=round(args.time_ps * 1000.0 / args.timestep), **common)  # keeps the momenta
    summary = run_md(atoms, settings, args.out_dir / "md.xyz", args.out_dir / "md.csv", progress=False)
    print(describe(summary, settings))

    frames = read(args.out_dir / "md.xyz", ":")
    log = np.genfromtxt(args.out_dir / "md.csv", delimiter=",", names=True)
    result = {
        "model": str(args.model),
        "structure": f"{args.structure}@{args.index}",
        "atoms": len(atoms),
        "temperature_K": args.temperature,
        "equilibration_ps": args.equilibrate_ps,
        "temperature_mean_K": float(log["temperature_K"].mean()),
        "timestep_fs": args.timestep,
        "steps_done": summary.steps_done,
        "time_ps": summary.steps_done * args.timestep / 1000.0,
        "drift_meV_per_atom_per_ps": summary.drift_mev_per_atom_per_ps,
        "fluctuation_meV_per_atom": summary.fluctuation_mev_per_atom,
        "max_total_energy_change_meV_per_atom": float(1000.0 * np.abs(log["etot_eV"] - log["etot_eV"][0]).max() / len(atoms)),
        "wall_seconds": summary.wall_seconds,
        **check_bonds(frames, log["time_ps"], args.max_deviation),
    }
    (args.out_dir / "stability.json").write_text(json.dumps(result, indent=2) + "\n")
    verdict = "stable" if result["stable"] else f"UNSTABLE from {result['first_failure_ps']} ps"
    print(
        f"{verdict}: {result['time_ps']:g} ps, mean {result['temperature_mean_K']:.0f} K, largest bond deviation "
        f"{result['max_bond_deviation_A']:.3f} Å ({result['worst_bond']}), closest non-bonded pair "
        f"{result['closest_non_bonded_A']:.2f} Å, drift {result['drift_meV_per_atom_per_ps']:+.4f} meV/atom/ps"
    )


if __name__ == "__main__":
    main()
