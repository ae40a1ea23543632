"""The ``mlpot`` command: subcommands from a name -> module table.

Each subcommand module provides ``add_arguments(parser)`` and ``run(args) -> int``. A user
mistake (:class:`MLPotError`) prints one line and exits 2; ``--debug`` shows the traceback.

Only the module of the command being run is imported, and a command module imports at its top
nothing but the standard library and light modules of names and settings (:mod:`mlpot.choices`,
``mlpot.*.settings``): torch, torch-geometric, ASE, scipy and matplotlib (seconds) load in its
``run()``, so ``--help``, ``--version`` and argument errors answer at once
(tests/test_startup.py, benchmarks/startup/).
"""

import argparse
import importlib
import sys
from typing import Collection, List, Optional

from mlpot.errors import MLPotError

# name -> (module, one-line help)
SUBCOMMANDS = {
    "train": ("mlpot.cli.train", "train a model from a YAML config"),
    "eval": ("mlpot.cli.eval", "evaluate a model on a labelled file"),
    "md": ("mlpot.cli.md", "run molecular dynamics with a trained potential"),
    "select": ("mlpot.cli.select", "choose the pool frames where a committee disagrees most (active learning)"),
    "export": ("mlpot.cli.export", "export a potential for LAMMPS (TorchScript)"),
    "import": ("mlpot.cli.import_mace", "import a model of another package (mace-torch) as an mlpot model"),
    "data": ("mlpot.cli.data", "convert and inspect datasets"),
    "backmap": ("mlpot.cli.backmap", "restore all-atom structures from coarse-grained frames"),
    "lammps": ("mlpot.cli.lammps", "build the LAMMPS plugin pair style"),
    "predict": ("mlpot.cli.predict", "orbital energies and HOMO-LUMO gaps from a Hamiltonian model"),
    "analyze": ("mlpot.cli.analyze", "g(r), S(Q), VDOS, MSD and S(Q, w) from an MD trajectory"),
    "phonons": ("mlpot.cli.phonons", "phonon bands, DOS and thermal properties of a crystal (phonopy)"),
    "ipi": ("mlpot.cli.ipi", "answer an i-PI server's force requests (path-integral MD through i-PI)"),
    "dynamics": ("mlpot.cli.dynamics", "learned long-time propagators (Action-Angle Networks) of a molecule's vibrations"),
}


class _Parser(argparse.ArgumentParser):
    """argparse with mlpot's error form: one line naming the command, exit 2 (not a usage
    block followed by the error); subparsers inherit the class."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser(load: Collection[str]) -> argparse.ArgumentParser:
    """The ``mlpot`` parser, with the arguments of the commands in ``load``; the others are
    listed with their help line only."""
    parser = _Parser(prog="mlpot", description="E(3)-equivariant machine-learning models for atoms")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of errors")
    parser.add_argument("--version", action="version", version=f"mlpot {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if name in load:
            module = importlib.import_module(module_name)
            sub.description = (module.__doc__ or help_text).strip()
            sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
            module.add_arguments(sub)
            sub.set_defaults(run=module.run)
    return parser


def _command(argv: List[str]) -> Optional[str]:
    """The subcommand named in argv: its first word that is not an option (the top-level
    options take no values), if that is a known command."""
    words = [word for word in argv if not word.startswith("-")]
    return words[0] if words and words[0] in SUBCOMMANDS else None


def _version() -> str:
    from mlpot import __version__

    return __version__


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command(argv)
    parser = build_parser([command] if command else [])
    args = parser.parse_args(argv)
    from mlpot.allocator import keep_freed_memory  # ctypes.util: not needed for --help

    keep_freed_memory()
    try:
        return int(args.run(args) or 0)
    except MLPotError as error:
        if args.debug:
            raise
        print(f"mlpot: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("mlpot: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
