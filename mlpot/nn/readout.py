"""Readouts from the scalar (l = 0) channels of node features to one number per node."""

import math

import torch
from torch import nn

from mlpot.nn.linear import ScaledLinear


class LinearReadout(nn.Module):
    """[N, D, C] -> [N]: a linear map of the l = 0 channels."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.linear = ScaledLinear(channels, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.linear(h[:, 0, :]).squeeze(-1)


#: Activations of :class:`MLPReadout` and their second moments on unit Gaussians, which the
#: output layer's weight scale divides out.
READOUT_ACTIVATIONS = {"silu": 0.3550, "tanh": 0.3937, "none": 1.0}


class MLPReadout(nn.Module):
    """[N, D, C] -> [N]: a one-hidden-layer MLP on the l = 0 channels (MACE's last readout).

    ``activation`` is SiLU by default; tanh and none (linear-linear) are there because
    mace-torch models may use them (its ``gate``).
    """

    def __init__(self, channels: int, hidden: int = 16, activation: str = "silu") -> None:
        super().__init__()
        if activation not in READOUT_ACTIVATIONS:
            raise ValueError(f"unknown readout activation {activation!r}")
        self.activation = activation
        self.hidden = ScaledLinear(channels, hidden)
        self.out = ScaledLinear(hidden, 1, gain=1.0 / math.sqrt(READOUT_ACTIVATIONS[activation]))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        x = self.hidden(h[:, 0, :])
        if self.activation == "silu":
            x = torch.nn.functional.silu(x)
        elif self.activation == "tanh":
            x = torch.tanh(x)
        return self.out(x).squeeze(-1)
