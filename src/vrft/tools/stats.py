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


# ------------------------------------------------------------------------------------- transcripts
def transcript(completion: Any) -> str:
    """A multi-turn completion as one readable text in Qwen's tool markup: each assistant turn, its calls
    as ``<tool_call>{json}</tool_call>``, each result as ``<tool_response>text [image WxH]</tool_response>``
    (samples.jsonl under tools). A string completion is returned as it is."""
    import json

    if not isinstance(completion, list | tuple):
        return completion_text(completion)
    parts = []
    for m in completion:
        if not isinstance(m, dict):
            continue
        if m.get("role") == "tool":
            content = m.get("content")
            blocks = content if isinstance(content, list) else [{"type": "text", "text": str(content)}]
            shown = []
            for b in blocks:
                image = b.get("image") if isinstance(b, dict) else None
                if image is not None:
                    shown.append(f"[image {getattr(image, 'width', '?')}x{getattr(image, 'height', '?')}]")
                elif isinstance(b, dict) and isinstance(b.get("text"), str):
                    shown.append(b["text"])
            parts.append(f"<tool_response>{' '.join(shown)}</tool_response>")
            continue
        parts.append(completion_text(m))
        for call in m.get("tool_calls") or []:
            fn = call.get("function", call) if isinstance(call, dict) else {}
            body = {"name": fn.get("name"), "arguments": fn.get("arguments")}
            parts.append(f"<tool_call>{json.dumps(body, default=str)}</tool_call>")
    return "".join(parts)


def final_of_transcript(text: str) -> str:
    """The final answer of a `transcript`: the text after the last tool result, "" when it holds a call."""
    tail = text.rsplit("</tool_response>", 1)[-1]
    return "" if "<tool_call>" in tail else tail
