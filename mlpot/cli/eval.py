"""Evaluate a trained model on a labelled file.

  mlpot eval --model M --data FILE [--output pred.xyz] [--plots DIR] [--lindep 0.01]

Prints a table of errors for the labels the file has, writes parity plots (PNG) and, with
--output, the frames with predictions under mlpot_energy, mlpot_forces and mlpot_stress.
"""

import argparse
from pathlib import Path

from mlpot.choices import KERNELS
from mlpot.errors import MLPotError
from mlpot.partition import METHODS as PARTITION_METHODS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, nargs="+", help="model file (best.model, final.model, ...); several make a committee")
    parser.add_argument("--data", required=True, help="any ASE-readable file with structures and labels")
    parser.add_argument("--output", help="extxyz file to write with the predictions")
    parser.add_argument("--plots", help="directory for the parity plots (default: beside --output, else .)")
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--kernel", default="auto", choices=KERNELS, help="fused kernels (auto: on the CPU, reference path on CUDA) or the reference path")
    parser.add_argument("--energy-key", default="energy")
    parser.add_argument("--forces-key", default="forces")
    parser.add_argument("--stress-key", default="stress")
    parser.add_argument("--partitions", type=int, default=1, help="potentials: evaluate each frame in K parts with exact halos (memory of the largest part; mlpot.partition)")
    parser.add_argument("--partition-method", default="metis", choices=PARTITION_METHODS, help="how frames are split with --partitions (default metis)")
    parser.add_argument("--memory-budget", help="potentials: instead of --partitions, split each frame into the fewest parts whose largest fits this size (8GB, 512MiB; mlpot.partition.budget)")
    parser.add_argument("--lindep", type=float, default=0.0, help="Hamiltonian models: solve the predicted orbitals without S's eigen-directions below this, as mlpot predict --lindep (default 0: none)")


def run(args: argparse.Namespace) -> int:
    from mlpot.devices import check_device
    from mlpot.files import check_output_directory, check_output_file
    from mlpot.models.io import load_model
    from mlpot.qm.orbitals import check_lindep
    from mlpot.train.tasks import task_class

    check_lindep(args.lindep)
    if args.partitions < 1:
        raise MLPotError(f"--partitions must be at least 1, got {args.partitions}")
    budget = _memory_budget(args)
    if args.batch_size < 1:
        raise MLPotError(f"--batch-size must be at least 1, got {args.batch_size}")
    if not Path(args.data).exists():  # a file, or a directory (Hamiltonian datasets)
        raise MLPotError(f"--data {args.data} does not exist")
    if args.output:
        check_output_file(args.output, "--output")
        if Path(args.output).resolve() == Path(args.data).resolve():
            raise MLPotError(f"--output {args.output} is the --data file; write the predictions to another file")
    check_output_directory(_plots_directory(args), "--plots" if args.plots else "plots directory")
    check_device(args.device, "--device")
    model = load_model(args.model, device=args.device, kernel=args.kernel)
    task_name = model.config_dict().get("task", "potential")
    options = {}
    if args.lindep:
        if task_name != "hamiltonian":
            raise MLPotError(f"--lindep applies to Hamiltonian models only; {args.model[0]} is a {task_name} model")
        options["lindep"] = args.lindep
    if args.partitions > 1 or budget is not None:
        if task_name not in ("potential", "committee"):
            option = "--partitions" if budget is None else "--memory-budget"
            raise MLPotError(f"{option} applies to potentials only; {args.model[0]} is a {task_name} model")
        from mlpot.partition import PartitionedPotential

        model = PartitionedPotential(model, args.partitions, args.partition_method, where=args.data, memory_budget=budget)
    plots = _plots_directory(args)
    keys = {"energy": args.energy_key, "forces": args.forces_key, "stress": args.stress_key}
    print(task_class(task_name).evaluate_file(model, args.data, args.output, plots, args.batch_size, keys, **options))
    print(f"plots in {plots}" + (f"; predictions in {args.output}" if args.output else ""))
    return 0


def _memory_budget(args: argparse.Namespace):
    """--memory-budget in bytes, or None; refused beside --partitions."""
    if args.memory_budget is None:
        return None
    if args.partitions != 1:
        raise MLPotError("give --partitions or --memory-budget, not both")
    from mlpot.partition.budget import parse_memory_size

    return parse_memory_size(args.memory_budget, "--memory-budget")


def _plots_directory(args: argparse.Namespace) -> Path:
    return Path(args.plots) if args.plots else (Path(args.output).parent if args.output else Path("."))
