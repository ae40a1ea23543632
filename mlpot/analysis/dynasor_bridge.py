"""Hand mlpot's validated frame stream to dynasor's correlation functions.

dynasor's ``compute_static_structure_factors`` and ``compute_dynamic_structure_factors`` take a
``dynasor.Trajectory``, which opens the file with dynasor's own readers. mlpot reads the file
itself (``--skip``, ``--every``, ``--types``, units, validation), so :class:`FrameStream` offers
those functions the same interface over mlpot's frames: iteration yielding dynasor
``TrajectoryFrame`` objects (positions and velocities split by element, in Å and Å/fs), and the
attributes the functions read (``cell``, ``n_atoms``, ``atom_types``, ``atomic_indices``,
``frame_step``, ``has_positions``, ``has_velocities``, ``number_of_frames_read``), as defined in
dynasor 2.5's ``dynasor/trajectory/trajectory.py``. A test checks that dynasor gives the same
numbers through this stream as through its own ``Trajectory`` on the same file.
"""

from typing import Dict, Iterable, Iterator, List, Optional

import numpy as np
from ase.data import atomic_numbers
from tqdm import tqdm

from mlpot.analysis.trajectory import Frame


class FrameStream:
    def __init__(self, frames: Iterable[Frame], first: Frame, symbols: List[str], velocities: bool = False,
                 total: Optional[int] = None, label: str = "frames"):
        self._frames: Iterator[Frame] = iter(tqdm(frames, total=total, desc=label, unit="frame", disable=None, leave=False))
        self._velocities = velocities
        self.cell = first.cell.copy()  # [3, 3] Å
        self.n_atoms = len(first.numbers)
        self._indices: Dict[str, np.ndarray] = {s: np.flatnonzero(first.numbers == atomic_numbers[s]) for s in symbols}
        self.frame_step = 1  # mlpot's reader already applied --every
        self.number_of_frames_read = 0
        self.current_frame_index = 0

    @property
    def atomic_indices(self) -> Dict[str, np.ndarray]:
        return {symbol: indices.copy() for symbol, indices in self._indices.items()}

    @property
    def atom_types(self) -> List[str]:
        return sorted(self._indices)

    @property
    def properties(self):
        return ("positions", "velocities") if self._velocities else ("positions",)

    @property
    def has_positions(self) -> bool:
        return True

    @property
    def has_velocities(self) -> bool:
        return self._velocities

    @property
    def has_forces(self) -> bool:
        return False

    def __iter__(self):
        return self

    def __next__(self):
        from dynasor.trajectory.trajectory_frame import TrajectoryFrame

        frame = next(self._frames)
        self.number_of_frames_read += 1
        self.current_frame_index = frame.index
        return TrajectoryFrame(self._indices, self.number_of_frames_read - 1, frame.positions,
                               frame.velocities if self._velocities else None, None, properties=self.properties)
