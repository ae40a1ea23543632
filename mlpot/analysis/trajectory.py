"""Streamed, validated reading of MD trajectories for ``mlpot analyze``.

Any file ASE reads works: extxyz as ``mlpot md`` writes it (``velocities`` in ASE units and
``time_ps`` per frame), extxyz or ASE ``.traj`` with ``momenta``, GPUMD-style extxyz with ``vel``
(Å/fs), and LAMMPS text dumps (ASE's ``lammps-dump-text`` reader; metal units; the element of
each atom type from ``--types`` unless the dump has an ``element`` column).

Frames are read one at a time (``ase.io.iread``); every pass over the file opens it again, so
no more than one frame (plus what an analysis keeps) is in memory. A frame that cannot be read,
changes its atoms, holds non-finite coordinates or overlapping atoms (closer than
:data:`mlpot.data.geometry.MIN_DISTANCE`; every frame is checked, at ~1 ms per 4,000 atoms)
stops the run with an :class:`MLPotError` naming the file, the frame's index in the file and
the pair.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
from ase import Atoms, units
from ase.data import atomic_numbers, chemical_symbols
from ase.io import iread
from ase.io.formats import ioformats

from mlpot.data.geometry import check_geometry
from mlpot.errors import MLPotError
from mlpot.files import check_input_file


@dataclass
class Frame:
    """One frame in mlpot's units: Å, Å/fs, fs."""

    index: int  # index of the frame in the file
    numbers: np.ndarray  # [N] atomic numbers
    positions: np.ndarray  # [N, 3] Å
    cell: np.ndarray  # [3, 3] Å, rows are the cell vectors
    pbc: np.ndarray  # [3] bool
    velocities: Optional[np.ndarray]  # [N, 3] Å/fs, or None
    time_fs: Optional[float]  # None when neither the file nor --timestep says

    @property
    def volume(self) -> float:
        return float(abs(np.linalg.det(self.cell)))


@dataclass
class TrajectorySource:
    """Where and how to read frames; :meth:`frames` may be called for as many passes as needed.

    ``timestep_fs`` is the MD time step: frames that carry a step number (LAMMPS ``TIMESTEP``,
    extxyz ``step``) are at step x timestep, frames with neither step nor time are
    ``timestep_fs`` apart. A frame's own ``time_ps`` (written by ``mlpot md``) takes precedence.
    """

    path: Path
    format: Optional[str] = None
    skip: int = 0
    every: int = 1
    timestep_fs: Optional[float] = None
    types: Optional[Sequence[str]] = None  # element of LAMMPS atom type 1, 2, ...

    def __post_init__(self) -> None:
        self.path = check_input_file(self.path, "trajectory")
        if self.path.stat().st_size == 0:
            raise MLPotError(f"{self.path} is empty")
        if self.skip < 0:
            raise MLPotError(f"--skip must be non-negative, got {self.skip}")
        if self.every < 1:
            raise MLPotError(f"--every must be at least 1, got {self.every}")
        if self.timestep_fs is not None and not 0 < self.timestep_fs < np.inf:
            raise MLPotError(f"--timestep must be positive (fs), got {self.timestep_fs}")
        if self.format is not None and self.format not in ioformats:
            raise MLPotError(f"--format {self.format}: not a format ASE reads (e.g. extxyz, traj, lammps-dump-text)")
        if self.types is not None:
            unknown = [symbol for symbol in self.types if symbol not in atomic_numbers or symbol == "X"]
            if unknown:
                raise MLPotError(f"--types: {', '.join(unknown)} is not an element symbol")

    def frames(self) -> Iterator[Frame]:
        """Validated frames from ``skip`` on, every ``every``-th; raises if there are none."""
        first: Optional[Frame] = None
        count = 0
        reader = self._reader()
        while True:
            file_index = self.skip + count * self.every
            try:
                atoms = next(reader)
            except StopIteration:
                break
            except KeyError as error:  # ASE's extxyz reader on a symbol that is no element
                raise MLPotError(f"{self.path}, frame {file_index}: unknown element symbol {error.args[0]!r}") from None
            except Exception as error:  # ASE raises many types for malformed or truncated files
                reason = str(error).splitlines()[0] if str(error) else type(error).__name__
                raise MLPotError(f"{self.path}: cannot read frame {file_index} ({reason}); is the file truncated?") from None
            frame = self._convert(atoms, file_index)
            if first is None:
                first = frame
            else:
                self._check_same_atoms(first, frame)
            count += 1
            yield frame
        if count == 0:
            raise MLPotError(f"{self.path} holds no frames" + (f" after --skip {self.skip}" if self.skip else ""))

    def first_frame(self) -> Frame:
        for frame in self.frames():
            return frame
        raise AssertionError("frames() raises when there are none")

    def _reader(self) -> Iterator[Atoms]:
        try:
            return iread(str(self.path), index=slice(self.skip, None, self.every), format=self.format)
        except Exception as error:
            raise MLPotError(f"{self.path}: cannot read ({str(error).splitlines()[0]})") from None

    def _convert(self, atoms: Atoms, index: int) -> Frame:
        where = f"{self.path}, frame {index}"
        numbers = self._numbers(atoms, where)
        check_geometry(Atoms(numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc), where)  # elements as --types gave them
        positions = np.array(atoms.positions, dtype=np.float64)
        return Frame(
            index=index,
            numbers=numbers,
            positions=positions,
            cell=np.array(atoms.cell.array, dtype=np.float64),
            pbc=np.array(atoms.pbc, dtype=bool),
            velocities=_velocities(atoms),
            time_fs=self._time(atoms, index),
        )

    def _numbers(self, atoms: Atoms, where: str) -> np.ndarray:
        if "type" in atoms.arrays:  # a LAMMPS dump: ASE gives the element column, or else the type as Z
            types = np.asarray(atoms.arrays["type"], dtype=int)
            if self.types is not None:
                if types.min() < 1 or types.max() > len(self.types):
                    raise MLPotError(f"{where}: atom type {types.max()} has no element in --types ({len(self.types)} given)")
                return np.array([atomic_numbers[self.types[t - 1]] for t in types])
            if np.array_equal(atoms.numbers, types):
                raise MLPotError(f"{where}: the dump names atom types, not elements; give --types (the element of each type, in type order)")
        elif self.types is not None:
            raise MLPotError(f"--types applies to LAMMPS dumps (a per-atom 'type' column); {self.path} names its elements")
        numbers = np.array(atoms.numbers, dtype=int)
        if (numbers == 0).any():
            raise MLPotError(f"{where}: atom {int(np.argmax(numbers == 0))} has no known element (symbol X)")
        return numbers

    def _time(self, atoms: Atoms, index: int) -> Optional[float]:
        if "time_ps" in atoms.info:
            return 1000.0 * float(atoms.info["time_ps"])
        if self.timestep_fs is None:
            return None
        for key in ("timestep", "step"):  # LAMMPS dumps; extxyz written with a step number
            if key in atoms.info:
                return float(atoms.info[key]) * self.timestep_fs
        return index * self.timestep_fs

    def _check_same_atoms(self, first: Frame, frame: Frame) -> None:
        if len(frame.numbers) != len(first.numbers):
            raise MLPotError(f"{self.path}, frame {frame.index}: {len(frame.numbers)} atoms, frame {first.index} has {len(first.numbers)}")
        if not np.array_equal(frame.numbers, first.numbers):
            atom = int(np.argmax(frame.numbers != first.numbers))
            raise MLPotError(
                f"{self.path}, frame {frame.index}: atom {atom} is {chemical_symbols[frame.numbers[atom]]}, "
                f"in frame {first.index} {chemical_symbols[first.numbers[atom]]} (atoms must keep their order)"
            )


def _velocities(atoms: Atoms) -> Optional[np.ndarray]:
    """Velocities in Å/fs from what the file holds: ``velocities`` (ASE units, as ``mlpot md``
    writes them), ``momenta`` (ASE, LAMMPS dumps via ASE) or ``vel`` (Å/fs, GPUMD)."""
    if "velocities" in atoms.arrays:
        return np.asarray(atoms.arrays["velocities"], dtype=np.float64) * units.fs
    if "momenta" in atoms.arrays:
        return atoms.get_velocities() * units.fs
    if "vel" in atoms.arrays:
        return np.array(atoms.arrays["vel"], dtype=np.float64)
    return None


def require_periodic(frame: Frame, source: TrajectorySource, observables: str) -> None:
    if not frame.pbc.all():
        raise MLPotError(f"{source.path}, frame {frame.index}: not periodic in all three directions; {observables} need a periodic box")


def require_same_cell(first: Frame, frame: Frame, source: TrajectorySource, observables: str) -> None:
    if not np.allclose(frame.cell, first.cell, rtol=0.0, atol=1e-6):
        raise MLPotError(
            f"{source.path}, frame {frame.index}: the cell differs from frame {first.index}'s; "
            f"{observables} need a constant cell (NVT or NVE)"
        )


class TimeAxis:
    """Checks that frames are equally spaced in time and remembers the spacing (fs)."""

    def __init__(self, source: TrajectorySource, observables: str, needs_velocities: bool):
        self.source = source
        self.observables = observables
        self.needs_velocities = needs_velocities
        self.dt_fs: Optional[float] = None
        self._last: Optional[Frame] = None

    def add(self, frame: Frame) -> None:
        where = f"{self.source.path}, frame {frame.index}"
        if frame.time_fs is None:
            raise MLPotError(f"{where}: no time (no time_ps in the file); give --timestep (fs) for {self.observables}")
        if self.needs_velocities and frame.velocities is None:
            raise MLPotError(f"{where}: no velocities; the VDOS needs a trajectory with velocities (or leave vdos out of --observables)")
        if self._last is not None:
            step = frame.time_fs - self._last.time_fs
            if not step > 0:
                raise MLPotError(f"{where}: time {frame.time_fs:g} fs does not increase (frame {self._last.index}: {self._last.time_fs:g} fs)")
            if self.dt_fs is None:
                self.dt_fs = step
            elif abs(step - self.dt_fs) > 1e-6 * self.dt_fs:
                raise MLPotError(
                    f"{where}: unequal time steps ({step:g} fs after frame {self._last.index}, {self.dt_fs:g} fs before); "
                    f"{self.observables} need equally spaced frames"
                )
        self._last = frame
