"""Cartesian vectors read out from the l = 1 channels of ``[n, D, C]`` features.

With natural parity the l = 1 channels are polar vectors, and a point set with a mirror plane
(three beads always have one) makes every one of them lie in that plane: an O(3)-equivariant
network cannot move an atom out of it. :class:`VectorReadout` therefore adds cross products of
channel pairs, which are normal to such a plane. The readout is then equivariant under
rotations (SO(3)) but not reflections, which is what a chiral molecule needs.
"""

import math

import torch
from e3nn import o3
from torch import nn

from mlpot.nn.linear import ScaledLinear


def l1_to_cartesian() -> torch.Tensor:
    """Orthogonal [3, 3] S with v_xyz = S v_components for l = 1 features: row j is the l = 1
    spherical harmonic of the unit vector e_j, so it is right whatever order e3nn uses. A
    cross product taken in component order differs from the Cartesian one at most by a sign
    (the determinant), which stays rotation-equivariant."""
    harmonics = o3.spherical_harmonics(1, torch.eye(3, dtype=torch.float64), normalize=True)  # [xyz, component]
    return harmonics / harmonics.norm(dim=1, keepdim=True)


def l1_channels(features: torch.Tensor) -> torch.Tensor:
    """[n, D, C] (D >= 4) -> [n, 3, C] polar vectors in component order."""
    return features[:, 1:4, :]


class VectorReadout(nn.Module):
    """One Cartesian vector per item from a vector basis and per-item scalars, rotation-equivariant.

    forward(vectors [M, 3, C] l = 1 components, scalars [M, S]) -> [M, 3] Cartesian (x, y, z):

        out = sum_c a_c V_c + sum_c b_c (P V)_c x (Q V)_c,   (a, b) = MLP(scalars)

    P and Q mix channels (learned); the coefficients a, b are invariant, so ``out`` rotates
    with V. ``chiral=False`` drops the cross products and gives an O(3)-equivariant readout.
    """

    def __init__(self, channels: int, scalars: int, hidden: int, chiral: bool = True) -> None:
        super().__init__()
        self.chiral = chiral
        self.channels = channels
        outputs = 2 * channels if chiral else channels
        self.hidden = ScaledLinear(scalars, hidden)
        self.out = ScaledLinear(hidden, outputs, gain=1.0 / math.sqrt(0.3550))
        self.left = ScaledLinear(channels, channels)
        self.right = ScaledLinear(channels, channels)
        self.register_buffer("to_cartesian", l1_to_cartesian().to(torch.get_default_dtype()), persistent=False)

    def forward(self, vectors: torch.Tensor, scalars: torch.Tensor) -> torch.Tensor:
        coefficients = self.out(torch.nn.functional.silu(self.hidden(scalars)))  # [M, C or 2C]
        out = torch.einsum("mkc,mc->mk", vectors, coefficients[:, : self.channels])  # [M, 3]
        if self.chiral:
            normals = torch.cross(self.left(vectors), self.right(vectors), dim=1)  # [M, 3, C]
            out = out + torch.einsum("mkc,mc->mk", normals, coefficients[:, self.channels :]) / math.sqrt(self.channels)
        return torch.matmul(out, self.to_cartesian.T) / math.sqrt(self.channels)
