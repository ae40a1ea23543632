"""Import a model of another package as an mlpot model.

  mlpot import mace IN.model -o OUT.model [--head NAME] [--dtype float64|float32]

IN.model is a mace-torch model file as mace's training writes it (torch.save of the model); it is read
without mace-torch and without running code from the file. OUT.model gives mace's energies, forces,
stress and per-atom energies. A multi-head model needs --head unless it has a head named Default.
"""

import argparse

from mlpot.files import check_input_file, check_output_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    mace = actions.add_parser("mace", help="a mace-torch .model file", description=__doc__.strip())
    mace.add_argument("source", metavar="IN.model", help="mace-torch model file (torch.save of the model)")
    mace.add_argument("-o", "--output", required=True, metavar="OUT.model", help="mlpot model file to write")
    mace.add_argument("--head", help="head to keep of a multi-head model (default: the one named Default)")
    mace.add_argument("--dtype", default="float64", choices=["float64", "float32"], help="dtype of the mlpot model")


def run(args: argparse.Namespace) -> int:
    from mlpot.importers.mace_convert import convert_mace
    from mlpot.importers.mace_file import read_mace_file, summary
    from mlpot.models.io import save_model

    source = check_input_file(args.source, "mace model")
    output = check_output_file(args.output, "-o")
    mace = read_mace_file(source)
    model = convert_mace(mace, head=args.head, dtype=args.dtype)
    save_model(model, output, metadata={"source_file": source.name})
    print(f"wrote {output} ({args.dtype}): {summary(mace, getattr(model, 'metadata', {}).get('mace_head'))}")
    return 0
