"""Readout from irreps features to orbital blocks of a matrix over atomic orbitals.

A block between the shells of atom A (rows) and atom B (columns) is, shell pair by shell pair,

    B[(a, m_a), (b, m_b)] = sum_{L = |l_a - l_b|}^{l_a + l_b} sum_M CG(l_a m_a, l_b m_b | L M) c_{ab}^L[M]

with c_{ab}^L a channel of the L-irrep features of parity (-1)^(l_a + l_b) (Wigner-3j
coefficients in e3nn's component order, turned into the caller's AO order by ``shell_basis(l)``,
e.g. :func:`mlpot.qm.ao_order.pyscf_from_e3nn` for PySCF's). Each
block type (an element for diagonal blocks, an ordered element pair for edge blocks) has its own
linear map from the features to its channels c_{ab}^L; the Clebsch-Gordan expansion of all shell
pairs of a type is one fixed [F, O*O] matrix, so a type costs two matmuls.
"""

import math
from typing import Callable, List, Sequence, Tuple

import torch
from e3nn import o3
from torch import nn

from mlpot.nn.tensor_product import ParityIrreps

ShellBasis = Callable[[int], torch.Tensor]  # l -> U_l [2l+1, 2l+1]: the AO order's components from e3nn's


def e3nn_order(l: int) -> torch.Tensor:
    """The identity basis change: blocks in e3nn's own component order."""
    return torch.eye(2 * l + 1, dtype=torch.float64)


class TypeBlockReadout(nn.Module):
    """Features [n, 2 (L+1)^2, C] of items of one block type -> blocks [n, O*O] (zero-padded)."""

    groups: List[Tuple[int, int, int]]

    def __init__(
        self, rows: Sequence[int], cols: Sequence[int], irreps_in: ParityIrreps, size: int, shell_basis: ShellBasis = e3nn_order
    ) -> None:
        super().__init__()
        row_offsets = [sum(2 * l + 1 for l in rows[:a]) for a in range(len(rows))]
        col_offsets = [sum(2 * l + 1 for l in cols[:b]) for b in range(len(cols))]
        # Channels c_{ab}^L of each (L, parity), in a fixed order of shell pairs.
        channels = {}
        for a, la in enumerate(rows):
            for b, lb in enumerate(cols):
                for big_l in range(abs(la - lb), la + lb + 1):
                    if big_l > irreps_in.lmax:
                        raise ValueError(f"shell pair l = {la}, {lb} needs L = {big_l} > lmax {irreps_in.lmax} of the features")
                    channels.setdefault((big_l, (la + lb + big_l) % 2), []).append((a, b))
        self.groups = []  # (first feature component, 2L+1, number of channels)
        expansion_rows = []
        for (big_l, parity), pairs in sorted(channels.items()):
            self.groups.append((irreps_in.component_start(big_l, parity), 2 * big_l + 1, len(pairs)))
            # Row (M, k) of the expansion writes channel k's component M into its block.
            rows_of_group = torch.zeros(2 * big_l + 1, len(pairs), size, size, dtype=torch.float64)
            for k, (a, b) in enumerate(pairs):
                la, lb = rows[a], cols[b]
                cg = o3.wigner_3j(la, lb, big_l, dtype=torch.float64) * math.sqrt((2 * la + 1) * (2 * lb + 1))
                cg = torch.einsum("ij,kl,jlm->mik", shell_basis(la), shell_basis(lb), cg)  # [M, m_a, m_b]
                ra, cb = row_offsets[a], col_offsets[b]
                rows_of_group[:, k, ra : ra + 2 * la + 1, cb : cb + 2 * lb + 1] = cg
            expansion_rows.append(rows_of_group.reshape(-1, size * size))
        self.register_buffer("expansion", torch.cat(expansion_rows).to(torch.get_default_dtype()))
        self.num_channels = sum(count for _, _, count in self.groups)
        self.weight = nn.Parameter(torch.randn(irreps_in.channels, self.num_channels))
        self.scale = 1.0 / math.sqrt(irreps_in.channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        weight = self.weight * self.scale
        coefficients: List[torch.Tensor] = []
        k = 0
        for start, dim, count in self.groups:
            part = torch.matmul(x[:, start : start + dim, :], weight[:, k : k + count])  # [n, 2L+1, K]
            coefficients.append(part.reshape(n, dim * count))
            k += count
        return torch.matmul(torch.cat(coefficients, dim=1), self.expansion)  # [n, O*O]


class OrbitalBlockReadout(nn.Module):
    """Features [n, 2 (L+1)^2, C] and block types [n] -> blocks [n, O, O], one readout per type.

    ``block_types[t] = (row shells, column shells)``, each a list of l in AO order; ``shell_basis``
    maps e3nn's components of a shell to that AO order (default: e3nn's order itself).
    """

    def __init__(
        self,
        block_types: Sequence[Tuple[Sequence[int], Sequence[int]]],
        irreps_in: ParityIrreps,
        size: int,
        shell_basis: ShellBasis = e3nn_order,
    ) -> None:
        super().__init__()
        self.size = size
        self.num_types = len(block_types)
        self.readouts = nn.ModuleList(
            [TypeBlockReadout(rows, cols, irreps_in, size, shell_basis) for rows, cols in block_types]
        )

    def forward(self, x: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        out = torch.zeros(n, self.size * self.size, dtype=x.dtype, device=x.device)
        if n == 0:
            return out.view(n, self.size, self.size)
        order = torch.argsort(types, stable=True)
        counts: List[int] = torch.bincount(types, minlength=self.num_types).tolist()
        ordered = x.index_select(0, order)
        pieces: List[torch.Tensor] = []
        start = 0
        for t, readout in enumerate(self.readouts):
            count = counts[t]
            if count > 0:
                pieces.append(readout(ordered[start : start + count]))
            start += count
        return out.index_copy(0, order, torch.cat(pieces, dim=0)).view(n, self.size, self.size)
