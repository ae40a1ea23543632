#!/usr/bin/env python3
"""Markdown tables from results.json (written by run.py): python report.py [results.json].

Packages: ``mlpot`` (fused kernels), ``mace-torch`` and, when the run had it, ``mlpot-reference``
(mlpot's plain-PyTorch path). The comparison is mlpot against mace-torch; the reference column
shows what the fused kernels gain over mlpot's own plain-torch path.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SYSTEM_ORDER = ["ethanol", "water375", "water648", "water3993"]
PACKAGE_ORDER = ["mlpot", "mace-torch", "mlpot-reference"]
SHORT = {"mlpot": "mlpot", "mace-torch": "mace", "mlpot-reference": "mlpot-ref"}
# Quiet runs compare wall time (median of clean calls); --contended runs compare CPU time.
METRIC = {"ms": "median_ms", "us": "us_per_atom", "label": "ms"}
# Targets checked in the "Targets" section: (system, dtype, alloc, what, limit).
TARGETS = [
    ("water648", "float32", "keep", "time ratio", 0.25),
    ("ethanol", "float32", "keep", "time ratio", 0.2),
    ("water3993", "float32", "keep", "mlpot peak RSS GB", 5.0),  # GB = 10^9 bytes,
]


def use_cpu_time():
    METRIC.update(ms="median_cpu_ms", us="cpu_us_per_atom", label="CPU ms")


def fmt_ms(value):
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def verdict(speedup):
    if speedup is None:
        return "n/a"
    if speedup >= 1.5:
        return "yes (>= 1.5x)"
    if speedup >= 1.0:
        return "faster, < 1.5x"
    return "**no (slower)**"


def ok(r):
    return r is not None and r["status"] == "ok"


def clean_calls(r):
    """'clean/timed' calls of one run; clean = no other process used > 0.1 core meanwhile."""
    if not ok(r):
        return "-"
    return f"{r['clean_calls']}/{len(r['times_s'])}"


def failed(r):
    """Status text of a run that did not finish (with the peak RSS seen, if it was a memory failure)."""
    if r is None:
        return "missing"
    if r.get("peak_rss_mb") and "memory" in r["status"]:
        return f"{r['status']}, > {r['peak_rss_mb']:,.0f} MB seen"
    return r["status"]


def packages_in(results):
    present = {r["package"] for r in results}
    return [p for p in PACKAGE_ORDER if p in present] + sorted(present - set(PACKAGE_ORDER))


def group(results):
    rows = {}
    for r in results:
        rows.setdefault((r["system"], r["dtype"], r["alloc"]), {})[r["package"]] = r
    keys = sorted(rows, key=lambda k: (SYSTEM_ORDER.index(k[0]), k[1], k[2] != "keep"))
    return rows, keys


def ratio(a, b, field):
    return a[field] / b[field] if ok(a) and ok(b) else None


def main_table(results):
    packages = packages_in(results)
    has_ref = "mlpot-reference" in packages
    rows, keys = group(results)
    label, us = METRIC["label"], METRIC["label"][:-3] + "µs/atom"
    head = (["system", "atoms", "edges", "dtype", "allocator", "calls"]
            + [f"{SHORT[p]} {label}" for p in packages]
            + [f"{SHORT[p]} {us}" for p in packages]
            + ["time mlpot/mace", "speed-up vs mace"]
            + (["fused gain (ref/fused)"] if has_ref else [])
            + [f"{SHORT[p]} peak RSS MiB" for p in packages]
            + ["RSS mlpot/mace", "mlpot >= mace? (>= 1.5x?)", "clean calls " + " / ".join(SHORT[p] for p in packages)])
    align = (["---", "---:", "---", "---", "---", "---"] + ["---:"] * (2 * len(packages) + 2 + has_ref + len(packages) + 1)
             + ["---", "---"])
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    for key in keys:
        by = rows[key]
        m, c, ref = by.get("mlpot"), by.get("mace-torch"), by.get("mlpot-reference")
        first_ok = next((by[p] for p in packages if ok(by.get(p))), None)
        atoms = first_ok["num_atoms"] if first_ok else ""
        edge_counts = {by[p]["num_edges"] for p in packages if ok(by.get(p))}
        edges = " / ".join(str(e) for e in sorted(edge_counts)) if edge_counts else "-"
        if len(edge_counts) > 1:
            edges += " (differ!)"
        any_r = next(by[p] for p in packages if p in by)
        calls = f"{any_r['warmup']}+{any_r['repeats']}"  # warm-up + timed calls asked for
        time_ratio = ratio(m, c, METRIC["ms"])
        speedup = 1.0 / time_ratio if time_ratio else None
        gain = ratio(ref, m, METRIC["ms"])
        rss_ratio = ratio(m, c, "peak_rss_mb")
        judged = "mlpot runs, mace does not fit" if ok(m) and c is not None and "memory" in c["status"] else verdict(speedup)
        cells = [key[0], str(atoms), edges, key[1], key[2], calls]
        cells += [fmt_ms(by[p][METRIC["ms"]]) if ok(by.get(p)) else (by[p]["status"] if p in by else "missing") for p in packages]
        cells += [format(by[p][METRIC["us"]], ",.0f") if ok(by.get(p)) else "-" for p in packages]
        cells += [f"{time_ratio:.2f}" if time_ratio else "-", f"{speedup:.2f}x" if speedup else "-"]
        if has_ref:
            cells.append(f"{gain:.2f}x" if gain else "-")
        cells += [format(by[p]["peak_rss_mb"], ",.0f") if ok(by.get(p)) else failed(by.get(p)) for p in packages]
        cells += [f"{rss_ratio:.2f}" if rss_ratio else "-", judged, " / ".join(clean_calls(by.get(p)) for p in packages)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets_table(results):
    rows, _ = group(results)
    lines = ["| target | value | met? |", "|---|---:|---|"]
    for system, dtype, alloc, what, limit in TARGETS:
        by = rows.get((system, dtype, alloc), {})
        m, c = by.get("mlpot"), by.get("mace-torch")
        name = f"{system} {dtype} {alloc}: {what} <= {limit:g}"
        if what == "time ratio":
            value = ratio(m, c, METRIC["ms"])
            shown = f"{value:.2f} ({1 / value:.2f}x)" if value else "-"
        else:
            value = m["peak_rss_mb"] * 2**20 / 1e9 if ok(m) else None  # peak_rss_mb is MiB (ru_maxrss / 1024)
            shown = f"{value:.2f} GB ({m['peak_rss_mb'] / 1024:.2f} GiB)" if value else "-"
        met = "n/a (not measured)" if value is None else ("**yes**" if value <= limit else "**no**")
        lines.append(f"| {name} | {shown} | {met} |")
    return "\n".join(lines)


def allocator_table(results):
    """Same package, keep-freed-memory vs glibc default."""
    by = {(r["package"], r["system"], r["dtype"], r["alloc"]): r for r in results if ok(r)}
    lines = [
        f"| package | system | dtype | default {METRIC['label']} | keep {METRIC['label']} | default/keep | default RSS MiB | keep RSS MiB |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for system in SYSTEM_ORDER:
        for dtype in ["float32", "float64"]:
            for package in packages_in(results):
                d, k = by.get((package, system, dtype, "default")), by.get((package, system, dtype, "keep"))
                if not d and not k:
                    continue
                rel = f"{d[METRIC['ms']] / k[METRIC['ms']]:.2f}" if d and k else "-"
                lines.append(
                    f"| {package} | {system} | {dtype} | {fmt_ms(d[METRIC['ms']]) if d else '-'} | {fmt_ms(k[METRIC['ms']]) if k else '-'} "
                    f"| {rel} | {format(d['peak_rss_mb'], ',.0f') if d else '-'} | {format(k['peak_rss_mb'], ',.0f') if k else '-'} |"
                )
    return "\n".join(lines)


def spread_table(results):
    lines = ["| package | system | dtype | alloc | timed calls, wall ms (* = other processes used > 0.1 core meanwhile) | same calls, CPU ms |",
             "|---|---|---|---|---|---|"]
    order = {p: i for i, p in enumerate(packages_in(results))}
    for r in sorted(results, key=lambda r: (SYSTEM_ORDER.index(r["system"]), r["dtype"], r["alloc"], order[r["package"]])):
        if ok(r):
            lines.append(f"| {r['package']} | {r['system']} | {r['dtype']} | {r['alloc']} | "
                         + " ".join((f"{t * 1e3:.0f}" if t > 0.1 else f"{t * 1e3:.1f}") + ("*" if load > 0.1 else "")
                                    for t, load in zip(r["times_s"], r["other_load_cores"]))
                         + " | " + " ".join((f"{t * 1e3:.0f}" if t > 0.1 else f"{t * 1e3:.1f}") for t in r["cpu_times_s"]) + " |")
    return "\n".join(lines)


def profile_summary(profiles):
    out = []
    for p in profiles:
        if not ok(p):
            out.append(f"{p['package']}: {failed(p)}\n")
            continue
        out.append(f"**{p['package']}** ({p['system']}, {p['dtype']}, alloc={p['alloc']}; profiled call, "
                   f"sum of self CPU time {p['profile_total_self_ms']:,.0f} ms; full table: `{p['profile_file']}`)\n")
        out.append("| op | self ms | % | calls |\n|---|---:|---:|---:|")
        for e in p["profile_top"][:12]:
            out.append(f"| `{e['op']}` | {e['self_ms']:,.0f} | {100 * e['self_ms'] / p['profile_total_self_ms']:.1f} | {e['calls']} |")
        out.append("")
    return "\n".join(out)


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "results.json")
    with open(path) as handle:
        data = json.load(handle)
    results = data["results"]
    meta = data["meta"]
    if meta.get("threads", 2) == 1:
        use_cpu_time()
    params = {}
    for r in results:
        if ok(r):
            params.setdefault(r["package"], set()).add(r["num_params"])
    print(f"Run: {meta['date_utc']}, {meta['total_wall_s'] / 60:.1f} min, {meta.get('mode', '')}; parameters: "
          + ", ".join(f"{k} {sorted(v)}" for k, v in params.items()) + "\n")
    print(main_table(results))
    print("\n### Targets\n")
    print(targets_table(results))
    print("\n### Allocator effect\n")
    print(allocator_table(results))
    print("\n### Every timed call\n")
    print(spread_table(results))
    if data.get("profiles"):
        print("\n### Profiles\n")
        print(profile_summary(data["profiles"]))


if __name__ == "__main__":
    main()
