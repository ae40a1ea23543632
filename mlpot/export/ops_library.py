"""Build ``libmlpot_ops.so``: mlpot's fused kernels as registered torch operators, for processes
that run an exported model without importing mlpot.

An AOTInductor package exported with the fused kernels (:mod:`mlpot.export.aoti`) calls
``mlpot::edge_tp`` and ``mlpot::symmetric`` by name through torch's dispatcher. Inside mlpot those
are torch.library custom ops; elsewhere the process must register them first:

    torch.ops.load_library("libmlpot_ops.so")

The library is calculators/lammps/mlpot_ops.cpp (the registration the LAMMPS plugin compiles in)
with mlpot's C kernels (mlpot/kernels/*_cpu.cpp), linked against the torch wheel only, so it
loads in any Python process with the same torch. Built with the C++ compiler (g++) once per
mlpot, torch and source version into mlpot's cache folder.
"""

import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import List, Optional

from mlpot.errors import MLPotError

LIBRARY = "libmlpot_ops.so"


def _sources() -> List[Path]:
    from mlpot.export.lammps_plugin import find_sources, kernel_sources

    kernels = kernel_sources()
    return [find_sources() / "mlpot_ops.cpp", kernels / "edge_tp_cpu.cpp", kernels / "symmetric_cpu.cpp"]


def _default_path(sources: List[Path]) -> Path:
    import torch

    import mlpot

    digest = hashlib.sha256(b"".join(path.read_bytes() for path in sources)).hexdigest()[:10]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "mlpot" / "ops" / f"mlpot{mlpot.__version__}-torch{torch.__version__}-{digest}" / LIBRARY


def build_ops_library(path: Optional[Path] = None) -> Path:
    """Compile (or find, when already built from the same sources) the operator library; returns
    its absolute path. One-line MLPotError when no compiler runs or the compilation fails."""
    import torch
    from torch.utils import cpp_extension

    sources = _sources()
    target = Path(path) if path is not None else _default_path(sources)
    if path is None and target.is_file():
        return target
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        raise MLPotError("no C++ compiler (g++) found to build libmlpot_ops.so; install one or set CXX, or export with --kernel reference")
    torch_lib = Path(torch.__file__).resolve().parent / "lib"
    command = [compiler, "-O3", "-fopenmp", "-std=c++17", "-shared", "-fPIC",
               f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}"]
    command += [f"-I{directory}" for directory in cpp_extension.include_paths()]
    command += [str(source) for source in sources]
    command += [f"-L{torch_lib}", "-lc10", "-ltorch_cpu", "-ltorch", f"-Wl,-rpath,{torch_lib}"]
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    result = subprocess.run(command + ["-o", str(partial)], capture_output=True, text=True)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        errors = [line for line in result.stderr.splitlines() if "error" in line.lower()] or result.stderr.splitlines() or ["no output"]
        raise MLPotError(f"building {LIBRARY} failed ({compiler}, exit {result.returncode}): {errors[0][:300]}")
    partial.replace(target)  # another process may be building the same library: last one wins, whole
    return target.resolve()
