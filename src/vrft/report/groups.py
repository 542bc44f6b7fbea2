"""Training samples grouped by prompt: one image per GRPO group with its G completions side by side.

`vrft train` writes its samples with `group` (the prompt's group within the step's batch) and
`advantage` (`vrft.train.callbacks.SampleWriter`). `group_samples` gathers the rows of one (step, group)
and `group_html` draws them: the image once, with the ground truth and each completion's boxes numbered
#1..#G (several images or a video: their figure with the truth, `vrft.report.media_html`), then one table row per completion with its parse status, rewards, weighted total and GRPO
advantage, and its text on demand. A group whose totals are all equal is marked "flat: advantage 0".
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

#: Colours of the completions' boxes (cycled), distinct from the ground truth's green.
COMPLETION_COLORS = ("#ff1744", "#2979ff", "#ff9100", "#d500f9", "#00b8d4", "#c51162", "#6d4c41", "#304ffe")


def is_grouped(samples: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the samples are training samples with a `group` (rendered by group)."""
    return bool(samples) and all(s.get("group") is not None for s in samples)


def group_samples(samples: Iterable[Mapping[str, Any]]) -> list[list[dict[str, Any]]]:
    """Consecutive rows of the same (step, group) as one list, in file order."""
    groups: list[list[dict[str, Any]]] = []
    key = None
    for s in samples:
        k = (s.get("step"), s.get("group"))
        if not groups or k != key:
            groups.append([])
            key = k
        groups[-1].append(dict(s))
    return groups


def group_html(rows: Sequence[Mapping[str, Any]], cache: dict, base_dir: Path | None) -> str:
    """One group: the image with every completion's boxes, and a row per completion."""
    from vrft.report.html import GT_COLOR, _clip_text, _figure, _fmt, _normalise, _num, _split
    from vrft.report.media_html import media_figure

    rows = [_normalise(r) for r in rows]
    first = rows[0]
    figure_sample = {
        k: first.get(k) for k in ("image", "image_path", "width", "height", "gt_boxes", "crowd_boxes")
    }
    boxes, labels, colors = [], [], []
    for i, r in enumerate(rows):
        for box in r.get("pred_boxes") or []:
            boxes.append(box)
            labels.append(f"#{i + 1}")
            colors.append(COMPLETION_COLORS[i % len(COMPLETION_COLORS)])
    figure_sample.update(pred_boxes=boxes, pred_labels=labels, pred_colors=colors)
    has_boxes = first.get("gt_boxes") is not None or any(r.get("pred_boxes") is not None for r in rows)
    # several images or a video: drawn as the eval report does, with the truth only (each completion's
    # answer is in its row), not a blank one-image box
    truth = {**first, "gt_image": first.get("gt_image", first.get("target_image"))}
    fig = media_figure({k: v for k, v in truth.items() if not k.startswith("pred_")}, cache, base_dir)
    if fig is None:
        fig = _figure(figure_sample, cache, base_dir) if (first.get("image") or has_boxes) else ""

    reward_names = list(dict.fromkeys(k for r in rows for k in (r.get("rewards") or {})))
    scores = [_num(r.get("score")) for r in rows]
    flat = len(rows) > 1 and all(s is not None for s in scores) and max(scores) - min(scores) <= 1e-9
    head = "".join(
        f"<th>{html.escape(n)}{' (1 = not read: bad)' if n.startswith('parse_fail') else ''}</th>"
        for n in reward_names
    )
    labelled = any(r.get("pred_label") not in (None, "") for r in rows)  # classification-like answers
    body = []
    for i, r in enumerate(rows):
        think, answer = _split(r)
        ok = r.get("parse_ok")
        status = (
            "yes" if ok else (f"failed ({html.escape(str(r.get('reason') or '?'))})" if ok is False else "—")
        )
        pred = r.get("pred_label")
        shown = answer if answer is not None else r.get("completion")
        cells = "".join(f"<td>{_fmt((r.get('rewards') or {}).get(n))}</td>" for n in reward_names)
        color = COMPLETION_COLORS[i % len(COMPLETION_COLORS)]
        body.append(
            f'<tr><td style="color:{color};font-weight:600">#{i + 1}</td><td>{status}</td>'
            + (f"<td>{html.escape(str(pred)) if pred not in (None, '') else ''}</td>" if labelled else "")
            + f"{cells}"
            f'<td class="score">{_fmt(r.get("score"))}</td><td>{_fmt(r.get("advantage"))}</td>'
            f"<td><details><summary>{_clip_text(str(shown or '')[:80])}</summary>"
            f"<pre>{_clip_text(r.get('completion'))}</pre></details></td></tr>"
        )
    facts = []
    for key, label in (("step", "step"), ("task", "task"), ("query", "asked"), ("gt_label", "truth")):
        if first.get(key) not in (None, ""):
            facts.append(f"{label}: <b>{html.escape(str(first[key]))}</b>")
    if first.get("gt_boxes") is not None and not first.get("video"):
        facts.append(f'<span style="color:{GT_COLOR}">{len(first.get("gt_boxes") or [])} true boxes</span>')
    if flat:
        facts.append('<span class="flat">flat group: every completion scored the same, advantage 0</span>')
    sid = str(first.get("id", first.get("record_id", "?")))
    mean = [s for s in scores if s is not None]
    data_score = f"{sum(mean) / len(mean):.6g}" if mean else ""
    fail = "1" if any(r.get("parse_ok") is False for r in rows) else "0"
    table = (
        f'<table class="group"><tr><th>#</th><th>answer read</th>{"<th>label</th>" if labelled else ""}{head}'
        "<th>total</th>"
        f"<th>advantage</th><th>answer (click for the completion)</th></tr>{''.join(body)}</table>"
    )
    return (
        f'<div class="sample" data-id="{html.escape(sid)}" data-score="{data_score}" data-fail="{fail}">'
        f'<div class="figwrap">{fig}</div><div class="info"><h3>{html.escape(sid)}</h3>'
        f"<p>{' · '.join(facts)}</p>{table}</div></div>"
    )
