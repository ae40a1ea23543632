"""GPU correctness of the fused path, before any timing: Triton kernels against the plain-torch
evaluation on the device, first and second derivatives, and a model's fused numbers against its
reference path (float64 to 1e-10, float32 to 1e-5, relative). Exits non-zero on a mismatch.

    python benchmarks/gpu/check.py [--device cuda]
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, ROOT)

import torch  # noqa: E402
from ase.build import bulk, molecule  # noqa: E402
from test_kernels import edge_problem, model_and_inputs, run_model, symmetric_operands, symmetric_problem  # noqa: E402

from mlpot.kernels import edge_tp, symmetric  # noqa: E402

failures = []


def check(name, got, expected, tolerance):
    error = float((got - expected).abs().max() / expected.abs().max().clamp(min=1e-30))
    print(f"{name:60s} relative error {error:.2e}", flush=True)
    if not error <= tolerance:
        failures.append((name, error))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda")
    device = torch.device(parser.parse_args().device)
    for dtype, tolerance in ((torch.float64, 1e-10), (torch.float32, 1e-5)):
        for shape in ((0, 3, 3), (1, 3, 3), (2, 2, 1)):
            _, operands, sender, receiver, tables, dims = edge_problem(*shape, dtype, num_nodes=50, num_edges=900, channels=64)
            operands = [t.to(device) for t in operands]
            sender, receiver, tables = sender.to(device), receiver.to(device), [t.to(device) for t in tables]
            for target in range(4):
                inputs = list(operands)
                inputs[target] = None
                expected = edge_tp.evaluate_torch(target, inputs, sender, receiver, tables, dims)
                got = edge_tp.edge_tp(*inputs, sender, receiver, *tables, target, dims)
                check(f"edge_tp {shape} {dtype} target {target}", got, expected, tolerance)
        _, x, B, G, H, stables, sdims = symmetric_problem(3, 1, 3, dtype, num_nodes=200, channels=64)
        x, B, G, H = (t.to(device) for t in (x, B, G, H))
        stables = [t.to(device) for t in stables]
        for mode, inputs in symmetric_operands(x, B, G, H).items():
            expected = symmetric.evaluate_torch(mode, inputs, stables, sdims)
            check(f"symmetric {dtype} mode {mode}", symmetric.symmetric(*inputs, *stables, mode, sdims), expected, tolerance)
        periodic = bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 2, 2)
        periodic.symbols[::3] = "Au"
        periodic.rattle(0.1, seed=1)
        for structure, stress in ((molecule("CH3CH2OH"), False), (periodic, True)):
            model, inputs = model_and_inputs(dtype, structure)
            model = model.to(device)
            inputs = {k: v.to(device) for k, v in inputs.items()}
            fused, fused_gradients = run_model(model, inputs, "fused", stress)
            reference, reference_gradients = run_model(model, inputs, "reference", stress)
            for key in ["energy", "forces"] + (["stress"] if stress else []):
                check(f"model {structure.get_chemical_formula()} {dtype} {key}", fused[key].detach(), reference[key].detach(), tolerance)
            check(f"model {structure.get_chemical_formula()} {dtype} force-loss gradients", fused_gradients, reference_gradients, 10 * tolerance)
    _, (x, w, y, _), sender, receiver, tables, dims = edge_problem(1, 2, 2, torch.float64, num_nodes=4, num_edges=12, channels=3)
    leaves = [t.to(device).requires_grad_(True) for t in (x, w, y)]
    sender, receiver, tables = sender.to(device), receiver.to(device), [t.to(device) for t in tables]

    def function(a, b, c):
        return edge_tp.edge_tp(a, b, c, None, sender, receiver, *tables, 3, dims)

    ok = torch.autograd.gradcheck(function, leaves) and torch.autograd.gradgradcheck(function, leaves)
    print(f"{'edge_tp gradcheck and gradgradcheck on the device':60s} {'ok' if ok else 'FAILED'}")
    if not ok:
        failures.append(("gradcheck", None))
    if failures:
        print("FAILED:", failures)
        sys.exit(1)
    print("all GPU checks passed")


if __name__ == "__main__":
    main()
