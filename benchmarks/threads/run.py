"""Energy+forces call time with 1 and 2 threads, alone and beside a busy process, old vs new thread policy.

    python benchmarks/threads/run.py [--rounds 3] [--calls 7] [--output run1.json]
    python benchmarks/threads/run.py --combine run1.json run2.json ... [--output results.json]

Policies (mlpot/threads.py), each in its own process since the OpenMP runtime reads the wait
policy once, when torch loads it:
  old  libgomp's default wait: idle threads spin (GOMP_SPINCOUNT=300000, the value libgomp uses
       when no policy is named; naming it also stops ``import mlpot`` from choosing one)
  new  what ``import mlpot`` now does: OMP_WAIT_POLICY=PASSIVE, idle threads sleep
Both run the kernels on torch's thread count (set here with torch.set_num_threads) capped at the
CPUs of the affinity mask; with the whole machine allowed that is the old count too.

"Busy": a ``python -c "while True: pass"`` pinned to this process's CPUs, started before and
killed after each measurement. Each round runs both policies back to back (order alternating);
the table is the median over rounds of each round's median call time.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
POLICIES = {"old": {"GOMP_SPINCOUNT": "300000"}, "new": {}}
CLEARED = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "MLPOT_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
SYSTEMS = ("cuau-108", "cuau-32", "ethanol-member-0")
THREADS = (1, 2)
LOADS = ("alone", "busy")


def build(system: str):
    """(calculator, atoms) for one system, float64 as for MD."""
    from ase.build import bulk, molecule

    from mlpot.calculators import MLPotCalculator
    from mlpot.models.io import load_model

    if system.startswith("cuau"):
        repeat = 3 if system == "cuau-108" else 2
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True) * (repeat, repeat, repeat)
        atoms.symbols[::4] = "Au"
        calculator = MLPotCalculator(ROOT / "models" / "cuau-emt-demo")
    else:
        atoms = molecule("CH3CH2OH")
        member = load_model(ROOT / "models" / "ethanol-rmd17").members[0]
        member.requires_grad_(False)
        calculator = MLPotCalculator(member)
    atoms.rattle(0.02, seed=1)
    atoms.calc = calculator
    return atoms


def start_busy_process(cpus) -> subprocess.Popen:
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    os.sched_setaffinity(busy.pid, cpus)
    time.sleep(0.2)  # let it run before the timing starts
    return busy


def time_calls(atoms, calls: int) -> dict:
    """Median wall and CPU time (all threads of this process) of ``calls`` energy+forces calls after 2 warm-up ones."""
    walls, cpus = [], []
    for index in range(calls + 2):
        atoms.positions[0, 0] += 1e-4  # a new structure each call: no cached results
        wall0, cpu0 = time.perf_counter(), time.process_time()
        atoms.get_potential_energy()
        atoms.get_forces()
        if index >= 2:
            walls.append(time.perf_counter() - wall0)
            cpus.append(time.process_time() - cpu0)
    return {"ms": statistics.median(walls) * 1e3, "cpu_ms": statistics.median(cpus) * 1e3}


def child(policy: str, calls: int) -> None:
    import mlpot  # noqa: F401  (first: it names the wait policy before torch loads its OpenMP runtime)
    import torch

    cpus = os.sched_getaffinity(0)
    rows = []
    for system in SYSTEMS:
        atoms = build(system)
        for threads in THREADS:
            torch.set_num_threads(threads)
            for load in LOADS:
                busy = start_busy_process(cpus) if load == "busy" else None
                try:
                    timing = time_calls(atoms, calls)
                finally:
                    if busy is not None:
                        busy.kill()
                        busy.wait()
                rows.append({"policy": policy, "system": system, "atoms": len(atoms), "threads": threads,
                             "load": load, **timing})
    wait = os.environ.get("OMP_WAIT_POLICY") or f"GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT')}"
    print(json.dumps({"policy": policy, "wait": wait, "cpus": len(cpus), "rows": rows}))


def run_child(policy: str, calls: int) -> dict:
    environment = {name: value for name, value in os.environ.items() if name not in CLEARED}
    environment.update(POLICIES[policy])
    command = [sys.executable, str(Path(__file__).resolve()), "--child", policy, "--calls", str(calls)]
    result = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(f"policy {policy} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def cpu_model() -> str:
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def table(rounds: list) -> str:
    lines = ["| system | atoms | threads | load | old ms | new ms | old/new | old CPU ms | new CPU ms | old ms per round | new ms per round |",
             "|---|---:|---:|---|---:|---:|---:|---:|---:|---|---|"]
    for system in SYSTEMS:
        for threads in THREADS:
            for load in LOADS:
                found = {policy: [row for result in rounds for row in result["rows"] if result["policy"] == policy
                                  and (row["system"], row["threads"], row["load"]) == (system, threads, load)]
                         for policy in POLICIES}
                ms = {policy: statistics.median(row["ms"] for row in found[policy]) for policy in POLICIES}
                cpu = {policy: statistics.median(row["cpu_ms"] for row in found[policy]) for policy in POLICIES}
                each = {policy: ", ".join(f"{row['ms']:.0f}" for row in found[policy]) for policy in POLICIES}
                lines.append(f"| {system} | {found['new'][0]['atoms']} | {threads} | {load} | {ms['old']:.1f} | {ms['new']:.1f} "
                             f"| {ms['old'] / ms['new']:.2f} | {cpu['old']:.1f} | {cpu['new']:.1f} | {each['old']} | {each['new']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=7, help="timed calls per measurement (after 2 warm-up calls)")
    parser.add_argument("--output", default=None, help="write every round's numbers here (JSON)")
    parser.add_argument("--combine", nargs="+", default=None, help="tabulate the rounds of earlier --output files together")
    parser.add_argument("--child", choices=list(POLICIES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.calls)
        return
    if args.combine:
        runs = []
        for path in args.combine:
            with open(path) as handle:
                runs.append(json.load(handle))
        print(table([result for run in runs for result in run["rounds"]]))
        if args.output:
            with open(args.output, "w") as handle:
                json.dump({"runs": runs}, handle, indent=1)
        return
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rounds = []
    for round_index in range(args.rounds):
        order = list(POLICIES) if round_index % 2 == 0 else list(reversed(POLICIES))
        for policy in order:
            result = run_child(policy, args.calls)
            result["round"] = round_index
            rounds.append(result)
            print(f"round {round_index} {policy} ({result['wait']}): "
                  + ", ".join(f"{r['system']}/{r['threads']}t/{r['load']} {r['ms']:.0f}" for r in result["rows"]),
                  flush=True)
    with open("/proc/loadavg") as handle:
        load_average = handle.read().split()[:3]
    print(f"\n{started}, {cpu_model()}, {len(os.sched_getaffinity(0))} CPUs, load average at the end {' '.join(load_average)}")
    print(table(rounds))
    if args.output:
        with open(args.output, "w") as handle:
            json.dump({"started": started, "cpu": cpu_model(), "load_average_end": load_average, "rounds": rounds},
                      handle, indent=1)


if __name__ == "__main__":
    main()
