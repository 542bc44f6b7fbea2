"""Grounding rewards: one predicted box against the target box(es) (``gt_boxes`` = ``[box, ...]``).

A record may hold several target boxes (``data validate`` accepts them; e.g. an expression naming one
of two equivalent regions): ANY of them counts, so the reward is that of the best-matching target box.
The grounding metric (`vrft.evaluate.grounding`) scores the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vrft.boxes import giou, iou
from vrft.parsing import parse_box
from vrft.rewards._columns import answers, column


def gt_boxes_of(value: Any) -> list[list[float]]:
    """The target boxes of a ``gt_boxes`` value: ``[[x1, y1, x2, y2], ...]`` (or a bare box)."""
    if value is None:
        return []
    value = list(value)
    if len(value) == 4 and not isinstance(value[0], (list, tuple)) and not hasattr(value[0], "__len__"):
        return [[float(v) for v in value]]
    return [[float(v) for v in b] for b in value]


def gt_box(value: Any) -> list[float] | None:
    """The first target box of a ``gt_boxes`` value (None when there is none)."""
    boxes = gt_boxes_of(value)
    return boxes[0] if boxes else None


def _pairs(completions: Sequence[Any], gt_boxes: Any, name: str):
    gts = column("gt_boxes", gt_boxes, len(completions), name)
    for a, g in zip(answers(completions), gts):
        yield parse_box(a), gt_boxes_of(g)


def grounding_iou(completions: Sequence[Any], gt_boxes: Any = None, **_: Any) -> list[float]:
    """Range [0, 1]: IoU of the answer box with the best-matching target box; 0 when no box parses."""
    return [
        max(iou(p.box, g) for g in gs) if p.ok and gs else 0.0
        for p, gs in _pairs(completions, gt_boxes, "grounding_iou")
    ]


def grounding_giou(completions: Sequence[Any], gt_boxes: Any = None, **_: Any) -> list[float]:
    """Range [0, 1]: (GIoU + 1) / 2 with the best-matching target box, so that a far-away box (-> 0)
    never beats malformed output (0)."""
    return [
        (max(giou(p.box, g) for g in gs) + 1.0) / 2.0 if p.ok and gs else 0.0
        for p, gs in _pairs(completions, gt_boxes, "grounding_giou")
    ]


def grounding_giou_plus1(completions: Sequence[Any], gt_boxes: Any = None, **_: Any) -> list[float]:
    """The reference's LISA reward, range [0, 2]: GIoU + 1 with the best-matching target box, and 2.0
    when the answer box equals a target box exactly (the reference's exact-string shortcut, compared
    as numbers so spacing does not matter); 0 when no box parses."""
    out = []
    for p, gs in _pairs(completions, gt_boxes, "grounding_giou_plus1"):
        if not (p.ok and gs):
            out.append(0.0)
        elif any(list(p.box) == g for g in gs):
            out.append(2.0)
        else:
            out.append(max(giou(p.box, g) for g in gs) + 1.0)
    return out


def parse_fail_grounding(completions: Sequence[Any], **_: Any) -> list[float]:
    """Diagnostic (weight 0), {0, 1}: 1 when no box could be parsed from the answer."""
    return [0.0 if parse_box(a).ok else 1.0 for a in answers(completions)]
