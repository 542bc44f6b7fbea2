"""OCR evaluator: the answered text against the record's text (both normalised: stripped, whitespace
runs collapsed to one space, case kept).

- ``edit_distance``: mean normalised edit distance Levenshtein(a, b) / max(len(a), len(b)) in code
  points, as a percentage (0 when both are empty; an unparsable answer counts 100); lower is better.
  With tags required it equals 100 minus the mean ``ocr_similarity`` reward (computed on the parsed
  answer, so ``--lenient-parse`` reaches it).
- ``exact_match``: % of samples whose normalised answer equals the normalised text (as ``ocr_exact``).
- ``word_f1``: mean word-level F1 (%): words are the normalised text split at spaces, matched as
  multisets; precision = common / answer words, recall = common / text words; 100 when both are empty,
  0 when only one is.
- ``format_ok``, ``parse_fail`` (%), ``num_samples``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from vrft.data.records import Record
from vrft.evaluate.base import SampleEvaluator, base_row, percent
from vrft.parsing import normalize_text
from vrft.rewards.ocr import text_similarity

REWARD_NAMES = ("format", "ocr_similarity", "ocr_exact")


def word_f1(answer: str, target: str) -> float:
    """Word-level F1 of two texts (normalised, split at whitespace; multiset overlap), in [0, 1]."""
    a, b = normalize_text(answer).split(), normalize_text(target).split()
    if not a and not b:
        return 1.0
    common = sum((Counter(a) & Counter(b)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(a), common / len(b)
    return 2 * precision * recall / (precision + recall)


class OCREvaluator(SampleEvaluator):
    """Accumulates OCR answers; metrics in % (0..100)."""

    task = "ocr"
    reward_names = REWARD_NAMES

    def process(self, records: Sequence[Record], completions: Sequence[str | None]) -> None:
        """Parse one chunk of completions (one per record)."""
        texts, frames, rewards = self._score(records, completions)
        for rec, comp, frame, rw in zip(records, texts, frames, rewards):
            pred = self._task.parse(comp, frame, require_tags=self.require_tags)
            gt = normalize_text(rec.text or "")
            row = base_row(rec, comp, pred)
            ned = 1.0 - text_similarity(pred.text, gt) if pred.ok else 1.0
            row.update(
                query="text",
                gt_label=gt,
                pred_label=pred.text,
                edit_distance=ned,
                exact=1.0 if pred.ok and pred.text == gt else 0.0,
                word_f1=word_f1(pred.text, gt) if pred.ok else 0.0,
                rewards=rw,
                score=1.0 - ned,
            )
            self.rows.append(row)

    def evaluate(self) -> dict[str, Any]:
        """``edit_distance``, ``exact_match``, ``word_f1``, ``format_ok``, ``parse_fail`` and the count."""
        n = len(self.rows)
        return {
            "edit_distance": percent(sum(r["edit_distance"] for r in self.rows), n),
            "exact_match": percent(sum(r["exact"] for r in self.rows), n),
            "word_f1": percent(sum(r["word_f1"] for r in self.rows), n),
            **self._answer_rates(),
        }
