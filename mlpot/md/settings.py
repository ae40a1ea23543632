"""What ``mlpot md`` can be asked: the ensembles and :class:`MDSettings`.

Apart from :mod:`mlpot.errors`, standard library only: the ``mlpot md`` parser reads the defaults
from here without loading ASE or torch. :mod:`mlpot.md.driver` runs the dynamics.
"""

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

    def validate(self, atoms: "Atoms") -> None:
        if self.ensemble not in ENSEMBLES:
            raise MLPotError(f"--ensemble must be one of {', '.join(ENSEMBLES)}, got {self.ensemble!r}")
        if self.timestep <= 0 or self.steps < 0 or self.interval < 1:
            raise MLPotError("--timestep must be positive, --steps non-negative and --interval at least 1")
        if self.temperature < 0:
            raise MLPotError(f"--temperature must be non-negative, got {self.temperature}")
        if self.ensemble == "npt" and not atoms.pbc.all():
            raise MLPotError("--ensemble npt needs a structure periodic in all three directions")
        for name, value in (("--uncertainty-stop", self.uncertainty_stop), ("--dump-threshold", self.dump_threshold)):
            if value is not None and not value > 0:
                raise MLPotError(f"{name} must be positive (eV/Å), got {value}")
