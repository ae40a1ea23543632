"""MD throughput through ASE, mlpot's calculator against mace-torch's, same machine, same run.

    MACE_VENV=/path/to/mace-venv python benchmarks/md_throughput/run.py [--rounds 3] [--output results.json]

Each round runs both engines on each system, one after the other, each in a fresh process with
one thread (OMP_NUM_THREADS=1); the ratio is taken within a round and the median over rounds is
reported, so load that changes between rounds cancels out.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SYSTEMS = {"ethanol": 200, "water1029": 10}


def measure(engine: str, system: str, steps: int) -> dict:
    environment = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    python = sys.executable
    if engine == "mace":
        python = str(Path(os.environ["MACE_VENV"]) / "bin" / "python")
        environment["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    result = subprocess.run([python, str(HERE / "run_engine.py"), engine, system, str(steps)], capture_output=True, text=True, env=environment)
    if result.returncode != 0:
        raise SystemExit(f"{engine} {system} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    rows = []
    for round_index in range(args.rounds):
        for system, steps in SYSTEMS.items():
            pair = {engine: measure(engine, system, steps) for engine in ("mlpot", "mace")}
            rows.append({"round": round_index, "system": system, **pair})
            speedup = pair["mace"]["s_per_step"] / pair["mlpot"]["s_per_step"]
            print(f"round {round_index} {system:10s} mlpot {pair['mlpot']['steps_per_s']:8.2f} steps/s  "
                  f"mace {pair['mace']['steps_per_s']:8.2f} steps/s  mlpot/mace speed {speedup:5.2f}", flush=True)
    summary = {}
    for system in SYSTEMS:
        mine = [r for r in rows if r["system"] == system]
        summary[system] = {
            "atoms": mine[0]["mlpot"]["atoms"],
            "mlpot_steps_per_s": statistics.median(r["mlpot"]["steps_per_s"] for r in mine),
            "mace_steps_per_s": statistics.median(r["mace"]["steps_per_s"] for r in mine),
            "mlpot_ns_per_day": statistics.median(r["mlpot"]["ns_per_day"] for r in mine),
            "mace_ns_per_day": statistics.median(r["mace"]["ns_per_day"] for r in mine),
            "speed_ratio_median": statistics.median(r["mace"]["s_per_step"] / r["mlpot"]["s_per_step"] for r in mine),
            "mlpot_peak_rss_mb": max(r["mlpot"]["peak_rss_mb"] for r in mine),
            "mace_peak_rss_mb": max(r["mace"]["peak_rss_mb"] for r in mine),
        }
    print(json.dumps(summary, indent=2))
    if args.output:
        Path(args.output).write_text(json.dumps({"rows": rows, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
