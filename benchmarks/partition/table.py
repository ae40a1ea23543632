"""Markdown tables of quality.json (pasted into README.md): per system, for each k, the worst
part's load, the redundancy with hop halos (and Euclidean halos), the normalised cut and the
partitioner's time, grid against METIS.

    python benchmarks/partition/table.py
"""

import json
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    rows = json.loads((HERE / "quality.json").read_text())
    by_system = defaultdict(dict)
    for row in rows:
        by_system[(row["system"], row["atoms"])][(row["k"], row["method"])] = row
    for (system, atoms), cells in by_system.items():
        print(f"\n**{system}** ({atoms} atoms)\n")
        print("| k | worst load grid | worst load METIS | redundancy grid | redundancy METIS | normalised cut grid | normalised cut METIS | METIS time (s) |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for k in sorted({k for k, _ in cells}):
            grid, metis = cells.get((k, "grid")), cells.get((k, "metis"))
            if grid is None or metis is None:
                continue
            print(f"| {k} | {_load(grid)} | {_load(metis)} | {_redundancy(grid)} | {_redundancy(metis)} | "
                  f"{grid['normalised_cut']:.2f} | {metis['normalised_cut']:.2f} | {metis['seconds']:.1f} |")


def _load(row) -> str:
    empty = f" ({row['empty_parts']} empty)" if row["empty_parts"] else ""
    return f"{row['worst_load']:.2f}{empty}"


def _redundancy(row) -> str:
    euclidean = f" ({row['euclidean_redundancy']:.2f})" if "euclidean_redundancy" in row else ""
    return f"{row['redundancy']:.2f}{euclidean}"


if __name__ == "__main__":
    main()
