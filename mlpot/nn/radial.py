"""Radial features of edge lengths: Bessel basis, smooth cutoff envelope, radial MLP."""

import math
from typing import List

import torch
from torch import nn

from mlpot.nn.linear import ScaledLinear


class BesselBasis(nn.Module):
    """sqrt(2 / r_max) * sin(n pi r / r_max) / r for n = 1..num_basis (DimeNet's radial basis)."""

    def __init__(self, r_max: float, num_basis: int = 8) -> None:
        super().__init__()
        self.r_max = float(r_max)
        self.num_basis = num_basis
        frequencies = math.pi / self.r_max * torch.arange(1, num_basis + 1, dtype=torch.get_default_dtype())
        self.register_buffer("frequencies", frequencies)
        self.prefactor = math.sqrt(2.0 / self.r_max)

    def forward(self, lengths: torch.Tensor) -> torch.Tensor:  # [E, 1] -> [E, num_basis]
        return self.prefactor * torch.sin(self.frequencies * lengths) / lengths


class PolynomialCutoff(nn.Module):
    """Smooth envelope f(x), x = r / r_max, with f(0) = 1 and f, f', f'' = 0 at x = 1.

    f(x) = 1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2) for x < 1, else 0
    (Klicpera et al., DimeNet). Zero beyond r_max with zero derivative, so an edge entering or
    leaving the cutoff changes neither energy nor forces discontinuously.
    """

    def __init__(self, r_max: float, p: int = 5) -> None:
        super().__init__()
        self.r_max = float(r_max)
        self.p = float(p)

    def forward(self, lengths: torch.Tensor) -> torch.Tensor:  # [E, 1] -> [E, 1]
        p = self.p
        x = lengths / self.r_max
        envelope = (
            1.0
            - (p + 1.0) * (p + 2.0) / 2.0 * torch.pow(x, p)
            + p * (p + 2.0) * torch.pow(x, p + 1.0)
            - p * (p + 1.0) / 2.0 * torch.pow(x, p + 2.0)
        )
        return envelope * (x < 1.0)


class AgnesiTransform(nn.Module):
    """Edge length -> 1 / (1 + a x^q / (1 + x^(q - p))), x = r / r0, with r0 the mean covalent
    radius of the pair (the Agnesi transform of ACEpotentials.jl, JCP 2023; mace-torch's
    ``distance_transform: Agnesi``, with its constants). The radial basis then reads the
    transformed length, which runs from 1 at r = 0 towards 0: finer resolution near r0; the
    cutoff envelope still reads the length itself.
    """

    def __init__(self, element_radii: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("q", torch.tensor(0.9183))
        self.register_buffer("p", torch.tensor(4.5791))
        self.register_buffer("a", torch.tensor(1.0805))
        self.register_buffer("element_radii", element_radii.to(torch.get_default_dtype()))  # [num_elements] (Å)

    def forward(self, lengths: torch.Tensor, sender_species: torch.Tensor, receiver_species: torch.Tensor) -> torch.Tensor:
        """lengths [E, 1], element indices at both ends [E] -> transformed lengths [E, 1]."""
        r0 = 0.5 * (self.element_radii[sender_species] + self.element_radii[receiver_species]).unsqueeze(1)
        x = lengths / r0
        return (1 + self.a * torch.pow(x, self.q) / (1 + torch.pow(x, self.q - self.p))).reciprocal()


class RadialEmbedding(nn.Module):
    """Edge length -> Bessel basis times cutoff envelope, [E, 1] -> [E, num_bessel]."""

    def __init__(self, r_max: float, num_bessel: int = 8, num_polynomial_cutoff: int = 5) -> None:
        super().__init__()
        self.basis = BesselBasis(r_max, num_bessel)
        self.cutoff = PolynomialCutoff(r_max, num_polynomial_cutoff)
        self.dim = num_bessel

    def forward(self, lengths: torch.Tensor) -> torch.Tensor:
        return self.basis(lengths) * self.cutoff(lengths)


class RadialMLP(nn.Module):
    """Bias-free SiLU MLP from radial features to per-edge, per-path tensor-product weights.

    [E, radial_dim] -> [P, E, C]: the last layer writes each path's weights as one contiguous
    [E, C] block (a batched matmul), which keeps the per-path multiplies vectorised. No biases:
    the input is zero beyond the cutoff, so the weights (and every message) are too.
    """

    def __init__(self, sizes: List[int], num_paths: int, channels: int) -> None:
        super().__init__()
        # SiLU's second moment on unit Gaussians is 0.355; each layer after one restores unit
        # variance through its weight scale.
        gain = 1.0 / math.sqrt(0.3550)
        gains = [1.0] + [gain] * (len(sizes) - 1)
        self.hidden = nn.ModuleList([ScaledLinear(a, b, g) for a, b, g in zip(sizes[:-1], sizes[1:], gains)])
        self.out_weight = nn.Parameter(torch.randn(num_paths, sizes[-1], channels))
        self.out_scale = gains[len(sizes) - 1] / math.sqrt(sizes[-1])

    def _hidden(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden:
            x = torch.nn.functional.silu(layer(x))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[E, radial_dim] -> [P, E, C], path-major."""
        return torch.matmul(self._hidden(x).unsqueeze(0), self.out_weight * self.out_scale)

    @torch.jit.export
    def edge_major(self, x: torch.Tensor) -> torch.Tensor:
        """[E, radial_dim] -> [E, P, C]: one edge's weights contiguous, as the fused kernel reads them."""
        num_paths, width, channels = self.out_weight.shape
        weight = (self.out_weight * self.out_scale).permute(1, 0, 2).reshape(width, num_paths * channels)
        return torch.matmul(self._hidden(x), weight).view(-1, num_paths, channels)
