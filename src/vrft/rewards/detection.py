"""Detection rewards: box IoU with greedy matching, and confidence calibration.

The formulas are the reference's (see docs/rewards.md), with its defects fixed:

- no math-verifier shortcut: only the parsed box list is scored;
- NaN / infinite / non-numeric confidences and malformed positions make that ENTRY invalid (parser rule);
  an invalid entry counts as a prediction that matches nothing and scores 0 in the confidence mean, so it
  costs in both rewards and can never produce NaN;
- an empty prediction (``No Objects`` or ``[]``) on an image without GT objects scores 1 and 1; any box
  there scores IoU 0; an empty prediction when GT objects exist scores 0 and 0;
- malformed output (no answer, no list, nothing complete before a cut) scores 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vrft.boxes import iou_matrix
from vrft.parsing import Detection, DetectionAnswer, parse_detections
from vrft.rewards._columns import answers, column

MATCH_IOU = 0.5
"""A prediction matches a GT box only when their IoU is strictly above this."""


@dataclass(frozen=True)
class DetectionScore:
    """``iou`` in [0, 1], ``confidence`` in [0, 1], ``matched`` predictions, ``parsed`` ok."""

    iou: float
    confidence: float
    matched: int = 0
    parsed: bool = True


def unique_detections(parsed: DetectionAnswer) -> list[Detection]:
    """The valid detections of a parsed answer in output order, exact-duplicate boxes dropped (the
    first entry of a box is kept, whatever its confidence)."""
    seen: set[tuple[float, ...]] = set()
    out = []
    for d in parsed.detections:
        if d.box not in seen:
            seen.add(d.box)
            out.append(d)
    return out


def score_detections(parsed: DetectionAnswer, gt_boxes: Sequence[Sequence[float]]) -> DetectionScore:
    """Score one parsed answer against the GT boxes (same coordinate convention).

    Exact-duplicate boxes are dropped (first kept), predictions are sorted by confidence (descending,
    stable), each takes the still-unmatched GT box of highest IoU and matches when IoU > 0.5.
    ``iou`` = sum of matched IoUs / max(#GT, #predictions), capped at 1 (invalid entries count as
    predictions); ``confidence`` = mean over predictions of c (matched) or 1 - c (unmatched), invalid
    entries contributing 0; clipped to [0, 1].
    """
    if not parsed.ok:
        return DetectionScore(0.0, 0.0, parsed=False)
    preds = unique_detections(parsed)
    preds.sort(key=lambda d: -d.confidence)
    gt = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    n_pred = len(preds) + parsed.n_invalid
    if n_pred == 0:
        return DetectionScore(1.0, 1.0) if len(gt) == 0 else DetectionScore(0.0, 0.0)
    ious = iou_matrix([d.box for d in preds], gt) if preds else np.zeros((0, len(gt)))
    free = np.ones(len(gt), dtype=bool)
    iou_sum = conf_sum = 0.0
    matched = 0
    for i, d in enumerate(preds):
        j = -1
        if free.any():
            row = np.where(free, ious[i], -1.0)
            j = int(np.argmax(row))
        if j >= 0 and ious[i, j] > MATCH_IOU:
            free[j] = False
            iou_sum += float(ious[i, j])
            conf_sum += d.confidence
            matched += 1
        else:
            conf_sum += 1.0 - d.confidence
    iou_reward = min(1.0, iou_sum / max(len(gt), n_pred))
    conf_reward = min(1.0, max(0.0, conf_sum / n_pred))
    return DetectionScore(iou_reward, conf_reward, matched)


def _scores(completions: Sequence[Any], gt_boxes: Any, name: str) -> list[DetectionScore]:
    gts = column("gt_boxes", gt_boxes, len(completions), name)
    return [score_detections(parse_detections(a), g or []) for a, g in zip(answers(completions), gts)]


def detection_iou(completions: Sequence[Any], gt_boxes: Any = None, **_: Any) -> list[float]:
    """Range [0, 1]: sum of matched IoUs / max(#GT, #pred) (see :func:`score_detections`)."""
    return [s.iou for s in _scores(completions, gt_boxes, "detection_iou")]


def detection_confidence(completions: Sequence[Any], gt_boxes: Any = None, **_: Any) -> list[float]:
    """Range [0, 1]: mean of c for matched and 1 - c for unmatched predictions."""
    return [s.confidence for s in _scores(completions, gt_boxes, "detection_confidence")]


def parse_fail_detection(completions: Sequence[Any], **_: Any) -> list[float]:
    """Diagnostic (weight 0), {0, 1}: 1 when no detection answer could be parsed."""
    return [0.0 if parse_detections(a).ok else 1.0 for a in answers(completions)]
