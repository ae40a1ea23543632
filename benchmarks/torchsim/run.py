"""Systems per second: many systems batched through TorchSim (mlpot.engines.torchsim.MLPotModel)
against one ASE MLPotCalculator per system, side by side in each round, on one CPU thread.

    python benchmarks/torchsim/run.py --rounds 3 --output benchmarks/torchsim/results.json

Cases: 1, 10 and 100 rattled ethanol molecules (models/ethanol-rmd17, a committee of two) and 4
rattled 108-atom Cu-Au cells (models/cuau-emt-demo), float64. Two workloads per case:
- force: one energy/forces (and, for cells, stress) evaluation of every system, ``--calls`` times
  (ASE: each system's calculator after a 1e-4 Å displacement, so it recomputes; TorchSim: one
  forward of the batched state);
- md: NVE velocity Verlet, 0.5 fs, ``--steps`` steps of every system (ASE: VelocityVerlet per
  system, one after the other; TorchSim: ts.integrate with ts.nve on the batch), including the
  initial force call on both sides.
Systems per second = systems x calls (or steps) / wall time. Each round runs the ASE and the
TorchSim side of a case back to back; the ratio is taken within a round and its median reported.
"""

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch loads

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch_sim as ts  # noqa: E402
from ase import units  # noqa: E402
from ase.build import bulk, molecule  # noqa: E402
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution  # noqa: E402
from ase.md.verlet import VelocityVerlet  # noqa: E402

from mlpot.calculators import MLPotCalculator  # noqa: E402
from mlpot.engines.torchsim import MLPotModel  # noqa: E402

MODELS = Path(__file__).resolve().parents[2] / "models"
TIMESTEP_PS = 0.0005


def ethanols(count: int):
    systems = []
    for seed in range(count):
        atoms = molecule("CH3CH2OH")
        atoms.rattle(0.03, seed=seed)
        systems.append(atoms)
    return systems


def cuau_cells(count: int):
    systems = []
    for seed in range(count):
        rng = np.random.default_rng(seed)
        atoms = bulk("Cu", "fcc", a=3.7, cubic=True).repeat((3, 3, 3))  # 108 atoms
        atoms.symbols[rng.random(len(atoms)) < 0.3] = "Au"
        atoms.rattle(0.05, seed=seed)
        systems.append(atoms)
    return systems


CASES = {
    "ethanol x1": ("ethanol-rmd17", lambda: ethanols(1)),
    "ethanol x10": ("ethanol-rmd17", lambda: ethanols(10)),
    "ethanol x100": ("ethanol-rmd17", lambda: ethanols(100)),
    "Cu-Au 108 x4": ("cuau-emt-demo", lambda: cuau_cells(4)),
}


def ase_force(systems, calculators, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        for atoms, calculator in zip(systems, calculators):
            atoms.positions[0, 0] += 1e-4
            atoms.calc = calculator
            atoms.get_forces()
            if atoms.pbc.all():
                atoms.get_stress()
    return time.perf_counter() - start


def torchsim_force(model, state, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        state.positions[0, 0] += 1e-4
        model(state)
    return time.perf_counter() - start


def ase_md(systems, calculators, steps: int) -> float:
    start = time.perf_counter()
    for seed, (atoms, calculator) in enumerate(zip(systems, calculators)):
        atoms.calc = calculator
        MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(seed))
        VelocityVerlet(atoms, timestep=TIMESTEP_PS * 1000 * units.fs).run(steps)
    return time.perf_counter() - start


def torchsim_md(model, state, steps: int) -> float:
    start = time.perf_counter()
    ts.integrate(system=state, model=model, integrator=ts.nve, n_steps=steps, temperature=300.0, timestep=TIMESTEP_PS)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=5, help="force calls of every system per measurement")
    parser.add_argument("--steps", type=int, default=5, help="MD steps of every system per measurement")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for round_index in range(args.rounds):
        for case, (model_name, make) in CASES.items():
            path = str(MODELS / model_name)
            systems = make()
            model = MLPotModel(path)
            calculators = [MLPotCalculator(path) for _ in systems]
            state = ts.io.atoms_to_state(systems, model.device, model.dtype)
            torchsim_force(model, state, 1)  # warm-up: first calls allocate
            ase_force(systems, calculators, 1)
            times = {
                "ase force": ase_force(systems, calculators, args.calls),
                "torchsim force": torchsim_force(model, state, args.calls),
                "ase md": ase_md(make(), calculators, args.steps),
                "torchsim md": torchsim_md(model, ts.io.atoms_to_state(make(), model.device, model.dtype), args.steps),
            }
            row = {"round": round_index, "case": case, "systems": len(systems), "atoms": sum(map(len, systems)),
                   "load_1min": os.getloadavg()[0]}
            for name, seconds in times.items():
                work = args.calls if name.endswith("force") else args.steps
                row[f"{name} systems/s"] = len(systems) * work / seconds
            rows.append(row)
            print(json.dumps(row), flush=True)
    summary = {}
    for case in CASES:
        case_rows = [row for row in rows if row["case"] == case]
        entry = {}
        for workload in ("force", "md"):
            ase = [row[f"ase {workload} systems/s"] for row in case_rows]
            batched = [row[f"torchsim {workload} systems/s"] for row in case_rows]
            entry[workload] = {"ase systems/s": float(np.median(ase)), "torchsim systems/s": float(np.median(batched)),
                               "ratios": [b / a for a, b in zip(ase, batched)],
                               "median ratio": float(np.median([b / a for a, b in zip(ase, batched)]))}
        summary[case] = entry
    print(json.dumps(summary, indent=1))
    if args.output is not None:
        meta = {"date": time.strftime("%Y-%m-%d"), "machine": platform.processor() or platform.machine(),
                "cpus": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                "calls": args.calls, "steps": args.steps}
        args.output.write_text(json.dumps({"meta": meta, "rounds": rows, "summary": summary}, indent=1) + "\n")


if __name__ == "__main__":
    main()
