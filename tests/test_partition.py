"""Partitioned evaluation (issue 31): partitioners, exact halos, the sequential and
torch.distributed drivers, the calculator/eval/md options and the errors of bad requests."""

import os
import sys

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.cluster import Icosahedron
from ase.io import read

import mlpot
from mlpot import MLPotError
from mlpot.calculators import MLPotCalculator
from mlpot.cli.main import main
from mlpot.data.extxyz import write_extxyz
from mlpot.data.neighbours import neighbour_pairs
from mlpot.models.committee import Committee
from mlpot.models.io import save_model
from mlpot.partition import part_halos, partition_atoms, partition_quality
from mlpot.partition.partitioners import grid_labels

TINY = {"hidden_irreps": "4x0e+4x1o", "max_ell": 1, "correlation": 2, "radial_mlp": [8], "readout_mlp": 4, "num_bessel": 4}
TOLERANCE = 1e-10


def potential(seed=0, num_interactions=2, r_max=4.0):
    """A tiny Cu/Au potential with every parameter perturbed, so that every layer matters."""
    torch.manual_seed(seed)
    model = mlpot.build_model({"elements": ["Cu", "Au"], "r_max": r_max, "num_interactions": num_interactions, **TINY})
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model


def cuau(repeat=(3, 3, 3), seed=1):
    atoms = bulk("Cu", "fcc", a=3.7, cubic=True) * repeat
    atoms.symbols[::3] = "Au"
    atoms.rattle(0.1, seed=seed)
    return atoms


def cluster(shells=3):
    atoms = Icosahedron("Cu", noshells=shells, latticeconstant=3.7)
    atoms.symbols[::4] = "Au"
    atoms.rattle(0.05, seed=2)
    return atoms


def results(atoms, calculator):
    atoms = atoms.copy()
    atoms.calc = calculator
    out = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces(), "energies": atoms.get_potential_energies()}
    if atoms.pbc.all():
        out["stress"] = atoms.get_stress()
    return out


def assert_same(partitioned, reference):
    assert partitioned.keys() == reference.keys()
    for key, value in reference.items():
        scale = max(float(np.max(np.abs(value))), 1e-12)
        assert float(np.max(np.abs(partitioned[key] - value))) <= TOLERANCE * scale, key


# ----------------------------------------------------------------------------- exactness
@pytest.mark.parametrize(
    "structure,k,method",
    [
        (cuau(), 2, "metis"),
        (cuau(), 7, "metis"),
        (cuau(), 8, "grid"),
        (cuau((1, 1, 1)), 4, "metis"),  # a 3.7 Å cell, smaller than r_max: each part's halo wraps onto itself
        (cuau((2, 1, 1)), 3, "grid"),
        (cluster(), 5, "metis"),  # open boundaries
        (cluster(), 8, "grid"),
    ],
    ids=["bulk-metis-2", "bulk-metis-7", "bulk-grid-8", "small-cell-metis-4", "small-cell-grid-3", "cluster-metis-5", "cluster-grid-8"],
)
def test_partitioned_equals_unpartitioned(structure, k, method):
    model = potential()
    assert_same(results(structure, MLPotCalculator(model, partitions=k, partition_method=method)),
                results(structure, MLPotCalculator(model)))


@pytest.mark.parametrize("num_interactions", [1, 3])
def test_halo_depth_follows_the_number_of_interactions(num_interactions):
    model = potential(num_interactions=num_interactions)
    atoms = cuau((2, 2, 2))
    assert_same(results(atoms, MLPotCalculator(model, partitions=6)), results(atoms, MLPotCalculator(model)))


def test_one_hop_too_few_is_not_exact():
    """The halo depth matters: a 2-layer model evaluated with 1-hop halos gives other forces."""
    model = potential()
    atoms = cuau((2, 2, 2))
    exact = results(atoms, MLPotCalculator(model, partitions=4))["forces"]
    model.num_interactions = 1
    assert np.abs(results(atoms, MLPotCalculator(model, partitions=4))["forces"] - exact).max() > 1e-4


def test_committee_mean():
    committee = Committee([potential(seed) for seed in (3, 4)])
    atoms = cuau((2, 2, 2))
    reference = results(atoms, MLPotCalculator(committee))
    partitioned = results(atoms, MLPotCalculator(committee, partitions=3))
    assert_same(partitioned, reference)


def test_repartitions_when_the_neighbour_list_is_rebuilt():
    model = potential()
    atoms = cuau((2, 2, 2))
    calculator = MLPotCalculator(model, partitions=4, skin=0.5)
    atoms.calc = calculator
    atoms.get_forces()
    first = calculator._part_labels.copy()
    for step in range(3):  # small moves: the neighbour list and the parts are kept
        atoms.positions += 0.02
        atoms.get_forces()
    assert calculator.neighbour_list_builds == 1 and np.array_equal(calculator._part_labels, first)
    atoms.positions[::2] += 0.3  # past skin / 2
    assert_same(results(atoms, calculator), results(atoms, MLPotCalculator(model)))
    assert calculator.neighbour_list_builds == 2


# ----------------------------------------------------------------------------- partitioners
def test_halos_cover_the_graph_and_own_each_atom_once():
    atoms = cuau()
    sender, receiver, _ = neighbour_pairs(atoms.positions, atoms.cell.array, atoms.pbc, 4.0)
    edge_index = np.stack([sender, receiver])
    labels = partition_atoms(len(atoms), edge_index, 5)
    halos = part_halos(edge_index, labels, 5, 2)
    owned = np.concatenate([halo.nodes[: halo.num_owned] for halo in halos])
    assert np.array_equal(np.sort(owned), np.arange(len(atoms)))
    quality = partition_quality(labels, edge_index, 5, np.array([len(h.nodes) for h in halos]))
    assert quality["redundancy"] > 1.0 and quality["worst_load"] >= 1.0 and quality["edge_cut"] > 0


def test_metis_parts_are_never_empty():
    """METIS leaves parts empty when k nears the number of atoms; each then gets one atom."""
    atoms = cuau((2, 2, 2))
    sender, receiver, _ = neighbour_pairs(atoms.positions, atoms.cell.array, atoms.pbc, 4.0)
    labels = partition_atoms(len(atoms), np.stack([sender, receiver]), 30)
    assert np.bincount(labels, minlength=30).min() >= 1


def test_metis_balances_a_droplet_better_than_a_grid():
    atoms = Icosahedron("Cu", noshells=6)  # 309 atoms; its corner boxes hold little
    sender, receiver, _ = neighbour_pairs(atoms.positions, np.zeros((3, 3)), np.zeros(3, bool), 3.0)
    edge_index = np.stack([sender, receiver])
    grid = partition_quality(grid_labels(atoms.positions, np.zeros((3, 3)), np.zeros(3, bool), 8), edge_index, 8)
    metis = partition_quality(partition_atoms(len(atoms), edge_index, 8), edge_index, 8)
    assert metis["worst_load"] < 1.1 < grid["worst_load"]


# ----------------------------------------------------------------------------- bad requests
@pytest.mark.parametrize(
    "k,method,message",
    [
        (0, "metis", r"number of parts must be an integer of at least 1, got 0"),
        (200, "metis", r"cannot split 108 atoms into 200 parts: more parts than atoms"),
        (4, "spectral", r"partition method must be one of metis, grid, gnn, got 'spectral'"),
        (64, "grid", r"grid partition into 64 parts leaves \d+ of them empty"),
    ],
)
def test_bad_partition_requests(k, method, message):
    atoms = cuau()
    atoms.positions[:, 2] *= 0.5  # atoms fill half the cell: a fine grid has empty boxes
    sender, receiver, _ = neighbour_pairs(atoms.positions, atoms.cell.array, atoms.pbc, 4.0)
    with pytest.raises(MLPotError, match=message):
        partition_atoms(len(atoms), np.stack([sender, receiver]), k, method, atoms.positions, atoms.cell.array, atoms.pbc)


def test_missing_pymetis_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pymetis", None)
    with pytest.raises(MLPotError, match=r"pymetis is not installed; install the 'partition' extra: pip install 'mlpot\[partition\]'"):
        results(cuau(), MLPotCalculator(potential(), partitions=2))


def test_missing_gnn_partitioner_is_one_line(monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlpot.partition.gnn" else find_spec(name, *a))
    with pytest.raises(MLPotError, match=r"partition method gnn is not available"):
        partition_atoms(4, np.array([[0, 1], [1, 0]]), 2, "gnn")


@pytest.mark.parametrize("partitions,message", [(0, "partitions must be an integer of at least 1, got 0"), (2.5, "got 2.5")])
def test_calculator_refuses_bad_partitions(partitions, message):
    with pytest.raises(MLPotError, match=message):
        MLPotCalculator(potential(), partitions=partitions)


def test_calculator_refuses_more_parts_than_atoms():
    atoms = cuau((1, 1, 1))
    atoms.calc = MLPotCalculator(potential(), partitions=5)
    with pytest.raises(MLPotError, match="cannot split 4 atoms into 5 parts"):
        atoms.get_potential_energy()


# ----------------------------------------------------------------------------- command line
def test_eval_with_partitions_matches(tmp_path, capsys):
    model_path = tmp_path / "cuau.model"
    save_model(potential(), model_path)
    frames = [cuau((2, 2, 2), seed=s) for s in range(2)] + [cluster(2)]
    write_extxyz(tmp_path / "frames.xyz", [(atoms, {}, {}) for atoms in frames])
    for name, extra in (("plain", []), ("parts", ["--partitions", "3"])):
        assert main(["eval", "--model", str(model_path), "--data", str(tmp_path / "frames.xyz"), "--output",
                     str(tmp_path / f"{name}.xyz"), "--plots", str(tmp_path / name), *extra]) == 0
    for plain, parts in zip(read(tmp_path / "plain.xyz", ":"), read(tmp_path / "parts.xyz", ":")):
        assert abs(plain.info["mlpot_energy"] - parts.info["mlpot_energy"]) <= TOLERANCE * abs(plain.info["mlpot_energy"])
        assert np.abs(plain.arrays["mlpot_forces"] - parts.arrays["mlpot_forces"]).max() <= TOLERANCE * np.abs(plain.arrays["mlpot_forces"]).max()
    assert main(["eval", "--model", str(model_path), "--data", str(tmp_path / "frames.xyz"), "--plots", str(tmp_path / "p"),
                 "--partitions", "20"]) == 2
    assert "frames.xyz: frame 2 has 13 atoms, fewer than the 20 parts asked for" in capsys.readouterr().err


def test_md_with_partitions(tmp_path, capsys):
    model_path = tmp_path / "cuau.model"
    save_model(potential(), model_path)
    write_extxyz(tmp_path / "start.xyz", [(cuau((2, 2, 2)), {}, {})])
    common = ["md", "--model", str(model_path), "--structure", str(tmp_path / "start.xyz"), "--steps", "4", "--interval", "2"]
    assert main([*common, "--partitions", "3", "--output", str(tmp_path / "parts.xyz")]) == 0
    assert main([*common, "--output", str(tmp_path / "plain.xyz")]) == 0
    for plain, parts in zip(read(tmp_path / "plain.xyz", ":"), read(tmp_path / "parts.xyz", ":")):
        assert np.abs(plain.positions - parts.positions).max() < 1e-9
    assert main([*common, "--partitions", "0"]) == 2
    assert "--partitions must be at least 1, got 0" in capsys.readouterr().err


# ----------------------------------------------------------------------------- torch.distributed
def _rank(rank, world, port, model_path, structure, output):
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                       "MLPOT_DISTRIBUTED_DEVICE": "cpu", "OMP_NUM_THREADS": "1"})
    import torch.distributed as dist

    from mlpot.data.graph import atoms_to_graph
    from mlpot.models.io import load_model
    from mlpot.partition import evaluate_partitioned
    from mlpot.partition.distributed import main as distributed_main

    dist.init_process_group("gloo")
    assert distributed_main(["--model", model_path, "--structure", structure, "--partitions", "4", "--output", output]) == 0
    # Ranks handed different labels agree on the first rank's: each atom is owned once.
    model = load_model(model_path).double()
    atoms = read(structure)
    graph = atoms_to_graph(atoms, model.r_max, dtype=torch.float64)
    labels = np.arange(len(atoms)) % 2 if rank == 0 else (np.arange(len(atoms)) >= len(atoms) // 2).astype(np.int64)
    out = evaluate_partitioned(model, graph.positions, graph.atomic_numbers, graph.edge_index, graph.shifts, graph.cell[0], labels, 2, False)
    reference = results(atoms, MLPotCalculator(model))
    assert abs(float(out["energy"]) - reference["energy"]) <= TOLERANCE * abs(reference["energy"])
    dist.destroy_process_group()


def test_two_gloo_ranks_equal_one_process(tmp_path):
    import socket

    import torch.multiprocessing as mp

    model = potential()
    model_path = str(tmp_path / "cuau.model")
    save_model(model, model_path)
    atoms = cuau((2, 2, 2))
    write_extxyz(tmp_path / "start.xyz", [(atoms, {}, {})])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mp.spawn(_rank, args=(2, port, model_path, str(tmp_path / "start.xyz"), str(tmp_path / "out.xyz")), nprocs=2)
    written = read(tmp_path / "out.xyz")
    reference = results(atoms, MLPotCalculator(model))
    assert abs(written.info["mlpot_energy"] - reference["energy"]) <= TOLERANCE * abs(reference["energy"])
    assert np.abs(written.arrays["mlpot_forces"] - reference["forces"]).max() <= TOLERANCE * np.abs(reference["forces"]).max()


def test_partitioned_forces_inside_no_grad():
    from mlpot.data.graph import atoms_to_graph
    from mlpot.partition import evaluate_partitioned

    model = potential()
    atoms = cuau((2, 2, 2))
    graph = atoms_to_graph(atoms, model.r_max, dtype=torch.float64)
    labels = partition_atoms(len(atoms), graph.edge_index.numpy(), 3)
    with torch.no_grad():
        out = evaluate_partitioned(model, graph.positions, graph.atomic_numbers, graph.edge_index, graph.shifts, graph.cell[0], labels, 3, True)
    reference = results(atoms, MLPotCalculator(model))
    assert np.abs(out["forces"].numpy() - reference["forces"]).max() <= TOLERANCE * np.abs(reference["forces"]).max()
