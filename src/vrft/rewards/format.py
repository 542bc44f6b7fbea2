"""Format rewards: does the completion have the ``<think>...</think> <answer>...</answer>`` shape?"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vrft.parsing import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN, completion_text, split


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


def answer_only_ok(text: str) -> bool:
    """The completion, outer whitespace stripped, is exactly ``<answer>...</answer>``: it starts with
    ``<answer>``, ends with ``</answer>``, holds no other ``<answer>`` / ``</answer>`` inside and no
    think tag (``<think>`` or ``</think>``) anywhere."""
    t = text.strip()
    if not (t.startswith(ANSWER_OPEN) and t.endswith(ANSWER_CLOSE)):
        return False
    inner = t[len(ANSWER_OPEN) : len(t) - len(ANSWER_CLOSE)]
    if len(t) < len(ANSWER_OPEN) + len(ANSWER_CLOSE) or ANSWER_OPEN in inner or ANSWER_CLOSE in inner:
        return False
    return THINK_OPEN not in t and THINK_CLOSE not in t


def format_answer_only(completions: Sequence[Any], **_: Any) -> list[float]:
    """Answer-only format reward, range {0, 1}: :func:`answer_only_ok` (Perception-R1's finding that
    explicit thinking hurts perception; `data.answer_format: answer_only`)."""
    return [1.0 if answer_only_ok(completion_text(c)) else 0.0 for c in completions]
