"""A GRPO step with vrft's speed-ups equals TRL's own step: same completions and rewards, same gradients,
and the vision tower encodes each distinct image exactly once per pass."""

from __future__ import annotations

from contextlib import nullcontext

import pytest
import torch
from tests.speed.conftest import make_trainer

from vrft.train.vision_dedup import count_vision

pytestmark = pytest.mark.slow  # real train steps on 4 tiny architectures (~10 s)

G = 4
DISTINCT = 2  # two prompts, two different images per step


def _train(tmp_path, arch, speed, beta, iters):
    trainer = make_trainer(tmp_path, arch, speed=speed, g=G, beta=beta, num_iterations=iters, steps=iters)
    ref = trainer.ref_model
    with count_vision(trainer.model) as policy, count_vision(ref) if ref is not None else nullcontext() as r:
        trainer.train()
    return trainer, policy.per_call, (r.per_call if r is not None else [])


def _close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Largest |a - b| over all gradients, relative to the largest |a| (0 = identical)."""
    assert a.keys() == b.keys()
    scale = max(v.abs().max().item() for v in a.values())
    return max((a[k] - b[k]).abs().max().item() for k in a) / scale


@pytest.mark.parametrize(
    "arch, beta, iters",
    [("qwen2_5_vl", 0.04, 1), ("qwen2_vl", 0.0, 2), ("qwen3_vl", 0.04, 1), ("smolvlm", 0.0, 1)],
)
def test_speedups_give_the_same_step(tmp_path, arch, beta, iters):
    off, off_policy, off_ref = _train(tmp_path, arch, False, beta, iters)
    on, on_policy, on_ref = _train(tmp_path, arch, True, beta, iters)

    # generation (1 call) + old-policy pass (when mu > 1) + one policy pass per update; reference pass if beta > 0
    passes = 1 + (iters > 1) + iters
    assert off_policy == [2 * G] * passes  # TRL alone encodes every copy
    assert on_policy == [DISTINCT] * passes  # exactly one encode per distinct image per pass
    assert off_ref == ([2 * G] if beta else [])
    assert on_ref == ([DISTINCT] if beta else [])
    assert on.vrft_test["rollout"].stats.prefilled == DISTINCT
    # every log-prob pass ran the shared prompt prefix once per prompt (policy passes; reference pass)
    policy_prefix = on.vrft_test["prefix"][0].stats
    assert policy_prefix.shared_calls == (iters > 1) + iters
    assert policy_prefix.tokens < 0.6 * policy_prefix.tokens_unshared
    if beta:
        assert on.vrft_test["prefix"][1].stats.shared_calls == 1

    # same seed: the same completions, hence the same rewards
    r_off, r_on = off.vrft_test["reward"], on.vrft_test["reward"]
    assert r_on.completions == r_off.completions
    assert r_on.rewards == r_off.rewards
    assert len(set(r_on.rewards)) > 1  # a real learning signal, so the gradients below are not trivial

    # the same gradients (vision tower included) at every optimizer step
    g_off, g_on = off.vrft_test["grads"].grads, on.vrft_test["grads"].grads
    assert len(g_off) == len(g_on) == iters
    for a, b in zip(g_off, g_on):
        assert any(("visual" in k or "vision" in k) and v.abs().max() > 0 for k, v in a.items())
        assert _close(a, b) < 1e-4
    assert on.state.log_history[0]["loss"] == pytest.approx(
        off.state.log_history[0]["loss"], rel=1e-4, abs=1e-7
    )
