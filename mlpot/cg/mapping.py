"""Atom -> bead mappings and bead positions.

Three ways to group atoms into beads, all returning ``bead_of_atom`` (bead index per atom,
beads numbered 0..N-1 in order of their first atom):

- ``girvan_newman``: split the bond graph by removing the edges of highest betweenness until it
  falls into N connected parts (Girvan & Newman 2002; CGVAE's automatic mapping);
- ``alpha_carbon``: one bead per residue with a CA atom; atoms of residues without one (caps
  such as ACE, NME) join the nearest residue in sequence that has one;
- ``file``: a text file with one bead index per atom (whitespace separated, ``#`` comments).

A bead sits at a weighted mean of its atoms: the centroid, the centre of mass, or its CA atom.
"""

from pathlib import Path
from typing import List, Sequence

import numpy as np

from mlpot.cg.molecule import Molecule
from mlpot.errors import MLPotError


def _renumber(groups: Sequence[int]) -> List[int]:
    """Bead labels -> 0..N-1 in order of first appearance."""
    order: dict = {}
    return [order.setdefault(label, len(order)) for label in groups]


def girvan_newman_mapping(num_atoms: int, bonds: Sequence[Sequence[int]], num_beads: int) -> List[int]:
    """Partition of the bond graph into ``num_beads`` connected groups."""
    try:
        import networkx
        from networkx.algorithms.community import girvan_newman
    except ImportError:
        raise MLPotError('the Girvan-Newman mapping needs networkx: pip install "mlpot[cg]"') from None
    graph = networkx.Graph()
    graph.add_nodes_from(range(num_atoms))
    graph.add_edges_from(tuple(bond) for bond in bonds)
    components = networkx.number_connected_components(graph)
    if not components <= num_beads <= num_atoms:
        raise MLPotError(f"cannot split {num_atoms} atoms in {components} bonded parts into {num_beads} beads")
    communities = [set(c) for c in networkx.connected_components(graph)]
    if len(communities) < num_beads:
        for communities in girvan_newman(graph):
            if len(communities) >= num_beads:
                break
    if len(communities) != num_beads:
        raise MLPotError(f"Girvan-Newman splits this molecule into {len(communities)} parts, not {num_beads}; try another num_beads")
    label = np.empty(num_atoms, dtype=int)
    for index, community in enumerate(communities):
        label[list(community)] = index
    return _renumber(label.tolist())


def alpha_carbon_mapping(molecule: Molecule) -> List[int]:
    """One bead per residue that has a CA atom (needs atom and residue names)."""
    if not molecule.atom_names:
        raise MLPotError("the alpha_carbon mapping needs atom and residue names (use a PDB file)")
    residue_of_atom = _renumber(list(zip(molecule.residue_ids, molecule.residue_names)))
    num_residues = max(residue_of_atom) + 1
    has_ca = np.zeros(num_residues, dtype=bool)
    for residue, name in zip(residue_of_atom, molecule.atom_names):
        has_ca[residue] |= name == "CA"
    if not has_ca.any():
        raise MLPotError("the alpha_carbon mapping found no atom named CA")
    with_ca = np.nonzero(has_ca)[0]
    nearest = with_ca[np.abs(with_ca[None, :] - np.arange(num_residues)[:, None]).argmin(axis=1)]  # [residues]
    return _renumber([int(nearest[residue]) for residue in residue_of_atom])


def read_mapping_file(path: str, num_atoms: int) -> List[int]:
    """Bead index of each atom from a text file (any integers; renumbered 0..N-1)."""
    if not Path(path).is_file():
        raise MLPotError(f"mapping file {path} does not exist")
    tokens = []
    for line in Path(path).read_text().splitlines():
        tokens += line.split("#", 1)[0].split()
    try:
        labels = [int(token) for token in tokens]
    except ValueError:
        raise MLPotError(f"{path}: a mapping file holds one integer bead index per atom") from None
    if len(labels) != num_atoms:
        raise MLPotError(f"{path}: {len(labels)} bead indices for a molecule of {num_atoms} atoms")
    return _renumber(labels)


def bead_weights(bead_of_atom: Sequence[int], molecule: Molecule, position: str) -> np.ndarray:
    """Weight of each atom in its bead's position [n], summing to 1 over each bead."""
    from ase.data import atomic_masses

    beads = np.asarray(bead_of_atom)
    if position == "centroid":
        raw = np.ones(len(beads))
    elif position == "mass":
        raw = atomic_masses[np.asarray(molecule.numbers)]
    elif position == "alpha_carbon":
        raw = np.array([float(name == "CA") for name in molecule.atom_names]) if molecule.atom_names else np.zeros(len(beads))
        count = np.bincount(beads, weights=raw, minlength=beads.max() + 1)
        if not (count == 1).all():
            raise MLPotError("bead_position 'alpha_carbon' needs exactly one atom named CA in every bead")
    else:
        raise MLPotError(f"unknown bead position {position!r}; choose centroid, mass or alpha_carbon")
    totals = np.bincount(beads, weights=raw)
    return raw / totals[beads]


def bead_positions(trajectory: np.ndarray, bead_of_atom: Sequence[int], weights: np.ndarray) -> np.ndarray:
    """Coarse-grained coordinates [F, N, 3] of atomistic ones [F, n, 3]."""
    beads = np.asarray(bead_of_atom)
    num_beads = int(beads.max()) + 1
    projection = np.zeros((num_beads, len(beads)))
    projection[beads, np.arange(len(beads))] = weights
    return np.einsum("bn,fnk->fbk", projection, trajectory)
