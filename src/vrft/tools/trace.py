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
            messages.append(run_call(env, call))
    return messages


def run_call(env: Any, call: dict[str, Any]) -> dict[str, Any]:
    """One call (TRL's ``{"type": "function", "function": {"name", "arguments"}}``) on `env` -> the tool
    message, as `GRPOTrainer._tool_call_loop` makes it (errors as ``str({"error": ...})``)."""
    function = call.get("function", call) if isinstance(call, dict) else {}
    name = str(function.get("name", "unknown"))
    arguments = function.get("arguments")
    method = getattr(type(env), name, None) if not name.startswith("_") and name != "reset" else None
    try:
        if method is None or not callable(method):
            raise ValueError(f"Tool {name} not found.")
        if not isinstance(arguments, dict):
            raise ValueError(f"{name}: the arguments must be a JSON object")
        result = getattr(env, name)(**arguments)
    except Exception as err:  # exactly what TRL shows the model
        result = {"error": str(err)}
    content = result if isinstance(result, list) else str(result)
    return {"role": "tool", "name": name, "content": content}


MAX_TRACE_TURNS = 33
"""Most turns in a record's trace (`tools.max_calls` is at most 32, plus the final answer)."""


def trace_problems(trace: Any) -> list[str]:
    """Why a record's ``trace`` is not ``[{"content": str, "tool_calls": [{"name": str, "arguments":
    {...}}]}, ..., {"content": "<final answer>"}]`` (the last turn calls no tool); [] when it is."""
    if not isinstance(trace, list) or not 1 <= len(trace) <= MAX_TRACE_TURNS:
        return [f"must be a list of 1..{MAX_TRACE_TURNS} assistant turns, the last one the final answer"]
    problems = []
    for i, turn in enumerate(trace):
        where = f"[{i}]"
        if not isinstance(turn, dict) or set(turn) - {"content", "tool_calls"}:
            problems.append(f"{where}: a turn is an object with 'content' and optionally 'tool_calls'")
            continue
        if not isinstance(turn.get("content", ""), str):
            problems.append(f"{where}.content: must be a string")
        calls = turn.get("tool_calls") or []
        if not isinstance(calls, list):
            problems.append(f"{where}.tool_calls: must be a list of {{'name', 'arguments'}} objects")
            continue
        if i == len(trace) - 1 and calls:
            problems.append(f"{where}: the last turn is the final answer: it calls no tool")
        for k, call in enumerate(calls):
            ok = (
                isinstance(call, dict)
                and set(call) <= {"name", "arguments"}
                and isinstance(call.get("name"), str)
                and call["name"].strip()
                and isinstance(call.get("arguments", {}), dict)
            )
            if not ok:
                problems.append(f"{where}.tool_calls[{k}]: must be {{'name': str, 'arguments': {{...}}}}")
    return problems
