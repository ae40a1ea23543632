"""Baseline propagators for the Action-Angle Network comparison, with its forward(x, dt) / loss interface.

* ``EulerUpdateNetwork``: one learned update x + dt * f(x, dt); its cost is constant like the
  action-angle network's, but nothing makes it extrapolate past the jumps it was trained on.
* ``NeuralODE``: a learned vector field dx/dt = f(x) integrated with classical RK4 at a fixed
  substep, so its cost grows linearly with the jump. The RK4 is written here rather than taken from
  torchdiffeq: it is ten lines, needs no extra dependency, backpropagates directly through the steps
  (the networks are small, so the adjoint method's memory saving is not needed), and a fixed step
  makes the cost per jump a clean, deterministic count of field evaluations.
"""

from typing import Dict

import torch
from torch import nn

from mlpot.dynamics.action_angle import StateNormalisation


def _mlp(inputs: int, hidden: int, layers: int, outputs: int) -> nn.Sequential:
    """``layers`` hidden tanh layers of width ``hidden``, in float64."""
    modules = []
    width = inputs
    for _ in range(layers):
        modules += [nn.Linear(width, hidden, dtype=torch.float64), nn.Tanh()]
        width = hidden
    modules.append(nn.Linear(width, outputs, dtype=torch.float64))
    return nn.Sequential(*modules)


class _StatePropagator(nn.Module):
    """Shared loss: mean squared state error in normalised units."""

    normalisation: StateNormalisation

    def loss(self, x0: torch.Tensor, x1: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
        predicted = self.normalisation.normalise(self(x0, dt))  # [B, 2n]
        return ((predicted - self.normalisation.normalise(x1)) ** 2).sum(dim=1).mean()


class EulerUpdateNetwork(_StatePropagator):
    """x(t + dt) = x(t) + dt * f(x(t), dt), in normalised coordinates; one network call per prediction."""

    def __init__(self, num_dof: int, hidden: int = 64, layers: int = 4):
        super().__init__()
        self.init_args: Dict[str, object] = dict(num_dof=num_dof, hidden=hidden, layers=layers)
        self.normalisation = StateNormalisation(2 * num_dof)
        self.update = _mlp(2 * num_dof + 1, hidden, layers, 2 * num_dof)

    def forward(self, x: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
        """States [B, 2n] and jumps dt [B] -> predicted states [B, 2n]."""
        z = self.normalisation.normalise(x)  # [B, 2n]
        rate = self.update(torch.cat([z, dt[:, None]], dim=1))  # [B, 2n]
        return self.normalisation.denormalise(z + dt[:, None] * rate)


class NeuralODE(_StatePropagator):
    """dz/dt = f(z) on normalised states, integrated by RK4 with ceil(max dt / substep) equal steps."""

    def __init__(self, num_dof: int, hidden: int = 64, layers: int = 4, substep: float = 0.25):
        super().__init__()
        self.init_args: Dict[str, object] = dict(num_dof=num_dof, hidden=hidden, layers=layers, substep=substep)
        self.substep = substep
        self.normalisation = StateNormalisation(2 * num_dof)
        self.field = _mlp(2 * num_dof, hidden, layers, 2 * num_dof)

    def num_steps(self, dt: torch.Tensor) -> int:
        """RK4 steps for a batch of jumps [B]: every sample takes the same count, each its own step length."""
        return max(1, int(torch.ceil(dt.abs().max() / self.substep).item()))

    def forward(self, x: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
        """States [B, 2n] and jumps dt [B] -> predicted states [B, 2n]."""
        z = self.normalisation.normalise(x)  # [B, 2n]
        steps = self.num_steps(dt)
        h = (dt / steps)[:, None]  # [B, 1]
        for _ in range(steps):
            k1 = self.field(z)
            k2 = self.field(z + 0.5 * h * k1)
            k3 = self.field(z + 0.5 * h * k2)
            k4 = self.field(z + h * k3)
            z = z + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        return self.normalisation.denormalise(z)
