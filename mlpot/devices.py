"""Devices a user names (``--device``, ``training.device``), checked before any work.

torch accepts ``cuda:7`` on a machine without it and fails only at the first tensor moved there
(an AssertionError on a CPU-only build); a misspelt name is a RuntimeError listing every backend.
"""

import torch

from mlpot.errors import MLPotError


def check_device(name: str, option: str) -> torch.device:
    """``name`` as a device this machine has, or one line naming ``option``."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise MLPotError(f"{option} {name!r} is not a device name (cpu, cuda, cuda:1, mps, ...)") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            built = "" if torch.version.cuda else " (this torch is built without CUDA)"
            raise MLPotError(f"{option} {name}: no CUDA device is available{built}")
        if device.index is not None and device.index >= count:
            available = "cuda:0" if count == 1 else f"cuda:0 to cuda:{count - 1}"
            raise MLPotError(f"{option} {name}: this machine has {count} CUDA device{'s' * (count > 1)} ({available})")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise MLPotError(f"{option} {name}: no Apple MPS device is available")
    return device
