"""AOTInductor package against the TorchScript export: time per energy+forces call on the CPU.

    OMP_NUM_THREADS=1 python benchmarks/aoti/run.py --output benchmarks/aoti/results.json

1. export (this process, mlpot imported): one MACE-sized untrained model (that of
   benchmarks/potential_speed: H C O, r_max 5 Å, 64x0e+64x1o, max_ell 3, correlation 3, two
   interactions, radial MLP [64, 64, 64], float64) as a TorchScript file (`mlpot export --format
   lammps`'s function) and as an AOTInductor package, each with the fused kernels and with the
   reference path; compile time and file size of each.
2. timing: one fresh process per (system, format, kernel) that imports torch only, registers the
   fused operators from libmlpot_ops.so (as LAMMPS's plugin does) and runs the exported function
   on the whole system (all atoms local, the graph built outside the timing): median CPU time
   and wall time of one call over --repeats calls after --warmup calls, one thread. TorchScript
   runs with the graph executor's optimisation off, as pair_style mlpot runs it.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "potential_speed"))

# The timing process: torch only (argv: format, exported file, ops library, inputs file, warmup, repeats).
TIMER = r"""
import json, statistics, sys, time, torch
kind, path, ops, inputs, warmup, repeats = sys.argv[1:7]
torch.set_num_threads(1)
torch.ops.load_library(ops)
if kind == "torchscript":
    torch._C._set_graph_executor_optimize(False)
    module = torch.jit.load(path)
    call = lambda: module(*case)
else:
    package = torch._inductor.aoti_load_package(path)
    call = lambda: package(*case)
case = torch.load(inputs)
for _ in range(int(warmup)):
    call()
cpu, wall = [], []
for _ in range(int(repeats)):
    c, w = time.process_time(), time.perf_counter()
    call()
    cpu.append(time.process_time() - c)
    wall.append(time.perf_counter() - w)
assert not [m for m in sys.modules if m.split(".")[0] == "mlpot"]
print(json.dumps({"cpu_ms": 1e3 * statistics.median(cpu), "wall_ms": 1e3 * statistics.median(wall)}))
"""


def build_model():
    import mlpot

    return mlpot.build_model({
        "elements": ["H", "C", "O"], "r_max": 5.0, "num_bessel": 8, "num_polynomial_cutoff": 5, "max_ell": 3,
        "hidden_irreps": "64x0e+64x1o", "correlation": 3, "num_interactions": 2, "radial_mlp": [64, 64, 64],
        "readout_mlp": 16, "avg_num_neighbors": 30.0,
    })


def system_inputs(atoms, r_max):
    import numpy as np
    import torch
    from ase.neighborlist import neighbor_list

    receiver, sender, images = neighbor_list("ijS", atoms, r_max)
    return (torch.tensor(atoms.positions), torch.tensor(atoms.numbers), torch.tensor(np.stack([sender, receiver])),
            torch.tensor(images @ atoms.cell.array, dtype=torch.float64), torch.ones(len(atoms), dtype=torch.bool))


def export_all(directory: Path, kernels):
    from mlpot.export.aoti import export_aoti
    from mlpot.export.lammps import export_lammps

    torch_model = build_model()
    exports = {}
    for kind, export, suffix in (("torchscript", export_lammps, "pt"), ("aoti", export_aoti, "pt2")):
        for kernel in kernels:
            path = directory / f"model-{kernel}.{suffix}"
            start = time.perf_counter()
            export(torch_model, path, kernel=kernel)
            exports[(kind, kernel)] = {"path": str(path), "export_s": time.perf_counter() - start, "bytes": path.stat().st_size}
            print(f"exported {kind} {kernel}: {exports[(kind, kernel)]['export_s']:.0f} s, {path.stat().st_size / 1e6:.2f} MB", flush=True)
    return exports


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(HERE / "results.json"))
    parser.add_argument("--kernels", default="fused,reference")
    parser.add_argument("--systems", default="ethanol,water648")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()

    import torch

    from mlpot.export.ops_library import build_ops_library
    from systems import get_system

    ops = build_ops_library()
    results = {"torch": torch.__version__, "threads": 1, "exports": [], "timings": []}
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        exports = export_all(directory, args.kernels.split(","))
        results["exports"] = [{"format": kind, "kernel": kernel, **{k: v for k, v in row.items() if k != "path"}}
                              for (kind, kernel), row in exports.items()]
        for system in args.systems.split(","):
            atoms = get_system(system)
            inputs = directory / f"{system}.pt"
            torch.save(system_inputs(atoms, 5.0), inputs)
            for (kind, kernel), row in exports.items():
                command = [sys.executable, "-c", TIMER, kind, row["path"], str(ops), str(inputs), str(args.warmup), str(args.repeats)]
                done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
                if done.returncode != 0:
                    raise SystemExit(f"{system} {kind} {kernel} failed: {done.stderr[-2000:]}")
                timing = json.loads(done.stdout.strip().splitlines()[-1])
                results["timings"].append({"system": system, "atoms": len(atoms), "format": kind, "kernel": kernel, **timing})
                print(f"{system} ({len(atoms)} atoms) {kind:11s} {kernel:9s} cpu {timing['cpu_ms']:8.1f} ms  wall {timing['wall_ms']:8.1f} ms", flush=True)
    Path(args.output).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
