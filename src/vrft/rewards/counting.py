"""Counting rewards: the answer (points, an integer or ``No Objects``) against the GT boxes.

Column ``gt_boxes``: every object of the asked category (model convention); the GT count is their
number. The answer is parsed by `vrft.parsing.parse_count`; an answer that is not a point list, an
integer or ``No Objects`` scores 0 in every counting reward.

- ``count_exact`` = 1 if the answered count n equals n_gt (a point list counts its points;
  ``No Objects`` and ``[]`` count 0).
- ``count_relative`` = max(0, 1 - |n - n_gt| / max(n_gt, 1)).
- ``count_points`` = 2M / (n_points + n_gt), M the size of a maximum bipartite matching between the
  points and the GT boxes, a point (x, y) matching a box when x1 <= x <= x2 and y1 <= y <= y2; 1 when
  both are empty; a bare integer answer scores 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from vrft.parsing import CountAnswer, parse_count
from vrft.rewards._columns import answers, column


def point_matches(points: Sequence[Sequence[float]], boxes: Sequence[Sequence[float]]) -> int:
    """Size of a maximum bipartite matching of points to boxes (a point matches a box containing it,
    edges included)."""
    if len(points) == 0 or len(boxes) == 0:
        return 0
    from scipy.optimize import linear_sum_assignment

    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    inside = (
        (b[None, :, 0] <= p[:, None, 0])
        & (p[:, None, 0] <= b[None, :, 2])
        & (b[None, :, 1] <= p[:, None, 1])
        & (p[:, None, 1] <= b[None, :, 3])
    ).astype(np.float64)
    if not inside.any():
        return 0
    rows, cols = linear_sum_assignment(inside, maximize=True)
    return int(inside[rows, cols].sum())


def count_exact_score(parsed: CountAnswer, n_gt: int) -> float:
    """1.0 when the parsed count equals ``n_gt``, else 0.0 (0.0 for a parse failure)."""
    return 1.0 if parsed.ok and parsed.count == n_gt else 0.0


def count_relative_score(parsed: CountAnswer, n_gt: int) -> float:
    """max(0, 1 - |n - n_gt| / max(n_gt, 1)); 0.0 for a parse failure (exact integer arithmetic, so a
    huge answered count cannot overflow)."""
    if not parsed.ok or parsed.count is None:
        return 0.0
    diff, scale = abs(parsed.count - n_gt), max(n_gt, 1)
    return 0.0 if diff >= scale else 1.0 - diff / scale


def count_points_score(parsed: CountAnswer, gt_boxes: Sequence[Sequence[float]]) -> float:
    """2M / (n_points + n_gt) (see the module); 0.0 for an integer answer or a parse failure."""
    if not parsed.ok or parsed.points is None:
        return 0.0
    n_points, n_gt = len(parsed.points), len(gt_boxes)
    if n_points + n_gt == 0:
        return 1.0
    return 2.0 * point_matches(parsed.points, gt_boxes) / (n_points + n_gt)


def _pairs(completions: Sequence[Any], gt_boxes: Any, name: str):
    gts = column("gt_boxes", gt_boxes, len(completions), name)
    for a, g in zip(answers(completions), gts):
        yield parse_count(a), list(g or [])


def count_exact(completions: Sequence[Any], gt_boxes: Any = None, **_: Any) -> list[float]:
    """{0, 1}: the answered count equals the number of GT boxes."""
    return [count_exact_score(p, len(g)) for p, g in _pairs(completions, gt_boxes, "count_exact")]


def count_relative(completions: Sequence[Any], gt_boxes: Any = None, **_: Any) -> list[float]:
    """[0, 1]: max(0, 1 - |n - n_gt| / max(n_gt, 1))."""
    return [count_relative_score(p, len(g)) for p, g in _pairs(completions, gt_boxes, "count_relative")]


def count_points(completions: Sequence[Any], gt_boxes: Any = None, **_: Any) -> list[float]:
    """[0, 1]: point-in-box matching F1, 2M / (n_points + n_gt); 1 when both are empty."""
    return [count_points_score(p, g) for p, g in _pairs(completions, gt_boxes, "count_points")]


def parse_fail_counting(completions: Sequence[Any], **_: Any) -> list[float]:
    """Diagnostic (weight 0), {0, 1}: 1 when the answer is not a point list, integer or No Objects."""
    return [0.0 if parse_count(a).ok else 1.0 for a in answers(completions)]
