"""SFT on tool traces: the tool results are made by the real tools, only the assistant turns are trained,
and the conversation opens with the same tool list as GRPO's prompts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vrft.data.record_checks import validate_record_dict

from .conftest import read_jsonl

ZOOM_TURN = {
    "content": "<think>look closer</think>",
    "tool_calls": [{"name": "zoom_in", "arguments": {"bbox_2d": [0, 0, 500, 500]}}],
}
TOOLS = {"enabled": True, "names": ["zoom_in"], "max_calls": 2, "max_images": 2, "max_pixels": 56 * 56}


def _with_traces(path):
    lines = []
    for i, line in enumerate(path.read_text().splitlines()):
        rec = json.loads(line)
        if i % 2 == 0:
            rec["trace"] = [ZOOM_TURN, {"content": f"<think>a shape</think> <answer>{rec['label']}</answer>"}]
        lines.append(json.dumps(rec))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_trace_is_checked_like_every_record_field():
    base = {"id": "a", "task": "classification", "image": "x.png", "width": 8, "height": 8, "label": "cat"}
    assert validate_record_dict({**base, "trace": [ZOOM_TURN, {"content": "<answer>cat</answer>"}]}) == []
    problems = dict(validate_record_dict({**base, "trace": [{"content": "x"}, ZOOM_TURN]}))
    assert "the last turn is the final answer" in problems["trace[1]"]
    problems = dict(
        validate_record_dict({**base, "trace": [{"content": "", "tool_calls": [{"nme": "zoom_in"}]}]})
    )
    assert "must be {'name'" in problems["trace[0].tool_calls[0]"]


@pytest.mark.slow  # two SFT steps on tiny Qwen3-VL with replayed tool turns (~10 s)
def test_sft_on_traces_trains_the_assistant_turns_only(make_config):
    from vrft.train.sft import run_sft

    cfg = make_config(arch="qwen3_vl", task="classification", tools=TOOLS, sft={"per_device_batch_size": 1})
    _with_traces(Path(cfg.data.train))
    seen = {}

    def hook(trainer):
        example = trainer.train_dataset[0]
        tool_turn = next(m for m in example["messages"] if m["role"] == "tool")
        zoom = tool_turn["content"][0]["image"]  # the zoom, made now by the tool, within the budget
        assert zoom.width * zoom.height <= 56 * 56 < 2 * zoom.width * zoom.height
        batch = trainer.data_collator([example])
        tok = trainer.processing_class.tokenizer
        ids, labels = batch["input_ids"][0], batch["labels"][0]
        seen["trained"] = tok.decode(ids[labels != -100])
        seen["all"] = tok.decode(ids)

    final = run_sft(cfg, trainer_hook=hook)
    trained, whole = seen["trained"], seen["all"]
    assert '"name": "zoom_in"' in trained and "<answer>circle</answer>" in trained
    assert (
        "<tool_response>" not in trained
        and "zoom_in: the region" not in trained
        and "<|image_pad|>" not in trained
    )
    assert "<tool_response>" in whole and "zoom_in: the region" in whole and "# Tools" in whole
    rows = [r for r in read_jsonl(final.parent / "metrics.jsonl") if "train/loss" in r]
    assert rows and all(r["train/loss"] == r["train/loss"] for r in rows)
    assert json.loads((final / "vrft.json").read_text())["tools"]["names"] == ["zoom_in"]


def test_sft_on_traces_needs_tools_enabled(make_config):
    from vrft.errors import ConfigError
    from vrft.train.sft import run_sft

    cfg = make_config(arch="qwen3_vl", task="classification")
    _with_traces(Path(cfg.data.train))
    with pytest.raises(ConfigError, match="records carry a tool 'trace'; set tools.enabled"):
        run_sft(cfg)


@pytest.mark.slow  # SFT on traces, then vrft eval of the result through the CLI (~15 s)
def test_a_model_sft_on_traces_is_evaluated_with_its_tools(make_config, tmp_path):
    from vrft.cli import main as cli_main
    from vrft.train.sft import run_sft

    cfg = make_config(arch="qwen3_vl", task="classification", tools=TOOLS, sft={"per_device_batch_size": 1})
    _with_traces(Path(cfg.data.train))
    final = run_sft(cfg)
    out = tmp_path / "eval"
    args = ["eval", "--model", str(final), "--data", cfg.data.train, "--out", str(out), "--device", "cpu",
            "--max-new-tokens", "4"]  # fmt: skip
    assert cli_main(args) == 0  # no --tools: the model's vrft.json says which
    tools = json.loads((out / "metrics.json").read_text())["tools"]
    assert tools["names"] == ["zoom_in"] and tools["max_calls"] == 2 and tools["samples"] == 4
    assert cli_main([*args, "--tools", "none"]) == 0
    assert "tools" not in json.loads((out / "metrics.json").read_text())
