"""``mlpot data md-openmm``: an all-atom MD trajectory for backmapping, split in time.

  mlpot data md-openmm OUTDIR [--structure PDB] [--ns 5] [--frames 10000] [--seed 1]

Writes OUTDIR/train.pdb, valid.pdb and test.pdb: contiguous 70/10/20 blocks of one amber14 +
OBC2 implicit-solvent Langevin run (300 K, 4 fs with hydrogen mass repartitioning). Without
--structure the molecule is capped alanine (ACE-ALA-NME) from MDAnalysisTests. Needs the
``cg`` extra (OpenMM, MDAnalysis, MDAnalysisTests).
"""

import argparse
import math

from mlpot.errors import MLPotError
from mlpot.files import check_input_file, check_output_directory


def add_action(actions) -> None:
    md = actions.add_parser("md-openmm", help="all-atom OpenMM trajectory split into train/valid/test PDB files")
    md.add_argument("output", help="directory for train.pdb, valid.pdb, test.pdb")
    md.add_argument("--structure", help="starting PDB (default: capped alanine from MDAnalysisTests)")
    md.add_argument("--ns", type=float, default=5.0, help="production length in ns (default 5)")
    md.add_argument("--frames", type=int, default=10000, help="frames saved, evenly spaced (default 10000)")
    md.add_argument("--equilibrate-ps", type=float, default=100.0, help="equilibration before saving (default 100 ps)")
    md.add_argument("--temperature", type=float, default=300.0, help="K (default 300)")
    md.add_argument("--seed", type=int, default=1)
    md.add_argument("--threads", type=int, default=1, help="OpenMM CPU threads (default 1)")


def run(args: argparse.Namespace) -> int:
    from mlpot.cg import md_openmm

    for option, value in (("--ns", args.ns), ("--temperature", args.temperature)):
        if not (math.isfinite(value) and value > 0):
            raise MLPotError(f"{option} must be positive, got {value:g}")
    if not (math.isfinite(args.equilibrate_ps) and args.equilibrate_ps >= 0):
        raise MLPotError(f"--equilibrate-ps must not be negative, got {args.equilibrate_ps:g}")
    if args.threads < 1:
        raise MLPotError(f"--threads must be at least 1, got {args.threads}")
    timestep_fs = 4.0
    total_steps = int(round(args.ns * 1e6 / timestep_fs))
    if args.frames < 3 or total_steps < args.frames:
        raise MLPotError(f"--frames must be at least 3 and at most the {total_steps} steps of {args.ns} ns")
    output = check_output_directory(args.output, "output directory")
    if args.structure:
        check_input_file(args.structure, "--structure")
    if any(output.glob("*.pdb")):
        raise MLPotError(f"{output} already holds PDB files; choose another directory")
    topology, positions = md_openmm.read_structure_pdb(args.structure) if args.structure else md_openmm.capped_alanine()
    steps_per_frame = total_steps // args.frames
    every = max(args.frames // 20, 1)

    def progress(done: int, seconds: float) -> None:
        if done % every == 0 or done == args.frames:
            rate = done * steps_per_frame * timestep_fs * 1e-6 / max(seconds, 1e-9) * 86400.0
            print(f"{done}/{args.frames} frames, {seconds / 60:.1f} min, {rate:.0f} ns/day", flush=True)

    trajectory = md_openmm.run_md(
        topology,
        positions,
        frames=args.frames,
        steps_per_frame=steps_per_frame,
        equilibration_steps=int(round(args.equilibrate_ps * 1e3 / timestep_fs)),
        temperature=args.temperature,
        timestep_fs=timestep_fs,
        seed=args.seed,
        threads=args.threads,
        progress=progress,
    )
    for path, count in md_openmm.write_splits(output, topology, trajectory):
        print(f"wrote {path} ({count} frames)")
    return 0
