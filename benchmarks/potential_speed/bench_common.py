"""Timing harness shared by run_mlpot.py and run_mace.py (one structure, dtype, allocator per process).

The runner supplies ``setup(atoms, dtype)`` returning a dict with ``call`` (a no-argument
function doing one energy+forces evaluation and returning (energy, forces)), ``num_edges``,
``num_params`` and ``avg_num_neighbors``. This module does everything else identically for
both packages: allocator tuning, threads, warm-up, timing, peak RSS, optional profile.
"""

import argparse
import ctypes
import ctypes.util
import json
import os
import platform
import resource
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--system", required=True)
    parser.add_argument("--dtype", choices=["float32", "float64"], required=True)
    parser.add_argument("--alloc", choices=["default", "keep"], required=True,
                        help="keep: glibc mallopt(M_MMAP_MAX=0, M_TRIM_THRESHOLD=2^62) before anything runs")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clean-load", type=float, default=0.1,
                        help="a timed call counts as clean when other processes used at most this many cores during it")
    parser.add_argument("--max-calls", type=int, default=None,
                        help="stop after this many timed calls even without --repeats clean ones (default 3 x repeats)")
    parser.add_argument("--profile", default=None, help="write a torch.profiler table of one extra call here")
    parser.add_argument("--out", default=None, help="append the JSON result line to this file")
    parser.add_argument("--kernel", default="auto", choices=["auto", "fused", "reference"],
                        help="mlpot's execution path (mace-torch ignores it)")
    return parser.parse_args()


def mallopt_keep_freed_memory() -> bool:
    """The same two mallopt calls as mlpot.allocator.keep_freed_memory, for the mace runner."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    return bool(libc.mallopt(-4, 0)) and bool(libc.mallopt(-1, 2**62))  # M_MMAP_MAX, M_TRIM_THRESHOLD


TICK = os.sysconf("SC_CLK_TCK")


def busy_ticks() -> int:
    """Non-idle jiffies of all CPUs (steal included), from /proc/stat."""
    with open("/proc/stat") as handle:
        user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in handle.readline().split()[1:9])
    return user + nice + system + irq + softirq + steal


def timed_call(call):
    """Run call(); return (result, wall s, own CPU s of all threads, cores used by other processes meanwhile).

    Other processes' CPU = all CPUs' busy time minus this process's (all threads), both at
    clock-tick resolution (1/TICK s), so the load of a call shorter than a few ticks is rough.
    """
    busy0, self0, cpu0 = busy_ticks(), os.times(), time.process_time()
    t = time.perf_counter()
    out = call()
    wall = time.perf_counter() - t
    busy1, self1, cpu1 = busy_ticks(), os.times(), time.process_time()
    own = (self1.user - self0.user) + (self1.system - self0.system)
    others = max(0.0, (busy1 - busy0) / TICK - own)
    # Allow two ticks of rounding before calling a short call contended.
    return out, wall, cpu1 - cpu0, max(0.0, others - 2.0 / TICK) / wall


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def run(package: str, version: str, setup, args: argparse.Namespace, alloc_applied: bool) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    from systems import R_MAX, get_system

    atoms = get_system(args.system)
    dtype = {"float32": torch.float32, "float64": torch.float64}[args.dtype]
    rss_before_setup = peak_rss_mb()
    t0 = time.perf_counter()
    bench = setup(atoms, dtype, R_MAX)
    setup_s = time.perf_counter() - t0
    call = bench["call"]
    rss_after_setup = peak_rss_mb()

    warm = []
    for _ in range(args.warmup):
        (energy, forces), wall, _, _ = timed_call(call)
        warm.append(wall)
    # Time calls until --repeats of them ran on an otherwise idle machine (the machine is shared:
    # with 2 OpenMP threads on 2 cores, another busy process stalls every parallel region).
    max_calls = args.max_calls or 3 * args.repeats
    times, cpus, loads = [], [], []
    while len(times) < max_calls and sum(load <= args.clean_load for load in loads) < args.repeats:
        (energy, forces), wall, cpu, load = timed_call(call)
        times.append(wall)
        cpus.append(cpu)
        loads.append(load)
    clean = [t for t, load in zip(times, loads) if load <= args.clean_load]
    used = clean if len(clean) >= args.repeats else times  # not enough clean calls: all of them, flagged
    median = statistics.median(used)
    result = {
        "package": package,
        "version": version,
        "system": args.system,
        "num_atoms": len(atoms),
        "num_edges": int(bench["num_edges"]),
        "avg_num_neighbors": bench["avg_num_neighbors"],
        "num_params": int(bench["num_params"]),
        "kernel": bench.get("kernel"),  # mlpot: the path that ran (fused or reference)
        "dtype": args.dtype,
        "alloc": args.alloc,
        "alloc_applied": alloc_applied,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "warmup_s": warm,
        "times_s": times,
        "other_load_cores": loads,
        "clean_calls": len(clean),
        "median_of": "clean calls" if used is clean else "all calls (too few clean ones)",
        "median_ms": median * 1e3,
        "min_ms": min(times) * 1e3,
        "median_all_ms": statistics.median(times) * 1e3,
        # CPU time of this process (all threads, CLOCK_PROCESS_CPUTIME_ID): with one thread it is a
        # measure of the work that other processes on the machine hardly disturb.
        "cpu_times_s": cpus,
        "median_cpu_ms": statistics.median(cpus) * 1e3,
        "cpu_us_per_atom": statistics.median(cpus) * 1e6 / len(atoms),
        "us_per_atom": median * 1e6 / len(atoms),
        "peak_rss_mb": peak_rss_mb(),
        "rss_after_setup_mb": rss_after_setup,
        "rss_before_setup_mb": rss_before_setup,
        "setup_s": setup_s,
        "energy": float(energy.detach().sum()),
        "forces_dtype": str(forces.dtype),
        "max_abs_force": float(forces.detach().abs().max()),
        # Translation invariance: the net force must vanish (round-off only).
        "max_abs_net_force": float(forces.detach().double().sum(0).abs().max()),
        "python": platform.python_version(),
    }
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU], record_shapes=True, profile_memory=True) as prof:
            call()
        averages = prof.key_averages()
        total_us = sum(e.self_cpu_time_total for e in averages)
        with open(args.profile, "w") as handle:
            handle.write(f"# {package} {version}, {args.system} ({len(atoms)} atoms, {result['num_edges']} edges), "
                         f"{args.dtype}, alloc={args.alloc}, one profiled call; sum of self CPU = {total_us / 1e3:.1f} ms\n\n")
            handle.write(averages.table(sort_by="self_cpu_time_total", row_limit=30, max_name_column_width=40))
            handle.write("\n\n# grouped by input shape\n\n")
            handle.write(prof.key_averages(group_by_input_shape=True).table(
                sort_by="self_cpu_time_total", row_limit=30, max_name_column_width=30, max_shapes_column_width=80))
        result["profile_total_self_ms"] = total_us / 1e3
        result["profile_top"] = [
            {"op": e.key, "self_ms": e.self_cpu_time_total / 1e3, "calls": e.count}
            for e in sorted(averages, key=lambda e: -e.self_cpu_time_total)[:15]
        ]
    line = json.dumps(result)
    print(line)
    if args.out:
        with open(args.out, "a") as handle:
            handle.write(line + "\n")
    return result
