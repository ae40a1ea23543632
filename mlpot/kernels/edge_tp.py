"""The fused edge tensor product as one differentiable operator.

The operator evaluates one gradient of the 4-linear form T(x, w, y, o) of
:mod:`mlpot.kernels.coupling` given the other three operands:

    target 3 (O): o = dT/do, the forward: messages [N, Q, C] summed onto receivers
    target 0 (X): dT/dx [N, D_in, C], summed onto senders
    target 1 (W): dT/dw [E, P, C]
    target 2 (Y): dT/dy [E, D_sh]

Because T is linear in each operand, the derivative of target a with respect to operand b,
contracted with an incoming gradient G (shaped like operand a), is target b evaluated with
operand a replaced by G. So the backward of every target is made of targets of the same
operator, and the backward of that backward too: forces (a first derivative) and force
training (a second derivative) run on the same fused kernels, never on per-edge messages.

Kernels: the compiled CPU library (:mod:`mlpot.kernels.cpu`) and Triton on CUDA
(:mod:`mlpot.kernels.triton_edge_tp`); elsewhere, or on a CPU without the built library, the
plain-torch evaluation below runs (slow and memory-hungry: it is the check, not a production
path). Two entry points share one backward rule: :func:`edge_tp` (an autograd.Function, a few
microseconds per call, for eager code) and ``torch.ops.mlpot.edge_tp`` (a torch.library custom
op, ~0.1 ms per call, which TorchScript and torch.compile can see).
"""

from typing import List, Optional, Tuple

import torch
from torch import Tensor

from mlpot.kernels import cpu

X, W, Y, O = 0, 1, 2, 3


def result_shape(target: int, num_edges: int, dims: List[int]) -> List[int]:
    """Shape of a target's result; ``dims`` = [N_senders, N_receivers, D_in, P, D_sh, Q, C] (the
    rows of x and of o: the same nodes, except for per-edge messages, whose receivers are the edges)."""
    num_senders, num_receivers, dim_in, num_paths, dim_sh, dim_out, channels = dims
    return [
        [num_senders, dim_in, channels],
        [num_edges, num_paths, channels],
        [num_edges, dim_sh],
        [num_receivers, dim_out, channels],
    ][target]


def evaluate_torch(
    target: int,
    operands: List[Optional[Tensor]],
    sender: Tensor,
    receiver: Tensor,
    tables: List[Tensor],
    dims: List[int],
) -> Tensor:
    """The 4-linear form's gradients with gathers, products and index_add: the plain reference.

    Builds [E, T, C] intermediates (T = number of triples), which the kernels exist to avoid.
    """
    x, w, y, o = operands
    triples, starts, sh_index, coeff = tables
    num_senders, num_receivers, dim_in, num_paths, dim_sh, dim_out, channels = dims
    num_edges = sender.shape[0]
    dtype = next(t for t in operands if t is not None).dtype
    device = sender.device
    path, comp_in, row_out = triples.long().unbind(1)  # [T] each
    rows = torch.repeat_interleave(torch.arange(triples.shape[0], device=device), (starts[1:] - starts[:-1]).long())
    couplings = torch.zeros(triples.shape[0], dim_sh, dtype=dtype, device=device)  # [T, D_sh]
    couplings[rows, sh_index.long()] = coeff.to(dtype)

    def gathered(name: str) -> Tensor:  # [E, T, C]
        if name == "x":
            return x.index_select(0, sender)[:, comp_in, :]
        if name == "w":
            return w[:, path, :]
        return o.index_select(0, receiver)[:, row_out, :]

    if target == Y:
        products = (gathered("x") * gathered("w") * gathered("o")).sum(dim=2)  # [E, T]
        return products @ couplings  # [E, D_sh]
    a = (y @ couplings.t()).unsqueeze(2)  # [E, T, 1]
    if target == O:
        contributions = a * gathered("x") * gathered("w")  # [E, T, C]
        flat = (receiver.unsqueeze(1) * dim_out + row_out).flatten()
        out = torch.zeros(num_receivers * dim_out, channels, dtype=dtype, device=device)
        return out.index_add(0, flat, contributions.reshape(-1, channels)).view(num_receivers, dim_out, channels)
    if target == X:
        contributions = a * gathered("w") * gathered("o")
        flat = (sender.unsqueeze(1) * dim_in + comp_in).flatten()
        out = torch.zeros(num_senders * dim_in, channels, dtype=dtype, device=device)
        return out.index_add(0, flat, contributions.reshape(-1, channels)).view(num_senders, dim_in, channels)
    contributions = a * gathered("x") * gathered("o")  # target W
    out = torch.zeros(num_edges, num_paths, channels, dtype=dtype, device=device)
    return out.index_add(1, path, contributions)


def _run(target: int, operands: List[Optional[Tensor]], sender: Tensor, receiver: Tensor, tables: List[Tensor],
         dims: List[int]) -> Tensor:
    """One target on the operands' device, with the best kernel there is."""
    operands = [None if t is None else t.contiguous() for t in operands]
    dtype = next(t for t in operands if t is not None).dtype
    if sender.device.type == "cpu" and cpu.library() is not None:
        shape = result_shape(target, sender.shape[0], dims)
        result = torch.zeros(shape, dtype=dtype) if target in (X, O) else torch.empty(shape, dtype=dtype)
        triples, starts, sh_index, coeff = tables
        tables = [triples.contiguous(), starts.contiguous(), sh_index.contiguous(), coeff.to(dtype).contiguous()]
        num_senders, num_receivers, dim_in, num_paths, dim_sh, dim_out, channels = dims
        shape_args = [sender.shape[0], num_receivers, dim_in, num_paths, dim_sh, dim_out, channels]
        cpu.edge_tp(target, operands, result, sender.contiguous(), receiver.contiguous(), tables, shape_args)
        return result
    if sender.device.type == "cuda":
        from mlpot.kernels import triton_edge_tp

        if triton_edge_tp.available():
            return triton_edge_tp.edge_tp(target, operands, sender, receiver, tables, dims)
    return evaluate_torch(target, operands, sender, receiver, tables, dims)


def _gradients(apply, target: int, operands: List[Optional[Tensor]], grad: Tensor, needs: Tuple[bool, ...]):
    """[dL/dx, dL/dw, dL/dy, dL/do] of a target given its incoming gradient (None where not needed):
    target b with the target's own operand replaced by ``grad``. ``apply(b, operands)`` runs one."""
    grads: List[Optional[Tensor]] = [None, None, None, None]
    for b in range(4):
        if b != target and needs[b]:
            inputs = list(operands)
            inputs[target] = grad
            inputs[b] = None
            grads[b] = apply(b, inputs)
    return grads


class _EdgeTP(torch.autograd.Function):
    @staticmethod
    def forward(ctx, target: int, dims: List[int], sender, receiver, triples, starts, sh_index, coeff, x, w, y, o):
        tables = [triples, starts, sh_index, coeff]
        ctx.save_for_backward(sender, receiver, triples, starts, sh_index, coeff, x, w, y, o)
        ctx.target, ctx.dims = target, dims
        return _run(target, [x, w, y, o], sender, receiver, tables, dims)

    @staticmethod
    def backward(ctx, grad):
        sender, receiver, triples, starts, sh_index, coeff, *operands = ctx.saved_tensors
        tables = (triples, starts, sh_index, coeff)

        def apply(b: int, inputs: List[Optional[Tensor]]) -> Tensor:
            return _EdgeTP.apply(b, ctx.dims, sender, receiver, *tables, *inputs)

        grads = _gradients(apply, ctx.target, operands, grad, ctx.needs_input_grad[8:])
        return (None,) * 8 + tuple(grads)


@torch.jit.unused
def _eager(
    x: Optional[Tensor],
    w: Optional[Tensor],
    y: Optional[Tensor],
    o: Optional[Tensor],
    sender: Tensor,
    receiver: Tensor,
    triples: Tensor,
    starts: Tensor,
    sh_index: Tensor,
    coeff: Tensor,
    target: int,
    dims: List[int],
) -> Tensor:
    return _EdgeTP.apply(target, dims, sender, receiver, triples, starts, sh_index, coeff, x, w, y, o)


def edge_tp(
    x: Optional[Tensor],
    w: Optional[Tensor],
    y: Optional[Tensor],
    o: Optional[Tensor],
    sender: Tensor,
    receiver: Tensor,
    triples: Tensor,
    starts: Tensor,
    sh_index: Tensor,
    coeff: Tensor,
    target: int,
    dims: List[int],
) -> Tensor:
    """Target ``target`` of the 4-linear form; the target's own operand is None.
    dims = [N_senders, N_receivers, D_in, P, D_sh, Q, C]. Differentiable to any order."""
    if torch.jit.is_scripting() or torch.compiler.is_compiling():  # the registered operator
        return torch.ops.mlpot.edge_tp(x, w, y, o, sender, receiver, triples, starts, sh_index, coeff, target, dims)
    return _eager(x, w, y, o, sender, receiver, triples, starts, sh_index, coeff, target, dims)


@torch.library.custom_op("mlpot::edge_tp", mutates_args=())
def _edge_tp_op(
    x: Optional[Tensor],
    w: Optional[Tensor],
    y: Optional[Tensor],
    o: Optional[Tensor],
    sender: Tensor,
    receiver: Tensor,
    triples: Tensor,
    starts: Tensor,
    sh_index: Tensor,
    coeff: Tensor,
    target: int,
    dims: List[int],
) -> Tensor:
    return _run(target, [x, w, y, o], sender, receiver, [triples, starts, sh_index, coeff], dims)


@_edge_tp_op.register_fake
def _edge_tp_fake(x, w, y, o, sender, receiver, triples, starts, sh_index, coeff, target, dims):
    dtype = next(t for t in (x, w, y, o) if t is not None).dtype
    return sender.new_empty(result_shape(target, sender.shape[0], dims), dtype=dtype)


def _setup_context(ctx, inputs, output) -> None:
    x, w, y, o, sender, receiver, triples, starts, sh_index, coeff, target, dims = inputs
    ctx.save_for_backward(x, w, y, o, sender, receiver, triples, starts, sh_index, coeff)
    ctx.target, ctx.dims = target, dims


def _op_backward(ctx, grad: Tensor):
    x, w, y, o, sender, receiver, triples, starts, sh_index, coeff = ctx.saved_tensors

    def apply(b: int, inputs: List[Optional[Tensor]]) -> Tensor:
        return _edge_tp_op(*inputs, sender, receiver, triples, starts, sh_index, coeff, b, ctx.dims)

    grads = _gradients(apply, ctx.target, [x, w, y, o], grad, ctx.needs_input_grad[:4])
    return (*grads,) + (None,) * 8


_edge_tp_op.register_autograd(_op_backward, setup_context=_setup_context)
