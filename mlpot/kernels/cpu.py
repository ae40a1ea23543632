"""Loader of the compiled CPU kernel library (``edge_tp_cpu.cpp``, ``symmetric_cpu.cpp``; built at install).

The library has a plain C ABI and no libtorch dependency, so one build serves any torch version.
It is found beside this file (a regular or editable install) or, when a source checkout is
imported ahead of the installed package (``python -m mlpot...`` from the repository root), in
the installed package's folder on sys.path (site-packages). Each call runs on
:func:`mlpot.threads.kernel_threads` threads (torch's count, at most the CPUs the process may use).
"""

import ctypes
import importlib.machinery
import site
import sys
from pathlib import Path
from typing import Optional

import torch

from mlpot.threads import kernel_threads

LIBRARY_STEM = "_cpu_kernels"
ABI_VERSION = 1

_library: Optional[ctypes.CDLL] = None
_searched = False


def _candidates():
    folders = [Path(__file__).resolve().parent]
    for entry in list(sys.path) + site.getsitepackages():
        if entry:
            folders.append(Path(entry) / "mlpot" / "kernels")
    for folder in folders:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            yield folder / f"{LIBRARY_STEM}{suffix}"


def library() -> Optional[ctypes.CDLL]:
    """The loaded library, or None where it was not built (the reference path is used then)."""
    global _library, _searched
    if _searched:
        return _library
    _searched = True
    for path in _candidates():
        if not path.is_file():
            continue
        loaded = ctypes.CDLL(str(path))
        if (loaded.mlpot_edge_tp_abi_version(), loaded.mlpot_symmetric_abi_version()) != (ABI_VERSION, ABI_VERSION):
            continue  # a stale build from another mlpot version
        pointer, i64, i32, integer = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32, ctypes.c_int
        for name in ("mlpot_edge_tp_f32", "mlpot_edge_tp_f64"):
            function = getattr(loaded, name)
            function.restype = integer
            function.argtypes = [integer] + [pointer] * 7 + [i64] * 7 + [i32] + [pointer] * 4 + [integer]
        for name in ("mlpot_symmetric_f32", "mlpot_symmetric_f64"):
            function = getattr(loaded, name)
            function.restype = integer
            function.argtypes = [integer] + [pointer] * 5 + [i64] * 5 + [i32] + [pointer] * 4 + [integer]
        _library = loaded
        break
    return _library


def edge_tp(
    target: int,
    operands: list,
    result: torch.Tensor,
    sender: torch.Tensor,
    receiver: torch.Tensor,
    tables: list,
    dims: list,
) -> None:
    """Run one target of the 4-linear form into the zeroed ``result`` (see edge_tp_cpu.cpp).

    ``operands`` [x, w, y, o] (contiguous, one dtype; the target's entry is ignored), ``tables``
    [triples, starts, sh_index, coeff], ``dims`` [E, N, D_in, P, D_sh, Q, C].
    """
    lib = library()
    if lib is None:
        raise RuntimeError("mlpot's CPU kernel library is not built; reinstall mlpot with a C++ compiler")
    function = lib.mlpot_edge_tp_f64 if result.dtype == torch.float64 else lib.mlpot_edge_tp_f32
    pointers = [None if tensor is None else tensor.data_ptr() for tensor in operands]
    triples, starts, sh_index, coeff = tables
    status = function(
        target,
        *pointers,
        result.data_ptr(),
        sender.data_ptr(),
        receiver.data_ptr(),
        *dims,
        triples.shape[0],
        triples.data_ptr(),
        starts.data_ptr(),
        sh_index.data_ptr(),
        coeff.data_ptr(),
        kernel_threads(torch.get_num_threads()),
    )
    if status != 0:
        raise RuntimeError(f"mlpot CPU kernel failed with status {status}")


def symmetric(mode: int, operands: list, result: torch.Tensor, tables: list, dims: list) -> None:
    """Run one mode of the fused symmetric contraction into the zeroed ``result``
    (see symmetric_cpu.cpp). ``operands`` [x, B, G, H] (contiguous or None), ``tables``
    [monomials, starts, pair_k, element], ``dims`` [N, D, K, nnz, C]."""
    lib = library()
    if lib is None:
        raise RuntimeError("mlpot's CPU kernel library is not built; reinstall mlpot with a C++ compiler")
    function = lib.mlpot_symmetric_f64 if result.dtype == torch.float64 else lib.mlpot_symmetric_f32
    monomials, starts, pair_k, element = tables
    status = function(
        mode,
        *[None if tensor is None else tensor.data_ptr() for tensor in operands],
        result.data_ptr(),
        *dims,
        monomials.shape[0],
        monomials.data_ptr(),
        starts.data_ptr(),
        pair_k.data_ptr(),
        element.data_ptr(),
        kernel_threads(torch.get_num_threads()),
    )
    if status != 0:
        raise RuntimeError(f"mlpot CPU kernel failed with status {status}")
