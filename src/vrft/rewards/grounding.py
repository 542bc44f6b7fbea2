"""Grounding rewards: one predicted box against one GT box (``gt_boxes`` = ``[box]``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vrft.boxes import giou, iou
from vrft.parsing import parse_box
from vrft.rewards._columns import answers, column


def gt_box(value: Any) -> list[float] | None:
    """The GT box of a ``gt_boxes`` value: ``[[x1, y1, x2, y2]]`` (or a bare ``[x1, y1, x2, y2]``)."""
    if value is None:
        return None
    value = list(value)
    if len(value) == 4 and not isinstance(value[0], (list, tuple)) and not hasattr(value[0], "__len__"):
        return [float(v) for v in value]
    if not value:
        return None
    return [float(v) for v in value[0]]


def _pairs(completions: Sequence[Any], gt_boxes: Any, name: str):
    gts = column("gt_boxes", gt_boxes, len(completions), name)
    for a, g in zip(answers(completions), gts):
        yield parse_box(a), gt_box(g)


def grounding_iou(completions: Sequence[Any], gt_boxes: Any = None, **_: Any) -> list[float]:
    """Range [0, 1]: IoU of the answer box with the GT box; 0 when no box parses."""
    return [iou(p.box, g) if p.ok and g else 0.0 for p, g in _pairs(completions, gt_boxes, "grounding_iou")]


def grounding_giou(completions: Sequence[Any], gt_boxes: Any = None, **_: Any) -> list[float]:
    """Range [0, 1]: (GIoU + 1) / 2, so that a far-away box (-> 0) never beats malformed output (0)."""
    return [
        (giou(p.box, g) + 1.0) / 2.0 if p.ok and g else 0.0
        for p, g in _pairs(completions, gt_boxes, "grounding_giou")
    ]


def grounding_giou_plus1(completions: Sequence[Any], gt_boxes: Any = None, **_: Any) -> list[float]:
    """The reference's LISA reward, range [0, 2]: GIoU + 1, and 2.0 when the answer box equals the GT
    box exactly (the reference's exact-string shortcut, compared as numbers so spacing does not
    matter); 0 when no box parses."""
    out = []
    for p, g in _pairs(completions, gt_boxes, "grounding_giou_plus1"):
        if not (p.ok and g):
            out.append(0.0)
        elif list(p.box) == g:
            out.append(2.0)
        else:
            out.append(giou(p.box, g) + 1.0)
    return out


def parse_fail_grounding(completions: Sequence[Any], **_: Any) -> list[float]:
    """Diagnostic (weight 0), {0, 1}: 1 when no box could be parsed from the answer."""
    return [0.0 if parse_box(a).ok else 1.0 for a in answers(completions)]
