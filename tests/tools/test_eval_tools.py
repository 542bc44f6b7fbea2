"""Answering with tools at evaluation time: the multi-turn generator, metrics.json's tool metrics, and the
`--tools` option of `vrft eval` / `vrft predict`."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from vrft.cli import main as cli_main

from .conftest import ANSWER, OUTSIDE, ZOOM, script_generation


@pytest.fixture(scope="module")
def qwen3():
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from vrft.models.tiny import cached_tiny

    torch.set_num_threads(1)
    path = cached_tiny("qwen3_vl")
    return path, AutoModelForImageTextToText.from_pretrained(path), AutoProcessor.from_pretrained(path)


def test_evaluation_with_tools_scores_the_final_answer_and_reports_tool_use(qwen3, tmp_path):
    from tests.train.conftest import write_records

    from vrft.data.records import load_records
    from vrft.evaluate.pipeline import evaluate_model
    from vrft.tools.generate import tool_generator

    path, model, processor = qwen3
    records = load_records(write_records(tmp_path / "data", "classification", 4))
    generator = tool_generator("zoom_in", None, model, processor, "norm1000", progress=False)
    first_turns = iter([ZOOM, OUTSIDE] * 2)  # the first turns, row after row: alternate

    def choose(prompt: str, i: int) -> str:
        return ANSWER if "<tool_response>" in prompt else next(first_turns)

    script_generation(model, processor.tokenizer, choose)
    metrics = evaluate_model(
        model, processor, records, "classification", tmp_path / "eval", generator=generator, convention="norm1000",
        progress=False,
    )  # fmt: skip
    # every sample answered "circle" after one call; records 0 and 3 are circles (accuracy 50 %)
    assert metrics["classification"]["accuracy"] == pytest.approx(50.0)
    tools = json.loads((tmp_path / "eval" / "metrics.json").read_text())["tools"]
    assert tools["names"] == ["zoom_in"] and tools["call_rate"] == 1.0 and tools["mean_calls"] == 1.0
    assert tools["mean_errors"] == 0.5  # the OUTSIDE calls were refused
    assert tools["mean_calls_correct"] == 1.0 and tools["mean_calls_wrong"] == 1.0
    rows = [json.loads(line) for line in (tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()]
    assert all(r["tool_calls"] == 1 and "<tool_response>" in r["turns"] for r in rows)
    assert any("is outside the image" in r["turns"] for r in rows)
    page = (tmp_path / "eval" / "report.html").read_text()
    assert page.count("turns (1 tool call)") == 4 and "&lt;tool_response&gt;[image" in page
    # the zooms themselves (the OUTSIDE calls were refused: no image), as small PNGs
    assert page.count('alt="tool image 1"') == 2 and all(
        len(r["tool_images"]) == (r["turns"].count("[image")) for r in rows
    )


def test_tool_metrics_split_by_correct_and_wrong():
    from vrft.tools.generate import tool_metrics

    def calls(n):
        return [{"role": "assistant", "content": "", "tool_calls": [{}]}, *[{"role": "tool", "content": "x"}] * n,
                {"role": "assistant", "content": "<answer>a</answer>"}]  # fmt: skip

    m = tool_metrics([calls(2), calls(0), "<answer>b</answer>", calls(1)], [True, True, False, None])
    assert m["call_rate"] == 0.5 and m["mean_calls"] == 0.75
    assert m["mean_calls_correct"] == 1.0 and m["mean_calls_wrong"] == 0.0


@pytest.mark.slow  # loads tiny Qwen3-VL twice through the CLI and generates (~10 s)
def test_eval_and_predict_cli_take_tools(tmp_path, capsys, monkeypatch):
    from tests.train.conftest import write_records

    from vrft.models.tiny import cached_tiny
    from vrft.tools import generate

    sizes = []  # the batch size each ToolGenerator was built with: eval's --batch-size reaches it
    real_init = generate.ToolGenerator.__init__

    def recording_init(self, *a, **kw):
        sizes.append(kw.get("batch_size"))
        real_init(self, *a, **kw)

    monkeypatch.setattr(generate.ToolGenerator, "__init__", recording_init)

    model = str(cached_tiny("qwen3_vl"))
    data = str(write_records(tmp_path / "data", "classification", 2))
    out = tmp_path / "eval"
    args = [
        "eval",
        "--model",
        model,
        "--data",
        data,
        "--out",
        str(out),
        "--device",
        "cpu",
        "--max-new-tokens",
        "4",
    ]
    assert cli_main([*args, "--tools", "zoom_in", "--batch-size", "3"]) == 0
    assert sizes == [3]
    tools = json.loads((out / "metrics.json").read_text())["tools"]
    assert tools["names"] == ["zoom_in"] and tools["samples"] == 2
    assert cli_main([*args, "--tools", "zoom"]) == 2
    assert "did you mean 'zoom_in'" in capsys.readouterr().err
    image = tmp_path / "a.png"
    Image.new("RGB", (56, 56), "red").save(image)
    code = cli_main(["predict", "--model", model, str(image), "--classify", "a shape", "--tools", "zoom_in", "-v",
                     "--device", "cpu", "--max-new-tokens", "4"])  # fmt: skip
    assert code == 0 and "turns: " in capsys.readouterr().out
