"""Detection evaluator: completions -> pixel boxes with the model's confidence -> COCO / LVIS AP.

Each completion is parsed by the detection task (`vrft.tasks.TASKS["detection"].parse`, the parser
the rewards use) and its boxes are decoded to pixels of the original image with the record's frame.
Every valid box becomes a COCO result with the model's confidence as the score; invalid entries
are dropped (and counted by the parser); an unparsable answer contributes no boxes and counts in
``parse_fail``. AP comes from pycocotools (`vrft.evaluate.coco`) or the LVIS API
(`vrft.evaluate.lvis`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from vrft.data.records import Record
from vrft.evaluate.base import NOT_ASKED_COMPLETION, FrameFn, base_row, percent, scored_rewards
from vrft.evaluate.coco import coco_metrics, image_key, to_result
from vrft.evaluate.lvis import lvis_metrics
from vrft.evaluate.protocols import DetectionSetup

logger = logging.getLogger(__name__)

REWARD_NAMES = ("format", "detection_iou", "detection_confidence")
"""Training rewards recorded per sample; ``detection_iou`` is the sample's score (with ``require_tags=False``
it and every reward but ``format`` are computed on the lenient answer, `vrft.evaluate.base.scored_rewards`)."""


class DetectionEvaluator:
    """Accumulates detections of (image, category) queries and computes AP.

    Args:
        setup: ground truth, selected categories and image ids (`protocols.detection_setup`).
        frame_fn: record -> `vrft.boxes.Frame` of the model (decodes its coordinates to pixels).
        require_tags: parse only the text inside ``<answer>`` tags (as the rewards do); False reads
            answers of models that ignore the format leniently.
    """

    task = "detection"

    def __init__(self, setup: DetectionSetup, frame_fn: FrameFn, *, require_tags: bool = True) -> None:
        from vrft.tasks import TASKS

        self.setup = setup
        self.frame_fn = frame_fn
        self.require_tags = require_tags
        self._task = TASKS["detection"]
        self._cat_ids = setup.category_ids
        self.reset()

    def reset(self) -> None:
        """Forget all processed queries."""
        self.rows: list[dict] = []
        self.results: list[dict] = []

    def process(
        self,
        records: Sequence[Record],
        completions: Sequence[str | None],
        presence: Sequence[bool | None] | None = None,
    ) -> None:
        """Parse one chunk. ``None`` completions were not asked (no boxes); `presence` holds the
        presence answers of the paper protocol (None: not run)."""
        if len(records) != len(completions):
            raise ValueError(f"{len(records)} records but {len(completions)} completions")
        presence = list(presence) if presence is not None else [None] * len(records)
        frames = [self.frame_fn(r) for r in records]
        effective = [c if c is not None else NOT_ASKED_COMPLETION for c in completions]
        # under --lenient-parse the score and the rewards (but format) are both read leniently
        rewards = scored_rewards(self._task, records, effective, frames, REWARD_NAMES, require_tags=self.require_tags)
        metric = rewards
        for rec, comp, frame, rw, m, present in zip(records, completions, frames, rewards, metric, presence):
            iid = self.setup.image_ids[image_key(rec)]
            cid = self._cat_ids[rec.category]
            pred = self._task.parse(comp, frame, require_tags=self.require_tags) if comp is not None else None
            if pred is not None:
                for box, score in zip(pred.boxes, pred.scores):
                    self.results.append(to_result(iid, cid, box, score))
            row = base_row(rec, comp, pred)
            row.update(
                coco_image_id=iid,
                category=rec.category,
                query=rec.category,
                gt_boxes=[list(b) for b in rec.boxes],
                crowd_boxes=[list(b) for b in (rec.meta or {}).get("crowd_boxes") or []],
                pred_boxes=list(pred.boxes) if pred is not None else [],
                confidences=list(pred.scores) if pred is not None else [],
                asked=comp is not None,
                presence=present,
                rewards=rw,
                score=m.get("detection_iou"),
            )
            self.rows.append(row)

    def evaluate(self) -> dict[str, Any]:
        """AP metrics (0..100) plus ``parse_fail`` (% of asked queries) and counts; with a presence
        pass also its precision / recall (% of (image, category) pairs with GT objects)."""
        img_ids = sorted(set(self.setup.image_ids.values()))
        cat_ids = list(self._cat_ids.values())
        if self.setup.lvis:
            metrics = lvis_metrics(
                self.setup.gt, self.results, img_ids=img_ids, cat_ids=cat_ids, area=self.setup.lvis_area
            )
        else:
            metrics = coco_metrics(self.setup.gt, self.results, img_ids=img_ids, cat_ids=cat_ids)
        asked = [r for r in self.rows if r["asked"]]
        fails = sum(1 for r in asked if not r["parse_ok"])
        scores = [r["score"] for r in self.rows if r["score"] is not None]
        metrics.update(
            parse_fail=percent(fails, len(asked)),
            num_parse_fail=fails,
            num_queries=len(self.rows),
            num_asked=len(asked),
            mean_iou_reward=percent(sum(scores), len(scores)),
        )
        answered = [r for r in self.rows if r["presence"] is not None]
        if answered:
            said_yes = [r for r in answered if r["presence"]]
            positives = [r for r in answered if r["gt_boxes"]]
            hits = sum(1 for r in said_yes if r["gt_boxes"])
            metrics["presence"] = {
                "precision": percent(hits, len(said_yes)),
                "recall": percent(hits, len(positives)),
                "num_yes": len(said_yes),
                "num_pairs": len(answered),
            }
        return metrics
