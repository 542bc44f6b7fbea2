"""`vrft demo --quick` end to end from the shipped base (the same code path, made smaller): the files
exist, every experiment has its baseline / SFT / Visual-RFT rows, the report shows them side by side.

Values are not checked here (one optimizer step teaches nothing); the measured tables of a full run are in
docs/demo.md and benchmarks/results/demo.md.
"""

from __future__ import annotations

import json
import math

import pytest

from vrft.cli import main as cli_main

pytestmark = pytest.mark.slow  # the quick demo trains and evaluates (~7 s)

SMALL = [
    "experiments.steps=1",
    "experiments.open_vocab_steps=1",
    "world.base_train_images=6",
    "world.det_pool_images=9",
    "world.det_test_images=3",
    "world.cls_pool_images=6",
    "world.cls_test_images=3",
    "eval.report_samples=2",
    "eval.max_new_tokens=40",
    "rft.num_generations=2",
    # used only when no base is shipped: a base built from nothing, as small as it gets
    "base.build.vision_images=16",
    "base.build.vision_steps=2",
    "base.build.cls_images=8",
    "base.build.det_images=4",
    "base.build.sft_steps=2",
    "base.build.sft_batch=4",
    "base.build.eval_images=2",
]


@pytest.mark.slow  # the whole pipeline (about 30 s)
def test_quick_demo_writes_results_plots_and_side_by_side_report(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VRFT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    assert cli_main(["demo", "--quick", "--out", str(out), *SMALL]) == 0

    data = json.loads((out / "results.json").read_text())
    assert data["split"] == "test"
    rows = data["rows"]
    keys = {(r["experiment"], r["method"]) for r in rows}
    for exp in ("open_vocab", "fewshot_detection", "fewshot_classification"):
        assert {(exp, "baseline"), (exp, "sft"), (exp, "rft")} <= keys
    for r in rows:
        value = r["novel_mAP"] if r["task"] == "detection" else r["accuracy"]
        assert isinstance(value, float) and math.isfinite(value) and 0.0 <= value <= 100.0, r
        assert r["mean"] == value and r["seeds"]
        assert r["sd"] is None, r  # one seed (and the one baseline run): no spread is claimed
    assert all(r["seed"] == 0 for r in data["runs"] if r["method"] != "baseline")
    # every detection test image is asked every novel shape (the all-categories protocol)
    asked = [json.loads(line) for line in (out / "eval/baseline-detection/predictions.jsonl").open()]
    assert len(asked) == 3 * 3 and any(not r["gt_boxes"] for r in asked)
    assert (out / "results.md").read_text().startswith("# ")
    assert list(out.glob("*.png")), "no plots written"
    report = (out / "report.html").read_text()
    assert report.count("<table>") == 3 and report.count("data:image/png;base64,") >= 3 * 2 * 4
    run = json.loads((out / "run.json").read_text())
    assert run["base_weights_sha256"] and run["split"] == "test"
    if not run["base_shipped"]:  # the base was built from nothing and cached: a second run reuses it
        assert (tmp_path / "cache" / "demo").is_dir()
    printed = capsys.readouterr().out
    assert "Visual-RFT" in printed
    # a smaller run says under its tables (printed, results.md, report.html) that it is not the demo's result
    assert "Not the demo's result" in printed and "Not the demo's result" in (out / "results.md").read_text()
    assert "Not the demo&#x27;s result" in report
