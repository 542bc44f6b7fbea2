"""Reward functions (vrft.rewards): the reference's worked values, fixed defects, ranges."""

from __future__ import annotations

import math
import random

import pytest

from vrft.errors import ConfigError
from vrft.rewards import PRESETS, REWARDS, get_reward, rewards_for
from vrft.rewards.classification import normalize_label


def comp(answer: str, think: str = "ok") -> str:
    return f"<think>{think}</think> <answer>{answer}</answer>"


def det(*entries) -> str:
    return "[" + ", ".join(f"{{'Position': {list(b)}, 'Confidence': {c}}}" for b, c in entries) + "]"


A, B, C = [0, 0, 100, 100], [200, 200, 300, 300], [500, 500, 600, 600]


def one(name: str, completion, **cols) -> float:
    return REWARDS[name]([completion], **{k: [v] for k, v in cols.items()})[0]


# ---------------------------------------------------------------- registry


def test_names_are_distinct_and_match_registry():
    assert len({fn.__name__ for fn in REWARDS.values()}) == len(REWARDS)
    for key, fn in REWARDS.items():
        assert fn.__name__ == key


def test_presets_reference_registered_rewards_and_log_parse_fail():
    for preset, tasks in PRESETS.items():
        assert {"detection", "classification", "grounding"} <= set(tasks)
        assert set(tasks) <= {
            "detection", "classification", "grounding", "counting", "ocr", "temporal_grounding", "multi_image_grounding",
        }
        for task, weights in tasks.items():
            assert set(weights) <= set(REWARDS)
            assert weights[f"parse_fail_{task}"] == 0.0
            fns, ws = rewards_for(task, preset)
            assert [f.__name__ for f in fns] == list(weights) and ws == list(weights.values())


def test_rewards_for_overrides_and_errors():
    fns, ws = rewards_for("detection", "default", {"format": 0, "format_nonempty_think": 1})
    names = [f.__name__ for f in fns]
    assert names[-1] == "format_nonempty_think" and ws[names.index("format")] == 0.0 and ws[-1] == 1.0
    with pytest.raises(ConfigError, match="did you mean 'detection_iou'"):
        rewards_for("detection", "default", {"detection_iuo": 1})
    with pytest.raises(ConfigError):
        rewards_for("segmentation", "default")
    with pytest.raises(ConfigError):
        rewards_for("detection", "nope")
    assert get_reward("vrft.rewards.format:format_strict") is REWARDS["format_strict"]
    with pytest.raises(ConfigError):
        get_reward("vrft.rewards.format:missing")


def test_missing_column_is_a_clear_error():
    with pytest.raises(ValueError, match="gt_boxes"):
        REWARDS["detection_iou"]([comp("[]")])


# ---------------------------------------------------------------- format


@pytest.mark.parametrize(
    "completion, strict, tolerant, nonempty",
    [
        ("<think>x</think><answer>y</answer>", 1, 1, 1),
        ("<think>x</think>\n<answer>y</answer>\n", 0, 1, 1),
        ("\n<think>x</think><answer>y</answer>", 0, 1, 1),
        ("<think> </think><answer>y</answer>", 1, 1, 0),
        ("<think>x</think> text <answer>y</answer>", 0, 0, 0),
        ("<answer>y</answer>", 0, 0, 0),
        ([{"role": "assistant", "content": "<think>x</think><answer>y</answer>"}], 1, 1, 1),
    ],
)
def test_format_rewards(completion, strict, tolerant, nonempty):
    assert one("format_strict", completion) == strict
    assert one("format", completion) == tolerant
    assert one("format_nonempty_think", completion) == nonempty


# ---------------------------------------------------------------- detection

DET_CASES = [
    # (answer, gt, iou, confidence)
    (det((A, 1)), [A, B], 0.5, 1.0),  # facts: 1 of 2 GT found -> 0.5
    (det((A, 1), (B, 1), (C, 1)), [A, B], 2 / 3, 2 / 3),  # facts: 2 correct + 1 extra -> 0.667
    (det((A, 0.9), (B, 0.8)), [A, B], 1.0, 0.85),
    (det((A, 0.9), (C, 0.2)), [A], 0.5, (0.9 + 0.8) / 2),
    (det(([0, 0, 100, 60], 1)), [A], 0.6, 1.0),  # IoU 0.6 > 0.5: a match worth 0.6
    (det(([0, 0, 100, 50], 1)), [A], 0.0, 0.0),  # IoU exactly 0.5 is NOT a match (strict >)
    (det(([0, 0, 100, 50], 0.3)), [A], 0.0, 0.7),
    # duplicates: exact duplicates are dropped before matching
    (det((A, 0.9), (A, 0.9), (A, 0.9)), [A], 1.0, 0.9),
    (det((A, 0.9), (A, 0.2)), [A], 1.0, 0.9),
    # greedy by confidence: the confident duplicate-ish box takes A first
    (det(([0, 0, 100, 90], 0.9), (A, 0.5)), [A], 0.45, (0.9 + 0.5) / 2),
    # No Objects
    ("No Objects", [], 1.0, 1.0),
    ("no objects", [], 1.0, 1.0),
    ("[]", [], 1.0, 1.0),
    ("No Objects", [A], 0.0, 0.0),
    ("[]", [A], 0.0, 0.0),
    (det((A, 0.9)), [], 0.0, 0.1),
    (det((A, 0.0)), [], 0.0, 1.0),
    # NaN / invalid entries: never NaN; they count as unmatched predictions scoring 0
    ("[{'Position': [0, 0, 100, 100], 'Confidence': NaN}]", [A], 0.0, 0.0),
    ("[{'Position': [0, 0, 100, 100], 'Confidence': NaN}]", [], 0.0, 0.0),
    ("[{'Position': [0, 0, 100, 100], 'Confidence': NaN}, " + det((B, 1))[1:], [A, B], 0.5, 0.5),
    ("[{'Position': [0, 0, 100, 100], 'Confidence': '0.9'}]", [A], 1.0, 0.9),
    ("[{'Position': [100, 100, 0, 0], 'Confidence': 1}]", [A], 1.0, 1.0),  # swapped corners
    ("[{'Position': [0, 0, 100, 100], 'Confidence': 7}]", [A], 1.0, 1.0),  # clipped to 1
    # truncated: the complete entry is kept, the cut one counts as invalid
    (det((A, 1))[:-1] + ", {'Position': [200, 2", [A, B], 0.5, 0.5),
    # malformed -> 0 (reference defect 1: no math-verifier shortcut on a shared coordinate)
    ("0", [A], 0.0, 0.0),
    ("100", [[100, 5, 7, 9]], 0.0, 0.0),
    ("a cat at the left", [A], 0.0, 0.0),
    ("", [], 0.0, 0.0),
    ("[{'Position': [1", [], 0.0, 0.0),
]


@pytest.mark.parametrize("answer, gt, iou, conf", DET_CASES)
def test_detection_table(answer, gt, iou, conf):
    c = comp(answer)
    assert one("detection_iou", c, gt_boxes=gt) == pytest.approx(iou, abs=1e-3)
    assert one("detection_confidence", c, gt_boxes=gt) == pytest.approx(conf, abs=1e-3)


def test_detection_worked_value_two_thirds_to_1e3():
    c = comp(det((A, 1), (B, 1), (C, 1)))
    assert abs(one("detection_iou", c, gt_boxes=[A, B]) - 0.667) < 1e-3


def test_detection_missing_answer_tags_and_parse_fail():
    assert one("detection_iou", det((A, 1)), gt_boxes=[A]) == 0.0  # no <answer> tags
    assert one("parse_fail_detection", det((A, 1))) == 1.0
    assert one("parse_fail_detection", comp(det((A, 1)))) == 0.0
    assert one("parse_fail_detection", comp("No Objects")) == 0.0
    assert one("parse_fail_detection", comp("I see nothing")) == 1.0


def test_detection_batch_of_trl_messages():
    comps = [[{"role": "assistant", "content": comp(det((A, 1)))}], comp("No Objects")]
    assert REWARDS["detection_iou"](comps, gt_boxes=[[A], []], prompts=["p", "q"]) == [1.0, 1.0]


# ---------------------------------------------------------------- classification

CLS_CASES = [
    # (answer, label, aliases, substring (visual-rft), exact (default))
    ("Audi A4 Sedan 2012", "Audi A4 Sedan 2012", None, 1, 1),
    ("audi_a4 sedan 2012", "Audi A4 Sedan 2012", None, 1, 1),
    ("Audi", "Audi A4 Sedan 2012", None, 1, 0),  # defect 4: substring exploit kept in visual-rft
    ("737", "Boeing 737-800", None, 1, 0),
    ("", "Boeing 737-800", None, 0, 0),  # empty answer: fixed in both presets
    ("   ", "rose", None, 0, 0),
    ("rose or tulip or lily", "rose", None, 1, 0),
    ("Boeing 737 800.", "Boeing 737-800", None, 0, 1),  # the hyphen defeats the substring rule
    ("Wild Rose", "rose", ["wild rose"], 1, 1),  # alias
    ("dog rose", "rose", ["wild rose"], 1, 0),
    ("Tulip", "rose", None, 0, 0),
]


@pytest.mark.parametrize("answer, label, aliases, sub, exact", CLS_CASES)
def test_classification_table(answer, label, aliases, sub, exact):
    c = comp(answer)
    assert one("classification_substring", c, gt_label=label) == sub
    assert one("classification_exact", c, gt_label=label, gt_aliases=aliases) == exact
    assert one("parse_fail_classification", c) == (0.0 if answer.strip() else 1.0)


def test_classification_without_answer_or_aliases_column():
    assert REWARDS["classification_exact"](["rose"], gt_label=["rose"]) == [0.0]
    assert REWARDS["classification_exact"]([comp("rose")], gt_label=["rose"]) == [1.0]
    assert normalize_label("Boeing 737-800.") == "boeing737800"


# ---------------------------------------------------------------- grounding


@pytest.mark.parametrize(
    "answer, iou, giou01, giou_plus1",
    [
        ("(0,0),(100,100)", 1.0, 1.0, 2.0),
        ("[0, 0, 100, 100]", 1.0, 1.0, 2.0),
        ('```json\n[{"bbox_2d": [0, 0, 100, 100], "label": "cup"}]\n```', 1.0, 1.0, 2.0),
        ("(0,0),(100,50)", 0.5, 0.75, 1.5),
        ("(200,0),(300,100)", 0.0, (1 - 100 / 300) / 2, 1 - 100 / 300),
        ("(1,2)", 0.0, 0.0, 0.0),
        ("", 0.0, 0.0, 0.0),
        ("(NaN,0),(1,1)", 0.0, 0.0, 0.0),
    ],
)
def test_grounding_table(answer, iou, giou01, giou_plus1):
    c = comp(answer)
    assert one("grounding_iou", c, gt_boxes=[A]) == pytest.approx(iou)
    assert one("grounding_giou", c, gt_boxes=[A]) == pytest.approx(giou01)
    assert one("grounding_giou_plus1", c, gt_boxes=[A]) == pytest.approx(giou_plus1)


def test_grounding_parse_fail():
    assert one("parse_fail_grounding", comp("(1,2),(3,4)")) == 0.0
    assert one("parse_fail_grounding", comp("somewhere left")) == 1.0


# ---------------------------------------------------------------- every reward, any input

RANGES = {
    "grounding_giou_plus1": (0.0, 2.0),
}


def _mutate(rng: random.Random, text: str) -> str:
    ops = [
        "NaN",
        "Infinity",
        "[",
        "]",
        "{",
        "}",
        "'",
        '"',
        ",",
        "<answer>",
        "</think>",
        "-1e999",
        "No Objects",
    ]
    for _ in range(rng.randint(0, 4)):
        i = rng.randrange(len(text) + 1)
        r = rng.random()
        if r < 0.4:
            text = text[:i] + rng.choice(ops) + text[i:]
        elif r < 0.7:
            text = text[:i]
        else:
            text = text[:i] + text[i + 1 : i + 3] + text[i : i + 1] + text[i + 3 :]
    return text


def test_every_reward_finite_and_in_range_on_mutated_outputs():
    rng = random.Random(0)
    seeds = [
        comp(det((A, 0.9), (B, 0.4))),
        comp("No Objects"),
        comp("Boeing 737-800"),
        comp("(0,0),(100,100)"),
        comp('[{"bbox_2d": [0, 0, 100, 100]}]'),
        comp("[[50, 50], [250, 250]]"),
        "<answer>3</answer>",
        comp("[2.5, 6]"),
        comp('{"image": 2, "bbox_2d": [0, 0, 100, 100]}'),
    ]
    comps = [_mutate(rng, rng.choice(seeds)) for _ in range(600)]
    cols = {
        "gt_boxes": [rng.choice([[], [A], [A, B], [[0, 0, 0, 0]]]) for _ in comps],
        "gt_label": ["Boeing 737-800"] * len(comps),
        "gt_aliases": [None] * len(comps),
        "gt_text": [rng.choice(["", "Boeing 737-800", "No  Objects"]) for _ in comps],
        "gt_window": [rng.choice([[2.5, 6.0], [0, 100]]) for _ in comps],
        "gt_image": [rng.choice([1, 2]) for _ in comps],
        "num_images": [rng.choice([None, 2, 3]) for _ in comps],
    }
    for name, fn in REWARDS.items():
        lo, hi = RANGES.get(name, (0.0, 1.0))
        if name == "tool_bonus":  # paid on the task's answer reward, which the trainer binds
            from vrft.rewards.tools import bind_answer_reward

            fn = bind_answer_reward(fn, [(REWARDS["classification_exact"], 1.0)])
        values = fn(comps, **cols)
        assert len(values) == len(comps)
        for v in values:
            assert isinstance(v, float) and math.isfinite(v) and lo <= v <= hi, (name, v)
