"""Collect the rMD17 ethanol results of run.sh into results.json and a markdown table.

    python benchmarks/rmd17_ethanol/report.py WORKDIR
"""

import csv
import json
import re
import sys
from pathlib import Path


def mlpot_results(work: Path) -> dict:
    metrics = json.loads((work / "mlpot-run" / "test_metrics.json").read_text())
    rows = list(csv.DictReader(open(work / "mlpot-run" / "log.csv")))
    return {
        "energy_mae_meV": 1000 * metrics["energy"]["mae"],
        "forces_mae_meV_per_A": 1000 * metrics["forces"]["mae"],
        "epochs": len(rows),
        "train_minutes": float(rows[-1]["elapsed_s"]) / 60,
    }


def mace_results(work: Path) -> dict:
    log = (work / "mace-eval.log").read_text()
    tables = log.split("Error-table on TEST:")
    if len(tables) < 2:
        raise SystemExit(f"no test table in {work / 'mace-eval.log'}")
    rows = [line for line in tables[-1].splitlines() if line.startswith("|") and "MAE E" not in line]
    row = rows[0]  # the table after the last "Error-table on TEST" (stage two when it ran)
    cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
    train_log = (work / "mace-train.log").read_text()
    epochs = [int(e) for e in re.findall(r"Epoch (\d+)", train_log)]
    return {
        "energy_mae_meV": float(cells[1]),
        "forces_mae_meV_per_A": float(cells[2]),
        "epochs": (max(epochs) + 1) if epochs else None,
        "evaluated_stage": "two" if "Loaded Stage two model" in log else "one",
    }


def main() -> None:
    work = Path(sys.argv[1])
    results = {"mlpot": mlpot_results(work), "mace-torch": mace_results(work)}
    (work / "results.json").write_text(json.dumps(results, indent=2))
    print("| package | epochs in budget | energy MAE (meV) | force MAE (meV/Å) |")
    print("|---|---:|---:|---:|")
    for name, values in results.items():
        print(f"| {name} | {values['epochs']} | {values['energy_mae_meV']:.2f} | {values['forces_mae_meV_per_A']:.2f} |")
    ratio = results["mace-torch"]["forces_mae_meV_per_A"] / results["mlpot"]["forces_mae_meV_per_A"]
    print(f"\nforce MAE mace-torch / mlpot = {ratio:.2f}")


if __name__ == "__main__":
    main()
