"""results.jsonl of run.sh -> the markdown tables of benchmarks/gpu/README.md."""

import json
import sys


def gb(row):
    return "-" if not row or row.get("peak_device_gb") is None else f"{row['peak_device_gb']:.2f}"


def ms(row):
    return "-" if not row else f"{row['median_ms']:.2f}"


def main(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    by = {(r["package"], r["what"], r["system"], r.get("kernel")): r for r in rows}
    print("| system | atoms | edges | mlpot ms | mace-torch ms | mlpot / mace | mlpot GB | mace GB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if r["package"] != "mlpot" or r["what"] != "call" or r["kernel"] != "fused":
            continue
        mace = by.get(("mace-torch", "call", r["system"], "e3nn"))
        ratio = f"{r['median_ms'] / mace['median_ms']:.2f}" if mace else "-"
        print(f"| {r['system']} | {r['num_atoms']} | {r['num_edges']} | {ms(r)} | {ms(mace)} | {ratio} | {gb(r)} | {gb(mace)} |")
    print("\n| training step | mlpot ms | mlpot configs/s | mace-torch configs/s |")
    print("|---|---:|---:|---:|")
    for r in rows:
        if r["package"] == "mlpot" and r["what"] == "train":
            mace = by.get(("mace-torch", "train", r["system"], "e3nn"))
            other = f"{mace['configs_per_s']:.0f}" if mace else "-"
            print(f"| {r['system']} | {ms(r)} | {r['configs_per_s']:.0f} | {other} |")
    print("\n| other | ms |")
    print("|---|---:|")
    for r in rows:
        if r["package"] == "mlpot" and (r["what"] == "calculator" or r["kernel"] == "reference"):
            print(f"| {r['what']} {r['system']} ({r['kernel']}) | {ms(r)} |")


if __name__ == "__main__":
    main(sys.argv[1])
