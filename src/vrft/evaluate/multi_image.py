"""Multi-image grounding evaluator: the answered image number and its box.

Per sample the IoU is the training reward's (`vrft.rewards.multi_image.image_box_score`: the IoU with
the ground-truth box in the model's coordinates of the target image when the answered image is the
target, else 0), computed on the parsed answer (so ``--lenient-parse`` reaches it). The predicted box
is also decoded to pixels of the image it names (``pred_boxes``, for the report). Metrics in %
(0..100):

- ``image_accuracy``: % of samples whose answered image is the target image;
- ``acc@0.5``: % of samples with IoU >= 0.5 (right image and box);
- ``mIoU``: mean IoU (a wrong image or an unparsed answer counts as 0);
- ``format_ok``, ``parse_fail`` (%), ``num_samples``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vrft.data.records import Record
from vrft.evaluate.base import SampleEvaluator, base_row, percent
from vrft.rewards.multi_image import image_box_score
from vrft.tasks.multi_image_grounding import image_frames

REWARD_NAMES = ("format", "multi_image_iou")


class MultiImageGroundingEvaluator(SampleEvaluator):
    """Accumulates (image, box) answers; `frame_fn` gives the frame(s) of a record (one per image, or
    one whose convention is applied to every image, `vrft.tasks.multi_image_grounding.image_frames`)."""

    task = "multi_image_grounding"
    reward_names = REWARD_NAMES

    def process(self, records: Sequence[Record], completions: Sequence[str | None]) -> None:
        """Parse one chunk of completions (one per record)."""
        texts, frames, rewards = self._score(records, completions)
        for rec, comp, frame, rw in zip(records, texts, frames, rewards):
            frames_of = image_frames(rec, frame)
            pred = self._task.parse(comp, frames_of, require_tags=self.require_tags)
            cols = self._task.reward_columns(rec, frames_of)
            value = image_box_score(pred.answer, cols["gt_image"], cols["gt_boxes"], cols["num_images"])
            row = base_row(rec, comp, pred)
            row.update(
                query=rec.expression,
                image_sizes=[list(s) for s in rec.image_sizes],
                gt_image=rec.target_image,
                gt_boxes=[[float(v) for v in b] for b in rec.boxes],
                pred_image=pred.image if pred.ok else None,
                pred_boxes=pred.boxes if pred.ok else [],
                image_correct=bool(pred.ok and pred.image == rec.target_image),
                iou=value,
                rewards=rw,
                score=value,
            )
            self.rows.append(row)

    def evaluate(self) -> dict[str, Any]:
        """``image_accuracy``, ``acc@0.5``, ``mIoU``, ``format_ok``, ``parse_fail`` (%) and the count."""
        n = len(self.rows)
        rows = self.rows
        return {
            "image_accuracy": percent(sum(1 for r in rows if r["image_correct"]), n),
            "acc@0.5": percent(sum(1 for r in rows if r["iou"] >= 0.5), n),
            "mIoU": percent(sum(r["iou"] for r in rows), n),
            **self._answer_rates(),
        }
