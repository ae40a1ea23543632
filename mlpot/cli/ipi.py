"""Serve a potential's energies and forces to an i-PI server (path-integral MD and more).

  mlpot ipi --model M --address unix:NAME|HOST:PORT --structure FILE [--dtype float64] [--timeout 60]

i-PI runs the dynamics; this client answers its force requests until i-PI ends the run. The
structure gives the species and periodicity of the atoms i-PI sends (the protocol carries
positions and the cell only): the same atoms, in the same order, as i-PI's input. unix:NAME is
the socket /tmp/ipi_NAME of <ffsocket mode="unix"><address>NAME</address>. The client needs no
i-PI installed; the server does (pip install 'mlpot[ipi]').
"""

import argparse

from mlpot.choices import DTYPE_NAMES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model file, or a directory holding one")
    parser.add_argument("--address", required=True, help="i-PI's socket: unix:NAME (/tmp/ipi_NAME) or HOST:PORT")
    parser.add_argument("--structure", required=True, help="the atoms i-PI runs, in its order (any ASE format): species and periodicity")
    parser.add_argument("--index", type=int, default=0, help="frame of the structure file (default 0)")
    parser.add_argument("--dtype", default="float64", choices=DTYPE_NAMES)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the server to accept the connection (default 60)")


def run(args: argparse.Namespace) -> int:
    from mlpot.calculators import MLPotCalculator
    from mlpot.data.dataset import read_structure
    from mlpot.data.geometry import check_geometry
    from mlpot.devices import check_device
    from mlpot.engines.ipi import check_timeout, parse_address, serve
    from mlpot.files import check_input_file
    from mlpot.models.io import resolve_model_path

    address = parse_address(args.address)
    check_timeout(args.timeout)
    check_device(args.device, "--device")
    check_input_file(args.structure, "--structure")
    atoms = read_structure(args.structure, args.index)
    where = f"{args.structure}, frame {args.index}"
    check_geometry(atoms, where)
    model_path = resolve_model_path(args.model)
    atoms.calc = MLPotCalculator(model_path, device=args.device, dtype=args.dtype)
    print(f"{len(atoms)} atoms, model {model_path}: serving i-PI at {address}", flush=True)
    evaluations = serve(atoms, address, args.timeout, where)
    print(f"i-PI ended the run after {evaluations} force evaluations")
    return 0
