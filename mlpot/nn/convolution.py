"""Interaction block: equivariant convolution of neighbour features with edge harmonics.

Per edge j -> i and path p = (l1, l2 -> l3), channel by channel ("uvu"):

    m_ij[p, m3, c] = w_ij[p, c] * sum_{m1, m2} CG_p[m1, m2, m3] h_j[l1 m1, c] Y_ij[l2 m2]

with w_ij from a radial MLP, summed over neighbours, then a per-l3 linear mixes paths and
channels on the nodes. Two execution paths compute the same sums:

- fused (the default where a kernel exists): one operator per layer and direction
  (:mod:`mlpot.kernels.edge_tp`) gathers, weights, couples and scatters without building any
  per-edge message; its gradients, and theirs, are the same operator;
- reference: path by path in plain torch operations, each path's messages built on the edges
  and summed with index_add. TorchScript exports for LAMMPS use it.

Both read their Clebsch-Gordan coefficients from the ``cg`` buffer (the kernel's sparse tables
are derived from it, also when a saved model is loaded).
"""

import math
from typing import Final, List, Tuple

import torch
from e3nn import o3
from torch import nn

from mlpot.kernels.coupling import coupling_tables
from mlpot.kernels.edge_tp import edge_tp
from mlpot.kernels import default_fused
from mlpot.nn.irreps import FeatureIrreps, l_slice
from mlpot.nn.linear import EquivariantLinear, ScaledLinear
from mlpot.nn.radial import RadialMLP


def tensor_product_paths(lmax_in: int, lmax_sh: int, lmax_out: int) -> List[Tuple[int, int, int]]:
    """(l1, l2, l3) with natural parities in and out, grouped by l1 (then l3, then l2)."""
    return [
        (l1, l2, l3)
        for l1 in range(lmax_in + 1)
        for l3 in range(lmax_out + 1)
        for l2 in range(lmax_sh + 1)
        if abs(l1 - l2) <= l3 <= l1 + l2 and (l1 + l2 + l3) % 2 == 0
    ]


class EdgeTensorProduct(nn.Module):
    """Weighted channel-wise tensor product on edges, summed onto receivers.

    forward(h [N, D_in, C], sh [E, D_sh], weights, sender [E], receiver [E], num_receivers)
        -> list over paths p = (l1, l2, l3) of [num_receivers, 2 l3 + 1, C],

    ``num_receivers`` defaults to N; attention with non-linear messages takes every edge's own
    message by passing receiver = arange(E) and num_receivers = E.
    with ``weights`` [E, P, C] on the fused path and [P, E, C] on the reference path (each
    path's weights contiguous for its own multiplies); :attr:`fused` says which.

    Reference path: each path is computed from small per-edge inputs and summed onto the nodes
    on its own: the radial weight multiplies the sender features before the coupling (a
    [E, 2l1+1, C] tensor), and for l1 = 0 the coupling is the outer product with Y_l2.
    """

    coupling_dims: List[int]
    paths: List[Tuple[int, int, int]]
    path_dims: List[int]
    fused: Final[bool]  # a TorchScript constant: a scripted model holds only the chosen path

    def __init__(self, lmax_in: int, lmax_sh: int, lmax_out: int) -> None:
        super().__init__()
        self.paths = tensor_product_paths(lmax_in, lmax_sh, lmax_out)
        self.num_paths = len(self.paths)
        self.lmax_in = lmax_in
        self.sh_dims = [2 * l + 1 for l in range(lmax_sh + 1)]
        # Paths with l1 > 0 contract Y with a CG tensor into a [2l3+1, 2l1+1] matrix per edge.
        coupled = [(l1, l2, l3) for l1, l2, l3 in self.paths if l1 > 0]
        cg = torch.zeros((lmax_sh + 1) ** 2, sum((2 * l1 + 1) * (2 * l3 + 1) for l1, _, l3 in coupled), dtype=torch.float64)
        self.coupling_dims: List[int] = []
        start = 0
        for l1, l2, l3 in coupled:
            block = o3.wigner_3j(l1, l2, l3, dtype=torch.float64) * math.sqrt(2 * l3 + 1)  # [m1, m2, m3]
            size = (2 * l1 + 1) * (2 * l3 + 1)
            cg[l_slice(l2), start : start + size] = block.permute(1, 2, 0).reshape(2 * l2 + 1, size)
            self.coupling_dims.append(size)
            start += size
        self.register_buffer("cg", cg.to(torch.get_default_dtype()))
        self.path_dims = [2 * l3 + 1 for _, _, l3 in self.paths]
        self.lmax_sh = lmax_sh
        self._set_tables()
        self.fused = default_fused()

    def _set_tables(self) -> None:
        """The fused kernel's sparse tables from ``cg`` (not saved: derived again on load)."""
        tables = coupling_tables(self.paths, self.cg, self.lmax_in, self.lmax_sh)
        device = self.cg.device
        self.register_buffer("kernel_triples", tables.triples.to(device), persistent=False)
        self.register_buffer("kernel_starts", tables.starts.to(device), persistent=False)
        self.register_buffer("kernel_sh_index", tables.sh_index.to(device), persistent=False)
        self.register_buffer("kernel_coeff", tables.coeff.to(device=device, dtype=self.cg.dtype), persistent=False)
        self.dim_in = tables.dim_in
        self.dim_out = tables.dim_out

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._set_tables()

    def forward(
        self,
        h: torch.Tensor,
        sh: torch.Tensor,
        weights: torch.Tensor,
        sender: torch.Tensor,
        receiver: torch.Tensor,
        num_receivers: int = -1,
    ) -> List[torch.Tensor]:
        num_nodes = h.shape[0] if num_receivers < 0 else num_receivers
        if self.fused:
            return self._fused(h, sh, weights, sender, receiver, num_nodes)
        num_edges = sh.shape[0]
        sh_blocks = torch.split(sh, self.sh_dims, dim=1)  # [E, 2l2+1] each
        path_weights = torch.unbind(weights, dim=0)  # [E, C] each, contiguous
        couplings: List[torch.Tensor] = []
        if len(self.coupling_dims) > 0:
            couplings = list(torch.split(torch.matmul(sh, self.cg), self.coupling_dims, dim=1))
        h_sender = [
            h[:, l1 * l1 : (l1 + 1) * (l1 + 1), :].index_select(0, sender) for l1 in range(self.lmax_in + 1)
        ]  # [E, 2l1+1, C] each
        out: List[torch.Tensor] = []
        coupled = 0
        for p, (l1, l2, l3) in enumerate(self.paths):
            weighted = h_sender[l1] * path_weights[p].unsqueeze(1)  # [E, 2l1+1, C]
            if l1 == 0:  # CG(0, l, l) is the identity: outer product with Y_l
                message = sh_blocks[l2].unsqueeze(2) * weighted  # [E, 2l3+1, C]
            else:
                coupling = couplings[coupled].view(num_edges, 2 * l3 + 1, 2 * l1 + 1)
                message = torch.bmm(coupling, weighted)  # [E, 2l3+1, C]
                coupled += 1
            summed = torch.zeros(num_nodes, 2 * l3 + 1, h.shape[2], dtype=h.dtype, device=h.device)
            out.append(summed.index_add(0, receiver, message))
        return out

    def _fused(
        self,
        h: torch.Tensor,
        sh: torch.Tensor,
        weights: torch.Tensor,
        sender: torch.Tensor,
        receiver: torch.Tensor,
        num_receivers: int,
    ) -> List[torch.Tensor]:
        dims = [h.shape[0], num_receivers, self.dim_in, self.num_paths, sh.shape[1], self.dim_out, h.shape[2]]
        summed = edge_tp(
            h, weights, sh, None, sender, receiver,
            self.kernel_triples, self.kernel_starts, self.kernel_sh_index, self.kernel_coeff, 3, dims,
        )  # [N, Q, C]
        return list(torch.split(summed, self.path_dims, dim=1))


class PathLinear(nn.Module):
    """Mixes the paths and channels that end in the same l3: per-path [N, 2l3+1, C] -> [N, D_out, C_out].

    A sum of one matmul per path rather than a matmul of the channel-concatenated paths, so
    the gradient reaching each path is contiguous (its receivers' gather stays fast).
    """

    members: List[List[int]]

    def __init__(self, tp: EdgeTensorProduct, channels_in: int, irreps_out: FeatureIrreps) -> None:
        super().__init__()
        path_l3 = [path[2] for path in tp.paths]
        if sorted(set(path_l3)) != list(range(irreps_out.lmax + 1)):
            raise ValueError(f"tensor-product paths reach l = {sorted(set(path_l3))}, not 0..{irreps_out.lmax}")
        self.members = [[p for p, l3 in enumerate(path_l3) if l3 == target] for target in range(irreps_out.lmax + 1)]
        self.weight = nn.Parameter(torch.randn(len(tp.paths), channels_in, irreps_out.channels))
        self.path_scale = [1.0 / math.sqrt(len(self.members[l3]) * channels_in) for l3 in path_l3]

    def forward(self, paths: List[torch.Tensor]) -> torch.Tensor:
        blocks: List[torch.Tensor] = []
        for members in self.members:
            block = torch.matmul(paths[members[0]], self.weight[members[0]] * self.path_scale[members[0]])
            for p in members[1:]:
                block = block + torch.matmul(paths[p], self.weight[p] * self.path_scale[p])  # [N, 2l3+1, C_out]
            blocks.append(block)
        return torch.cat(blocks, dim=1)


class Interaction(nn.Module):
    """linear up -> radial-weighted edge tensor product -> sum / avg_num_neighbors -> linear down.

    Takes node features ``irreps_in`` and returns messages with every l <= lmax_out
    (``irreps_out``, same channels). With ``density_normalization`` the sum is divided by
    1 + sum_j tanh((w . radial_ij)^2 / radial_dim), a learnt, smooth neighbour count, instead of
    the fixed avg_num_neighbors (mace-torch's RealAgnosticDensity*InteractionBlock).
    """

    def __init__(
        self,
        irreps_in: FeatureIrreps,
        irreps_out: FeatureIrreps,
        lmax_sh: int,
        radial_dim: int,
        radial_mlp: List[int],
        avg_num_neighbors: float,
        density_normalization: bool = False,
    ) -> None:
        super().__init__()
        self.irreps_in = irreps_in
        self.irreps_out = irreps_out
        channels = irreps_in.channels
        self.linear_up = EquivariantLinear(irreps_in, irreps_in)
        self.tensor_product = EdgeTensorProduct(irreps_in.lmax, lmax_sh, irreps_out.lmax)
        self.num_paths = self.tensor_product.num_paths
        self.radial_mlp = RadialMLP([radial_dim] + list(radial_mlp), self.num_paths, channels)
        self.linear_down = PathLinear(self.tensor_product, channels, irreps_out)
        self.inv_avg_num_neighbors = 1.0 / float(avg_num_neighbors)
        self.density = ScaledLinear(radial_dim, 1) if density_normalization else None

    def forward(
        self,
        h: torch.Tensor,
        sh: torch.Tensor,
        radial: torch.Tensor,
        envelope: torch.Tensor,
        sender: torch.Tensor,
        receiver: torch.Tensor,
    ) -> torch.Tensor:
        """``envelope`` [E, 1], the cutoff function, is part of every interaction's inputs (the
        attention interaction weights neighbours by it); here it is already inside ``radial``."""
        h = self.linear_up(h)
        if self.tensor_product.fused:
            weights = self.radial_mlp.edge_major(radial)  # [E, P, C]
        else:
            weights = self.radial_mlp(radial)  # [P, E, C]
        summed = self.tensor_product(h, sh, weights, sender, receiver)  # per path [N, 2l3+1, C]
        density_layer = self.density
        if density_layer is not None:
            edge_density = torch.tanh(density_layer(radial) ** 2).squeeze(1)  # [E]
            density = torch.zeros(h.shape[0], dtype=h.dtype, device=h.device).index_add(0, receiver, edge_density)
            return self.linear_down(summed) / (density + 1).view(-1, 1, 1)
        return self.linear_down(summed) * self.inv_avg_num_neighbors
