"""Multi-image grounding rewards: an (image, box) answer against ``gt_image`` / ``gt_boxes`` / ``num_images``.

``multi_image_iou``, range [0, 1]: the IoU of the answered box with the ground-truth box (the best of
``gt_boxes`` when there are several) when the answered image ``i`` equals ``gt_image``, else 0. An
answer that does not parse (`vrft.parsing.parse_image_box`: a wrong type, a missing key, not one JSON
object) or whose ``i`` is outside 1..``num_images`` scores 0. Boxes are in the model's coordinate
convention of image ``gt_image``. The multi-image metric (`vrft.evaluate.multi_image`) scores with the
same function.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from vrft.boxes import iou
from vrft.parsing import parse_image_box
from vrft.rewards._columns import answers, column, optional_column
from vrft.rewards.grounding import gt_boxes_of


def _index(value: Any) -> int | None:
    """A 1-based image number from a column value (an int, or an integral float), else None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return int(f) if math.isfinite(f) and f.is_integer() else None


def image_box_score(answer: str | None, gt_image: Any, gt_boxes: Any, num_images: Any = None) -> float:
    """The reward of one answer text (see the module)."""
    p = parse_image_box(answer)
    target, n = _index(gt_image), _index(num_images)
    if not p.ok or target is None:
        return 0.0
    if p.image < 1 or (n is not None and p.image > n) or p.image != target:
        return 0.0
    try:
        boxes = gt_boxes_of(gt_boxes)
    except (TypeError, ValueError):
        return 0.0
    return max((iou(p.box, g) for g in boxes if len(g) == 4), default=0.0)


def multi_image_iou(
    completions: Sequence[Any], gt_image: Any = None, gt_boxes: Any = None, num_images: Any = None, **_: Any
) -> list[float]:
    """Range [0, 1]: IoU with the GT box when the answered image is ``gt_image``, else 0 (see the module)."""
    n = len(completions)
    images = column("gt_image", gt_image, n, "multi_image_iou")
    boxes = column("gt_boxes", gt_boxes, n, "multi_image_iou")
    counts = optional_column(num_images, n)
    return [image_box_score(a, i, b, c) for a, i, b, c in zip(answers(completions), images, boxes, counts)]


def parse_fail_multi_image_grounding(completions: Sequence[Any], **_: Any) -> list[float]:
    """Diagnostic (weight 0), {0, 1}: 1 when no ``{"image": i, "bbox_2d": [...]}`` parses."""
    return [0.0 if parse_image_box(a).ok else 1.0 for a in answers(completions)]
