"""VisionDedup: one encode per distinct image, outputs and gradients as without it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from vrft.train.vision_dedup import VisionDedup, count_vision, find_vision_tower, install_vision_dedup

pytestmark = pytest.mark.slow  # a module fixture builds tiny models, then forward/backward passes (~3 s)

ARCHS = ["qwen2_vl", "qwen2_5_vl", "qwen3_vl", "smolvlm"]


@pytest.fixture(scope="module")
def models():
    from vrft.models.load import load_model_and_processor
    from vrft.models.tiny import cached_tiny

    return {a: load_model_and_processor(cached_tiny(a), dtype="float32") for a in ARCHS}


def _pictures():
    rng = np.random.default_rng(3)
    return [
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        for w, h in [(64, 56), (40, 48), (64, 56)]
    ]


def _batch(processor, picks: list[int], texts: list[str]):
    pics = _pictures()
    msgs = [[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": t}]}] for t in texts]
    text = [processor.apply_chat_template(m, add_generation_prompt=True) for m in msgs]
    return processor(images=[[pics[p].copy()] for p in picks], text=text, padding=True, return_tensors="pt")


def _run(model, batch):
    model.zero_grad()
    with count_vision(model) as seen:
        out = model(**batch)
    out.logits.float().square().mean().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out.logits.detach(), grads, seen.per_call


@pytest.mark.parametrize("arch", ARCHS)
def test_same_logits_and_gradients(models, arch):
    model, processor = models[arch]
    # picture 2 has picture 0's size but other pixels: same grid, must not be merged with it
    picks = [0, 1, 0, 2, 1, 0]
    batch = _batch(processor, picks, ["find it", "where", "find it", "other", "x y", "find it"])
    logits0, grads0, calls0 = _run(model, batch)
    hook = install_vision_dedup(model)
    try:
        logits1, grads1, calls1 = _run(model, batch)
    finally:
        hook.remove()
    tiles = calls0[0] // len(picks)  # SmolVLM feeds an image as tiles; Qwen-VL as one grid
    assert calls1 == [3 * tiles]  # three distinct pictures
    assert (hook.stats.images_in, hook.stats.images_encoded) == (calls0[0], calls1[0])
    assert torch.equal(logits0, logits1)
    assert grads0.keys() == grads1.keys()
    vision = [k for k in grads0 if "visual" in k or "vision" in k]
    assert vision and all(grads0[k].abs().max() > 0 for k in vision[:3])
    for k in grads0:
        assert torch.allclose(grads0[k], grads1[k], rtol=1e-5, atol=1e-8), k


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(0, 2), min_size=1, max_size=7))
def test_any_pattern_of_copies(models, picks):
    model, processor = models["qwen2_5_vl"]
    batch = _batch(processor, picks, ["q"] * len(picks))
    with torch.no_grad():
        ref = model(**batch).logits
        hook = install_vision_dedup(model)
        try:
            with count_vision(model) as seen:
                got = model(**batch).logits
        finally:
            hook.remove()
    assert seen.per_call == [len(set(picks))]
    assert torch.equal(ref, got)


def test_disabled_hook_and_unsupported_model(models):
    model, processor = models["qwen2_vl"]
    batch = _batch(processor, [0, 0], ["a", "a"])
    tower, layout = find_vision_tower(model)
    hook = VisionDedup(tower, layout)
    hook.enabled = False
    try:
        with torch.no_grad(), count_vision(model) as seen:
            model(**batch)
    finally:
        hook.remove()
    assert seen.per_call == [2]
    assert install_vision_dedup(torch.nn.Linear(2, 2)) is None
