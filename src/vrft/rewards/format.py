"""Format rewards: does the completion have the ``<think>...</think> <answer>...</answer>`` shape?"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vrft.parsing import completion_text, split


def format_strict(completions: Sequence[Any], **_: Any) -> list[float]:
    """The reference's format reward, range {0, 1}: 1 when the WHOLE completion matches
    ``<think>.*?</think>\\s*<answer>.*?</answer>`` (DOTALL), so surrounding whitespace (even a final
    newline) scores 0."""
    return [1.0 if split(completion_text(c)).format_strict else 0.0 for c in completions]


def format_reward(completions: Sequence[Any], **_: Any) -> list[float]:
    """Our format reward, range {0, 1}: like :func:`format_strict` but whitespace around the
    completion is allowed (fixes the reference's rejection of a trailing newline)."""
    return [1.0 if split(completion_text(c)).format_ok else 0.0 for c in completions]


format_reward.__name__ = "format"
format_reward.__qualname__ = "format"


def format_nonempty_think(completions: Sequence[Any], **_: Any) -> list[float]:
    """Range {0, 1}: :func:`format_reward` AND a non-blank think text. Use it instead of ``format``
    against the known collapse to an empty ``<think></think>``."""
    out = []
    for c in completions:
        s = split(completion_text(c))
        out.append(1.0 if s.format_ok and s.think else 0.0)
    return out
