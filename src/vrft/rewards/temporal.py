"""Temporal grounding rewards: a predicted time window against the ground truth ``gt_window`` = [S, E].

``temporal_iou`` = ``max(0, min(e, E) - max(s, S)) / (max(e, E) - min(s, S))``, range [0, 1], where
(s, e) are the first two numbers of the answer (`vrft.parsing.parse_window`). It is 0 when fewer than
two numbers parse or when e <= s. Nothing is clipped to the video's duration. The temporal grounding
metric (`vrft.evaluate.temporal`) scores with the same function.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from vrft.parsing import parse_window
from vrft.rewards._columns import answers, column


def gt_window_of(value: Any) -> tuple[float, float] | None:
    """``(S, E)`` of a ``gt_window`` value (two finite numbers, S < E), else None."""
    try:
        s, e = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return (s, e) if math.isfinite(s) and math.isfinite(e) and e > s else None


def window_iou(s: float, e: float, gt_s: float, gt_e: float) -> float:
    """``max(0, min(e, E) - max(s, S)) / (max(e, E) - min(s, S))``; 0 when e <= s or the hull is empty."""
    if not e > s:
        return 0.0
    hull = max(e, gt_e) - min(s, gt_s)
    if not (hull > 0 and math.isfinite(hull)):
        return 0.0
    return max(0.0, min(e, gt_e) - max(s, gt_s)) / hull


def window_score(answer: str | None, gt_window: Any) -> float:
    """The temporal IoU of one answer text with one ``gt_window`` (0 for a window that does not parse)."""
    w, gt = parse_window(answer), gt_window_of(gt_window)
    if not (w.ok and gt is not None):
        return 0.0
    return window_iou(w.start, w.end, *gt)


def temporal_iou(completions: Sequence[Any], gt_window: Any = None, **_: Any) -> list[float]:
    """Range [0, 1]: the temporal IoU of the answered [start, end] with ``gt_window`` (see the module)."""
    gts = column("gt_window", gt_window, len(completions), "temporal_iou")
    return [window_score(a, g) for a, g in zip(answers(completions), gts)]


def parse_fail_temporal_grounding(completions: Sequence[Any], **_: Any) -> list[float]:
    """Diagnostic (weight 0), {0, 1}: 1 when no window (two numbers, end > start) parses."""
    return [0.0 if parse_window(a).ok else 1.0 for a in answers(completions)]
