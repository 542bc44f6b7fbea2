"""A self-contained HTML report of model samples: images with boxes, thinking, scores, metrics.

The page opens from disk with no server and no network: images are embedded as base64 JPEG
thumbnails, boxes are inline SVG drawn in the ORIGINAL image's pixel coordinates (the SVG
``viewBox`` is ``0 0 width height``, so boxes stay aligned at any display size), and a few lines of
inline JavaScript sort and filter the samples (worst first, by text, parse failures only).

Used by ``vrft eval`` (predictions) and ``vrft train`` (``samples.jsonl``).

Sample dict (every key optional except ``id``; unknown keys are ignored)::

    {
      "id": "coco-139-cat",            # record id ("record_id" is accepted too)
      "image": "/abs/or/relative.jpg",  # image path ("image_path" accepted); missing file -> grey box
      "width": 640, "height": 427,      # original size in pixels (read from the image when absent)
      "task": "detection",
      "query": "cat",                   # what was asked: category / expression / class domain
      "completion": "<think>..</think><answer>..</answer>",   # raw model text
      "think": "...",                   # thinking text (default: parsed from `completion`)
      "answer": "...",                  # answer text (default: parsed from `completion`)
      "gt_boxes": [[x1, y1, x2, y2]],   # ground truth, pixels of the original image
      "crowd_boxes": [[x1, y1, x2, y2]],  # COCO crowd regions (iscrowd: ignored by the metric), dashed
      "pred_boxes": [[x1, y1, x2, y2]], # predictions, pixels of the original image
      "confidences": [0.9],             # one per predicted box
      "gt_label": "rose", "pred_label": "tulip",   # classification
      "score": 0.42,                    # per-sample score (higher is better); sorts the page
      "rewards": {"format": 1.0, "iou": 0.3},      # training samples
      "turns": "<think>..</think><tool_call>{..}</tool_call><tool_response>[image 56x56] ..</tool_response>..",
      "tool_calls": 1,                  # an answer with tools: every turn (vrft.tools.stats.transcript), calls
      "parse_ok": true, "reason": "",   # parser status
      "step": 10,                       # training step, if any
      "group": 0, "advantage": 0.7      # training: the prompt's GRPO group in the step, the advantage
    }

Samples with several images (``images``) or a video (``video``) get the figures of
`vrft.report.media_html` (images side by side with the true and predicted box on their image; a strip
of frames over a timeline with the true and predicted time windows).

Training samples (every row has a ``group``) are drawn one block per group (`vrft.report.groups`): the
image once with each completion's boxes numbered, and a row per completion with its rewards and
advantage. Box labels are placed so that they do not overlap.

Fallbacks: ``record_id`` for ``id``, ``image_path`` for ``image``; a ``parsed`` dict (a
``vrft.tasks.Prediction.to_dict()``, pixels) fills ``pred_boxes`` / ``confidences`` / ``pred_label`` /
``parse_ok`` / ``reason`` / ``answer`` when they are absent; without ``score`` the sum of ``rewards``
(diagnostics named ``parse_fail*`` excluded) is the score.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from vrft.errors import UserError
from vrft.report.media_html import MEDIA_CSS, media_figure, media_rows

logger = logging.getLogger(__name__)

GT_COLOR = "#00c853"
"""Stroke colour of ground-truth boxes (green)."""
PRED_COLOR = "#ff1744"
"""Stroke colour of predicted boxes (red)."""
BOX_TASKS = ("detection", "grounding", "counting", "multi_image_grounding")
"""Tasks whose samples show a boxes row (truth / predicted counts)."""
NO_BOX_TASKS = ("classification", "ocr", "temporal_grounding")
"""Tasks with no boxes: no boxes row even where a sample carries empty box lists."""
CONFIDENCE_TASKS = ("detection",)
"""Tasks whose answers carry a confidence per box."""
THUMB_MAX_SIDE = 384
"""Longest side of an embedded thumbnail, pixels."""
MAX_EMBEDDED_IMAGES = 400
"""Images embedded at most (distinct paths); later samples show boxes on a grey background."""
MAX_TEXT_CHARS = 4000
"""Characters of completion / thinking text shown per sample."""


def _thumbnail(path: Path, cache: dict[str, tuple[str, int, int] | None]) -> tuple[str, int, int] | None:
    """``(data URI, width, height)`` of an image (original size), or None when unreadable."""
    key = str(path)
    if key in cache:
        return cache[key]
    result = None
    if sum(v is not None for v in cache.values()) < MAX_EMBEDDED_IMAGES:
        try:
            from vrft.inputs import open_image

            im = open_image(path)  # DataError (missing, unreadable, decompression bomb): logged below
            width, height = im.size
            im.thumbnail((THUMB_MAX_SIDE, THUMB_MAX_SIDE))
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=80)
            result = (
                "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii"),
                width,
                height,
            )
        except (OSError, ValueError, UserError) as err:
            failures = sum(1 for v in cache.values() if v is None)
            if failures < 3:
                logger.warning("report: cannot read image %s (%s); drawing boxes without it", path, err)
            elif failures == 3:
                logger.warning("report: more images cannot be read; not listing them")
    cache[key] = result
    return result


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _fmt(v: Any) -> str:
    if isinstance(v, (bool, int, str)) and not isinstance(v, float):
        return html.escape(str(v))
    f = _num(v)
    if f is None:
        return "—" if v is None else html.escape(str(v))
    return f"{f:.3f}" if abs(f) < 1000 else f"{f:.1f}"


def _rects(
    boxes: Any,
    color: str | Sequence[str],
    cls: str,
    labels: list[str] | None = None,
    font: float = 14.0,
    dashed: bool = False,
    placed: list[tuple[float, float, float, float]] | None = None,
) -> list[str]:
    """SVG rectangles of `boxes` (one colour, or one per box), each with its label where given; labels
    are placed so that they do not overlap each other (`placed`: the label boxes already drawn)."""
    out = []
    dash = ' stroke-dasharray="8 5"' if dashed else ""
    placed = [] if placed is None else placed
    for i, box in enumerate(boxes or []):
        vals = [_num(v) for v in (box if isinstance(box, (list, tuple)) else [])]
        if len(vals) != 4 or any(v is None for v in vals):
            continue
        x1, y1, x2, y2 = vals
        c = color if isinstance(color, str) else color[i % len(color)]
        out.append(
            f'<rect class="{cls}" x="{x1:.2f}" y="{y1:.2f}" width="{max(x2 - x1, 0):.2f}" '
            f'height="{max(y2 - y1, 0):.2f}" fill="none" stroke="{c}" stroke-width="3"{dash} '
            f'vector-effect="non-scaling-stroke"/>'
        )
        if labels and i < len(labels) and labels[i]:
            x, y = _label_spot(x1, y1, len(labels[i]), font, placed)
            out.append(
                f'<text x="{x:.2f}" y="{y:.2f}" fill="{c}" font-size="{font:.1f}" '
                f'paint-order="stroke" stroke="#fff" stroke-width="{font / 6:.2f}">{html.escape(labels[i])}</text>'
            )
    return out


def _label_spot(
    x: float, y: float, chars: int, font: float, placed: list[tuple[float, float, float, float]]
) -> tuple[float, float]:
    """Baseline (x, y) of a label at a box's top-left corner (above it when there is room), moved down a
    line at a time until it overlaps no label in `placed` (which it joins)."""
    width, height = 0.62 * font * max(chars, 1), font
    base = max(y - font * 0.2, font)
    for k in range(12):
        top = base + k * height * 1.05 - height
        rect = (x, top, x + width, top + height)
        if not any(rect[0] < p[2] and p[0] < rect[2] and rect[1] < p[3] and p[1] < rect[3] for p in placed):
            break
    placed.append(rect)
    return x, rect[3]


def _figure(sample: Mapping[str, Any], cache: dict, base_dir: Path | None) -> str:
    image = sample.get("image") or sample.get("image_path")
    if image and base_dir is not None and not Path(image).is_absolute():
        image = base_dir / image
    thumb = _thumbnail(Path(image), cache) if image else None
    width = _num(sample.get("width")) or (thumb[1] if thumb else None) or 1000.0
    height = _num(sample.get("height")) or (thumb[2] if thumb else None) or 1000.0
    labels = sample.get("pred_labels")
    if labels is None:
        confs = sample.get("confidences") or []
        labels = [f"{c:.2f}" if _num(c) is not None else "" for c in (_num(c) for c in confs)]
    parts = [f'<svg class="fig" viewBox="0 0 {width:g} {height:g}" preserveAspectRatio="xMinYMin meet">']
    if thumb:
        parts.append(
            f'<image href="{thumb[0]}" x="0" y="0" width="{width:g}" height="{height:g}" '
            f'preserveAspectRatio="none"/>'
        )
    else:
        parts.append(f'<rect x="0" y="0" width="{width:g}" height="{height:g}" fill="#ddd"/>')
    parts += _rects(sample.get("gt_boxes"), GT_COLOR, "gt")
    parts += _rects(sample.get("crowd_boxes"), GT_COLOR, "crowd", dashed=True)
    colors = sample.get("pred_colors") or PRED_COLOR
    parts += _rects(sample.get("pred_boxes"), colors, "pred", labels, font=max(width, height) / 28)
    parts.append("</svg>")
    return "".join(parts)


def reward_label(name: str) -> str:
    """A reward's row label; the `parse_fail_*` diagnostics say that 1 is bad (they are not rewards)."""
    if name.startswith("parse_fail"):
        return f"{name} (1 = answer not read: bad; a diagnostic, weight 0)"
    return f"reward {name}"


def _split(sample: Mapping[str, Any]) -> tuple[str | None, str | None]:
    think, answer = sample.get("think"), sample.get("answer")
    text = sample.get("completion")
    if (think is None or answer is None) and isinstance(text, str):
        from vrft.parsing import split

        parts = split(text)
        think = parts.think if think is None else think
        answer = parts.answer if answer is None else answer
    return think, answer


_PNG_URI = re.compile(r"data:image/png;base64,[A-Za-z0-9+/]+=*")
"""A tool image of an answer with tools (`vrft.tools.generate.tool_thumbnails`); nothing else is shown."""


def _clip_text(text: Any) -> str:
    s = "" if text is None else str(text)
    if len(s) > MAX_TEXT_CHARS:
        s = s[:MAX_TEXT_CHARS] + f" … ({len(s) - MAX_TEXT_CHARS} more characters)"
    return html.escape(s)


def _normalise(sample: Mapping[str, Any]) -> dict[str, Any]:
    """Apply the documented fallbacks (see the module docstring)."""
    s = dict(sample)
    parsed = s.get("parsed")
    if isinstance(parsed, Mapping):
        for key, src in (("pred_boxes", "boxes"), ("confidences", "scores"), ("pred_label", "label"),
                         ("parse_ok", "ok"), ("reason", "reason"), ("answer", "answer")):  # fmt: skip
            if s.get(key) is None and parsed.get(src) is not None:
                s[key] = parsed[src]
    if s.get("score") is None and isinstance(s.get("rewards"), Mapping):
        values = [_num(v) for k, v in s["rewards"].items() if not str(k).startswith("parse_fail")]
        if values and all(v is not None for v in values):
            s["score"] = sum(values)
    return s


def _sample_html(sample: Mapping[str, Any], cache: dict, base_dir: Path | None = None) -> str:
    sample = _normalise(sample)
    sid = str(sample.get("id", sample.get("record_id", "?")))
    score = _num(sample.get("score"))
    parse_ok = sample.get("parse_ok")
    think, answer = _split(sample)
    rows = []
    for key, label in (
        ("task", "task"),
        ("query", "asked"),
        ("gt_label", "truth"),
        ("pred_label", "predicted"),
    ):
        if sample.get(key) is not None:
            rows.append(f"<tr><th>{label}</th><td>{html.escape(str(sample[key]))}</td></tr>")
    if sample.get("step") is not None:
        rows.append(f"<tr><th>step</th><td>{html.escape(str(sample['step']))}</td></tr>")
    rows.append(f'<tr><th>score</th><td class="score">{_fmt(score)}</td></tr>')
    task = sample.get("task")
    confs = sample.get("confidences")
    if confs and task in (None, *CONFIDENCE_TASKS):
        rows.append(f"<tr><th>confidences</th><td>{', '.join(_fmt(c) for c in confs)}</td></tr>")
    for name, value in (sample.get("rewards") or {}).items():
        rows.append(f"<tr><th>{html.escape(reward_label(str(name)))}</th><td>{_fmt(value)}</td></tr>")
    if parse_ok is not None:
        reason = html.escape(str(sample.get("reason") or ""))
        status = "yes" if parse_ok else f"failed ({reason})" if reason else "failed"
        rows.append(f"<tr><th>answer read</th><td>{status}</td></tr>")
    n_gt, n_pred = len(sample.get("gt_boxes") or []), len(sample.get("pred_boxes") or [])
    has_boxes = (sample.get("gt_boxes") is not None or sample.get("pred_boxes") is not None) and (
        task in BOX_TASKS or (task not in NO_BOX_TASKS and (n_gt or n_pred))
    )
    if has_boxes:
        rows.append(f"<tr><th>boxes</th><td>{n_gt} truth, {n_pred} predicted</td></tr>")
    rows += media_rows(sample)
    fig = media_figure(sample, cache, base_dir)  # several images side by side, or a video's frame strip
    if fig is None:
        fig = (
            _figure(sample, cache, base_dir)
            if (sample.get("image") or sample.get("image_path") or has_boxes)
            else ""
        )
    texts = ""
    if think is not None:
        texts += f'<div class="think"><b>thinking</b><pre>{_clip_text(think)}</pre></div>'
    if answer is not None:
        texts += f'<div class="answer"><b>answer</b><pre>{_clip_text(answer)}</pre></div>'
    if sample.get("turns"):  # an answer with tools: every call, its result, the final answer
        calls = sample.get("tool_calls")
        head = f"turns ({calls} tool call{'s' if calls != 1 else ''})" if isinstance(calls, int) else "turns"
        texts += f'<details class="turns" open><summary>{head}</summary><pre>{_clip_text(sample["turns"])}</pre></details>'
        shown = [u for u in sample.get("tool_images") or [] if isinstance(u, str) and _PNG_URI.fullmatch(u)]
        if shown:
            texts += (
                '<div class="tool-images">'
                + "".join(
                    f'<img src="{u}" alt="tool image {k + 1}" title="tool image {k + 1}">'
                    for k, u in enumerate(shown)
                )
                + "</div>"
            )
    if sample.get("completion") is not None:
        texts += f"<details><summary>raw completion</summary><pre>{_clip_text(sample['completion'])}</pre></details>"
    data_score = "" if score is None else f"{score:.6g}"
    fail = "1" if parse_ok is False else "0"
    return (
        f'<div class="sample" data-id="{html.escape(sid)}" data-score="{data_score}" data-fail="{fail}">'
        f'<div class="figwrap">{fig}</div><div class="info"><h3>{html.escape(sid)}</h3>'
        f"<table>{''.join(rows)}</table>"
        f"{texts}</div></div>"
    )


def _flatten(metrics: Mapping[str, Any], prefix: str = "") -> tuple[list[tuple[str, Any]], dict[str, dict]]:
    """Scalars as ``(dotted.name, value)``; per-class dicts (``per_class_*``) kept apart."""
    scalars: list[tuple[str, Any]] = []
    tables: dict[str, dict] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            if str(key).startswith("per_class"):
                tables[name] = dict(value)
            else:
                s, t = _flatten(value, name + ".")
                scalars += s
                tables.update(t)
        elif not isinstance(value, (list, tuple)):
            scalars.append((name, value))
    return scalars, tables


def _metrics_html(metrics: Mapping[str, Any] | None) -> str:
    from vrft.report.metrics_table import metrics_html

    return metrics_html(metrics)


_CSS = """
.tool-images img { max-width: 128px; margin: 2px; border: 1px solid #bbb; }
body{font-family:system-ui,sans-serif;margin:16px;color:#222}
.controls{position:sticky;top:0;background:#fff;padding:8px 0;border-bottom:1px solid #ccc;z-index:2}
.sample{display:flex;gap:16px;border-bottom:1px solid #ddd;padding:12px 0}
.figwrap{flex:0 0 auto}
svg.fig{width:384px;height:auto;max-height:384px;display:block;background:#eee}
.info{flex:1 1 auto;min-width:0} .info h3{margin:0 0 4px 0;font-size:15px}
pre{white-space:pre-wrap;word-break:break-word;background:#f6f6f6;padding:6px;margin:2px 0;font-size:12px}
table{border-collapse:collapse;font-size:13px} th{text-align:left;padding-right:10px;font-weight:600}
td,th{padding:1px 6px;border-bottom:1px solid #eee}
.legend span{display:inline-block;width:14px;height:4px;margin:0 4px 3px 10px;vertical-align:middle}
table.group td{vertical-align:top} table.group details pre{max-width:640px} .flat{color:#b00020}
"""

_JS = """
(function(){
  var box=document.getElementById('samples');
  var items=Array.prototype.slice.call(box.children);
  function num(el){var s=el.getAttribute('data-score');return s===''?NaN:parseFloat(s);}
  function apply(){
    var mode=document.getElementById('sort').value;
    var q=document.getElementById('filter').value.toLowerCase();
    var fails=document.getElementById('fails').checked;
    var sorted=items.slice();
    if(mode!=='file'){
      sorted.sort(function(a,b){
        var x=num(a),y=num(b);
        if(isNaN(x)&&isNaN(y))return 0; if(isNaN(x))return 1; if(isNaN(y))return -1;
        return mode==='worst'?x-y:y-x;
      });
    }
    var shown=0;
    sorted.forEach(function(el){
      var ok=(!q||el.textContent.toLowerCase().indexOf(q)>=0)&&(!fails||el.getAttribute('data-fail')==='1');
      el.style.display=ok?'':'none'; if(ok)shown++; box.appendChild(el);
    });
    document.getElementById('count').textContent=shown+' / '+items.length+' samples';
  }
  ['sort','filter','fails'].forEach(function(id){
    var el=document.getElementById(id); el.addEventListener('input',apply); el.addEventListener('change',apply);
  });
  apply();
})();
"""


def render_report(
    samples: Iterable[Mapping[str, Any]],
    out_path: str | os.PathLike,
    title: str = "vrft report",
    metrics: Mapping[str, Any] | None = None,
    *,
    sort: str = "file",
    base_dir: str | os.PathLike | None = None,
) -> Path:
    """Write a self-contained HTML page showing `samples` (see the module docstring for the dict).

    Args:
        samples: sample dicts; boxes in pixels of the original image.
        out_path: the ``.html`` file to write (parent directories are created).
        title: page title.
        metrics: optional metrics dict (nested dicts are flattened to ``a.b`` rows; ``per_class_*``
            dicts become their own tables).
        sort: initial order: ``"file"`` (as given), ``"worst"`` (lowest score first) or ``"best"``.
        base_dir: directory that relative image paths are relative to (default: the working directory).

    Returns:
        The path written.
    """
    if sort not in ("file", "worst", "best"):
        raise ValueError(f"sort must be 'file', 'worst' or 'best', not {sort!r}")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    cache: dict[str, tuple[str, int, int] | None] = {}
    base = Path(base_dir) if base_dir is not None else None
    samples = list(samples)
    from vrft.report.groups import group_html, group_samples, is_grouped

    if is_grouped(samples):  # training samples: one block per GRPO group (vrft.report.groups)
        body = [group_html(rows, cache, base) for rows in group_samples(samples)]
    else:
        body = [_sample_html(s, cache, base) for s in samples]
    options = "".join(
        f'<option value="{v}"{" selected" if v == sort else ""}>{label}</option>'
        for v, label in (("file", "file order"), ("worst", "worst score first"), ("best", "best score first"))
    )
    from vrft.report.metrics_table import CSS as METRICS_CSS

    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}{MEDIA_CSS}{METRICS_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{_metrics_html(metrics)}"
        '<div class="controls"><label>sort <select id="sort">'
        f"{options}</select></label> "
        '<label>filter <input id="filter" type="search" placeholder="id, class, text"></label> '
        '<label><input id="fails" type="checkbox"> parse failures only</label> '
        '<span id="count"></span><span class="legend">'
        f'<span style="background:{GT_COLOR}"></span>ground truth'
        f'<span style="border-top:3px dashed {GT_COLOR};height:0"></span>crowd region (ignored)'
        f'<span style="background:{PRED_COLOR}"></span>prediction (confidence)</span></div>'
        f'<div id="samples">{"".join(body)}</div>'
        f"<script>{_JS}</script></body></html>"
    )
    from vrft.outputs import atomic_write_text

    atomic_write_text(out_path, page)
    logger.info("report: wrote %s (%d samples, %.1f MB)", out_path, len(body), len(page) / 1e6)
    return out_path


def load_samples(path: str | os.PathLike) -> list[dict]:
    """Read a ``samples.jsonl`` / ``predictions.jsonl`` file (one sample dict per line)."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
