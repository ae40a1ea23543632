"""The fused kernels against the plain-torch evaluation of the same tables, and the model's
fused path against its reference path (float64 exact to round-off, float32 to 1e-5)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ase.build import bulk, molecule

import mlpot
from mlpot.data.graph import atoms_to_graph, graph_to_inputs
from mlpot.errors import MLPotError
from mlpot.kernels import cpu, fused_available, set_kernels
from mlpot.kernels import edge_tp as edge_tp_module
from mlpot.kernels import symmetric as symmetric_module
from mlpot.kernels.coupling import coupling_tables
from mlpot.nn.convolution import EdgeTensorProduct
from mlpot.nn.irreps import FeatureIrreps
from mlpot.nn.product import SymmetricContraction

HERE = Path(__file__).resolve().parent


def test_cpu_library_is_built_by_the_install():
    assert cpu.library() is not None, "the install did not build mlpot/kernels/_cpu_kernels (needs a C++ compiler)"
    assert fused_available("cpu")


def test_cpu_library_is_found_when_the_checkout_is_imported():
    """`python -m mlpot...` from the repository root imports the checkout, whose mlpot/kernels has
    no compiled library after a non-editable install: the installed one must be found."""
    code = "import mlpot.kernels.cpu as cpu; assert cpu.library() is not None, 'no CPU kernel library'"
    result = subprocess.run([sys.executable, "-c", code], cwd=HERE.parent, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def edge_problem(lmax_in, lmax_sh, lmax_out, dtype, num_nodes=7, num_edges=40, channels=20, seed=0):
    generator = torch.Generator().manual_seed(seed)
    tp = EdgeTensorProduct(lmax_in, lmax_sh, lmax_out)
    tables = coupling_tables(tp.paths, tp.cg, lmax_in, lmax_sh)
    dims = [num_nodes, num_nodes, tables.dim_in, tables.num_paths, tables.dim_sh, tables.dim_out, channels]

    def rand(*shape):
        return torch.randn(*shape, generator=generator, dtype=dtype)

    operands = [
        rand(num_nodes, tables.dim_in, channels),
        rand(num_edges, tables.num_paths, channels),
        rand(num_edges, tables.dim_sh),
        rand(num_nodes, tables.dim_out, channels),
    ]
    sender = torch.randint(0, num_nodes, (num_edges,), generator=generator)
    receiver = torch.randint(0, num_nodes, (num_edges,), generator=generator)
    table_list = [tables.triples, tables.starts, tables.sh_index, tables.coeff]
    return tp, operands, sender, receiver, table_list, dims


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("lmax_in,lmax_sh,lmax_out", [(0, 3, 3), (1, 3, 3), (2, 2, 1), (1, 1, 2)])
def test_edge_kernel_targets_match_the_torch_evaluation(dtype, lmax_in, lmax_sh, lmax_out):
    _, operands, sender, receiver, tables, dims = edge_problem(lmax_in, lmax_sh, lmax_out, dtype)
    tolerance = 1e-12 if dtype == torch.float64 else 2e-5
    for target in range(4):
        inputs = list(operands)
        inputs[target] = None
        expected = edge_tp_module.evaluate_torch(target, inputs, sender, receiver, tables, dims)
        fused = edge_tp_module.edge_tp(*inputs, sender, receiver, *tables, target, dims)
        scripted = torch.ops.mlpot.edge_tp(*inputs, sender, receiver, *tables, target, dims)
        scale = expected.abs().max()
        assert torch.allclose(fused, expected, atol=float(tolerance * scale), rtol=0), target
        assert torch.equal(fused, scripted)


def test_edge_kernel_forward_is_the_reference_tensor_product():
    tp, (x, w, y, _), sender, receiver, tables, dims = edge_problem(1, 3, 3, torch.float64)
    tp = tp.double()
    tp.fused = False
    reference = torch.cat(tp(x, y, w.permute(1, 0, 2).contiguous(), sender, receiver), dim=1)
    tp.fused = True
    fused = torch.cat(tp(x, y, w, sender, receiver), dim=1)
    assert torch.allclose(fused, reference, atol=1e-12, rtol=0)


def test_edge_kernel_is_differentiable_twice():
    _, (x, w, y, _), sender, receiver, tables, dims = edge_problem(1, 2, 2, torch.float64, num_nodes=4, num_edges=12, channels=3)
    leaves = [t.clone().requires_grad_(True) for t in (x, w, y)]

    def eager(a, b, c):
        return edge_tp_module.edge_tp(a, b, c, None, sender, receiver, *tables, 3, dims)

    def op(a, b, c):
        return torch.ops.mlpot.edge_tp(a, b, c, None, sender, receiver, *tables, 3, dims)

    for function in (eager, op):
        assert torch.autograd.gradcheck(function, leaves)
        assert torch.autograd.gradgradcheck(function, leaves)


def symmetric_problem(lmax_in, lmax_out, correlation, dtype, num_nodes=9, channels=6, seed=0):
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    module = SymmetricContraction(FeatureIrreps(channels, lmax_in), FeatureIrreps(channels, lmax_out), correlation, 3).to(dtype)
    element = torch.tensor([0] * 4 + [2] * (num_nodes - 4))
    B = torch.matmul(module.pair_basis, module.weight).detach()
    dims = [num_nodes, (lmax_in + 1) ** 2, (lmax_out + 1) ** 2, B.shape[1], channels, 3]
    tables = [module.kernel_monomials, module.kernel_starts, module.kernel_pair_k, element]
    x = torch.randn(num_nodes, dims[1], channels, generator=generator, dtype=dtype)
    G = torch.randn(num_nodes, dims[2], channels, generator=generator, dtype=dtype)
    H = torch.randn(num_nodes, dims[1], channels, generator=generator, dtype=dtype)
    return module, x, B, G, H, tables, dims


def symmetric_operands(x, B, G, H):
    return {0: [x, B, None, None], 1: [x, B, G, None], 2: [x, None, G, None], 3: [x, B, None, H], 4: [x, None, G, H], 5: [x, B, G, H]}


def test_kernels_give_the_same_numbers_on_one_and_two_threads(monkeypatch):
    """40 channels split into two blocks of 32 and 8 on two threads (one block on one); 700 edges
    into three chunks of 256 (mlpot/threads.py picks the count, MLPOT_NUM_THREADS forces it)."""
    _, edge_operands, sender, receiver, edge_tables, edge_dims = edge_problem(
        1, 3, 3, torch.float64, num_nodes=30, num_edges=700, channels=40
    )
    _, x, B, G, H, symmetric_tables, symmetric_dims = symmetric_problem(3, 1, 3, torch.float64, num_nodes=30, channels=40)
    results = {}
    for threads in ("1", "2"):
        monkeypatch.setenv("MLPOT_NUM_THREADS", threads)
        for target in range(4):
            inputs = list(edge_operands)
            inputs[target] = None
            results[threads, "edge", target] = edge_tp_module.edge_tp(*inputs, sender, receiver, *edge_tables, target, edge_dims)
        for mode, operands in symmetric_operands(x, B, G, H).items():
            results[threads, "symmetric", mode] = symmetric_module.symmetric(*operands, *symmetric_tables, mode, symmetric_dims)
    for (threads, kind, index), one_thread in results.items():
        if threads == "1":
            two_threads = results["2", kind, index]
            assert torch.allclose(two_threads, one_thread, atol=1e-12 * float(one_thread.abs().max()), rtol=0), (kind, index)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("lmax_in,lmax_out,correlation", [(3, 1, 3), (3, 0, 3), (2, 2, 2), (1, 1, 1)])
def test_symmetric_kernel_modes_match_the_torch_evaluation(dtype, lmax_in, lmax_out, correlation):
    _, x, B, G, H, tables, dims = symmetric_problem(lmax_in, lmax_out, correlation, dtype)
    tolerance = 1e-12 if dtype == torch.float64 else 2e-5
    for mode, operands in symmetric_operands(x, B, G, H).items():
        expected = symmetric_module.evaluate_torch(mode, operands, tables, dims)
        fused = symmetric_module.symmetric(*operands, *tables, mode, dims)
        scripted = torch.ops.mlpot.symmetric(*operands, *tables, mode, dims)
        assert torch.allclose(fused, expected, atol=float(tolerance * expected.abs().max()), rtol=0), mode
        assert torch.equal(fused, scripted)


def test_symmetric_kernel_matches_the_reference_contraction_and_differentiates_twice():
    module, x, B, _, _, tables, dims = symmetric_problem(2, 1, 3, torch.float64, num_nodes=5, channels=2)
    counts = [4, 0, 1]
    module.fused = False
    reference = module(x, counts)
    module.fused = True
    assert torch.allclose(module(x, counts), reference, atol=1e-12, rtol=0)
    leaves = [x.clone().requires_grad_(True), B.clone().requires_grad_(True)]

    def eager(a, b):
        return symmetric_module.symmetric(a, b, None, None, *tables, 0, dims)

    def op(a, b):
        return torch.ops.mlpot.symmetric(a, b, None, None, *tables, 0, dims)

    for function in (eager, op):
        assert torch.autograd.gradcheck(function, leaves)
        assert torch.autograd.gradgradcheck(function, leaves)


def model_and_inputs(dtype, structure, **config):
    torch.manual_seed(0)
    elements = sorted(set(structure.get_chemical_symbols()))
    model = mlpot.build_model({
        "elements": elements, "hidden_irreps": "16x0e+16x1o", "radial_mlp": [16, 16], "dtype": str(dtype).split(".")[1], **config
    })
    inputs = graph_to_inputs(atoms_to_graph(structure, model.r_max, dtype=dtype))
    return model, inputs


def run_model(model, inputs, kernel, stress):
    set_kernels(model, kernel)
    model.zero_grad()
    out = model({k: v.clone() for k, v in inputs.items()}, compute_forces=True, compute_stress=stress, training=True)
    loss = out["energy"].sum() + (out["forces"] ** 2).sum() + ((out["stress"] ** 2).sum() if stress else 0.0)
    loss.backward()
    gradients = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    return out, gradients


TRUNKS = {
    "mace": {},
    "attention": {"interaction": "attention"},
    "attention-nonlinear": {"interaction": ["mace", "attention"], "attention": {"heads": 2, "nonlinear": True}},
}


@pytest.mark.parametrize("trunk", list(TRUNKS))
@pytest.mark.parametrize("dtype,tolerance", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_model_fused_path_gives_the_reference_numbers(dtype, tolerance, trunk):
    periodic = bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 2, 2)
    periodic.symbols[::3] = "Au"
    periodic.rattle(0.1, seed=1)
    for structure, stress in ((molecule("CH3CH2OH"), False), (periodic, True)):
        model, inputs = model_and_inputs(dtype, structure, **TRUNKS[trunk])
        fused, fused_gradients = run_model(model, inputs, "fused", stress)
        reference, reference_gradients = run_model(model, inputs, "reference", stress)
        keys = ["energy", "forces"] + (["stress"] if stress else [])
        for key in keys:
            scale = reference[key].detach().abs().max()
            assert torch.allclose(fused[key], reference[key], atol=float(tolerance * scale), rtol=0), key
        # force-training gradients (second derivatives) agree too
        scale = reference_gradients.abs().max()
        assert torch.allclose(fused_gradients, reference_gradients, atol=float(10 * tolerance * scale), rtol=0)


def test_kernel_choice_errors_are_clear():
    model, _ = model_and_inputs(torch.float64, molecule("H2O"))
    with pytest.raises(MLPotError, match="kernel must be one of auto, fused, reference"):
        set_kernels(model, "fast")
    with pytest.raises(MLPotError, match="no fused kernel for device meta"):
        set_kernels(model, "fused", device="meta")


def test_triton_kernels_in_the_interpreter():
    """The CUDA kernels, run on the CPU by Triton's interpreter (a fresh process: the interpreter
    is chosen when kernels are defined)."""
    pytest.importorskip("triton")
    env = dict(os.environ, TRITON_INTERPRET="1")
    result = subprocess.run([sys.executable, str(HERE / "triton_interpret.py")], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
