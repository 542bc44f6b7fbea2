"""Issue 20: the parsers `parse_window` / `parse_image_box` and the rewards `temporal_iou` /
`multi_image_iou`, on hand-computed values and as properties (identity 1, disjoint 0, symmetric,
bounded, finite, never raising)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vrft.parsing import MAX_CHARS, parse_image_box, parse_window
from vrft.parsing_media import MAX_CHARS as MEDIA_MAX_CHARS
from vrft.rewards import PRESETS, REWARDS, rewards_for
from vrft.rewards.temporal import window_iou


def comp(answer: str) -> str:
    return f"<think> t </think> <answer>{answer}</answer>"


def tiou(answer: str, gt) -> float:
    return REWARDS["temporal_iou"]([comp(answer)], gt_window=[gt])[0]


def miou(answer: str, image=2, box=(100, 100, 300, 500), n=3) -> float:
    return REWARDS["multi_image_iou"]([comp(answer)], gt_image=[image], gt_boxes=[[list(box)]], num_images=[n])[0]


# ------------------------------------------------------------------------------------- parse_window
@pytest.mark.parametrize("text", ["[2.5, 7]", "2.5 - 7", "2.5 to 7.0", "from 2.5s to 7s", "2.5-7", " [2.5,7.0] "])
def test_parse_window_issue_examples(text):
    w = parse_window(text)
    assert (w.start, w.end, w.ok, w.reason) == (2.5, 7.0, True, "ok")


@pytest.mark.parametrize(
    ("text", "start", "end", "ok"),
    [
        ("-2.5 - -7", 2.5, 7.0, True),  # unsigned: every '-' is a separator
        ("[12, 30] or [40, 50]", 12.0, 30.0, True),  # the first two numbers, in order
        ("[7, 2.5]", 7.0, 2.5, False),  # reversed: not ok, numbers kept
        ("[3, 3]", 3.0, 3.0, False),  # empty window
        ("2.5", 2.5, None, False),
        ("", None, None, False),
        ("no numbers", None, None, False),
        ("\uff12 \u0662 3 4", 3.0, 4.0, True),  # fullwidth / Arabic-Indic digits are not numbers
        ("1e3 4", 1.0, 3.0, True),  # no exponents: digits with an optional decimal part
        (".5 to 2.", 5.0, 2.0, False),
    ],
)
def test_parse_window_rules(text, start, end, ok):
    w = parse_window(text)
    assert (w.start, w.end, w.ok) == (start, end, ok)


def test_parse_window_bounded_and_never_raises():
    assert MEDIA_MAX_CHARS == MAX_CHARS
    assert parse_window(None).reason == "no answer"
    assert not parse_window("9" * 400 + " 5").ok  # overflows to inf: refused, never inf
    assert parse_window(" " * MAX_CHARS + "1 2").reason == "fewer than two numbers"  # past the cap
    assert parse_window(["not", "text"]).ok is False


@given(st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_parse_window_never_raises_and_is_finite(text):
    w = parse_window(text)
    for v in (w.start, w.end):
        assert v is None or (math.isfinite(v) and v >= 0)
    assert w.ok == (w.start is not None and w.end is not None and w.end > w.start)


# ---------------------------------------------------------------------------------- parse_image_box
@pytest.mark.parametrize(
    "text",
    [
        '{"image": 2, "bbox_2d": [10, 20, 30, 40]}',
        "{'image': 2, 'bbox_2d': [10, 20, 30, 40]}",  # single quotes tolerated, as in detection
        '```json\n{"image": 2, "bbox_2d": [30, 40, 10, 20]}\n```',  # fence; corners reordered
        '{"Image": 2, "BBox_2D": [10, 20, 30, 40], "label": "star"}',
    ],
)
def test_parse_image_box_accepts(text):
    p = parse_image_box(text)
    assert (p.image, p.box, p.ok) == (2, (10.0, 20.0, 30.0, 40.0), True)
    assert type(p.image) is int


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"image": true, "bbox_2d": [1, 2, 3, 4]}', "'image' is not an integer"),  # bool refused
        ('{"image": 2.0, "bbox_2d": [1, 2, 3, 4]}', "'image' is not an integer"),
        ('{"image": "2", "bbox_2d": [1, 2, 3, 4]}', "'image' is not an integer"),
        ('{"image": [1, 2], "bbox_2d": [1, 2, 3, 4]}', "'image' is not an integer"),
        ('{"bbox_2d": [1, 2, 3, 4]}', "missing key 'image'"),
        ('{"image": 2}', "missing key 'bbox_2d'"),
        ('{"image": 2, "bbox_2d": [1, 2, 3]}', "'bbox_2d' is not four finite numbers"),
        ('{"image": 2, "bbox_2d": [1, 2, NaN, 4]}', "'bbox_2d' is not four finite numbers"),
        ('{"image": 2, "bbox_2d": [1, 2, Infinity, 4]}', "'bbox_2d' is not four finite numbers"),
        ('{"image": 1, "bbox_2d": [1, 2, 3, 4]}, {"image": 2, "bbox_2d": [1, 2, 3, 4]}', "more than one JSON object"),
        ('[1, 2, 3, 4]', "no JSON object"),
        ('{"image": 2, "bbox_2d": [1, 2', "truncated"),
    ],
)
def test_parse_image_box_refuses(text, reason):
    p = parse_image_box(text)
    assert not p.ok and p.box is None and p.reason == reason


@given(st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_parse_image_box_never_raises(text):
    p = parse_image_box(text)
    assert not p.ok or (isinstance(p.image, int) and all(math.isfinite(v) for v in p.box))


# ------------------------------------------------------------------------------------- temporal_iou
@pytest.mark.parametrize(
    ("answer", "gt", "want"),
    [
        ("[2.5, 6]", [2.5, 6.0], 1.0),
        ("[2, 4]", [2.5, 6.0], 1.5 / 4.0),  # (4 - 2.5) / (6 - 2)
        ("from 3s to 5s", [2.5, 6.0], 2.0 / 3.5),  # inside the GT
        ("[0, 10]", [2.5, 6.0], 3.5 / 10.0),  # no clipping to the duration
        ("[0, 100]", [2.5, 6.0], 3.5 / 100.0),
        ("[7, 9]", [2.5, 6.0], 0.0),  # disjoint
        ("[6, 9]", [2.5, 6.0], 0.0),  # touching
        ("[6, 2.5]", [2.5, 6.0], 0.0),  # e <= s
        ("[4, 4]", [2.5, 6.0], 0.0),
        ("4", [2.5, 6.0], 0.0),  # fewer than two numbers
        ("-2.5 - 6", [2.5, 6.0], 1.0),  # '-' is a separator
    ],
)
def test_temporal_iou_hand_computed(answer, gt, want):
    assert tiou(answer, gt) == pytest.approx(want, abs=1e-12)


def test_temporal_iou_needs_answer_tags_and_its_column():
    assert REWARDS["temporal_iou"](["[2.5, 6]"], gt_window=[[2.5, 6.0]]) == [0.0]
    with pytest.raises(ValueError, match="gt_window"):
        REWARDS["temporal_iou"]([comp("[1, 2]")])


nonneg = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(nonneg, nonneg, nonneg, nonneg)
@settings(max_examples=200, deadline=None)
def test_window_iou_properties(a, b, c, d):
    s, e, gs, ge = min(a, b), max(a, b), min(c, d), max(c, d)
    v = window_iou(s, e, gs, ge)
    assert 0.0 <= v <= 1.0 and math.isfinite(v)
    assert v == pytest.approx(window_iou(gs, ge, s, e))  # symmetric
    if e > s:
        assert window_iou(s, e, s, e) == 1.0  # identity
    if e <= gs or ge <= s:
        assert v == 0.0  # disjoint


# ---------------------------------------------------------------------------------- multi_image_iou
def test_multi_image_iou_hand_computed():
    assert miou('{"image": 2, "bbox_2d": [100, 100, 300, 500]}') == 1.0
    # the same box in another image: 0, whatever the overlap
    assert miou('{"image": 1, "bbox_2d": [100, 100, 300, 500]}') == 0.0
    # half the box: IoU (200 x 200) / (200 x 400) = 0.5
    assert miou('{"image": 2, "bbox_2d": [100, 100, 300, 300]}') == pytest.approx(0.5)
    # overlap 100 x 400 = 40000; union 80000 + 80000 - 40000
    assert miou("{'image': 2, 'bbox_2d': [200, 100, 400, 500]}") == pytest.approx(40000 / 120000)
    for bad in (
        '{"image": 0, "bbox_2d": [100, 100, 300, 500]}',  # out of range
        '{"image": 4, "bbox_2d": [100, 100, 300, 500]}',
        '{"image": -2, "bbox_2d": [100, 100, 300, 500]}',
        '{"image": "2", "bbox_2d": [100, 100, 300, 500]}',  # wrong type
        '{"image": true, "bbox_2d": [100, 100, 300, 500]}',
        '{"bbox_2d": [100, 100, 300, 500]}',  # missing key
        '{"image": 2}',
        '{"image": 2, "box": [100, 100, 300, 500]}',
        "image 2: (100,100),(300,500)",
    ):
        assert miou(bad) == 0.0, bad
    # the range check uses num_images: image 4 of 3 is 0 even if the column says 4 is the target
    assert miou('{"image": 4, "bbox_2d": [100, 100, 300, 500]}', image=4, n=3) == 0.0
    # without num_images the equality with gt_image decides
    assert REWARDS["multi_image_iou"](
        [comp('{"image": 2, "bbox_2d": [100, 100, 300, 500]}')], gt_image=[2], gt_boxes=[[[100, 100, 300, 500]]]
    ) == [1.0]


box_st = st.tuples(*(st.integers(0, 1000),) * 4).map(
    lambda b: [min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]) + 1, max(b[1], b[3]) + 1]
)


@given(box_st, box_st, st.integers(-1, 5), st.integers(1, 4))
@settings(max_examples=150, deadline=None)
def test_multi_image_iou_properties(pred, gt, image, target):
    n = 4
    text = f'{{"image": {image}, "bbox_2d": {pred}}}'
    v = miou(text, image=target, box=gt, n=n)
    assert 0.0 <= v <= 1.0 and math.isfinite(v)
    if image != target:
        assert v == 0.0
    else:  # symmetric in the two boxes; identity 1
        swapped = miou(f'{{"image": {image}, "bbox_2d": {gt}}}', image=target, box=pred, n=n)
        assert v == pytest.approx(swapped)
        assert miou(f'{{"image": {image}, "bbox_2d": {gt}}}', image=target, box=gt, n=n) == 1.0
        if pred[2] <= gt[0] or gt[2] <= pred[0] or pred[3] <= gt[1] or gt[3] <= pred[1]:
            assert v == 0.0


# ------------------------------------------------------------------------------------------ presets
@pytest.mark.parametrize(
    ("task", "reward"), [("temporal_grounding", "temporal_iou"), ("multi_image_grounding", "multi_image_iou")]
)
def test_presets_hold_the_task_reward_and_format(task, reward):
    assert {k for k, w in PRESETS["default"][task].items() if w} == {"format", reward}
    assert {k for k, w in PRESETS["perception"][task].items() if w} == {"format_answer_only", reward}
    fns, _ = rewards_for(task, "default", answer_format="answer_only")
    assert [f.__name__ for f in fns][:2] == ["format_answer_only", reward]
    assert PRESETS["default"][task][f"parse_fail_{task}"] == 0.0
