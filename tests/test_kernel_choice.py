"""What ``auto`` and ``fused`` resolve to per device, without a GPU: the device is only named, and
Triton's availability is set by hand so both answers are checked on any machine."""

import pytest
import torch

import mlpot
from mlpot import kernels
from mlpot.errors import MLPotError
from mlpot.kernels import triton_edge_tp


def fused_flags(model) -> set:
    return {module.fused for module in model.modules() if isinstance(getattr(module, "fused", None), bool)}


@pytest.fixture
def model():
    torch.manual_seed(0)
    return mlpot.build_model({"elements": ["H", "O"], "hidden_irreps": "8x0e+8x1o", "radial_mlp": [8], "dtype": "float64"})


@pytest.fixture
def triton_on_cuda(monkeypatch):
    """As on a machine with Triton and a GPU (the model is never moved there)."""
    monkeypatch.setattr(kernels, "_default", "auto")
    monkeypatch.setattr(triton_edge_tp, "available", lambda: True)
    assert kernels.fused_available("cuda")


def test_auto_on_cuda_is_the_reference_path_even_with_triton(model, triton_on_cuda):
    assert not kernels.auto_fused("cuda")
    assert not kernels.default_fused("cuda")
    assert kernels.set_kernels(model, "auto", "cuda") is False
    assert fused_flags(model) == {False}


def test_fused_on_cuda_selects_triton(model, triton_on_cuda, monkeypatch):
    assert kernels.set_kernels(model, "fused", "cuda") is True
    assert fused_flags(model) == {True}
    monkeypatch.setattr(kernels, "_default", "fused")  # MLPOT_KERNEL=fused: auto asks for the kernels too
    kernels.set_kernels(model, "reference", "cuda")
    assert kernels.set_kernels(model, "auto", "cuda") is True
    assert fused_flags(model) == {True}


def test_fused_on_cuda_without_triton_says_so(model, monkeypatch):
    monkeypatch.setattr(triton_edge_tp, "available", lambda: False)
    with pytest.raises(MLPotError, match="Triton is needed on CUDA"):
        kernels.set_kernels(model, "fused", "cuda")


def test_auto_on_cpu_still_runs_the_built_library(model, monkeypatch):
    monkeypatch.setattr(kernels, "_default", "auto")
    assert kernels.auto_fused("cpu")
    assert kernels.set_kernels(model, "auto", "cpu") is True
    assert fused_flags(model) == {True}
