"""Fused kernels for the interaction (edge tensor product) and the product basis (symmetric
contraction), and the switch between them and the reference path.

    from mlpot.kernels import set_kernels
    set_kernels(model, "reference")      # "auto" (default), "fused" or "reference"

``auto`` uses the fused kernels on devices where they have run and matched the reference path:
the CPU (the library built at install, :mod:`mlpot.kernels.cpu`). The Triton kernels for CUDA
have run only in Triton's CPU interpreter, never on a GPU, so on CUDA ``auto`` means the
reference path until they have matched it there; ``fused`` selects them explicitly. Both paths
give the same numbers to round-off; the reference path is plain PyTorch and stays selectable for
checks and for devices without a kernel. Models pick ``auto`` when they are built or loaded;
the calculator, ``mlpot md``, ``mlpot eval`` and ``mlpot train`` take a ``kernel`` option. The
environment variable ``MLPOT_KERNEL`` (or :func:`set_default_kernel`) says what ``auto`` means
for the whole process: ``reference`` there turns the fused kernels off everywhere, ``fused``
makes ``auto`` ask for them (Triton on CUDA included).
"""

import os
from typing import Union

import torch
from torch import nn

from mlpot.choices import KERNELS
from mlpot.errors import MLPotError
from mlpot.kernels import cpu

# Device types where ``auto`` runs fused: their kernels have run and matched the reference there.
AUTO_FUSED_DEVICES = ("cpu",)

_default = os.environ.get("MLPOT_KERNEL", "auto")


def set_default_kernel(kernel: str) -> None:
    """What ``auto`` resolves to in this process (``MLPOT_KERNEL`` sets it at start-up)."""
    global _default
    if kernel not in KERNELS:
        raise MLPotError(f"kernel must be one of {', '.join(KERNELS)}, got {kernel!r}")
    _default = kernel


def default_fused(device: Union[str, torch.device] = "cpu") -> bool:
    """Whether a block built now for ``device`` should run fused (the process default, if available)."""
    if _default == "reference":
        return False
    if _default == "fused":
        return fused_available(device)
    return auto_fused(device)


def auto_fused(device: Union[str, torch.device]) -> bool:
    """What ``auto`` means on ``device``: fused where it has a kernel that was checked there."""
    return torch.device(device).type in AUTO_FUSED_DEVICES and fused_available(device)


def fused_available(device: Union[str, torch.device]) -> bool:
    """Whether ``device`` has a fused kernel (not just the plain-torch evaluation of the operator)."""
    device = torch.device(device)
    if device.type == "cpu":
        return cpu.library() is not None
    if device.type == "cuda":
        from mlpot.kernels import triton_edge_tp

        return triton_edge_tp.available()
    return False


def set_kernels(model: nn.Module, kernel: str = "auto", device: Union[str, torch.device, None] = None) -> bool:
    """Choose the execution path of every block of ``model`` that has two; True if fused.

    ``device`` defaults to where the model's parameters are. Asking for ``fused`` where there is
    no kernel is an error; ``auto`` means :func:`auto_fused` (the reference path on CUDA).
    """
    if kernel not in KERNELS:
        raise MLPotError(f"kernel must be one of {', '.join(KERNELS)}, got {kernel!r}")
    if kernel == "auto":
        kernel = _default
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    available = fused_available(device)
    if kernel == "fused" and not available:
        raise MLPotError(
            f"no fused kernel for device {device}: "
            + ("mlpot's CPU library was not built (reinstall with a C++ compiler)" if torch.device(device).type == "cpu"
               else "Triton is needed on CUDA (pip install triton)")
        )
    fused = kernel == "fused" or (kernel == "auto" and auto_fused(device))
    for module in model.modules():
        if isinstance(getattr(module, "fused", None), bool):
            module.fused = fused
    return fused


__all__ = ["AUTO_FUSED_DEVICES", "KERNELS", "auto_fused", "default_fused", "fused_available", "set_default_kernel", "set_kernels"]
