#!/usr/bin/env python3
"""Run the whole mlpot vs mace-torch energy+forces benchmark and write results.json.

Every (system, dtype, allocator, package) is its own fresh process (run_mlpot.py in this
environment, run_mace.py in the mace-torch environment at $MACE_VENV); the two packages of one
configuration run back to back, alternating which goes first. A watchdog kills a process whose resident memory passes
--rss-cap-gib (the machine has 24 GB and no swap) and records it as over the cap.

    MACE_VENV=/path/to/mace-venv python benchmarks/potential_speed/run.py   # everything, ~30 min
    python benchmarks/potential_speed/run.py --contended     # busy machine: 1 thread, CPU time
    python benchmarks/potential_speed/run.py --quick         # smoke test, small systems only
    python benchmarks/potential_speed/run.py --only water648 # one system (results_<tag>.json)

Needs only the standard library; then report.py turns results.json into the README table.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# mlpot runs in this interpreter's environment, mace-torch (which pins e3nn 0.4.4) in its own.
PYTHON = {
    "mlpot": sys.executable,
    "mlpot-reference": sys.executable,  # mlpot's plain-torch path (--kernel reference)
    "mace-torch": os.path.join(os.environ.get("MACE_VENV", "mace-venv"), "bin", "python"),
}
RUNNER = {
    "mlpot": os.path.join(HERE, "run_mlpot.py"),
    "mlpot-reference": os.path.join(HERE, "run_mlpot.py"),
    "mace-torch": os.path.join(HERE, "run_mace.py"),
}
ARGS = {"mlpot": [], "mlpot-reference": ["--kernel", "reference"], "mace-torch": []}
ENV = {
    "mlpot": {},
    "mlpot-reference": {},
    # e3nn 0.4.4 calls torch.load on its constants without weights_only; torch >= 2.6 refuses otherwise.
    "mace-torch": {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"},
}

# (system, dtype, alloc, warmup calls, clean timed calls wanted, most timed calls). The 3993-atom box
# with glibc's default allocator costs ~55 s (float32) to ~100 s (float64) per call, so it gets
# fewer calls to keep the run near 30 min on an idle machine.
PLAN = []
for system in ["ethanol", "water375", "water648"]:
    for dtype in ["float32", "float64"]:
        for alloc in ["keep", "default"]:
            repeats = 20 if system == "ethanol" else 7
            PLAN.append((system, dtype, alloc, 2, repeats, 2 * repeats))
PLAN += [
    ("water3993", "float32", "keep", 2, 5, 8),
    ("water3993", "float32", "default", 1, 3, 4),
    ("water3993", "float64", "keep", 2, 3, 5),
    ("water3993", "float64", "default", 1, 2, 3),
]
PROFILE = [("water3993", "float32", "keep")]
# --contended: the machine is busy with other people's jobs, so wall time at 2 threads means
# nothing (every OpenMP region waits for a descheduled thread). Run with 1 thread, take no
# account of other load, and compare CPU time per call; fewer calls since CPU time is steady.
CONTENDED_PLAN = [(s, d, a, w, min(r, 5) if s != "ethanol" else r, m) for s, d, a, w, r, m in PLAN[:-4]] + [
    ("water3993", "float32", "keep", 2, 5, 5),
    ("water3993", "float32", "default", 1, 2, 2),
    ("water3993", "float64", "keep", 1, 2, 2),
    ("water3993", "float64", "default", 1, 1, 1),
]
CONTENDED_PLAN = [(s, d, a, w, r, r) for s, d, a, w, r, _ in CONTENDED_PLAN]
QUICK = [("ethanol", "float32", "keep", 1, 5, 10), ("water375", "float64", "default", 1, 2, 4)]


def rss_mib(pid: int) -> float:
    """Resident memory of a running process (MiB); 0 once it has exited and /proc lost it."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            lines = handle.readlines()
    except OSError:  # the process ended between the watchdog's poll and this read
        return 0.0
    return next((int(line.split()[1]) / 1024.0 for line in lines if line.startswith("VmRSS:")), 0.0)


def cpu_jiffies():
    """(busy, steal) jiffies summed over all CPUs, from /proc/stat."""
    with open("/proc/stat") as handle:
        fields = [int(x) for x in handle.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
    return user + nice + system + irq + softirq + steal, steal


def foreign_load(seconds: float) -> float:
    """Cores kept busy by other processes (this driver is asleep meanwhile) over ``seconds``."""
    busy0, _ = cpu_jiffies()
    time.sleep(seconds)
    busy1, _ = cpu_jiffies()
    return (busy1 - busy0) / os.sysconf("SC_CLK_TCK") / seconds


def wait_quiet(threshold: float, max_wait: float) -> float:
    """Wait (up to max_wait s) until other processes use less than ``threshold`` cores; returns the last reading."""
    deadline = time.time() + max_wait
    load = foreign_load(2.0)
    while load > threshold and time.time() < deadline:
        print(f"    machine busy ({load:.2f} cores used by other processes); waiting", flush=True)
        time.sleep(20.0)
        load = foreign_load(2.0)
    return load


def run_one(package, system, dtype, alloc, warmup, repeats, max_calls, rss_cap_mib, logdir, profile=None,
            quiet=(0.15, 600.0), threads=2):
    out_file = os.path.join(logdir, f"{package}_{system}_{dtype}_{alloc}{'_profile' if profile else ''}.json")
    if os.path.exists(out_file):
        os.remove(out_file)
    cmd = [PYTHON[package], RUNNER[package], "--system", system, "--dtype", dtype, "--alloc", alloc,
           "--warmup", str(warmup), "--repeats", str(repeats), "--max-calls", str(max_calls), "--threads", str(threads), "--out", out_file] + ARGS[package]
    if profile:
        cmd += ["--profile", profile]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), **ENV[package])
    log_path = out_file[:-5] + ".log"
    load_before = wait_quiet(*quiet) if quiet else foreign_load(1.0)
    start = time.time()
    busy0, steal0 = cpu_jiffies()
    seen = 0.0
    killed = False
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=HERE)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid != 0:
                returncode = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
                proc.returncode = returncode
                break
            seen = max(seen, rss_mib(proc.pid))
            if seen > rss_cap_mib and not killed:
                proc.kill()  # only the child this driver started
                killed = True
            time.sleep(0.05)
    wall = time.time() - start
    busy1, steal1 = cpu_jiffies()
    tick = os.sysconf("SC_CLK_TCK")
    child_cpu = usage.ru_utime + usage.ru_stime
    base = {"package": package, "system": system, "dtype": dtype, "alloc": alloc, "warmup": warmup,
            "repeats": repeats, "max_calls": max_calls, "wall_s": wall, "command": " ".join(cmd),
            "child_cpu_s": child_cpu,
            # cores used by everything except the benchmark process, averaged over its lifetime
            "foreign_cores": max(0.0, ((busy1 - busy0) / tick - child_cpu) / wall),
            "steal_cores": (steal1 - steal0) / tick / wall,
            "foreign_cores_before": load_before}
    if proc.returncode == 0 and os.path.exists(out_file):
        with open(out_file) as handle:
            result = json.loads(handle.readline())
        result.update(base, status="ok")
        return result
    with open(log_path) as handle:
        tail = handle.read()[-2000:]
    if killed:
        status = f"over memory cap ({rss_cap_mib / 1024:.0f} GiB RSS)"
    elif proc.returncode in (-9, 137) or "can't allocate memory" in tail or "MemoryError" in tail:
        status = "out of memory"
    else:
        status = f"failed (rc {proc.returncode})"
    base.update(status=status, rc=proc.returncode, peak_rss_mb=seen, log_tail=tail)
    return base


def machine_info():
    def sh(cmd):
        try:
            return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=60).stdout.strip()
        except Exception as error:  # noqa: BLE001 - metadata only
            return f"unavailable ({error})"

    versions = {}
    for package, code in {
        "mlpot": "import mlpot, torch, e3nn, ase, matscipy, torch_geometric, numpy; print(mlpot.__version__, torch.__version__, e3nn.__version__, ase.__version__, matscipy.__version__, torch_geometric.__version__, numpy.__version__)",
        "mace-torch": "import torch, e3nn, ase, matscipy, numpy; from mace.__version__ import __version__; print(__version__, torch.__version__, e3nn.__version__, ase.__version__, matscipy.__version__, '-', numpy.__version__)",
    }.items():
        env = dict(os.environ, **ENV[package])
        out = subprocess.run([PYTHON[package], "-W", "ignore", "-c", code], capture_output=True, text=True, env=env).stdout.split()
        versions[package] = dict(zip([package, "torch", "e3nn", "ase", "matscipy", "torch_geometric", "numpy"], out))
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": sh("nproc"),
        "cpu_model": sh("lscpu | grep 'Model name' | sed 's/.*: *//'"),
        "cpu_family_model": sh("lscpu | grep -E '^(CPU family|Model):' | tr -s ' ' | paste -sd ';'"),
        "hypervisor": sh("lscpu | grep 'Hypervisor vendor' | sed 's/.*: *//'"),
        "memory": sh("free -g | grep Mem | awk '{print $2 \" GiB\"}'"),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": versions,
        "loadavg_start": sh("cat /proc/loadavg"),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke test: two small configurations")
    parser.add_argument("--only", default=None, help="run only configurations of this system")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--rss-cap-gib", type=float, default=22.0)
    parser.add_argument("--quiet-threshold", type=float, default=0.15,
                        help="before each process, wait while other processes use more than this many cores")
    parser.add_argument("--max-wait", type=float, default=600.0, help="longest wait for a quiet machine (s)")
    parser.add_argument("--contended", action="store_true",
                        help="busy shared machine: 1 thread, no waiting, compare CPU time per call (see CONTENDED_PLAN)")
    parser.add_argument("--retries", type=int, default=2,
                        help="repeat a process (up to this often) that got fewer clean timed calls than asked for")
    parser.add_argument("--output", default=None, help="default results.json (results_<tag>.json for --quick/--only)")
    parser.add_argument("--packages", default="mlpot,mace-torch",
                        help="comma-separated: mlpot (fused kernels), mlpot-reference (plain torch), mace-torch")
    args = parser.parse_args()

    base_plan = CONTENDED_PLAN if args.contended else PLAN
    plan = QUICK if args.quick else [p for p in base_plan if args.only in (None, p[0])]
    threads = 1 if args.contended else 2
    quiet = None if args.contended else (args.quiet_threshold, args.max_wait)
    retries = 0 if args.contended else args.retries
    profile = [] if (args.quick or args.no_profile) else [p for p in PROFILE if args.only in (None, p[0])]
    tag = "_".join(t for t in ["quick" if args.quick else None, args.only, "contended" if args.contended else None] if t)
    output = args.output or os.path.join(HERE, f"results_{tag}.json" if tag else "results.json")
    logdir = os.path.join(HERE, "logs_contended" if args.contended else "logs")
    os.makedirs(logdir, exist_ok=True)
    os.makedirs(os.path.join(HERE, "profiles"), exist_ok=True)

    meta = machine_info()
    meta["command"] = " ".join([os.path.relpath(sys.executable)] + sys.argv)
    meta["threads"] = threads
    meta["mode"] = "contended (1 thread, CPU time)" if args.contended else "quiet (2 threads, wall time of clean calls)"
    results, profiles = [], []
    started = time.time()
    for index, (system, dtype, alloc, warmup, repeats, max_calls) in enumerate(plan):
        packages = args.packages.split(",")
        order = packages if index % 2 == 0 else packages[::-1]
        for package in order:
            for attempt in range(1 + retries):
                result = run_one(package, system, dtype, alloc, warmup, repeats, max_calls, args.rss_cap_gib * 1024, logdir,
                                 quiet=quiet, threads=threads)
                result["attempt"] = attempt + 1
                if result["status"] != "ok" or result["clean_calls"] >= repeats or attempt == retries:
                    break
                print(f"    {package} {system} {dtype} {alloc}: only {result['clean_calls']} of {len(result['times_s'])} "
                      "timed calls ran on an idle machine; repeating the process", flush=True)
            results.append(result)
            shown = (f"{result['median_ms']:10.1f} ms (cpu {result['median_cpu_ms']:10.1f} ms)  {result['peak_rss_mb']:8.0f} MB  "
                     f"clean calls {result['clean_calls']}/{len(result['times_s'])}"
                     if result["status"] == "ok" else result["status"])
            print(f"[{time.time() - started:6.0f} s] {package:10s} {system:10s} {dtype} {alloc:7s} {shown}"
                  f"  (other load {result['foreign_cores']:.2f} cores over the process)", flush=True)
    for system, dtype, alloc in profile:
        for package in args.packages.split(","):
            suffix = "_1thread_contended" if args.contended else ""
            path = os.path.join(HERE, "profiles", f"{package}_{system}_{dtype}_{alloc}{suffix}.txt")
            result = run_one(package, system, dtype, alloc, 1, 1, 1 if args.contended else 3, args.rss_cap_gib * 1024,
                             logdir, profile=path, quiet=quiet, threads=threads)
            result["profile_file"] = os.path.relpath(path, HERE)
            profiles.append(result)
            print(f"[{time.time() - started:6.0f} s] profiled {package} {system} {dtype} {alloc}: {result['status']}", flush=True)
    meta["total_wall_s"] = time.time() - started
    meta["loadavg_end"] = open("/proc/loadavg").read().strip()
    with open(output, "w") as handle:
        json.dump({"meta": meta, "results": results, "profiles": profiles}, handle, indent=1)
    print(f"wrote {output} in {meta['total_wall_s'] / 60:.1f} min")


if __name__ == "__main__":
    main()
