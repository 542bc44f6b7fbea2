"""`vrft score TASK FILE --rewards a,b,...` for the issue 13 tasks and rewards, through the CLI."""

from __future__ import annotations

import json

import pytest

from vrft.cli import main


def write(tmp_path, rows) -> str:
    p = tmp_path / "c.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return str(p)


def run(capsys, *argv):
    rc = main(["score", *argv])
    out, err = capsys.readouterr()
    return rc, [json.loads(x) for x in out.splitlines()], err


def boxes_solution(*boxes) -> str:
    if not boxes:
        return "<answer>No Objects</answer>"
    return (
        "<answer>[" + ", ".join(f"{{'Position': {list(b)}, 'Confidence': 1}}" for b in boxes) + "]</answer>"
    )


A, B = [0, 0, 100, 100], [200, 200, 300, 300]


def test_counting_rewards_by_name(tmp_path, capsys):
    sol = boxes_solution(A, B)
    rows = [
        {"completion": "<answer>[[50, 50], [250, 250], [900, 900]]</answer>", "solution": sol},
        {"completion": "<think>two</think> <answer>2</answer>", "solution": sol},
        {"completion": "<answer>No Objects</answer>", "solution": boxes_solution()},
        {"completion": "<answer>three</answer>", "solution": sol},
        # pixel record: a 2000x1000 image, box -> 0..1000 [0, 0, 100, 200]; point (50, 150) inside
        {
            "completion": "<answer>[[50, 150]]</answer>",
            "boxes": [[0, 0, 200, 200]],
            "width": 2000,
            "height": 1000,
        },
    ]
    names = "count_exact,count_relative,count_points,format_answer_only,format"
    rc, out, err = run(capsys, "counting", write(tmp_path, rows), "--rewards", names)
    assert rc == 0 and err == ""
    assert [list(o["rewards"]) for o in out] == [names.split(",")] * 5
    assert out[0]["rewards"] == {"count_exact": 0.0, "count_relative": 0.5, "count_points": 0.8,
                                 "format_answer_only": 1.0, "format": 0.0}  # fmt: skip
    assert out[0]["total"] == pytest.approx(2.3)
    assert out[1]["rewards"] == {"count_exact": 1.0, "count_relative": 1.0, "count_points": 0.0,
                                 "format_answer_only": 0.0, "format": 1.0}  # fmt: skip
    assert out[2]["total"] == 4.0 and out[3]["total"] == 1.0  # parse failure: only a format reward
    assert out[4]["rewards"]["count_points"] == 1.0
    for o in out:
        assert o["total"] == pytest.approx(sum(o["rewards"].values()))


def test_ocr_rewards_by_name(tmp_path, capsys):
    rows = [
        {"completion": "<answer>Helo  world</answer>", "solution": "<answer>Hello world</answer>"},
        {"completion": "<answer> Hello world </answer>", "solution": "Hello world"},
        {"completion": "<answer>hello</answer>", "text": "Hello"},
        {"completion": "<answer></answer>", "record": {"text": ""}},
    ]
    rc, out, _ = run(capsys, "ocr", write(tmp_path, rows), "--rewards", "ocr_similarity,ocr_exact")
    assert rc == 0
    assert out[0] == {"rewards": {"ocr_similarity": round(1 - 1 / 11, 6), "ocr_exact": 0.0},
                      "total": round(1 - 1 / 11, 6)}  # fmt: skip
    assert out[1]["rewards"] == {"ocr_similarity": 1.0, "ocr_exact": 1.0}
    assert out[2]["rewards"]["ocr_similarity"] == pytest.approx(0.8)
    assert out[3] == {"rewards": {"ocr_similarity": 1.0, "ocr_exact": 1.0}, "total": 2.0}


def test_hungarian_by_name_and_the_perception_preset(tmp_path, capsys):
    g1, g2 = [0, 0, 10, 10], [2, 0, 12, 10]
    pred = (
        "[{'Position': [1, 0, 11, 10], 'Confidence': 0.9}, {'Position': [-2, 0, 8, 10], 'Confidence': 0.6}]"
    )
    rows = [{"completion": f"<answer>{pred}</answer>", "solution": boxes_solution(g1, g2)}]
    names = "detection_iou_hungarian,detection_f1,detection_confidence_hungarian,detection_iou"
    rc, out, _ = run(capsys, "detection", write(tmp_path, rows), "--rewards", names)
    assert rc == 0
    assert out[0]["rewards"] == {
        "detection_iou_hungarian": round((9 / 11 + 8 / 12) / 2, 6), "detection_f1": 1.0,
        "detection_confidence_hungarian": 0.75, "detection_iou": round(9 / 11 / 2, 6),
    }  # fmt: skip
    rc, out, _ = run(capsys, "detection", write(tmp_path, rows), "--preset", "perception")
    assert list(out[0]["rewards"]) == ["format", "iou", "f1", "confidence"]
    assert out[0]["rewards"]["format"] == 1.0 and out[0]["rewards"]["f1"] == 1.0
    # the default preset output is unchanged (no --preset, no --rewards)
    rc, out, _ = run(capsys, "detection", write(tmp_path, rows))
    assert list(out[0]["rewards"]) == ["format", "iou", "confidence"] and out[0]["rewards"]["format"] == 0.0


def test_counting_and_ocr_presets(tmp_path, capsys):
    rows = [{"completion": "<answer>[[50, 50]]</answer>", "solution": boxes_solution(A)}]
    rc, out, _ = run(capsys, "counting", write(tmp_path, rows), "--preset", "perception")
    assert out == [{"rewards": {"format": 1.0, "points": 1.0, "exact": 1.0}, "total": 3.0}]
    rc, out, _ = run(capsys, "counting", write(tmp_path, rows))  # default: think format
    assert out == [{"rewards": {"format": 0.0, "points": 1.0, "exact": 1.0}, "total": 2.0}]
    rows = [{"completion": "<answer>abcd</answer>", "solution": "<answer>abce</answer>"}]
    rc, out, _ = run(capsys, "ocr", write(tmp_path, rows), "--preset", "perception")
    assert out == [{"rewards": {"format": 1.0, "similarity": 0.75}, "total": 1.75}]
    rc = main(["score", "ocr", write(tmp_path, rows), "--preset", "visual-rft"])
    assert rc == 2 and "no rewards for task 'ocr'" in capsys.readouterr().err


def test_rewards_option_errors(tmp_path, capsys):
    path = write(tmp_path, [{"completion": "<answer>a</answer>", "solution": "<answer>a</answer>"}])
    for argv, message in [
        (["ocr", path, "--rewards", "ocr_similarty"], "did you mean 'ocr_similarity'"),
        (["ocr", path, "--rewards", " , "], "--rewards is empty"),
        (["ocr", path, "--rewards", "ocr_exact,ocr_exact"], "twice"),
        (["ocr", path, "--rewards", "ocr_exact", "--preset", "default"], "either --preset or --rewards"),
        (["ocr", path, "--rewards", "detection_iou"], "needs the dataset column 'gt_boxes'"),
    ]:
        assert main(["score", *argv]) == 2
        assert message in capsys.readouterr().err


def test_bad_counting_and_ocr_targets_are_reported(tmp_path, capsys):
    rows = [
        {"completion": "<answer>1</answer>", "solution": "<answer>3 apples</answer>"},
        {"completion": "<answer>1</answer>", "boxes": [[0, 0, 1, 1]]},  # no width / height
        {"completion": "<answer>1</answer>", "solution": boxes_solution(A)},
    ]
    path = write(tmp_path, rows)
    rc, out, err = run(capsys, "counting", path, "--rewards", "count_exact")
    assert rc == 1 and out == [{"rewards": {"count_exact": 1.0}, "total": 1.0}]
    assert f"{path}:1: unusable counting solution" in err and f"{path}:2: " in err
    rc, out, err = run(capsys, "ocr", write(tmp_path, [{"completion": "<answer>a</answer>", "text": 3}]))
    assert rc == 1 and "'text'" in err
