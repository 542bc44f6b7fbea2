"""Learning-signal figures shared by `vrft doctor` and the per-step training logs.

Pure functions on plain Python sequences (no torch import), so the trainer's callbacks and the
doctor compute the same numbers the same way.

GRPO's advantage is each completion's reward minus its group's mean (divided by the group's sd):
a group whose G rewards are all equal gives every completion advantage 0 and so no gradient.
`group_signals` reports the share of such groups and the mean within-group sd.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Two rewards closer than this count as equal (a flat group).
FLAT_EPS = 1e-9


@dataclass(frozen=True)
class GroupSignals:
    """`zero_sd_share`: share of groups whose rewards are all equal (advantage 0, no learning signal);
    `mean_within_sd`: the mean over groups of the population sd of each group's rewards;
    `n_groups`: how many complete groups were seen (0 when there were none)."""

    zero_sd_share: float
    mean_within_sd: float
    n_groups: int


def group_signals(rewards: Sequence[float], group_size: int) -> GroupSignals:
    """Flat-group share and mean within-group sd of `rewards` in TRL order: `group_size`
    consecutive completions per prompt. A trailing partial group is ignored. Non-finite rewards
    count as 0 (a reward function never returns them; this keeps the figures finite anyway).
    With no complete group both figures are 0.0 and `n_groups` is 0."""
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    values = [float(r) if math.isfinite(float(r)) else 0.0 for r in rewards]
    n_groups = len(values) // group_size
    if n_groups == 0:
        return GroupSignals(zero_sd_share=0.0, mean_within_sd=0.0, n_groups=0)
    flat = 0
    sd_sum = 0.0
    for g in range(n_groups):
        group = values[g * group_size : (g + 1) * group_size]
        if max(group) - min(group) <= FLAT_EPS:
            flat += 1
        mean = sum(group) / len(group)
        sd_sum += math.sqrt(sum((x - mean) ** 2 for x in group) / len(group))
    return GroupSignals(zero_sd_share=flat / n_groups, mean_within_sd=sd_sum / n_groups, n_groups=n_groups)


def truncation_share(completion_lengths: Sequence[int], max_completion_length: int) -> float:
    """Share of completions whose length (in tokens) reached `max_completion_length`: generation
    stopped because of the limit, not because the model ended its answer. 0.0 when empty."""
    if not completion_lengths:
        return 0.0
    hit = sum(1 for n in completion_lengths if int(n) >= max_completion_length)
    return hit / len(completion_lengths)


def parse_failure_reasons(predictions_or_reasons: Iterable[Any]) -> dict[str, int]:
    """Count parse-failure reasons: reason -> count, most frequent first, with "ok" (a parsed answer)
    and empty strings left out. Items are the parsers' `reason` strings, or parsed predictions
    (`vrft.tasks.Prediction`: an item with `ok` true counts as "ok", else its `reason`)."""
    counts = Counter(r for r in map(_reason_of, predictions_or_reasons) if r and r != "ok")
    return dict(counts.most_common())


def _reason_of(item: Any) -> str:
    if isinstance(item, str):
        return item
    if getattr(item, "ok", False):
        return "ok"
    return str(getattr(item, "reason", "") or "")


def top_reasons(counts: Mapping[str, int], k: int) -> list[tuple[str, int]]:
    """The `k` most frequent reasons as (reason, count), ties broken by reason for a stable order."""
    if k <= 0:
        return []
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:k]
