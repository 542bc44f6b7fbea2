"""`grpo.shared_prefill` / `dedup_images` / `share_prompt_prefix` in `vrft train`: on by default, off by config,
a one-line log when a family is not supported."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
import torch
from tests.train.conftest import read_jsonl, reward_module, state_dict_of, tiny_config

from vrft.train import speed


def test_run_grpo_on_and_off_agree(tmp_path, monkeypatch, caplog):
    from vrft.train import run_grpo

    monkeypatch.syspath_prepend(str(reward_module(tmp_path)))
    runs = {}
    for name, overrides in {
        "on": [],
        "off": ["grpo.shared_prefill=false", "grpo.dedup_images=false", "grpo.share_prompt_prefix=false"],
    }.items():
        cfg = tiny_config(tmp_path / name, arch="qwen2_5_vl", task="detection", overrides=overrides)
        with caplog.at_level(logging.INFO, logger="vrft.train.speed"):
            caplog.clear()
            final = run_grpo(cfg)
        runs[name] = (final, [r.getMessage() for r in caplog.records])
    (on, on_log), (off, off_log) = runs["on"], runs["off"]
    assert any("shared prefill on" in m for m in on_log) and any("de-duplication on" in m for m in on_log)
    assert any("shared prefill off" in m for m in off_log) and any("de-duplication off" in m for m in off_log)
    assert any("prefix sharing on" in m for m in on_log) and any("prefix sharing off" in m for m in off_log)
    metrics = [[r for r in read_jsonl(f.parent / "metrics.jsonl") if "train/reward" in r] for f in (on, off)]
    assert [r["step"] for r in metrics[0]] == [1, 2]
    # same seed: the same completions, hence the same rewards, at both steps
    assert [r["train/reward"] for r in metrics[0]] == [r["train/reward"] for r in metrics[1]]
    loss_key = next(k for k in metrics[0][0] if k.endswith("loss"))
    for a, b in zip(*metrics):
        assert a[loss_key] == pytest.approx(b[loss_key], rel=1e-3, abs=1e-6)
    # gradients agree to ~1e-6 (tests/speed/test_train_step.py); Adam turns float noise on ~zero gradients
    # into steps of up to lr, so the weights agree within 2 steps x lr
    a, b = state_dict_of(on), state_dict_of(off)
    assert a.keys() == b.keys()
    assert max((a[k].float() - b[k].float()).abs().max().item() for k in a) <= 2 * 1e-3 * 1.01


def test_unsupported_family_falls_back_with_one_line(caplog):
    model = torch.nn.Linear(2, 2)
    model.config = SimpleNamespace(model_type="llava_next")
    trainer = SimpleNamespace(model=model, ref_model=None)
    with caplog.at_level(logging.INFO, logger="vrft.train.speed"):
        assert speed.shared_prefill_rollout(model, True) is None
        assert speed.dedup_vision(trainer, True) == []
        assert speed.shared_prefill_rollout(model, True, use_vllm=True) is None
        assert speed.share_prompt_prefix(trainer, True) == []
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4
    assert "not supported for model_type 'llava_next'" in lines[0] and "TRL's generation is used" in lines[0]
    assert "de-duplication not supported for model_type 'llava_next'" in lines[1]
    assert "vLLM" in lines[2]
    assert "prefix sharing not supported for model_type 'llava_next'" in lines[3]
