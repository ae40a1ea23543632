"""Channel-wise tensor product of two feature tensors into irreps of both parities.

Orbital blocks need irreps of parity (-1)^(l1 + l2), which for L = l1 + l2 - 1, l1 + l2 - 3, ...
is not L's natural parity (a p-p block holds a pseudovector, 1e). Products of two natural-parity
features supply both kinds (1o x 1o -> 1e is the cross product), so the output layout is
:class:`ParityIrreps`: ``[n, 2 (lmax + 1)^2, C]``, first every l = 0..lmax with parity (-1)^l,
then every l with parity (-1)^(l+1), each in e3nn's component order.
"""

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch
from e3nn import o3
from torch import nn

from mlpot.nn.irreps import l_slice, wigner_d


@dataclass(frozen=True)
class ParityIrreps:
    """C channels of l = 0..lmax, natural parity block then unnatural parity block."""

    channels: int
    lmax: int

    @property
    def dim(self) -> int:
        return 2 * (self.lmax + 1) ** 2

    def component_start(self, l: int, unnatural: int) -> int:
        """Index of the first component of degree l in the given parity block."""
        return unnatural * (self.lmax + 1) ** 2 + l * l


def parity_wigner_d(lmax: int, rotation: torch.Tensor) -> torch.Tensor:
    """[2 D, 2 D] representation of an O(3) element on the :class:`ParityIrreps` layout."""
    natural = wigner_d(lmax, rotation)
    return torch.block_diag(natural, torch.linalg.det(rotation) * natural)


def coupling_paths(lmax1: int, lmax2: int, lmax_out: int) -> List[Tuple[int, int, int]]:
    """(l1, l2, L) with |l1 - l2| <= L <= min(l1 + l2, lmax_out)."""
    return [
        (l1, l2, big_l)
        for l1 in range(lmax1 + 1)
        for l2 in range(lmax2 + 1)
        for big_l in range(abs(l1 - l2), min(l1 + l2, lmax_out) + 1)
    ]


class ChannelTensorProduct(nn.Module):
    """x [n, (lmax1+1)^2, C] (x) y [n, (lmax2+1)^2, C] -> [n, 2 (lmax_out+1)^2, C_out].

    Channel c of x couples with channel c of y through every path (l1, l2 -> L); with
    ``weights`` [n, P, C] each path is first scaled per item and channel (radial weights on
    edges). Paths ending in the same (L, parity) are then mixed, with the channels, by one
    linear map per (L, parity). The couplings of all paths are one [D1 D2, Q] matrix, so the
    contraction is a single matmul over the [n, C, D1 D2] outer products.
    """

    groups: List[Tuple[int, int, int, int]]
    layout: List[Tuple[int, int]]

    def __init__(self, lmax1: int, lmax2: int, lmax_out: int, channels: int, channels_out: int) -> None:
        super().__init__()
        self.irreps_out = ParityIrreps(channels_out, lmax_out)
        self.dim1, self.dim2 = (lmax1 + 1) ** 2, (lmax2 + 1) ** 2
        paths = coupling_paths(lmax1, lmax2, lmax_out)
        self.num_paths = len(paths)
        members: Dict[Tuple[int, int], List[int]] = {}
        for p, (l1, l2, big_l) in enumerate(paths):
            members.setdefault(((l1 + l2 + big_l) % 2, big_l), []).append(p)
        columns = sum(len(ps) * (2 * key[1] + 1) for key, ps in members.items())
        cg = torch.zeros(self.dim1, self.dim2, columns, dtype=torch.float64)
        path_of_column: List[int] = []
        self.groups = []  # (first column, number of paths, 2L+1, first weight row)
        group_of: Dict[Tuple[int, int], int] = {}
        column, weight_row = 0, 0
        for key in sorted(members):
            big_l = key[1]
            for p in members[key]:
                l1, l2, _ = paths[p]
                block = o3.wigner_3j(l1, l2, big_l, dtype=torch.float64) * math.sqrt(2 * big_l + 1)
                cg[l_slice(l1), l_slice(l2), column : column + 2 * big_l + 1] = block
                path_of_column += [p] * (2 * big_l + 1)
                column += 2 * big_l + 1
            group_of[key] = len(self.groups)
            count = len(members[key])
            self.groups.append((column - count * (2 * big_l + 1), count, 2 * big_l + 1, weight_row))
            weight_row += count * channels
        self.register_buffer("cg", cg.reshape(self.dim1 * self.dim2, columns).to(torch.get_default_dtype()))
        self.register_buffer("path_of_column", torch.tensor(path_of_column, dtype=torch.long))
        # Output blocks in ParityIrreps order: (group index or -1 for an irrep no path reaches, 2L+1).
        self.layout = [(group_of.get((parity, l), -1), 2 * l + 1) for parity in (0, 1) for l in range(lmax_out + 1)]
        self.weight = nn.Parameter(torch.randn(weight_row, channels_out))
        self.group_scale = [1.0 / math.sqrt(count * channels) for _, count, _, _ in self.groups]
        self.channels_out = channels_out

    def forward(self, x: torch.Tensor, y: torch.Tensor, weights: Optional[torch.Tensor] = None) -> torch.Tensor:
        n, channels = x.shape[0], x.shape[2]
        outer = (x.unsqueeze(2) * y.unsqueeze(1)).reshape(n, self.dim1 * self.dim2, channels)
        coupled = torch.matmul(outer.transpose(1, 2), self.cg)  # [n, C, Q]
        if weights is not None:  # [n, P, C]
            coupled = coupled * weights.transpose(1, 2).index_select(2, self.path_of_column)
        blocks: List[torch.Tensor] = []
        for group, size in self.layout:
            if group < 0:
                blocks.append(torch.zeros(n, size, self.channels_out, dtype=x.dtype, device=x.device))
                continue
            start, count, dim, row = self.groups[group]
            part = coupled[:, :, start : start + count * dim].reshape(n, channels, count, dim)
            part = part.permute(0, 3, 1, 2).reshape(n, dim, channels * count)  # [n, 2L+1, C P]
            weight = self.weight[row : row + channels * count] * self.group_scale[group]
            blocks.append(torch.matmul(part, weight))  # [n, 2L+1, C_out]
        return torch.cat(blocks, dim=1)


class ParityLinear(nn.Module):
    """Channel mixing within each (l, parity) of :class:`ParityIrreps` features, [n, 2D, C] -> [n, 2D, C_out]."""

    def __init__(self, irreps_in: ParityIrreps, channels_out: int) -> None:
        super().__init__()
        self.lmax = irreps_in.lmax
        self.weight = nn.Parameter(torch.randn(2 * (self.lmax + 1), irreps_in.channels, channels_out))
        self.scale = 1.0 / math.sqrt(irreps_in.channels)
        self.irreps_out = ParityIrreps(channels_out, irreps_in.lmax)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = (self.lmax + 1) * (self.lmax + 1)
        blocks: List[torch.Tensor] = []
        for parity in range(2):
            for l in range(self.lmax + 1):
                start = parity * half + l * l
                weight = self.weight[parity * (self.lmax + 1) + l] * self.scale
                blocks.append(torch.matmul(x[:, start : start + 2 * l + 1], weight))
        return torch.cat(blocks, dim=1)
