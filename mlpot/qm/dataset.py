"""The on-disk QM dataset written by ``mlpot data qm``: a directory of one file per frame.

    OUT/metadata.json        format, method, basis, grid, PySCF version, shells per element,
                             source structures, frame count, and whether generation finished
    OUT/frames/000000.npz    atomic_numbers [N], positions [N, 3] (Å), hamiltonian and overlap
                             [n_ao, n_ao] (Eh, PySCF's AO order, float64), energy (Eh),
                             orbital_energies [n_ao] (Eh, from H and S), num_electrons, ...

One file per frame lets several workers write at once and an interrupted run resume: a frame
file appears (atomically) only when its SCF is done.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Union

import numpy as np
from ase import Atoms

from mlpot.errors import MLPotError
from mlpot.qm.layout import OrbitalLayout

FORMAT = "mlpot-qm"
FORMAT_VERSION = 1
METADATA = "metadata.json"
FRAME_KEYS = ("atomic_numbers", "positions", "hamiltonian", "overlap", "energy", "orbital_energies", "num_electrons")


def frame_path(directory: Path, index: int) -> Path:
    return Path(directory) / "frames" / f"{index:06d}.npz"


@dataclass
class QMFrame:
    numbers: np.ndarray  # [N]
    positions: np.ndarray  # [N, 3] Å
    hamiltonian: np.ndarray  # [n_ao, n_ao] Eh
    overlap: np.ndarray  # [n_ao, n_ao]
    energy: float  # Eh
    orbital_energies: np.ndarray  # [n_ao] Eh
    num_electrons: int

    @property
    def num_occupied(self) -> int:
        return self.num_electrons // 2

    def atoms(self) -> Atoms:
        return Atoms(numbers=self.numbers, positions=self.positions)


@dataclass
class QMDataset:
    path: Path
    metadata: Dict[str, Any]
    frames: List[QMFrame]

    @property
    def layout(self) -> OrbitalLayout:
        return OrbitalLayout.from_symbols(self.metadata["shells"])

    def elements(self) -> List[int]:
        return sorted({int(z) for frame in self.frames for z in frame.numbers})


def read_metadata(path: Union[str, Path]) -> Dict[str, Any]:
    path = Path(path)
    file = path / METADATA
    if not file.is_file():
        raise MLPotError(f"{path} is not a QM dataset written by 'mlpot data qm' (no {METADATA})")
    try:
        metadata = json.loads(file.read_text())
    except json.JSONDecodeError as error:
        raise MLPotError(f"{file}: not valid JSON ({error.msg}, line {error.lineno})") from None
    if metadata.get("format") != FORMAT:
        raise MLPotError(f"{file}: not an '{FORMAT}' dataset")
    if int(metadata.get("format_version", -1)) > FORMAT_VERSION:
        raise MLPotError(f"{file}: format version {metadata['format_version']} is newer than this mlpot reads")
    return metadata


def read_qm_dataset(path: Union[str, Path]) -> QMDataset:
    """All frames of a finished dataset; an unfinished one is refused (rerun to complete it)."""
    path = Path(path)
    metadata = read_metadata(path)
    total = int(metadata["num_frames"])
    if not metadata.get("complete"):
        done = sum(frame_path(path, k).is_file() for k in range(total))
        raise MLPotError(
            f"{path} is unfinished ({done} of {total} frames); rerun the same 'mlpot data qm' command to complete it"
        )
    layout = OrbitalLayout.from_symbols(metadata["shells"])
    return QMDataset(path, metadata, [_read_frame(frame_path(path, k), layout) for k in range(total)])


def _read_frame(file: Path, layout: OrbitalLayout) -> QMFrame:
    if not file.is_file():
        raise MLPotError(f"{file}: frame file is missing")
    try:
        with np.load(file, allow_pickle=False) as stored:
            missing = [key for key in FRAME_KEYS if key not in stored]
            if missing:
                raise MLPotError(f"{file}: no '{missing[0]}' in the frame file")
            values = {key: stored[key] for key in FRAME_KEYS}
    except (OSError, ValueError) as error:
        raise MLPotError(f"{file}: cannot read the frame ({error})") from None
    numbers = values["atomic_numbers"].astype(np.int64)
    size = int(layout.offsets(numbers)[-1])
    for key in ("hamiltonian", "overlap"):
        if values[key].shape != (size, size):
            raise MLPotError(f"{file}: '{key}' has shape {values[key].shape}, the basis gives {size} orbitals")
        if not np.isfinite(values[key]).all():
            raise MLPotError(f"{file}: '{key}' contains NaN or infinity")
    return QMFrame(
        numbers=numbers,
        positions=values["positions"].astype(np.float64).reshape(len(numbers), 3),
        hamiltonian=values["hamiltonian"].astype(np.float64),
        overlap=values["overlap"].astype(np.float64),
        energy=float(values["energy"]),
        orbital_energies=values["orbital_energies"].astype(np.float64),
        num_electrons=int(values["num_electrons"]),
    )
