"""Why the non-EMA training loss sits far above the validation loss: loss of every step of one
epoch continued from a run's checkpoint, at a chosen learning rate.

    python step_probe.py CONFIG.yaml RUN_DIR LR              # e.g. water.yaml runs/water 1e-3
    python step_probe.py CONFIG.yaml RUN_DIR LR --by-group   # which parameters make the jump
    python step_probe.py CONFIG.yaml RUN_DIR LR --set training.batch_size=25   # another batch

First the training-set loss of the checkpoint's raw and EMA weights. The first step's loss is
that of the checkpoint's raw weights; each later one is the loss on
its batch just after the previous Adam step. Prints the first steps, mean, median and the
gradient norms (before the clip). With --by-group the epoch is repeated from the checkpoint
once with no parameter moving, once with all, and once for each group of parameters moving
alone (the others put back after every step; Adam's moments still see every gradient).
"""

import argparse
from typing import Dict, List, Optional

import numpy as np
import torch
from torch_geometric.loader import DataLoader

import mlpot
from mlpot.models.io import read_model_file
from mlpot.train.config import load_config
from mlpot.train.tasks import task_for
from mlpot.train.trainer import build_optimizer

GROUPS = {  # name -> parameter-name prefixes
    "embedding": ["backbone.embedding"],
    "interaction 0": ["backbone.layers.0"],
    "interaction 1": ["backbone.layers.1"],
    "on-site block": ["onsite."],
    "pair radial MLP": ["pair.radial_mlp"],
    "pair rest": ["pair.harmonic_weight", "pair.receiver_linear", "pair.sender_linear", "pair.product"],
    "neighbour sum": ["neighbour_sum."],
    "node readout": ["node_readout."],
    "edge readout": ["edge_readout."],
}


def load_run(run: str):
    """(the run's checkpoint, its model built from best.model's config, weights not yet loaded)."""
    state = torch.load(f"{run}/checkpoint.pt", map_location="cpu", weights_only=False)
    return state, mlpot.build_model(read_model_file(f"{run}/best.model")["config"])


def raw_and_ema_loss(config, data, task, run: str) -> Dict[str, float]:
    """Training-set loss (mEh^2) of the checkpoint's raw weights and of its EMA weights."""
    state, model = load_run(run)
    weights = task.loss_weights(False)
    result = {}
    for name, values in (("raw", state["model"]), ("EMA", state["ema"]["shadow"])):
        model.load_state_dict(values, strict=False)  # the shadow holds parameters only
        with torch.no_grad():
            losses = [
                task.loss(task.forward(model, batch, training=False), batch, weights, lambda t: t, 1).item()
                for batch in DataLoader(data.train, batch_size=50)
            ]
        result[name] = float(np.mean(losses))
    return result


def probe_epoch(config, data, task, run: str, lr: float, moving: Optional[List[str]]) -> Dict[str, np.ndarray]:
    """Losses and gradient norms of one epoch from the checkpoint; ``moving``: prefixes that step (None: all)."""
    state, model = load_run(run)
    model.load_state_dict(state["model"])  # the raw (non-EMA) weights
    model.train()
    optimizer = build_optimizer(model, config.training)
    optimizer.load_state_dict(state["optimizer"])
    for group in optimizer.param_groups:
        group["lr"] = lr
    held = [p for name, p in model.named_parameters() if moving is not None and not any(name.startswith(m) for m in moving)]
    weights = task.loss_weights(False)
    torch.manual_seed(0)
    losses, norms = [], []
    for batch in DataLoader(data.train, batch_size=config.training.batch_size, shuffle=True):
        optimizer.zero_grad()
        loss = task.loss(task.forward(model, batch, training=True), batch, weights, lambda t: t, 1)
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), config.training.clip_grad or float("inf"))))
        saved = [p.detach().clone() for p in held]
        optimizer.step()
        with torch.no_grad():
            for p, value in zip(held, saved):
                p.copy_(value)
        losses.append(loss.item())
    return {"loss": np.array(losses), "norm": np.array(norms)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("run")
    parser.add_argument("lr", type=float)
    parser.add_argument("--by-group", action="store_true")
    parser.add_argument("--set", action="append", default=[], help="section.key=value, as for mlpot train")
    args = parser.parse_args()
    config = load_config(args.config, [f"output.directory={args.run}", *args.set])
    task = task_for(config)
    data = task.prepare(torch.float64)
    if not args.by_group:
        before = raw_and_ema_loss(config, data, task, args.run)
        print(f"training-set loss of the checkpoint: raw weights {before['raw']:.3g}, EMA weights {before['EMA']:.3g} (mEh^2)")
        result = probe_epoch(config, data, task, args.run, args.lr, None)
        losses, norms = result["loss"], result["norm"]
        print(f"lr {args.lr:g}: first steps {np.round(losses[:8], 2)} (mEh^2)")
        print(f"{len(losses)} steps: mean {losses.mean():.3g}, median {np.median(losses):.3g}, max {losses.max():.3g}")
        print(f"gradient norm: median {np.median(norms):.3g}, max {norms.max():.3g}")
        return
    print(f"lr {args.lr:g}, one epoch from {args.run}/checkpoint.pt; training loss in mEh^2 after each step")
    print(f"{'moving':>16} {'median':>9} {'mean':>9} {'max':>9}")
    for name, moving in [("nothing", []), ("everything", None)] + list(GROUPS.items()):
        losses = probe_epoch(config, data, task, args.run, args.lr, moving)["loss"]
        print(f"{name:>16} {np.median(losses):9.3g} {losses.mean():9.3g} {losses.max():9.3g}", flush=True)


if __name__ == "__main__":
    main()
