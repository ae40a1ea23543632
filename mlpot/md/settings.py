"""What ``mlpot md`` can be asked: the ensembles and :class:`MDSettings`.

Apart from :mod:`mlpot.errors`, standard library only: the ``mlpot md`` parser reads the defaults
from here without loading ASE or torch. :mod:`mlpot.md.driver` runs the dynamics.
"""

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from mlpot.errors import MLPotError

if TYPE_CHECKING:
    from ase import Atoms

ENSEMBLES = ("nve", "nvt", "npt")


@dataclass
class MDSettings:
    ensemble: str = "nve"
    temperature: float = 300.0  # K: initial velocities, and the thermostat's target
    timestep: float = 0.5  # fs
    steps: int = 1000
    interval: int = 10  # write trajectory and log every this many steps
    friction: float = 0.01  # 1/fs, Langevin
    pressure: float = 1.01325  # bar, NPT
    taut: float = 100.0  # fs, Berendsen thermostat time
    taup: float = 1000.0  # fs, Berendsen barostat time
    compressibility: float = 4.6e-5  # 1/bar (water-like; set it for your material)
    seed: int = 0
    uncertainty_stop: Optional[float] = None  # eV/Å: stop when a committee's force spread passes this
    dump_threshold: Optional[float] = None  # eV/Å: frames above this go to the dump file

    def validate(self) -> None:
        """Refuse values no run can use, naming the option: before the model is loaded."""
        if self.ensemble not in ENSEMBLES:
            raise MLPotError(f"--ensemble must be one of {', '.join(ENSEMBLES)}, got {self.ensemble!r}")
        if not 0 < self.timestep < math.inf:
            raise MLPotError(f"--timestep must be a positive number of fs, got {self.timestep:g}")
        if self.steps < 1:
            raise MLPotError(f"--steps must be at least 1, got {self.steps}")
        if self.interval < 1:
            raise MLPotError(f"--interval must be at least 1 step, got {self.interval}")
        if not 0 <= self.temperature < math.inf:
            raise MLPotError(f"--temperature must be a non-negative number of K, got {self.temperature:g}")
        if self.temperature == 0 and self.ensemble != "nve":
            raise MLPotError(
                f"--ensemble {self.ensemble} at --temperature 0: the thermostat would drain all motion (a quench, not a run "
                "at a temperature); give a positive --temperature, or use --ensemble nve to start from rest"
            )
        positive = (("--friction", self.friction, "1/fs"), ("--compressibility", self.compressibility, "1/bar"),
                    ("taut", self.taut, "fs"), ("taup", self.taup, "fs"))
        for name, value, unit in positive:
            if not 0 < value < math.inf:
                raise MLPotError(f"{name} must be positive ({unit}), got {value:g}")
        if not math.isfinite(self.pressure):
            raise MLPotError(f"--pressure must be a number of bar, got {self.pressure:g}")
        if self.seed < 0:
            raise MLPotError(f"--seed must be non-negative, got {self.seed}")
        for name, value in (("--uncertainty-stop", self.uncertainty_stop), ("--dump-threshold", self.dump_threshold)):
            if value is not None and not value > 0:
                raise MLPotError(f"{name} must be positive (eV/Å), got {value:g}")

    def check_structure(self, atoms: "Atoms") -> None:
        """Refuse a structure the ensemble cannot run."""
        if self.ensemble == "npt" and not atoms.pbc.all():
            raise MLPotError("--ensemble npt needs a structure periodic in all three directions")
