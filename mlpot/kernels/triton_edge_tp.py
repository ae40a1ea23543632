"""Triton kernels (CUDA) for the fused edge tensor product of :mod:`mlpot.kernels.edge_tp`.

The coupling tables are flattened into "entries" (path p, input component i, output row k,
harmonic j, coefficient): T(x, w, y, o) = sum_e sum_entries coeff y[e, j] x[s_e, i] . w[e, p] . o[r_e, k].

- Node-valued targets (3: messages onto receivers, 0: gradient onto senders) run one program
  per (node, channel block), looping over the node's edges through a CSR of edges sorted by that
  node, so every output row is written by exactly one program: no atomics, no per-edge messages.
- Edge-valued targets (1: radial-weight gradient, 2: harmonic gradient) run one program per
  (edge block, channel block) or edge block, each owning its rows.

Tested on the CPU with ``TRITON_INTERPRET=1`` against the plain-torch evaluation; timed only on
a GPU (benchmarks/potential_speed).
"""

from typing import List, Optional

import torch
from torch import Tensor

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - the CPU path does not need Triton
    triton = None
    tl = None

X, W, Y, O = 0, 1, 2, 3


def available() -> bool:
    """Triton importable and a CUDA device present."""
    return triton is not None and torch.cuda.is_available()


def entries(tables: List[Tensor]) -> tuple:
    """Coupling tables -> ([nnz, 4] int32 rows (p, i, k, j), [nnz] coefficients)."""
    triples, starts, sh_index, coeff = tables
    counts = (starts[1:] - starts[:-1]).long()
    rows = torch.repeat_interleave(torch.arange(triples.shape[0], device=triples.device), counts)
    table = torch.cat([triples[rows], sh_index.unsqueeze(1)], dim=1).to(torch.int32).contiguous()
    return table, coeff


def csr(index: Tensor, num_nodes: int) -> tuple:
    """Edges sorted by ``index`` (stable) and the row pointers [num_nodes + 1] of each node's run."""
    order = torch.argsort(index, stable=True)
    counts = torch.bincount(index, minlength=num_nodes)
    rowptr = torch.zeros(num_nodes + 1, dtype=torch.long, device=index.device)
    rowptr[1:] = torch.cumsum(counts, dim=0)
    return order.contiguous(), rowptr


if triton is not None:

    @triton.jit
    def _node_target(
        A, Wt, Yt, OUT, OTHER, ORDER, ROWPTR, ENTRIES, COEFF,
        num_entries, C, dim_a, dim_rows, P, D_sh,
        TARGET: tl.constexpr, BLOCK_C: tl.constexpr,
    ):
        # TARGET 3: OUT = o [N, Q, C], A = x (read at the sender, OTHER = sender)
        # TARGET 0: OUT = x-gradient [N, D_in, C], A = o (read at the receiver, OTHER = receiver)
        n = tl.program_id(0).to(tl.int64)
        c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
        cmask = c < C
        start = tl.load(ROWPTR + n)
        end = tl.load(ROWPTR + n + 1)
        for q in range(num_entries):
            p = tl.load(ENTRIES + 4 * q).to(tl.int64)
            i = tl.load(ENTRIES + 4 * q + 1).to(tl.int64)
            k = tl.load(ENTRIES + 4 * q + 2).to(tl.int64)
            j = tl.load(ENTRIES + 4 * q + 3).to(tl.int64)
            coefficient = tl.load(COEFF + q)
            if TARGET == 3:
                read_row = i
                write_row = k
            else:
                read_row = k
                write_row = i
            acc = tl.zeros([BLOCK_C], dtype=OUT.dtype.element_ty)
            for idx in range(start, end):
                e = tl.load(ORDER + idx).to(tl.int64)
                other = tl.load(OTHER + e).to(tl.int64)
                yv = tl.load(Yt + e * D_sh + j)
                wv = tl.load(Wt + (e * P + p) * C + c, mask=cmask, other=0.0)
                av = tl.load(A + (other * dim_a + read_row) * C + c, mask=cmask, other=0.0)
                acc += yv * wv * av
            pointer = OUT + (n * dim_rows + write_row) * C + c
            tl.store(pointer, tl.load(pointer, mask=cmask, other=0.0) + coefficient * acc, mask=cmask)

    @triton.jit
    def _weight_target(
        Xt, Yt, Ot, OUT, SENDER, RECEIVER, ENTRIES, COEFF,
        num_entries, E, C, D_in, Q, P, D_sh,
        BLOCK_E: tl.constexpr, BLOCK_C: tl.constexpr,
    ):
        e = (tl.program_id(0) * BLOCK_E + tl.arange(0, BLOCK_E)).to(tl.int64)
        c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
        emask = e < E
        mask = emask[:, None] & (c < C)[None, :]
        s = tl.load(SENDER + e, mask=emask, other=0).to(tl.int64)
        r = tl.load(RECEIVER + e, mask=emask, other=0).to(tl.int64)
        for q in range(num_entries):
            p = tl.load(ENTRIES + 4 * q).to(tl.int64)
            i = tl.load(ENTRIES + 4 * q + 1).to(tl.int64)
            k = tl.load(ENTRIES + 4 * q + 2).to(tl.int64)
            j = tl.load(ENTRIES + 4 * q + 3).to(tl.int64)
            coefficient = tl.load(COEFF + q)
            yv = tl.load(Yt + e * D_sh + j, mask=emask, other=0.0)
            xv = tl.load(Xt + (s * D_in + i)[:, None] * C + c[None, :], mask=mask, other=0.0)
            ov = tl.load(Ot + (r * Q + k)[:, None] * C + c[None, :], mask=mask, other=0.0)
            pointer = OUT + (e * P + p)[:, None] * C + c[None, :]
            previous = tl.load(pointer, mask=mask, other=0.0)
            tl.store(pointer, previous + coefficient * yv[:, None] * xv * ov, mask=mask)

    @triton.jit
    def _harmonic_target(
        Xt, Wt, Ot, OUT, SENDER, RECEIVER, ENTRIES, COEFF,
        num_entries, E, C, D_in, Q, P, D_sh,
        BLOCK_E: tl.constexpr, BLOCK_C: tl.constexpr,
    ):
        e = (tl.program_id(0) * BLOCK_E + tl.arange(0, BLOCK_E)).to(tl.int64)
        emask = e < E
        s = tl.load(SENDER + e, mask=emask, other=0).to(tl.int64)
        r = tl.load(RECEIVER + e, mask=emask, other=0).to(tl.int64)
        for q in range(num_entries):
            p = tl.load(ENTRIES + 4 * q).to(tl.int64)
            i = tl.load(ENTRIES + 4 * q + 1).to(tl.int64)
            k = tl.load(ENTRIES + 4 * q + 2).to(tl.int64)
            j = tl.load(ENTRIES + 4 * q + 3).to(tl.int64)
            coefficient = tl.load(COEFF + q)
            dot = tl.zeros([BLOCK_E], dtype=OUT.dtype.element_ty)
            for c0 in range(0, C, BLOCK_C):
                c = c0 + tl.arange(0, BLOCK_C)
                mask = emask[:, None] & (c < C)[None, :]
                xv = tl.load(Xt + (s * D_in + i)[:, None] * C + c[None, :], mask=mask, other=0.0)
                wv = tl.load(Wt + (e * P + p)[:, None] * C + c[None, :], mask=mask, other=0.0)
                ov = tl.load(Ot + (r * Q + k)[:, None] * C + c[None, :], mask=mask, other=0.0)
                dot += tl.sum(xv * wv * ov, axis=1)
            pointer = OUT + e * D_sh + j
            tl.store(pointer, tl.load(pointer, mask=emask, other=0.0) + coefficient * dot, mask=emask)


def _block_c(channels: int) -> int:
    return max(16, min(64, triton.next_power_of_2(channels)))


def edge_tp(
    target: int,
    operands: List[Optional[Tensor]],
    sender: Tensor,
    receiver: Tensor,
    tables: List[Tensor],
    dims: List[int],
) -> Tensor:
    """One target of the 4-linear form with Triton (CUDA tensors, or CPU ones under TRITON_INTERPRET=1)."""
    x, w, y, o = [None if t is None else t.contiguous() for t in operands]
    num_senders, num_receivers, dim_in, num_paths, dim_sh, dim_out, channels = dims
    num_edges = sender.shape[0]
    dtype = next(t for t in (x, w, y, o) if t is not None).dtype
    device = sender.device
    table, coeff = entries(tables)
    coeff = coeff.to(dtype).contiguous()
    sender, receiver = sender.contiguous(), receiver.contiguous()
    block_c = _block_c(channels)
    if target in (O, X):
        rows = dim_out if target == O else dim_in
        num_nodes = num_receivers if target == O else num_senders
        out = torch.zeros(num_nodes, rows, channels, dtype=dtype, device=device)
        if num_edges == 0 or num_nodes == 0:
            return out
        owner, other, source = (receiver, sender, x) if target == O else (sender, receiver, o)
        order, rowptr = csr(owner, num_nodes)
        grid = (num_nodes, triton.cdiv(channels, block_c))
        _node_target[grid](
            source, w, y, out, other, order, rowptr, table, coeff,
            table.shape[0], channels, source.shape[1], rows, num_paths, dim_sh,
            TARGET=target, BLOCK_C=block_c,
        )
        return out
    if target == W:
        out = torch.zeros(num_edges, num_paths, channels, dtype=dtype, device=device)
        if num_edges == 0:
            return out
        block_e = 32
        grid = (triton.cdiv(num_edges, block_e), triton.cdiv(channels, block_c))
        _weight_target[grid](
            x, y, o, out, sender, receiver, table, coeff,
            table.shape[0], num_edges, channels, dim_in, dim_out, num_paths, dim_sh,
            BLOCK_E=block_e, BLOCK_C=block_c,
        )
        return out
    out = torch.zeros(num_edges, dim_sh, dtype=dtype, device=device)
    if num_edges == 0:
        return out
    block_e = 32
    grid = (triton.cdiv(num_edges, block_e),)
    _harmonic_target[grid](
        x, w, o, out, sender, receiver, table, coeff,
        table.shape[0], num_edges, channels, dim_in, dim_out, num_paths, dim_sh,
        BLOCK_E=block_e, BLOCK_C=block_c,
    )
    return out
