"""Energy+forces time per call (one thread, CPU time, median of 20 after 3 warm-up calls) on the
fused kernels and on the reference path, and peak resident memory, of a model on the first frame
of a file; prints JSON.

    python benchmarks/attention/speed.py MODEL FRAMES.xyz
"""

import json
import resource
import statistics
import sys
import time

import torch
from ase.io import read

import mlpot
from mlpot.data.graph import atoms_to_graph, graph_to_inputs


def cpu_ms_per_call(model: torch.nn.Module, inputs: dict) -> float:
    for _ in range(3):
        model(dict(inputs), compute_forces=True)
    times = []
    for _ in range(20):
        start = time.process_time()
        model(dict(inputs), compute_forces=True)
        times.append(time.process_time() - start)
    return 1e3 * statistics.median(times)


def main(model_path: str, frames: str) -> None:
    torch.set_num_threads(1)
    result = {"model": model_path}
    for kernel in ("fused", "reference"):
        model = mlpot.load_model(model_path, kernel=kernel)
        model.requires_grad_(False)
        dtype = next(model.parameters()).dtype
        inputs = graph_to_inputs(atoms_to_graph(read(frames, 0), model.r_max, dtype=dtype))
        result[f"cpu_ms_per_call_{kernel}"] = cpu_ms_per_call(model, inputs)
        result.setdefault("peak_rss_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)  # fused path's peak
    result["parameters"] = sum(p.numel() for p in model.parameters())
    result["cpu_ms_per_call"] = result["cpu_ms_per_call_fused"]
    print(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:3])
