"""Wall time of `vrft demo` against its budgets (2-core CPU machine):

- full run (every experiment and seed) from the shipped base: at most 15 minutes;
- `--quick`: at most 3 minutes;
- `tools`: the tools experiment alone (`vrft demo experiments.run=[tools]`, not in the default run; the
  README states its cost): at most 10 minutes;
- `build`: rebuilding the base from nothing (`vrft demo build-base --out DIR`): at most 60 minutes.

Each scenario runs `vrft` as a subprocess (a fresh Python, as a user would) with its own output
directory (the rebuilt base goes there, not into the package). The machine may be shared, so the load
average before and after each run and the CPU seconds the run itself used are printed with it: on a
loaded machine, wall time over-states what a dedicated 2-core machine needs.

    python benchmarks/demo_budget.py [--scenarios full,quick,tools,build] [--keep DIR] [-- extra demo args]

Prints one Markdown table: scenario, wall seconds, budget, within budget, load before / after, and the
novel-class mAP table of the last full run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGETS = {"full": 15 * 60, "quick": 3 * 60, "tools": 10 * 60, "build": 60 * 60}


def _load() -> str:
    try:
        return " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "?"


def _run(args: list[str], log: Path) -> tuple[float, int, float]:
    """(wall seconds, exit code, CPU seconds of the child)."""
    t0 = time.perf_counter()
    before = os.times()
    with open(log, "w", encoding="utf-8") as fh:
        rc = subprocess.call(args, stdout=fh, stderr=subprocess.STDOUT)
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return time.perf_counter() - t0, rc, cpu


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenarios", default="full,quick", help="comma-separated: full, quick, tools, build")
    p.add_argument("--keep", help="write outputs here (default: a temporary directory, removed)")
    p.add_argument("extra", nargs="*", help="extra `vrft demo` arguments (key=value settings)")
    a = p.parse_args(argv)
    scenarios = [s for s in a.scenarios.split(",") if s]
    unknown = [s for s in scenarios if s not in BUDGETS]
    if unknown:
        p.error(f"unknown scenarios {unknown}; choose from {', '.join(BUDGETS)}")
    root = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="vrft-demo-budget-"))
    root.mkdir(parents=True, exist_ok=True)
    vrft = [sys.executable, "-m", "vrft.cli", "demo"]
    rows = []
    try:
        for s in scenarios:
            out = root / f"out-{s}"
            if s == "build":
                cmd = [*vrft, "build-base", "--out", str(out)]
            else:
                cmd = [*vrft, "--out", str(out), *(["--quick"] if s == "quick" else []),
                       *(["experiments.run=[tools]"] if s == "tools" else []), *a.extra]  # fmt: skip
            before = _load()
            seconds, rc, cpu = _run(cmd, root / f"{s}.log")
            rows.append((s, seconds, rc, cpu, before, _load(), out))
            print(f"{s}: {seconds:.0f} s (exit {rc}); log {root / f'{s}.log'}", file=sys.stderr, flush=True)
        print(f"`vrft demo` budgets, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs\n")
        print("| scenario | wall s | CPU s | budget s | within | exit | load 1/5/15 min before | after |")
        print("|---|---:|---:|---:|---|---:|---|---|")
        for s, seconds, rc, cpu, before, after, _ in rows:
            ok = "yes" if rc == 0 and seconds <= BUDGETS[s] else "NO"
            print(f"| {s} | {seconds:.0f} | {cpu:.0f} | {BUDGETS[s]} | {ok} | {rc} | {before} | {after} |")
        for s, *_, out in rows:
            md = out / ("README.md" if s == "build" else "results.md")
            if md.is_file():
                print(f"\n### {s}: {md}\n")
                print(md.read_text(encoding="utf-8"))
    finally:
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0 if all(r[2] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
