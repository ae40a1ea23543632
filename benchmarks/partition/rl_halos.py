"""What RL refinement does to the quantities partitioned evaluation pays for: redundancy (atoms
evaluated / owned, 2-hop halos at r_max 5 Å) and the largest evaluated part, METIS against
METIS+RL on the water droplet (systems.py), k = 8 and 16. Prints JSON lines (rl.md quotes them).

    OMP_NUM_THREADS=1 python benchmarks/partition/rl_halos.py
"""

import json

import numpy as np
import torch

from mlpot.data.neighbours import neighbour_pairs
from mlpot.partition import part_halos, partition_quality
from mlpot.partition.partitioners import fill_empty_parts, metis_labels
from mlpot.partition.rl_refine import rl_refine
from systems import SYSTEMS


def main() -> None:
    torch.set_num_threads(1)
    atoms = SYSTEMS["water droplet"]()
    sender, receiver, _ = neighbour_pairs(atoms.positions, atoms.cell.array, atoms.pbc, 5.0)
    edge_index, n = np.stack([sender, receiver]), len(atoms)
    for k in (8, 16):
        labels = fill_empty_parts(metis_labels(n, edge_index, k), k)
        for method, result in (("metis", labels), ("metis+rl", rl_refine(n, edge_index, labels, k))):
            sizes = np.array([len(halo.nodes) for halo in part_halos(edge_index, result, k, 2)])
            print(json.dumps({"k": k, "method": method, **partition_quality(result, edge_index, k, sizes)}), flush=True)


if __name__ == "__main__":
    main()
