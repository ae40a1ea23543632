"""What ``mlpot analyze`` and ``mlpot phonons`` can be asked: the observable names and the settings.

Standard library and :mod:`mlpot.errors` only: the parsers read the defaults from here without
loading numpy, ASE, scipy or matplotlib. :mod:`mlpot.analysis.analyze` and
:mod:`mlpot.analysis.phonons` do the work.
"""

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple

from mlpot.errors import MLPotError

OBSERVABLES = ("rdf", "sq", "vdos", "msd", "sqw")
MAX_Q = 100.0  # 1/Å: X-ray and neutron total scattering reach ~50
COMPARABLE = {"sq-neutron": ("S_neutron", "sq"), "sq-xray": ("S_xray", "sq"), "gr-neutron": ("G_neutron_1/A2", "rdf"),
              "gr-xray": ("G_xray_1/A2", "rdf")}


@dataclass
class AnalysisSettings:
    observables: List[str] = field(default_factory=lambda: ["auto"])
    r_max: Optional[float] = None  # Å; default half the smallest cell width
    dr: float = 0.02  # Å
    q_max: float = 10.0  # 1/Å
    dq: float = 0.05  # 1/Å
    q_points: int = 4000
    window: int = 500  # frames
    msd_fit: Optional[Tuple[float, float]] = None  # ps
    sqw_q: List[float] = field(default_factory=list)  # 1/Å
    compare: Optional[Path] = None
    compare_with: str = "sq-neutron"

    def validate(self) -> None:
        """Refuse values no analysis can use, naming the option: before the trajectory is read.
        (--q-points and --q-max against the box are checked in analyze().)"""
        if self.window < 4:
            raise MLPotError(f"--window must be at least 4 frames, got {self.window}")
        for name, value in (("--dr", self.dr), ("--dq", self.dq)):
            if not 0 < value < math.inf:
                raise MLPotError(f"{name} must be a positive number, got {value:g}")
        if not 0 < self.q_max <= MAX_Q:  # the direct sum enumerates every lattice vector up to q_max
            raise MLPotError(f"--q-max must be positive and at most {MAX_Q:g} 1/Å (beyond any diffraction experiment), got {self.q_max:g}")
        if self.r_max is not None and not 0 < self.r_max < math.inf:
            raise MLPotError(f"--r-max must be a positive number (Å), got {self.r_max:g}")
        for q in self.sqw_q:
            if not 0 < q <= self.q_max:
                raise MLPotError(f"--sqw-q {q:g}: each |Q| must be positive and at most --q-max {self.q_max:g} 1/Å")
        if self.msd_fit is not None and not 0 <= self.msd_fit[0] < self.msd_fit[1] < math.inf:
            raise MLPotError(f"--msd-fit {self.msd_fit[0]:g} {self.msd_fit[1]:g}: the start (ps) must be non-negative and before the end")


@dataclass
class PhononSettings:
    supercell: Optional[Tuple[int, int, int]] = None  # repeats of the input cell; default from min_length
    min_length: float = 10.0  # Å: the default supercell is at least this wide in every direction
    displacement: float = 0.01  # Å
    mesh: float = 40.0  # phonopy's mesh length (q-points ~ length / lattice constant per direction)
    t_max: float = 1000.0  # K
    t_step: float = 10.0  # K
    relax: bool = False
    fmax: float = 1e-3  # eV/Å, relaxation threshold
    relax_steps: int = 500

    def validate(self) -> None:
        """Refuse values no phonon run can use, naming the option: before the model is loaded."""
        if self.supercell is not None and (len(self.supercell) != 3 or any(n < 1 for n in self.supercell)):
            raise MLPotError(f"--supercell must be three positive integers, got {' '.join(map(str, self.supercell))}")
        positive = (("--min-length", self.min_length, "Å"), ("--displacement", self.displacement, "Å"), ("--mesh", self.mesh, "Å"),
                    ("--t-max", self.t_max, "K"), ("--t-step", self.t_step, "K"), ("--fmax", self.fmax, "eV/Å"))
        for name, value, unit in positive:
            if not 0 < value < math.inf:
                raise MLPotError(f"{name} must be a positive number ({unit}), got {value:g}")
        if self.t_step > self.t_max:
            raise MLPotError(f"--t-step {self.t_step:g} K is larger than --t-max {self.t_max:g} K")
        if self.relax_steps < 1:
            raise MLPotError(f"relax_steps must be at least 1, got {self.relax_steps}")
