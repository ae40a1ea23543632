"""Graph-building time for periodic boxes of 10^3, 10^4 and 10^5 atoms at r_max = 5 Å,
mlpot.atoms_to_graph next to ASE's own neighbour list, in one process, same boxes.

    python benchmarks/graph_building/run.py [--repeats 5] [--output results.json]
"""

import argparse
import json
import platform
import time

import ase
import matscipy
import numpy as np
import torch
from ase.build import bulk
from ase.neighborlist import neighbor_list

from mlpot import atoms_to_graph


def copper_box(target_atoms: int, seed: int = 0) -> ase.Atoms:
    """Rattled fcc copper, cubic supercell of about ``target_atoms`` atoms."""
    repeat = max(1, round((target_atoms / 4) ** (1 / 3)))
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * (repeat, repeat, repeat)
    atoms.rattle(0.05, seed=seed)
    return atoms


def median_seconds(function, repeats: int) -> float:
    function()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--r-max", type=float, default=5.0)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    torch.set_num_threads(2)
    rows = []
    for target in (1_000, 10_000, 100_000):
        atoms = copper_box(target)
        graph = atoms_to_graph(atoms, args.r_max)
        mlpot_s = median_seconds(lambda: atoms_to_graph(atoms, args.r_max), args.repeats)
        ase_s = median_seconds(lambda: neighbor_list("ijS", atoms, args.r_max), max(1, args.repeats // 2))
        rows.append(
            {
                "atoms": len(atoms),
                "edges": int(graph.edge_index.shape[1]),
                "mlpot_s": mlpot_s,
                "ase_s": ase_s,
                "ase_over_mlpot": ase_s / mlpot_s,
            }
        )
        print(f"{len(atoms):>7} atoms {rows[-1]['edges']:>9} edges  mlpot {mlpot_s:8.3f} s  ASE {ase_s:8.3f} s  ASE/mlpot {ase_s / mlpot_s:5.1f}")
    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": platform.processor() or platform.machine(),
        "versions": {"ase": ase.__version__, "matscipy": matscipy.__version__, "torch": str(torch.__version__)},
        "r_max": args.r_max,
        "rows": rows,
    }
    if args.output:
        with open(args.output, "w") as stream:
            json.dump(meta, stream, indent=2)


if __name__ == "__main__":
    main()
