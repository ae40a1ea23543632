"""The edge tensor product as data: the sparse coupling tables every execution path reads.

The interaction's message from sender j to receiver i along path p = (l1, l2 -> l3) is

    m_ij[p, m3, c] = w_ij[p, c] * sum_{m1, m2} CG_p[m1, m2, m3] x_j[l1 m1, c] Y_ij[l2 m2]

Writing i = l1^2 + m1 (input component), k = q_p + m3 (row of path p in the concatenated
per-path output, q_p = sum of 2 l3 + 1 over earlier paths) and j = l2^2 + m2, the whole
operation is the 4-linear form

    T(x, w, y, o) = sum_e sum_t a_t(y_e) sum_c x[s_e, in_t, c] w[e, path_t, c] o[r_e, out_t, c]
    a_t(y_e) = sum_{q in row t} coeff[q] y[e, sh[q]]

over "triples" t = (path, in, out) that have a non-zero coupling. The forward is dT/do (messages
summed onto receivers); the gradients are dT/dx, dT/dw, dT/dy, and the gradient of any of those
is again one of the four (see :mod:`mlpot.kernels.edge_tp`). This module turns a path list and
its Clebsch-Gordan matrix into those tables; the reference path, the CPU kernel and the GPU
kernel all read them, so the math lives in one place.
"""

from dataclasses import dataclass
from typing import List, Tuple

import torch

#: A coupling coefficient below this is structurally zero (the CG tensors are exact in float64).
ZERO = 1e-12


@dataclass(frozen=True)
class CouplingTables:
    """Triples (path, in, out) [T, 3] int32, CSR ``starts`` [T + 1] int32 into ``sh_index``
    [nnz] int32 and ``coeff`` [nnz] (float64; converted to the data's dtype where used)."""

    triples: torch.Tensor
    starts: torch.Tensor
    sh_index: torch.Tensor
    coeff: torch.Tensor
    dim_in: int
    dim_sh: int
    dim_out: int
    num_paths: int

    def dense(self) -> torch.Tensor:
        """The couplings as a dense [T, D_sh] matrix (for the plain-torch evaluation)."""
        rows = torch.repeat_interleave(
            torch.arange(self.triples.shape[0]), (self.starts[1:] - self.starts[:-1]).long()
        )
        matrix = torch.zeros(self.triples.shape[0], self.dim_sh, dtype=self.coeff.dtype)
        matrix[rows, self.sh_index.long()] = self.coeff
        return matrix


def output_offsets(paths: List[Tuple[int, int, int]]) -> List[int]:
    """q_p: first row of each path's [2 l3 + 1] block in the concatenated output."""
    offsets, row = [], 0
    for _, _, l3 in paths:
        offsets.append(row)
        row += 2 * l3 + 1
    return offsets


def coupling_tables(paths: List[Tuple[int, int, int]], cg: torch.Tensor, lmax_in: int, lmax_sh: int) -> CouplingTables:
    """Tables of :class:`~mlpot.nn.convolution.EdgeTensorProduct`'s paths from its ``cg`` buffer.

    ``cg`` [D_sh, sum over paths with l1 > 0 of (2 l3 + 1)(2 l1 + 1)] maps Y to each such path's
    [2 l3 + 1, 2 l1 + 1] coupling matrix (row-major); paths with l1 = 0 couple by the identity
    (CG(0, l, l) = 1 in the component normalisation used here). Reading the buffer, not
    recomputing CG coefficients, keeps a loaded model's tables equal to the ones it was saved with.
    """
    triples: List[Tuple[int, int, int]] = []
    rows: List[List[Tuple[int, float]]] = []
    cg64 = cg.detach().to(torch.float64).cpu()
    column = 0
    for p, ((l1, l2, l3), q) in enumerate(zip(paths, output_offsets(paths))):
        for m3 in range(2 * l3 + 1):
            for m1 in range(2 * l1 + 1):
                if l1 == 0:
                    entries = [(l2 * l2 + m3, 1.0)]
                else:
                    block = cg64[:, column + m3 * (2 * l1 + 1) + m1]
                    entries = [(int(j), float(block[j])) for j in torch.nonzero(block.abs() > ZERO).flatten()]
                if entries:
                    triples.append((p, l1 * l1 + m1, q + m3))
                    rows.append(entries)
        if l1 > 0:
            column += (2 * l1 + 1) * (2 * l3 + 1)
    if column != cg64.shape[1]:
        raise ValueError(f"cg has {cg64.shape[1]} columns, the paths use {column}")
    starts = [0]
    for entries in rows:
        starts.append(starts[-1] + len(entries))
    return CouplingTables(
        triples=torch.tensor(triples, dtype=torch.int32).reshape(-1, 3),
        starts=torch.tensor(starts, dtype=torch.int32),
        sh_index=torch.tensor([j for entries in rows for j, _ in entries], dtype=torch.int32),
        coeff=torch.tensor([value for entries in rows for _, value in entries], dtype=torch.float64),
        dim_in=(lmax_in + 1) ** 2,
        dim_sh=(lmax_sh + 1) ** 2,
        dim_out=sum(2 * l3 + 1 for _, _, l3 in paths),
        num_paths=len(paths),
    )
