"""The shipped GNN partitioner (mlpot/partition/gnn.py, arXiv 2110.08614): valid, balanced,
non-empty parts; a normalised cut close to METIS's on graphs training never saw; a weight file
that loads as plain tensors."""

import pickletools
import zipfile

import numpy as np
import pytest
import torch

from mlpot.errors import MLPotError
from mlpot.partition.gnn import WEIGHTS_PATH, gnn_partition
from mlpot.partition.partitioners import partition_quality
from mlpot.partition.train_gnn import FAMILIES, atom_edge_index

# Seeds the training (20261204 and its held-out report, 20262204) never used.
HELD_OUT_SEED = 31
# Recursive bisection splits each piece to within one atom of its target, so a part is at most
# a few atoms above N / k; on 300-atom graphs that stays under 5 %.
BALANCE_TOLERANCE = 1.05
# benchmarks/partition/gnn.md: the GNN's normalised cut is 1.01-1.25x METIS's on held-out
# ~2000-atom graphs of every family (median 1.08); on the 500-atom graphs here at most 1.19x.
METIS_FACTOR = 1.3


def held_out(family: str, num_atoms: int):
    atoms = FAMILIES[family](np.random.default_rng(HELD_OUT_SEED), num_atoms)
    return atoms, atom_edge_index(atoms)


@pytest.mark.parametrize("family", ["water", "slab"])
@pytest.mark.parametrize("k", [2, 3, 4, 7])
def test_labels_are_valid_balanced_and_never_empty(family, k):
    atoms, edge_index = held_out(family, 300)
    labels = gnn_partition(len(atoms), edge_index, k, atoms.positions)
    assert labels.dtype == np.int64 and labels.shape == (len(atoms),)
    assert labels.min() == 0 and labels.max() == k - 1
    sizes = np.bincount(labels, minlength=k)
    assert sizes.min() > 0
    assert sizes.max() <= BALANCE_TOLERANCE * len(atoms) / k
    np.testing.assert_array_equal(gnn_partition(len(atoms), edge_index, k), labels)  # deterministic


@pytest.mark.parametrize("family", list(FAMILIES))
def test_normalised_cut_is_close_to_metis_on_held_out_graphs(family):
    pytest.importorskip("pymetis")
    from mlpot.partition.partitioners import metis_labels

    atoms, edge_index = held_out(family, 500)
    for k in (2, 8):
        gnn = partition_quality(gnn_partition(len(atoms), edge_index, k), edge_index, k)["normalised_cut"]
        metis = partition_quality(metis_labels(len(atoms), edge_index, k), edge_index, k)["normalised_cut"]
        assert gnn <= METIS_FACTOR * metis, (family, k, gnn, metis)


def test_dispatcher_method_gnn_is_this_partitioner():
    from mlpot.partition.partitioners import partition_atoms

    atoms, edge_index = held_out("crystal", 200)
    np.testing.assert_array_equal(
        partition_atoms(len(atoms), edge_index, 5, "gnn", atoms.positions), gnn_partition(len(atoms), edge_index, 5)
    )


def test_disconnected_graph_with_an_isolated_atom():
    # Two 4-cycles and a lone node: the coarsening stops at three nodes, parts stay non-empty,
    # and the bisection keeps each cycle whole.
    ring = np.array([[0, 1], [1, 2], [2, 3], [3, 0]])
    pairs = np.concatenate([ring, ring + 4])
    edge_index = np.concatenate([pairs, pairs[:, ::-1]]).T.astype(np.int64)
    labels = gnn_partition(9, edge_index, 2)
    assert sorted(np.bincount(labels)) == [4, 5]
    assert partition_quality(labels, edge_index, 2)["edge_cut"] == 0
    assert np.bincount(gnn_partition(9, edge_index, 9)).tolist() == [1] * 9


def test_refusals():
    edge_index = np.array([[0, 1], [1, 0]], dtype=np.int64)
    with pytest.raises(MLPotError, match="more parts than atoms"):
        gnn_partition(2, edge_index, 3)
    with pytest.raises(ValueError, match="shape"):
        gnn_partition(2, edge_index[0], 2)
    with pytest.raises(ValueError, match="outside"):
        gnn_partition(1, edge_index, 1)
    np.testing.assert_array_equal(gnn_partition(2, edge_index, 1), [0, 0])


def test_weight_file_is_small_and_loads_without_executing_code():
    assert WEIGHTS_PATH.stat().st_size < 1_000_000
    # The pickle may only name torch's tensor rebuilders and OrderedDict, nothing that runs code.
    with zipfile.ZipFile(WEIGHTS_PATH) as archive:
        pickle_bytes = archive.read(next(name for name in archive.namelist() if name.endswith("data.pkl")))
    operations = list(pickletools.genops(pickle_bytes))
    assert "STACK_GLOBAL" not in {opcode.name for opcode, _, _ in operations}
    names = {argument for opcode, argument, _ in operations if opcode.name == "GLOBAL"}
    assert names <= {"torch._utils _rebuild_tensor_v2", "torch FloatStorage", "collections OrderedDict"}, names
    stored = torch.load(WEIGHTS_PATH, map_location="cpu", weights_only=True)
    assert set(stored) == {"config", "embedding", "partitioning", "training"}
    assert all(isinstance(value, torch.Tensor) for value in stored["embedding"].values())
