"""Why the non-EMA training loss sits far above the validation loss: loss of every step of one
epoch continued from a run's checkpoint, at a chosen learning rate.

    python step_probe.py CONFIG.yaml RUN_DIR LR      # e.g. water.yaml runs/water 1e-3

The first step's loss is that of the checkpoint's raw weights; each later one is the loss on
its batch just after the previous Adam step. Prints the first steps, mean, median and the
gradient norms (before the clip).
"""

import sys

import numpy as np
import torch
from torch_geometric.loader import DataLoader

import mlpot
from mlpot.models.io import read_model_file
from mlpot.train.config import load_config
from mlpot.train.tasks import task_for
from mlpot.train.trainer import _optimizer

config_path, run, lr = sys.argv[1], sys.argv[2], float(sys.argv[3])
config = load_config(config_path, [f"output.directory={run}"])
task = task_for(config)
data = task.prepare(torch.float64)
state = torch.load(f"{run}/checkpoint.pt", map_location="cpu", weights_only=False)
model = mlpot.build_model(read_model_file(f"{run}/final.model")["config"])
model.load_state_dict(state["model"])  # the raw (non-EMA) weights
model.train()
optimizer = _optimizer(model, config.training)
optimizer.load_state_dict(state["optimizer"])
for group in optimizer.param_groups:
    group["lr"] = lr
weights = task.loss_weights(False)
torch.manual_seed(0)
losses, norms = [], []
for batch in DataLoader(data.train, batch_size=config.training.batch_size, shuffle=True):
    optimizer.zero_grad()
    loss = task.loss(task.forward(model, batch, training=True), batch, weights, lambda t: t, 1)
    loss.backward()
    norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), config.training.clip_grad or float("inf"))))
    optimizer.step()
    losses.append(loss.item())
losses, norms = np.array(losses), np.array(norms)
print(f"lr {lr:g}: first steps {np.round(losses[:8], 2)} (mEh^2)")
print(f"{len(losses)} steps: mean {losses.mean():.3g}, median {np.median(losses):.3g}, max {losses.max():.3g}")
print(f"gradient norm: median {np.median(norms):.3g}, max {norms.max():.3g}")
