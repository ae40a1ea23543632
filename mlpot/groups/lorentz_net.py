"""A Lorentz-equivariant MACE on particle four-momenta: jet tagging (arXiv 2306.00091).

Each constituent of a jet is a node; its four-momentum p_j, a (1/2,1/2) feature (the real
four-vector form of the group layer's :class:`~mlpot.groups.Lorentz`), plays the role that the
spherical harmonics of an edge play in MACE, and functions of the Minkowski products p_i . p_j
play the role of the radial basis. Per interaction:

1. messages on the complete graph of the jet (padding and self-pairs masked out): per channel,
   the node features h_j in V = (0,0) + (1/2,1/2) times the edge attribute Y_j = (1, p_j) in V,
   reduced with :func:`~mlpot.groups.reduce_product` onto (0,0) and (1/2,1/2), one learnable
   radial weight per path and channel, R(p_i . p_j), summed over j: A_i in V;
2. MACE's product: A_i contracted with itself up to ``correlation`` times through
   :func:`~mlpot.groups.symmetric_contraction_basis` (one weight per path, order and channel);
3. channel mixing per irrep and a scalar residual.

The (0,0) outputs of every interaction are read out per constituent, summed over the jet and
fed to a small classifier head: the logit is invariant under any proper orthochronous Lorentz
transformation of the whole jet, and under permutations of its constituents.

Exactness and round-off: every operation is equivariant, so invariance holds to round-off. A
boost of rapidity y multiplies components by up to e^|y| while the invariants stay put, so the
Minkowski product of two nearly collinear massless constituents (angle theta) keeps only about
1e-16 * e^(2|y|) / theta^2 relative precision, in the boosted inputs themselves as in the
arithmetic. In float64, under random rotations and boosts of rapidity 3: well-separated
momenta, outputs move ~1e-13 relative (tests/test_lorentz_jets.py checks 1e-8); toy jets, whose
boosted inputs' own pair invariants already move ~1e-6, outputs move ~1e-10 (checked: less
than the inputs' own error). Train in float32; check symmetry in float64.
"""

from functools import lru_cache
from typing import List, Tuple

import numpy as np
import torch
from torch import nn

from mlpot.groups import Lorentz, direct_sum, reduce_product, symmetric_contraction_basis

SCALAR = "(0,0)"
VECTOR = "(1/2,1/2)"


@lru_cache(maxsize=None)
def _bases(correlation: int) -> Tuple[np.ndarray, np.ndarray, List[np.ndarray], List[np.ndarray]]:
    """From the group layer, for V = (0,0) + (1/2,1/2) (scalar first, then (t, x, y, z)):
    the Clebsch-Gordan tensors of V x V onto (0,0) [k0, 1, 5, 5] and onto (1/2,1/2) [k1, 4, 5, 5],
    and the symmetric-contraction bases of orders 1..correlation onto each."""
    group = Lorentz()
    v = direct_sum(group.real_form(SCALAR), group.real_form(VECTOR))
    product = reduce_product(group, v, v)
    to_scalar = np.stack([c for label, c in product if label == SCALAR])
    to_vector = np.stack([c for label, c in product if label == VECTOR])
    scalar_paths = [symmetric_contraction_basis(group, v, order, SCALAR) for order in range(1, correlation + 1)]
    vector_paths = [symmetric_contraction_basis(group, v, order, VECTOR) for order in range(1, correlation + 1)]
    return to_scalar, to_vector, scalar_paths, vector_paths


def minkowski(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a . b = a_0 b_0 - a_1 b_1 - a_2 b_2 - a_3 b_3 over the last axis."""
    return a[..., 0] * b[..., 0] - (a[..., 1:] * b[..., 1:]).sum(dim=-1)


class SymmetricContraction(nn.Module):
    """MACE's product block on V = (0,0) + (1/2,1/2): sum over orders nu <= correlation and paths
    of w[nu, path, channel] U_nu[path] . A^(x nu), for one output irrep."""

    def __init__(self, bases: List[np.ndarray], channels: int):
        super().__init__()
        self.orders = len(bases)
        for order, basis in enumerate(bases, start=1):
            self.register_buffer(f"basis_{order}", torch.tensor(basis, dtype=torch.get_default_dtype()))  # [P, d_out, 5, ...]
            self.register_parameter(f"weight_{order}", nn.Parameter(torch.randn(len(basis), channels) / len(basis)))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``features`` [n, C, 5] -> [n, C, d_out]; Horner's scheme from the highest order down,
        valid because each U_nu is symmetric in its inputs."""
        n, channels, dim = features.shape
        result = None
        for order in range(self.orders, 0, -1):
            basis = getattr(self, f"basis_{order}")  # [P, d_out, 5, ..., 5]
            weighted = torch.einsum("pc,p...->c...", getattr(self, f"weight_{order}"), basis)  # [C, d_out, 5, ...]
            weighted = weighted.reshape(channels, -1, dim)  # [C, d_out * 5^(order-1), 5]
            if result is None:
                result = torch.einsum("cxa,nca->ncx", weighted, features)
            else:
                result = ((result.reshape(n, channels, -1, dim) + weighted) * features.unsqueeze(2)).sum(dim=-1)
        return result  # [n, C, d_out]


class LorentzInteraction(nn.Module):
    """One message-passing step and product: (scalars [B, N, C], vectors [B, N, C, 4]) updated."""

    def __init__(self, channels: int, radial_rank: int, correlation: int, vector_output: bool):
        super().__init__()
        to_scalar, to_vector, scalar_paths, vector_paths = _bases(correlation)
        dtype = torch.get_default_dtype()
        self.register_buffer("cg_scalar", torch.tensor(to_scalar, dtype=dtype))  # [k0, 1, 5, 5]
        self.register_buffer("cg_vector", torch.tensor(to_vector, dtype=dtype))  # [k1, 4, 5, 5]
        self.n_scalar_paths, self.n_vector_paths = len(to_scalar), len(to_vector)
        # radial weight of path k, channel c: R_ij,kc = sum_h F_ij,h W_h,kc (F shared by all interactions)
        self.radial_weight = nn.Parameter(
            torch.randn(radial_rank, channels, self.n_scalar_paths + self.n_vector_paths) / radial_rank**0.5
        )
        self.mix_scalar = nn.Linear(channels, channels, bias=False)
        self.mix_vector = nn.Linear(channels, channels, bias=False)
        self.product_scalar = SymmetricContraction(scalar_paths, channels)
        self.product_vector = SymmetricContraction(vector_paths, channels) if vector_output else None
        self.out_scalar = nn.Linear(channels, channels, bias=False)
        self.residual = nn.Linear(channels, channels, bias=False)
        self.out_vector = nn.Linear(channels, channels, bias=False) if vector_output else None

    def forward(
        self,
        scalars: torch.Tensor,  # [B, N, C]
        vectors: torch.Tensor,  # [B, N, C, 4]
        momenta: torch.Tensor,  # [B, N, 4]
        radial_features: torch.Tensor,  # [B, N, N, H] (H = radial rank), zero on masked pairs
        neighbours: float,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        batch, n, channels = scalars.shape
        node = torch.cat([scalars.unsqueeze(-1), vectors], dim=-1)  # [B, N, C, 5]
        edge = torch.cat([torch.ones_like(momenta[..., :1]), momenta], dim=-1)  # [B, N, 5]
        # tensor product of node features and edge attribute, per path; it depends on j only
        outer = (node.unsqueeze(-1) * edge[:, :, None, None, :]).reshape(batch, n, channels, 25)  # [B, N, C, 5 * 5]
        to_scalar = (outer @ self.cg_scalar.reshape(-1, 25).T).reshape(batch, n, channels, self.n_scalar_paths, 1)
        to_vector = (outer @ self.cg_vector.reshape(-1, 25).T).reshape(batch, n, channels, self.n_vector_paths, 4)
        # sum_j R_ij,kc T_j,kc = sum_(j,h) F_ij,h (sum_k W_h,kc T_j,kc): one batched matmul
        k0 = self.n_scalar_paths
        weighted = torch.cat(
            [
                torch.einsum("hck,zjcko->zjhco", self.radial_weight[..., :k0], to_scalar),
                torch.einsum("hck,zjcko->zjhco", self.radial_weight[..., k0:], to_vector),
            ],
            dim=-1,
        )  # [B, N, H, C, 5]
        hidden = radial_features.shape[-1]
        messages = torch.bmm(radial_features.reshape(batch, n, n * hidden), weighted.reshape(batch, n * hidden, channels * 5))
        messages = messages.reshape(batch, n, channels, 5)
        message_scalar, message_vector = messages[..., 0], messages[..., 1:]  # [B, N, C], [B, N, C, 4]
        message_scalar = self.mix_scalar(message_scalar) / neighbours  # [B, N, C]
        message_vector = self.mix_vector(message_vector.transpose(-1, -2)).transpose(-1, -2) / neighbours  # [B, N, C, 4]
        features = torch.cat([message_scalar.unsqueeze(-1), message_vector], dim=-1).reshape(batch * n, channels, 5)
        new_scalars = self.out_scalar(self.product_scalar(features).reshape(batch, n, channels)) + self.residual(scalars)
        if self.product_vector is None:
            return new_scalars, torch.zeros_like(vectors)
        product = self.product_vector(features).reshape(batch, n, channels, 4)
        return new_scalars, self.out_vector(product.transpose(-1, -2)).transpose(-1, -2)


class LorentzMACE(nn.Module):
    """Jet classifier: four-momenta [B, N, 4] (E, px, py, pz) in GeV and mask [B, N] -> logits [B]."""

    def __init__(
        self,
        channels: int = 16,
        interactions: int = 2,
        correlation: int = 3,
        radial_basis: int = 12,
        radial_width: int = 32,
        radial_rank: int = 8,
        readout_hidden: int = 64,
        momentum_scale: float = 100.0,
        neighbours: float = 20.0,
    ):
        super().__init__()
        self.momentum_scale = momentum_scale
        self.neighbours = neighbours
        # Gaussians on log(p_i . p_j / scale^2): pairs span ~1e-9 (soft, collinear) to ~10
        self.register_buffer("log_centres", torch.linspace(-20.0, 2.0, radial_basis))
        self.log_width = 22.0 / (radial_basis - 1)
        self.radial = nn.Sequential(
            nn.Linear(radial_basis, radial_width), nn.SiLU(), nn.Linear(radial_width, radial_rank), nn.SiLU()
        )
        self.embedding = nn.Linear(2 * radial_basis + 2, channels)
        # invariant features only, so normalising them over channels keeps the symmetry
        self.norms = nn.ModuleList(nn.LayerNorm(channels) for _ in range(interactions))
        self.interactions = nn.ModuleList(
            LorentzInteraction(channels, radial_rank, correlation, vector_output=k < interactions - 1) for k in range(interactions)
        )
        self.readout = nn.Sequential(
            nn.Linear(channels * interactions, readout_hidden), nn.SiLU(), nn.Linear(readout_hidden, readout_hidden)
        )
        self.head = nn.Sequential(nn.SiLU(), nn.Linear(readout_hidden, readout_hidden), nn.SiLU(), nn.Linear(readout_hidden, 1))

    def _basis(self, log_invariant: torch.Tensor) -> torch.Tensor:
        return torch.exp(-(((log_invariant.unsqueeze(-1) - self.log_centres) / self.log_width) ** 2))

    def forward(self, momenta: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        per_node = self.readout(self.node_invariants(momenta, mask)) * mask.unsqueeze(-1)  # [B, N, R]
        return self.head(per_node.sum(dim=1) / self.neighbours).squeeze(-1)  # [B]

    def node_invariants(self, momenta: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The (0,0) outputs of every interaction per constituent [B, N, C * interactions], zero on
        padding: what the readout sees, each of order one."""
        momenta = momenta * mask.unsqueeze(-1) / self.momentum_scale  # [B, N, 4]
        batch, n, _ = momenta.shape
        eye = torch.eye(n, dtype=torch.bool, device=mask.device)
        pair_mask = mask.unsqueeze(1) & mask.unsqueeze(2) & ~eye  # [B, N, N]
        # p_i . p_j off the diagonal only: p_i . p_i of a massless constituent is round-off
        pair = minkowski(momenta.unsqueeze(2), momenta.unsqueeze(1))  # [B, N, N]
        pair = torch.where(pair_mask, pair, torch.ones_like(pair))
        pair_basis = self._basis(torch.log(pair.clamp_min(1e-30))) * pair_mask.unsqueeze(-1)  # [B, N, N, K]
        radial_features = self.radial(pair_basis) * pair_mask.unsqueeze(-1)  # [B, N, N, H]

        # node invariants: p_i . P_jet (without p_i . p_i) and the jet's mass squared
        node_jet = torch.where(pair_mask, pair, torch.zeros_like(pair)).sum(dim=2)  # [B, N]
        jet_mass_sq = 0.5 * node_jet.sum(dim=1, keepdim=True).expand(-1, n)  # [B, N]
        invariants = torch.stack([node_jet, jet_mass_sq], dim=-1).clamp_min(1e-30)  # [B, N, 2]
        log_invariants = torch.log(invariants)  # [B, N, 2]
        node_basis = torch.cat([self._basis(log_invariants).flatten(-2), log_invariants / 10.0], dim=-1)  # [B, N, 2K + 2]
        scalars = self.embedding(node_basis) * mask.unsqueeze(-1)  # [B, N, C]
        vectors = scalars.new_zeros(scalars.shape + (4,))  # [B, N, C, 4]

        outputs = []
        for interaction, norm in zip(self.interactions, self.norms):
            scalars, vectors = interaction(scalars, vectors, momenta, radial_features, self.neighbours)
            scalars = norm(scalars) * mask.unsqueeze(-1)
            vectors = vectors * mask.unsqueeze(-1).unsqueeze(-1)
            outputs.append(scalars)
        return torch.cat(outputs, dim=-1)
