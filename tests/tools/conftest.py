"""Scripted rollouts for the tool tests: a random tiny model never writes a tool call, so these tests force
the tokens it samples (a `LogitsProcessor` on the REAL generate: the model still runs on the prompt, the
dataset image and the tool images; only the chosen tokens are scripted)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from tests.train.conftest import (  # noqa: F401  (fixtures re-exported for tests/tools)
    _one_thread,
    make_config,
    read_jsonl,
    reward_module,
    state_dict_of,
    tiny_config,
)
from transformers import LogitsProcessor, LogitsProcessorList

ZOOM = '<think>look closer</think>\n<tool_call>\n{"name": "zoom_in", "arguments": {"bbox_2d": [0, 0, 500, 500]}}\n</tool_call>'
OUTSIDE = '<tool_call>\n{"name": "zoom_in", "arguments": {"bbox_2d": [0, 0, 2000, 500]}}\n</tool_call>'
BAD_JSON = "<tool_call>\n{zoom_in [0, 0\n</tool_call>"
UNKNOWN = '<tool_call>\n{"name": "crop", "arguments": {"box": [1]}}\n</tool_call>'
ANSWER = "<think>a shape</think> <answer>circle</answer>"


class _Script(LogitsProcessor):
    """Forces row i of a generate call to write `texts[i]` then the end-of-turn token."""

    def __init__(self, token_rows: list[list[int]], start: int, eos: int):
        self.rows, self.start, self.eos = token_rows, start, eos

    def __call__(self, input_ids, scores):
        t = input_ids.shape[1] - self.start
        forced = torch.full_like(scores, float("-inf"))
        for i, row in enumerate(self.rows):
            forced[i, row[t] if t < len(row) else self.eos] = 0.0
        return forced


def script_generation(model, tokenizer, choose: Callable[[str, int], str]) -> list[str]:
    """Make `model.generate` write ``choose(decoded_prompt_row, row_index)`` for each row (then
    ``<|im_end|>``); returns the list of the texts written, call after call."""
    original = model.generate
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    written: list[str] = []

    @functools.wraps(original)
    def generate(*args, **kwargs):
        ids = kwargs["input_ids"]
        texts = [choose(tokenizer.decode(row, skip_special_tokens=False), i) for i, row in enumerate(ids)]
        written.extend(texts)
        rows = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        kwargs["logits_processor"] = LogitsProcessorList([_Script(rows, ids.shape[1], eos)])
        return original(*args, **kwargs)

    model.generate = generate
    return written


def first_call_then_answer(calls: list[str]) -> Callable[[str, int], str]:
    """Row i calls ``calls[i % len(calls)]`` in its first turn, and answers once it has seen a tool result."""

    def choose(prompt: str, i: int) -> str:
        return ANSWER if "<tool_response>" in prompt else calls[i % len(calls)]

    return choose
