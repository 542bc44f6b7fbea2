"""`grpo.shared_prefill` / `dedup_images` / `share_prompt_prefix` in `vrft train`: on by default, off by config,
a one-line log when a family is not supported."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
import torch
from tests.train.conftest import read_jsonl, reward_module, state_dict_of, tiny_config
from transformers import TrainerCallback

from vrft.train import speed


class GradRecorder(TrainerCallback):
    """The (clipped) gradient of every trainable parameter just before each optimizer step."""

    def __init__(self):
        self.steps: list[dict[str, torch.Tensor]] = []

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.steps.append(
            {n: p.grad.detach().float().clone() for n, p in model.named_parameters() if p.grad is not None}
        )


def _max_rel_diff(a: dict, b: dict) -> float:
    """max |a - b| over all elements, relative to the largest gradient element."""
    assert a.keys() == b.keys() and a
    scale = max(t.abs().max().item() for t in a.values())
    assert scale > 0
    return max((a[k] - b[k]).abs().max().item() for k in a) / scale


@pytest.mark.slow  # two GRPO runs (~5 s)
def test_run_grpo_on_and_off_agree(tmp_path, monkeypatch, caplog):
    from vrft.train import run_grpo

    monkeypatch.syspath_prepend(str(reward_module(tmp_path)))
    runs, grads = {}, {}
    for name, overrides in {
        "on": [],
        "off": ["grpo.shared_prefill=false", "grpo.dedup_images=false", "grpo.share_prompt_prefix=false"],
    }.items():
        cfg = tiny_config(tmp_path / name, arch="qwen2_5_vl", task="detection", overrides=overrides)
        grads[name] = GradRecorder()
        with caplog.at_level(logging.INFO, logger="vrft.train.speed"):
            caplog.clear()
            final = run_grpo(cfg, extra_callbacks=[grads[name]])
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
    # The gradients that drive each optimizer step agree (Adam's first step is ~lr * sign(gradient), so the
    # weights alone would hide a changed gradient). Step 1 starts from the same weights: float noise only.
    assert len(grads["on"].steps) == len(grads["off"].steps) == 2
    step1 = _max_rel_diff(grads["on"].steps[0], grads["off"].steps[0])
    assert step1 <= 1e-5, step1  # measured 2.4e-8
    # Step 2 starts from weights that differ by Adam-amplified float noise on near-zero gradients: looser.
    step2 = _max_rel_diff(grads["on"].steps[1], grads["off"].steps[1])
    assert step2 <= 1e-4, step2  # measured 2.2e-7
    # The weights: the two runs moved them the same way. Compare each run's update (final - initial);
    # almost every element agrees to 1 % of lr (a handful of ~zero gradients may flip sign under Adam).
    a, b, init = state_dict_of(on), state_dict_of(off), state_dict_of(cfg.model.path)
    assert a.keys() == b.keys() == init.keys()
    differ = sum(int(((a[k].float() - b[k].float()).abs() > 1e-5).sum()) for k in a)
    moved = sum(int(((a[k].float() - init[k].float()).abs() > 1e-5).sum()) for k in a)
    assert moved > 0 and differ <= 0.005 * moved, (differ, moved)  # measured 57 of 188712


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
