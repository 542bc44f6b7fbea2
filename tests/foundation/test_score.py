"""`vrft score`: offline re-scoring through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from vrft.cli import main


def write(tmp_path, rows) -> str:
    p = tmp_path / "c.jsonl"
    p.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return str(p)


def run(capsys, *argv):
    rc = main(["score", *argv])
    out, err = capsys.readouterr()
    return rc, [json.loads(x) for x in out.splitlines()], err


def C(answer: str, tail: str = "") -> str:
    return f"<think>t</think> <answer>{answer}</answer>{tail}"


A, B, X = [0, 0, 100, 100], [200, 200, 300, 300], [500, 500, 600, 600]


def boxes_text(*bs) -> str:
    return "[" + ", ".join(f"{{'Position': {b}, 'Confidence': 1}}" for b in bs) + "]"


def test_detection_solution_and_record_targets(tmp_path, capsys):
    sol = f"<answer>{boxes_text(A, B)}</answer>"
    rows = [
        {"completion": C(boxes_text(A)), "solution": sol},  # 1 of 2 -> 0.5
        {"completion": C(boxes_text(A, B, X)), "solution": sol},  # 2 + 1 extra -> 0.667
        {"completion": C("No Objects"), "solution": "<answer>No Objects</answer>"},
        {"completion": C("No Objects") + "\n", "solution": "<answer>No Objects</answer>"},
        # record format: pixels of a 1000x500 image -> norm1000 [0,0,100,200]
        {
            "completion": C(boxes_text([0, 0, 100, 200])),
            "record": {"boxes": [[0, 0, 100, 100]], "width": 1000, "height": 500},
        },
        {
            "completion": [{"role": "assistant", "content": C(boxes_text([0, 0, 100, 200]))}],
            "boxes": [[0, 0, 100, 100]],
            "width": 1000,
            "height": 500,
        },
    ]
    rc, out, err = run(capsys, "detection", write(tmp_path, rows))
    assert rc == 0 and err == "" and len(out) == 6
    assert all(
        set(o) == {"rewards", "total"} and list(o["rewards"]) == ["format", "iou", "confidence"] for o in out
    )
    assert out[0]["rewards"] == {"format": 1.0, "iou": 0.5, "confidence": 1.0} and out[0]["total"] == 2.5
    assert abs(out[1]["rewards"]["iou"] - 0.667) < 1e-3
    assert out[2] == {"rewards": {"format": 1.0, "iou": 1.0, "confidence": 1.0}, "total": 3.0}
    assert out[3]["rewards"]["format"] == 1.0  # default preset tolerates the trailing newline
    assert out[4]["rewards"]["iou"] == 1.0 and out[5]["rewards"]["iou"] == 1.0

    rc, out, _ = run(capsys, "detection", write(tmp_path, rows), "--preset", "visual-rft")
    assert rc == 0 and out[3]["rewards"]["format"] == 0.0  # the reference's full match
    assert out[2]["total"] == 3.0  # correct No Objects is rewarded (reference defect 3 fixed)
    for o in out:
        assert o["total"] == pytest.approx(sum(o["rewards"].values()))


def test_classification(tmp_path, capsys):
    rows = [
        {"completion": C("Audi"), "solution": "<answer>Audi A4 Sedan 2012</answer>"},
        {"completion": C(""), "solution": "<answer>Audi A4 Sedan 2012</answer>"},
        {"completion": C("dog-rose"), "label": "wild rose", "aliases": ["dog rose"]},
        {"completion": C("Wild Rose"), "record": {"label": "wild_rose"}},
    ]
    rc, out, _ = run(capsys, "classification", write(tmp_path, rows))
    assert rc == 0 and [list(o["rewards"]) for o in out] == [["format", "accuracy"]] * 4
    assert [o["rewards"]["accuracy"] for o in out] == [0.0, 0.0, 1.0, 1.0]
    rc, out, _ = run(capsys, "classification", write(tmp_path, rows), "--preset", "visual-rft")
    assert [o["rewards"]["accuracy"] for o in out] == [1.0, 0.0, 0.0, 1.0]  # "Audi" exploit, empty fixed


def test_grounding_keys_per_preset(tmp_path, capsys):
    rows = [
        {"completion": C("(0,0),(100,100)"), "solution": "<answer> (0,0),(100,100) </answer>"},
        {"completion": C("(0,0),(100,50)"), "solution": "<answer> (0,0),(100,100) </answer>"},
        {"completion": C("[0, 0, 100, 100]"), "boxes": [[0, 0, 200, 100]], "width": 2000, "height": 1000},
    ]
    rc, out, _ = run(capsys, "grounding", write(tmp_path, rows))
    assert rc == 0 and [o["rewards"]["iou"] for o in out] == [1.0, 0.5, 1.0]  # pixels -> 0..1000
    rc, out, _ = run(capsys, "grounding", write(tmp_path, rows), "--preset", "visual-rft")
    assert [list(o["rewards"]) for o in out] == [["format", "giou"]] * 3
    assert out[0]["rewards"]["giou"] == 2.0 and out[1]["rewards"]["giou"] == 1.5 and out[0]["total"] == 3.0


def test_bad_lines_are_reported_and_good_lines_still_scored(tmp_path, capsys):
    rows = [
        {"completion": C("No Objects"), "solution": "<answer>No Objects</answer>"},
        "{not json",
        {"solution": "<answer>No Objects</answer>"},
        {"completion": C("No Objects"), "solution": "<answer>a cat</answer>"},
        "",
        {"completion": C("No Objects"), "boxes": [[0, 0, 1]], "width": 10, "height": 10},
        {"completion": C("No Objects"), "boxes": [], "width": 0, "height": 10},
        [1, 2],
        {"completion": C(boxes_text(A)), "solution": f"<answer>{boxes_text(A)}</answer>"},
    ]
    path = write(tmp_path, rows)
    rc, out, err = run(capsys, "detection", path)
    assert rc == 1 and len(out) == 2 and out[1]["rewards"]["iou"] == 1.0
    for lineno in (2, 3, 4, 6, 7, 8):
        assert f"{path}:{lineno}: " in err
    assert f"{path}:5:" not in err and f"{path}:1:" not in err


def test_missing_file_is_a_user_error(tmp_path, capsys):
    rc = main(["score", "detection", str(tmp_path / "nope.jsonl")])
    assert rc == 2 and "vrft score: error: " in (err := capsys.readouterr().err) and "not found" in err


def test_score_does_not_import_torch(tmp_path):
    path = write(tmp_path, [{"completion": C("rose"), "label": "rose"}])
    code = (
        "import sys; from vrft.cli import main; rc = main(['score', 'classification', sys.argv[1]]); "
        "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)"
    )
    r = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"rewards": {"format": 1.0, "accuracy": 1.0}, "total": 2.0}


def test_score_reads_vrft_outputs_and_pixel_conventions(tmp_path, capsys):
    """Issue 19 §2c: vrft eval's predictions.jsonl and a run's samples.jsonl carry gt_boxes / gt_label
    (every line failed with "missing target"); pixel answers need --convention pixels."""
    exact = C(boxes_text([20, 10, 60, 50]))  # pixels of a 200x100 image
    eval_row = {"id": "d-1-cat", "task": "detection", "width": 200, "height": 100, "completion": exact,
                "gt_boxes": [[20.0, 10.0, 60.0, 50.0]], "category": "cat"}  # fmt: skip
    sample_row = {"step": 1, "record_id": "d-1-cat", "width": 200, "height": 100, "task": "detection",
                  "gt_boxes": [[20, 10, 60, 50]], "gt_label": None, "completion": exact}  # fmt: skip
    path = write(tmp_path, [eval_row, sample_row])
    rc, out, err = run(capsys, "detection", path, "--convention", "pixels")
    assert rc == 0 and err == "" and [o["rewards"]["iou"] for o in out] == [1.0, 1.0]
    rc, out, _ = run(capsys, "detection", path)  # read as 0..1000 (the default): not the same box
    assert rc == 0 and out[0]["rewards"]["iou"] < 0.5
    # resized pixels (Qwen2.5-VL): needs the budget; then the resized-pixel answer is exact
    from vrft.boxes import Frame

    frame = Frame.for_image(200, 100, "resized_pixels", min_pixels=3136, max_pixels=6000)
    row = dict(eval_row, completion=C(boxes_text(frame.encode([20, 10, 60, 50]))))
    path = write(tmp_path, [row])
    assert main(["score", "detection", path, "--convention", "resized_pixels"]) == 2
    assert "--min-pixels" in capsys.readouterr().err
    rc, out, _ = run(capsys, "detection", path, "--convention", "resized_pixels", "--min-pixels", "3136",
                     "--max-pixels", "6000")  # fmt: skip
    assert rc == 0 and out[0]["rewards"]["iou"] == 1.0
    # classification / OCR rows of vrft's outputs carry gt_label; a null completion (not asked) scores 0
    cls = write(tmp_path, [{"completion": C("rose"), "gt_label": "rose"}, {"completion": None, "gt_label": "rose"}])
    rc, out, _ = run(capsys, "classification", cls)
    assert rc == 0 and [o["rewards"]["accuracy"] for o in out] == [1.0, 0.0]
    rc, out, _ = run(capsys, "ocr", write(tmp_path, [{"completion": C("STOP"), "gt_label": "STOP"}]))
    assert rc == 0 and out[0]["rewards"]["similarity"] == 1.0


def test_score_reads_the_convention_a_vrft_eval_run_recorded(tmp_path, capsys):
    (tmp_path / "metrics.json").write_text(json.dumps({"detection": {}, "run": {"convention": "pixels"}}))
    row = {"completion": C(boxes_text([20, 10, 60, 50])), "gt_boxes": [[20, 10, 60, 50]], "width": 200, "height": 100}
    path = tmp_path / "predictions.jsonl"
    path.write_text(json.dumps(row) + "\n")
    rc, out, _ = run(capsys, "detection", str(path))
    assert rc == 0 and out[0]["rewards"]["iou"] == 1.0


def test_score_reads_the_convention_of_a_training_run(tmp_path, capsys):
    """A run's samples.jsonl: the answers are in the convention of the model trained (final/vrft.json)."""
    from vrft.models.contract import ModelContract, write_contract

    (tmp_path / "final").mkdir()
    write_contract(tmp_path / "final", ModelContract("detection", None, "think", "pixels", None, None))
    row = {"step": 1, "completion": C(boxes_text([20, 10, 60, 50])), "gt_boxes": [[20, 10, 60, 50]],
           "width": 200, "height": 100}  # fmt: skip
    (tmp_path / "samples.jsonl").write_text(json.dumps(row) + "\n")
    rc, out, _ = run(capsys, "detection", str(tmp_path / "samples.jsonl"))
    assert rc == 0 and out[0]["rewards"]["iou"] == 1.0
