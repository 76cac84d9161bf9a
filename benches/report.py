"""Assembles benches/results/REPORT.md from the JSON results of server.py, proxy.py, data.py,
federation.py, fleet.py, access.py, delta.py and size.py (`make bench-size`).

Every row shows ours, the peer's figure and the ratio (how many times better ours is), and the goal
with met / **missed**; a missed goal keeps its row, with the note that says why.
Run: python benches/report.py (after the bench scripts; `make bench` does both).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(os.environ.get("BENCH_OUT", ROOT / "benches" / "results"))
BENCHES = ["server", "proxy", "data", "federation", "fleet", "access", "delta", "size"]
SECTIONS = ["Cold start", "Warm cost", "Throughput", "Latency", "Proxy", "Data", "Delta Lake", "Federation", "Fleet", "Access", "Memory and size",
            "Binary size by crate"]


def number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return f"{text} {unit}".strip()


def ratio(row: dict) -> str:
    ours, peer = row["ours"], row["peer_value"]
    if peer is None or ours <= 0 or peer <= 0:  # e.g. a negative added latency: no meaningful ratio
        return ""
    times = peer / ours if row["better"] == "lower" else ours / peer
    return f"{times:.1f}× better" if times >= 1 else f"{1 / times:.1f}× worse"


def verdict(row: dict) -> str:
    if row["goal"] is None:
        return ""
    return f"{row['goal']}: " + ("met" if row["goal_met"] else "**missed**")


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")
    mem = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), 0)
    return f"{platform.system()} {platform.release()}, {os.cpu_count()} cores ({cpu}), {mem / 1024 / 1024:.0f} GiB"


def main() -> None:
    results = {}
    for name in BENCHES:
        path = OUT / f"{name}.json"
        if path.exists():
            results[name] = json.loads(path.read_text())
    if not results:
        raise SystemExit(f"no results in {OUT}: run the bench scripts first (make bench)")
    rows = [row for result in results.values() for row in result["rows"]]
    # A goal on our own figure may be repeated on one row per peer: count each (measure, goal) once.
    goals = {(row["section"], row["measure"], row["goal"]): row for row in rows if row["goal"] is not None
             and (row["peer"] is None or "peer" not in row["goal"])}
    goals.update({(row["section"], row["measure"], row["goal"], row["peer"]): row for row in rows
                  if row["goal"] is not None and row["peer"] is not None and "peer" in row["goal"]})
    missed = [row for row in goals.values() if not row["goal_met"]]
    met = [row for row in goals.values() if row["goal_met"]]

    lines = [
        "# Benchmark report",
        "",
        f"Generated {datetime.date.today().isoformat()} by `make bench` on {machine()}. "
        "Ours and each peer measured in the same run, on loopback; ratios are how many times better ours is "
        "(lower time or memory, higher throughput). Benchmarks are not tests: a missed goal is reported, not hidden.",
        "",
        "| bench | run time | mode | versions |",
        "| --- | --- | --- | --- |",
    ]
    for name, result in results.items():
        versions = ", ".join(f"{k} {v}" for k, v in result.get("versions", {}).items())
        mode = ("quick" if result.get("quick") else "full") + (f", {result['profile']} build" if "profile" in result else "")
        lines.append(f"| `{name}.py` | {result.get('seconds', 0):.0f} s | {mode} | {versions} |")
    lines += ["", f"**Goals: {len(met)} met, {len(missed)} missed.**", ""]
    if missed:
        lines += ["Missed:", ""]
        lines += [f"- {row['section']}: {row['measure']} = {number(row['ours'], row['unit'])} ({row['goal']}). {row['note']}"
                  for row in missed]
        lines.append("")

    for section in SECTIONS + sorted({row["section"] for row in rows} - set(SECTIONS)):
        section_rows = [row for row in rows if row["section"] == section]
        if not section_rows:
            continue
        lines += [f"## {section}", "", "| measure | ours | peer | peer's | ratio | goal | note |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for row in section_rows:
            lines.append(f"| {row['measure']} | {number(row['ours'], row['unit'])} | {row['peer'] or ''} | "
                         f"{number(row['peer_value'], row['unit']) if row['peer_value'] is not None else ''} | {ratio(row)} | "
                         f"{verdict(row)} | {row['note']} |")
        lines.append("")

    plots = [plot for result in results.values() for plot in result.get("plots", [])]
    if plots:
        lines += ["## Plots", ""] + [f"![{plot}]({plot})" for plot in plots] + [""]
    (OUT / "REPORT.md").write_text("\n".join(lines))
    print(f"report.py: wrote {OUT / 'REPORT.md'} ({len(rows)} rows, {len(met)} goals met, {len(missed)} missed)")


if __name__ == "__main__":
    main()
