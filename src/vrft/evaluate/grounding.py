"""Grounding evaluator: one predicted box per expression, compared in pixels of the original image.

A record with several target boxes: any of them counts, the best-matching one is scored (IoU,
intersection, union), as the grounding rewards do (`vrft.rewards.grounding`).

- ``mIoU``: mean IoU over samples (an unparsable answer scores 0) — the paper's LISA number (and
  LISA's "gIoU" when computed on boxes);
- ``acc@0.5``: % of samples with IoU >= 0.5;
- ``box_cIoU``: cumulative intersection / cumulative union over all samples (LISA's cIoU, on boxes).
Mask gIoU / cIoU with a segmenter prompted by the box are not computed (no segmenter here).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vrft.boxes import iou
from vrft.data.records import Record
from vrft.evaluate.base import SampleEvaluator, base_row, percent

REWARD_NAMES = ("format", "grounding_iou")


def _area(b: Sequence[float]) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def _intersection(a: Sequence[float], b: Sequence[float]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(0.0, w) * max(0.0, h)


class GroundingEvaluator(SampleEvaluator):
    """Accumulates grounding boxes; metrics in % (0..100). `frame_fn` is required: boxes are decoded
    to pixels in the model's own convention."""

    task = "grounding"
    reward_names = REWARD_NAMES

    def process(self, records: Sequence[Record], completions: Sequence[str | None]) -> None:
        """Parse one chunk of completions (one per record)."""
        texts, frames, rewards = self._score(records, completions)
        for rec, comp, frame, rw in zip(records, texts, frames, rewards):
            pred = self._task.parse(comp, frame, require_tags=self.require_tags)
            targets = [[float(v) for v in b] for b in rec.boxes]
            box = pred.boxes[0] if pred.boxes else None
            # any target box counts (as the grounding reward): the best-matching one is scored
            value, gt = (
                max(((iou(box, g), g) for g in targets), key=lambda t: t[0])
                if box is not None
                else (0.0, targets[0])
            )
            row = base_row(rec, comp, pred)
            row.update(
                query=rec.expression,
                gt_boxes=targets,
                pred_boxes=[box] if box is not None else [],
                iou=value,
                intersection=_intersection(box, gt) if box is not None else 0.0,
                union=(_area(box) + _area(gt) - _intersection(box, gt)) if box is not None else _area(gt),
                rewards=rw,
                score=value,
            )
            self.rows.append(row)

    def evaluate(self) -> dict[str, Any]:
        """``mIoU``, ``acc@0.5``, ``box_cIoU``, ``parse_fail`` (%) and the sample count."""
        n = len(self.rows)
        union = sum(r["union"] for r in self.rows)
        return {
            "mIoU": percent(sum(r["iou"] for r in self.rows), n),
            "acc@0.5": percent(sum(1 for r in self.rows if r["iou"] >= 0.5), n),
            "box_cIoU": 100.0 * sum(r["intersection"] for r in self.rows) / union if union > 0 else None,
            "parse_fail": percent(sum(1 for r in self.rows if not r["parse_ok"]), n),
            "num_samples": n,
        }
