"""Run molecular dynamics with a trained potential.

  mlpot md --model M --structure FILE [--ensemble nve|nvt|npt] [--temperature K]
           [--timestep fs] [--steps N] [--output traj.xyz] [--log md.csv]

M is a model file or a directory holding one (models/<name>). The structure is any
ASE-readable file (its first frame unless --index). Ctrl-C or SIGTERM stops at the next step,
writes it, and exits; NVE runs end with the energy drift in meV/atom/ps. Several --model files
(or a committee model) run the committee's mean and log its force spread; --uncertainty-stop
ends the run (exit status 3) when the spread passes a threshold.
"""

import argparse
from pathlib import Path

from mlpot.choices import DTYPE_NAMES, KERNELS
from mlpot.errors import MLPotError
from mlpot.md.settings import ENSEMBLES, MDSettings
from mlpot.partition import METHODS as PARTITION_METHODS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = MDSettings()
    parser.add_argument("--model", required=True, nargs="+", help="model file, or a directory holding one; several make a committee")
    parser.add_argument("--structure", required=True, help="starting structure (any ASE format)")
    parser.add_argument("--index", type=int, default=0, help="frame of the structure file (default 0)")
    parser.add_argument("--ensemble", default=defaults.ensemble, choices=ENSEMBLES)
    parser.add_argument("--temperature", type=float, default=defaults.temperature, help="K (default 300)")
    parser.add_argument("--timestep", type=float, default=defaults.timestep, help="fs (default 0.5)")
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--interval", type=int, default=defaults.interval, help="write every k steps (default 10)")
    parser.add_argument("--output", help="trajectory file (extxyz)")
    parser.add_argument("--log", help="CSV of time, energies, temperature, pressure")
    parser.add_argument("--friction", type=float, default=defaults.friction, help="Langevin friction, 1/fs")
    parser.add_argument("--pressure", type=float, default=defaults.pressure, help="NPT pressure, bar")
    parser.add_argument("--compressibility", type=float, default=defaults.compressibility, help="NPT, 1/bar")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="velocities and thermostat noise")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float64", choices=DTYPE_NAMES)
    parser.add_argument("--skin", type=float, default=0.5, help="neighbour-list skin, Å")
    parser.add_argument("--uncertainty-stop", type=float, help="committee: stop when a per-atom force spread passes this (eV/Å)")
    parser.add_argument("--uncertainty-dump", help="committee: extxyz file for every frame above --dump-threshold")
    parser.add_argument("--dump-threshold", type=float, help="committee: force spread (eV/Å) above which frames are dumped")
    parser.add_argument("--partitions", type=int, default=1, help="evaluate in K parts with exact halos, re-made with each neighbour list (memory of the largest part; a committee gives its mean only)")
    parser.add_argument("--partition-method", default="metis", choices=PARTITION_METHODS, help="how the structure is split with --partitions (default metis)")
    parser.add_argument("--memory-budget", help="instead of --partitions, the fewest parts whose largest fits this size (8GB, 512MiB), chosen with each neighbour list")
    parser.add_argument("--kernel", default="auto", choices=KERNELS, help="fused kernels (auto: on the CPU, reference path on CUDA) or the reference path")


def run(args: argparse.Namespace) -> int:
    from mlpot.calculators import MLPotCalculator
    from mlpot.data.dataset import read_structure
    from mlpot.data.geometry import check_geometry
    from mlpot.devices import check_device
    from mlpot.files import check_input_file
    from mlpot.md.driver import check_outputs, describe, run_md
    from mlpot.models.io import resolve_model_path

    settings = MDSettings(
        ensemble=args.ensemble,
        temperature=args.temperature,
        timestep=args.timestep,
        steps=args.steps,
        interval=args.interval,
        friction=args.friction,
        pressure=args.pressure,
        compressibility=args.compressibility,
        seed=args.seed,
        uncertainty_stop=args.uncertainty_stop,
        dump_threshold=args.dump_threshold,
    )
    settings.validate()
    if args.partitions < 1:
        raise MLPotError(f"--partitions must be at least 1, got {args.partitions}")
    if args.memory_budget is not None and args.partitions != 1:
        raise MLPotError("give --partitions or --memory-budget, not both")
    if (args.partitions > 1 or args.memory_budget is not None) and (args.uncertainty_stop is not None or args.uncertainty_dump):
        option = "--partitions" if args.memory_budget is None else "--memory-budget"
        raise MLPotError(f"{option} gives a committee's mean only; --uncertainty-stop and --uncertainty-dump need its spread")
    check_input_file(args.structure, "--structure")
    check_outputs({"--output": args.output, "--log": args.log, "--uncertainty-dump": args.uncertainty_dump},
                  inputs=[("--structure", args.structure)] + [("--model", path) for path in args.model])
    check_device(args.device, "--device")
    atoms = read_structure(args.structure, args.index)
    check_geometry(atoms, f"{args.structure}, frame {args.index}")
    settings.check_structure(atoms)
    model_path = [resolve_model_path(path) for path in args.model]
    atoms.calc = MLPotCalculator(model_path, device=args.device, dtype=args.dtype, skin=args.skin, kernel=args.kernel,
                                partitions=args.partitions, partition_method=args.partition_method,
                                memory_budget=_memory_budget(args.memory_budget))
    print(f"{len(atoms)} atoms, {args.ensemble}, {args.temperature:g} K, {args.timestep:g} fs x {args.steps} steps, model {', '.join(map(str, model_path))}")
    dump = Path(args.uncertainty_dump) if args.uncertainty_dump else None
    summary = run_md(atoms, settings, Path(args.output) if args.output else None, Path(args.log) if args.log else None,
                     uncertainty_dump=dump)
    print(describe(summary, settings))
    if summary.interrupted:
        return 130 if summary.interrupted == "SIGINT" else 143
    return 3 if summary.uncertain else 0


def _memory_budget(size):
    """--memory-budget in bytes, or None; a bad size is named as the option."""
    if size is None:
        return None
    from mlpot.partition.budget import parse_memory_size

    return parse_memory_size(size, "--memory-budget")
