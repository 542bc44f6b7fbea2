"""Reading a multi-turn completion: its final answer and its tool calls, and the per-step counters.

Under tools, TRL hands a reward one completion as a list of messages: assistant turns (``content``,
and ``tool_calls`` when the turn called tools) and ``{"role": "tool", ...}`` results, whose content is
``str({"error": ...})`` when the tool refused or failed. `trace_of` reads one completion:

- calls: the tool results (one per executed call) plus the malformed calls: ``<tool_call>`` text left in
  an assistant turn, which TRL's parser could not read (bad JSON), so nothing ran;
- errors: the tool results holding an error, plus the malformed calls;
- turns: the assistant turns;
- final: the text of the last message when it is an assistant turn without a tool call (the answer the
  task's rewards score), with any ``<tool_call>`` text removed; ``""`` when the rollout ended on a call.

A plain string completion (no tools) is one turn whose final text is the string minus any
``<tool_call>`` text.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vrft.parsing import completion_text

TOOL_CALL_TEXT = re.compile(r"<tool_call>.*?(?:</tool_call>|\Z)", re.S)


@dataclass(frozen=True)
class Trace:
    """What one completion did with tools (see the module docstring)."""

    calls: int
    errors: int
    turns: int
    final: str
    answered: bool

    @property
    def succeeded(self) -> int:
        return self.calls - self.errors


def is_error(content: Any) -> bool:
    """A tool message's content that reports a refusal or failure (TRL writes ``str({"error": ...})``)."""
    return isinstance(content, str) and content.lstrip().startswith(("{'error'", '{"error"'))


def trace_of(completion: Any) -> Trace:
    """The `Trace` of one completion (a string, or TRL's list of messages); never raises."""
    if not isinstance(completion, list | tuple):
        text = completion_text(completion)
        bad = len(TOOL_CALL_TEXT.findall(text))
        return Trace(bad, bad, 1, TOOL_CALL_TEXT.sub("", text), True)
    calls = errors = turns = 0
    for m in completion:
        if not isinstance(m, dict):
            continue
        if m.get("role") == "tool":
            calls += 1
            errors += is_error(m.get("content"))
        elif m.get("role") == "assistant":
            turns += 1
            bad = len(TOOL_CALL_TEXT.findall(completion_text(m)))
            calls += bad
            errors += bad
    last = completion[-1] if completion else None
    answered = isinstance(last, dict) and last.get("role") == "assistant" and not last.get("tool_calls")
    final = TOOL_CALL_TEXT.sub("", completion_text(last)) if answered else ""
    return Trace(calls, errors, turns, final, answered)


def final_answers(completions: Sequence[Any]) -> list[str]:
    """The final answer text of each completion (what the task's rewards score under tools)."""
    return [trace_of(c).final for c in completions]


def on_final_answer(fn: Callable[..., list]) -> Callable[..., list]:
    """A reward that scores only the final answer of each completion (same ``__name__``)."""

    def scored(completions, **kwargs):
        return fn(completions=final_answers(completions), **kwargs)

    scored.__name__ = scored.__qualname__ = getattr(fn, "__name__", "reward")
    scored.__doc__ = fn.__doc__
    return scored


class ToolStats:
    """Per-step tool counters, fed with every scored batch of completions, read by `MetricsWriter`.

    `observe(completions)` adds a batch; `pop_window()` returns the means since the last pop as
    ``train/tools/calls`` (calls per rollout), ``train/tools/errors`` (errors per rollout),
    ``train/tools/turns`` (assistant turns per rollout), ``train/tools/used`` (share of rollouts with at
    least one call) and ``train/tools/answered`` (share ending in an answer turn); {} when nothing was seen.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sums = [0, 0, 0, 0, 0, 0]  # rollouts, calls, errors, turns, used, answered

    def observe(self, completions: Sequence[Any]) -> None:
        traces = [trace_of(c) for c in completions]
        with self._lock:
            for t in traces:
                for i, v in enumerate((1, t.calls, t.errors, t.turns, t.calls > 0, t.answered)):
                    self._sums[i] += int(v)

    def wrap(self, fn: Callable[..., list]) -> Callable[..., list]:
        """`fn` (a reward) that first shows its completions to these counters (same ``__name__``)."""

        def observed(completions, **kwargs):
            self.observe(completions)
            return fn(completions=completions, **kwargs)

        observed.__name__ = observed.__qualname__ = getattr(fn, "__name__", "reward")
        observed.__doc__ = fn.__doc__
        return observed

    def pop_window(self) -> dict[str, float]:
        with self._lock:
            n, calls, errors, turns, used, answered = self._sums
            self._sums = [0] * 6
        if not n:
            return {}
        return {
            "train/tools/calls": calls / n,
            "train/tools/errors": errors / n,
            "train/tools/turns": turns / n,
            "train/tools/used": used / n,
            "train/tools/answered": answered / n,
        }
