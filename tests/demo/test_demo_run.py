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
