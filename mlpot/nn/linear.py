"""Equivariant linear maps on ``[n, D, C]`` features: channel mixing within each l."""

import math
from typing import List

import torch
from torch import nn

from mlpot.nn.irreps import FeatureIrreps


class ScaledLinear(nn.Module):
    """x @ (W * scale) with W ~ N(0, 1) and scale = gain / sqrt(fan_in).

    e3nn's normalisation, applied at run time so that the optimiser sees unit-scale parameters
    whatever the layer width; the scale multiplies the small weight, not the large output.
    """

    def __init__(self, fan_in: int, fan_out: int, gain: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(fan_in, fan_out))
        self.scale = gain / math.sqrt(fan_in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(x, self.weight * self.scale)


def _mix_per_degree(x: torch.Tensor, weight: torch.Tensor, lmax: int) -> torch.Tensor:
    """[n, D_in, C_in] x [lmax + 1, C_in, C_out] -> [n, (lmax + 1)^2, C_out]."""
    blocks = [torch.matmul(x[:, l * l : (l + 1) * (l + 1), :], weight[l]) for l in range(lmax + 1)]
    return torch.cat(blocks, dim=1)


class EquivariantLinear(nn.Module):
    """Per-l channel mixing; output degrees must be present in the input.

    Weights are N(0, 1) scaled by 1/sqrt(C_in) at run time; a bias is allowed on l = 0 only
    (anything else would break equivariance).
    """

    def __init__(self, irreps_in: FeatureIrreps, irreps_out: FeatureIrreps, bias: bool = False) -> None:
        super().__init__()
        if irreps_out.lmax > irreps_in.lmax:
            raise ValueError(f"linear cannot make l = {irreps_out.lmax} from {irreps_in}")
        self.irreps_in = irreps_in
        self.irreps_out = irreps_out
        self.lmax = irreps_out.lmax
        self.weight = nn.Parameter(torch.randn(self.lmax + 1, irreps_in.channels, irreps_out.channels))
        self.bias = nn.Parameter(torch.zeros(irreps_out.channels)) if bias else None
        self.scale = 1.0 / math.sqrt(irreps_in.channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [n, D_in, C_in] -> [n, D_out, C_out]
        out = _mix_per_degree(x, self.weight * self.scale, self.lmax)
        bias = self.bias
        if bias is not None:
            out = torch.cat([out[:, :1, :] + bias, out[:, 1:, :]], dim=1)
        return out


def elements_in_rows(element_counts: List[int], device: torch.device) -> torch.Tensor:
    """Element index of each row [sum(element_counts)] of nodes sorted by element. Built from
    the counts' sizes, not from a tensor of them, so torch.export sees no data-dependent length."""
    blocks: List[torch.Tensor] = []
    for z, count in enumerate(element_counts):
        blocks.append(torch.full((count,), z, dtype=torch.long, device=device))
    return torch.cat(blocks)


class ElementLinear(nn.Module):
    """Per-l channel mixing with a separate weight matrix for each element.

    Equivalent to e3nn's fully connected tensor product of the features with a one-hot species
    vector (MACE's self-connection), without building the one-hot. Nodes must be sorted by
    element; ``element_counts[z]`` says how many nodes of element index z come in a row.
    """

    def __init__(self, irreps_in: FeatureIrreps, irreps_out: FeatureIrreps, num_elements: int) -> None:
        super().__init__()
        if irreps_out.lmax > irreps_in.lmax:
            raise ValueError(f"linear cannot make l = {irreps_out.lmax} from {irreps_in}")
        self.irreps_in = irreps_in
        self.irreps_out = irreps_out
        self.lmax = irreps_out.lmax
        self.weight = nn.Parameter(
            torch.randn(num_elements, self.lmax + 1, irreps_in.channels, irreps_out.channels)
        )
        self.scale = 1.0 / math.sqrt(irreps_in.channels)

    def forward(self, x: torch.Tensor, element_counts: List[int]) -> torch.Tensor:
        blocks: List[torch.Tensor] = []
        for z, group in enumerate(torch.split(x, element_counts, dim=0)):
            if torch.compiler.is_compiling() or element_counts[z] > 0:  # export: no branch on a count
                blocks.append(_mix_per_degree(group, self.weight[z] * self.scale, self.lmax))
        return torch.cat(blocks, dim=0)
