"""Scattering observables from an MD trajectory.

  mlpot analyze TRAJECTORY -o DIR [--observables auto|rdf sq vdos msd sqw] [--skip N] [--every K]
                [--timestep FS] [--types Cu Au] [--sqw-q Q ...] [--compare FILE --compare-with sq-neutron]

TRAJECTORY is any ASE-readable file: extxyz as `mlpot md` writes it (velocities and times
included), ASE .traj, LAMMPS text dumps (metal units). Writes CSV tables with units in their
headers, a PNG per observable and summary.json into DIR, all after the whole analysis succeeded.
"""

import argparse
from pathlib import Path

from mlpot.analysis.settings import COMPARABLE, OBSERVABLES, AnalysisSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = AnalysisSettings()
    parser.add_argument("trajectory", help="trajectory file (any ASE format; LAMMPS dumps with --format lammps-dump-text if not guessed)")
    parser.add_argument("-o", "--output", required=True, help="directory for the tables, plots and summary.json")
    parser.add_argument("--observables", nargs="+", default=["auto"], choices=("auto",) + OBSERVABLES, metavar="NAME",
                        help=f"auto (default) or any of {', '.join(OBSERVABLES)}")
    parser.add_argument("--format", help="ASE format name when the file name does not tell (e.g. lammps-dump-text)")
    parser.add_argument("--skip", type=int, default=0, help="frames to leave out at the start (equilibration)")
    parser.add_argument("--every", type=int, default=1, help="use every k-th frame")
    parser.add_argument("--timestep", type=float, help="fs per MD step (frames with step numbers) or between frames, where the file has no times")
    parser.add_argument("--types", "--elements", dest="types", nargs="+", metavar="ELEMENT",
                        help="element of each LAMMPS atom type, in type order")
    parser.add_argument("--r-max", type=float, help="g(r) range, Å (default: half the smallest cell width, at most 10)")
    parser.add_argument("--dr", type=float, default=defaults.dr, help="g(r) bin width, Å")
    parser.add_argument("--q-max", type=float, default=defaults.q_max, help="largest |Q| of S(Q) and of --sqw-q, 1/Å")
    parser.add_argument("--dq", type=float, default=defaults.dq, help="|Q| bin width of S(Q) and shell width of S(Q,w), 1/Å")
    parser.add_argument("--q-points", type=int, default=defaults.q_points, help="most reciprocal-lattice points in the S(Q) direct sum")
    parser.add_argument("--window", type=int, default=defaults.window, help="frames per block of the VDOS, MSD and S(Q,w)")
    parser.add_argument("--msd-fit", type=float, nargs=2, metavar=("START", "END"), help="diffusion fit window, ps (default 20-80%% of the window)")
    parser.add_argument("--sqw-q", type=float, nargs="+", default=[], metavar="Q", help="|Q| values (1/Å) for S(Q, w)")
    parser.add_argument("--compare", type=Path, help="two-column experimental S(Q) or G(r), or another run's sq.csv / rdf.csv")
    parser.add_argument("--compare-with", default=defaults.compare_with, choices=sorted(COMPARABLE), help="the observable --compare holds")


def run(args: argparse.Namespace) -> int:
    from mlpot.analysis.analyze import analyze
    from mlpot.analysis.trajectory import TrajectorySource
    from mlpot.files import check_input_file, check_output_directory

    settings = AnalysisSettings(observables=args.observables, r_max=args.r_max, dr=args.dr, q_max=args.q_max, dq=args.dq,
                                q_points=args.q_points, window=args.window, msd_fit=tuple(args.msd_fit) if args.msd_fit else None,
                                sqw_q=args.sqw_q, compare=args.compare, compare_with=args.compare_with)
    if args.compare is not None:
        check_input_file(args.compare, "--compare file")
    check_output_directory(args.output, "-o")
    source = TrajectorySource(Path(args.trajectory), format=args.format, skip=args.skip, every=args.every,
                              timestep_fs=args.timestep, types=args.types)
    written = analyze(source, settings, Path(args.output))
    print(f"wrote {len(written)} files to {args.output}: {', '.join(p.name for p in written)}")
    return 0
