"""Replaying a tool trace with the real tools: the messages TRL's loop would have produced.

A trace is what the assistant wrote: a list of turns ``{"content": str, "tool_calls": [{"name": ...,
"arguments": {...}}, ...]}`` (a record's ``trace`` field for SFT, an exploit of `vrft audit --tools`).
`play` runs every call on a fresh environment (`vrft.tools.env`) as `GRPOTrainer._tool_call_loop` does:
a known tool is called with the arguments as keywords; a refusal or failure becomes the content
``str({"error": message})``; an unknown tool gives TRL's ``Tool <name> not found.`` error. The results are
never stored in the trace: they are made again, by the tools the model will use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def tool_calls(calls: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``[{"name", "arguments"}]`` -> TRL's ``[{"type": "function", "function": {...}}]``."""
    return [{"type": "function", "function": {"name": c["name"], "arguments": dict(c.get("arguments") or {})}}
            for c in calls]  # fmt: skip


def play(trace: Sequence[dict[str, Any]], env: Any) -> list[dict[str, Any]]:
    """The completion's messages for `trace` on `env` (already `reset` on the record's image)."""
    messages: list[dict[str, Any]] = []
    for turn in trace:
        calls = list(turn.get("tool_calls") or [])
        message: dict[str, Any] = {"role": "assistant", "content": str(turn.get("content") or "")}
        if calls:
            message["tool_calls"] = tool_calls(calls)
        messages.append(message)
        for call in message.get("tool_calls", []):
            name, arguments = call["function"]["name"], call["function"]["arguments"]
            method = getattr(type(env), name, None) if not name.startswith("_") and name != "reset" else None
            try:
                if method is None or not callable(method):
                    raise ValueError(f"Tool {name} not found.")
                result = getattr(env, name)(**arguments)
            except Exception as err:  # exactly what TRL shows the model
                result = {"error": str(err)}
            content = result if isinstance(result, list) else str(result)
            messages.append({"role": "tool", "name": name, "content": content})
    return messages
