"""Train the GNN partitioner of :mod:`mlpot.partition.gnn` on atom graphs and write its weights.

    python -m mlpot.partition.train_gnn [--output mlpot/partition/gnn_partitioner.pt] [--seed 20261204]

Graphs: neighbour graphs (cutoff 5 Å, :func:`mlpot.data.neighbours.neighbour_pairs`) of structures
built with ase in six families: water boxes (randomly packed, rotated molecules at 1 g/cm^3),
a simple liquid (random sequential addition at liquid-argon density), fcc and bcc solids (rattled
supercells of several shapes), slabs with vacuum (fcc(111), fcc(100), bcc(110)), water droplets
and metal nanoparticles (icosahedra, decahedra, octahedra). Recursive bisection shows the network
halves, quarters, ... of such graphs, so a third of the training graphs are spatial pieces (a
half-space or a box) of a generated structure.

Training follows the paper: first the embedding module alone on the spectral loss, then, with
it frozen, the partitioning module on the expected normalised cut; Adam, gradients summed over
``--accumulate`` graphs per step. One thread. The script prints its seed, the time it took and,
for held-out graphs (another seed), the normalised cut of its bisection beside METIS's.
"""

import argparse
import time
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np
import scipy.sparse as sp
import torch
from ase import Atoms
from ase.build import bcc110, bulk, fcc100, fcc111, molecule
from ase.cluster import Decahedron, Icosahedron, Octahedron

from mlpot.data.neighbours import neighbour_pairs
from mlpot.partition.gnn import (
    WEIGHTS_PATH,
    EmbeddingModule,
    Hierarchy,
    PartitioningModule,
    build_hierarchy,
    fiedler_input,
)
from mlpot.partition.partitioners import undirected_adjacency

CUTOFF = 5.0  # Å
CONFIG = {"embedding": {"width": 32, "smoothing": 2, "head": [16, 32, 32]},
          "partitioning": {"width": 16, "smoothing": 2, "head": [16, 16, 16]}}


def water_box(rng: np.random.Generator, num_atoms: int) -> Atoms:
    """Periodic cube of rotated water molecules on a jittered lattice at 1 g/cm^3 (29.9 Å^3 each)."""
    count = max(num_atoms // 3, 2)
    length = (count * 29.9) ** (1 / 3)
    per_side = int(np.ceil(count ** (1 / 3)))
    sites = np.stack(np.meshgrid(*[np.arange(per_side)] * 3, indexing="ij"), -1).reshape(-1, 3)
    sites = sites[rng.choice(len(sites), count, replace=False)] * (length / per_side)
    water = molecule("H2O")
    positions, symbols = [], []
    for site in sites:
        rotated = water.copy()
        rotated.rotate(rng.uniform(0, 360), rng.normal(size=3))
        positions.append(rotated.positions - rotated.positions[0] + site + rng.normal(scale=0.2, size=3))
        symbols += rotated.get_chemical_symbols()
    return Atoms(symbols, positions=np.concatenate(positions), cell=[length] * 3, pbc=True)


def simple_liquid(rng: np.random.Generator, num_atoms: int) -> Atoms:
    """Periodic random sequential addition of spheres 3.0 Å apart at 0.021 atoms/Å^3 (liquid Ar)."""
    length = (num_atoms / 0.021) ** (1 / 3)
    placed = np.empty((0, 3))
    while len(placed) < num_atoms:
        trial = rng.uniform(0, length, size=3)
        delta = placed - trial
        delta -= length * np.round(delta / length)
        if not len(placed) or np.min(np.einsum("ij,ij->i", delta, delta)) > 3.0**2:
            placed = np.vstack([placed, trial])
    return Atoms(f"Ar{num_atoms}", positions=placed, cell=[length] * 3, pbc=True)


def crystal(rng: np.random.Generator, num_atoms: int) -> Atoms:
    """Rattled fcc Cu or bcc Fe supercell of a random shape with about ``num_atoms`` atoms."""
    unit = bulk("Cu", "fcc", a=3.61, cubic=True) if rng.random() < 0.5 else bulk("Fe", "bcc", a=2.87, cubic=True)
    aspect = rng.uniform(0.6, 1.6, size=3)
    repeats = np.maximum(1, np.round(aspect * (num_atoms / len(unit) / aspect.prod()) ** (1 / 3))).astype(int)
    atoms = unit.repeat(tuple(repeats))
    atoms.rattle(0.05, seed=int(rng.integers(2**31)))
    return atoms


def slab(rng: np.random.Generator, num_atoms: int) -> Atoms:
    """fcc(111), fcc(100) Pt or bcc(110) Fe slab, 3-8 layers, 8 Å vacuum, periodic in plane."""
    layers = int(rng.integers(3, 9))
    side = max(2, int(round(np.sqrt(num_atoms / layers) * rng.uniform(0.8, 1.2))))
    other = max(2, int(round(num_atoms / layers / side)))
    build = [lambda: fcc111("Pt", (side, other, layers), vacuum=8.0),
             lambda: fcc100("Pt", (side, other, layers), vacuum=8.0),
             lambda: bcc110("Fe", (side, other, layers), vacuum=8.0)][int(rng.integers(3))]
    atoms = build()
    atoms.rattle(0.05, seed=int(rng.integers(2**31)))
    return atoms


def droplet(rng: np.random.Generator, num_atoms: int) -> Atoms:
    """Non-periodic sphere of whole water molecules cut from a water box."""
    box = water_box(rng, int(num_atoms * 6 / np.pi) + 30)
    centre = box.cell.lengths() / 2
    oxygen = box.positions[0::3]
    radius = (num_atoms / 3 * 29.9 * 3 / (4 * np.pi)) ** (1 / 3)
    inside = np.linalg.norm(oxygen - centre, axis=1) < radius
    keep = np.repeat(inside, 3)
    return Atoms(np.array(box.get_chemical_symbols())[keep], positions=box.positions[keep], pbc=False)


def nanoparticle(rng: np.random.Generator, num_atoms: int) -> Atoms:
    """Cu icosahedron, decahedron or Au octahedron of about ``num_atoms`` atoms, rattled."""
    kind = int(rng.integers(3))
    if kind == 0:  # 10 s^3 / 3 atoms for s shells
        atoms = Icosahedron("Cu", noshells=max(2, int(round((3 * num_atoms / 10) ** (1 / 3)))))
    elif kind == 1:
        p = max(2, int(round((num_atoms / 2.5) ** (1 / 3))))
        atoms = Decahedron("Cu", p=p, q=int(rng.integers(1, 3)), r=0)
    else:  # about 2 L^3 / 3 atoms for edge length L
        atoms = Octahedron("Au", length=max(3, int(round((1.5 * num_atoms) ** (1 / 3)))))
    atoms.rattle(0.05, seed=int(rng.integers(2**31)))
    return atoms


FAMILIES: Dict[str, Callable[[np.random.Generator, int], Atoms]] = {
    "water": water_box, "liquid": simple_liquid, "crystal": crystal,
    "slab": slab, "droplet": droplet, "nanoparticle": nanoparticle,
}


def atom_edge_index(atoms: Atoms, cutoff: float = CUTOFF) -> np.ndarray:
    """[2, E] (sender, receiver) of every pair within ``cutoff``, as mlpot's graphs hold them."""
    sender, receiver, _ = neighbour_pairs(atoms.positions, atoms.cell.array, atoms.pbc, cutoff)
    return np.stack([sender, receiver]).astype(np.int64)


def adjacency_of(num_nodes: int, edge_index: np.ndarray) -> sp.csr_matrix:
    """Symmetric 0/1 adjacency without self-loops or repeated pairs."""
    xadj, adjncy = undirected_adjacency(num_nodes, edge_index)
    return sp.csr_matrix((np.ones(len(adjncy)), adjncy, xadj), shape=(num_nodes, num_nodes))


def spatial_piece(atoms: Atoms, adjacency: sp.csr_matrix, rng: np.random.Generator) -> sp.csr_matrix:
    """Subgraph of the atoms in a random half-space or box (fractional coordinates in periodic
    directions), like the pieces recursive bisection hands on."""
    fractions = atoms.get_scaled_positions(wrap=True) if atoms.pbc.all() else \
        (atoms.positions - atoms.positions.min(0)) / np.maximum(np.ptp(atoms.positions, 0), 1e-9)
    low = rng.uniform(0, 0.5, size=3) * (rng.random(3) < 0.5)
    keep = np.all((fractions >= low) & (fractions < low + 0.5 + 0.5 * (rng.random(3) < 0.5)), axis=1)
    chosen = np.flatnonzero(keep)
    return adjacency[chosen][:, chosen].tocsr()


def make_graphs(seed: int, count: int, min_atoms: int, max_atoms: int) -> List[sp.csr_matrix]:
    """``count`` adjacencies cycling through the families; every third is a spatial piece."""
    rng = np.random.default_rng(seed)
    names = list(FAMILIES)
    graphs = []
    while len(graphs) < count:
        atoms = FAMILIES[names[len(graphs) % len(names)]](rng, int(rng.integers(min_atoms, max_atoms + 1)))
        adjacency = adjacency_of(len(atoms), atom_edge_index(atoms))
        if len(graphs) % 3 == 2:
            adjacency = spatial_piece(atoms, adjacency, rng)
        if adjacency.shape[0] >= 16:
            graphs.append(adjacency)
    return graphs


def spectral_loss(embedding: torch.Tensor, hierarchy: Hierarchy) -> torch.Tensor:
    """Sum over the columns x of mean((Lx - r x)^2) + r, r = x.Lx / x.x, L = D^-1 L = I - mean."""
    laplacian_x = embedding - torch.sparse.mm(hierarchy.levels[0].mean, embedding)  # [n, 2]
    rayleigh = (embedding * laplacian_x).sum(0) / (embedding * embedding).sum(0)  # [2]
    return (((laplacian_x - rayleigh * embedding) ** 2).mean(0) + rayleigh).sum()


def expected_normalised_cut(probability: torch.Tensor, edges: torch.Tensor, degree: torch.Tensor) -> torch.Tensor:
    """E[cut] / E[volume] summed over both sides; ``edges`` [2, M] both directions, ``degree`` [n]."""
    cut = (probability[edges[0], 0] * probability[edges[1], 1]).sum()
    volume = probability.T @ degree  # [2]
    return (cut / volume).sum()


def normalised_cut(adjacency: sp.csr_matrix, first: np.ndarray) -> float:
    """cut/vol(side 0) + cut/vol(side 1) of a bisection (boolean [n])."""
    coo = adjacency.tocoo()
    cut = float(np.sum(first[coo.row] != first[coo.col])) / 2
    degree = np.asarray(adjacency.sum(1)).ravel()
    return cut / max(degree[first].sum(), 1.0) + cut / max(degree[~first].sum(), 1.0)


def train(modules_parameters, losses: Callable[[int], torch.Tensor], count: int, steps: int, accumulate: int,
          learning_rate: float, label: str) -> None:
    optimiser = torch.optim.Adam(modules_parameters, lr=learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    order = np.random.default_rng(0).permutation(count)
    position, started, running = 0, time.time(), []
    for step in range(steps):
        optimiser.zero_grad()
        for _ in range(accumulate):
            loss = losses(int(order[position % count])) / accumulate
            loss.backward()
            running.append(loss.item() * accumulate)
            position += 1
        optimiser.step()
        schedule.step()
        if (step + 1) % max(steps // 10, 1) == 0:
            print(f"{label} step {step + 1}/{steps}: loss {np.mean(running):.4f} ({time.time() - started:.0f} s)", flush=True)
            running = []


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=WEIGHTS_PATH)
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--graphs", type=int, default=240)
    parser.add_argument("--min-atoms", type=int, default=100)
    parser.add_argument("--max-atoms", type=int, default=1200)
    parser.add_argument("--embedding-steps", type=int, default=800)
    parser.add_argument("--partitioning-steps", type=int, default=800)
    parser.add_argument("--accumulate", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    started = time.time()
    graphs = make_graphs(args.seed, args.graphs, args.min_atoms, args.max_atoms)
    rng = np.random.default_rng(args.seed + 1)
    hierarchies = [build_hierarchy(adjacency, rng) for adjacency in graphs]
    sizes = [g.shape[0] for g in graphs]
    print(f"seed {args.seed}: {len(graphs)} graphs of {min(sizes)}-{max(sizes)} nodes, "
          f"hierarchies built in {time.time() - started:.0f} s", flush=True)

    embedding = EmbeddingModule(**CONFIG["embedding"])
    partitioning = PartitioningModule(**CONFIG["partitioning"])
    train(embedding.parameters(), lambda i: spectral_loss(embedding(hierarchies[i]), hierarchies[i]),
          len(graphs), args.embedding_steps, args.accumulate, args.learning_rate, "embedding")
    embedding.eval()
    with torch.no_grad():
        fiedlers = [fiedler_input(embedding(h)) for h in hierarchies]
    edges = [torch.from_numpy(np.stack(g.nonzero()).astype(np.int64)) for g in graphs]
    degrees = [torch.from_numpy(np.asarray(g.sum(1), dtype=np.float32).ravel()) for g in graphs]
    train(partitioning.parameters(),
          lambda i: expected_normalised_cut(partitioning(hierarchies[i], fiedlers[i]), edges[i], degrees[i]),
          len(graphs), args.partitioning_steps, args.accumulate, args.learning_rate, "partitioning")
    partitioning.eval()
    elapsed = time.time() - started

    args.output.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": CONFIG, "embedding": embedding.state_dict(), "partitioning": partitioning.state_dict(),
                "training": {"seed": args.seed, "graphs": len(graphs), "seconds": round(elapsed),
                             "embedding_steps": args.embedding_steps, "partitioning_steps": args.partitioning_steps}},
               args.output)
    print(f"trained in {elapsed:.0f} s (one thread); weights written to {args.output} "
          f"({args.output.stat().st_size} bytes)", flush=True)
    report_held_out(embedding, partitioning, args.seed + 1000)


def report_held_out(embedding: EmbeddingModule, partitioning: PartitioningModule, seed: int) -> None:
    """Normalised cut of balanced bisections of held-out graphs, the network's and METIS's."""
    import pymetis

    rng = np.random.default_rng(seed)
    for adjacency in make_graphs(seed, 12, 300, 1500):
        hierarchy = build_hierarchy(adjacency, rng)
        with torch.no_grad():
            probability = partitioning(hierarchy, fiedler_input(embedding(hierarchy)))[:, 0].numpy()
        first = np.zeros(adjacency.shape[0], dtype=bool)
        first[np.argsort(-probability)[: adjacency.shape[0] // 2]] = True
        _, metis = pymetis.part_graph(2, xadj=adjacency.indptr, adjncy=adjacency.indices)
        print(f"held-out {adjacency.shape[0]:5d} nodes: normalised cut gnn {normalised_cut(adjacency, first):.4f} "
              f"metis {normalised_cut(adjacency, np.asarray(metis) == 0):.4f}", flush=True)


if __name__ == "__main__":
    main()
