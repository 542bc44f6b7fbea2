"""Counting evaluator: the answered count against the number of GT objects.

Per sample the training rewards are recorded (`vrft.rewards`: ``count_exact``, ``count_relative``,
``count_points``, on the model's coordinates). The metrics are computed with the same functions on the
parsed answer (so ``--lenient-parse`` reaches them; with tags required they equal the rewards):

- ``accuracy``: % of samples whose answered count equals the GT count (``count_exact``);
- ``mae``: mean absolute error |n - n_gt| over all samples, an unparsable answer counting as n = 0;
- ``relative``: mean ``count_relative`` (%);
- ``point_f1``: mean ``count_points`` (%), the point-in-box matching F1 (integer answers score 0);
- ``format_ok``, ``parse_fail`` (%), ``num_samples``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vrft.data.records import Record
from vrft.evaluate.base import SampleEvaluator, base_row, percent
from vrft.parsing import parse_count
from vrft.rewards.counting import count_exact_score, count_points_score, count_relative_score

REWARD_NAMES = ("format", "count_exact", "count_relative", "count_points")


class CountingEvaluator(SampleEvaluator):
    """Accumulates counting answers; `frame_fn` decodes the points to pixels of the original image."""

    task = "counting"
    reward_names = REWARD_NAMES

    def process(self, records: Sequence[Record], completions: Sequence[str | None]) -> None:
        """Parse one chunk of completions (one per record)."""
        texts, frames, rewards = self._score(records, completions)
        for rec, comp, frame, rw in zip(records, texts, frames, rewards):
            pred = self._task.parse(comp, frame, require_tags=self.require_tags)
            parsed = parse_count(pred.answer)
            gt_model = [frame.encode(b) for b in rec.boxes]
            n_gt = len(rec.boxes)
            exact = count_exact_score(parsed, n_gt)
            points = count_points_score(parsed, gt_model)
            row = base_row(rec, comp, pred)
            row.update(
                query=rec.category,
                gt_boxes=[list(map(float, b)) for b in rec.boxes],
                gt_count=n_gt,
                pred_count=pred.count if pred.ok else None,
                pred_points=pred.points or [],
                exact=exact,
                point_f1=points,
                relative=count_relative_score(parsed, n_gt),
                abs_error=abs((pred.count if pred.ok else 0) - n_gt),
                rewards=rw,
                score=exact + points,
            )
            self.rows.append(row)

    def evaluate(self) -> dict[str, Any]:
        """``accuracy``, ``mae``, ``point_f1``, ``relative``, ``format_ok``, ``parse_fail`` and the count."""
        n = len(self.rows)
        rows = self.rows
        return {
            "accuracy": percent(sum(r["exact"] for r in rows), n),
            "mae": sum(r["abs_error"] for r in rows) / n if n else None,
            "point_f1": percent(sum(r["point_f1"] for r in rows), n),
            "relative": percent(sum(r["relative"] for r in rows), n),
            **self._answer_rates(),
        }
