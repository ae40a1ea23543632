"""Triton kernels (CUDA) for the fused symmetric contraction of :mod:`mlpot.kernels.symmetric`.

One program per (node block, channel block) forms the monomials of its nodes in registers and
writes its own output rows (modes VALUE, VJP_X, JVP, HVP). The weight-gradient modes (GRAD_B,
JVP_GRAD_B) sum over nodes: each node block writes a partial sum per element, which torch adds
up, so no atomics are needed. A missing factor of a lower-degree monomial reads as x = 1,
H = 0, which makes one formula serve degrees 1 to 3.

Tested on the CPU with ``TRITON_INTERPRET=1`` against the plain-torch evaluation.
"""

from typing import List, Optional

import torch
from torch import Tensor

from mlpot.kernels.symmetric import GRAD_B, HVP, JVP, JVP_GRAD_B, VALUE, VJP_X, result_shape
from mlpot.kernels.triton_edge_tp import available, triton

if triton is not None:
    import triton.language as tl

    @triton.jit
    def _factor(BASE, n, index, c, C, D, mask, ABSENT: tl.constexpr):
        """BASE[n, index, c] [BLOCK_N, BLOCK_C], or ABSENT (1 for x, 0 for H) where index < 0."""
        safe = tl.maximum(index, 0).to(tl.int64)
        value = tl.load(BASE + (n * D + safe)[:, None] * C + c[None, :], mask=mask, other=0.0)
        return tl.where(index >= 0, value, ABSENT)

    @triton.jit
    def _contract(
        Xt, Bt, Gt, Ht, OUT, ELEMENT, MONOMIALS, STARTS, PAIR_K,
        N, C, D, K, NNZ, Z, num_monomials,
        MODE: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_C: tl.constexpr,
    ):
        block = tl.program_id(0)
        n = (block * BLOCK_N + tl.arange(0, BLOCK_N)).to(tl.int64)
        c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
        nmask = n < N
        mask = nmask[:, None] & (c < C)[None, :]
        z = tl.load(ELEMENT + n, mask=nmask, other=0).to(tl.int64)
        for m in range(num_monomials):
            a = tl.load(MONOMIALS + 3 * m)
            b = tl.load(MONOMIALS + 3 * m + 1)
            d = tl.load(MONOMIALS + 3 * m + 2)
            xa = _factor(Xt, n, a, c, C, D, mask, 1.0)
            xb = _factor(Xt, n, b, c, C, D, mask, 1.0)
            xd = _factor(Xt, n, d, c, C, D, mask, 1.0)
            q0 = tl.load(STARTS + m)
            q1 = tl.load(STARTS + m + 1)
            if MODE == 0 or MODE == 2:
                per_monomial = xa * xb * xd
            if MODE == 3 or MODE == 4 or MODE == 5:
                ha = _factor(Ht, n, a, c, C, D, mask, 0.0)
                hb = _factor(Ht, n, b, c, C, D, mask, 0.0)
                hd = _factor(Ht, n, d, c, C, D, mask, 0.0)
            if MODE == 3 or MODE == 4:
                per_monomial = ha * xb * xd + xa * hb * xd + xa * xb * hd
            if MODE == 0 or MODE == 3:  # node rows k += B[z, q] * per_monomial
                for q in range(q0, q1):
                    k = tl.load(PAIR_K + q).to(tl.int64)
                    coefficient = tl.load(Bt + (z * NNZ + q)[:, None] * C + c[None, :], mask=mask, other=0.0)
                    pointer = OUT + (n * K + k)[:, None] * C + c[None, :]
                    tl.store(pointer, tl.load(pointer, mask=mask, other=0.0) + coefficient * per_monomial, mask=mask)
            if MODE == 2 or MODE == 4:  # partial[block, z, q] += sum over this block's nodes of element z
                for q in range(q0, q1):
                    k = tl.load(PAIR_K + q).to(tl.int64)
                    g = tl.load(Gt + (n * K + k)[:, None] * C + c[None, :], mask=mask, other=0.0)
                    contribution = g * per_monomial
                    for element in range(Z):
                        chosen = (z == element) & nmask
                        partial = tl.sum(tl.where(chosen[:, None], contribution, 0.0), axis=0)
                        pointer = OUT + ((block * Z + element) * NNZ + q) * C + c
                        cmask = c < C
                        tl.store(pointer, tl.load(pointer, mask=cmask, other=0.0) + partial, mask=cmask)
            if MODE == 1 or MODE == 5:  # u = sum_q G[k_q] B[z, q]; node rows a, b, d of the gradient
                u = tl.zeros([BLOCK_N, BLOCK_C], dtype=OUT.dtype.element_ty)
                for q in range(q0, q1):
                    k = tl.load(PAIR_K + q).to(tl.int64)
                    g = tl.load(Gt + (n * K + k)[:, None] * C + c[None, :], mask=mask, other=0.0)
                    coefficient = tl.load(Bt + (z * NNZ + q)[:, None] * C + c[None, :], mask=mask, other=0.0)
                    u += g * coefficient
                if MODE == 1:
                    ga = u * xb * xd
                    gb = u * xa * xd
                    gd = u * xa * xb
                else:
                    ga = u * (hb * xd + xb * hd)
                    gb = u * (ha * xd + xa * hd)
                    gd = u * (ha * xb + xa * hb)
                pa = OUT + (n * D + a)[:, None] * C + c[None, :]
                tl.store(pa, tl.load(pa, mask=mask, other=0.0) + ga, mask=mask)
                if b >= 0:
                    pb = OUT + (n * D + b)[:, None] * C + c[None, :]
                    tl.store(pb, tl.load(pb, mask=mask, other=0.0) + gb, mask=mask)
                if d >= 0:
                    pd = OUT + (n * D + d)[:, None] * C + c[None, :]
                    tl.store(pd, tl.load(pd, mask=mask, other=0.0) + gd, mask=mask)


def symmetric(mode: int, operands: List[Optional[Tensor]], tables: List[Tensor], dims: List[int]) -> Tensor:
    """One mode of the contraction with Triton (CUDA tensors, or CPU ones under TRITON_INTERPRET=1)."""
    x, B, G, H = [None if t is None else t.contiguous() for t in operands]
    monomials, starts, pair_k, element = [t.contiguous() for t in tables]
    num_nodes, dim_in, dim_out, num_pairs, channels, num_elements = dims
    block_n = 16
    block_c = max(16, min(64, triton.next_power_of_2(channels)))
    num_blocks = triton.cdiv(num_nodes, block_n)
    grid = (num_blocks, triton.cdiv(channels, block_c))
    if mode in (GRAD_B, JVP_GRAD_B):
        out = torch.zeros(max(num_blocks, 1), num_elements, num_pairs, channels, dtype=x.dtype, device=x.device)
    else:
        out = torch.zeros(result_shape(mode, dims), dtype=x.dtype, device=x.device)
    if num_nodes > 0:
        dummy = x  # a valid pointer for the operands a mode does not read
        _contract[grid](
            x, B if B is not None else dummy, G if G is not None else dummy, H if H is not None else dummy,
            out, element, monomials, starts, pair_k,
            num_nodes, channels, dim_in, dim_out, num_pairs, num_elements, monomials.shape[0],
            MODE=mode, BLOCK_N=block_n, BLOCK_C=block_c,
        )
    return out.sum(dim=0) if mode in (GRAD_B, JVP_GRAD_B) else out


__all__ = ["available", "symmetric", "VALUE", "VJP_X", "GRAD_B", "JVP", "JVP_GRAD_B", "HVP"]
