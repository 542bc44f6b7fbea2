"""The metrics block of an evaluation report: the headline figure first, then the task's own rows.

`metrics_html(metrics)` reads `vrft eval`'s metrics dict (``{<task>: {...}, "run": {...}}``): per task
the headline metric (`HEADLINE`) in large type with what it measures, a table of the task's other
scalars in plain words with their direction (`LABELS`: e.g. ``parse_fail`` reads "answers that could
not be read, % (lower is better; 100 = none)"), the per-class tables, and the run's settings folded
away under "how the evaluation ran". Under ``--lenient-parse`` (``run.require_tags`` false) a note says
that the score and the rewards were both read leniently. Any other dict falls back to one table of
dotted names.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

#: The figure a person looks at first, per task (the first one present is shown), and what it measures.
HEADLINE: dict[str, tuple[tuple[str, ...], str]] = {
    "detection": (("mAP", "AP"), "mean over classes of COCO AP at IoU 0.50:0.95, % (higher is better)"),
    "classification": (("accuracy",), "answers equal to the label, % (higher is better)"),
    "grounding": (("mIoU",), "mean IoU of the box with the referred object, % (higher is better)"),
    "counting": (("accuracy",), "exact counts, % (higher is better)"),
    "ocr": (("exact_match",), "texts read exactly, % (higher is better)"),
    "temporal_grounding": (("mIoU",), "mean IoU of the predicted span, % (higher is better)"),
    "multi_image_grounding": (("acc@0.5",), "right image and IoU >= 0.5, % (higher is better)"),
}

#: Plain words for the rows (the key is still shown, greyed, for scripts and docs).
LABELS = {
    "parse_fail": "answers that could not be read, % (lower is better; 100 = none could be read)",
    "num_parse_fail": "answers that could not be read",
    "format_ok": "answers in the asked format, % (higher is better)",
    "AP": "COCO AP at IoU 0.50:0.95 over all boxes, %",
    "AP50": "AP at IoU 0.50, %",
    "AP75": "AP at IoU 0.75, %",
    "mAP": "mean over classes of AP, %",
    "APr": "AP of rare classes, %",
    "APc": "AP of common classes, %",
    "APf": "AP of frequent classes, %",
    "mean_iou_reward": "mean IoU reward per query, %",
    "num_detections": "boxes predicted",
    "num_images": "images",
    "num_classes": "classes asked",
    "num_classes_with_gt": "classes with a true box",
    "num_queries": "queries (image x class)",
    "num_asked": "queries asked",
    "num_samples": "samples",
    "accuracy": "right answers, %",
    "substring_accuracy": "right by the reference's substring rule (exploitable), %",
    "acc@0.5": "IoU >= 0.5, %",
    "box_cIoU": "cumulative IoU over all samples, %",
    "mae": "mean absolute count error (lower is better)",
    "edit_distance": "1 - normalised edit distance, %",
}

#: Lower is better for these keys (marked so in the table).
LOWER_IS_BETTER = ("parse_fail", "num_parse_fail", "mae")


def _fmt(v: Any) -> str:
    from vrft.report.html import _fmt as fmt

    return fmt(v)


def _rows(items: list[tuple[str, Any]]) -> str:
    out = []
    for key, value in items:
        label = LABELS.get(key.rsplit(".", 1)[-1])
        name = (
            f"{html.escape(label)} <span class='key'>{html.escape(key)}</span>" if label else html.escape(key)
        )
        bad = " class='bad'" if key.rsplit(".", 1)[-1] in ("parse_fail",) and _is_high(value) else ""
        out.append(f"<tr><th>{name}</th><td{bad}>{_fmt(value)}</td></tr>")
    return "".join(out)


def _is_high(value: Any) -> bool:
    try:
        return float(value) >= 50.0
    except (TypeError, ValueError):
        return False


def _task_block(task: str, m: Mapping[str, Any], first: bool) -> str:
    keys, meaning = HEADLINE[task]
    head = next((k for k in keys if m.get(k) is not None), None)
    parts = [f"<h2>{html.escape(task)}</h2>"]
    if head is not None:
        parts.append(
            f'<div class="headline"><span class="value">{_fmt(m[head])}</span> <b>{html.escape(head)}</b>'
            f" <span class='meaning'>{html.escape(meaning)}</span></div>"
        )
    scalars = [(k, v) for k, v in m.items() if k != head and not isinstance(v, Mapping | list | tuple)]
    ident = ' id="metrics"' if first else ""
    parts.append(f'<table class="metrics"{ident}>{_rows(scalars)}</table>')
    for k, v in m.items():
        if isinstance(v, Mapping) and str(k).startswith("per_class"):
            rows = "".join(f"<tr><th>{html.escape(str(c))}</th><td>{_fmt(x)}</td></tr>" for c, x in v.items())
            parts.append(f'<details><summary>{html.escape(k)}</summary><table class="metrics per-class">{rows}'
                         "</table></details>")  # fmt: skip
    return "".join(parts)


def metrics_html(metrics: Mapping[str, Any] | None) -> str:
    """The metrics block (see the module docstring); '' without metrics."""
    if not metrics:
        return ""
    tasks = [t for t in metrics if t in HEADLINE and isinstance(metrics[t], Mapping)]
    if not tasks:
        from vrft.report.html import _flatten

        scalars, tables = _flatten(metrics)
        out = ['<h2>Metrics</h2><table class="metrics" id="metrics">', _rows(scalars), "</table>"]
        for name, table in tables.items():
            rows = "".join(
                f"<tr><th>{html.escape(str(k))}</th><td>{_fmt(v)}</td></tr>" for k, v in table.items()
            )
            out.append(f'<h3>{html.escape(name)}</h3><table class="metrics per-class">{rows}</table>')
        return "".join(out)
    parts = [_task_block(t, metrics[t], i == 0) for i, t in enumerate(tasks)]
    run = metrics.get("run")
    if isinstance(run, Mapping):
        if run.get("require_tags") is False:
            parts.append(
                "<p class='note'>Read leniently (<code>--lenient-parse</code>): an answer without "
                "<code>&lt;answer&gt;</code> tags is read from the whole text. The score and every reward but "
                "<code>format</code> (which scores the tags as written) are computed on that reading.</p>"
            )
        items = [(k, v) for k, v in run.items() if not isinstance(v, Mapping)]
        rows = "".join(
            f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v)) if isinstance(v, list) else _fmt(v)}</td></tr>"
            for k, v in items
        )
        parts.append(f'<details><summary>how the evaluation ran</summary><table class="metrics run">{rows}</table>'
                     "</details>")  # fmt: skip
    rest = [k for k in metrics if k not in tasks and k != "run"]
    if rest:
        parts.append(metrics_html({k: metrics[k] for k in rest}))
    return "".join(parts)


CSS = """
.headline{font-size:15px;margin:6px 0 10px 0} .headline .value{font-size:28px;font-weight:700}
.headline .meaning{color:#555} span.key{color:#999;font-weight:400;font-size:11px} td.bad{color:#b00020;font-weight:700}
p.note{background:#fff8e1;padding:6px;border-left:3px solid #ffb300}
"""
