#!/usr/bin/env python3
"""Markdown tables from results.json (written by run.py): python report.py [results.json]."""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SYSTEM_ORDER = ["ethanol", "water375", "water648", "water3993"]
# Quiet runs compare wall time (median of clean calls); --contended runs compare CPU time.
METRIC = {"ms": "median_ms", "us": "us_per_atom", "label": "ms"}


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


def clean_calls(r):
    """'clean/timed' calls of one run; clean = no other process used > 0.1 core meanwhile."""
    if not r or r["status"] != "ok":
        return "-"
    return f"{r['clean_calls']}/{len(r['times_s'])}"


def main_table(results):
    rows = {}
    for r in results:
        rows.setdefault((r["system"], r["dtype"], r["alloc"]), {})[r["package"]] = r
    keys = sorted(rows, key=lambda k: (SYSTEM_ORDER.index(k[0]), k[1], k[2] != "keep"))
    lines = [
        f"| system | atoms | edges (mlpot / mace) | dtype | allocator | calls | mlpot {METRIC['label']} | mace {METRIC['label']} "
        f"| mlpot {METRIC['label'][:-3]}µs/atom | mace {METRIC['label'][:-3]}µs/atom "
        "| time mlpot/mace | speed-up | mlpot peak RSS MB | mace peak RSS MB | RSS mlpot/mace | mlpot >= mace? (>= 1.5x?) | clean calls mlpot / mace |",
        "|---|---:|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for key in keys:
        pair = rows[key]
        m, c = pair.get("mlpot"), pair.get("mace-torch")
        ok_m = m is not None and m["status"] == "ok"
        ok_c = c is not None and c["status"] == "ok"
        any_ok = m if ok_m else c
        atoms = any_ok["num_atoms"] if any_ok and any_ok.get("num_atoms") else ""
        edges = f"{m['num_edges'] if ok_m else '-'} / {c['num_edges'] if ok_c else '-'}"
        calls = f"{(m or c)['warmup']}+{(m or c)['repeats']}"  # warm-up + clean timed calls asked for
        cell = lambda r, ok, f: f(r) if ok else (r["status"] if r else "missing")  # noqa: E731
        time_ratio = m[METRIC["ms"]] / c[METRIC["ms"]] if ok_m and ok_c else None
        rss_ratio = m["peak_rss_mb"] / c["peak_rss_mb"] if ok_m and ok_c else None
        speedup = 1.0 / time_ratio if time_ratio else None
        if ok_m and not ok_c and "memory" in c["status"]:
            judged = "mlpot runs, mace does not fit"
        else:
            judged = verdict(speedup)
        lines.append(
            f"| {key[0]} | {atoms} | {edges} | {key[1]} | {key[2]} | {calls} "
            f"| {cell(m, ok_m, lambda r: fmt_ms(r[METRIC['ms']]))} | {cell(c, ok_c, lambda r: fmt_ms(r[METRIC['ms']]))} "
            f"| {cell(m, ok_m, lambda r: format(r[METRIC['us']], ',.0f'))} | {cell(c, ok_c, lambda r: format(r[METRIC['us']], ',.0f'))} "
            f"| {f'{time_ratio:.2f}' if time_ratio else '-'} | {f'{speedup:.2f}x' if speedup else '-'} "
            f"| {cell(m, ok_m, lambda r: format(r['peak_rss_mb'], ',.0f'))} "
            f"| {cell(c, ok_c, lambda r: format(r['peak_rss_mb'], ',.0f')) if ok_c else (c['status'] + (', > ' + format(c['peak_rss_mb'], ',.0f') + ' MB seen' if c and c.get('peak_rss_mb') else '') if c else 'missing')} "
            f"| {f'{rss_ratio:.2f}' if rss_ratio else '-'} | {judged} "
            f"| {clean_calls(m)} / {clean_calls(c)} |"
        )
    return "\n".join(lines)


def allocator_table(results):
    """Same package, keep-freed-memory vs glibc default."""
    by = {(r["package"], r["system"], r["dtype"], r["alloc"]): r for r in results if r["status"] == "ok"}
    lines = [
        f"| package | system | dtype | default {METRIC['label']} | keep {METRIC['label']} | default/keep | default RSS MB | keep RSS MB |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for system in SYSTEM_ORDER:
        for dtype in ["float32", "float64"]:
            for package in ["mlpot", "mace-torch"]:
                d, k = by.get((package, system, dtype, "default")), by.get((package, system, dtype, "keep"))
                if not d and not k:
                    continue
                ratio = f"{d[METRIC['ms']] / k[METRIC['ms']]:.2f}" if d and k else "-"
                lines.append(
                    f"| {package} | {system} | {dtype} | {fmt_ms(d[METRIC['ms']]) if d else '-'} | {fmt_ms(k[METRIC['ms']]) if k else '-'} "
                    f"| {ratio} | {format(d['peak_rss_mb'], ',.0f') if d else '-'} | {format(k['peak_rss_mb'], ',.0f') if k else '-'} |"
                )
    return "\n".join(lines)


def spread_table(results):
    lines = ["| package | system | dtype | alloc | timed calls, wall ms (* = other processes used > 0.1 core meanwhile) | same calls, CPU ms |",
             "|---|---|---|---|---|---|"]
    for r in sorted(results, key=lambda r: (SYSTEM_ORDER.index(r["system"]), r["dtype"], r["alloc"], r["package"])):
        if r["status"] == "ok":
            lines.append(f"| {r['package']} | {r['system']} | {r['dtype']} | {r['alloc']} | "
                         + " ".join((f"{t * 1e3:.0f}" if t > 0.1 else f"{t * 1e3:.1f}") + ("*" if load > 0.1 else "")
                                    for t, load in zip(r["times_s"], r["other_load_cores"]))
                         + " | " + " ".join(f"{t * 1e3:.0f}" for t in r["cpu_times_s"]) + " |")
    return "\n".join(lines)


def profile_summary(profiles):
    out = []
    for p in profiles:
        if p["status"] != "ok":
            out.append(f"{p['package']}: {p['status']}")
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
        if r["status"] == "ok":
            params.setdefault(r["package"], set()).add(r["num_params"])
    print(f"Run: {meta['date_utc']}, {meta['total_wall_s'] / 60:.1f} min, {meta.get('mode', '')}; parameters: "
          + ", ".join(f"{k} {sorted(v)}" for k, v in params.items()) + "\n")
    print(main_table(results))
    print("\n### Allocator effect\n")
    print(allocator_table(results))
    print("\n### Every timed call\n")
    print(spread_table(results))
    if data.get("profiles"):
        print("\n### Profiles\n")
        print(profile_summary(data["profiles"]))


if __name__ == "__main__":
    main()
