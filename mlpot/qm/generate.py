"""``mlpot data qm``: PySCF on every frame of a structures file, in parallel, resumable.

Each worker process runs one SCF at a time on one thread and writes its frame file atomically,
so a killed run leaves only finished frames behind and the same command picks up the rest.
"""

import hashlib
import json
import multiprocessing
import os
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np
from ase.data import chemical_symbols
from tqdm import tqdm

from mlpot.data.dataset import read_frames
from mlpot.data.geometry import check_geometry
from mlpot.errors import MLPotError
from mlpot.files import atomic_output
from mlpot.qm.dataset import FORMAT, FORMAT_VERSION, METADATA, frame_path
from mlpot.qm.pyscf_runner import QMSettings, check_settings, element_shells, require_pyscf, run_frame

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# Metadata that must agree for a run to continue an existing directory.
IDENTITY = ("format", "settings", "structures_sha256", "num_frames", "shells", "pyscf_version")

Task = Tuple[int, np.ndarray, np.ndarray, QMSettings, str]


def generate(structures: Path, output: Path, settings: QMSettings, workers: int = 1, progress: bool = True) -> Dict[str, Any]:
    """Compute every frame of ``structures`` not yet in ``output``; returns the metadata.

    Frames whose SCF does not converge are not written; the run then ends with an error naming
    them and the directory stays marked unfinished.
    """
    if workers < 1:
        raise MLPotError(f"--workers must be at least 1, got {workers}")
    pyscf = require_pyscf()
    check_settings(settings)
    frames = []
    for k, atoms in read_frames(structures):
        check_geometry(atoms, f"{structures}, frame {k}")  # an SCF of overlapping nuclei is meaningless
        frames.append((atoms.numbers.astype(np.int64), atoms.positions.astype(np.float64)))
    elements = sorted({int(z) for numbers, _ in frames for z in numbers})
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "settings": settings.record(),
        "shells": {chemical_symbols[z]: element_shells(z, settings.basis) for z in elements},
        "ao_order": "PySCF: p as (x, y, z), other l as m = -l..l real solid harmonics",
        "units": {"positions": "Angstrom", "hamiltonian": "Hartree", "energy": "Hartree"},
        "density_fitting": False,
        "structures": str(structures),
        "structures_sha256": _fingerprint(frames),
        "num_frames": len(frames),
        "pyscf_version": pyscf.__version__,
        "complete": False,
    }
    _claim(output, metadata)
    todo = [k for k in range(len(frames)) if not frame_path(output, k).is_file()]
    if progress and len(todo) < len(frames):
        print(f"{output}: {len(frames) - len(todo)} of {len(frames)} frames already done, computing {len(todo)}")
    tasks: List[Task] = [(k, frames[k][0], frames[k][1], settings, str(output)) for k in todo]
    failed: List[int] = []
    bar = tqdm(total=len(tasks), desc=f"{settings.method}/{settings.basis}", unit="frame", disable=not progress)
    with bar:
        for index, converged in _results(tasks, workers):
            if not converged:
                failed.append(index)
            bar.update(1)
    if failed:
        listed = ", ".join(map(str, sorted(failed)[:10])) + (" ..." if len(failed) > 10 else "")
        raise MLPotError(
            f"{len(failed)} frames did not converge in {settings.max_cycles} SCF cycles (frames {listed}); "
            "the others are kept: rerun with a larger --max-cycles to finish"
        )
    metadata["complete"] = True
    _write_metadata(output, metadata)
    return metadata


def _results(tasks: List[Task], workers: int) -> Iterator[Tuple[int, bool]]:
    if workers == 1 or len(tasks) <= 1:
        with _single_thread_pyscf():
            for task in tasks:
                yield _compute_and_store(task)
        return
    with _single_thread_environment():  # children inherit it and load BLAS/OpenMP with one thread
        context = multiprocessing.get_context("spawn")  # no fork of a process with OpenMP threads
        pool = context.Pool(min(workers, len(tasks)), initializer=_init_worker)
    with pool, _sigterm_as_interrupt():  # leaving the block terminates the workers
        yield from pool.imap_unordered(_compute_and_store, tasks)


def _init_worker() -> None:
    from pyscf import lib

    lib.num_threads(1)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt, so a killed run stops its workers instead of orphaning them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _single_thread_environment() -> Iterator[None]:
    previous = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update({name: "1" for name in THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _single_thread_pyscf() -> Iterator[None]:
    from pyscf import lib

    previous = lib.num_threads()
    lib.num_threads(1)
    try:
        yield
    finally:
        lib.num_threads(previous)


def _compute_and_store(task: Task) -> Tuple[int, bool]:
    index, numbers, positions, settings, output = task
    started = time.perf_counter()
    result = run_frame(numbers, positions, settings)
    if not bool(result["converged"]):
        return index, False
    result["seconds"] = np.float64(time.perf_counter() - started)
    with atomic_output(frame_path(Path(output), index), "wb") as stream:
        np.savez(stream, **result)
    return index, True


def _fingerprint(frames: List[Tuple[np.ndarray, np.ndarray]]) -> str:
    digest = hashlib.sha256()
    for numbers, positions in frames:
        digest.update(numbers.tobytes())
        digest.update(np.round(positions, 10).tobytes())
    return digest.hexdigest()


def _claim(output: Path, metadata: Dict[str, Any]) -> None:
    """Start a new dataset in ``output`` or continue the one there if it is the same job."""
    existing = _existing_metadata(output)
    if existing is not None:
        for key in IDENTITY:
            if existing.get(key) != metadata.get(key):
                raise MLPotError(
                    f"{output} holds another dataset ('{key}' was {existing.get(key)!r}, now {metadata.get(key)!r}); "
                    "choose another output directory"
                )
    elif output.exists() and any(output.iterdir()):
        raise MLPotError(f"{output} is not empty and holds no QM dataset; choose another output directory")
    _write_metadata(output, metadata)


def _existing_metadata(output: Path) -> Optional[Dict[str, Any]]:
    file = output / METADATA
    if not file.is_file():
        return None
    try:
        return json.loads(file.read_text())
    except json.JSONDecodeError:
        raise MLPotError(f"{file}: not valid JSON; remove the directory or choose another") from None


def _write_metadata(output: Path, metadata: Dict[str, Any]) -> None:
    with atomic_output(output / METADATA, "w") as stream:
        json.dump(metadata, stream, indent=2)
        stream.write("\n")
