"""Equivariant graph attention (Equiformer-style) as an interaction of the shared trunk.

The message from sender j to receiver i is MACE's radial-weighted tensor product, weighted by a
learned attention per head h instead of the fixed 1 / avg_num_neighbors:

    out_i = linear( sum_j alpha_ij[h(c)] * TP(x_j, Y_ij; w_ij) )
    alpha_ij = f_ij exp(l_ij) / (1 + sum_k f_ik exp(l_ik)),   l_ij = MLP(s_j, s_i, radial_ij)

with s the invariant (l = 0) features of the layer's input and f the smooth cutoff envelope.
The logits see invariants only, so the layer is as equivariant as the tensor product. A plain
softmax over neighbours jumps when a neighbour enters the cutoff; here every neighbour's weight
carries its envelope (zero, with two zero derivatives, at r_max), and the 1 in the denominator
(an always-present "null" neighbour) keeps the normalisation smooth and defined for an atom with
no neighbours, so energy and forces stay continuous. Because alpha multiplies the radial
weights, the linear variant runs on the same fused kernel as the MACE interaction.

``nonlinear: true`` passes each message through an equivariant gate before the weighted sum
(Equiformer's non-linear message passing): silu on scalars, sigmoid(scalars)-scaled l > 0.
That needs every edge's message, so it is computed per edge (the fused kernel with the edges as
receivers) and summed with index_add: more memory, no fused scatter.
"""

import math
from dataclasses import dataclass
from typing import Final, List, Optional

import torch
from torch import nn

from mlpot.nn.convolution import EdgeTensorProduct, PathLinear
from mlpot.nn.irreps import FeatureIrreps, component_degrees
from mlpot.nn.linear import EquivariantLinear, ScaledLinear
from mlpot.nn.radial import RadialMLP

#: Logits are squashed into (-LOGIT_BOUND, LOGIT_BOUND): exp() stays finite in float32.
LOGIT_BOUND = 10.0


@dataclass
class AttentionSettings:
    """The ``model.attention`` section: heads, logit-MLP width, value channels, non-linear messages."""

    heads: int = 4
    hidden: int = 32
    value_channels: Optional[int] = None  # channels of the attended messages; default the hidden channels
    nonlinear: bool = False


def neighbour_softmax(logits: torch.Tensor, envelope: torch.Tensor, receiver: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """alpha [E, H] = f exp(l) / (1 + sum over the receiver's edges of f exp(l)).

    logits [E, H], envelope [E, 1]. Computed with a per-receiver shift M >= 0 (exp(l - M) over
    exp(-M) + sum exp(l - M), the same number) so that nothing overflows.
    """
    heads = logits.shape[1]
    shift = torch.zeros(num_nodes, heads, dtype=logits.dtype, device=logits.device)
    index = receiver.unsqueeze(1).expand(-1, heads)
    shift = shift.scatter_reduce(0, index, logits.detach(), "amax", include_self=True)  # [N, H], >= 0
    weights = envelope * torch.exp(logits - shift.index_select(0, receiver))  # [E, H]
    total = torch.exp(-shift).index_add(0, receiver, weights)  # [N, H]
    return weights / total.index_select(0, receiver)


class EquivariantGate(nn.Module):
    """silu on the l = 0 components; l > 0 components scaled by sigmoid of a linear map of them."""

    def __init__(self, irreps: FeatureIrreps) -> None:
        super().__init__()
        self.gates = ScaledLinear(irreps.channels, irreps.channels)
        self.register_buffer("is_scalar", (component_degrees(irreps.lmax) == 0).to(torch.get_default_dtype()).view(1, -1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [n, D, C] -> [n, D, C]
        scalars = x[:, :1, :]  # [n, 1, C]
        gate = torch.sigmoid(self.gates(scalars))  # [n, 1, C]
        return self.is_scalar * torch.nn.functional.silu(x) + (1.0 - self.is_scalar) * x * gate


class AttentionInteraction(nn.Module):
    """linear up -> attention-weighted edge tensor product, summed -> linear down.

    Same constructor and forward as :class:`~mlpot.nn.convolution.Interaction`, plus the
    settings; ``avg_num_neighbors`` is unused (the attention weights are normalised).
    """

    nonlinear: Final[bool]  # a TorchScript constant: the other variant's code is not compiled

    def __init__(
        self,
        irreps_in: FeatureIrreps,
        irreps_out: FeatureIrreps,
        lmax_sh: int,
        radial_dim: int,
        radial_mlp: List[int],
        avg_num_neighbors: float,
        settings: AttentionSettings,
    ) -> None:
        super().__init__()
        values = settings.value_channels or irreps_in.channels
        if values % settings.heads:
            raise ValueError(f"value channels ({values}) must be a multiple of the heads ({settings.heads})")
        self.irreps_in = irreps_in
        self.irreps_out = irreps_out
        self.heads = settings.heads
        self.nonlinear = settings.nonlinear
        self.logit_bound = LOGIT_BOUND
        self.linear_up = EquivariantLinear(irreps_in, FeatureIrreps(values, irreps_in.lmax))
        self.tensor_product = EdgeTensorProduct(irreps_in.lmax, lmax_sh, irreps_out.lmax)
        self.num_paths = self.tensor_product.num_paths
        self.radial_mlp = RadialMLP([radial_dim] + list(radial_mlp), self.num_paths, values)
        self.logit_hidden = ScaledLinear(2 * irreps_in.channels + radial_dim, settings.hidden)
        self.logit_out = ScaledLinear(settings.hidden, settings.heads, gain=1.0 / math.sqrt(0.3550))
        self.register_buffer("head_of_channel", torch.arange(values) // (values // settings.heads))
        messages = FeatureIrreps(values, irreps_out.lmax)
        if settings.nonlinear:
            self.path_mix: nn.Module = PathLinear(self.tensor_product, values, messages)
            self.gate: nn.Module = EquivariantGate(messages)
            self.linear_down: nn.Module = EquivariantLinear(messages, irreps_out)
        else:
            self.path_mix = nn.Identity()
            self.gate = nn.Identity()
            self.linear_down = PathLinear(self.tensor_product, values, irreps_out)

    def attention(self, h: torch.Tensor, radial: torch.Tensor, envelope: torch.Tensor, sender: torch.Tensor,
                  receiver: torch.Tensor) -> torch.Tensor:
        """Per-edge, per-channel weights [E, C_values] from the invariant inputs."""
        scalars = h[:, 0, :]  # [N, C]
        inputs = torch.cat([scalars.index_select(0, sender), scalars.index_select(0, receiver), radial], dim=1)
        raw = self.logit_out(torch.nn.functional.silu(self.logit_hidden(inputs)))  # [E, H]
        logits = self.logit_bound * torch.tanh(raw / self.logit_bound)
        alpha = neighbour_softmax(logits, envelope, receiver, h.shape[0])  # [E, H]
        return alpha.index_select(1, self.head_of_channel)  # [E, C_values]

    def forward(
        self,
        h: torch.Tensor,
        sh: torch.Tensor,
        radial: torch.Tensor,
        envelope: torch.Tensor,
        sender: torch.Tensor,
        receiver: torch.Tensor,
    ) -> torch.Tensor:
        alpha = self.attention(h, radial, envelope, sender, receiver)  # [E, C_values]
        values = self.linear_up(h)
        fused = self.tensor_product.fused
        weights = self.radial_mlp.edge_major(radial) if fused else self.radial_mlp(radial)  # [E, P, C] or [P, E, C]
        if self.nonlinear:
            edges = torch.arange(sh.shape[0], device=sh.device)
            per_edge = self.tensor_product(values, sh, weights, sender, edges, sh.shape[0])  # per path [E, 2l3+1, C]
            messages = self.gate(self.path_mix(per_edge)) * alpha.unsqueeze(1)  # [E, D_out, C]
            summed = torch.zeros(h.shape[0], messages.shape[1], messages.shape[2], dtype=h.dtype, device=h.device)
            return self.linear_down(summed.index_add(0, receiver, messages))
        weights = weights * (alpha.unsqueeze(1) if fused else alpha.unsqueeze(0))
        return self.linear_down(self.tensor_product(values, sh, weights, sender, receiver))
