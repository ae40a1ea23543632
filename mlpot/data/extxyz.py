"""Lossless extended-XYZ writer.

ASE writes per-atom arrays with ``%16.8f``, which rounds labels (an rMD17 force in eV/Å loses
its last digits). mlpot writes every float with Python's shortest round-trip repr instead, so
``ase.io.read`` gives back the identical float64 values. The file is written to a temporary
name and renamed, so an interrupted write never leaves a partial file behind.
"""

from pathlib import Path
from typing import Dict, Iterable, Optional, Union

import numpy as np
from ase import Atoms
from ase.stress import voigt_6_to_full_3x3_stress

from mlpot.files import atomic_output


_FULL_3X3_KEYS = ("stress", "virial", "virials")


def as_frame(atoms: Atoms):
    """(atoms, info, arrays) holding everything a read frame had, labels included: those that
    ASE moved into a SinglePointCalculator go back under their keys."""
    info = dict(atoms.info)
    arrays = {key: value for key, value in atoms.arrays.items() if key not in ("numbers", "positions")}
    if atoms.calc is not None:
        for key, value in atoms.calc.results.items():
            (arrays if np.ndim(value) == 2 and len(value) == len(atoms) else info)[key] = value
    return atoms, info, arrays


def _value(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "T" if value else "F"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, str):
        return f'"{value}"' if (" " in value or not value) else value
    array = np.asarray(value)
    if array.dtype.kind in "fiub" and array.size > 0:
        return '"' + " ".join(_value(item) for item in array.reshape(-1).tolist()) + '"'
    raise TypeError(f"cannot write info value {value!r} to extxyz")


def _property_type(array: np.ndarray) -> str:
    return {"f": "R", "i": "I", "u": "I", "b": "L"}[array.dtype.kind]


def format_frame(atoms: Atoms, info: Optional[Dict] = None, arrays: Optional[Dict[str, np.ndarray]] = None) -> str:
    """One frame; ``info`` and ``arrays`` default to the atoms' own (positions/numbers excluded)."""
    info = dict(atoms.info if info is None else info)
    arrays = {k: v for k, v in (atoms.arrays if arrays is None else arrays).items() if k not in ("numbers", "positions")}
    comment = []
    if atoms.cell.rank > 0 or atoms.pbc.any():
        comment.append("Lattice=" + _value(atoms.cell.array))
    properties = ["species:S:1", "pos:R:3"]
    columns = [np.asarray(atoms.get_chemical_symbols(), dtype=object)[:, None], atoms.positions]
    for name, array in arrays.items():
        array = np.asarray(array).reshape(len(atoms), -1)
        properties.append(f"{name}:{_property_type(array)}:{array.shape[1]}")
        columns.append(array)
    comment.append("Properties=" + ":".join(properties))
    for key, value in info.items():
        if key in _FULL_3X3_KEYS and np.size(value) == 6:  # ASE reads these keys as 9 numbers only
            value = voigt_6_to_full_3x3_stress(np.asarray(value, dtype=np.float64))
        comment.append(f"{key}={_value(value)}")
    comment.append("pbc=" + _value(" ".join("T" if p else "F" for p in atoms.pbc)))
    lines = [str(len(atoms)), " ".join(comment)]
    for i in range(len(atoms)):
        fields = []
        for column in columns:
            fields.extend(_value(item) if not isinstance(item, str) else item for item in column[i])
        lines.append(" ".join(fields))
    return "\n".join(lines) + "\n"


def write_extxyz(path: Union[str, Path], frames: Iterable[Union[Atoms, tuple]]) -> int:
    """Write frames (Atoms, or (Atoms, info, arrays) tuples) atomically; returns the frame count."""
    count = 0
    with atomic_output(path, "w") as stream:
        for frame in frames:
            atoms, info, arrays = frame if isinstance(frame, tuple) else (frame, None, None)
            stream.write(format_frame(atoms, info, arrays))
            count += 1
    return count
