"""Issue 13 rewards against hand-computed values: Hungarian detection, counting, OCR, answer-only format."""

from __future__ import annotations

import math
import random

import pytest

from vrft.rewards import PRESETS, REWARDS, preset_for_format, rewards_for
from vrft.rewards.ocr import levenshtein


def ans(answer: str) -> str:
    return f"<answer>{answer}</answer>"


def det(*entries) -> str:
    return "[" + ", ".join(f"{{'Position': {list(b)}, 'Confidence': {c}}}" for b, c in entries) + "]"


def one(name: str, completion, **cols) -> float:
    return REWARDS[name]([completion], **{k: [v] for k, v in cols.items()})[0]


def hung(completion, gt) -> tuple[float, float, float]:
    return tuple(
        one(n, completion, gt_boxes=gt)
        for n in ("detection_iou_hungarian", "detection_f1", "detection_confidence_hungarian")
    )


A, B, X = [0, 0, 100, 100], [200, 200, 300, 300], [500, 500, 600, 600]


# ---------------------------------------------------------------- Hungarian detection
def test_hungarian_beats_greedy_on_a_shared_box():
    # p1 overlaps g1 and g2 equally (IoU 9/11 each); p2 overlaps only g1 (IoU 8/12; 6/14 with g2).
    g1, g2 = [0, 0, 10, 10], [2, 0, 12, 10]
    p1, p2 = [1, 0, 11, 10], [-2, 0, 8, 10]
    c = ans(det((p1, 0.9), (p2, 0.6)))
    iou, f1, conf = hung(c, [g1, g2])
    assert iou == pytest.approx((9 / 11 + 8 / 12) / 2)  # p1 -> g2, p2 -> g1
    assert f1 == pytest.approx(1.0) and conf == pytest.approx((0.9 + 0.6) / 2)
    # the greedy reward (confidence order, best free GT) gives p1 g1 and leaves p2 unmatched
    assert one("detection_iou", c, gt_boxes=[g1, g2]) == pytest.approx((9 / 11) / 2)
    assert one("detection_confidence", c, gt_boxes=[g1, g2]) == pytest.approx((0.9 + 0.4) / 2)


def test_hungarian_extra_duplicate_and_invalid_entries():
    # 2 correct + 1 extra: IoU 2/3, F1 2*2/(3+2), confidence (1 + 1 + (1 - 1)) / 3
    assert hung(ans(det((A, 1), (B, 1), (X, 1))), [A, B]) == pytest.approx((2 / 3, 0.8, 2 / 3))
    # an exact duplicate is dropped (the first entry kept, whatever its confidence)
    assert hung(ans(det((A, 0.9), (A, 0.1))), [A]) == pytest.approx((1.0, 1.0, 0.9))
    assert hung(ans(det((A, 0.1), (A, 0.9))), [A]) == pytest.approx((1.0, 1.0, 0.1))
    # an invalid entry is a prediction that matches nothing and adds 0 to the confidence mean
    c = ans("[{'Position': [0, 0, 100, 100], 'Confidence': 0.8}, {'Position': [1, 2], 'Confidence': 0.5}]")
    assert hung(c, [A]) == pytest.approx((0.5, 2 / 3, 0.4))
    c = ans("[{'Position': [0, 0, 100, 100], 'Confidence': NaN}]")
    assert hung(c, [A]) == (0.0, 0.0, 0.0)
    # one of two GT boxes found: IoU 1/2, F1 2/3
    assert hung(ans(det((A, 0.7))), [A, B]) == pytest.approx((0.5, 2 / 3, 0.7))
    # a partial box: IoU 0.8 counts with its value
    assert hung(ans(det(([0, 0, 100, 80], 0.5))), [A]) == pytest.approx((0.8, 1.0, 0.5))


def test_hungarian_threshold_is_strict():
    # IoU exactly 0.5 is no match: W = 0
    assert hung(ans(det(([0, 0, 100, 50], 0.3))), [A]) == pytest.approx((0.0, 0.0, 0.7))


def test_hungarian_empty_cases():
    for empty in ("No Objects", "[]", "no objects."):
        assert hung(ans(empty), []) == (1.0, 1.0, 1.0)
        assert hung(ans(empty), [A]) == (0.0, 0.0, 0.0)
    # predictions on an image without GT: 0, 0 and the mean of 1 - c
    assert hung(ans(det((A, 0.3), (B, 0.9))), []) == pytest.approx((0.0, 0.0, (0.7 + 0.1) / 2))
    # malformed output: 0 everywhere
    for bad in ("<think>x</think> no answer", ans("a cat"), ans("")):
        assert hung(bad, [A]) == (0.0, 0.0, 0.0)
        assert hung(bad, []) == (0.0, 0.0, 0.0)


def test_hungarian_matches_brute_force_on_random_scenes():
    import itertools

    from vrft.boxes import iou

    rng = random.Random(0)
    for _ in range(150):
        gt = [[x, y, x + rng.randint(20, 60), y + rng.randint(20, 60)]
              for x, y in ((rng.randint(0, 60), rng.randint(0, 60)) for _ in range(rng.randint(0, 4)))]  # fmt: skip
        preds = []
        for _ in range(rng.randint(0, 4)):
            base = rng.choice(gt) if gt and rng.random() < 0.7 else [0, 0, 50, 50]
            box = [v + rng.randint(-8, 8) for v in base]
            if box[2] > box[0] and box[3] > box[1] and box not in [p[0] for p in preds]:
                preds.append((box, round(rng.random(), 2)))
        if not preds:
            continue
        w = [[iou(p, g) if iou(p, g) > 0.5 else 0.0 for g in gt] for p, _ in preds]
        best, best_pairs = -1.0, []
        for perm in itertools.permutations(range(max(len(preds), len(gt))), len(preds)):
            pairs = [(i, j) for i, j in enumerate(perm) if j < len(gt) and w[i][j] > 0]
            total = sum(w[i][j] for i, j in pairs)
            if total > best + 1e-12:
                best, best_pairs = total, pairs
        n = len(preds)
        got = hung(ans(det(*preds)), gt)
        assert got[0] == pytest.approx(min(1.0, best / max(len(gt), n)))
        assert got[1] == pytest.approx(2 * len(best_pairs) / (n + len(gt)))


# ---------------------------------------------------------------- counting
G2 = [[0, 0, 100, 100], [200, 200, 300, 300]]


def counts(answer_text, gt) -> tuple[float, float, float]:
    c = answer_text if answer_text.startswith("<") else ans(answer_text)
    return tuple(one(n, c, gt_boxes=gt) for n in ("count_exact", "count_relative", "count_points"))


@pytest.mark.parametrize(
    "answer,expected",
    [
        ("[[50, 50], [250, 250]]", (1.0, 1.0, 1.0)),
        ("[[50,50],[60,60]]", (1.0, 1.0, 0.5)),  # right count, one point matched: 2*1/(2+2)
        ("[[50, 50], [250, 250], [900, 900]]", (0.0, 0.5, 0.8)),  # 1 - 1/2; 2*2/(3+2)
        ("[[100, 100], [200, 300]]", (1.0, 1.0, 1.0)),  # box edges are inside
        ("[[101, 50]]", (0.0, 0.5, 0.0)),
        ("2", (1.0, 1.0, 0.0)),  # a bare integer never earns count_points
        (" 3 ", (0.0, 0.5, 0.0)),
        ("+2", (1.0, 1.0, 0.0)),
        ("5", (0.0, 0.0, 0.0)),  # max(0, 1 - 3/2)
        ("-1", (0.0, 0.0, 0.0)),
        ("99999999999999999999999999999999999999", (0.0, 0.0, 0.0)),
        ("No Objects", (0.0, 0.0, 0.0)),  # count 0: 1 - 2/2
        ("[]", (0.0, 0.0, 0.0)),
    ],
)
def test_counting_two_objects(answer, expected):
    assert counts(answer, G2) == pytest.approx(expected)


@pytest.mark.parametrize(
    "answer",
    ["two", "2.0", "2 apples", "[[1, 2, 3]]", "[[50, 50]] are the points", "[[50, 50]", "[50, 50]",
     "[['50', '50']]", "[[50, NaN]]", "", "[[true, 1]]", "[{'point_2d': [50, 50]}]"],
)  # fmt: skip
def test_counting_parse_failures_score_zero(answer):
    assert counts(answer, G2) == (0.0, 0.0, 0.0)
    assert one("parse_fail_counting", ans(answer)) == 1.0
    assert counts(answer, []) == (0.0, 0.0, 0.0)


def test_counting_without_objects_and_missing_tags():
    assert counts("No Objects", []) == (1.0, 1.0, 1.0)
    assert counts("[]", []) == (1.0, 1.0, 1.0)
    assert counts("0", []) == (1.0, 1.0, 0.0)  # both empty, but an integer is not a point list
    assert counts("[[5, 5]]", []) == (0.0, 0.0, 0.0)  # 1 - 1/max(0, 1)
    assert counts("1", [A]) == (1.0, 1.0, 0.0)
    assert counts("2", [A]) == (0.0, 0.0, 0.0)  # 1 - 1/1
    assert counts("4", [A, B, X]) == pytest.approx((0.0, 2 / 3, 0.0))
    assert counts("<think>3</think>", G2) == (0.0, 0.0, 0.0)  # no answer pair
    assert one("parse_fail_counting", ans("No Objects")) == 0.0


def test_count_points_is_a_maximum_matching():
    # p1 lies in both boxes, p2 only in the first: a greedy p1 -> b1 would match one point; the
    # maximum matching pairs p1 -> b2, p2 -> b1.
    boxes = [[0, 0, 100, 100], [50, 50, 150, 150]]
    assert counts("[[75, 75], [10, 10]]", boxes) == (1.0, 1.0, 1.0)
    # two points in one box: one match
    assert counts("[[10, 10], [20, 20]]", [[0, 0, 100, 100]]) == pytest.approx((0.0, 0.0, 2 / 3))
    # duplicated points count as points
    assert counts("[[10, 10], [10, 10], [250, 250]]", G2) == pytest.approx((0.0, 0.5, 0.8))


# ---------------------------------------------------------------- OCR
@pytest.mark.parametrize(
    "answer,text,similarity,exact",
    [
        ("Hello World", "Hello World", 1.0, 1.0),
        ("  Hello \n\t World ", "Hello  World", 1.0, 1.0),  # strip + collapse whitespace runs
        ("hello world", "Hello World", 1 - 2 / 11, 0.0),  # case-sensitive
        ("Helo world", "Hello world", 1 - 1 / 11, 0.0),
        ("kitten", "sitting", 1 - 3 / 7, 0.0),
        ("café", "cafe", 1 - 1 / 4, 0.0),  # code points
        ("😀a", "a", 1 - 1 / 2, 0.0),
        ("", "", 1.0, 1.0),
        ("   ", "\n", 1.0, 1.0),  # both empty after normalisation
        ("", "abc", 0.0, 0.0),
        ("abc", "", 0.0, 0.0),
        ("abc", "xyz", 0.0, 0.0),
    ],
)
def test_ocr(answer, text, similarity, exact):
    assert one("ocr_similarity", ans(answer), gt_text=text) == pytest.approx(similarity)
    assert one("ocr_exact", ans(answer), gt_text=text) == exact
    assert one("parse_fail_ocr", ans(answer)) == 0.0


def test_ocr_without_answer_pair_scores_zero():
    for bad in ("Hello", "<think>Hello</think>", "<answer>Hello"):
        assert one("ocr_similarity", bad, gt_text="Hello") == 0.0
        assert one("ocr_exact", bad, gt_text="") == 0.0
        assert one("parse_fail_ocr", bad) == 1.0


def test_levenshtein_matches_dynamic_programming():
    def dp(a: str, b: str) -> int:
        prev = list(range(len(b) + 1))
        for i, ca in enumerate(a, 1):
            cur = [i]
            for j, cb in enumerate(b, 1):
                cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
            prev = cur
        return prev[-1]

    rng = random.Random(1)
    for _ in range(200):
        a = "".join(rng.choice("ab cé😀") for _ in range(rng.randint(0, 90)))
        b = "".join(rng.choice("ab cé😀") for _ in range(rng.randint(0, 90)))
        assert levenshtein(a, b) == dp(a, b)


# ---------------------------------------------------------------- answer-only format
@pytest.mark.parametrize(
    "completion,expected",
    [
        ("<answer>x</answer>", 1.0),
        ("  <answer>x</answer>\n", 1.0),
        ("<answer></answer>", 1.0),
        ("<answer>[[1, 2]]\nmore</answer>", 1.0),
        ([{"role": "assistant", "content": "<answer>x</answer>"}], 1.0),
        ("<think>t</think><answer>x</answer>", 0.0),
        ("<think>t</think> <answer>x</answer>", 0.0),
        ("<answer>x <think></think></answer>", 0.0),
        ("<answer>x </think></answer>", 0.0),
        ("<answer><answer>x</answer>", 0.0),
        ("<answer>x</answer><answer>y</answer>", 0.0),
        ("x <answer>y</answer>", 0.0),
        ("<answer>x</answer> y", 0.0),
        ("<answer>x", 0.0),
        ("x", 0.0),
        ("", 0.0),
    ],
)
def test_format_answer_only(completion, expected):
    assert one("format_answer_only", completion) == expected


# ---------------------------------------------------------------- presets
def test_perception_preset_and_format_switch():
    assert PRESETS["perception"]["detection"] == {
        "format_answer_only": 1.0, "detection_iou_hungarian": 1.0, "detection_f1": 1.0,
        "detection_confidence_hungarian": 1.0, "parse_fail_detection": 0.0,
    }  # fmt: skip
    assert {k for k, w in PRESETS["perception"]["counting"].items() if w} == {
        "format_answer_only", "count_points", "count_exact",
    }  # fmt: skip
    assert {k for k, w in PRESETS["perception"]["ocr"].items() if w} == {
        "format_answer_only",
        "ocr_similarity",
    }
    for preset in PRESETS.values():
        for weights in preset.values():
            assert set(weights) <= set(REWARDS)
    # the format reward follows the answer format; the task rewards stay
    swapped = preset_for_format(PRESETS["default"]["counting"], "answer_only")
    assert list(swapped) == ["format_answer_only", "count_points", "count_exact", "parse_fail_counting"]
    assert (
        list(preset_for_format(PRESETS["visual-rft"]["detection"], "answer_only"))[0] == "format_answer_only"
    )
    assert list(preset_for_format(PRESETS["perception"]["ocr"], "think"))[0] == "format"
    assert preset_for_format(PRESETS["perception"]["ocr"], None) == PRESETS["perception"]["ocr"]
    fns, weights = rewards_for("counting", "perception", {"count_relative": 0.5}, answer_format="answer_only")
    assert [f.__name__ for f in fns][-1] == "count_relative" and weights[-1] == 0.5


def test_new_rewards_are_finite_on_garbage():
    rng = random.Random(3)
    pieces = ["<answer>", "</answer>", "<think>", "[[", "]]", "[", "]", ",", "1e999", "NaN", "-3", "No Objects",
              "{'Position': [1, 2, 3, 4], 'Confidence': 2}", "😀", " ", "\n", "12", "[[1, 2]]"]  # fmt: skip
    names = ["detection_iou_hungarian", "detection_f1", "detection_confidence_hungarian", "count_exact",
             "count_relative", "count_points", "ocr_similarity", "ocr_exact", "format_answer_only"]  # fmt: skip
    comps = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 12))) for _ in range(300)]
    for name in names:
        values = REWARDS[name](comps, gt_boxes=[[A, B]] * len(comps), gt_text=["a b"] * len(comps))
        assert all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values), name


# ---------------------------------------------------------------- issue 19: parse_count
@pytest.mark.parametrize("answer", ["١٢", "１２", "٢", "+١"])
def test_parse_count_refuses_non_ascii_digits(answer):
    from vrft.parsing import parse_count

    assert not parse_count(answer).ok  # ASCII digits only, as for every other number
    assert one("parse_fail_counting", ans(answer)) == 1.0


def test_parse_count_never_raises_on_a_huge_integer():
    from vrft.parsing import MAX_COUNT_DIGITS, parse_count

    for digits in (MAX_COUNT_DIGITS + 1, 4301, 100_000):
        c = parse_count("7" * digits)
        assert not c.ok and "digits" in c.reason
        assert counts("7" * digits, G2) == (0.0, 0.0, 0.0)  # every counting reward: no ValueError
    assert parse_count("9" * MAX_COUNT_DIGITS).count == int("9" * MAX_COUNT_DIGITS)


def test_parse_count_reads_up_to_max_points_and_names_the_limit():
    from vrft.parsing import MAX_POINTS, parse_count

    full = "[" + ", ".join(f"[{i % 900}, {i % 700}]" for i in range(MAX_POINTS)) + "]"
    assert parse_count(full).count == MAX_POINTS
    over = "[" + ", ".join("[1, 2]" for _ in range(MAX_POINTS + 1)) + "]"
    far = "[" + ", ".join("[1, 2]" for _ in range(20_000)) + "]"
    for text in (over, far):
        c = parse_count(text)
        assert not c.ok and f"more than {MAX_POINTS} points" in c.reason
