"""Write the starting structures used by the examples (run from anywhere):

    python examples/structures/make_structures.py

cuau-fcc-256.xyz   4x4x4 cubic fcc cells of Cu with 25 % Au at random (seed 0), a = 3.73 Å
ethanol.xyz        ethanol from ASE's molecule database, centred in no cell
"""

from pathlib import Path

import numpy as np
from ase.build import bulk, molecule
from ase.io import write

HERE = Path(__file__).resolve().parent


def main() -> None:
    alloy = bulk("Cu", "fcc", a=3.73, cubic=True) * (4, 4, 4)
    rng = np.random.default_rng(0)
    alloy.symbols[rng.permutation(len(alloy))[: len(alloy) // 4]] = "Au"
    write(HERE / "cuau-fcc-256.xyz", alloy, format="extxyz")
    write(HERE / "ethanol.xyz", molecule("CH3CH2OH"), format="extxyz")


if __name__ == "__main__":
    main()
