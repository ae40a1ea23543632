"""Evaluate a trained model on a labelled file.

  mlpot eval --model M --data FILE [--output pred.xyz] [--plots DIR]

Prints a table of errors for the labels the file has, writes parity plots (PNG) and, with
--output, the frames with predictions under mlpot_energy, mlpot_forces and mlpot_stress.
"""

import argparse
from pathlib import Path

from mlpot.kernels import KERNELS
from mlpot.models.io import load_model
from mlpot.train.tasks import task_class


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, nargs="+", help="model file (best.model, final.model, ...); several make a committee")
    parser.add_argument("--data", required=True, help="any ASE-readable file with structures and labels")
    parser.add_argument("--output", help="extxyz file to write with the predictions")
    parser.add_argument("--plots", help="directory for the parity plots (default: beside --output, else .)")
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--kernel", default="auto", choices=KERNELS, help="fused kernels (auto: where available) or the reference path")
    parser.add_argument("--energy-key", default="energy")
    parser.add_argument("--forces-key", default="forces")
    parser.add_argument("--stress-key", default="stress")


def run(args: argparse.Namespace) -> int:
    model = load_model(args.model, device=args.device, kernel=args.kernel)
    task = task_class(model.config_dict().get("task", "potential"))
    plots = Path(args.plots) if args.plots else (Path(args.output).parent if args.output else Path("."))
    keys = {"energy": args.energy_key, "forces": args.forces_key, "stress": args.stress_key}
    print(task.evaluate_file(model, args.data, args.output, plots, args.batch_size, keys))
    print(f"plots in {plots}" + (f"; predictions in {args.output}" if args.output else ""))
    return 0
