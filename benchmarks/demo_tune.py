"""Tune demo (c) (few-shot classification) per method on the VALIDATION split, and print the grid.

Each grid point is one `vrft demo` run of experiment (c) only, on `eval.split=val`, with one SFT
setting and one Visual-RFT setting (learning rate, optimizer steps; `experiments.classification.*`),
over the demo's seeds and shots. The two methods never share anything but the base and the few-shot
sets, so one run scores one setting of each. The first point is today's defaults (both 5e-5, 40
steps): its training CPU seconds are the compute budget a tuned setting must stay within.

    python benchmarks/demo_tune.py run --out DIR [--deadline HH:MM] [-- extra demo key=value]
    python benchmarks/demo_tune.py table DIR

`run` starts no new point after `--deadline` (UTC) minus the slowest point so far. `table` prints,
per method and setting: accuracy mean ± sd over seeds for every k, their average (the pick), and its
share of today's compute budget (optimizer steps x seconds per step of that method, measured at the
defaults; the two methods' shares of a pair must sum to <= 1). The test split is not read here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# (SFT learning rate, SFT steps, Visual-RFT learning rate, Visual-RFT steps); the first: today's defaults
GRID: list[tuple[float, int, float, int]] = [
    (5e-5, 40, 5e-5, 40),
    (2e-5, 40, 1e-3, 40),
    (5e-5, 20, 1e-4, 40),
    (1e-4, 20, 2e-4, 20),
    (5e-5, 60, 5e-4, 40),
    (1e-4, 40, 2e-3, 40),
    # second round, around each method's best of the first
    (1e-4, 30, 2e-4, 30),
    (2e-4, 10, 4e-4, 20),
    (1e-4, 10, 2e-4, 10),
    (7e-5, 40, 1e-4, 20),
    (5e-5, 30, 3e-4, 30),
    (2e-4, 20, 1e-4, 30),
]


def _name(p: tuple[float, int, float, int]) -> str:
    return f"sft{p[0]:g}x{p[1]}-rft{p[2]:g}x{p[3]}"


def run(out: Path, deadline: str | None, extra: list[str]) -> int:
    out.mkdir(parents=True, exist_ok=True)
    slowest = 0.0
    for point in GRID:
        d = out / _name(point)
        if (d / "results.json").is_file():
            continue
        if deadline:
            now = dt.datetime.now(dt.UTC)
            end = now.replace(hour=int(deadline[:2]), minute=int(deadline[3:]), second=0, microsecond=0)
            if now.timestamp() + slowest > end.timestamp():
                print(f"{_name(point)}: skipped (would end after {deadline} UTC)", flush=True)
                continue
        args = [sys.executable, "-m", "vrft.cli", "demo", "--out", str(d), "threads=1", "eval.split=val",
                "experiments.run=[fewshot_classification]",
                f"experiments.classification.sft.learning_rate={point[0]}",
                f"experiments.classification.sft.steps={point[1]}",
                f"experiments.classification.rft.learning_rate={point[2]}",
                f"experiments.classification.rft.steps={point[3]}", *extra]  # fmt: skip
        t0, before = time.perf_counter(), os.times()
        with open(out / f"{_name(point)}.log", "w", encoding="utf-8") as fh:
            rc = subprocess.call(args, stdout=fh, stderr=subprocess.STDOUT)
        after = os.times()
        wall = time.perf_counter() - t0
        cpu = after.children_user - before.children_user + after.children_system - before.children_system
        slowest = max(slowest, wall)
        (out / f"{_name(point)}.time.json").write_text(json.dumps({"wall": wall, "cpu": cpu, "rc": rc}) + "\n")
        print(f"{_name(point)}: rc {rc}, {wall:.0f} s wall, {cpu:.0f} CPU s", flush=True)
    return 0


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {sd:.1f}"


def table(out: Path) -> int:
    # (method, lr, steps) -> {k: [accuracy per seed]}, [train seconds per run]
    acc: dict[tuple[str, float, int], dict[int, list[float]]] = {}
    secs: dict[tuple[str, float, int], list[float]] = {}
    for results in sorted(out.glob("*/results.json")):
        settings = json.loads((results.parent / "settings.json").read_text())
        own = settings["experiments"]["classification"]
        for r in json.loads(results.read_text())["runs"]:
            if r["method"] not in ("sft", "rft") or r.get("accuracy") is None:
                continue
            m = r["method"]
            key = (m, own[m]["learning_rate"] or settings[m]["learning_rate"], r["steps"])
            acc.setdefault(key, {}).setdefault(r["shots"], []).append(r["accuracy"])
            secs.setdefault(key, []).append(r["train_seconds"])
    if not acc:
        print(f"no results under {out}")
        return 1
    shots = sorted({k for per in acc.values() for k in per})
    # compute: seconds per optimizer step of each method at today's defaults (the first grid point; wall
    # times of later points depend on the machine's load), as a share of today's (seed, k) budget
    step_s = {m: statistics.mean(secs.get((m, 5e-5, 40), [math.nan])) / 40 for m in ("sft", "rft")}
    budget = 40 * (step_s["sft"] + step_s["rft"])
    print("| method | learning rate | steps | " + " | ".join(f"{k}-shot" for k in shots)
          + " | average | share of today's budget | train s per run (wall) |")  # fmt: skip
    print("|---|---:|---:|" + "---:|" * (len(shots) + 3))
    for key in sorted(acc):
        per = acc[key]
        means = [statistics.mean(per[k]) for k in shots if per.get(k)]
        avg = f"{statistics.mean(means):.1f}" if len(means) == len(shots) else "-"
        cells = " | ".join(_mean_sd(per.get(k, [])) for k in shots)
        name = "SFT" if key[0] == "sft" else "Visual-RFT"
        share = key[2] * step_s[key[0]] / budget
        print(f"| {name} | {key[1]:g} | {key[2]} | {cells} | {avg} | {share:.2f} | {statistics.mean(secs[key]):.1f} |")
    print(f"\nToday's budget per (seed, k): {budget:.1f} s of training (SFT {40 * step_s['sft']:.1f} s + "
          f"Visual-RFT {40 * step_s['rft']:.1f} s, 40 steps each); a pair of settings fits when its shares sum to <= 1.")
    for t in sorted(out.glob("*.time.json")):
        v = json.loads(t.read_text())
        print(f"{t.name[: -len('.time.json')]}: {v['wall']:.0f} s wall, {v['cpu']:.0f} CPU s, rc {v['rc']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--out", required=True, type=Path)
    r.add_argument("--deadline", help="HH:MM UTC: start no point that would end later")
    r.add_argument("extra", nargs="*", help="extra `vrft demo` key=value settings")
    t = sub.add_parser("table")
    t.add_argument("out", type=Path)
    a = p.parse_args(argv)
    return run(a.out, a.deadline, a.extra) if a.cmd == "run" else table(a.out)


if __name__ == "__main__":
    sys.exit(main())
