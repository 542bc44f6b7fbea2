"""What the demo writes: results.json, results.md, the PNG plots and the side-by-side HTML report.

``results.json`` is ``{"rows": [...], "runs": [...], "split": "test"|"val"}``. Each row is one
(experiment, method, k): ``experiment`` ("open_vocab" | "fewshot_detection" | "fewshot_classification" |
"tools"), ``method`` ("baseline" | "sft" | "rft"; the tools experiment's arms below), ``shots`` (k; 0 for the baseline, None in open_vocab), ``task``
("detection" | "classification"), the headline number under its own name (``novel_mAP``: COCO
mAP@[.5:.95] of the novel shapes under the all-categories protocol, 0..100; ``accuracy``: exact-match
classification accuracy, 0..100) holding the MEAN over seeds, and ``mean``, ``sd`` (sample standard
deviation; None where there is one value: the baseline, which is one deterministic model, or a
single seed), ``seeds`` and ``values`` (per seed): only the seeds that count, those whose metric is a
number. A seed without one (None or not finite: an evaluation that failed) is left out of the mean
and listed in ``failed_seeds`` instead, and the tables say "(n of m seeds)".
``runs`` holds every single run (with its ``seed``).

The tools experiment's rows (``experiment`` "tools", `vrft.demo.tools_demo`) have ``method`` one of
"baseline", "baseline_tools", "sft_traces", "rft_tools", "rft" (`vrft.demo.tools_demo.ARMS`), ``shots``
k (0 for the base model's two arms, whose ``seeds`` is ``[None]``: one deterministic value), ``accuracy``
as above, and the means over seeds of ``call_rate`` (share of test samples with a tool call, 0..100),
``mean_calls``, ``zoom_iou`` and ``zoom_hit`` (`vrft.demo.tools_demo.zoom_scores`), each with its sample
sd under ``<name>_sd`` and the number of seeds with a value under ``<name>_n`` (a model that never
zoomed has no zoom score; the table then reads "(n of m seeds)"); None where the arm answers without
tools.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vrft.outputs import atomic_write_text

logger = logging.getLogger(__name__)

METHOD_NAMES: dict[str, str] = {"baseline": "baseline (base model)", "sft": "SFT", "rft": "Visual-RFT"}
EXPERIMENT_NAMES: dict[str, str] = {
    "open_vocab": "(a) open-vocabulary detection: trained on base shapes, novel mAP",
    "fewshot_detection": "(b) few-shot detection of novel shapes, mAP",
    "fewshot_classification": "(c) few-shot classification of novel shapes, accuracy %",
    "tools": "(d) tools: name a shape too small to see without zooming",
}
METRIC_OF = {"detection": "novel_mAP", "classification": "accuracy"}
TOOL_COLUMNS: dict[str, str] = {
    "accuracy": "accuracy %",
    "call_rate": "tool-call rate %",
    "zoom_iou": "zoom IoU %",
    "zoom_hit": "zoom holds the shape %",
}
"""The tools experiment's table: its columns (row fields, each a mean over seeds with its ``<field>_sd``)."""


def aggregate(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per (experiment, method, shots): mean and sample sd over the seeds' runs."""
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["experiment"], r["method"], r["shots"]), []).append(r)
    rows = []
    for (exp, method, shots), rs in groups.items():
        metric = METRIC_OF[rs[0]["task"]]
        counted = [r for r in rs if r[metric] is not None and math.isfinite(r[metric])]
        finite = [r[metric] for r in counted]
        mean = round(statistics.fmean(finite), 2) if finite else None
        # a spread needs two values: one run (a single seed, the baseline) has no sd, not an sd of 0
        sd = round(statistics.stdev(finite), 2) if len(finite) > 1 else None
        row = {"experiment": exp, "method": method, "shots": shots, "task": rs[0]["task"], metric: mean,
               "metric": metric, "mean": mean, "sd": sd, "seeds": [r["seed"] for r in counted], "values": finite,
               "failed_seeds": [r["seed"] for r in rs if r not in counted],
               "parse_fail": _mean([r.get("parse_fail") for r in rs])}  # fmt: skip
        if metric == "novel_mAP":
            row["novel_AP50"] = _mean([r.get("novel_AP50") for r in rs])
        for key in ("call_rate", "mean_calls", "zoom_iou", "zoom_hit"):
            if any(key in r for r in rs):  # the tools experiment
                values = [float(r[key]) for r in rs if r.get(key) is not None]
                row[key] = round(statistics.fmean(values), 2) if values else None
                row[f"{key}_sd"] = round(statistics.stdev(values), 2) if len(values) > 1 else None
                row[f"{key}_n"] = len(values)  # seeds with a value (a model that never zoomed has none)
        rows.append(row)
    return rows


def _mean(values: Sequence[Any]) -> float | None:
    v = [float(x) for x in values if x is not None]
    return round(statistics.fmean(v), 2) if v else None


def write_results_json(rows: Sequence[Mapping[str, Any]], runs: Sequence[Mapping[str, Any]], out: Path,
                       split: str = "test") -> Path:  # fmt: skip
    path = out / "results.json"
    atomic_write_text(
        path, json.dumps({"rows": list(rows), "runs": list(runs), "split": split}, indent=2) + "\n"
    )
    return path


def _cell(row: Mapping[str, Any] | None) -> str:
    if row is None or row["mean"] is None:
        return "-"
    if row["method"] == "baseline" or row["seeds"] == [None]:  # an untrained model: one deterministic value
        return f"{row['mean']:.1f}"
    failed = row.get("failed_seeds") or []
    n = len(row["seeds"])
    some = f" ({n} of {n + len(failed)} seeds)" if failed else ""
    if row["sd"] is None:
        return f"{row['mean']:.1f} ({some[2:-1] if failed else '1 seed'})"
    return f"{row['mean']:.1f} ± {row['sd']:.1f}{some}"


def _spread(row: Mapping[str, Any], key: str) -> str:
    """A tools-table cell: mean ± sd over seeds (one value for the base model's arms, '-' for none)."""
    if key == "accuracy":
        return _cell(row)
    value, sd, n, of = row.get(key), row.get(f"{key}_sd"), row.get(f"{key}_n"), len(row["seeds"])
    if value is None:
        return "-"
    some = f" ({n} of {of} seeds)" if n is not None and n < of else ""
    return (f"{value:.1f}" if sd is None else f"{value:.1f} ± {sd:.1f}") + some


def _tools_table(mine: Sequence[Mapping[str, Any]]) -> tuple[str, list[str], list[tuple[str, list[str]]]]:
    from vrft.demo.tools_demo import ARMS

    seeds = next((r["seeds"] + r.get("failed_seeds", []) for r in mine if r["shots"]), [])
    shots = next((r["shots"] for r in mine if r["shots"]), None)
    body = []
    for arm, name in ARMS.items():
        row = next((r for r in mine if r["method"] == arm), None)
        if row is not None:
            body.append((name, [_spread(row, key) for key in TOOL_COLUMNS]))
    where = f"{shots} scenes per shape, seeds {seeds}" if shots else "no training"
    return f"{EXPERIMENT_NAMES['tools']} ({where})", list(TOOL_COLUMNS.values()), body


def _tables(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[str], list[tuple[str, list[str]]]]]:
    """Per experiment: (title with its seeds, column names, [(method, cells)]): the tables of the demo."""
    out = []
    for exp in EXPERIMENT_NAMES:
        mine = [r for r in rows if r["experiment"] == exp]
        if not mine:
            continue
        if exp == "tools":
            out.append(_tools_table(mine))
            continue
        seeds = next((r["seeds"] + r.get("failed_seeds", []) for r in mine if r["method"] != "baseline"), [])
        shots = sorted({r["shots"] for r in mine if r["method"] != "baseline" and r["shots"] is not None})
        cols = [f"{k}-shot" for k in shots] if shots else ["trained on base shapes"]
        body = []
        for method in ("baseline", "sft", "rft"):
            by_k = {r["shots"]: r for r in mine if r["method"] == method}
            if not by_k:
                continue
            if method == "baseline":
                cells = [_cell(next(iter(by_k.values())))] * len(cols)
            elif shots:
                cells = [_cell(by_k.get(k)) for k in shots]
            else:
                cells = [_cell(by_k.get(None))]
            body.append((METHOD_NAMES[method], cells))
        out.append((f"{EXPERIMENT_NAMES[exp]} (seeds {seeds})", cols, body))
    return out


def table_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """One table per experiment: methods (rows) x k (columns), mean ± sd over seeds."""
    out = []
    for title, cols, body in _tables(rows):
        out += [f"### {title}", "", "| method | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
        out += [f"| {method} | " + " | ".join(cells) + " |" for method, cells in body]
        out.append("")
    return "\n".join(out).rstrip()


def table_html(rows: Sequence[Mapping[str, Any]]) -> str:
    """The tables of `table_markdown` as HTML tables (report.html)."""
    out = []
    for title, cols, body in _tables(rows):
        head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        trs = "".join(
            f"<tr><th>{html.escape(method)}</th>"
            + "".join(f"<td style='text-align:right'>{html.escape(c)}</td>" for c in cells)
            + "</tr>"
            for method, cells in body
        )
        out.append(f'<h3>{html.escape(title)}</h3><table class="results"><tr><th>method</th>{head}</tr>{trs}</table>')
    return "\n".join(out)


def detail_markdown(runs: Sequence[Mapping[str, Any]]) -> str:
    """Every single run."""
    lines = ["| experiment | method | k | seed | value | AP50 | parse fail % | train s | eval s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in runs:
        value = r.get(METRIC_OF[r["task"]])
        lines.append(
            f"| {r['experiment']} | {r['method']} | {_fmt(r['shots'], 0)} | {_fmt(r['seed'], 0)} | {_fmt(value)} | "
            f"{_fmt(r.get('novel_AP50'))} | {_fmt(r.get('parse_fail'))} | {_fmt(r.get('train_seconds'), 0)} | "
            f"{_fmt(r.get('eval_seconds'), 0)} |"
        )
    return "\n".join(lines)


def _fmt(v: Any, digits: int = 1) -> str:
    return "-" if v is None else f"{float(v):.{digits}f}"


def write_results_md(rows: Sequence[Mapping[str, Any]], out: Path, notes: Sequence[str] = ()) -> Path:
    runs = json.loads((out / "results.json").read_text(encoding="utf-8")).get("runs", [])
    text = ["# vrft demo: the paper's experiments in miniature", "", table_markdown(rows), "", *notes, "",
            "## Every run", "", detail_markdown(runs)]  # fmt: skip
    path = out / "results.md"
    atomic_write_text(path, "\n".join(text).rstrip() + "\n")
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


def write_plots(rows: Sequence[Mapping[str, Any]], rft_runs: Mapping[str, Path], out: Path) -> list[Path]:
    """``<experiment>_vs_shots.png`` per few-shot experiment (means) and ``rft_rewards_<run>.png``."""
    from vrft.report.plots import plot_curves, plot_metric_vs_shots

    paths = []
    for exp in ("fewshot_detection", "fewshot_classification"):
        mine = [r for r in rows if r["experiment"] == exp]
        if mine:
            paths.append(plot_metric_vs_shots(
                [{"method": METHOD_NAMES[r["method"]], "shots": r["shots"], "value": r["mean"], "sd": r.get("sd")}
                 for r in mine],
                out / f"{exp}_vs_shots.png", metric=METRIC_OF[mine[0]["task"]] + " (mean ± sd over seeds)",
                title=EXPERIMENT_NAMES[exp],
            ))  # fmt: skip
    for name, run_dir in sorted(rft_runs.items()):
        series = reward_series(run_dir / "metrics.jsonl")
        paths.append(plot_curves(series, out / f"rft_rewards_{name}.png", title=f"Visual-RFT rewards, {name}",
                                 ylabel="mean reward of the sampled completions"))  # fmt: skip
    return paths


# ------------------------------------------------------------------------------------ side-by-side report
_COLOURS = {"star": (230, 120, 0), "heart": (200, 0, 120), "diamond": (0, 120, 220), "zoom": (220, 0, 0)}


def _picture(image: str, boxes: Sequence[tuple[str, Sequence[float]]], side: int = 224) -> str:
    """The image, shown `side` pixels wide, with `boxes` ((category, [x1, y1, x2, y2] pixels)) drawn, as
    a data: URI."""
    from PIL import Image, ImageDraw

    try:
        img = Image.open(image).convert("RGB")
    except OSError:
        return ""
    scale = side / img.width
    img = img.resize((side, max(1, round(img.height * scale))))
    draw = ImageDraw.Draw(img)
    for cat, b in boxes:
        if len(b) == 4:
            draw.rectangle([v * scale for v in b], outline=_COLOURS.get(cat, (0, 160, 0)), width=2)
            draw.text((b[0] * scale + 2, b[1] * scale + 1), cat, fill=_COLOURS.get(cat, (0, 160, 0)))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _short(p: Mapping[str, Any]) -> str:
    parsed = p.get("parsed") or {}
    if p.get("task") == "classification":
        return f"{parsed.get('label') or 'parse fail'}"
    if not p.get("parse_ok"):
        return f"{p.get('category')}: parse fail"
    n = len(p.get("pred_boxes") or [])
    return f"{p.get('category')}: {'No Objects' if n == 0 else f'{n} box(es)'}"


def side_by_side(columns: Sequence[tuple[str, Path]], n_images: int) -> str:
    """HTML table: one evaluation image per row, one column per model (its answers drawn on the image)."""
    preds = {title: read_jsonl(d / "predictions.jsonl") for title, d in columns}
    first = next(iter(preds.values()), [])
    images: list[str] = []
    for p in first:
        if p["image"] not in images:
            images.append(p["image"])
    head = "<tr><th>ground truth</th>" + "".join(f"<th>{html.escape(t)}</th>" for t, _ in columns) + "</tr>"
    body = []
    for image in images[:n_images]:
        asked = [p for p in first if p["image"] == image]
        gt = [
            (p.get("category") or p.get("label") or "", b) for p in asked for b in (p.get("gt_boxes") or [])
        ]
        label = next((p.get("gt_label") for p in asked if p.get("task") == "classification"), None)
        gt_text = html.escape(label or ", ".join(sorted({c for c, _ in gt})) or "-")
        cells = [f"<td><img src='{_picture(image, gt)}'><br>{gt_text}</td>"]
        for title, _ in columns:
            mine = [p for p in preds[title] if p["image"] == image]
            boxes = [(p.get("category") or "", b) for p in mine for b in (p.get("pred_boxes") or [])]
            boxes += [("zoom", b) for p in mine for b in (p.get("zoom_regions") or [])]  # tools: where it zoomed
            text = "<br>".join(html.escape(_short(p)) for p in mine)
            cells.append(f"<td><img src='{_picture(image, boxes)}'><br><small>{text}</small></td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table>{head}{''.join(body)}</table>"


def write_report(
    rows: Sequence[Mapping[str, Any]],
    evals: Mapping[tuple[str, str, int | None, int | None], Path],
    out: Path,
    n_images: int,
    seed: int,
    k: int,
    note: str | None = None,
) -> Path:
    """``report.html``: the tables (and `note` under them: `vrft.demo.settings.caveat`), then per
    experiment the baseline, SFT and Visual-RFT answers on the same evaluation images side by side
    (smallest k, first seed)."""
    parts = ["<!doctype html><meta charset='utf-8'><title>vrft demo</title>",
             "<style>body{font-family:sans-serif} td,th{border:1px solid #ccc;padding:4px;vertical-align:top}"
             " table{border-collapse:collapse;margin-bottom:2em}</style>",
             "<h1>vrft demo: baseline vs SFT vs Visual-RFT</h1>",
             table_html(rows),
             *([f"<p><strong>{html.escape(note)}</strong></p>"] if note else [])]  # fmt: skip
    for exp in EXPERIMENT_NAMES:
        if exp == "tools":
            from vrft.demo.tools_demo import ARMS

            found = {(m, kk, s): d for (e, m, kk, s), d in evals.items() if e == exp}
            cols = [(f"{name}{'' if kk is None else f' (seed {s})'}", found[(arm, kk, s)])
                    for arm, name in ARMS.items() for (m, kk, s) in sorted(found, key=str)
                    if m == arm and (s is None or s == seed)]  # fmt: skip
            if cols:
                parts += [f"<h2>{html.escape(EXPERIMENT_NAMES[exp])}</h2>",
                          "<p>Red boxes: where the model zoomed (its regions in the scene).</p>",
                          side_by_side(cols, n_images)]  # fmt: skip
            continue
        shots = None if exp == "open_vocab" else k
        cols = [(METHOD_NAMES["baseline"], evals.get((exp, "baseline", None, None)))]
        cols += [(f"{METHOD_NAMES[m]}{'' if shots is None else f' {shots}-shot'} (seed {seed})",
                  evals.get((exp, m, shots, seed))) for m in ("sft", "rft")]  # fmt: skip
        if any(d is None for _, d in cols):
            continue
        parts += [f"<h2>{html.escape(EXPERIMENT_NAMES[exp])}</h2>", side_by_side(cols, n_images)]  # type: ignore[arg-type]
    path = out / "report.html"
    atomic_write_text(path, "\n".join(parts) + "\n")
    return path
