"""Classification evaluator: accuracy by exact normalised match, and the reference's substring rule.

Both numbers are the training rewards themselves averaged over samples
(`vrft.rewards.REWARDS["classification_exact"]` and ``["classification_substring"]``), so the metric
and the reward cannot drift apart (with ``require_tags=False``, ``--lenient-parse``, they are computed on
the lenient answer, `vrft.evaluate.base.metric_texts`):

- ``accuracy``: the answer equals the label or one of its aliases after normalisation (case-folded,
  only letters and digits kept);
- ``substring_accuracy``: the reference's rule (either normalised string contains the other). It is
  exploitable ("Audi" for "Audi A4 2012", "737" for "Boeing 737-800") and is reported separately,
  only to compare with published numbers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from vrft.data.records import Record
from vrft.evaluate.base import (
    FrameFn,
    SampleEvaluator,
    base_row,
    norm1000_frame,
    percent,
)

REWARD_NAMES = ("format", "classification_exact", "classification_substring")
METRIC_NAMES = ("classification_exact", "classification_substring")


class ClassificationEvaluator(SampleEvaluator):
    """Accumulates classification answers; metrics in % (0..100)."""

    task = "classification"
    reward_names = REWARD_NAMES

    def __init__(self, frame_fn: FrameFn = norm1000_frame, *, require_tags: bool = True) -> None:
        super().__init__(frame_fn, require_tags=require_tags)

    def process(self, records: Sequence[Record], completions: Sequence[str | None]) -> None:
        """Parse one chunk of completions (one per record)."""
        texts, frames, rewards = self._score(records, completions)  # lenient like the score (scored_rewards)
        metric = rewards
        for rec, comp, rw, m in zip(records, completions, rewards, metric):
            pred = self._task.parse(comp or "", require_tags=self.require_tags)
            row = base_row(rec, comp, pred)
            row.update(
                query="{} {}".format(*self._task.domain(rec)),
                gt_label=rec.label,
                pred_label=pred.label,
                rewards=rw,
                correct=m["classification_exact"],
                correct_substring=m["classification_substring"],
                score=m["classification_exact"],
            )
            self.rows.append(row)

    def evaluate(self) -> dict[str, Any]:
        """``accuracy``, ``substring_accuracy``, ``format_ok``, ``parse_fail`` (%), per-class accuracy."""
        n = len(self.rows)
        per_class: dict[str, list[float]] = defaultdict(list)
        for r in self.rows:
            per_class[str(r["gt_label"])].append(r["correct"])
        return {
            "accuracy": percent(sum(r["correct"] for r in self.rows), n),
            "substring_accuracy": percent(sum(r["correct_substring"] for r in self.rows), n),
            **self._answer_rates(),
            "per_class_accuracy": {k: percent(sum(v), len(v)) for k, v in sorted(per_class.items())},
        }
