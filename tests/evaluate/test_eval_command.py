"""`vrft eval --predictions ...`: re-scoring saved completions without a model, and input errors."""

from __future__ import annotations

import json

import pytest

from vrft.cli import main
from vrft.data.records import Record, save_records

from .conftest import answers_text


def _write_lines(path, lines):
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def test_rescore_detection_against_coco_gt(det_dir, capsys):
    texts = answers_text()
    # (2, 'cat') and (3, 'cat') are not listed: they count as no detections.
    lines = [
        {"image_id": iid, "category": cat, "completion": t}
        for (iid, cat), t in texts.items()
        if (iid, cat) not in ((2, "cat"), (3, "cat"))
    ]
    preds = _write_lines(det_dir / "preds.jsonl", lines)
    out = det_dir / "rescored"
    rc = main(
        ["eval", "--predictions", str(preds), "--coco-gt", str(det_dir / "instances.json"), "--out", str(out),
         "--images", str(det_dir / "images")]
    )  # fmt: skip
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())["detection"]
    # Same completions through the records path give the same metrics (missing pairs answered No Objects
    # score the same as not listed).
    full = [dict(x) for x in lines] + [
        {"image_id": 2, "category": "cat", "completion": "<answer>No Objects</answer>"},
        {"image_id": 3, "category": "cat", "completion": "<answer>No Objects</answer>"},
    ]
    preds2 = _write_lines(det_dir / "preds2.jsonl", full)
    assert (
        main(
            [
                "eval",
                "--predictions",
                str(preds2),
                "--data",
                str(det_dir / "det.jsonl"),
                "--out",
                str(out / "b"),
            ]
        )
        == 0
    )
    metrics2 = json.loads((out / "b" / "metrics.json").read_text())["detection"]
    for key in ("AP", "AP50", "AP75", "mAP"):
        assert metrics[key] == pytest.approx(metrics2[key], abs=1e-9)
    assert metrics["num_queries"] == 9 and metrics["num_asked"] == 7
    assert {p.name for p in out.iterdir()} >= {
        "metrics.json",
        "predictions.jsonl",
        "coco_results.json",
        "report.html",
    }
    assert "data:image/jpeg;base64," in (out / "report.html").read_text()  # images found via --images
    assert "detection: " in capsys.readouterr().out
    # re-scoring our own predictions.jsonl reproduces the metrics
    assert main(["eval", "--predictions", str(out / "predictions.jsonl"), "--data", str(det_dir / "det.jsonl"),
                 "--out", str(out / "c"), "--no-report"]) == 0  # fmt: skip
    metrics3 = json.loads((out / "c" / "metrics.json").read_text())["detection"]
    assert metrics3["AP"] == pytest.approx(metrics["AP"], abs=1e-9)
    assert not (out / "c" / "report.html").exists()


def test_rescore_classification_by_record_id(tmp_path):
    recs = [
        Record(id=f"c{i}", task="classification", image="x.png", width=8, height=8, label=lab)
        for i, lab in enumerate(["rose", "tulip"])
    ]
    save_records(recs, tmp_path / "cls.jsonl")
    preds = _write_lines(
        tmp_path / "p.jsonl",
        [
            {"id": "c0", "completion": "<think>.</think><answer>Rose</answer>"},
            {"id": "c1", "completion": "daisy"},
        ],
    )
    assert (
        main(
            [
                "eval",
                "--predictions",
                str(preds),
                "--data",
                str(tmp_path / "cls.jsonl"),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 0
    )
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert m["classification"]["accuracy"] == 50.0 and m["run"]["predictions"] == str(preds)


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda d: ["--out", str(d / "o")], "exactly one of --model"),
        (lambda d: ["--predictions", str(d / "nope.jsonl"), "--data", str(d / "det.jsonl"), "--out", str(d / "o")],
         "predictions file not found"),
        (lambda d: ["--predictions", str(d / "bad.jsonl"), "--coco-gt", str(d / "instances.json"), "--out", str(d / "o")],
         "bad.jsonl:2: completion: missing"),
        (lambda d: ["--predictions", str(d / "bad_img.jsonl"), "--coco-gt", str(d / "instances.json"),
                    "--out", str(d / "o")], "image_id 99 is not an image"),
        (lambda d: ["--predictions", str(d / "bad_img.jsonl"), "--out", str(d / "o")], "needs --data"),
        (lambda d: ["--predictions", str(d / "bad_img.jsonl"), "--data", str(d / "det.jsonl"), "--prompt", "x",
                    "--out", str(d / "o")], "--prompt asks a model"),
        (lambda d: ["--model", str(d / "no-model"), "--data", str(d / "det.jsonl"), "--out", str(d / "o")],
         "model directory not found"),
    ],
)  # fmt: skip
def test_user_errors_exit_2_with_a_message(det_dir, capsys, make_args, message):
    _write_lines(
        det_dir / "bad.jsonl", [{"image_id": 1, "category": "cat", "completion": "x"}, {"image_id": 1}]
    )
    _write_lines(det_dir / "bad_img.jsonl", [{"image_id": 99, "category": "cat", "completion": "x"}])
    assert main(["eval", *make_args(det_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vrft eval: error:") and message in err and "Traceback" not in err


def _exact_cat_lines() -> list[dict]:
    """Pixel-exact answers for category 'cat' only (images 1..3); no line for dog or bird."""
    from vrft.boxes import Frame

    from .conftest import GT, IMAGES, det_answer

    lines = []
    for iid, (w, h) in IMAGES.items():
        boxes = [Frame(w, h, "pixels").encode(b) for b in GT.get((iid, "cat"), [])]
        lines.append({"image_id": iid, "category": "cat", "completion": det_answer([(b, 1.0) for b in boxes])})
    return lines


def test_rescore_counts_every_category_of_the_records_not_only_those_answered(det_dir):
    # only 'cat' is answered (perfectly); dog and bird have GT and must count with AP 0 (issue 19 §2)
    preds = _write_lines(det_dir / "cat_only.jsonl", _exact_cat_lines())
    out = det_dir / "o"
    args = ["eval", "--predictions", str(preds), "--convention", "pixels", "--no-report"]
    assert main([*args, "--data", str(det_dir / "det.jsonl"), "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())["detection"]
    assert m["per_class_AP"]["cat"] == pytest.approx(100.0)
    assert m["per_class_AP"]["dog"] == 0.0 and m["per_class_AP"]["bird"] == 0.0
    assert m["mAP"] == pytest.approx(100.0 / 3)
    # against the GT file alone: the GT categories with boxes in the evaluated images count too
    assert main([*args, "--coco-gt", str(det_dir / "instances.json"), "--out", str(det_dir / "g")]) == 0
    g = json.loads((det_dir / "g" / "metrics.json").read_text())["detection"]
    assert g["mAP"] == pytest.approx(100.0 / 3) and set(g["per_class_AP"]) == {"cat", "dog", "bird"}


def test_rescore_records_without_a_line_count_as_unanswered(tmp_path, caplog):
    recs = [
        Record(id=f"c{i}", task="classification", image="x.png", width=8, height=8, label=lab)
        for i, lab in enumerate(["rose", "tulip", "daisy", "lily"])
    ]
    save_records(recs, tmp_path / "cls.jsonl")
    preds = _write_lines(tmp_path / "p.jsonl", [{"id": "c0", "completion": "<think>.</think><answer>rose</answer>"}])
    args = ["eval", "--predictions", str(preds), "--data", str(tmp_path / "cls.jsonl"), "--out", str(tmp_path / "o")]
    with caplog.at_level("WARNING"):
        assert main(args) == 0
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert m["classification"]["accuracy"] == 25.0 and m["classification"]["num_samples"] == 4
    assert m["run"]["unanswered"] == 3 and "count as unanswered" in caplog.text


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--max-new-tokens", "0"], "--max-new-tokens must be a positive integer, got 0"),
        (["--max-new-tokens", "-5"], "--max-new-tokens must be a positive integer, got -5"),
        (["--limit", "0"], "--limit must be a positive integer, got 0"),
        (["--limit", "-1"], "--limit must be a positive integer, got -1"),
        (["--batch-size", "0"], "--batch-size must be a positive integer, got 0"),
        (["--device", "cuda"], "--device cuda: no CUDA GPU is available here"),
        (["--device", "nonsense"], "--device nonsense: not a device"),
    ],
)
def test_bad_generation_options_are_refused_before_the_model_loads(det_dir, capsys, monkeypatch, extra, message):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    (det_dir / "model").mkdir()  # not a loadable model: a late check would fail on it instead
    for cmd in (
        ["eval", "--model", str(det_dir / "model"), "--data", str(det_dir / "det.jsonl"), "--out", str(det_dir / "o")],
        ["predict", str(det_dir / "images" / "001.png"), "--model", str(det_dir / "model"), "--detect", "cat"],
    ):
        if "--limit" in extra or "--batch-size" in extra:
            if cmd[0] == "predict":
                continue
        assert main([*cmd, *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err


def test_a_truncated_image_is_found_before_the_model_loads(det_dir, capsys):
    img = det_dir / "images" / "002.png"
    data = img.read_bytes()
    img.write_bytes(data[: len(data) // 2])  # a valid header, the pixels cut off
    (det_dir / "model").mkdir()
    cmd = ["eval", "--model", str(det_dir / "model"), "--data", str(det_dir / "det.jsonl"), "--out", str(det_dir / "o")]
    assert main(cmd) == 2
    err = capsys.readouterr().err
    assert "002.png" in err and "cannot read the image" in err and "Traceback" not in err, err


@pytest.mark.parametrize("out", ["data_dir", "root"])
def test_an_output_directory_holding_an_input_or_the_root_is_refused(tmp_path, capsys, out):
    recs = [Record(id="c0", task="classification", image="x.png", width=8, height=8, label="rose")]
    (tmp_path / "shapes").mkdir()
    save_records(recs, tmp_path / "shapes" / "cls.jsonl")
    preds = _write_lines(tmp_path / "p.jsonl", [{"id": "c0", "completion": "<answer>rose</answer>"}])
    target = str(tmp_path / "shapes") if out == "data_dir" else "/"
    args = ["eval", "--predictions", str(preds), "--data", str(tmp_path / "shapes" / "cls.jsonl"), "--out", target]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert ("holds the input" if out == "data_dir" else "filesystem root") in err and "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "shapes").iterdir()) == ["cls.jsonl"]


class _GridProcessor:
    """Stands in for a Qwen2.5-VL processor: its resize grid (28) and pixel budget."""

    class image_processor:  # noqa: N801
        patch_size, merge_size = 14, 2
        size = {"shortest_edge": 3136, "longest_edge": 40000}


class _ExactResized:
    """A generator answering every detection prompt with the GT boxes in resized pixels (Qwen2.5-VL)."""

    def __init__(self, records):
        self.by_image = {str(r.resolved_image()): r for r in records}

    def generate(self, requests, desc=None):
        from vrft.boxes import Frame

        from .conftest import GT, det_answer

        out = []
        for req in requests:
            rec = self.by_image[str(req.image)]
            cat = next(c for c in ("cat", "dog", "bird") if f"'{c}'" in req.text)
            frame = Frame.for_image(rec.width, rec.height, "resized_pixels", min_pixels=3136, max_pixels=40000)
            out.append(det_answer([(frame.encode(b), 1.0) for b in GT.get((rec.image_id, cat), [])]))
        return out


def test_rescoring_resized_pixel_answers_gives_the_original_metrics(det_dir):
    """Issue 19 §2b: a Qwen2.5-VL run's answers re-scored gave AP 0.00 (read as 0..1000)."""
    from vrft.data.records import load_records
    from vrft.evaluate.pipeline import evaluate_model

    records = load_records(det_dir / "det.jsonl")
    first = det_dir / "run"
    original = evaluate_model(None, _GridProcessor(), records, "detection", first, convention="resized_pixels",
                              generator=_ExactResized(records), report=False)["detection"]  # fmt: skip
    assert original["AP"] == pytest.approx(100.0)
    assert main(["eval", "--predictions", str(first / "predictions.jsonl"), "--data", str(det_dir / "det.jsonl"),
                 "--out", str(det_dir / "again"), "--no-report"]) == 0  # fmt: skip
    again = json.loads((det_dir / "again" / "metrics.json").read_text())
    assert again["detection"]["AP"] == pytest.approx(original["AP"]) and again["run"]["convention"] == "resized_pixels"
    # the same answers elsewhere (no metrics.json beside them): the options say how to read them
    bare = det_dir / "bare.jsonl"
    bare.write_text((first / "predictions.jsonl").read_text())
    args = ["eval", "--predictions", str(bare), "--data", str(det_dir / "det.jsonl"), "--no-report"]
    assert main([*args, "--convention", "resized_pixels", "--out", str(det_dir / "o1")]) == 2  # no budget: refused
    assert main([*args, "--convention", "resized_pixels", "--min-pixels", "3136", "--max-pixels", "40000",
                 "--out", str(det_dir / "o2")]) == 0  # fmt: skip
    third = json.loads((det_dir / "o2" / "metrics.json").read_text())["detection"]
    assert third["AP"] == pytest.approx(original["AP"])


def test_rescoring_resized_pixels_of_an_image_the_processor_refuses_is_one_line(tmp_path, capsys):
    recs = [Record(id="t", task="detection", image="thin.png", width=1000, height=4, category="cat",
                   boxes=[[0, 0, 10, 4]])]  # fmt: skip
    save_records(recs, tmp_path / "thin.jsonl")
    preds = _write_lines(tmp_path / "p.jsonl", [{"id": "t", "completion": "<answer>No Objects</answer>"}])
    args = ["eval", "--predictions", str(preds), "--data", str(tmp_path / "thin.jsonl"), "--out", str(tmp_path / "o"),
            "--convention", "resized_pixels", "--min-pixels", "3136", "--max-pixels", "40000"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "thin.jsonl:1: width/height 1000x4: absolute aspect ratio" in err and "Traceback" not in err


@pytest.mark.parametrize("option", ["max_new_tokens", "batch_size"])
def test_evaluate_model_refuses_a_zero_budget_instead_of_the_default(det_dir, option):
    from vrft.data.records import load_records
    from vrft.errors import UserError
    from vrft.evaluate.pipeline import evaluate_model

    records = load_records(det_dir / "det.jsonl")
    with pytest.raises(UserError, match=f"{option} must be a positive integer, got 0"):
        evaluate_model(None, _GridProcessor(), records, "detection", None, convention="norm1000",
                       generator=_ExactResized(records), **{option: 0})  # fmt: skip


def test_a_limited_run_rescores_to_its_own_metrics_with_limit(det_dir):
    from vrft.data.records import load_records
    from vrft.evaluate.pipeline import evaluate_model
    from vrft.evaluate.rescore import limit_records

    records = load_records(det_dir / "det.jsonl")
    first = det_dir / "run"
    original = evaluate_model(None, _GridProcessor(), limit_records(records, "detection", 1), "detection", first,
                              convention="resized_pixels", generator=_ExactResized(records), report=False)  # fmt: skip
    args = ["eval", "--predictions", str(first / "predictions.jsonl"), "--data", str(det_dir / "det.jsonl"), "--no-report"]
    assert main([*args, "--limit", "1", "--out", str(det_dir / "a")]) == 0
    again = json.loads((det_dir / "a" / "metrics.json").read_text())["detection"]
    assert again["num_images"] == 1 and again["AP"] == pytest.approx(original["detection"]["AP"])
    assert main([*args, "--out", str(det_dir / "b")]) == 0  # every image of --data: the others unanswered
    assert json.loads((det_dir / "b" / "metrics.json").read_text())["detection"]["num_images"] == 3


def test_rescore_limit_on_records_ignores_lines_past_it(tmp_path):
    recs = [Record(id=f"c{i}", task="classification", image="x.png", width=8, height=8, label="rose") for i in range(3)]
    save_records(recs, tmp_path / "cls.jsonl")
    lines = [{"id": f"c{i}", "completion": "<think>.</think><answer>rose</answer>"} for i in range(3)]
    preds = _write_lines(tmp_path / "p.jsonl", lines)
    args = ["eval", "--predictions", str(preds), "--data", str(tmp_path / "cls.jsonl"), "--limit", "2",
            "--out", str(tmp_path / "o")]  # fmt: skip
    assert main(args) == 0
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())["classification"]
    assert m["num_samples"] == 2 and m["accuracy"] == 100.0
