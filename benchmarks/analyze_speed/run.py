"""Time `mlpot analyze` against dynasor called directly, on the same trajectory and q-points.

  python run.py [--cells 14] [--frames 1000] [--q-points 2000] [--workdir DIR]

Makes a synthetic trajectory (fcc copper, cells^3 x 4 atoms; 14 -> 10,976 atoms; Gaussian
thermal-like displacements of 0.1 Å and velocities), written block by block as extxyz with
velocities and time_ps like `mlpot md`, then measures wall time and peak memory (max RSS of the
child process) of

  1. mlpot analyze TRAJ --observables sq  (ASE reading + validation + dynasor's direct sum),
  2. dynasor directly: dynasor.Trajectory(TRAJ, "ase") + compute_static_structure_factors with
     the same q-points + the same spherical binning,

each in its own process, and checks that both give the same S(Q). Results go to results.json
beside this script.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DIRECT = r"""
import logging, sys, time, numpy as np, dynasor
from dynasor.post_processing import get_spherically_averaged_sample_binned
logging.getLogger("dynasor").setLevel(logging.ERROR)
path, q_max, dq, q_points, out = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
traj = dynasor.Trajectory(path, trajectory_format="ase", atomic_indices="read_from_trajectory")
cell = traj.cell
rec = 2 * np.pi * np.linalg.inv(cell).T
steps = np.array([(h, k, l) for h in (-1, 0, 1) for k in (-1, 0, 1) for l in (-1, 0, 1) if (h, k, l) != (0, 0, 0)])
q_min = np.linalg.norm(steps @ rec, axis=1).min()
q = dynasor.get_spherical_qpoints(cell, q_max=q_max, q_min=0.5 * q_min, max_points=q_points, seed=0)
sample = dynasor.compute_static_structure_factors(traj, q, logging_interval=0)
norms = np.linalg.norm(q, axis=1)
binned = get_spherically_averaged_sample_binned(sample, num_q_bins=max(2, int(round((norms.max() - norms.min()) / dq)) + 1))
s = np.asarray(binned.Sq).reshape(-1)
keep = np.isfinite(s)
np.savetxt(out, np.column_stack([np.asarray(binned.q_norms)[keep], s[keep]]))
"""


def make_trajectory(path: Path, cells: int, frames: int, seed: int = 0) -> None:
    from ase.build import bulk

    from mlpot.data.extxyz import format_frame

    rng = np.random.default_rng(seed)
    lattice = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(cells)
    ideal = lattice.positions.copy()  # [N, 3]
    with open(path, "w") as stream:
        for k in range(frames):
            lattice.positions = ideal + rng.normal(0.0, 0.1, ideal.shape)
            velocities = rng.normal(0.0, 0.02, ideal.shape)  # Å per ASE time unit, as mlpot md writes
            stream.write(format_frame(lattice, {"step": k, "time_ps": 0.01 * k}, {"velocities": velocities}))


MEASURE = "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); " \
          "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"


def timed(command) -> dict:
    """Wall time and the peak RSS of ``command``, measured by a fresh parent process of its own."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode:
        raise RuntimeError(result.stderr)
    return {"wall_s": round(wall, 2), "peak_rss_MB": round(int(result.stdout.split()[-1]) / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=14)
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--q-points", type=int, default=2000)
    parser.add_argument("--q-max", type=float, default=8.0)
    parser.add_argument("--dq", type=float, default=0.05)
    parser.add_argument("--workdir", type=Path, default=Path("work"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    trajectory = args.workdir / f"fcc{args.cells}_{args.frames}.xyz"
    if not trajectory.exists():
        started = time.perf_counter()
        make_trajectory(trajectory, args.cells, args.frames)
        print(f"wrote {trajectory} ({trajectory.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - started:.0f} s")
    direct_out = args.workdir / "dynasor_sq.txt"
    dynasor_run = timed([sys.executable, "-c", DIRECT, str(trajectory), str(args.q_max), str(args.dq), str(args.q_points), str(direct_out)])
    mlpot_run = timed([sys.executable, "-m", "mlpot.cli.main", "analyze", str(trajectory), "-o", str(args.workdir / "mlpot"),
                       "--observables", "sq", "--q-max", str(args.q_max), "--dq", str(args.dq), "--q-points", str(args.q_points)])
    direct = np.loadtxt(direct_out)
    with open(args.workdir / "mlpot" / "sq.csv") as stream:
        ours = np.loadtxt(stream, delimiter=",", skiprows=1, usecols=(0, 1))
    same = bool(np.allclose(direct, ours, rtol=1e-6, atol=1e-9))
    atoms = 4 * args.cells**3
    results = {"atoms": atoms, "frames": args.frames, "q_points": args.q_points, "dynasor_direct": dynasor_run,
               "mlpot_analyze_sq": mlpot_run, "same_S_of_Q": same}
    (Path(__file__).resolve().parent / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
