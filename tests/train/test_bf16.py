"""GRPO and SFT steps in bf16 on CPU (PyTorch has bf16 there): full fine-tuning with bf16 autocast over
fp32 master weights, and LoRA on a bf16 base; the speed-ups run in auto where proven for bf16."""

from __future__ import annotations

import logging
import math

import pytest
import torch

from .conftest import read_jsonl, state_dict_of

pytestmark = pytest.mark.slow  # bf16 train steps (~3 s)


def test_grpo_steps_in_bf16(make_config, caplog):
    from vrft.train import run_grpo

    cfg = make_config(arch="qwen2_5_vl", overrides=["model.precision=bf16"])
    with caplog.at_level(logging.INFO, logger="vrft"):
        final = run_grpo(cfg)
    lines = [r.getMessage() for r in caplog.records]
    assert any("weights float32, bf16" in m for m in lines)  # fp32 master weights, bf16 autocast
    speed = [m for m in lines if m.startswith("speed:")]
    assert len(speed) == 3 and all("(qwen2_5_vl, bf16, one process; proven by" in m for m in speed), speed
    rows = [r for r in read_jsonl(final.parent / "metrics.jsonl") if "train/reward" in r]
    assert [r["step"] for r in rows] == [1, 2]
    assert all(math.isfinite(r["train/loss"]) for r in rows)
    before, after = state_dict_of(cfg.model.path), state_dict_of(final)
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_sft_lora_steps_on_a_bf16_base(make_config, caplog):
    from vrft.train import run_sft

    cfg = make_config(
        arch="qwen2_vl", overrides=["model.precision=bf16", "model.lora.enabled=true", "model.lora.r=4"]
    )
    trainers = []
    final = run_sft(cfg, trainer_hook=trainers.append)
    dtypes = {p.dtype for n, p in trainers[0].model.named_parameters() if "lora_" not in n}
    assert dtypes == {torch.bfloat16}  # model.dtype auto: a LoRA base in bf16
    rows = [r for r in read_jsonl(final.parent / "metrics.jsonl") if "train/loss" in r]
    assert rows and all(math.isfinite(r["train/loss"]) for r in rows)
    before, after = state_dict_of(cfg.model.path), state_dict_of(final)
    assert any(not torch.equal(before[k].to(after[k].dtype), after[k]) for k in before if k in after)
