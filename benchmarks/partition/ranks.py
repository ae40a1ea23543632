"""1 vs 2 torch.distributed ranks (gloo, one thread each) on one energy + forces call, beside
one unpartitioned process. Water (1536 atoms), ethanol-rmd17 member 0, float32, 2 METIS parts.
Each timing is the second call (the first builds the neighbour list and the parts).
Writes ranks.json beside this file.

    OMP_NUM_THREADS=1 python benchmarks/partition/ranks.py
"""

import json
import os
import socket
import time
from pathlib import Path

import torch
import torch.multiprocessing as mp

HERE = Path(__file__).resolve().parent
MODEL = HERE.parents[1] / "models" / "ethanol-rmd17" / "ethanol-rmd17.model"
ATOMS, PARTS = 1536, 2


def timed_call(partitions: int) -> float:
    from mlpot.calculators import MLPotCalculator
    from mlpot.models.io import load_model
    from systems import water_box

    torch.set_num_threads(1)
    atoms = water_box(ATOMS)
    atoms.calc = MLPotCalculator(load_model(MODEL).members[0], dtype="float32", partitions=partitions)
    atoms.get_forces()
    atoms.positions += 0.01  # a new geometry, same neighbour list and parts
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
    start = time.perf_counter()
    atoms.get_forces()
    return time.perf_counter() - start


def _rank(rank: int, world: int, port: int, queue) -> None:
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.distributed.init_process_group("gloo")
    seconds = timed_call(PARTS)
    torch.distributed.destroy_process_group()
    queue.put((rank, seconds))


def ranks(world: int) -> float:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    context = mp.get_context("spawn")
    queue = context.SimpleQueue()
    mp.spawn(_rank, args=(world, port, queue), nprocs=world)
    return max(queue.get()[1] for _ in range(world))


def main() -> None:
    result = {
        "atoms": ATOMS, "parts": PARTS, "dtype": "float32", "threads_per_process": 1,
        "unpartitioned_s": round(timed_call(1), 2),
        "one_rank_s": round(ranks(1), 2),
        "two_ranks_s": round(ranks(2), 2),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    (HERE / "ranks.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
