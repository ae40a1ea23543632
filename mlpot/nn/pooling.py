"""Pooling of node features onto groups of nodes (atoms onto coarse-grained beads)."""

import torch
from torch import nn

from mlpot.nn.scatter import scatter_sum


class MeanPooling(nn.Module):
    """[n, ...] features -> [num_groups, ...] means over each group's members.

    Equivariant for any irreps: it is a linear map along the node axis only. A group without
    members gets zeros.
    """

    def forward(self, x: torch.Tensor, group: torch.Tensor, num_groups: int) -> torch.Tensor:
        summed = scatter_sum(x, group, num_groups)  # [G, ...]
        ones = torch.ones(group.shape[0], dtype=x.dtype, device=x.device)
        counts = scatter_sum(ones, group, num_groups).clamp(min=1.0)  # [G]
        return summed / counts.view([-1] + [1] * (x.dim() - 1))
