"""Redundancy of the halo that per-layer ghost-feature exchange would need (one hop, one r_max)
beside the num_interactions-hop halo mlpot evaluates now (2 hops), METIS parts, r_max = 5 Å.
Per-layer exchange is not built; this measures what it would save. Writes ghost_exchange.json.

    OMP_NUM_THREADS=1 python benchmarks/partition/ghost_exchange.py
"""

import json
from pathlib import Path

import numpy as np

from mlpot.data.neighbours import neighbour_pairs
from mlpot.partition import part_halos, partition_atoms
from systems import SYSTEMS

HERE = Path(__file__).resolve().parent


def main() -> None:
    rows = []
    for name in ("water 10^4", "water droplet"):
        atoms = SYSTEMS[name]()
        sender, receiver, _ = neighbour_pairs(atoms.positions, atoms.cell.array, atoms.pbc, 5.0)
        edge_index = np.stack([sender, receiver])
        for k in (8, 64):
            labels = partition_atoms(len(atoms), edge_index, k)
            row = {"system": name, "atoms": len(atoms), "k": k}
            for hops in (1, 2):
                row[f"redundancy_{hops}_hop"] = float(sum(len(h.nodes) for h in part_halos(edge_index, labels, k, hops)) / len(atoms))
            rows.append(row)
            print(json.dumps(row), flush=True)
    (HERE / "ghost_exchange.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
