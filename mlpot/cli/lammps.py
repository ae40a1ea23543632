"""Build the LAMMPS plugin that provides ``pair_style mlpot``.

  mlpot lammps build [--build-dir DIR] [--jobs N]

Prints the ``plugin load`` line for LAMMPS input files; the build itself is
:func:`mlpot.export.lammps_plugin.build_plugin`.
"""

import argparse
import datetime


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    build = actions.add_parser("build", help="compile the pair style plugin libmlpot_pair.so")
    build.add_argument("--build-dir", help="where to build (default: a folder under ~/.cache/mlpot/lammps)")
    build.add_argument("--jobs", type=int, help="parallel compile jobs (default: all cores)")
    build.add_argument("--source-dir", help="pair style sources (default: those installed with mlpot)")


def run(args: argparse.Namespace) -> int:
    from mlpot.export.lammps_plugin import build_plugin

    started = datetime.datetime.now()
    plugin = build_plugin(args.build_dir, args.source_dir, args.jobs)
    seconds = (datetime.datetime.now() - started).total_seconds()
    print(f"built {plugin} in {seconds:.0f} s; put this line in LAMMPS input files before pair_style mlpot:")
    print(f"plugin load {plugin}")
    return 0
