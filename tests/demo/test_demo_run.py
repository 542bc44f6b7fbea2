"""`vrft demo --quick` end to end (the same code path, made smaller): the files exist, the numbers are finite.

Values are not checked here (a few optimizer steps teach nothing); the measured table of a full run is in
benchmarks/results/demo.md when one has been recorded.
"""

from __future__ import annotations

import json
import math

from vrft.cli import main as cli_main

SMALL = [
    "warm_start.steps=4",
    "fewshot.steps=1",
    "fewshot.shots=[1,2]",
    "world.base_images=16",
    "world.pool_images=24",
    "world.test_images=4",
    "eval.report_samples=4",
]


def test_quick_demo_writes_results_plots_and_report(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VRFT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    assert cli_main(["demo", "--quick", "--out", str(out), *SMALL]) == 0

    rows = json.loads((out / "results.json").read_text())["rows"]
    methods = {(r["method"], r["shots"]) for r in rows}
    assert ("sft", 1) in methods and ("rft", 1) in methods and ("sft", 2) in methods and ("rft", 2) in methods
    assert any(r["method"] == "baseline" for r in rows)
    for r in rows:
        assert r["task"] == "detection"
        assert isinstance(r["novel_mAP"], float) and math.isfinite(r["novel_mAP"]), r
        assert 0.0 <= r["novel_mAP"] <= 100.0
    assert (out / "results.md").read_text().startswith("# ")
    assert list(out.glob("*.png")), "no plots written"
    assert (out / "report.html").stat().st_size > 1000
    assert "Visual-RFT" in capsys.readouterr().out

    # The warm start is cached by its settings: a second run with other few-shot and test settings (here
    # the all-categories protocol: every novel shape asked on every test image) reuses it.
    run = json.loads((out / "run.json").read_text())
    assert run["warm_start"]["cached"] is False
    assert all(r["boxes"] for r in map(json.loads, (out / "world/test/records.jsonl").open()))
    out2 = tmp_path / "demo2"
    more = ["fewshot.shots=[1]", "fewshot.seed=1", "world.novel_prompts=all"]
    assert cli_main(["demo", "--quick", "--out", str(out2), *SMALL, *more]) == 0
    asked = [json.loads(line) for line in (out2 / "eval/baseline/predictions.jsonl").open()]
    assert any(not r["gt_boxes"] for r in asked) and any(r["gt_boxes"] for r in asked)
    run2 = json.loads((out2 / "run.json").read_text())
    assert run2["warm_start"]["cached"] is True and run2["warm_start_dir"] == run["warm_start_dir"]
    assert [(r["method"], r["shots"]) for r in json.loads((out2 / "results.json").read_text())["rows"]] == [
        ("baseline", 0), ("sft", 1), ("rft", 1)
    ]  # fmt: skip
