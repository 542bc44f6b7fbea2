"""Detection rewards with Hungarian (optimal one-to-one) matching, as Perception-R1 trains them.

The answer is parsed exactly as for ``detection_iou`` (`vrft.parsing.parse_detections`; exact-duplicate
boxes dropped, the first kept; an invalid entry counts as a prediction that matches nothing). Let P be
the valid predicted boxes in output order, ``n_pred = |P| + n_invalid`` and G the GT boxes.

- ``W[i][j] = IoU(P_i, G_j)`` if that IoU > 0.5, else 0; the assignment maximising the sum of W is
  solved with ``scipy.optimize.linear_sum_assignment(W, maximize=True)``; the matched pairs are the
  assigned pairs with ``W > 0`` (M of them).
- ``detection_iou_hungarian`` = min(1, sum of W over matched pairs / max(|G|, n_pred)).
- ``detection_f1`` = 2M / (n_pred + |G|).
- ``detection_confidence_hungarian`` = mean over the n_pred predictions of c (matched) or 1 - c
  (unmatched), an invalid entry contributing 0; clipped to [0, 1].
- Empty cases: n_pred = 0 and |G| = 0 -> 1, 1, 1; n_pred = 0 with GT -> 0, 0, 0; predictions on an
  image without GT -> 0, 0 and the mean of 1 - c. An answer that does not parse -> 0, 0, 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vrft.boxes import iou_matrix
from vrft.parsing import DetectionAnswer, parse_detections
from vrft.rewards._columns import answers, column
from vrft.rewards.detection import MATCH_IOU, unique_detections


@dataclass(frozen=True)
class HungarianScore:
    """``iou``, ``f1`` and ``confidence`` in [0, 1]; ``matched`` pairs; ``parsed`` ok."""

    iou: float
    f1: float
    confidence: float
    matched: int = 0
    parsed: bool = True


def match_weights(pred_boxes: Sequence[Sequence[float]], gt_boxes: Sequence[Sequence[float]]) -> np.ndarray:
    """``W[i][j]`` = IoU of prediction i and GT box j when it is > 0.5, else 0 (shape [n, m])."""
    if len(pred_boxes) == 0 or len(gt_boxes) == 0:
        return np.zeros((len(pred_boxes), len(gt_boxes)))
    ious = iou_matrix(pred_boxes, gt_boxes)
    return np.where(ious > MATCH_IOU, ious, 0.0)


def assign(weights: np.ndarray) -> list[tuple[int, int]]:
    """The pairs (row, column) of the maximum-weight assignment that have a positive weight."""
    if weights.size == 0:
        return []
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(weights, maximize=True)
    return [(int(i), int(j)) for i, j in zip(rows, cols) if weights[i, j] > 0]


def score_hungarian(parsed: DetectionAnswer, gt_boxes: Sequence[Sequence[float]]) -> HungarianScore:
    """Score one parsed answer against the GT boxes (same coordinate convention); see the module."""
    if not parsed.ok:
        return HungarianScore(0.0, 0.0, 0.0, parsed=False)
    preds = unique_detections(parsed)
    gt = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    n_pred = len(preds) + parsed.n_invalid
    if n_pred == 0:
        return HungarianScore(1.0, 1.0, 1.0) if len(gt) == 0 else HungarianScore(0.0, 0.0, 0.0)
    weights = match_weights([d.box for d in preds], gt)
    pairs = assign(weights)
    matched = {i for i, _ in pairs}
    iou_sum = float(sum(weights[i, j] for i, j in pairs))
    conf_sum = sum(d.confidence if i in matched else 1.0 - d.confidence for i, d in enumerate(preds))
    return HungarianScore(
        iou=min(1.0, iou_sum / max(len(gt), n_pred)),
        f1=2.0 * len(pairs) / (n_pred + len(gt)),
        confidence=min(1.0, max(0.0, conf_sum / n_pred)),
        matched=len(pairs),
    )


def _scores(completions: Sequence[Any], gt_boxes: Any, name: str) -> list[HungarianScore]:
    gts = column("gt_boxes", gt_boxes, len(completions), name)
    return [score_hungarian(parse_detections(a), g or []) for a, g in zip(answers(completions), gts)]


def detection_iou_hungarian(completions: Sequence[Any], gt_boxes: Any = None, **_: Any) -> list[float]:
    """Range [0, 1]: sum of Hungarian-matched IoUs (> 0.5) / max(#GT, #pred), capped at 1."""
    return [s.iou for s in _scores(completions, gt_boxes, "detection_iou_hungarian")]


def detection_f1(completions: Sequence[Any], gt_boxes: Any = None, **_: Any) -> list[float]:
    """Range [0, 1]: 2 * #matched / (#pred + #GT) under Hungarian matching (1 when both are empty)."""
    return [s.f1 for s in _scores(completions, gt_boxes, "detection_f1")]


def detection_confidence_hungarian(completions: Sequence[Any], gt_boxes: Any = None, **_: Any) -> list[float]:
    """Range [0, 1]: mean of c (matched) or 1 - c (unmatched) under Hungarian matching."""
    return [s.confidence for s in _scores(completions, gt_boxes, "detection_confidence_hungarian")]
