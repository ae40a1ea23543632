"""RL refinement (arXiv 2104.03546, mlpot.partition.rl_refine) after the GNN partitioner and after
METIS, on the benchmark systems (systems.py, 10^4 atoms and below), k = 2..64.

    OMP_NUM_THREADS=1 python benchmarks/partition/rl_run.py --output benchmarks/partition/rl_results.json
    OMP_NUM_THREADS=1 python benchmarks/partition/rl_run.py --control --output benchmarks/partition/rl_control.json
    python benchmarks/partition/rl_run.py --table benchmarks/partition/rl_results.json benchmarks/partition/rl_control.json

Per system and k: normalised cut, worst load and edge cut of GNN, GNN+RL, METIS and METIS+RL;
wall time of the partitioner and, separately, of the refinement (one thread, one call each).
``--control``: METIS and METIS+greedy instead, the same multilevel pair refinement with the
learned policy replaced by a fixed rule (move the movable node with the largest share of its
edge weight across minus within): what the learning adds over a plain greedy refinement.
"""

import argparse
import json
import time

import numpy as np
import torch

from mlpot.data.neighbours import neighbour_pairs
from mlpot.partition.gnn import gnn_partition
from mlpot.partition.partitioners import fill_empty_parts, metis_labels, partition_quality
from mlpot.partition.rl_refine import rl_refine
from systems import SYSTEMS

R_MAX = 5.0


class GreedyPolicy(torch.nn.Module):
    """The control: logit = (weight across - weight within) / degree, from the side one-hot
    features [n, 3] and the row-normalised adjacency; the value is unused at inference."""

    def forward(self, features: torch.Tensor, mean: torch.Tensor):
        share = torch.sparse.mm(mean, features[:, :2])  # [n, 2]: share of each node's edge weight on side 0, 1
        across = (share * features[:, [1, 0]]).sum(1)  # [n]
        return across - (1 - across), torch.zeros(())
DEFAULT_SYSTEMS = ["water 10^4", "water slab + 20 Å vacuum", "water droplet", "Cu nanoparticle"]


def table(paths) -> None:
    """Markdown: per system and k, normalised cut and worst load of every method in ``paths``
    (results files, merged; a cell some file lacks is left blank)."""
    rows = [row for path in paths for row in json.load(open(path))]
    cells = {(r["system"], r["k"], r["method"]): r for r in rows}
    methods = [m for m in ("gnn", "gnn+rl", "metis", "metis+rl", "metis+greedy") if any(r["method"] == m for r in rows)]
    names = {"gnn": "GNN", "gnn+rl": "GNN+RL", "metis": "METIS", "metis+rl": "METIS+RL", "metis+greedy": "METIS+greedy"}
    print("| system (atoms) | k | " + " | ".join(f"ncut {names[m]}" for m in methods) + " | "
          + " | ".join(f"load {names[m]}" for m in methods) + " | ncut ratios GNN+RL/GNN, METIS+RL/METIS, greedy/METIS | refine s RL / greedy |")
    print("|---|---:|" + "---:|" * (2 * len(methods)) + "---|---|")
    for system, k in dict.fromkeys((r["system"], r["k"]) for r in rows):
        row = [cells.get((system, k, m)) for m in methods]
        ncut = " | ".join(f"{r['normalised_cut']:.3f}" if r else "" for r in row)
        load = " | ".join(f"{r['worst_load']:.3f}" if r else "" for r in row)
        spent = " / ".join(f"{cells[system, k, m]['seconds']:.0f}" if (system, k, m) in cells else "-" for m in ("metis+rl", "metis+greedy"))
        atoms = next(r for r in row if r)["atoms"]
        ratio = lambda a, b: f"{cells[system, k, a]['normalised_cut'] / cells[system, k, b]['normalised_cut']:.3f}" if (system, k, a) in cells and (system, k, b) in cells else "-"  # noqa: E731
        ratios = ", ".join(ratio(a, b) for a, b in (("gnn+rl", "gnn"), ("metis+rl", "metis"), ("metis+greedy", "metis")))
        print(f"| {system} ({atoms}) | {k} | {ncut} | {load} | {ratios} | {spent} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--output")
    parser.add_argument("--table", nargs="+", help="print the table of results files and exit")
    parser.add_argument("--systems", nargs="+", default=DEFAULT_SYSTEMS)
    parser.add_argument("--parts", nargs="+", type=int, default=[2, 4, 8, 16, 32, 64])
    parser.add_argument("--control", action="store_true", help="METIS and METIS+greedy (no learned policy)")
    args = parser.parse_args()
    if args.table:
        table(args.table)
        return
    torch.set_num_threads(1)
    rows = []
    for name in args.systems:
        atoms = SYSTEMS[name]()
        sender, receiver, _ = neighbour_pairs(atoms.positions, atoms.cell.array, atoms.pbc, R_MAX)
        edge_index = np.stack([sender, receiver])
        n = len(atoms)
        for k in args.parts:
            methods = (("gnn", lambda: gnn_partition(n, edge_index, k)),
                       ("metis", lambda: fill_empty_parts(metis_labels(n, edge_index, k), k)))
            for method, partition in methods[1:] if args.control else methods:
                started = time.perf_counter()
                labels = partition()
                seconds = time.perf_counter() - started
                started = time.perf_counter()
                refined = rl_refine(n, edge_index, labels, k, policy=GreedyPolicy() if args.control else None)
                refine_seconds = time.perf_counter() - started
                suffix = "+greedy" if args.control else "+rl"
                for label, result, spent in ((method, labels, seconds), (method + suffix, refined, refine_seconds)):
                    row = {"system": name, "atoms": n, "k": k, "method": label, "seconds": round(spent, 3),
                           "empty_parts": int(np.sum(np.bincount(result, minlength=k) == 0)), **partition_quality(result, edge_index, k)}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
            if args.output:
                json.dump(rows, open(args.output, "w"), indent=0)


if __name__ == "__main__":
    main()
