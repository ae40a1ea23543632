"""Test systems of the partition benchmark: bulk water, a water slab with vacuum, a water droplet
and a copper nanoparticle. Only their graphs matter for partition quality; water also runs
through the H C O ethanol model for the memory and wall-time numbers."""

import numpy as np
from ase import Atoms
from ase.build import molecule
from ase.cluster import Icosahedron
from scipy.spatial.transform import Rotation

WATER_SPACING = 3.104  # Å: one molecule per 29.9 Å^3, 1.0 g/cm^3


def water_box(num_atoms: int, seed: int = 0) -> Atoms:
    """Periodic liquid-density water: randomly oriented molecules on a cubic lattice, about
    ``num_atoms`` atoms (a whole number of molecules per side)."""
    side = max(1, round((num_atoms / 3) ** (1 / 3)))
    rng = np.random.default_rng(seed)
    template = molecule("H2O").positions - molecule("H2O").get_center_of_mass()  # [3, 3]
    grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3) * WATER_SPACING  # [M, 3]
    rotations = Rotation.random(len(grid), random_state=rng.integers(1 << 31)).as_matrix()  # [M, 3, 3]
    positions = grid[:, None, :] + np.einsum("mab,kb->mka", rotations, template)  # [M, 3, 3]
    numbers = np.tile([8, 1, 1], len(grid))
    return Atoms(numbers=numbers, positions=positions.reshape(-1, 3), cell=np.eye(3) * side * WATER_SPACING, pbc=True)


def water_slab(num_atoms: int, vacuum: float = 20.0) -> Atoms:
    """A water slab 4x as wide as thick, periodic in x and y, with ``vacuum`` Å along z (pbc all)."""
    layers = max(1, round((num_atoms / 3 / 16) ** (1 / 3)))
    box = water_box(3 * (4 * layers) ** 3)
    keep = box.positions[:, 2] < layers * WATER_SPACING - 0.5 * WATER_SPACING
    keep = np.repeat(keep.reshape(-1, 3)[:, 0], 3)  # whole molecules, by their oxygen
    slab = box[keep]
    slab.cell[2, 2] = layers * WATER_SPACING + vacuum
    return slab


def water_droplet(num_atoms: int) -> Atoms:
    """An open sphere of water with about ``num_atoms`` atoms."""
    box = water_box(int(num_atoms * 6 / np.pi) + 3)
    oxygen = box.positions[::3]
    centre = box.cell.lengths() / 2
    radius = (num_atoms / 3 * WATER_SPACING**3 * 3 / (4 * np.pi)) ** (1 / 3)
    keep = np.repeat(np.linalg.norm(oxygen - centre, axis=1) < radius, 3)
    droplet = box[keep]
    droplet.pbc = False
    droplet.cell = np.zeros((3, 3))
    return droplet


def nanoparticle(shells: int = 12) -> Atoms:
    """A copper icosahedron (12 shells: 5083 atoms), open boundaries."""
    return Icosahedron("Cu", noshells=shells)


SYSTEMS = {
    "water 10^4": lambda: water_box(10_000),
    "water 10^5": lambda: water_box(100_000),
    "water slab + 20 Å vacuum": lambda: water_slab(10_000),
    "water droplet": lambda: water_droplet(6_600),
    "Cu nanoparticle": lambda: nanoparticle(12),
}
