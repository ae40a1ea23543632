"""Collect the runs of run.sh into results.json and a markdown table.

    python benchmarks/attention/report.py WORKDIR ethanol aspirin
"""

import csv
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(work: str, molecules: list) -> None:
    rows = []
    for molecule in molecules:
        for kind in ("mace", "attention"):
            run = Path(work) / molecule / f"{kind}-run"
            test = json.loads((run / "test_metrics.json").read_text())
            log = list(csv.DictReader(open(run / "log.csv")))
            speed = json.loads((Path(work) / molecule / f"{kind}-speed.json").read_text())
            rows.append({
                "molecule": molecule, "interaction": kind, "parameters": speed["parameters"], "epochs": len(log),
                "energy_mae_mev": 1e3 * test["energy"]["mae"], "forces_mae_mev_per_a": 1e3 * test["forces"]["mae"],
                "cpu_ms_per_call": speed["cpu_ms_per_call_fused"], "cpu_ms_per_call_reference": speed["cpu_ms_per_call_reference"],
                "peak_rss_mb": speed["peak_rss_mb"],
            })
    (HERE / "results.json").write_text(json.dumps(rows, indent=1))
    print("| molecule | interaction | parameters | epochs in budget | energy MAE (meV) | force MAE (meV/Å) | ms per E+F call, fused / reference | peak RSS (MB) |")
    print("|---|---|---:|---:|---:|---:|---|---:|")
    for r in rows:
        print(f"| {r['molecule']} | {r['interaction']} | {r['parameters']:,} | {r['epochs']} | {r['energy_mae_mev']:.2f} | "
              f"{r['forces_mae_mev_per_a']:.2f} | {r['cpu_ms_per_call']:.1f} / {r['cpu_ms_per_call_reference']:.1f} | {r['peak_rss_mb']:.0f} |")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
