"""`ToolGenerator` answers requests in batches: batch_size 1 and 4 give the same answers, transcripts and zoom
regions (requests ending after different numbers of turns, images of different sizes), the requests each on
their own environment."""

from __future__ import annotations

import re

import pytest
from PIL import Image

from .conftest import ANSWER, script_generation

SIZES = [(56, 56), (112, 84), (84, 112), (70, 98), (112, 112), (98, 56)]


def _zoom(k: int, n: int) -> str:
    """Request k's n-th call: a region of its own (norm1000 coordinates)."""
    x, y = 50 * k, 100 * n
    box = [x, y, x + 400, y + 300]
    return f'<think>look {k}</think>\n<tool_call>\n{{"name": "zoom_in", "arguments": {{"bbox_2d": {box}}}}}\n</tool_call>'


def _choose(prompt: str, row: int) -> str:
    """Request k (its prompt says "request k") calls zoom_in k % 5 times, then answers: 0 to 3 calls, and
    request 4 always calls (it stops at max_calls + 1 = 4 turns)."""
    k = int(re.search(r"request (\d+)", prompt).group(1))
    done = prompt.count("<tool_response>")
    return _zoom(k, done) if done < k % 5 else ANSWER.replace("circle", f"answer {k}")


@pytest.fixture(scope="module")
def qwen3():
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from vrft.models.tiny import cached_tiny

    torch.set_num_threads(1)
    path = cached_tiny("qwen3_vl")
    return AutoModelForImageTextToText.from_pretrained(path), AutoProcessor.from_pretrained(path)


def _requests(tmp_path, n: int, max_new_tokens: int = 128):
    from vrft.evaluate.runner import Request

    out = []
    for k in range(n):
        w, h = SIZES[k % len(SIZES)]
        image = tmp_path / f"{k}.png"
        Image.new("RGB", (w, h), (40 * k % 256, 90, 200)).save(image)
        # request 3's budget cuts its call short (a turn without a call: it ends), the others' do not
        out.append(Request(str(image), f"request {k}: which shape is it?", 40 if k == 3 else max_new_tokens))
    return out


def _answer(model, processor, requests, batch_size: int):
    from vrft.tools.generate import tool_generator

    generator = tool_generator("zoom_in", None, model, processor, "norm1000", batch_size=batch_size,
                               progress=False)  # fmt: skip
    answers = generator.generate(requests)
    return generator, answers


def test_batches_of_scripted_tool_calls_match_one_at_a_time(qwen3, tmp_path):
    model, processor = qwen3
    requests = _requests(tmp_path, 6)
    original = model.generate
    results = {}
    try:
        for batch_size in (1, 4):
            written = script_generation(model, processor.tokenizer, _choose)
            calls = []
            scripted = model.generate

            def counting(*args, _scripted=scripted, _calls=calls, **kwargs):
                _calls.append(kwargs["input_ids"].shape[0])
                return _scripted(*args, **kwargs)

            model.generate = counting
            generator, answers = _answer(model, processor, requests, batch_size)
            results[batch_size] = (answers, generator.transcripts, generator.zooms, len(written), calls)
            model.generate = original
    finally:
        model.generate = original
    one, four = results[1], results[4]
    assert one[:4] == four[:4]  # answers, transcripts, zoom regions, turns written
    answers, transcripts, zooms, turns, _ = four
    assert [f"<answer>answer {k}</answer>" in a for k, a in enumerate(answers)] == [True] * 3 + [
        False
    ] * 2 + [True]
    assert answers[3] == "<think>look 3</think>\n"  # its call was cut at 40 tokens: no call, it ended
    assert answers[4] == ""  # still calling after max_calls + 1 = 4 turns: no final answer
    assert [t.count("<tool_response>") for t in transcripts] == [0, 1, 2, 0, 4, 0]
    assert turns == 1 + 2 + 3 + 1 + 4 + 1
    # each request zoomed on its own image, in its own pixels (max_images 2: later zooms are refused);
    # request 1's 112x84 image: norm1000 [50, 0, 450, 300] -> [5.6, 0, 50.4, 25.2]
    assert [len(z) for z in zooms] == [0, 1, 2, 0, 2, 0]
    assert zooms[1] == [[5.6, 0.0, 50.4, 25.2]] and zooms[2][0] == [8.4, 0.0, 42.0, 33.6]
    # batch 1: one row per generate; batch 4: at most 4 rows, refilled as requests finish
    assert one[4] == [1] * turns and max(four[4]) == 4 and len(four[4]) < turns


def test_batches_of_real_generation_match_one_at_a_time(qwen3, tmp_path):
    """Unscripted greedy decoding of the tiny random Qwen3-VL (fp32, images of different sizes, so the rows
    are padded differently): left padding changes no token."""
    model, processor = qwen3
    requests = _requests(tmp_path, 6, 12)
    one, answers_one = _answer(model, processor, requests, 1)
    four, answers_four = _answer(model, processor, requests, 4)
    assert answers_one == answers_four and one.transcripts == four.transcripts
    assert len(set(answers_one)) > 1  # the requests really got different text


def test_batch_size_below_one_is_refused(qwen3):
    from vrft.errors import UserError

    model, processor = qwen3
    with pytest.raises(UserError, match="--batch-size must be >= 1, got 0"):
        _answer(model, processor, [], 0)
    generator, answers = _answer(model, processor, [], 2)
    assert answers == [] and generator.messages == []
