"""Helpers shared by the reward functions: TRL columns and completions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vrft.parsing import completion_text, split


def answers(completions: Sequence[Any]) -> list[str | None]:
    """The answer text of each completion (``None`` without a complete ``<answer>`` pair)."""
    return [split(completion_text(c)).answer for c in completions]


def column(name: str, values: Any, n: int, reward: str) -> list[Any]:
    """Check that the dataset column ``name`` is present with one value per completion."""
    if values is None:
        raise ValueError(
            f"reward {reward!r} needs the dataset column {name!r} (build the dataset with the task's "
            "reward_columns, see vrft.tasks)"
        )
    values = list(values)
    if len(values) != n:
        raise ValueError(f"reward {reward!r}: column {name!r} has {len(values)} values for {n} completions")
    return values


def optional_column(values: Any, n: int) -> list[Any]:
    """A column that may be absent (``None`` for every completion)."""
    if values is None:
        return [None] * n
    values = list(values)
    return values if len(values) == n else [None] * n
