"""Benchmark structures, identical for both packages (needs only numpy, scipy and ase).

Water boxes are an ordered n x n x n grid of randomly oriented H2O (spacing 3.107 A, about
1 g/cm^3) with 0.1 A Gaussian jitter of each molecule, from a fixed seed; copied from
/work/scratch/waterbox.py so that the numbers here do not depend on a scratch file.
"""

import numpy as np
from ase import Atoms
from ase.build import molecule
from scipy.spatial.transform import Rotation

SPACING = 3.107  # A, about 1 g/cm^3 of water
R_MAX = 5.0
ELEMENTS = ["H", "C", "O"]  # one element set for every system, so both models are the same size everywhere


def water_box(n_per_side: int, seed: int = 0) -> Atoms:
    rng = np.random.default_rng(seed)
    w = molecule("H2O")
    pos, sym = [], []
    for i in range(n_per_side):
        for j in range(n_per_side):
            for k in range(n_per_side):
                R = Rotation.random(random_state=rng.integers(1e9)).as_matrix()
                p = w.positions @ R.T + SPACING * np.array([i, j, k]) + rng.normal(0, 0.1, 3)
                pos.extend(p)
                sym.extend(w.get_chemical_symbols())
    L = SPACING * n_per_side
    return Atoms(sym, positions=pos, cell=[L, L, L], pbc=True)


SYSTEMS = {
    "ethanol": lambda: molecule("CH3CH2OH"),  # 9 atoms, no cell
    "water375": lambda: water_box(5),  # 5^3 molecules, L = 15.5 A
    "water648": lambda: water_box(6),  # 6^3 molecules, L = 18.6 A
    "water3993": lambda: water_box(11),  # 11^3 molecules, L = 34.2 A
}


def get_system(name: str) -> Atoms:
    return SYSTEMS[name]()
