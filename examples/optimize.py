"""Relax positions and cell of a Cu-Au alloy with an mlpot potential.

    python examples/optimize.py [--model models/cuau-emt-demo]

BFGS on positions and the cell together (ASE's FrechetCellFilter) until forces are below
0.01 eV/Å; prints the lattice constant before and after and writes the relaxed structure.
"""

import argparse
from pathlib import Path

from ase.filters import FrechetCellFilter
from ase.io import read, write
from ase.optimize import BFGS

from mlpot.calculators import MLPotCalculator

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=HERE.parent / "models" / "cuau-emt-demo")
    parser.add_argument("--structure", default=HERE / "structures" / "cuau-fcc-256.xyz")
    parser.add_argument("--output", default="relaxed.xyz")
    args = parser.parse_args()

    atoms = read(args.structure)
    atoms.rattle(0.02, seed=0)
    atoms.calc = MLPotCalculator(args.model)
    print(f"before: a = {atoms.cell.cellpar()[0] / 4:.4f} Å, energy {atoms.get_potential_energy():.4f} eV")
    BFGS(FrechetCellFilter(atoms), logfile="-").run(fmax=0.01, steps=500)
    print(f"after:  a = {atoms.cell.cellpar()[0] / 4:.4f} Å, energy {atoms.get_potential_energy():.4f} eV")
    write(args.output, atoms, format="extxyz")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
