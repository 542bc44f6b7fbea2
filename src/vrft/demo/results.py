"""What the demo writes: results.json, results.md, the PNG plots and the HTML report.

``results.json`` is exactly ``{"rows": [...]}``; each row has ``method`` ("baseline" | "sft" | "rft"),
``shots`` (k; 0 for the baseline, the warm start that saw no novel image), ``task`` ("detection") and
``novel_mAP`` (COCO mAP@[.5:.95] on the held-out novel test set, 0..100), plus extra keys (AP50,
per-class AP, parse failures, training and evaluation seconds).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

METHOD_NAMES: dict[str, str] = {"baseline": "baseline (warm start)", "sft": "SFT", "rft": "Visual-RFT"}


def result_row(method: str, shots: int, metrics: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """One row of results.json from `evaluate_model`'s metrics."""
    det = metrics["detection"]
    return {
        "method": method,
        "shots": int(shots),
        "task": "detection",
        "novel_mAP": _num(det.get("mAP")),
        "novel_AP50": _num(det.get("AP50")),
        "per_class_AP": {k: _num(v) for k, v in (det.get("per_class_AP") or {}).items()},
        "parse_fail": _num(det.get("parse_fail")),
        "eval_seconds": metrics.get("seconds"),
        **extra,
    }


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return round(f, 2) if math.isfinite(f) else None


def write_results_json(rows: Sequence[Mapping[str, Any]], out: Path) -> Path:
    path = out / "results.json"
    path.write_text(json.dumps({"rows": list(rows)}, indent=2) + "\n", encoding="utf-8")
    return path


def table_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """Novel-class mAP per method (rows) and shots (columns); the baseline is the warm start (0 shots)."""
    shots = sorted({r["shots"] for r in rows if r["method"] != "baseline"})
    base = next((r for r in rows if r["method"] == "baseline"), None)
    head = "| method | " + " | ".join(f"{k}-shot" for k in shots) + " |"
    lines = [head, "|---|" + "---:|" * len(shots)]
    if base is not None:
        lines.append(
            f"| {METHOD_NAMES['baseline']} | " + " | ".join(_fmt(base["novel_mAP"]) for _ in shots) + " |"
        )
    for method in ("sft", "rft"):
        by_k = {r["shots"]: r for r in rows if r["method"] == method}
        if by_k:
            cells = [_fmt(by_k[k]["novel_mAP"]) if k in by_k else "-" for k in shots]
            lines.append(f"| {METHOD_NAMES[method]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def detail_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """Every row with AP50, per-class AP and the seconds spent."""
    classes = sorted({c for r in rows for c in (r.get("per_class_AP") or {})})
    head = (
        "| method | shots | mAP | AP50 | "
        + " | ".join(f"AP {c}" for c in classes)
        + " | parse fail % | train s |"
    )
    lines = [head, "|---|---:|---:|---:|" + "---:|" * len(classes) + "---:|---:|"]
    for r in rows:
        per = r.get("per_class_AP") or {}
        lines.append(
            f"| {METHOD_NAMES.get(r['method'], r['method'])} | {r['shots']} | {_fmt(r['novel_mAP'])} | "
            f"{_fmt(r.get('novel_AP50'))} | "
            + " | ".join(_fmt(per.get(c)) for c in classes)
            + f" | {_fmt(r.get('parse_fail'))} | {_fmt(r.get('train_seconds'), 0)} |"
        )
    return "\n".join(lines)


def _fmt(v: Any, digits: int = 1) -> str:
    return "-" if v is None else f"{float(v):.{digits}f}"


def write_results_md(rows: Sequence[Mapping[str, Any]], out: Path, notes: Sequence[str] = ()) -> Path:
    text = [
        "# vrft demo: few-shot detection of NOVEL shapes (COCO mAP@[.5:.95], held-out test set)",
        "",
        table_markdown(rows),
        "",
        "## Details",
        "",
        detail_markdown(rows),
        "",
        *notes,
    ]
    path = out / "results.md"
    path.write_text("\n".join(text).rstrip() + "\n", encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def reward_series(metrics_jsonl: Path) -> dict[str, list[tuple[float, float]]]:
    """``{reward name: [(step, value), ...]}`` of a GRPO run's metrics.jsonl (total reward first)."""
    series: dict[str, list[tuple[float, float]]] = {}
    for row in read_jsonl(metrics_jsonl):
        for key, value in row.items():
            if value is None or not (key == "train/reward" or key.startswith("train/reward/")):
                continue
            if key.endswith("/std") or "parse_fail" in key:
                continue
            name = (
                "total" if key == "train/reward" else key.removeprefix("train/reward/").removesuffix("/mean")
            )
            series.setdefault(name, []).append((row["step"], float(value)))
    return series


def write_plots(rows: Sequence[Mapping[str, Any]], rft_runs: Mapping[int, Path], out: Path) -> list[Path]:
    """``novel_map_vs_shots.png`` and one ``rft_rewards_<k>shot.png`` per k."""
    from vrft.report.plots import plot_curves, plot_metric_vs_shots

    paths = [
        plot_metric_vs_shots(
            [
                {"method": METHOD_NAMES[r["method"]], "shots": r["shots"], "value": r["novel_mAP"]}
                for r in rows
            ],
            out / "novel_map_vs_shots.png",
            metric="novel mAP (COCO, 0..100)",
            title="Few-shot detection of novel shapes",
        )
    ]
    for k, run_dir in sorted(rft_runs.items()):
        series = reward_series(run_dir / "metrics.jsonl")
        paths.append(
            plot_curves(
                series,
                out / f"rft_rewards_{k}shot.png",
                title=f"Visual-RFT rewards, {k}-shot",
                ylabel="mean reward of the sampled completions",
            )  # fmt: skip
        )
    return paths


def write_report(
    rows: Sequence[Mapping[str, Any]], evals: Mapping[tuple[str, int], Path], out: Path, per_model: int
) -> Path:
    """``report.html``: the table, then sample predictions of every model on the SAME test images
    (the first `per_model` asked prompts that have an object), boxes drawn."""
    from vrft.report.html import render_report

    samples: list[dict[str, Any]] = []
    chosen: list[str] | None = None
    for (method, k), eval_dir in evals.items():
        preds = read_jsonl(eval_dir / "predictions.jsonl")
        if chosen is None:
            chosen = [p["id"] for p in preds if p.get("gt_boxes")][:per_model]
        keep = set(chosen)
        for p in preds:
            if p.get("id") in keep:
                s = dict(p)
                s["id"] = f"{METHOD_NAMES[method]}{'' if method == 'baseline' else f' {k}-shot'}: {p['id']}"
                samples.append(s)
    metrics = {
        "novel_mAP": {
            f"{METHOD_NAMES[r['method']]}{'' if r['method'] == 'baseline' else ' ' + str(r['shots']) + '-shot'}": r[
                "novel_mAP"
            ]
            for r in rows
        }
    }
    return render_report(
        samples, out / "report.html", title="vrft demo: baseline vs SFT vs Visual-RFT", metrics=metrics
    )
