"""GRPO with tools on tiny models: TRL's tool loop trains, logs the tool counters, and refuses the families
it cannot serve in one line."""

from __future__ import annotations

import json
import logging
import re

import pytest
import torch

from vrft.errors import UserError

from .conftest import BAD_JSON, OUTSIDE, UNKNOWN, ZOOM, first_call_then_answer, read_jsonl, script_generation

TOOLS = {
    "enabled": True,
    "names": ["zoom_in", "rotate"],
    "max_calls": 2,
    "max_images": 2,
    "max_pixels": 56 * 56,
}
GRPO = {"max_completion_length": 400, "num_generations": 2, "prompts_per_step": 2, "beta": 0.0}


def _scripted(written: list, calls):
    def hook(trainer):
        model = trainer.model
        written.append(
            script_generation(model, trainer.processing_class.tokenizer, first_call_then_answer(calls))
        )

    return hook


@pytest.mark.slow  # two GRPO steps with two generation rounds each on tiny Qwen3-VL (~10 s)
def test_grpo_with_tools_trains_and_logs_the_tool_counters(make_config, caplog):
    from vrft.train import run_grpo

    cfg = make_config(
        arch="qwen3_vl", task="classification", tools=TOOLS, grpo=GRPO,
        rewards={"extra": ["vrft_test_rewards:varied"], "weights": {"tool_format": 1.0, "tool_bonus": 0.5}},
    )  # fmt: skip
    written: list = []
    with caplog.at_level(logging.INFO, logger="vrft"):
        final = run_grpo(cfg, trainer_hook=_scripted(written, [ZOOM, OUTSIDE, BAD_JSON, UNKNOWN]))
    texts = written[0]
    assert texts.count(ZOOM) and texts.count(OUTSIDE) and texts.count(BAD_JSON)
    # every scripted call but the bad JSON (nothing to run) got a result and a second turn
    assert sum("circle" in t for t in texts) >= 3

    rows = [r for r in read_jsonl(final.parent / "metrics.jsonl") if "train/reward" in r]
    assert [r["step"] for r in rows] == [1, 2]
    for r in rows:
        # 4 rollouts per step, one per script: ZOOM (ok), OUTSIDE (error), BAD_JSON (error, no result), UNKNOWN
        # (error from TRL); all but BAD_JSON take a second turn
        assert r["train/tools/calls"] == pytest.approx(1.0)
        assert r["train/tools/errors"] == pytest.approx(0.75)
        assert r["train/tools/turns"] == pytest.approx(1.75)
        assert r["train/tools/used"] == pytest.approx(1.0)
        assert r["train/tools/call_frequency"] == pytest.approx(0.75)  # TRL's own: executed calls per rollout
        assert r["train/reward/tool_format"] == pytest.approx(0.25 * 1.0)  # only the good zoom is well-formed
        # ... and is paid when "circle" is right (the task's answer reward; `varied`, a user reward, is not one)
        assert r["train/reward/tool_bonus"] in (0.0, 0.25)
        assert torch.isfinite(torch.tensor(r["train/loss"]))
    # samples.jsonl shows every turn; the parsed answer is the final one
    samples = read_jsonl(final.parent / "samples.jsonl")
    zoomed = [r for r in samples if '"name": "zoom_in"' in r["completion"] and "[image" in r["completion"]]
    shown = re.compile(r"<tool_response>\[image \d+x\d+\] zoom_in: the region")
    assert zoomed and all(shown.search(r["completion"]) for r in zoomed)
    assert all(r["pred_label"] == "circle" for r in zoomed)
    log = caplog.text
    assert "speed: shared prefill stands aside: tools.enabled" in log
    assert "speed: image de-duplication stands aside: tools.enabled" in log
    assert "tools: zoom_in, rotate through TRL's tool loop" in log
    # vrft.json remembers the tools; the trained model keeps the tool-capable template it was trained with
    contract = json.loads((final / "vrft.json").read_text())
    assert contract["tools"] == {
        "names": ["zoom_in", "rotate"],
        "max_calls": 2,
        "max_images": 2,
        "max_pixels": 3136,
    }
    assert "<tool_call>" in (final / "chat_template.jinja").read_text()


@pytest.mark.parametrize("arch", ["qwen2_vl", "qwen2_5_vl", "smolvlm"])
def test_families_without_a_tool_template_are_refused_in_one_line(make_config, arch):
    from vrft.train import run_grpo

    overrides = ["model.coordinate_convention=norm1000"] if arch == "smolvlm" else []
    cfg = make_config(arch=arch, task="classification", tools=TOOLS, overrides=overrides)
    with pytest.raises(UserError) as err:  # by the preflight, before any model is loaded
        run_grpo(cfg)
    lines = [line for line in str(err.value).splitlines() if "tools.enabled needs a Qwen3-VL model" in line]
    assert len(lines) == 1 and "no tool blocks" in lines[0], str(err.value)
    assert "model.coordinate_convention" not in str(err.value)


def test_the_tool_refusal_also_stands_without_the_preflight(make_config):
    from transformers import AutoProcessor

    from vrft.tools.support import prepare_processor

    cfg = make_config(arch="qwen2_5_vl", task="classification", tools=TOOLS)
    processor = AutoProcessor.from_pretrained(cfg.model.path)
    with pytest.raises(
        UserError, match="^tools.enabled needs a Qwen3-VL model: Qwen2.5-VL's official chat template"
    ):
        prepare_processor(processor, "qwen2_5_vl")


def test_tools_need_one_image_records():
    from types import SimpleNamespace

    from vrft.config import load_config
    from vrft.train.preflight import _check_tools

    cfg = load_config({"model": {"path": "m"}, "data": {"train": "t.jsonl"}, "tools": TOOLS})
    found = []
    records = [SimpleNamespace(image="a.png", id="a", source="t.jsonl:1"),
               SimpleNamespace(image=None, id="b", source="t.jsonl:2")]  # fmt: skip
    _check_tools(cfg, lambda key, message: found.append((key, message)), "qwen3_vl", None, records)
    assert found == [("tools.enabled", found[0][1])] and "first: t.jsonl:2" in found[0][1]
    found.clear()
    _check_tools(cfg, lambda key, message: found.append((key, message)), "qwen3_vl", None, records[:1])
    assert found == []
