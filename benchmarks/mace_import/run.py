#!/usr/bin/env python3
"""The same mace-torch model file through mace-torch and, imported, through mlpot, side by side (issue 30).

    python benchmarks/mace_import/run.py [--quick | --large] [--rss-cap-gib 12] [--output results.json]

Run with mlpot's environment; mace-torch runs in its own ($MACE_VENV, default .venv-mace beside
mlpot's checkout). Steps: make_models.py writes the 64- and 128-channel mace files (mace's
environment), ``mlpot import mace`` converts each, then for each model, structure and dtype
run_mace.py and run_mlpot.py run one after the other, each in a fresh one-thread process, the
order alternating from one configuration to the next; each process's last call is compared.
A watchdog ends a process whose resident memory passes the cap (the machine has 23 GiB, no swap,
and is shared), or less where less memory is available when it starts, and records it as over the cap.
Then report.py turns the JSON into the README's table.
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
os.environ.setdefault("MACE_VENV", os.path.join(REPO, ".venv-mace"))
# benchmarks/potential_speed/run.py: its machine_info, rss_mib and the mace environment (PYTHON, ENV)
_spec = importlib.util.spec_from_file_location("potential_speed_run", os.path.join(HERE, "..", "potential_speed", "run.py"))
potential_speed = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(potential_speed)

MACE_ENV = potential_speed.ENV["mace-torch"]
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
MODELS = ("mp_shape_64", "mp_shape_128")
# (system, dtype, warm-up calls, timed calls, run mace-torch). On the shared 2-core machine (load 4-8)
# mace-torch's 128-channel float64 call on water 648 took 51 s of CPU (171 s wall) and 8.4 GiB, so
# water 648 gets one warm-up and one timed call, and water 3993 one call of mlpot alone: mace-torch's
# peak there, about six times its 648-atom one (report.py extrapolates it), does not fit the machine.
PLAN = [("ethanol", dtype, 2, 5, True) for dtype in ["float64", "float32"]]
PLAN += [("water648", dtype, 1, 1, True) for dtype in ["float64", "float32"]]
PLAN += [("water3993", dtype, 0, 1, False) for dtype in ["float32", "float64"]]
QUICK = [("ethanol", "float64", 1, 2, True), ("ethanol", "float32", 1, 2, True)]
# --large: water 3993 with both sides, for a run on an otherwise idle machine (raise --rss-cap-gib)
LARGE = [("water3993", dtype, 0, 1, True) for dtype in ["float32", "float64"]]


def available_mib() -> float:
    with open("/proc/meminfo") as handle:
        return next(int(line.split()[1]) / 1024.0 for line in handle if line.startswith("MemAvailable:"))


def run_side(package: str, model: str, system: str, dtype: str, warmup: int, repeats: int, work: str,
             cap_mib: float) -> dict:
    """One benchmark process with a resident-memory watchdog; its JSON result, or why there is none."""
    tag = f"{package}_{os.path.basename(model).split('.')[0]}_{system}_{dtype}"
    out, arrays, log_path = (os.path.join(work, tag + ext) for ext in (".json", ".npz", ".log"))
    for path in (out, arrays):
        if os.path.exists(path):
            os.remove(path)
    if package == "mace-torch":
        python, runner, env = potential_speed.PYTHON["mace-torch"], "run_mace.py", dict(os.environ, **MACE_ENV)
    else:
        python, runner, env = sys.executable, "run_mlpot.py", dict(os.environ)
    env.update(ONE_THREAD)
    cap = min(cap_mib, available_mib() - 3 * 1024)  # leave 3 GiB to everyone else on the machine
    cmd = [python, "-W", "ignore", runner, "--model", model, "--system", system, "--dtype", dtype,
           "--warmup", str(warmup), "--repeats", str(repeats), "--out", out, "--arrays", arrays]
    start, seen, killed = time.time(), 0.0, False
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=HERE)
        while proc.poll() is None:
            seen = max(seen, potential_speed.rss_mib(proc.pid))
            if seen > cap and not killed:
                proc.kill()  # only the child this driver started
                killed = True
            time.sleep(0.05)
    base = {"package": package, "model": os.path.basename(model), "system": system, "dtype": dtype,
            "process_s": time.time() - start, "rss_cap_mib": cap, "arrays": arrays}
    if proc.returncode == 0 and os.path.exists(out):
        with open(out) as handle:
            return dict(json.load(handle), **base, status="ok")
    with open(log_path) as handle:
        tail = handle.read()[-1500:]
    status = f"over the memory cap ({cap / 1024:.1f} GiB resident)" if killed else f"failed (rc {proc.returncode})"
    return dict(base, status=status, peak_rss_mib=seen, log_tail=tail)


def relative(a: np.ndarray, b: np.ndarray) -> float:
    """Largest difference over the array's largest entry."""
    return float(np.abs(a - b).max() / np.abs(b).max())


def agreement(mlpot_npz: str, mace_npz: str) -> dict:
    """mlpot's last call against mace's: |dE|/|E|, max |dF| (eV/Å) and over max |F|, stress likewise."""
    with np.load(mlpot_npz) as ours, np.load(mace_npz) as theirs:
        if bool(ours["shifted"]) != bool(theirs["shifted"]):
            raise RuntimeError(f"{mlpot_npz} and {mace_npz} are results for different positions")
        result = {
            "energy_rel": float(abs(ours["energy"] - theirs["energy"]) / abs(theirs["energy"])),
            "forces_max_abs": float(np.abs(ours["forces"] - theirs["forces"]).max()),
            "forces_rel": relative(ours["forces"], theirs["forces"]),
        }
        if "stress" in theirs:
            result["stress_rel"] = relative(ours["stress"], theirs["stress"])
    return result


def make_models(work: str) -> list:
    """The mace files (make_models.py in mace's environment) and their ``mlpot import mace`` copies."""
    models_dir = os.path.join(work, "models")
    made = subprocess.run(
        [potential_speed.PYTHON["mace-torch"], "-W", "ignore", os.path.join(HERE, "make_models.py"), models_dir],
        env=dict(os.environ, **MACE_ENV, **ONE_THREAD), check=True, capture_output=True, text=True)
    records = [json.loads(line) for line in made.stdout.splitlines() if line.startswith("{")]
    mlpot_cli = os.path.join(os.path.dirname(sys.executable), "mlpot")
    for record in records:
        source = os.path.join(models_dir, record["model"])
        target = source.replace(".model", ".mlpot.model")
        command = [mlpot_cli, "import", "mace", source, "-o", target]
        start = time.time()
        subprocess.run(command, env=dict(os.environ, **ONE_THREAD), check=True, capture_output=True)
        record.update(import_command="mlpot import mace " + " ".join(os.path.basename(p) for p in (source, target)),
                      import_s=time.time() - start, mlpot_file_mb=os.path.getsize(target) / 2**20,
                      mace_path=source, mlpot_path=target)
        print(f"{record['model']}: {record['num_params']:,} parameters, imported in {record['import_s']:.0f} s", flush=True)
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke test: ethanol only, few calls")
    parser.add_argument("--large", action="store_true",
                        help="water 3993 only, mace-torch included (needs an idle machine and a higher --rss-cap-gib)")
    parser.add_argument("--rss-cap-gib", type=float, default=12.0)
    parser.add_argument("--work-dir", default=os.path.join(tempfile.gettempdir(), "mlpot_mace_import"),
                        help="model files (18-42 MB each), logs and per-process results")
    parser.add_argument("--output", default=os.path.join(HERE, "results.json"))
    args = parser.parse_args()
    os.makedirs(args.work_dir, exist_ok=True)

    meta = potential_speed.machine_info()
    meta["command"] = " ".join(["python", os.path.relpath(__file__, REPO)] + sys.argv[1:])
    meta["mlpot_commit"] = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                          capture_output=True, text=True).stdout.strip()
    started = time.time()
    models = make_models(args.work_dir)
    rows = []
    for index, (model, (system, dtype, warmup, repeats, with_mace)) in enumerate(
            (m, p) for p in (QUICK if args.quick else LARGE if args.large else PLAN) for m in models):
        order = ["mlpot", "mace-torch"] if index % 2 == 0 else ["mace-torch", "mlpot"]
        sides = {"mace-torch": {"status": "not run"}}
        for package in order if with_mace else ["mlpot"]:
            path = model["mlpot_path"] if package == "mlpot" else model["mace_path"]
            sides[package] = run_side(package, path, system, dtype, warmup, repeats, args.work_dir,
                                      args.rss_cap_gib * 1024)
        row = {"model": model["model"], "system": system, "dtype": dtype, "first": order[0] if with_mace else "mlpot",
               **sides}
        if all(side["status"] == "ok" for side in sides.values()):
            row["agreement"] = agreement(sides["mlpot"]["arrays"], sides["mace-torch"]["arrays"])
        rows.append(row)
        shown = "  ".join(
            f"{package} {side['median_cpu_s']:.3f} s cpu {side['peak_rss_mib']:.0f} MiB" if side["status"] == "ok"
            else f"{package} {side['status']}" for package, side in sides.items())
        print(f"[{time.time() - started:5.0f} s] {model['model']} {system} {dtype}: {shown}  "
              f"{json.dumps(row.get('agreement', {}))}", flush=True)
    # float32 results against mace-torch's float64 ones: how far each package's float32 is from float64
    for row in rows:
        double = next((r for r in rows if r["dtype"] == "float64"
                       and (r["model"], r["system"]) == (row["model"], row["system"])), None)
        if row["dtype"] == "float32" and double and double["mace-torch"]["status"] == "ok":
            row["against_mace_float64"] = {
                package: agreement(row[package]["arrays"], double["mace-torch"]["arrays"])
                for package in ("mlpot", "mace-torch") if row[package]["status"] == "ok"}
    meta["total_wall_s"] = time.time() - started
    meta["loadavg_end"] = open("/proc/loadavg").read().strip()
    with open(args.output, "w") as handle:
        json.dump({"meta": meta, "models": models, "rows": rows}, handle, indent=1)
    print(f"wrote {args.output} in {meta['total_wall_s'] / 60:.1f} min")


if __name__ == "__main__":
    main()
