"""Geometry and coordinate conversions (vrft.boxes)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vrft.boxes import (
    Frame,
    from_norm1000,
    giou,
    giou_matrix,
    iou,
    iou_matrix,
    smart_resize,
    to_norm1000,
    xywh_to_xyxy,
    xyxy_to_xywh,
)

coord = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False)
size = st.floats(min_value=1e-2, max_value=1e4, allow_nan=False, allow_infinity=False)


@st.composite
def boxes(draw):
    x, y, w, h = draw(coord), draw(coord), draw(size), draw(size)
    return [x, y, x + w, y + h]


any_float = st.floats(allow_nan=True, allow_infinity=True)
any_box = st.lists(any_float, min_size=4, max_size=4)


@given(boxes())
def test_identical_boxes_give_one(b):
    assert iou(b, b) == pytest.approx(1.0)
    assert giou(b, b) == pytest.approx(1.0)


@given(boxes(), boxes())
def test_symmetric_and_bounded(a, b):
    assert iou(a, b) == pytest.approx(iou(b, a))
    assert 0.0 <= iou(a, b) <= 1.0
    assert giou(a, b) == pytest.approx(giou(b, a))
    assert -1.0 <= giou(a, b) <= iou(a, b) + 1e-12


@given(boxes(), st.floats(min_value=0, max_value=100))
def test_disjoint_boxes_give_zero_iou_and_negative_giou(a, gap):
    w = a[2] - a[0]
    b = [a[2] + gap, a[1], a[2] + gap + w, a[3]]
    assert iou(a, b) == 0.0
    assert giou(a, b) <= 1e-9


@given(any_box, any_box)
@settings(max_examples=300)
def test_any_input_is_finite_and_in_range(a, b):
    v, g = iou(a, b), giou(a, b)
    assert math.isfinite(v) and 0.0 <= v <= 1.0
    assert math.isfinite(g) and -1.0 <= g <= 1.0


@given(boxes(), coord, coord)
def test_degenerate_boxes_give_zero(b, x, y):
    point = [x, y, x, y]
    line = [x, y, x + 5, y]
    with np.errstate(all="raise"):  # no division by zero, no invalid operation reaches the caller
        assert iou(point, b) == 0.0
        assert iou(line, line) == 0.0
        assert iou(point, point) == 0.0
        assert giou(point, point) == -1.0


def test_nan_and_inf_give_zero_not_nan():
    good = [0, 0, 10, 10]
    assert iou([math.nan, 0, 10, 10], good) == 0.0
    assert iou(good, [0, 0, math.inf, 10]) == 0.0
    assert giou([math.nan] * 4, good) == -1.0
    assert iou([-1e308, -1e308, 1e308, 1e308], good) == 0.0  # overflowing area


def test_known_values():
    assert iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    # enclosing box 15x10=150, union 150 -> giou == iou
    assert giou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    # disjoint: enclosing 30x10=300, union 200 -> giou = 0 - 100/300
    assert giou([0, 0, 10, 10], [20, 0, 30, 10]) == pytest.approx(-1 / 3)


def test_matrices_match_scalar_versions_and_shapes():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 50, (5, 2))
    a = np.concatenate([a, a + rng.uniform(1, 30, (5, 2))], axis=1)
    b = rng.uniform(0, 50, (3, 2))
    b = np.concatenate([b, b + rng.uniform(1, 30, (3, 2))], axis=1)
    m, g = iou_matrix(a, b), giou_matrix(a, b)
    assert m.shape == (5, 3) and g.shape == (5, 3)
    for i in range(5):
        for j in range(3):
            assert m[i, j] == pytest.approx(iou(a[i], b[j]))
            assert g[i, j] == pytest.approx(giou(a[i], b[j]))
    assert iou_matrix([], b).shape == (0, 3)
    assert iou_matrix(a, np.zeros((0, 4))).shape == (5, 0)
    with pytest.raises(ValueError):
        iou_matrix([[1, 2, 3]], b)


def test_norm1000_uses_truncation_like_the_paper():
    assert to_norm1000([0, 0, 640, 427], 640, 427) == [0, 0, 1000, 1000]
    # 100 / 640 * 1000 = 156.25 -> 156 ; 99.9/427*1000 = 233.96 -> 233 (int, not round)
    assert to_norm1000([100, 99.9, 320, 213.5], 640, 427) == [156, 233, 500, 500]
    assert to_norm1000([-5, -5, 700, 500], 640, 427) == [0, 0, 1000, 1000]  # clipped
    assert from_norm1000([156, 233, 500, 500], 640, 427) == pytest.approx([99.84, 99.491, 320, 213.5])
    assert from_norm1000([-10, 0, 1200, 1000], 100, 50) == [0, 0, 100, 50]


def test_xywh_round_trip():
    assert xyxy_to_xywh([10, 20, 40, 60]) == [10, 20, 30, 40]
    assert xywh_to_xyxy([10, 20, 30, 40]) == [10, 20, 40, 60]


@given(st.integers(1, 5000), st.integers(1, 5000), st.sampled_from([28, 32]))
@settings(max_examples=150, deadline=None)
def test_smart_resize_matches_transformers(h, w, factor):
    hf_smart_resize = pytest.importorskip(
        "transformers.models.qwen2_vl.image_processing_qwen2_vl"
    ).smart_resize
    if max(h, w) / min(h, w) > 200:
        with pytest.raises(ValueError):
            smart_resize(h, w)
        return
    for mn, mx in [(3136, 401408), (56 * 56, 28 * 28 * 1280), (256 * 28 * 28, 1280 * 28 * 28)]:
        got = smart_resize(h, w, factor, mn, mx)
        assert got == hf_smart_resize(h, w, factor, mn, mx)
        assert got[0] % factor == 0 and got[1] % factor == 0


def test_smart_resize_known_values():
    assert smart_resize(427, 640, 28, 3136, 401408) == (420, 644)
    assert smart_resize(2000, 3000, 28, 3136, 401408) == (
        504,
        756,
    )  # beta = sqrt(6e6 / 401408); floor(2000 / beta / 28) * 28, floor(3000 / beta / 28) * 28
    assert smart_resize(10, 10, 28, 3136, 401408) == (56, 56)


def test_frame_conventions():
    f = Frame(640, 427, "norm1000")
    assert f.encode([100, 50, 320, 213.5]) == [156, 117, 500, 500]
    assert f.decode([156, 117, 500, 500]) == pytest.approx([99.84, 49.959, 320, 213.5])
    assert f.extent == (1000.0, 1000.0)

    r = Frame.for_image(640, 427, "resized_pixels", min_pixels=3136, max_pixels=401408)
    assert (r.resized_width, r.resized_height) == (644, 420)
    enc = r.encode([100, 50, 320, 213.5])
    assert enc == [round(100 * 644 / 640), round(50 * 420 / 427), round(320 * 644 / 640), 210]
    assert r.decode(enc) == pytest.approx([100, 50, 320, 213.5], abs=1.0)
    assert r.decode([-5, 0, 9999, 420]) == [0, 0, 640, 427]

    p = Frame(640, 427, "pixels")
    assert p.encode([10.4, 20.6, 700, 30]) == [10, 21, 640, 30]
    assert p.decode([10, 20, 30, 40]) == [10, 20, 30, 40]
    assert p.decode([math.nan, 0, 10, 10])[0] == 0.0


@given(st.integers(16, 4000), st.integers(16, 4000), boxes())
@settings(max_examples=200)
def test_iou_invariant_to_frame_scaling(w, h, b):
    """Rewards compare in the model's convention: the IoU of two boxes barely changes across frames."""
    frame = Frame(w, h, "norm1000")
    gt = [w * 0.1, h * 0.1, w * 0.6, h * 0.7]
    box = [min(max(v, 0), lim) for v, lim in zip(b, (w, h, w, h))]
    a = iou(box, gt)
    c = iou(frame.decode(frame.encode(box)), frame.decode(frame.encode(gt)))
    # quantisation to 1/1000 of the side moves IoU by a few hundredths at most for non-tiny boxes
    if (box[2] - box[0]) > w * 0.05 and (box[3] - box[1]) > h * 0.05:
        assert abs(a - c) < 0.1


def test_frame_validation():
    with pytest.raises(ValueError):
        Frame(0, 10)
    with pytest.raises(ValueError):
        Frame(10, 10, "bogus")
    with pytest.raises(ValueError):
        Frame(10, 10, "resized_pixels")


# ------------------------------------------------------------------ issue 23: points and clipping
@pytest.mark.parametrize("convention", ["norm1000", "resized_pixels", "pixels"])
def test_frame_point_api_matches_the_box_conversion(convention):
    from vrft.boxes import Frame

    frame = Frame.for_image(640, 480, convention)
    for x, y in [(0, 0), (100.4, 33.7), (639.9, 479.9), (-5, 900), (float("nan"), 3)]:
        assert frame.encode_point([x, y]) == frame.encode([x, y, x, y])[:2]
    for x, y in [(0, 0), (17, 999), (1000, 1000), (-3, 5000)]:
        assert frame.decode_point([x, y]) == frame.decode([x, y, x, y])[:2]


def test_clip_box():
    from vrft.boxes import clip_box

    assert clip_box([-2, 3, 50.123, 12], 40, 30) == [0.0, 3.0, 40.0, 12.0]
    assert clip_box([1, 2, 3.3333, 4], 40, 30) == [1.0, 2.0, 3.33, 4.0]
    assert clip_box([1, 2, 3.3333, 4], 40, 30, ndigits=None) == [1.0, 2.0, 3.3333, 4.0]
    assert clip_box([41, 2, 50, 4], 40, 30) is None and clip_box([5, 5, 5, 9], 40, 30) is None
