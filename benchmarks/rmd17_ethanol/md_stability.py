"""MD stability check of a molecular potential: NVE from a reference geometry, bonds watched.

    python md_stability.py MODEL STRUCTURE OUT_DIR [--temperature 500] [--time-ps 100]

Starts from frame --index of STRUCTURE (an rMD17 test frame: a 500 K DFT geometry) with
Maxwell-Boltzmann velocities (no drift, no spin), equilibrates for --equilibrate-ps with a
Langevin thermostat at --temperature (OUT_DIR/equilibrated.xyz), then runs NVE with velocity
Verlet for --time-ps, in float64 through `mlpot md`'s driver, in pieces of --piece-ps
(OUT_DIR/nve-KKK.xyz, .csv, .json), and writes OUT_DIR/stability.json of the whole NVE part
(the bonds are watched from its start). Every piece starts from the positions and velocities
of the previous piece's last frame as written (full precision), so the same command run again
after an interruption skips the finished pieces and gives the numbers an uninterrupted run gives
(a larger --time-ps extends a finished check; other settings are refused: OUT_DIR/settings.json).

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
from ase import Atoms
from ase.io import read
from ase.neighborlist import natural_cutoffs, neighbor_list

from mlpot.calculators import MLPotCalculator
from mlpot.data.dataset import read_structure
from mlpot.md.driver import MDSettings, describe, energy_drift, run_md

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


def equilibrated(args, calculator, common: dict):
    """The start of the NVE part: --index of the structure after the Langevin run, kept in
    OUT_DIR/equilibrated.xyz (positions and velocities) so that a rerun starts from it."""
    path = args.out_dir / "equilibrated.xyz"
    if not path.is_file():
        atoms = read_structure(args.structure, args.index)
        atoms.calc = calculator
        steps = round(args.equilibrate_ps * 1000.0 / args.timestep)
        partial = path.with_suffix(".partial.xyz")
        stop_if_interrupted(run_md(atoms, MDSettings(ensemble="nvt", steps=steps, **common), partial, progress=False))
        partial.rename(path)
    return restart_state(read(path, -1))


def stop_if_interrupted(summary) -> None:
    if summary.interrupted:
        raise SystemExit(f"interrupted ({summary.interrupted}); run the same command again to continue")


def restart_state(frame):
    """Positions and velocities of a written trajectory frame (full precision), nothing else."""
    atoms = Atoms(frame.numbers, positions=frame.positions, cell=frame.cell, pbc=frame.pbc)
    atoms.set_velocities(frame.arrays["velocities"])
    return atoms


def claim_out_dir(args) -> None:
    """Pieces are reused only by the check that wrote them (--time-ps may grow between runs)."""
    settings = {key: str(value) for key, value in sorted(vars(args).items()) if key not in ("out_dir", "time_ps")}
    path = args.out_dir / "settings.json"
    if path.is_file() and json.loads(path.read_text()) != settings:
        raise SystemExit(f"{args.out_dir} holds a check with other settings ({path}); use another OUT_DIR")
    path.write_text(json.dumps(settings, indent=2) + "\n")


def finished(piece: Path, steps: int) -> bool:
    record = piece.with_suffix(".json")
    return record.is_file() and json.loads(record.read_text())["steps"] == steps


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
    parser.add_argument("--piece-ps", type=float, default=10.0, help="NVE is run in pieces of this length")
    args = parser.parse_args()

    args.out_dir.mkdir(parents=True, exist_ok=True)
    claim_out_dir(args)
    calculator = MLPotCalculator(args.model, dtype="float64")
    common = dict(temperature=args.temperature, timestep=args.timestep, interval=args.interval, seed=args.seed)
    start = equilibrated(args, calculator, common)
    total_steps = round(args.time_ps * 1000.0 / args.timestep)
    piece_steps = max(args.interval, round(args.piece_ps * 1000.0 / args.timestep) // args.interval * args.interval)
    frames, log, wall = [], [], 0.0
    for index, first_step in enumerate(range(0, total_steps, piece_steps)):
        steps = min(piece_steps, total_steps - first_step)
        piece = args.out_dir / f"nve-{index:03d}"
        if not finished(piece, steps):
            atoms = start.copy()
            atoms.calc = calculator
            settings = MDSettings(ensemble="nve", steps=steps, **common)  # keeps the momenta
            summary = run_md(atoms, settings, piece.with_suffix(".xyz"), piece.with_suffix(".csv"), progress=False)
            stop_if_interrupted(summary)
            piece.with_suffix(".json").write_text(json.dumps({"steps": summary.steps_done, "wall_seconds": summary.wall_seconds}))
            print(f"piece {index}: {describe(summary, settings)}", flush=True)
        piece_frames = read(piece.with_suffix(".xyz"), ":")
        piece_log = np.genfromtxt(piece.with_suffix(".csv"), delimiter=",", names=True)
        skip = 1 if index else 0  # a piece's first frame is the previous piece's last
        frames += piece_frames[skip:]
        log.append(np.stack([piece_log["time_ps"] + first_step * args.timestep / 1000.0, piece_log["etot_eV"],
                             piece_log["temperature_K"]], axis=1)[skip:])
        wall += json.loads(piece.with_suffix(".json").read_text())["wall_seconds"]
        start = restart_state(piece_frames[-1])
    log = np.concatenate(log)  # [frames, 3]: time_ps, etot_eV, temperature_K
    drift, fluctuation = energy_drift(log[:, 0], log[:, 1], len(start))
    steps_done = round(log[-1, 0] * 1000.0 / args.timestep)
    result = {
        "model": str(args.model),
        "structure": f"{args.structure}@{args.index}",
        "atoms": len(start),
        "temperature_K": args.temperature,
        "equilibration_ps": args.equilibrate_ps,
        "temperature_mean_K": float(log[:, 2].mean()),
        "timestep_fs": args.timestep,
        "steps_done": steps_done,
        "time_ps": steps_done * args.timestep / 1000.0,
        "drift_meV_per_atom_per_ps": drift,
        "fluctuation_meV_per_atom": fluctuation,
        "max_total_energy_change_meV_per_atom": float(1000.0 * np.abs(log[:, 1] - log[0, 1]).max() / len(start)),
        "wall_seconds": wall,
        **check_bonds(frames, log[:, 0], args.max_deviation),
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
