"""Partition quality: worst part's load, redundancy (atoms evaluated / atoms owned) with hop
halos and with Euclidean num_interactions x r_max halos, edge cut, normalised cut and the
partitioner's time, for grid, METIS (and the GNN partitioner where installed), k = 2..64.

The graph is that of a 2-interaction model with r_max = 5 Å (the ethanol-rmd17 members').
Writes quality.json beside this file; README.md holds the table.

    OMP_NUM_THREADS=1 python benchmarks/partition/quality.py [--systems "water 10^4" ...] [--output FILE]
"""

import argparse
import importlib.util
import json
import time
from pathlib import Path

import numpy as np

from mlpot.data.neighbours import neighbour_pairs
from mlpot.partition import part_halos, partition_quality
from mlpot.partition.halo import euclidean_halo_sizes
from mlpot.partition.partitioners import fill_empty_parts, grid_labels, metis_labels
from systems import SYSTEMS

HERE = Path(__file__).resolve().parent
R_MAX, NUM_INTERACTIONS = 5.0, 2
EUCLIDEAN_UP_TO = 20_000  # atoms; the 10 Å pair list of 10^5 atoms would hold 4e7 pairs
GNN_UP_TO = 20_000  # atoms; H12's own comparison (gnn.md) covers the GNN partitioner further


def labels_of(method, atoms, edge_index, k):
    if method == "grid":
        return grid_labels(atoms.positions, atoms.cell.array, atoms.pbc, k)
    if method == "metis":
        return fill_empty_parts(metis_labels(len(atoms), edge_index, k), k)
    from mlpot.partition.gnn import gnn_partition

    return gnn_partition(len(atoms), edge_index, k, atoms.positions)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS))
    parser.add_argument("--parts", nargs="+", type=int, default=[2, 4, 8, 16, 32, 64])
    parser.add_argument("--methods", nargs="+", default=["grid", "metis"] + (["gnn"] if importlib.util.find_spec("mlpot.partition.gnn") else []))
    parser.add_argument("--gnn-up-to", type=int, default=GNN_UP_TO, help="largest system (atoms) the GNN partitions")
    parser.add_argument("--output", default=str(HERE / "quality.json"))
    args = parser.parse_args()
    methods = args.methods
    rows = []
    for name in args.systems:
        atoms = SYSTEMS[name]()
        sender, receiver, _ = neighbour_pairs(atoms.positions, atoms.cell.array, atoms.pbc, R_MAX)
        edge_index = np.stack([sender, receiver])
        for k in args.parts:
            for method in methods:
                if method == "gnn" and len(atoms) > args.gnn_up_to:
                    continue
                start = time.perf_counter()
                labels = labels_of(method, atoms, edge_index, k)
                seconds = time.perf_counter() - start
                halos = part_halos(edge_index, labels, k, NUM_INTERACTIONS)
                row = {"system": name, "atoms": len(atoms), "k": k, "method": method, "seconds": round(seconds, 3),
                       "empty_parts": int(np.sum(np.bincount(labels, minlength=k) == 0)),
                       **partition_quality(labels, edge_index, k, np.array([len(h.nodes) for h in halos]))}
                if len(atoms) <= EUCLIDEAN_UP_TO:
                    sizes = euclidean_halo_sizes(atoms.positions, atoms.cell.array, atoms.pbc, labels, k, NUM_INTERACTIONS * R_MAX)
                    row["euclidean_redundancy"] = float(sizes.sum() / len(atoms))
                rows.append(row)
                print(json.dumps(row), flush=True)
    Path(args.output).write_text(json.dumps(rows, indent=0) + "\n")


if __name__ == "__main__":
    main()
