"""Molecular dynamics with an mlpot potential in a plain ASE script.

    python examples/md_ase.py [--model models/cuau-emt-demo] [--steps 200]

NVT (Langevin, 600 K) on the 256-atom Cu-Au box from examples/structures, then NVE from the
thermalised state, printing energies as it goes.
"""

import argparse
from pathlib import Path

import numpy as np
from ase import units
from ase.io import read
from ase.md import velocitydistribution
from ase.md.langevin import Langevin
from ase.md.verlet import VelocityVerlet

from mlpot.calculators import MLPotCalculator

HERE = Path(__file__).resolve().parent
# ASE 3.29 renamed MaxwellBoltzmannDistribution to thermalize_momenta (same arguments).
thermalize = getattr(velocitydistribution, "thermalize_momenta", None) or velocitydistribution.MaxwellBoltzmannDistribution


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=HERE.parent / "models" / "cuau-emt-demo")
    parser.add_argument("--structure", default=HERE / "structures" / "cuau-fcc-256.xyz")
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()

    atoms = read(args.structure)
    atoms.calc = MLPotCalculator(args.model, dtype="float64")
    thermalize(atoms, temperature_K=600, rng=np.random.default_rng(0))

    def report(label: str) -> None:
        epot, ekin = atoms.get_potential_energy(), atoms.get_kinetic_energy()
        print(f"{label} epot {epot:12.5f} eV  ekin {ekin:9.5f} eV  etot {epot + ekin:12.5f} eV  T {atoms.get_temperature():6.1f} K")

    thermostat = Langevin(atoms, 2 * units.fs, temperature_K=600, friction=0.02 / units.fs, fixcm=False)
    thermostat.attach(lambda: report("nvt"), interval=20)
    thermostat.run(args.steps)
    verlet = VelocityVerlet(atoms, 2 * units.fs)
    verlet.attach(lambda: report("nve"), interval=20)
    verlet.run(args.steps)


if __name__ == "__main__":
    main()
