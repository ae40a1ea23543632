"""atoms_to_graph against ASE's own neighbour list, edge for edge and vector for vector."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, fcc111, molecule
from ase.neighborlist import neighbor_list
from torch_geometric.loader import DataLoader

from mlpot import MLPotError, atoms_to_graph
from mlpot.data.graph import edge_vectors


def _triclinic_small():
    cell = [[2.5, 0.0, 0.0], [1.2, 2.3, 0.0], [0.7, 0.9, 2.1]]
    return Atoms("CuAu", positions=[[0, 0, 0], [1.0, 0.5, 0.7]], cell=cell, pbc=True)


def _outside_cell():
    atoms = bulk("Cu", "fcc", a=3.6) * (2, 2, 2)
    atoms.rattle(0.1, seed=1)
    atoms.positions[0] += [7.3, -9.1, 4.4]
    atoms.positions[3] -= [11.0, 0.2, 0.0]
    return atoms


def _slab_zero_c():
    # Mixed periodicity with a zero third cell vector, as ASE allows for a 2D system.
    slab = fcc111("Cu", (2, 2, 3), vacuum=0.0)
    slab.cell[2] = 0.0
    slab.pbc = [True, True, False]
    slab.rattle(0.05, seed=2)
    return slab


def _slab_outside():
    slab = fcc111("Al", (2, 2, 3), vacuum=5.0)
    slab.positions[0, 2] += 25.0
    return slab


def _wire():
    atoms = Atoms("C4", positions=[[0, 0, 0], [0.3, 0.2, 1.3], [0, 1.4, 2.5], [0.1, 0.1, 3.9]], pbc=[False, False, True])
    atoms.cell = [0, 0, 5.0]
    return atoms


def _molecule_far_away():
    ethanol = molecule("CH3CH2OH")
    ethanol.positions += 100.0
    return ethanol


CASES = {
    "bulk": lambda: (bulk("Cu", "fcc", a=3.6) * (2, 2, 2)).copy(),
    "rattled_bulk": lambda: _outside_cell(),
    "triclinic_smaller_than_cutoff": _triclinic_small,
    "one_atom_cell_smaller_than_cutoff": lambda: Atoms("H", positions=[[0.1, 0.2, 0.3]], cell=[1.1, 1.3, 1.7], pbc=True),
    "slab_zero_c": _slab_zero_c,
    "slab_atom_outside": _slab_outside,
    "wire_one_periodic_direction": _wire,
    "molecule_no_cell": lambda: molecule("CH3CH2OH"),
    "molecule_far_from_origin": _molecule_far_away,
    "lone_atom": lambda: Atoms("O", positions=[[1.0, 2.0, 3.0]]),
}


def _ase_edges(atoms: Atoms, cutoff: float):
    i, j, shift = neighbor_list("ijS", atoms, cutoff)
    vectors = atoms.positions[j] - atoms.positions[i] + shift @ atoms.cell.array
    return _canonical(j, i, vectors)


def _canonical(sender, receiver, vectors):
    rows = [(int(s), int(r), *np.round(v, 8)) for s, r, v in zip(sender, receiver, vectors)]
    return sorted(rows)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("cutoff", [2.6, 5.0])
def test_edges_match_ase_neighbour_list(case, cutoff):
    atoms = CASES[case]()
    graph = atoms_to_graph(atoms, cutoff, dtype=torch.float64)
    vectors = edge_vectors(graph.positions, graph.edge_index, graph.shifts).numpy()
    ours = _canonical(graph.edge_index[0].numpy(), graph.edge_index[1].numpy(), vectors)
    reference = _ase_edges(atoms, cutoff)
    assert len(ours) == len(reference)
    assert ours == reference
    # Shifts are whole lattice translations.
    if atoms.pbc.any():
        fractional = graph.shifts.numpy() @ np.linalg.pinv(atoms.cell.array)
        np.testing.assert_allclose(fractional, np.round(fractional), atol=1e-8)


def test_small_cell_has_several_images_of_one_neighbour():
    graph = atoms_to_graph(_triclinic_small(), 5.0, dtype=torch.float64)
    pairs = list(zip(graph.edge_index[0].tolist(), graph.edge_index[1].tolist()))
    assert pairs.count((1, 0)) > 10  # the same neighbour through many images
    assert pairs.count((0, 0)) > 10  # and the atom's own images


def test_graph_fields_and_dtypes():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    graph = atoms_to_graph(atoms, 4.0, dtype=torch.float32)
    assert graph.positions.shape == (4, 3) and graph.positions.dtype == torch.float32
    assert graph.atomic_numbers.tolist() == [29] * 4
    assert graph.edge_index.dtype == torch.long and graph.edge_index.shape[0] == 2
    assert graph.shifts.shape == (graph.edge_index.shape[1], 3)
    assert graph.cell.shape == (1, 3, 3) and graph.pbc.tolist() == [[True, True, True]]
    assert graph.num_nodes == 4


def test_lone_atom_has_no_edges():
    graph = atoms_to_graph(Atoms("Ar"), 5.0)
    assert graph.edge_index.shape == (2, 0) and graph.shifts.shape == (0, 3)


def test_batching_offsets_edges_and_stacks_cells():
    structures = [molecule("H2O"), bulk("Cu", "fcc", a=3.6, cubic=True), Atoms("He")]
    graphs = [atoms_to_graph(atoms, 3.0) for atoms in structures]
    batch = next(iter(DataLoader(graphs, batch_size=3)))
    assert batch.num_graphs == 3
    assert batch.cell.shape == (3, 3, 3)
    assert batch.batch.tolist() == [0, 0, 0, 1, 1, 1, 1, 2]
    offsets = torch.tensor([0, 3])
    for k, graph in enumerate(graphs[:2]):
        sel = batch.batch[batch.edge_index[1]] == k
        torch.testing.assert_close(batch.edge_index[:, sel] - offsets[k], graph.edge_index)


def test_bad_geometry_is_a_clear_error():
    atoms = molecule("H2O")
    atoms.positions[1, 2] = np.nan
    with pytest.raises(MLPotError, match="atom 1 has a non-finite coordinate"):
        atoms_to_graph(atoms, 5.0)
    with pytest.raises(MLPotError, match="zero volume"):
        atoms_to_graph(Atoms("H", cell=[[1, 0, 0], [0, 1, 0], [0, 0, 0]], pbc=True), 5.0)
    with pytest.raises(MLPotError, match="r_max"):
        atoms_to_graph(molecule("H2O"), 0.0)
