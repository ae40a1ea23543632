"""Equivariant layer normalisation of ``[n, D, C]`` features.

Trunk features can be orders of magnitude away from unit scale (and differ between layers);
heads that read them (latent heads, vector readouts) train far better on normalised inputs.
Per node and per degree l: scalars (l = 0) are centred and scaled over channels like
LayerNorm; l > 0 blocks are divided by their root-mean-square norm over channels, which leaves
directions alone and so commutes with rotations and reflections. A learned per-channel gain
follows (and a bias on l = 0 only).
"""

import torch
from torch import nn

from mlpot.nn.irreps import FeatureIrreps


class EquivariantLayerNorm(nn.Module):
    def __init__(self, irreps: FeatureIrreps, eps: float = 1e-6) -> None:
        super().__init__()
        self.lmax = irreps.lmax
        self.eps = eps
        self.gain = nn.Parameter(torch.ones(irreps.lmax + 1, irreps.channels))
        self.bias = nn.Parameter(torch.zeros(irreps.channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [n, D, C] -> [n, D, C]
        scalars = x[:, :1, :]
        scalars = scalars - scalars.mean(dim=2, keepdim=True)
        scalars = scalars / torch.sqrt(scalars.square().mean(dim=2, keepdim=True) + self.eps)
        blocks = [scalars * self.gain[0] + self.bias]
        for l in range(1, self.lmax + 1):
            block = x[:, l * l : (l + 1) * (l + 1), :]  # [n, 2l+1, C]
            mean_square = block.square().sum(dim=1, keepdim=True).mean(dim=2, keepdim=True)  # [n, 1, 1]
            blocks.append(block / torch.sqrt(mean_square + self.eps) * self.gain[l])
        return torch.cat(blocks, dim=1)
