"""Counting and OCR tasks, answer-only prompts and targets, records, evaluators and few-shot classes."""

from __future__ import annotations

import json

import pytest

from vrft.boxes import Frame
from vrft.data.records import Record, load_records, validate_record_dict
from vrft.errors import ConfigError, DataError
from vrft.evaluate import score_predictions, set_answer_format
from vrft.rewards import REWARDS
from vrft.tasks import TASKS


def rec(task: str, **kw) -> Record:
    base = dict(id=f"{task}-1", task=task, image="x.png", width=200, height=100)
    base.update(kw)
    return Record(**base)


FRAME = Frame(200, 100, "norm1000")


def test_counting_task_prompt_answer_and_parse():
    t = TASKS["counting"]
    r = rec("counting", category="apple", boxes=[[0, 0, 20, 10], [100, 50, 120, 70]])
    prompt = t.prompt(r, FRAME)
    assert "'apple'" in prompt and "(between 0 and 1000, integer)" in prompt and "<think>" in prompt
    assert t.answer(r, FRAME) == "[[50, 50], [550, 600]]"  # centres of the encoded boxes
    assert (
        t.answer_text(r, FRAME)
        == "<think> There are 2 apple(s). </think> <answer>[[50, 50], [550, 600]]</answer>"
    )
    assert t.reward_columns(r, FRAME) == {"gt_boxes": [[0, 0, 100, 100], [500, 500, 600, 700]]}
    # the honest answer earns every counting reward
    cols = {k: [v] for k, v in t.reward_columns(r, FRAME).items()}
    for name in ("count_exact", "count_relative", "count_points", "format"):
        assert REWARDS[name]([t.answer_text(r, FRAME)], **cols) == [1.0]
    p = t.parse("<answer>[[500, 500]]</answer>", FRAME)
    assert p.ok and p.count == 1 and p.points == [[100.0, 50.0]]  # pixels
    assert t.parse("<answer>7</answer>").count == 7 and t.parse("<answer>7</answer>").points is None
    assert not t.parse("<answer>seven</answer>").ok
    empty = rec("counting", category="apple", boxes=[])
    assert t.answer(empty, FRAME) == "No Objects"
    assert t.prompt(rec("counting", category="apple"), Frame(200, 100, "pixels")).count("absolute pixel") == 1


def test_ocr_task():
    t = TASKS["ocr"]
    r = rec("ocr", text="  Hello\n World ")
    assert t.answer(r) == "Hello World"
    assert t.answer_text(r) == "<think> The image reads: Hello World </think> <answer>Hello World</answer>"
    assert t.reward_columns(r) == {"gt_text": "  Hello\n World "}
    assert t.parse("<answer> a  b </answer>").text == "a b"
    assert not t.parse("a b").ok and t.parse("a b", require_tags=False).text == "a b"
    with pytest.raises(DataError, match="needs the field 'text'"):
        t.reward_columns(rec("ocr"))


@pytest.mark.parametrize("task", list(TASKS))
def test_answer_only_prompts_and_targets(task):
    t = TASKS[task]
    fields = {
        "detection": dict(category="cat", boxes=[[0, 0, 20, 10]]),
        "classification": dict(label="rose"),
        "grounding": dict(expression="the cat", boxes=[[0, 0, 20, 10]]),
        "counting": dict(category="cat", boxes=[[0, 0, 20, 10]]),
        "ocr": dict(text="STOP"),
        "temporal_grounding": dict(video="v.mp4", duration=8.0, event="a star moves", window=[1.5, 4.0]),
        "multi_image_grounding": dict(
            images=["a.png", "b.png"], image_sizes=[[200, 100], [100, 100]], expression="the cat",
            target_image=2, boxes=[[0, 0, 20, 10]],
        ),
    }[task]
    think = rec(task, **fields)
    only = rec(task, answer_format="answer_only", **fields)
    p_think, p_only = t.prompt(think, FRAME), t.prompt(only, FRAME)
    assert "<think>" in p_think and "thinking process" in p_think
    assert "<think>" not in p_only and "without any thinking" in p_only and "<answer>" in p_only
    assert p_only == p_think.replace(
        "Output the thinking process in <think> </think> and final answer in <answer> </answer> tags.",
        "Output only the final answer in <answer> </answer> tags, without any thinking.",
    ).replace("<think> ... </think> <answer>", "<answer>")
    target = t.answer_text(only, FRAME)
    assert target == f"<answer>{t.answer(only, FRAME)}</answer>"
    assert REWARDS["format_answer_only"]([target]) == [1.0] and REWARDS["format"]([target]) == [0.0]
    assert REWARDS["format"]([t.answer_text(think, FRAME)]) == [1.0]


def test_records_accept_counting_ocr_and_answer_format(tmp_path):
    ok = {
        "id": "a",
        "task": "counting",
        "image": "x.png",
        "width": 4,
        "height": 4,
        "category": "dot",
        "boxes": [],
    }
    assert validate_record_dict(ok) == []
    assert validate_record_dict({**ok, "answer_format": "answer_only"}) == []
    assert [f for f, _ in validate_record_dict({**ok, "answer_format": "none"})] == ["answer_format"]
    assert {f for f, _ in validate_record_dict({k: v for k, v in ok.items() if k != "category"})} == {
        "category"
    }
    assert {f for f, _ in validate_record_dict({k: v for k, v in ok.items() if k != "boxes"})} == {"boxes"}
    ocr = {"id": "b", "task": "ocr", "image": "x.png", "width": 4, "height": 4, "text": ""}
    assert validate_record_dict(ocr) == []
    assert [f for f, _ in validate_record_dict({**ocr, "text": 5})] == ["text"]
    assert [f for f, _ in validate_record_dict({k: v for k, v in ocr.items() if k != "text"})] == ["text"]
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(ok) + "\n" + json.dumps({**ocr, "answer_format": "answer_only"}) + "\n")
    loaded = load_records(path)
    assert loaded[0].boxes == [] and loaded[1].text == "" and loaded[1].answer_format == "answer_only"
    assert loaded[1].to_dict()["text"] == "" and loaded[0].to_dict()["boxes"] == []


def test_counting_evaluator_metrics():
    recs = [
        rec("counting", id="a", category="dot", boxes=[[0, 0, 20, 10], [100, 50, 120, 70]]),  # n = 2
        rec("counting", id="b", category="dot", boxes=[]),  # n = 0
        rec("counting", id="c", category="dot", boxes=[[0, 0, 20, 10]]),  # n = 1
        rec("counting", id="d", category="dot", boxes=[[0, 0, 20, 10]] * 3),  # n = 3
    ]
    comps = [
        "<think>x</think> <answer>[[50, 50], [550, 600]]</answer>",  # exact, points 1
        "<think>x</think> <answer>No Objects</answer>",  # exact, points 1
        "<think>x</think> <answer>3</answer>",  # |3 - 1| = 2, points 0
        "no answer",  # parse failure: counts as 0 -> error 3
    ]
    m = score_predictions(recs, comps, "counting", report=False)["counting"]
    assert m["accuracy"] == 50.0 and m["mae"] == pytest.approx((0 + 0 + 2 + 3) / 4)
    assert m["point_f1"] == 50.0 and m["parse_fail"] == 25.0 and m["format_ok"] == 75.0
    assert m["relative"] == pytest.approx(100 * (1 + 1 + 0 + 0) / 4) and m["num_samples"] == 4
    # answer-only scoring: the think completions now fail the format
    m2 = score_predictions(recs, comps, "counting", report=False, answer_format="answer_only")
    assert m2["counting"]["format_ok"] == 0.0 and m2["run"]["answer_format"] == "answer_only"
    # lenient parsing reaches the metrics
    m3 = score_predictions(recs[2:3], ["1"], "counting", report=False, require_tags=False)["counting"]
    assert m3["accuracy"] == 100.0


def test_ocr_evaluator_metrics(tmp_path):
    recs = [rec("ocr", id=str(i), text=t) for i, t in enumerate(["Hello World", "the cat sat", "", "abcd"])]
    comps = [
        "<answer>Hello  World</answer>",  # exact: NED 0, F1 1
        "<answer>the dog sat</answer>",  # NED 3/11 ("cat" -> "dog"), words 2 of 3: F1 2/3
        "<answer></answer>",  # both empty: NED 0, F1 1
        "abcd",  # no answer pair: NED 1, F1 0
    ]
    m = score_predictions(recs, comps, "ocr", tmp_path / "out")["ocr"]
    assert m["edit_distance"] == pytest.approx(100 * (0 + 3 / 11 + 0 + 1) / 4)
    assert m["exact_match"] == 50.0 and m["word_f1"] == pytest.approx(100 * (1 + 2 / 3 + 1 + 0) / 4)
    assert m["parse_fail"] == 25.0 and m["num_samples"] == 4
    assert (tmp_path / "out" / "report.html").is_file()
    rows = [json.loads(x) for x in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert rows[1]["pred_label"] == "the dog sat" and rows[1]["rewards"]["ocr_exact"] == 0.0
    lenient = score_predictions(recs[3:], ["abcd"], "ocr", report=False, require_tags=False)["ocr"]
    assert lenient["exact_match"] == 100.0


def test_set_answer_format_and_training_agreement(tmp_path):
    from vrft.train.builder import with_answer_format

    r = [rec("ocr", text="a"), rec("ocr", id="2", text="b", answer_format="answer_only")]
    assert [x.answer_format for x in set_answer_format(r, "answer_only")] == ["answer_only"] * 2
    assert set_answer_format(r, None) == r
    assert [x.answer_format for x in with_answer_format(r[1:], "answer_only", "data.answer_format")] == [
        "answer_only"
    ]
    with pytest.raises(ConfigError, match="data.answer_format is 'think' but 1 record"):
        with_answer_format(r, "think", "data.answer_format")


def test_fewshot_counts_every_counting_record():
    from vrft.data.fewshot import class_of

    assert class_of(rec("counting", category="dot", boxes=[])) == "dot"
    assert class_of(rec("ocr", text="a")) == "*"


def test_config_answer_format_key_and_presets():
    from vrft.config import load_config
    from vrft.train.builder import reward_functions

    base = {"model": {"path": "m"}, "data": {"train": "t.jsonl", "task": "counting"}}
    cfg = load_config(base, ["rewards.preset=perception"])
    assert cfg.data.answer_format == "think"
    assert [n for n, _ in reward_functions(cfg, "counting")[0]][0] == "format"  # follows the mode
    cfg = load_config(
        base, ["rewards.preset=perception", "data.answer_format=answer_only"]
    )
    names = [n for n, _ in reward_functions(cfg, "counting")[0]]
    assert names == ["format_answer_only", "count_points", "count_exact", "parse_fail_counting"]
    cfg = load_config(base, ["data.answer_format=answer_only"])
    assert [n for n, _ in reward_functions(cfg, "counting")[0]][0] == "format_answer_only"
    with pytest.raises(ConfigError, match="data.answer_format"):
        load_config(base, ["data.answer_format=none"])
    from vrft.train.preflight import preflight

    with pytest.raises(ConfigError, match="no rewards for task 'ocr'"):
        preflight(load_config({**base, "data": {"train": "t.jsonl", "task": "ocr"}}, ["rewards.preset=visual-rft"]),
                  check_paths=False)  # fmt: skip


def test_eval_cli_answer_only_on_saved_completions(tmp_path, capsys):
    from vrft.cli import main

    lines = [
        {"id": "a", "task": "ocr", "image": "x.png", "width": 8, "height": 8, "text": "Hi"},
        {"id": "b", "task": "ocr", "image": "x.png", "width": 8, "height": 8, "text": "Yo",
         "answer_format": "answer_only"},
    ]  # fmt: skip
    (tmp_path / "r.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    preds = [
        {"id": "a", "completion": "<answer>Hi</answer>"},
        {"id": "b", "completion": "<answer>Yo</answer>"},
    ]
    (tmp_path / "p.jsonl").write_text("\n".join(json.dumps(x) for x in preds) + "\n")
    argv = [
        "eval",
        "--predictions",
        str(tmp_path / "p.jsonl"),
        "--data",
        str(tmp_path / "r.jsonl"),
        "--no-report",
    ]
    assert main([*argv, "--out", str(tmp_path / "e1")]) == 0  # per record: a think, b answer-only
    m = json.loads((tmp_path / "e1" / "metrics.json").read_text())
    assert m["ocr"]["format_ok"] == 50.0 and m["ocr"]["exact_match"] == 100.0
    assert m["run"]["answer_format"] == ["answer_only", "think"]
    assert main([*argv, "--out", str(tmp_path / "e2"), "--answer-only"]) == 0
    m = json.loads((tmp_path / "e2" / "metrics.json").read_text())
    assert m["ocr"]["format_ok"] == 100.0 and m["run"]["answer_format"] == "answer_only"
    capsys.readouterr()
