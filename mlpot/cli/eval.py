"""Evaluate a trained model on a labelled file.

  mlpot eval --model M --data FILE [--output pred.xyz] [--plots DIR]

Prints a table of errors for the labels the file has, writes parity plots (PNG) and, with
--output, the frames with predictions under mlpot_energy, mlpot_forces and mlpot_stress.
"""

import argparse
from pathlib import Path

from mlpot.data.dataset import LabelKeys
from mlpot.errors import MLPotError
from mlpot.models.io import load_model
from mlpot.train.tasks.potential import PotentialTask, evaluate_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model file (best.model, final.model, ...)")
    parser.add_argument("--data", required=True, help="any ASE-readable file with structures and labels")
    parser.add_argument("--output", help="extxyz file to write with the predictions")
    parser.add_argument("--plots", help="directory for the parity plots (default: beside --output, else .)")
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--energy-key", default="energy")
    parser.add_argument("--forces-key", default="forces")
    parser.add_argument("--stress-key", default="stress")


def run(args: argparse.Namespace) -> int:
    model = load_model(args.model, device=args.device)
    task = model.config_dict().get("task", "potential")
    if task != "potential":
        raise MLPotError(f"{args.model} is a {task} model; mlpot eval handles potentials")
    if args.output is not None and not str(args.output).endswith((".xyz", ".extxyz")):
        raise MLPotError(f"--output {args.output} must end in .xyz or .extxyz")
    plots = Path(args.plots) if args.plots else (Path(args.output).parent if args.output else Path("."))
    label_keys = LabelKeys(energy=args.energy_key, forces=args.forces_key, stress=args.stress_key)
    results = evaluate_file(model, args.data, label_keys, args.output, plots, args.batch_size)
    if results:
        print(PotentialTask.table(results, f"errors of {args.model} on {args.data}"))
    else:
        print(f"{args.data} has no labels to compare with; predictions only")
    print(f"parity plots in {plots}" + (f"; predictions in {args.output}" if args.output else ""))
    return 0
