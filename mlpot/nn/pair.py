"""Equivariant features of atoms and of atom pairs, in both parities, for orbital-block heads.

Both blocks return :class:`~mlpot.nn.tensor_product.ParityIrreps` features up to ``lmax_out``
(twice the highest shell l of the basis, so that a d-d block can be written).
"""

from typing import List

import torch
from e3nn import o3
from torch import nn

from mlpot.nn.irreps import FeatureIrreps, component_degrees
from mlpot.nn.linear import EquivariantLinear
from mlpot.nn.radial import RadialEmbedding, RadialMLP
from mlpot.nn.tensor_product import ChannelTensorProduct, ParityIrreps


class OnsiteFeatures(nn.Module):
    """Node features [N, D, C_in] -> [N, 2 (lmax_out+1)^2, C]: the product of two linear maps of
    the node's features (two different maps, so that cross products survive) plus the features
    themselves in the natural-parity block."""

    def __init__(self, irreps_in: FeatureIrreps, channels: int, lmax_out: int) -> None:
        super().__init__()
        hidden = FeatureIrreps(channels, irreps_in.lmax)
        self.left = EquivariantLinear(irreps_in, hidden)
        self.right = EquivariantLinear(irreps_in, hidden)
        self.direct = EquivariantLinear(irreps_in, FeatureIrreps(channels, min(irreps_in.lmax, lmax_out)), bias=True)
        self.product = ChannelTensorProduct(irreps_in.lmax, irreps_in.lmax, lmax_out, channels, channels)
        self.irreps_out = ParityIrreps(channels, lmax_out)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out = self.product(self.left(h), self.right(h))  # [N, 2 D_out, C]
        direct = self.direct(h)
        return torch.cat([out[:, : direct.shape[1]] + direct, out[:, direct.shape[1] :]], dim=1)


class PairFeatures(nn.Module):
    """Features of every directed edge (receiver i, sender j), [E, 2 (lmax_out+1)^2, C].

        f_ij = sum_paths w_p(r_ij) CG_p( a(h_i) (x) [b(h_j) + s * Y(r_ij)] )

    a, b are linear maps, Y the spherical harmonics of the edge vector up to lmax_out with
    learned per-channel weights s (so a two-centre term f(r) Y_L(r) reaches every L directly), and w_p(r_ij) a bias-free radial MLP of the cutoff-enveloped Bessel basis, so
    the features vanish smoothly at r_max like the Hamiltonian blocks they produce.
    """

    def __init__(
        self,
        irreps_in: FeatureIrreps,
        channels: int,
        lmax_out: int,
        r_max: float,
        num_bessel: int,
        num_polynomial_cutoff: int,
        radial_mlp: List[int],
    ) -> None:
        super().__init__()
        lmax = irreps_in.lmax
        hidden = FeatureIrreps(channels, lmax)
        self.receiver_linear = EquivariantLinear(irreps_in, hidden)
        self.sender_linear = EquivariantLinear(irreps_in, hidden)
        lmax_sh = max(lmax, lmax_out)
        self.spherical_harmonics = o3.SphericalHarmonics(list(range(lmax_sh + 1)), True, "component")
        self.harmonic_weight = nn.Parameter(torch.randn(lmax_sh + 1, channels))
        self.register_buffer("degrees", component_degrees(lmax_sh))
        self.radial_embedding = RadialEmbedding(r_max, num_bessel, num_polynomial_cutoff)
        self.product = ChannelTensorProduct(lmax, lmax_sh, lmax_out, channels, channels)
        self.radial_mlp = RadialMLP([num_bessel] + list(radial_mlp), self.product.num_paths, channels)
        self.irreps_out = ParityIrreps(channels, lmax_out)

    def forward(self, h: torch.Tensor, vectors: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        lengths = torch.linalg.vector_norm(vectors, dim=1, keepdim=True)  # [E, 1]
        sh = self.spherical_harmonics(vectors)  # [E, D_sh]
        receiver = self.receiver_linear(h).index_select(0, edge_index[1])  # [E, D, C]
        sender = self.sender_linear(h).index_select(0, edge_index[0])  # [E, D, C]
        padding = sh.shape[1] - sender.shape[1]
        sender = torch.nn.functional.pad(sender, (0, 0, 0, padding))  # [E, D_sh, C]
        sender = sender + sh.unsqueeze(2) * self.harmonic_weight.index_select(0, self.degrees).unsqueeze(0)
        weights = self.radial_mlp(self.radial_embedding(lengths)).transpose(0, 1)  # [E, P, C]
        return self.product(receiver, sender, weights)
