"""The gated interaction (``model.interaction: gated``; mace-torch's
RealAgnosticResidualNonLinearInteractionBlock, as in its MACE-MH models).

Compared with :class:`~mlpot.nn.convolution.Interaction`:

- the radial MLP also reads learnt embeddings of the sender's and the receiver's elements
  (:class:`EdgeElementEmbedding`, applied by the layer), and its layers are Linear -> LayerNorm
  -> SiLU with biases (:class:`NormedMLP`);
- messages are divided by alpha + beta * density, density = sum_j tanh(g(edge_j)^2) with g another
  such MLP, and a linear of the (linear-up) node features is added;
- an equivariant gate follows: SiLU on the scalars, l > 0 channels multiplied by sigmoids of extra
  scalars (both activations scaled to unit second moment, as e3nn does), then a linear.

Features keep mlpot's [n, D, C] layout; the gate scalars, which have ``max_ell * C`` channels,
travel separately as [n, max_ell, C].
"""

import functools
import math
from typing import List

import torch
from e3nn.math import normalize2mom
from torch import nn

from mlpot.nn.convolution import EdgeTensorProduct, PathLinear
from mlpot.nn.irreps import FeatureIrreps
from mlpot.nn.linear import EquivariantLinear, elements_in_rows

ACTIVATIONS = {"silu": torch.nn.functional.silu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}


@functools.lru_cache(maxsize=None)
def unit_moment_gain(name: str) -> float:
    """1 / sqrt(E[f(z)^2]), z ~ N(0, 1), for the activation ``name``: e3nn's normalize2mom constant
    (a seeded Monte Carlo estimate, which mace-torch uses too; 0.1 s, so computed when first needed)."""
    return normalize2mom(ACTIVATIONS[name]).cst


class NormedMLP(nn.Module):
    """[E, sizes[0]] -> [E, sizes[-1]]: (Linear -> LayerNorm -> SiLU) per hidden layer, then Linear;
    torch's layers with biases (mace-torch's RadialMLP)."""

    def __init__(self, sizes: List[int]) -> None:
        super().__init__()
        self.linears = nn.ModuleList([nn.Linear(a, b) for a, b in zip(sizes[:-2], sizes[1:-1])])
        self.norms = nn.ModuleList([nn.LayerNorm(width) for width in sizes[1:-1]])
        self.out = nn.Linear(sizes[-2], sizes[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for linear, norm in zip(self.linears, self.norms):
            x = torch.nn.functional.silu(norm(linear(x)))
        return self.out(x)


class EdgeElementEmbedding(nn.Module):
    """Appends learnt embeddings of an edge's two elements to its radial features:
    [E, R] -> [E, R + 2 C]. Nodes are sorted by element (``element_counts`` per element)."""

    def __init__(self, num_elements: int, channels: int) -> None:
        super().__init__()
        self.source = nn.Parameter(torch.randn(num_elements, channels) * 1e-3)
        self.target = nn.Parameter(torch.randn(num_elements, channels) * 1e-3)

    def forward(self, radial: torch.Tensor, element_counts: List[int], sender: torch.Tensor, receiver: torch.Tensor) -> torch.Tensor:
        species = elements_in_rows(element_counts, radial.device)  # [N]
        source = self.source.index_select(0, species.index_select(0, sender))  # [E, C]
        target = self.target.index_select(0, species.index_select(0, receiver))
        return torch.cat([radial, source, target], dim=1)


class GatedInteraction(nn.Module):
    """linear up -> edge tensor product (weights from a NormedMLP of the extended radial
    features) -> linear / (alpha + beta density) + linear of the input -> gate -> linear.

    ``radial_dim`` counts the extended features (Bessel basis plus both element embeddings).
    """

    def __init__(
        self, irreps_in: FeatureIrreps, irreps_out: FeatureIrreps, lmax_sh: int, radial_dim: int, radial_mlp: List[int],
    ) -> None:
        super().__init__()
        channels = irreps_in.channels
        self.irreps_in = irreps_in
        self.irreps_out = irreps_out
        self.num_gates = irreps_out.lmax
        self.linear_up = EquivariantLinear(irreps_in, irreps_in)
        self.tensor_product = EdgeTensorProduct(irreps_in.lmax, lmax_sh, irreps_out.lmax)
        self.num_paths = self.tensor_product.num_paths
        self.radial_mlp = NormedMLP([radial_dim] + list(radial_mlp) + [self.num_paths * channels])
        self.density = NormedMLP([radial_dim, 64, 1])
        self.alpha = nn.Parameter(torch.tensor(20.0))
        self.beta = nn.Parameter(torch.tensor(0.0))
        self.linear_down = PathLinear(self.tensor_product, channels, irreps_out)
        # The gate scalars: from the l3 = 0 paths (and the input's scalars), max_ell * C channels.
        self.scalar_paths: List[int] = [p for p, path in enumerate(self.tensor_product.paths) if path[2] == 0]
        self.gate_down = nn.Parameter(torch.randn(len(self.scalar_paths), channels, self.num_gates * channels))
        self.gate_down_scale = 1.0 / math.sqrt(len(self.scalar_paths) * channels)
        self.residual = EquivariantLinear(irreps_in, FeatureIrreps(channels, min(irreps_in.lmax, irreps_out.lmax)))
        self.gate_residual = nn.Parameter(torch.randn(channels, self.num_gates * channels))
        self.gate_residual_scale = 1.0 / math.sqrt(channels)
        self.linear_out = EquivariantLinear(irreps_out, irreps_out)
        self.silu_gain = unit_moment_gain("silu")
        self.sigmoid_gain = unit_moment_gain("sigmoid")

    def forward(
        self,
        h: torch.Tensor,
        sh: torch.Tensor,
        radial: torch.Tensor,
        envelope: torch.Tensor,
        sender: torch.Tensor,
        receiver: torch.Tensor,
    ) -> torch.Tensor:
        """``radial`` [E, radial_dim]: the extended radial features; ``envelope`` is unused (the
        cutoff is inside the Bessel part of ``radial``)."""
        num_nodes, _, channels = h.shape
        h = self.linear_up(h)  # [N, D_in, C]
        weights = self.radial_mlp(radial).view(-1, self.num_paths, channels)  # [E, P, C]
        if not self.tensor_product.fused:
            weights = weights.transpose(0, 1).contiguous()  # [P, E, C]
        summed = self.tensor_product(h, sh, weights, sender, receiver)  # per path [N, 2l3+1, C]
        edge_density = torch.tanh(self.density(radial) ** 2).squeeze(1)  # [E]
        density = torch.zeros(num_nodes, dtype=h.dtype, device=h.device).index_add(0, receiver, edge_density)
        divisor = (density * self.beta + self.alpha).view(-1, 1, 1)  # [N, 1, 1]
        features = self.linear_down(summed) / divisor  # [N, D_out, C]
        gates = summed[self.scalar_paths[0]] @ (self.gate_down[0] * self.gate_down_scale)
        for k in range(1, len(self.scalar_paths)):
            gates = gates + summed[self.scalar_paths[k]] @ (self.gate_down[k] * self.gate_down_scale)
        gates = gates / divisor + h[:, :1, :] @ (self.gate_residual * self.gate_residual_scale)  # [N, 1, max_ell C]
        residual = self.residual(h)  # [N, D_shared, C]
        features = torch.cat([features[:, : residual.shape[1]] + residual, features[:, residual.shape[1] :]], dim=1)
        scalars = torch.nn.functional.silu(features[:, :1]) * self.silu_gain  # [N, 1, C]
        gate = (torch.sigmoid(gates) * self.sigmoid_gain).view(num_nodes, self.num_gates, channels)  # [N, max_ell, C]
        blocks = [scalars]
        for l in range(1, self.num_gates + 1):
            blocks.append(features[:, l * l : (l + 1) * (l + 1)] * gate[:, l - 1 : l])
        return self.linear_out(torch.cat(blocks, dim=1))
