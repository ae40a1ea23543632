"""Peak memory of one part's energy + forces + stress evaluation, per evaluated atom, against the
estimate :func:`mlpot.partition.budget.bytes_per_atom` that ``memory_budget`` sizes parts by.

Each case runs in a fresh process: model and inputs are built, the peak-RSS mark is reset
(``/proc/self/clear_refs``), one partitioned evaluation with k = 1 runs (the same code path a
part takes), and the rise of VmHWM over the RSS before the call is the part's peak. glibc is told
to keep freed memory (as MLPotCalculator does on the CPU), so the heap only grows and VmHWM sees
every allocation. Writes memory_per_atom.json beside this file.

    OMP_NUM_THREADS=1 python benchmarks/partition/memory_per_atom.py
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MEMBER = {"elements": ["H", "C", "O"], "r_max": 5.0, "max_ell": 3, "hidden_irreps": "64x0e+64x1o",
          "correlation": 3, "num_interactions": 2, "radial_mlp": [64, 64, 64]}  # ethanol-rmd17 member 0's shape
CASES = [  # (name, model config changes, dtype, water molecules per side, density factor)
    ("member0 f32 water 8^3", {}, "float32", 8, 1.0),
    ("member0 f64 water 8^3", {}, "float64", 8, 1.0),
    ("member0 f32 water 6^3", {}, "float32", 6, 1.0),
    ("member0 f32 water 8^3 half density", {}, "float32", 8, 0.5),
    ("32 channels l<=1 f32", {"hidden_irreps": "32x0e+32x1o"}, "float32", 8, 1.0),
    ("64x0e+64x1o+64x2e f32", {"hidden_irreps": "64x0e+64x1o+64x2e"}, "float32", 6, 1.0),
    ("3 interactions f32", {"num_interactions": 3}, "float32", 6, 1.0),
    ("max_ell 2 correlation 2 f32", {"max_ell": 2, "correlation": 2}, "float32", 8, 1.0),
]


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def one(index: int) -> dict:
    import numpy as np
    import torch

    from mlpot.allocator import keep_freed_memory
    from mlpot.data.neighbours import neighbour_pairs
    from mlpot.models import build_model
    from mlpot.partition.budget import bytes_per_atom
    from mlpot.partition.evaluate import evaluate_partitioned
    from systems import water_box

    torch.set_num_threads(1)
    keep_freed_memory()
    name, changes, dtype, side, density = CASES[index]
    config = {**MEMBER, **changes}
    model = build_model(config).to(getattr(torch, dtype)).eval()
    model.requires_grad_(False)
    atoms = water_box(3 * side**3, seed=1)
    stretch = density ** (-1 / 3)  # molecules keep their shape; their oxygens spread with the cell
    oxygens = np.repeat(atoms.positions[::3], 3, axis=0)  # [N, 3]
    atoms.set_cell(atoms.cell * stretch, scale_atoms=False)
    atoms.positions = atoms.positions + (stretch - 1) * oxygens
    sender, receiver, shifts = neighbour_pairs(atoms.positions, atoms.cell.array, atoms.pbc, config["r_max"])
    as_tensor = lambda array: torch.tensor(np.asarray(array), dtype=getattr(torch, dtype))  # noqa: E731
    positions, cell = as_tensor(atoms.positions), as_tensor(atoms.cell.array)
    cartesian_shifts = as_tensor(shifts @ atoms.cell.array)
    numbers = torch.tensor(atoms.numbers)
    edge_index = torch.tensor(np.stack([sender, receiver]))
    labels = np.zeros(len(atoms), dtype=np.int64)
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = status_kb("VmRSS")
    evaluate_partitioned(model, positions, numbers, edge_index, cartesian_shifts, cell, labels, 1, True)
    peak = (status_kb("VmHWM") - before) * 1024
    neighbours = len(sender) / len(atoms)
    estimate = bytes_per_atom(model, getattr(torch, dtype), neighbours)
    return {"case": name, "atoms": len(atoms), "neighbours_per_atom": round(neighbours, 1), "dtype": dtype,
            "measured_bytes_per_atom": peak / len(atoms), "estimated_bytes_per_atom": estimate,
            "estimate_over_measured": estimate / (peak / len(atoms))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--one", type=int, help="run one case in this process and print its JSON")
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one(args.one)))
        return
    rows = []
    for index in range(len(CASES)):
        out = subprocess.run([sys.executable, __file__, "--one", str(index)], capture_output=True, text=True, cwd=HERE, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    (HERE / "memory_per_atom.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
