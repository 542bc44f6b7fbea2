"""`grpo.shared_prefill` / `grpo.dedup_images` in `vrft train`: on by default, off by config, logged fallback."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import torch
from tests.train.conftest import read_jsonl, reward_module, state_dict_of, tiny_config

from vrft.train import speed


def test_run_grpo_on_and_off_agree(tmp_path, monkeypatch, caplog):
    from vrft.train import run_grpo

    monkeypatch.syspath_prepend(str(reward_module(tmp_path)))
    runs = {}
    for name, overrides in {
        "on": [],
        "off": ["grpo.shared_prefill=false", "grpo.dedup_images=false"],
    }.items():
        cfg = tiny_config(tmp_path / name, arch="qwen2_5_vl", task="detection", overrides=overrides)
        with caplog.at_level(logging.INFO, logger="vrft.train.speed"):
            caplog.clear()
            final = run_grpo(cfg)
        runs[name] = (final, [r.getMessage() for r in caplog.records])
    (on, on_log), (off, off_log) = runs["on"], runs["off"]
    assert any("shared prefill on" in m for m in on_log) and any("de-duplication on" in m for m in on_log)
    assert any("shared prefill off" in m for m in off_log) and any("de-duplication off" in m for m in off_log)
    rewards = [
        [r["train/reward"] for r in read_jsonl(f.parent / "metrics.jsonl") if "train/reward" in r]
        for f in (on, off)
    ]
    assert rewards[0] == rewards[1] and len(rewards[0]) == 2  # same seed: same completions, same rewards
    a, b = state_dict_of(on), state_dict_of(off)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), rtol=1e-4, atol=1e-5), k


def test_unsupported_family_falls_back_with_one_line(caplog):
    model = torch.nn.Linear(2, 2)
    model.config = SimpleNamespace(model_type="llava_next")
    trainer = SimpleNamespace(model=model, ref_model=None)
    with caplog.at_level(logging.INFO, logger="vrft.train.speed"):
        assert speed.shared_prefill_rollout(model, True) is None
        assert speed.dedup_vision(trainer, True) == []
        assert speed.shared_prefill_rollout(model, True, use_vllm=True) is None
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3
    assert "not supported for model_type 'llava_next'" in lines[0] and "TRL's generation is used" in lines[0]
    assert "de-duplication not supported for model_type 'llava_next'" in lines[1]
    assert "vLLM" in lines[2]
