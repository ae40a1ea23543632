#!/usr/bin/env python3
"""Markdown tables of a run.py result file: python benchmarks/mace_import/report.py results.json"""

import json
import sys


def seconds(side: dict, key: str) -> str:
    return f"{side[key]:.3g}" if side["status"] == "ok" else "-"


def mib_text(mib: float) -> str:
    return f"{mib / 1024:.2f} GiB" if mib >= 1024 else f"{mib:.0f} MiB"


def memory(side: dict) -> str:
    if side["status"] == "ok":
        return mib_text(side["peak_rss_mib"])
    return f"> {mib_text(side['peak_rss_mib'])}, {side['status']}"


def mace_not_run(rows: list, row: dict, atoms: int) -> str:
    """A mace-torch side left out: its peak estimated from the largest structure it ran with this model and dtype,
    the memory above what it held after loading the model scaled by the number of atoms."""
    ran = [r for r in rows if (r["model"], r["dtype"]) == (row["model"], row["dtype"]) and r["mace-torch"]["status"] == "ok"]
    if not ran:
        return "not run"
    largest = max(ran, key=lambda r: r["mace-torch"]["num_atoms"])["mace-torch"]
    grown = (largest["peak_rss_mib"] - largest["rss_after_setup_mib"]) * atoms / largest["num_atoms"]
    return f"not run: ≈ {mib_text(largest['rss_after_setup_mib'] + grown)} ({largest['system']}'s peak scaled)"


def ratio(row: dict, key: str) -> str:
    ours, theirs = row["mlpot"], row["mace-torch"]
    if ours["status"] != "ok" or theirs["status"] != "ok":
        return "-"
    return f"{ours[key] / theirs[key]:.2f}"


def agreement(row: dict) -> str:
    found = row.get("agreement")
    if not found:
        return "- | - | -"
    stress = f"{found['stress_rel']:.1e}" if "stress_rel" in found else "-"
    return f"{found['energy_rel']:.1e} | {found['forces_max_abs']:.1e} ({found['forces_rel']:.1e}) | {stress}"


def main() -> None:
    with open(sys.argv[1]) as handle:
        data = json.load(handle)
    meta = data["meta"]
    print(f"{meta['date_utc']}; {meta['cpu_model']} ({meta['cpu_family_model']}), {meta['nproc']} cores, "
          f"{meta['hypervisor']} guest, {meta['memory']}; load average at start {meta['loadavg_start']}, "
          f"at end {meta['loadavg_end']}; run took {meta['total_wall_s'] / 60:.1f} min; mlpot at {meta['mlpot_commit']}.")
    print(f"Versions: {json.dumps(meta['versions'])}\n")
    for model in data["models"]:
        print(f"- {model['model']}: {model['channels']} channels, {model['num_elements']} elements, "
              f"{model['num_params']:,} parameters, avg_num_neighbors {model['avg_num_neighbors']:.1f}; "
              f"mace file {model['file_mb']:.0f} MB, mlpot file {model['mlpot_file_mb']:.0f} MB, "
              f"`{model['import_command']}` {model['import_s']:.0f} s")
    print()
    print("| model | system | atoms | dtype | mlpot CPU s/call | mace CPU s/call | CPU time mlpot/mace | "
          "wall mlpot/mace | mlpot peak RSS | mace peak RSS | memory mlpot/mace | ΔE rel. | ΔF eV/Å (rel.) | Δσ rel. |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in data["rows"]:
        ours, theirs = row["mlpot"], row["mace-torch"]
        atoms = next(side["num_atoms"] for r in data["rows"] if r["system"] == row["system"]
                     for side in (r["mlpot"], r["mace-torch"]) if side["status"] == "ok")
        theirs_memory = mace_not_run(data["rows"], row, atoms) if theirs["status"] == "not run" else memory(theirs)
        print(f"| {row['model']} | {row['system']} | {atoms} | {row['dtype']} | {seconds(ours, 'median_cpu_s')} | "
              f"{seconds(theirs, 'median_cpu_s')} | **{ratio(row, 'median_cpu_s')}** | {ratio(row, 'median_wall_s')} | "
              f"{memory(ours)} | {theirs_memory} | **{ratio(row, 'peak_rss_mib')}** | {agreement(row)} |")
    print("\nΔE rel. = |ΔE| / |E|; ΔF = max |ΔF| over atoms and components, rel. = over max |F|; "
          "Δσ rel. = max |Δσ| / max |σ| (Voigt stress, periodic cells).")
    print("\nfloat32 against mace-torch's float64 (|ΔE|/|E|, max |ΔF| / max |F|):\n")
    print("| model | system | mlpot float32 | mace-torch float32 |")
    print("|---|---|---|---|")
    for row in data["rows"]:
        against = row.get("against_mace_float64")
        if against:
            cells = [f"{against[p]['energy_rel']:.1e}, {against[p]['forces_rel']:.1e}" if p in against else "-"
                     for p in ("mlpot", "mace-torch")]
            print(f"| {row['model']} | {row['system']} | {cells[0]} | {cells[1]} |")
    print("\nEvery timed call (CPU s; wall s):\n")
    for row in data["rows"]:
        for package in ("mlpot", "mace-torch"):
            side = row[package]
            if side["status"] == "ok":
                calls = ", ".join(f"{c:.3g}" for c in side["cpu_s"])
                walls = ", ".join(f"{w:.3g}" for w in side["wall_s"])
                print(f"- {row['model']} {row['system']} {row['dtype']} {package}: {calls}; wall {walls}")


if __name__ == "__main__":
    main()
