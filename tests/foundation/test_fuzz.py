"""100k random and mutated completions through the shared parser and the detection scorer:
no exception, every number finite, every reward in range."""

from __future__ import annotations

import math
import random
import time

import pytest

from vrft.parsing import parse_box, parse_detections, parse_label, split
from vrft.rewards.detection import score_detections

VALID = [
    "<think>two cats</think> <answer>[{'Position': [10, 20, 300, 400], 'Confidence': 0.93}, "
    "{'Position': [500, 20, 900, 410], 'Confidence': 0.5}]</answer>",
    '<think>x</think><answer>[[{"Position": [1, 2, 3, 4], "Confidence": "0.9"}]]</answer>',
    "<think>none</think>\n<answer>No Objects</answer>\n",
    "<think>it is a rose</think> <answer>Wild Rose</answer>",
    "<think>the cup</think> <answer>(120,340),(560,880)</answer>",
    '<think>a</think><answer>```json\n[{"bbox_2d": [1, 2, 30, 40], "label": "cup"}]\n```</answer>',
]
INSERTS = [
    "NaN",
    "Infinity",
    "-Infinity",
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "'",
    '"',
    ",",
    ":",
    "(",
    ")",
    "<answer>",
    "</answer>",
    "<think>",
    "</think>",
    "1e999",
    "-0",
    ".",
    "\\",
    " ",
    "\n",
    "No Objects",
    "'Position'",
    "'Confidence'",
    "1" * 30,
]
ALPHABET = "[]{}()'\",:.-+0123456789eE NaInfity\n<>/answerthink\\Position_Confidence"


def mutate(rng: random.Random, text: str) -> str:
    for _ in range(rng.randint(1, 6)):
        i = rng.randrange(len(text) + 1)
        op = rng.random()
        if op < 0.35:
            text = text[:i] + rng.choice(INSERTS) + text[i:]
        elif op < 0.5:
            text = text[: rng.randrange(len(text) + 1)]  # truncation
        elif op < 0.75 and len(text) > 1:
            j = rng.randrange(len(text))
            chars = list(text)
            chars[i % len(chars)], chars[j] = chars[j], chars[i % len(chars)]  # char swap
            text = "".join(chars)
        elif op < 0.9:
            text = text[:i] + text[i + rng.randint(1, 5) :]  # deletion
        else:
            text = text[:i] + rng.choice(ALPHABET) + text[i:]
    return text


def random_text(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 80)))


def finite(x) -> bool:
    return isinstance(x, float) and math.isfinite(x)


@pytest.mark.slow  # 100k completions (~2.5 s)
def test_fuzz_100k_completions():
    rng = random.Random(12345)
    gts = [[], [[10, 20, 300, 400]], [[10, 20, 300, 400], [500, 20, 900, 410]]]
    n_ok = n_box = 0
    t0 = time.perf_counter()
    for k in range(100_000):
        text = random_text(rng) if k % 5 == 0 else mutate(rng, rng.choice(VALID))
        c = split(text)
        assert isinstance(c.format_ok, bool) and isinstance(c.format_strict, bool)
        assert c.format_ok or not c.format_strict
        d = parse_detections(c.answer)
        assert d.n_invalid >= 0
        for det in d.detections:
            assert all(finite(v) for v in det.box) and det.box[0] <= det.box[2] and det.box[1] <= det.box[3]
            assert finite(det.confidence) and 0.0 <= det.confidence <= 1.0
        if d.ok and d.detections:
            n_ok += 1
        if k % 2 == 0 or d.detections:  # the scorer on every parsed list and half of the rest
            s = score_detections(d, gts[k % 3])
            assert finite(s.iou) and 0.0 <= s.iou <= 1.0
            assert finite(s.confidence) and 0.0 <= s.confidence <= 1.0
        b = parse_box(c.answer)
        assert b.ok == (b.box is not None)
        if b.box is not None:
            n_box += 1
            assert all(finite(v) for v in b.box)
        lab = parse_label(c.answer)
        assert isinstance(lab.label, str)
    elapsed = time.perf_counter() - t0
    # the mutations keep a share of the answers parseable, so salvage paths are exercised too
    assert n_ok > 2_000 and n_box > 2_000
    assert elapsed < 60  # normally ~10 s on one core
