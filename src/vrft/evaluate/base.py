"""What every evaluator shares: the reset / process / evaluate protocol and the per-sample row.

An evaluator is fed ``(records, completions)`` in chunks (``process``), accumulates per-sample
rows (written to ``predictions.jsonl`` and shown in the report), and computes its metrics once
(``evaluate``). A completion of ``None`` means the model was not asked (the paper protocol's
presence pass said "no"): it counts as an empty answer, not as a parse failure.

Per-sample rewards are computed with the training rewards themselves (`vrft.rewards`) on the task's
reward columns, so the number a sample is sorted by in the report is the number training optimises.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from vrft.boxes import Frame
from vrft.data.records import Record
from vrft.tasks.base import record_frame

logger = logging.getLogger(__name__)

FrameFn = Callable[[Record], "Frame | list[Frame]"]
"""A record's frame: one `Frame` for a one-image or video record (a video's frame size), one per
image (a list) for an ``images`` record (`record_frame`)."""

NOT_ASKED_COMPLETION = "<answer>No Objects</answer>"
"""The effective answer of a detection query the model was not asked (presence pass said no)."""


class Evaluator(Protocol):
    """The evaluation protocol (as detectron2's evaluators)."""

    task: str
    rows: list[dict]

    def reset(self) -> None:
        """Forget everything processed so far."""

    def process(self, records: Sequence[Record], completions: Sequence[str | None]) -> None:
        """Parse and accumulate one chunk of completions (one per record, same order)."""

    def evaluate(self) -> dict[str, Any]:
        """Metrics of everything processed (percentages on 0..100, counts as integers)."""


class SampleEvaluator:
    """What the one-row-per-sample evaluators (classification, grounding) share: the task object, the
    frame function, the rows, and checking and scoring a chunk with the training rewards."""

    task: str = ""
    reward_names: tuple[str, ...] = ()

    def __init__(self, frame_fn: FrameFn, *, require_tags: bool = True) -> None:
        from vrft.tasks import TASKS

        self._task = TASKS[self.task]
        self.frame_fn = frame_fn
        self.require_tags = require_tags
        self.reset()

    def reset(self) -> None:
        """Forget all processed samples."""
        self.rows: list[dict] = []

    def _answer_rates(self) -> dict[str, Any]:
        """``format_ok`` and ``parse_fail`` (% of the rows) and ``num_samples``: the tail of every
        one-row-per-sample evaluator's metrics."""
        n = len(self.rows)
        return {
            "format_ok": percent(sum(r["rewards"]["format"] for r in self.rows), n),
            "parse_fail": percent(sum(1 for r in self.rows if not r["parse_ok"]), n),
            "num_samples": n,
        }

    def _score(
        self, records: Sequence[Record], completions: Sequence[str | None]
    ) -> tuple[list[str], list[Frame], list[dict[str, float]]]:
        """One chunk's texts (None -> ""), frames and rewards (`reward_names`)."""
        if len(records) != len(completions):
            raise ValueError(f"{len(records)} records but {len(completions)} completions")
        texts = [c or "" for c in completions]
        frames = [self.frame_fn(r) for r in records]
        return texts, frames, scored_rewards(
            self._task, records, texts, frames, self.reward_names, require_tags=self.require_tags
        )


def norm1000_frame(record: Record) -> Frame | list[Frame]:
    """The paper's frame: 0..1000 of the original image(s) (used when re-scoring saved completions)."""
    return record_frame(record, lambda w, h: Frame(w, h, "norm1000"))


def sample_rewards(
    task: Any,
    records: Sequence[Record],
    completions: Sequence[str],
    frames: Sequence[Frame],
    names: Sequence[str],
) -> list[dict[str, float]]:
    """``[{reward name: value}]`` per sample, computed by `vrft.rewards.REWARDS[name]` on the task's
    reward columns (model convention), exactly as training computes them.

    ``"format"`` is the format reward of each record's answer format: ``format`` for the think format,
    ``format_answer_only`` for an answer-only record (``record.answer_format``)."""
    from vrft.rewards import REWARDS
    from vrft.tasks.base import is_answer_only

    if not records:
        return []
    cols = [task.reward_columns(r, f) for r, f in zip(records, frames)]
    columns = {k: [c[k] for c in cols] for k in cols[0]}
    out: list[dict[str, float]] = [{} for _ in records]
    for name in names:
        values = REWARDS[name](list(completions), **columns)
        if name == "format" and any(is_answer_only(r) for r in records):
            answer_only = REWARDS["format_answer_only"](list(completions))
            values = [a if is_answer_only(r) else v for r, v, a in zip(records, values, answer_only)]
        for row, value in zip(out, values):
            row[name] = float(value) if value is not None else None
    return out


def scored_rewards(
    task: Any,
    records: Sequence[Record],
    completions: Sequence[str],
    frames: Sequence[Frame],
    names: Sequence[str],
    *,
    require_tags: bool,
) -> list[dict[str, float]]:
    """Per-sample rewards on the same basis as the metric and the score: with ``require_tags`` as
    training computes them; under ``--lenient-parse`` the format rewards (``format*``: they score the
    tags as written) on the text as written and every other reward on the lenient reading
    (`metric_texts`), as the score is."""
    rewards = sample_rewards(task, records, completions, frames, names)
    if require_tags:
        return rewards
    others = tuple(n for n in names if not n.startswith("format"))
    lenient = sample_rewards(task, records, metric_texts(completions, False), frames, others)
    return [{**strict, **loose} for strict, loose in zip(rewards, lenient, strict=True)]


def metric_texts(completions: Sequence[str], require_tags: bool) -> list[str]:
    """The completions the METRIC rewards are computed on: as given with ``require_tags``; otherwise a
    completion without a complete ``<answer>`` pair is replaced by its lenient answer
    (`vrft.parsing.lenient_answer`) wrapped in the tags, so ``--lenient-parse`` reaches accuracy, mean
    IoU, the report's sort score and the per-sample rewards but ``format`` (`scored_rewards`)."""
    from vrft.parsing import ANSWER_CLOSE, ANSWER_OPEN, lenient_answer, split

    if require_tags:
        return list(completions)
    out = []
    for c in completions:
        text = c or ""
        out.append(
            text if split(text).answer is not None else f"{ANSWER_OPEN}{lenient_answer(text)}{ANSWER_CLOSE}"
        )
    return out


def set_answer_format(records: Sequence[Record], answer_format: str | None) -> list[Record]:
    """Copies of `records` asking for `answer_format` ("think" / "answer_only"); None: unchanged (each
    record's own ``answer_format``, think when unset)."""
    import dataclasses

    if answer_format is None:
        return list(records)
    if answer_format not in ("think", "answer_only"):
        raise ValueError(f"unknown answer format {answer_format!r} (think or answer_only)")
    return [dataclasses.replace(r, answer_format=answer_format) for r in records]


def base_row(record: Record, completion: str | None, prediction: Any) -> dict[str, Any]:
    """The fields every predictions.jsonl row has (also a `vrft.report.html` sample dict)."""
    row = {
        "id": record.id,
        "task": record.task,
        "image_id": record.image_id,
        "image": str(record.resolved_image()) if record.image is not None else None,
        "width": record.width,
        "height": record.height,
        "completion": completion,
        "parsed": prediction.to_dict() if prediction is not None else None,
        "parse_ok": prediction.ok if prediction is not None else None,
        "reason": prediction.reason if prediction is not None else "not asked",
    }
    if record.images is not None:  # a many-image record: every image (resolved), in order
        row["images"] = [str(p.path) for p in record.visual_parts()]
    if record.video is not None:
        row["video"] = str(record.visual_parts()[0].path)
    return row


def percent(numerator: float, denominator: int) -> float | None:
    """100 * numerator / denominator, or None for an empty denominator."""
    return 100.0 * numerator / denominator if denominator else None
