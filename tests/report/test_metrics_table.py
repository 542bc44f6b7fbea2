"""The evaluation report reads plainly: headline first, rows that apply to the task, parse failures marked bad."""

from __future__ import annotations

from vrft.report.html import render_report

DET = {
    "detection": {"num_images": 2, "AP": 1.0, "AP50": 3.0, "mAP": 12.5, "parse_fail": 100.0, "num_parse_fail": 8,
                  "per_class_AP": {"circle": 12.5}},
    "run": {"task": "detection", "require_tags": True, "convention": "resized_pixels", "pixel_budget": [3136, 12544],
            "model": "m", "batch_size": 16},
}  # fmt: skip


def test_the_headline_comes_first_and_the_run_settings_are_folded(tmp_path):
    text = render_report([], tmp_path / "r.html", metrics=DET).read_text()
    body = text[text.index("<body>") :]
    head = body.index('class="headline"')
    assert head < body.index("AP50") < body.index("how the evaluation ran") < body.index("resized_pixels")
    assert "12.500</span> <b>mAP</b>" in body  # the paper's number, large, named
    assert body.index("<details><summary>how the evaluation ran") < body.index("batch_size")
    assert "<pre>" not in body.split('<div class="controls">')[0]  # tables are HTML tables
    # parse_fail in plain words, marked bad when high
    assert "answers that could not be read, % (lower is better; 100 = none could be read)" in body
    assert "<td class='bad'>100.000</td>" in body
    assert "Read leniently" not in body


def test_lenient_parse_says_score_and_rewards_share_the_reading(tmp_path):
    metrics = {**DET, "run": {**DET["run"], "require_tags": False}}
    text = render_report([], tmp_path / "r.html", metrics=metrics).read_text()
    assert "Read leniently" in text and "every reward but <code>format</code>" in text


def test_sample_rows_apply_to_the_task(tmp_path):
    samples = [
        {"id": "c", "task": "classification", "gt_label": "rose", "pred_label": "tulip", "gt_boxes": [],
         "pred_boxes": [], "confidences": [], "parse_ok": False, "reason": "no answer",
         "rewards": {"format": 0.0, "parse_fail_classification": 1.0}},
        {"id": "g", "task": "grounding", "gt_boxes": [[1, 1, 5, 5]], "pred_boxes": [[1, 1, 4, 4]],
         "confidences": [1.0], "width": 10, "height": 10, "parse_ok": True},
        {"id": "d", "task": "detection", "gt_boxes": [[1, 1, 5, 5]], "pred_boxes": [[1, 1, 4, 4]],
         "confidences": [0.9], "width": 10, "height": 10, "parse_ok": True},
    ]  # fmt: skip
    text = render_report(samples, tmp_path / "r.html").read_text()
    cls, grd, det = text.split('<div class="sample"')[1:]
    assert "truth," not in cls and "<th>boxes</th>" not in cls
    assert "failed (no answer)" in cls and "no no answer" not in cls
    assert "parse_fail_classification (1 = answer not read: bad" in cls
    assert "confidences" not in grd and "1 truth, 1 predicted" in grd
    assert "<th>confidences</th><td>0.900</td>" in det
