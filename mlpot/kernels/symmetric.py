"""``torch.ops.mlpot.symmetric``: the symmetric contraction (product basis) as one operator.

For node n of element z and channel c, with x = features[n, :, c],

    y[n, k, c] = sum_q B[z, q, c] v_{m_q}(x)

over the (output component k_q, monomial m_q) pairs q whose coupling is not structurally zero,
with monomials v_m = x_a, x_a x_b or x_a x_b x_d of the input components and
B = basis^T @ weights (:class:`~mlpot.nn.product.SymmetricContraction`). The operator has six
modes, each a derivative that another mode's backward needs:

    VALUE       y = P(x; B)                                    [N, K, C]
    VJP_X       sum_k G_k dP_k/dx                              [N, D, C]
    GRAD_B      sum over nodes of G_{k_q} v_{m_q}              [Z, nnz, C]
    JVP         sum_a H_a dP/dx_a                              [N, K, C]
    JVP_GRAD_B  sum over nodes of G_{k_q} (grad v_{m_q} . H)   [Z, nnz, C]
    HVP         sum_k G_k (hess P_k) H                         [N, D, C]

VALUE's backward is VJP_X and GRAD_B; their backwards (force training differentiates the
forces once more) are JVP, JVP_GRAD_B and HVP; those have the backwards listed in
:func:`_backward` except where a third derivative of the polynomial would be needed, which
raises. The plain-torch evaluation below is the check for the kernels and the fallback on
devices without one. As for :mod:`mlpot.kernels.edge_tp`, eager code calls an
autograd.Function and TorchScript the custom op ``torch.ops.mlpot.symmetric``; both share
:func:`_gradients`.
"""

from typing import Callable, List, Optional, Tuple

import torch
from torch import Tensor

from mlpot.kernels import cpu

VALUE, VJP_X, GRAD_B, JVP, JVP_GRAD_B, HVP = range(6)


def monomial_table(single: Tensor, pair_first: Tensor, pair_second: Tensor, pair_select: Tensor,
                   triple_prefix: Tensor, triple_last: Tensor) -> Tensor:
    """[M, 3] int32 component indices of every monomial (-1 for unused factors), in the
    order of :meth:`~mlpot.nn.product.SymmetricContraction.monomials` (degree 1, 2, 3)."""
    rows: List[Tuple[int, int, int]] = [(int(a), -1, -1) for a in single.tolist()]
    first, second = pair_first.tolist(), pair_second.tolist()
    rows += [(first[q], second[q], -1) for q in pair_select.tolist()]
    rows += [(first[q], second[q], int(d)) for q, d in zip(triple_prefix.tolist(), triple_last.tolist())]
    return torch.tensor(rows, dtype=torch.int32).reshape(-1, 3)


def coupling_pairs(basis: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """From basis [P, K, M]: CSR ``starts`` [M + 1] and ``pair_k`` [nnz] (int32) of the
    structurally non-zero (k, m) pairs, ordered by m, and their basis columns [P, nnz]."""
    nonzero = basis.abs().amax(dim=0) > 0  # [K, M]
    m_of_pair, k_of_pair = torch.nonzero(nonzero.t(), as_tuple=True)  # ordered by m, then k
    counts = torch.bincount(m_of_pair, minlength=basis.shape[2])
    starts = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(counts, 0)])
    return starts.to(torch.int32), k_of_pair.to(torch.int32), basis[:, k_of_pair, m_of_pair]


def result_shape(mode: int, dims: List[int]) -> List[int]:
    """dims = [N, D, K, nnz, C, Z]."""
    num_nodes, dim_in, dim_out, num_pairs, channels, num_elements = dims
    if mode in (VALUE, JVP):
        return [num_nodes, dim_out, channels]
    if mode in (VJP_X, HVP):
        return [num_nodes, dim_in, channels]
    return [num_elements, num_pairs, channels]


def evaluate_torch(mode: int, operands: List[Optional[Tensor]], tables: List[Tensor], dims: List[int]) -> Tensor:
    """All six modes with gathers and index_add over [N, M, C] tensors (the plain reference)."""
    x, B, G, H = operands
    monomials, starts, pair_k, element = tables
    num_nodes, dim_in, dim_out, num_pairs, channels, num_elements = dims
    index = monomials.long().clone()
    index[index < 0] = dim_in  # an extra component: 1 in x, 0 in H
    a, b, d = index.unbind(1)  # [M] each
    pad_one = torch.ones(num_nodes, 1, channels, dtype=x.dtype, device=x.device)
    xe = torch.cat([x, pad_one], dim=1)
    xa, xb, xd = xe[:, a], xe[:, b], xe[:, d]  # [N, M, C]
    m_of_pair = torch.repeat_interleave(torch.arange(monomials.shape[0], device=x.device), (starts[1:] - starts[:-1]).long())
    k_of_pair = pair_k.long()
    if H is not None:
        He = torch.cat([H, torch.zeros_like(pad_one)], dim=1)
        Ha, Hb, Hd = He[:, a], He[:, b], He[:, d]
    if mode in (VALUE, GRAD_B):
        per_monomial = xa * xb * xd
    elif mode in (JVP, JVP_GRAD_B):
        per_monomial = Ha * xb * xd + xa * Hb * xd + xa * xb * Hd
    if mode in (VALUE, JVP):
        Bn = B.index_select(0, element)  # [N, nnz, C]
        out = torch.zeros(num_nodes, dim_out, channels, dtype=x.dtype, device=x.device)
        return out.index_add(1, k_of_pair, Bn * per_monomial[:, m_of_pair])
    if mode in (GRAD_B, JVP_GRAD_B):
        per_node = G[:, k_of_pair] * per_monomial[:, m_of_pair]  # [N, nnz, C]
        out = torch.zeros(num_elements, num_pairs, channels, dtype=x.dtype, device=x.device)
        return out.index_add(0, element, per_node)
    Bn = B.index_select(0, element)
    u = torch.zeros(num_nodes, monomials.shape[0], channels, dtype=x.dtype, device=x.device)
    u = u.index_add(1, m_of_pair, G[:, k_of_pair] * Bn)  # [N, M, C]
    if mode == VJP_X:
        parts = (u * xb * xd, u * xa * xd, u * xa * xb)
    else:  # HVP
        parts = (u * (Hb * xd + xb * Hd), u * (Ha * xd + xa * Hd), u * (Ha * xb + xa * Hb))
    out = torch.zeros(num_nodes, dim_in + 1, channels, dtype=x.dtype, device=x.device)
    for component, part in zip((a, b, d), parts):
        out = out.index_add(1, component, part)
    return out[:, :dim_in]


def _run(mode: int, operands: List[Optional[Tensor]], tables: List[Tensor], dims: List[int]) -> Tensor:
    """One mode on the operands' device, with the best kernel there is."""
    operands = [None if t is None else t.contiguous() for t in operands]
    tables = [t.contiguous() for t in tables]
    x = operands[0]
    if x.device.type == "cpu" and cpu.library() is not None:
        result = torch.zeros(result_shape(mode, dims), dtype=x.dtype)
        cpu.symmetric(mode, operands, result, tables, dims[:5])
        return result
    if x.device.type == "cuda":
        from mlpot.kernels import triton_symmetric

        if triton_symmetric.available():
            return triton_symmetric.symmetric(mode, operands, tables, dims)
    return evaluate_torch(mode, operands, tables, dims)


def _gradients(apply: Callable, mode: int, operands: List[Optional[Tensor]], grad: Tensor, needs: Tuple[bool, ...]):
    """[dL/dx, dL/dB, dL/dG, dL/dH] of one mode given its incoming gradient; ``apply(mode, B, G, H)``
    runs a mode at the same x. Each line is the identity that makes the backward another mode."""
    x, B, G, H = operands
    needs_x, needs_B, needs_G, needs_H = needs
    gx = gB = gG = gH = None
    if mode == VALUE:  # <grad, P(x; B)>
        gx = apply(VJP_X, B, grad, None) if needs_x else None
        gB = apply(GRAD_B, None, grad, None) if needs_B else None
    elif mode == VJP_X:  # <grad, sum_k G_k dP_k/dx> = <G, JVP(x, B, grad)>
        gG = apply(JVP, B, None, grad) if needs_G else None
        gB = apply(JVP_GRAD_B, None, G, grad) if needs_B else None
        gx = apply(HVP, B, G, grad) if needs_x else None
    elif mode == GRAD_B:  # <grad, GRAD_B(x, G)> = <G, P(x; grad)>
        gG = apply(VALUE, grad, None, None) if needs_G else None
        gx = apply(VJP_X, grad, G, None) if needs_x else None
    elif mode == JVP:  # <grad, JVP(x, B, H)> = <H, VJP_X(x, B, grad)>
        gH = apply(VJP_X, B, grad, None) if needs_H else None
        gB = apply(JVP_GRAD_B, None, grad, H) if needs_B else None
        gx = apply(HVP, B, grad, H) if needs_x else None
    elif mode == JVP_GRAD_B:  # <grad, JVP_GRAD_B(x, G, H)> = <G, JVP(x, grad, H)>
        gG = apply(JVP, grad, None, H) if needs_G else None
        gH = apply(VJP_X, grad, G, None) if needs_H else None
        gx = apply(HVP, grad, G, H) if needs_x else None
    else:  # HVP is symmetric in its direction; the rest would need third derivatives
        if needs_x or needs_B or needs_G:
            raise RuntimeError("third derivatives of the fused symmetric contraction are not implemented")
        gH = apply(HVP, B, G, grad) if needs_H else None
    return [gx, gB, gG, gH]


class _Symmetric(torch.autograd.Function):
    @staticmethod
    def forward(ctx, mode: int, dims: List[int], monomials, starts, pair_k, element, x, B, G, H):
        ctx.save_for_backward(monomials, starts, pair_k, element, x, B, G, H)
        ctx.mode, ctx.dims = mode, dims
        return _run(mode, [x, B, G, H], [monomials, starts, pair_k, element], dims)

    @staticmethod
    def backward(ctx, grad):
        monomials, starts, pair_k, element, x, B, G, H = ctx.saved_tensors

        def apply(mode: int, B_, G_, H_) -> Tensor:
            return _Symmetric.apply(mode, ctx.dims, monomials, starts, pair_k, element, x, B_, G_, H_)

        grads = _gradients(apply, ctx.mode, [x, B, G, H], grad, ctx.needs_input_grad[6:])
        return (None,) * 6 + tuple(grads)


@torch.jit.unused
def _eager(
    x: Tensor,
    B: Optional[Tensor],
    G: Optional[Tensor],
    H: Optional[Tensor],
    monomials: Tensor,
    starts: Tensor,
    pair_k: Tensor,
    element: Tensor,
    mode: int,
    dims: List[int],
) -> Tensor:
    return _Symmetric.apply(mode, dims, monomials, starts, pair_k, element, x, B, G, H)


def symmetric(
    x: Tensor,
    B: Optional[Tensor],
    G: Optional[Tensor],
    H: Optional[Tensor],
    monomials: Tensor,
    starts: Tensor,
    pair_k: Tensor,
    element: Tensor,
    mode: int,
    dims: List[int],
) -> Tensor:
    """One mode of the contraction (see the module docstring); dims = [N, D, K, nnz, C, Z]."""
    if torch.jit.is_scripting() or torch.compiler.is_compiling():  # the registered operator
        return torch.ops.mlpot.symmetric(x, B, G, H, monomials, starts, pair_k, element, mode, dims)
    return _eager(x, B, G, H, monomials, starts, pair_k, element, mode, dims)


@torch.library.custom_op("mlpot::symmetric", mutates_args=())
def _symmetric_op(
    x: Tensor,
    B: Optional[Tensor],
    G: Optional[Tensor],
    H: Optional[Tensor],
    monomials: Tensor,
    starts: Tensor,
    pair_k: Tensor,
    element: Tensor,
    mode: int,
    dims: List[int],
) -> Tensor:
    return _run(mode, [x, B, G, H], [monomials, starts, pair_k, element], dims)


@_symmetric_op.register_fake
def _symmetric_fake(x, B, G, H, monomials, starts, pair_k, element, mode, dims):
    return x.new_empty(result_shape(mode, dims))


def _setup_context(ctx, inputs, output) -> None:
    x, B, G, H, monomials, starts, pair_k, element, mode, dims = inputs
    ctx.save_for_backward(x, B, G, H, monomials, starts, pair_k, element)
    ctx.mode, ctx.dims = mode, dims


def _op_backward(ctx, grad: Tensor):
    x, B, G, H, monomials, starts, pair_k, element = ctx.saved_tensors

    def apply(mode: int, B_, G_, H_) -> Tensor:
        return _symmetric_op(x, B_, G_, H_, monomials, starts, pair_k, element, mode, ctx.dims)

    grads = _gradients(apply, ctx.mode, [x, B, G, H], grad, ctx.needs_input_grad[:4])
    return (*grads,) + (None,) * 6


_symmetric_op.register_autograd(_op_backward, setup_context=_setup_context)
