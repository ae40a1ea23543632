"""GNN partitioner (arXiv 2110.08614) against METIS and a spatial grid on held-out atom graphs.

    OMP_NUM_THREADS=1 python benchmarks/partition/gnn_run.py --output benchmarks/partition/gnn_results.json
    python benchmarks/partition/gnn_run.py --table benchmarks/partition/gnn_results.json   # gnn.md's tables

One structure of each training family (mlpot.partition.train_gnn.FAMILIES), built with a seed the
training never used and larger than any training graph; k = 2 ... 64. Per method and k: the
normalised cut and worst load of mlpot.partition.partitioners.partition_quality, the number of
empty parts, and the wall time of one partition (median of --repeats, one thread).
"""

import argparse
import json
import time

import numpy as np
import torch

from mlpot.partition.gnn import gnn_partition
from mlpot.partition.partitioners import grid_labels, metis_labels, partition_quality
from mlpot.partition.train_gnn import FAMILIES, atom_edge_index

PARTS = (2, 4, 8, 16, 32, 64)


def table(path: str) -> None:
    """Markdown: per family and k, normalised cut (GNN/METIS ratio), worst load, ms per partition."""
    with open(path) as handle:
        rows = json.load(handle)
    cells = {(r["family"], r["k"], r["method"]): r for r in rows}
    print("| family (atoms) | k | ncut gnn | ncut metis | ncut grid | gnn / metis | load gnn / metis / grid | "
          "empty grid parts | ms gnn / metis / grid |")
    print("|---|---|---|---|---|---|---|---|---|")
    for family, k in dict.fromkeys((r["family"], r["k"]) for r in rows):
        gnn, metis, grid = (cells[family, k, m] for m in ("gnn", "metis", "grid"))
        print(f"| {family} ({gnn['atoms']}) | {k} | {gnn['normalised_cut']:.3f} | {metis['normalised_cut']:.3f} | "
              f"{grid['normalised_cut']:.3f} | {gnn['normalised_cut'] / metis['normalised_cut']:.3f} | "
              f"{gnn['worst_load']:.3f} / {metis['worst_load']:.3f} / {grid['worst_load']:.3f} | {grid['empty_parts']} | "
              f"{1e3 * gnn['seconds']:.0f} / {1e3 * metis['seconds']:.1f} / {1e3 * grid['seconds']:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--output")
    parser.add_argument("--table", help="print the tables of a results file and exit")
    parser.add_argument("--atoms", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=777)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.table:
        table(args.table)
        return
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    rows = []
    for family, build in FAMILIES.items():
        atoms = build(rng, args.atoms)
        edge_index = atom_edge_index(atoms)
        methods = {
            "gnn": lambda k: gnn_partition(len(atoms), edge_index, k, atoms.positions),
            "metis": lambda k: metis_labels(len(atoms), edge_index, k),
            "grid": lambda k: grid_labels(atoms.positions, atoms.cell.array, atoms.pbc, k),
        }
        for k in PARTS:
            for method, partition in methods.items():
                seconds = []
                for _ in range(args.repeats):
                    started = time.perf_counter()
                    labels = partition(k)
                    seconds.append(time.perf_counter() - started)
                quality = partition_quality(labels, edge_index, k)
                row = {"family": family, "atoms": len(atoms), "k": k, "method": method,
                       "normalised_cut": quality["normalised_cut"], "worst_load": quality["worst_load"],
                       "edge_cut": quality["edge_cut"], "empty_parts": int(np.sum(np.bincount(labels, minlength=k) == 0)),
                       "seconds": float(np.median(seconds))}
                rows.append(row)
                print(json.dumps(row), flush=True)
    with open(args.output, "w") as handle:
        json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
