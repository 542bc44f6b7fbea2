"""PrefixShare: the shared prompt prefix runs once per log-prob pass; outputs as without it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vrft.train.prefix_share import install_prefix_share


@pytest.fixture(scope="module")
def policy():
    from trl.trainer.utils import add_fused_lm_head

    from vrft.models.load import load_model_and_processor
    from vrft.models.tiny import cached_tiny

    model, processor = load_model_and_processor(cached_tiny("qwen2_5_vl"), dtype="float32")
    add_fused_lm_head(model, temperature=1.0, outputs=("log_probs",))  # what TRL's log-prob passes call
    return model, processor


def _batch(processor, rows: list[tuple[int, str]], completion: int = 6):
    """TRL's log-prob layout: left-padded prompts, then right-padded completions (random tokens)."""
    rng = np.random.default_rng(5)
    pics = [Image.fromarray(rng.integers(0, 256, (48, 56, 3), dtype=np.uint8)) for _ in range(2)]
    msgs = [[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": t}]}] for _, t in rows]
    text = [processor.apply_chat_template(m, add_generation_prompt=True) for m in msgs]
    inp = processor(images=[[pics[p]] for p, _ in rows], text=text, padding=True, return_tensors="pt")
    gen = torch.Generator().manual_seed(0)
    comp = torch.randint(5, 300, (len(rows), completion), generator=gen)
    cmask = torch.ones_like(comp)
    cmask[0, completion // 2 :] = 0
    ids = torch.cat([inp["input_ids"], comp], 1)
    mask = torch.cat([inp["attention_mask"], cmask], 1)
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, :-completion] = -100
    extra = {k: v for k, v in inp.items() if k not in ("input_ids", "attention_mask")}
    extra["mm_token_type_ids"] = torch.cat([extra["mm_token_type_ids"], torch.zeros_like(comp)], 1)
    return dict(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True, **extra)


def _logps(model, batch, grad=False):
    model.zero_grad()
    with torch.set_grad_enabled(grad):
        lp = model(**batch).log_probs
    if grad:
        lp.sum().backward()
    return lp.detach()


def test_same_logprobs_and_fewer_tokens(policy):
    model, processor = policy
    # same text, DIFFERENT pictures (0 and 1): only copies of the same (picture, text) may share
    batch = _batch(processor, [(0, "find it"), (0, "find it"), (1, "find it"), (1, "find it"), (0, "other")])
    ref = _logps(model, batch, grad=True)
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    hook = install_prefix_share(model)
    try:
        got = _logps(model, batch, grad=True)
    finally:
        hook.remove()
    assert hook.stats.shared_calls == 1
    assert hook.stats.tokens < 0.75 * hook.stats.tokens_unshared  # 3 prompt prefixes for 5 rows
    assert torch.allclose(ref, got, atol=1e-5, rtol=0)
    for n, p in model.named_parameters():
        if p.grad is not None:
            assert torch.allclose(
                grads[n], p.grad, rtol=1e-4, atol=1e-6 * grads[n].abs().max().item() + 1e-9
            ), n


def test_stands_aside_when_nothing_is_shared_or_checkpointing(policy):
    model, processor = policy
    hook = install_prefix_share(model)
    try:
        _logps(model, _batch(processor, [(0, "a"), (1, "b c")]))  # distinct rows
        assert hook.stats.shared_calls == 0
        model.gradient_checkpointing_enable()
        model.train()
        _logps(model, _batch(processor, [(0, "a"), (0, "a")]), grad=True)  # checkpointed layers drop caches
        assert hook.stats.shared_calls == 0
        _logps(model, _batch(processor, [(0, "a"), (0, "a")]), grad=False)  # no backward: no checkpointing
        assert hook.stats.shared_calls == 1
    finally:
        model.gradient_checkpointing_disable()
        hook.remove()
    assert install_prefix_share(torch.nn.Linear(2, 2)) is None
