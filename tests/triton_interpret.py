"""Checks of the Triton kernels under TRITON_INTERPRET=1 (run by test_kernels.py in its own process)."""

import os
import sys

assert os.environ.get("TRITON_INTERPRET") == "1", "run with TRITON_INTERPRET=1"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from test_kernels import edge_problem, symmetric_operands, symmetric_problem  # noqa: E402

from mlpot.kernels import edge_tp, symmetric, triton_edge_tp, triton_symmetric  # noqa: E402

failures = []
for dtype, tolerance in ((torch.float32, 2e-5), (torch.float64, 1e-12)):
    _, operands, sender, receiver, tables, dims = edge_problem(1, 2, 2, dtype, num_nodes=6, num_edges=30, channels=20)
    for target in range(4):
        inputs = list(operands)
        inputs[target] = None
        expected = edge_tp.evaluate_torch(target, inputs, sender, receiver, tables, dims)
        got = triton_edge_tp.edge_tp(target, inputs, sender, receiver, tables, dims)
        error = float((got - expected).abs().max() / expected.abs().max())
        print(f"edge_tp {dtype} target {target}: relative error {error:.2e}")
        if not error <= tolerance:
            failures.append(("edge_tp", dtype, target, error))
    _, x, B, G, H, stables, sdims = symmetric_problem(2, 1, 3, dtype, num_nodes=19, channels=5)
    for mode, inputs in symmetric_operands(x, B, G, H).items():
        expected = symmetric.evaluate_torch(mode, inputs, stables, sdims)
        got = triton_symmetric.symmetric(mode, inputs, stables, sdims)
        error = float((got - expected).abs().max() / expected.abs().max())
        print(f"symmetric {dtype} mode {mode}: relative error {error:.2e}")
        if not error <= tolerance:
            failures.append(("symmetric", dtype, mode, error))
if failures:
    print("FAILED", failures)
    sys.exit(1)
