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


class MLPReadout(nn.Module):
    """[N, D, C] -> [N]: a one-hidden-layer SiLU MLP on the l = 0 channels (MACE's last readout)."""

    def __init__(self, channels: int, hidden: int = 16) -> None:
        super().__init__()
        self.hidden = ScaledLinear(channels, hidden)
        self.out = ScaledLinear(hidden, 1, gain=1.0 / math.sqrt(0.3550))  # SiLU's second moment

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.out(torch.nn.functional.silu(self.hidden(h[:, 0, :]))).squeeze(-1)
