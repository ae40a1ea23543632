"""MD throughput of the demo Cu-Au potential: LAMMPS (pair_style mlpot, 1 and 2 MPI ranks) beside
ASE (MLPotCalculator + VelocityVerlet) on the same boxes, with peak memory per process.

    python benchmarks/lammps_md/run.py --output benchmarks/lammps_md/results.json

Needs mlpot installed with the lammps extra. Each run is NVE with 2 fs steps from 300 K
velocities: a few warm-up steps, then --steps timed steps (LAMMPS's own "Loop time" of the
second `run`; ASE: wall time of dynamics.run). Every engine runs in its own process so that
peak RSS (ru_maxrss) belongs to it alone; LAMMPS ranks are wrapped by this script
(--wrap) to report each rank's peak.
"""

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DEMO = REPO / "models" / "cuau-emt-demo" / "cuau-emt-demo.model"
TIMESTEP_FS = 2.0


def cuau_box(cells: int):
    from ase.build import bulk

    atoms = bulk("Cu", "fcc", a=3.73, cubic=True) * (cells, cells, cells)
    rng = np.random.default_rng(0)
    atoms.symbols[rng.permutation(len(atoms))[: len(atoms) // 4]] = "Au"
    atoms.rattle(0.05, seed=1)
    from ase.md import velocitydistribution as velocities

    thermalize = getattr(velocities, "thermalize_momenta", None) or velocities.MaxwellBoltzmannDistribution  # ase >= 3.29 / older
    thermalize(atoms, temperature_K=300.0, rng=np.random.default_rng(2))
    velocities.Stationary(atoms)
    return atoms


# ----------------------------------------------------------------------------- ASE
def run_ase(cells: int, steps: int, warmup: int, threads: int, dtype: str) -> dict:
    import torch
    from ase.md.verlet import VelocityVerlet
    from ase.units import fs

    from mlpot.calculators import MLPotCalculator

    torch.set_num_threads(threads)
    atoms = cuau_box(cells)
    atoms.calc = MLPotCalculator(DEMO, dtype=dtype)
    dynamics = VelocityVerlet(atoms, timestep=TIMESTEP_FS * fs)
    dynamics.run(warmup)
    start = time.perf_counter()
    dynamics.run(steps)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_mb": [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]}


# ----------------------------------------------------------------------------- LAMMPS
def write_data(path: Path, atoms) -> None:
    from ase.data import atomic_masses
    from ase.units import fs

    cell = np.diag(atoms.cell.array).tolist()
    types = np.where(atoms.numbers == 29, 1, 2)
    velocities = atoms.get_velocities() * fs * 1000.0  # Å/ps
    lines = ["benchmark box", "", f"{len(atoms)} atoms", "2 atom types", ""]
    lines += [f"0.0 {cell[k]!r} {a}lo {a}hi" for k, a in enumerate("xyz")]
    lines += ["", "Masses", "", f"1 {float(atomic_masses[29])!r}", f"2 {float(atomic_masses[79])!r}", "", "Atoms # atomic", ""]
    lines += [f"{i} {t} {x!r} {y!r} {z!r}" for i, (t, (x, y, z)) in enumerate(zip(types, atoms.positions.tolist()), 1)]
    lines += ["", "Velocities", ""]
    lines += [f"{i} {x!r} {y!r} {z!r}" for i, (x, y, z) in enumerate(velocities.tolist(), 1)]
    path.write_text("\n".join(lines) + "\n")


def run_lammps(cells: int, steps: int, warmup: int, ranks: int, threads: int, plugin: Path, exported: Path) -> dict:
    from mlpot.export.lammps_plugin import find_lammps

    lammps = find_lammps()
    with tempfile.TemporaryDirectory() as directory:
        directory = Path(directory)
        write_data(directory / "box.data", cuau_box(cells))
        (directory / "in.bench").write_text(f"""
units metal
atom_style atomic
boundary p p p
read_data box.data
plugin load {plugin}
pair_style mlpot
pair_coeff * * {exported} Cu Au
fix nve all nve
timestep {TIMESTEP_FS / 1000.0}
thermo {steps}
run {warmup}
run {steps}
""")
        wrapped = [sys.executable, str(Path(__file__).resolve()), "--wrap", str(directory / "rss"), str(lammps.executable)]
        command = ([str(lammps.mpirun), "-np", str(ranks)] if ranks > 1 else []) + wrapped + ["-in", "in.bench", "-log", "log.lammps", "-nocite"]
        result = subprocess.run(command, cwd=directory, capture_output=True, text=True,
                                env=lammps.environment(OMP_NUM_THREADS=str(threads)))
        if result.returncode != 0:
            raise RuntimeError(result.stdout[-2000:] + result.stderr[-2000:])
        loops = re.findall(r"Loop time of ([\d.eE+-]+) on \d+ procs for (\d+) steps", result.stdout)
        seconds = float(loops[-1][0])
        rss = sorted(float(path.read_text()) for path in directory.glob("rss.*"))
        ghosts = re.findall(r"Nghost:\s+([\d.]+) ave", result.stdout)
    return {"seconds": seconds, "peak_rss_mb": rss, "ghosts_per_rank": float(ghosts[-1]) if ghosts else None}


def wrap(rss_prefix: str, command) -> int:
    """Run one LAMMPS rank as a child (MPI's inherited descriptors kept) and record its peak RSS."""
    code = subprocess.call(command, close_fds=False)
    rank = os.environ.get("PMI_RANK", "0")
    Path(f"{rss_prefix}.{rank}").write_text(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024))
    return code


# ----------------------------------------------------------------------------- driver
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, nargs="+", default=[6, 14], help="cubic fcc cells per edge (6: 864 atoms, 14: 10,976)")
    parser.add_argument("--steps", type=int, nargs="+", default=[20, 10], help="timed steps per size")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--engines", nargs="+", default=["lammps-1x1", "lammps-2x1", "lammps-1x2", "ase-1", "ase-2"],
                        help="lammps-RANKSxTHREADS, ase-THREADS")
    parser.add_argument("--output", help="JSON file to write (rewritten after every run)")
    parser.add_argument("--append", action="store_true", help="keep the runs already in --output")
    parser.add_argument("--plugin", help="an already built libmlpot_pair.so (default: build one)")
    parser.add_argument("--wrap", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.add_argument("--ase-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.wrap:
        return wrap(args.wrap[0], args.wrap[1:])
    if args.ase_child:
        cells, steps, threads, dtype = args.ase_child
        print(json.dumps(run_ase(int(cells), int(steps), args.warmup, int(threads), dtype)))
        return 0

    import torch

    import mlpot
    from mlpot.export.lammps_plugin import build_plugin, find_lammps
    from mlpot.export.lammps import export_lammps

    from importlib.metadata import version

    work = Path(tempfile.mkdtemp(prefix="mlpot-lammps-bench-"))
    plugin = Path(args.plugin).resolve() if args.plugin else build_plugin(str(work / "build"))
    exported = export_lammps(mlpot.load_model(DEMO), work / "demo.pt", dtype=args.dtype)
    steps_for = dict(zip(args.cells, args.steps + [args.steps[-1]] * len(args.cells)))
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "torch": torch.__version__, "lammps": version("lammps"), "mlpot": mlpot.__version__, "dtype": args.dtype,
            "timestep_fs": TIMESTEP_FS, "model": str(DEMO.relative_to(REPO))}
    results = json.loads(Path(args.output).read_text())["results"] if args.append and args.output and Path(args.output).exists() else []
    for cells in args.cells:
        atoms = 4 * cells**3
        for engine in args.engines:
            load = os.getloadavg()[0]
            if engine.startswith("lammps"):
                ranks, threads = (int(part) for part in engine.split("-")[1].split("x"))
                run = run_lammps(cells, steps_for[cells], args.warmup, ranks, threads, plugin, exported)
            else:
                threads = int(engine.split("-")[1])
                child = subprocess.run([sys.executable, __file__, "--warmup", str(args.warmup), "--ase-child", str(cells),
                                        str(steps_for[cells]), str(threads), args.dtype], capture_output=True, text=True)
                if child.returncode != 0:
                    raise RuntimeError(child.stderr[-2000:])
                run = json.loads(child.stdout.splitlines()[-1])
            steps = steps_for[cells]
            row = {"engine": engine, "atoms": atoms, "steps": steps, "load_before": round(load, 2), **run,
                   "atom_steps_per_s": atoms * steps / run["seconds"],
                   "ns_per_day": steps * TIMESTEP_FS * 1e-6 / run["seconds"] * 86400,
                   "ms_per_step": 1000 * run["seconds"] / steps}
            results.append(row)
            print(f"{atoms:6d} atoms  {engine:11s} {row['ms_per_step']:9.1f} ms/step  {row['atom_steps_per_s']:9.0f} atom-steps/s  "
                  f"{row['ns_per_day']:.4f} ns/day  peak RSS/process {', '.join(f'{m:.0f}' for m in run['peak_rss_mb'])} MB  (load {load:.1f})",
                  flush=True)
            if args.output:
                Path(args.output).write_text(json.dumps({"meta": meta, "results": results}, indent=1) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
