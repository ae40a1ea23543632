"""Liquid Cu3Au with ASE's EMT (not the demo potential), written like `mlpot md` writes.

    python melt_emt.py OUT STEPS

The demo potential was trained on fcc cells at 300-1200 K only: before it had ZBL, atoms passed
through each other in MD at 1400 K or above (pairs at 0.3 Å), and with ZBL pairs still sit at
1.1-1.5 Å at 2000 K (benchmarks/demo_melt). So the melt comes from the EMT it was trained on: the
256-atom crystal of make_structures.py, 2 % wider (a liquid's density), melted at 3000 K for
STEPS / 5 steps, then STEPS steps of Langevin MD at 1600 K (2 fs, friction 0.002/fs) written
every 5 steps to OUT/melt.xyz with velocities and time_ps, as `mlpot md --output` writes them.
"""

import sys
from pathlib import Path

import numpy as np
from ase import units
from ase.calculators.emt import EMT
from ase.io import read, write
from ase.md.langevin import Langevin
from ase.md import velocitydistribution

# ASE 3.29 renamed MaxwellBoltzmannDistribution to thermalize_momenta (same arguments).
thermalize_momenta = getattr(velocitydistribution, "thermalize_momenta", None) or velocitydistribution.MaxwellBoltzmannDistribution

out, steps = Path(sys.argv[1]), int(sys.argv[2])
atoms = read(out / "cu3au-crystal.xyz")
atoms.set_cell(atoms.cell * 1.02, scale_atoms=True)
atoms.calc = EMT()
thermalize_momenta(atoms, temperature_K=3000, rng=np.random.default_rng(0))
Langevin(atoms, 2 * units.fs, temperature_K=3000, friction=0.02 / units.fs, fixcm=False, rng=np.random.default_rng(1)).run(max(steps // 5, 50))

dynamics = Langevin(atoms, 2 * units.fs, temperature_K=1600, friction=0.002 / units.fs, fixcm=False, rng=np.random.default_rng(2))
trajectory = out / "melt.xyz"
trajectory.unlink(missing_ok=True)


def write_frame() -> None:
    frame = atoms.copy()
    frame.arrays["velocities"] = atoms.get_velocities()  # ASE units, as mlpot md writes them
    frame.info.update(step=dynamics.nsteps, time_ps=dynamics.nsteps * 2.0 / 1000.0)
    write(trajectory, frame, format="extxyz", append=True)


dynamics.attach(write_frame, interval=5)
dynamics.run(steps)
print(f"wrote {trajectory}: {steps} steps of EMT Langevin MD at 1600 K")
