"""Timing harness shared by run_mace.py and run_mlpot.py: one model file, one structure, one dtype per process.

The runner supplies ``make_calculator(model_path, dtype)`` returning an ASE calculator; this module does
everything else the same way for both packages: one thread, the structure (benchmarks/potential_speed/
systems.py), warm-up, timed ``calculate`` calls (energy, forces and, for periodic cells, stress), peak
resident memory, and the last call's results written to an .npz for run.py to compare.

Every call goes through the calculator's ``calculate`` (not ASE's result cache), on the structure
alternately as it is and translated by 0.3 Å: the energy and forces do not change, but mlpot's
calculator, which keeps its neighbour list while no atom has moved more than half its 0.5 Å skin,
then builds it afresh each call, as mace's calculator always does.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "potential_speed"))
from bench_common import peak_rss_mb, timed_call  # noqa: E402
from systems import get_system  # noqa: E402

SHIFT = 0.3 * np.ones(3) / np.sqrt(3.0)  # Å, |SHIFT| = 0.3 > half of mlpot's default 0.5 Å skin


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True, help="model file of this side's package")
    parser.add_argument("--system", required=True, help="a structure of benchmarks/potential_speed/systems.py")
    parser.add_argument("--dtype", choices=["float32", "float64"], required=True)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", required=True, help="write the JSON result here")
    parser.add_argument("--arrays", required=True, help="write the last call's energy, forces, stress here (.npz)")
    return parser.parse_args()


def measure(package: str, version: str, make_calculator, args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(1)
    atoms = get_system(args.system)
    shifted = atoms.copy()
    shifted.positions += SHIFT
    rss_before_setup = peak_rss_mb()
    start = time.perf_counter()
    calc = make_calculator(args.model, args.dtype)
    setup_s = time.perf_counter() - start
    rss_after_setup = peak_rss_mb()

    calls = [atoms, shifted]
    walls, cpus, loads = [], [], []
    for index in range(args.warmup + args.repeats):
        structure = calls[index % 2]
        results, wall, cpu, load = timed_call(lambda: (calc.calculate(structure), calc.results)[1])
        if index >= args.warmup:
            walls.append(wall)
            cpus.append(cpu)
            loads.append(load)
    last_shifted = (args.warmup + args.repeats - 1) % 2 == 1
    arrays = {"energy": np.asarray(results["energy"], dtype=np.float64),
              "forces": np.asarray(results["forces"], dtype=np.float64),  # [N, 3]
              "shifted": np.asarray(last_shifted)}
    if atoms.pbc.all():
        arrays["stress"] = np.asarray(results["stress"], dtype=np.float64)  # [6], Voigt
    np.savez(args.arrays, **arrays)
    result = {
        "package": package,
        "version": version,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "model": os.path.basename(args.model),
        "system": args.system,
        "num_atoms": len(atoms),
        "dtype": args.dtype,
        "warmup": args.warmup,
        "setup_s": setup_s,
        "wall_s": walls,
        "cpu_s": cpus,  # CPU time of this one-thread process per call: what other processes disturb least
        "other_load_cores": loads,
        "median_wall_s": float(np.median(walls)),
        "median_cpu_s": float(np.median(cpus)),
        "peak_rss_mib": peak_rss_mb(),
        "rss_before_setup_mib": rss_before_setup,
        "rss_after_setup_mib": rss_after_setup,
        "energy": float(arrays["energy"]),
    }
    with open(args.out, "w") as handle:
        json.dump(result, handle)
    return result
