"""Temporal grounding evaluator: one predicted [start, end] window per event, in seconds.

The temporal IoU of a sample is the training reward's formula (`vrft.rewards.temporal.window_score`:
``max(0, min(e, E) - max(s, S)) / (max(e, E) - min(s, S))``, 0 for an unparsable or reversed window),
computed on the parsed answer (so ``--lenient-parse`` reaches it). Metrics, as in the Charades-STA
literature, in % (0..100):

- ``R@0.3``, ``R@0.5``, ``R@0.7``: % of queries with tIoU >= 0.3 / 0.5 / 0.7;
- ``mIoU``: mean tIoU (an unparsed answer counts as 0);
- ``format_ok``, ``parse_fail`` (%), ``num_samples``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vrft.data.records import Record
from vrft.evaluate.base import SampleEvaluator, base_row, percent
from vrft.rewards.temporal import window_score

REWARD_NAMES = ("format", "temporal_iou")
THRESHOLDS = (0.3, 0.5, 0.7)


class TemporalGroundingEvaluator(SampleEvaluator):
    """Accumulates time windows (no coordinate frame: times are seconds of the video)."""

    task = "temporal_grounding"
    reward_names = REWARD_NAMES

    def process(self, records: Sequence[Record], completions: Sequence[str | None]) -> None:
        """Parse one chunk of completions (one per record)."""
        texts, frames, rewards = self._score(records, completions)
        for rec, comp, frame, rw in zip(records, texts, frames, rewards):
            pred = self._task.parse(comp, frame, require_tags=self.require_tags)
            gt = [float(v) for v in rec.window]
            value = window_score(pred.answer, gt)
            row = base_row(rec, comp, pred)
            row.update(
                query=rec.event,
                duration=rec.duration,
                fps=rec.fps,  # a frame folder's frame rate (the report samples its frames)
                gt_window=gt,
                pred_window=pred.window,
                iou=value,
                rewards=rw,
                score=value,
            )
            self.rows.append(row)

    def evaluate(self) -> dict[str, Any]:
        """``R@0.3``, ``R@0.5``, ``R@0.7``, ``mIoU``, ``format_ok``, ``parse_fail`` (%) and the count."""
        n = len(self.rows)
        rows = self.rows
        out: dict[str, Any] = {f"R@{t}": percent(sum(1 for r in rows if r["iou"] >= t), n) for t in THRESHOLDS}
        out["mIoU"] = percent(sum(r["iou"] for r in rows), n)
        return {**out, **self._answer_rates()}
