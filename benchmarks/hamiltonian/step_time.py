"""Training-step time of a Hamiltonian config in float64 and float32, side by side.

    python step_time.py water_2450.yaml [--steps 40] [--rounds 5] [--threads 1]

Both models are built from the same config (model.dtype changed only) and trained on the same
batches; the two take turns, `--steps` steps each per round, so that a busy shared machine slows
both alike. Prints the median milliseconds per step (forward, loss, backward, Adam) of each and
their ratio.
"""

import argparse
import statistics
import time
from typing import Dict, List

import torch
from torch_geometric.loader import DataLoader

from mlpot.config import DTYPES
from mlpot.kernels import set_kernels
from mlpot.models import build_model
from mlpot.train.config import load_config
from mlpot.train.tasks import task_for
from mlpot.train.trainer import build_optimizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--steps", type=int, default=40, help="steps per turn (default 40)")
    parser.add_argument("--rounds", type=int, default=5, help="turns of each dtype (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config(args.config)
    task = task_for(config)
    weights = task.loss_weights(False)
    runs = {}
    for name in ("float64", "float32"):
        dtype = DTYPES[name]
        torch.manual_seed(config.training.seed)
        data = task.prepare(dtype)
        model = build_model(dict(data.model_config, dtype=name))
        set_kernels(model, config.training.kernel, torch.device("cpu"))  # as mlpot train does
        loader = DataLoader(data.train, batch_size=config.training.batch_size, shuffle=False)
        batches = [batch for _, batch in zip(range(args.steps), loader)]
        runs[name] = (model, build_optimizer(model, config.training), batches)
    times: Dict[str, List[float]] = {name: [] for name in runs}
    for round_index in range(args.rounds + 1):  # the first round warms up and is not counted
        for name, (model, optimizer, batches) in runs.items():
            started = time.perf_counter()
            for batch in batches:
                optimizer.zero_grad(set_to_none=True)
                out = task.forward(model, batch, training=True)
                task.loss(out, batch, weights, lambda tensor: tensor, 1).backward()
                optimizer.step()
            if round_index > 0:
                times[name].append(1000.0 * (time.perf_counter() - started) / len(batches))
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        print(f"{name}: {value:.1f} ms per step (median of {args.rounds} turns of {args.steps} steps)")
    print(f"float64 / float32: {medians['float64'] / medians['float32']:.2f}x")


if __name__ == "__main__":
    main()
