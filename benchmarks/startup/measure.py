"""Wall time of ``mlpot --help``, ``mlpot --version`` and ``mlpot COMMAND --help``, for this
checkout and, side by side, another one (an older commit checked out with ``git worktree add``).

    python benchmarks/startup/measure.py --before /tmp/before [--after /tmp/after] [--runs 5]

Both trees run through this environment's ``mlpot`` console script, with the tree first on
PYTHONPATH, one thread per process (OMP_NUM_THREADS=1), from an empty working directory. Runs of
the two trees alternate, so both see the same machine load. Prints a Markdown table of medians.
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

HERE_TREE = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(HERE_TREE))

from mlpot.cli.main import SUBCOMMANDS  # noqa: E402  (light: standard library only)


def wall_seconds(tree: Path, argv: List[str], workdir: str) -> Optional[float]:
    """Seconds one ``mlpot ARGV`` takes with ``tree`` first on the path; None if it fails."""
    script = Path(sys.executable).parent / "mlpot"
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    started = time.perf_counter()
    result = subprocess.run([str(script), *argv], cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    return seconds if result.returncode == 0 else None


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True, help="the other checkout (e.g. git worktree add /tmp/before COMMIT)")
    parser.add_argument("--after", type=Path, default=HERE_TREE, help="the checkout to compare (default: this one)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    commands = [["--help"], ["--version"]] + [[name, "--help"] for name in SUBCOMMANDS]
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    times: Dict[str, Dict[str, List[Optional[float]]]] = {name: {" ".join(argv): [] for argv in commands} for name in trees}
    with tempfile.TemporaryDirectory() as workdir:
        for _ in range(args.runs):
            for argv in commands:
                for name, tree in trees.items():
                    times[name][" ".join(argv)].append(wall_seconds(tree, argv, workdir))

    def median(samples: List[Optional[float]]) -> str:
        return "fails" if None in samples else f"{statistics.median(samples):.2f}"

    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"{time.strftime('%Y-%m-%d %H:%M %Z')}, {cpu_model()}, {os.cpu_count()} CPUs, load average {load} at the end, "
          f"Python {platform.python_version()}, median of {args.runs} runs, seconds")
    print()
    print("| command | before | after |")
    print("|---|---:|---:|")
    for argv in commands:
        key = " ".join(argv)
        print(f"| `mlpot {key}` | {median(times['before'][key])} | {median(times['after'][key])} |")


if __name__ == "__main__":
    main()
