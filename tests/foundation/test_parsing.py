"""The shared parser (vrft.parsing): formats, salvage, limits."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vrft.parsing import (
    MAX_ENTRIES,
    completion_text,
    lenient_answer,
    parse_box,
    parse_detections,
    parse_label,
    split,
)

REF_FORMAT = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)


# ---------------------------------------------------------------- completion text / split


def test_completion_text_accepts_trl_shapes():
    assert completion_text("abc") == "abc"
    assert completion_text([{"role": "assistant", "content": "abc"}]) == "abc"
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "a"}, "b"]}]) == "ab"
    assert completion_text(None) == ""
    assert completion_text([{"role": "assistant"}]) == ""
    assert completion_text(42) == "42"


@pytest.mark.parametrize(
    "text, strict, ok, think, answer",
    [
        ("<think>a</think><answer>b</answer>", True, True, "a", "b"),
        ("<think>a</think>\n <answer> b </answer>", True, True, "a", "b"),
        ("<think>a</think><answer>b</answer>\n", False, True, "a", "b"),  # defect 5 fixed in format_ok
        ("  <think>a</think><answer>b</answer>", False, True, "a", "b"),
        ("<think>a</think>x<answer>b</answer>", False, False, "a", "b"),
        ("<answer>b</answer>", False, False, None, "b"),
        ("<think>a</think>", False, False, "a", None),
        ("<think>a</think><answer>b", False, False, "a", None),
        ("<think></think><answer></answer>", True, True, "", ""),
        # the LAST complete answer wins
        ("<think>a</think><answer>first</answer><answer>last</answer>", True, True, "a", "last"),
        ("<think>a</think><answer>x</answer> tail", False, False, "a", "x"),
    ],
)
def test_split(text, strict, ok, think, answer):
    c = split(text)
    assert (c.format_strict, c.format_ok, c.think, c.answer) == (strict, ok, think, answer)
    assert c.format_strict == bool(REF_FORMAT.fullmatch(text))


_pieces = st.sampled_from(["<think>", "</think>", "<answer>", "</answer>", " ", "\n", "a", "<", ">", "/"])


@given(st.lists(_pieces, max_size=14).map("".join))
@settings(max_examples=300)
def test_strict_format_equals_reference_regex(text):
    c = split(text)
    assert c.format_strict == bool(REF_FORMAT.fullmatch(text))
    assert c.format_ok == bool(REF_FORMAT.fullmatch(text.strip()))


def test_lenient_answer_for_models_ignoring_tags():
    assert lenient_answer("<think>x</think><answer> a </answer>") == "a"
    assert lenient_answer("<think>x</think> rose") == "rose"
    assert lenient_answer("<answer>[1, 2") == "[1, 2"
    assert lenient_answer(" tulip ") == "tulip"


# ---------------------------------------------------------------- detections


def boxes_of(ans):
    return [(d.box, d.confidence) for d in ans.detections]


@pytest.mark.parametrize(
    "answer",
    [
        "[{'Position': [10, 20, 30, 40], 'Confidence': 0.9}]",
        '[{"Position": [10, 20, 30, 40], "Confidence": 0.9}]',
        "[ {\n 'Position' :[ 10,20 ,30, 40 ] ,\n'Confidence':0.9 } ,]",
        "[[{'Position': [10, 20, 30, 40], 'Confidence': 0.9}]]",
        "```json\n[{'position': [10, 20, 30, 40], 'confidence': 0.9}]\n```",
        "{'Position': [10, 20, 30, 40], 'Confidence': 0.9}",
        "Here: [{'Position': [10, 20, 30, 40], 'Confidence': 0.9}] done.",
        "[{'Position': [30, 40, 10, 20], 'Confidence': 0.9}]",  # swapped corners are reordered
        "[{'Position': ['10', '20', '30', '40'], 'Confidence': '0.9'}]",  # string numerals
        '[{"bbox_2d": [10, 20, 30, 40], "score": 0.9, "label": "cat"}]',
    ],
)
def test_detection_variants(answer):
    d = parse_detections(answer)
    assert d.ok and not d.truncated and d.n_invalid == 0 and not d.no_objects
    assert boxes_of(d) == [((10.0, 20.0, 30.0, 40.0), 0.9)]


@pytest.mark.parametrize(
    "answer", ["No Objects", "no objects", " NO  OBJECTS ", "'No Objects'", "No Objects."]
)
def test_no_objects(answer):
    d = parse_detections(answer)
    assert d.ok and d.no_objects and d.empty and d.detections == ()


def test_empty_list_is_empty_prediction_but_not_no_objects_text():
    d = parse_detections("[]")
    assert d.ok and d.empty and not d.no_objects


def test_duplicates_are_kept():
    e = "{'Position': [1, 2, 3, 4], 'Confidence': 0.5}"
    assert len(parse_detections(f"[{e}, {e}, {e}]").detections) == 3


def test_confidence_rules():
    d = parse_detections(
        "[{'Position': [1,2,3,4], 'Confidence': NaN}, {'Position': [1,2,3,4], 'Confidence': Infinity},"
        " {'Position': [1,2,3,4], 'Confidence': -Infinity}, {'Position': [1,2,3,4], 'Confidence': 'high'},"
        " {'Position': [1,2,3,4], 'Confidence': 'nan'}, {'Position': [1,2,3,4]},"
        " {'Position': [1,2,3,4], 'Confidence': 1.7}, {'Position': [1,2,3,4], 'Confidence': -0.2},"
        " {'Position': [1,2,3,4], 'Confidence': true}]"
    )
    assert d.ok and d.n_invalid == 7
    assert [c for _, c in boxes_of(d)] == [1.0, 0.0]  # clipped


def test_position_rules():
    d = parse_detections(
        "[{'Position': [1,2,3], 'Confidence': 0.5}, {'Position': [1,2,3,4,5], 'Confidence': 0.5},"
        " {'Position': ['a',2,3,4], 'Confidence': 0.5}, {'Position': [NaN,2,3,4], 'Confidence': 0.5},"
        " {'Position': [1e999,2,3,4], 'Confidence': 0.5}, {'Position': 7, 'Confidence': 0.5},"
        " {'Position': [-5, 2, 3, 4], 'Confidence': 0.5}]"
    )
    assert d.n_invalid == 6
    assert boxes_of(d) == [((-5.0, 2.0, 3.0, 4.0), 0.5)]


def test_bare_boxes_without_confidence_are_invalid():
    d = parse_detections("[[1, 2, 3, 4], [5, 6, 7, 8]]")
    assert d.ok and d.detections == () and d.n_invalid == 2 and not d.empty
    d = parse_detections("[1, 2, 3, 4]")
    assert d.ok and d.n_invalid == 1 and not d.empty


def test_truncated_list_salvages_complete_entries():
    full = "[{'Position': [10, 20, 30, 40], 'Confidence': 0.9}, {'Position': [50, 60, 70, 80], 'Confidence': 0.8}]"
    d = parse_detections(full[:-1])  # missing ]
    assert d.ok and d.truncated and len(d.detections) == 2 and d.n_invalid == 0
    d = parse_detections(full[: full.index("[50") + 5])  # cut inside the second entry
    assert d.ok and d.truncated and len(d.detections) == 1 and d.n_invalid == 1
    assert d.reason == "truncated"
    d = parse_detections("[[{'Position': [10, 20, 30, 40], 'Confidence': 0.9}, {'Pos")
    assert d.ok and d.truncated and len(d.detections) == 1
    d = parse_detections("[{'Position': [1")
    assert not d.ok and d.truncated and d.detections == ()
    d = parse_detections("[{'Position': [1, 2, 3, 4], 'Confidence': 0.5}, )]")
    assert d.ok and d.truncated and d.reason.startswith("syntax error") and len(d.detections) == 1


@pytest.mark.parametrize("answer", [None, "", "a cat", "[ ) ]", "{", "Objects: none", "()"])
def test_unparsable_detections(answer):
    d = parse_detections(answer)
    assert not d.ok and d.detections == () and not d.empty and d.reason != "ok"


def test_many_entries_are_capped():
    e = "{'Position': [1, 2, 3, 4], 'Confidence': 0.5}, "
    d = parse_detections("[" + e * (MAX_ENTRIES + 50) + "]")
    assert d.ok and d.truncated and len(d.detections) <= MAX_ENTRIES


@pytest.mark.parametrize(
    "big",
    [
        "<think>x</think><answer>["
        + "{'Position': [1, 2, 3, 4], 'Confidence': 0.5}, " * 110_000
        + "]</answer>",
        "[" * 5_000_000,
        "(" * 5_000_000,
        "'" + " " * 5_000_000,
        "[" + "1," * 2_500_000,
        "<think>" * 720_000,
        "</think><answer>" * 320_000,
        "(1" + "1" * 5_000_000,
        "\\'" * 2_500_000,
    ],
)
def test_five_megabyte_completion_is_fast(big):
    assert len(big) >= 5_000_000
    t0 = time.perf_counter()
    c = split(big)
    d = parse_detections(c.answer if c.answer is not None else big)
    b = parse_box(big)
    lab = parse_label(big)
    assert time.perf_counter() - t0 < 1.0
    assert isinstance(d.ok, bool) and isinstance(b.ok, bool) and isinstance(lab.ok, bool)


# ---------------------------------------------------------------- boxes and labels


@pytest.mark.parametrize(
    "answer",
    [
        "(10,20),(30,40)",
        " (10, 20) , (30, 40) ",
        "(30,40),(10,20)",
        "[10, 20, 30, 40]",
        "[10.0, 20, 30, 40.0]",
        '{"bbox_2d": [10, 20, 30, 40], "label": "cup"}',
        '[{"bbox_2d": [10, 20, 30, 40], "label": "cup"}]',
        '```json\n[\n  {"bbox_2d": [10, 20, 30, 40], "label": "the red cup"}\n]\n```',
        "The box is (10,20),(30,40) I think",
        "[{'Position': [10, 20, 30, 40], 'Confidence': 0.7}]",
    ],
)
def test_parse_box_variants(answer):
    b = parse_box(answer)
    assert b.ok and b.box == (10.0, 20.0, 30.0, 40.0)


@pytest.mark.parametrize(
    "answer", [None, "", "(1,2)", "[1,2,3]", "[NaN, 1, 2, 3]", "the cup", '{"label": "x"}']
)
def test_parse_box_failures(answer):
    b = parse_box(answer)
    assert not b.ok and b.box is None and b.reason != "ok"


def test_parse_label():
    lab = parse_label("  Boeing   737-800\n")
    assert lab.ok and lab.label == "Boeing 737-800" and lab.raw == "  Boeing   737-800\n"
    assert not parse_label("   ").ok
    assert not parse_label(None).ok


def test_parser_never_evaluates_model_output():
    import ast
    import inspect

    import vrft.parsing

    tree = ast.parse(inspect.getsource(vrft.parsing))
    called = {
        n.func.id if isinstance(n.func, ast.Name) else getattr(n.func, "attr", "")
        for n in ast.walk(tree)
        if isinstance(n, ast.Call)
    }
    assert not called & {"eval", "exec", "literal_eval"}
    # a Python expression is data, not code: nothing runs, the entry is simply invalid
    d = parse_detections("[{'Position': __import__('os').getcwd(), 'Confidence': 1}]")
    assert d.detections == ()
