"""``mlpot data qm``: Hamiltonian training data from PySCF (the ``qm`` extra).

  mlpot data qm --structures FILE --method pbe --basis def2-svp -o OUT [--workers 2]

Runs a closed-shell SCF on every frame of FILE (any ASE-readable file) and writes OUT/, a
directory with metadata.json and one frames/NNNNNN.npz per frame: atomic numbers, positions (Å),
the Fock/Kohn-Sham matrix H and the overlap S in PySCF's AO order (Eh, float64), the total energy
and the orbital energies from H and S. Workers run one SCF each on one thread; running the same
command again after an interruption computes only the missing frames.
"""

import argparse
import math
from pathlib import Path

from mlpot.errors import MLPotError
from mlpot.files import check_input_file, check_output_directory


def add_action(actions) -> None:
    qm = actions.add_parser("qm", help="H and S matrices from PySCF for every frame (Hamiltonian training data)")
    qm.add_argument("--structures", required=True, help="any ASE-readable file of molecules")
    qm.add_argument("--method", default="pbe", help="'hf' or a functional PySCF knows (default pbe)")
    qm.add_argument("--basis", default="def2-svp", help="basis set (default def2-svp)")
    qm.add_argument("-o", "--output", required=True, help="dataset directory to write (or to complete)")
    qm.add_argument("--workers", type=int, default=1, help="worker processes, one thread each (default 1)")
    qm.add_argument("--charge", type=int, default=0, help="molecular charge (closed shells only; default 0)")
    qm.add_argument("--grid-level", type=int, default=3, help="PySCF DFT grid level (default 3)")
    qm.add_argument("--conv-tol", type=float, default=1e-11, help="SCF energy tolerance in Eh (default 1e-11)")
    qm.add_argument("--max-cycles", type=int, default=100, help="SCF iterations before giving up on a frame (default 100)")


def run(args: argparse.Namespace) -> int:
    from mlpot.qm.generate import generate
    from mlpot.qm.pyscf_runner import QMSettings

    if args.max_cycles < 1:
        raise MLPotError(f"--max-cycles must be at least 1, got {args.max_cycles}")
    if not (math.isfinite(args.conv_tol) and args.conv_tol > 0):
        raise MLPotError(f"--conv-tol must be a positive energy in Eh, got {args.conv_tol:g}")
    if not 0 <= args.grid_level <= 9:
        raise MLPotError(f"--grid-level must be one of PySCF's levels 0 to 9, got {args.grid_level}")
    check_input_file(args.structures, "--structures")
    check_output_directory(args.output, "-o")
    settings = QMSettings(
        method=args.method,
        basis=args.basis,
        charge=args.charge,
        grid_level=args.grid_level,
        conv_tol=args.conv_tol,
        max_cycles=args.max_cycles,
    )
    metadata = generate(Path(args.structures), Path(args.output), settings, workers=args.workers)
    print(f"wrote {metadata['num_frames']} frames to {args.output} ({args.method}/{args.basis}, PySCF {metadata['pyscf_version']})")
    return 0
