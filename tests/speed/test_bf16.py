"""The speed-ups in bf16 on CPU: the log-prob pass (log-probs, loss, gradients) with image de-duplication
and prompt-prefix sharing on equals the pass without them, within what bf16 itself costs.

Tolerance, and why: bf16 keeps 8 significant bits. The speed-ups run the same arithmetic on fewer rows
(one encode per image, one prefix per group) and split the prompt attention into prefix + suffix, so
matmuls see other shapes and sums run in another order: on and off differ by rounding, not by math. The
test measures that rounding's scale on the same batch as |off(bf16) - off(fp32)| (fp32 standing for the
exact value) and requires |on - off| <= 2 x that scale: each of on and off is within about one scale of
the exact value, so by the triangle inequality they are within two of each other. A wrong speed-up (a
row shifted, a feature of the wrong image) moves log-probs by whole units, far beyond. The measured ratio
on / noise is printed (pytest -s); on this CPU it ran 0 to 0.7 (log-probs) and 0.45 to 1.1 (gradients).

Two bf16 set-ups, as on a GPU: "bf16 weights" (a LoRA base, or model.dtype=bfloat16) and "autocast"
(full fine-tuning: fp32 master weights, model.precision=bf16 runs the matmuls in bf16).
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import pytest
import torch
from PIL import Image
from tests.speed.conftest import with_completion

from vrft.train.prefix_share import install_prefix_share
from vrft.train.vision_dedup import install_vision_dedup

pytestmark = pytest.mark.slow  # bf16 train steps and rollouts on 4 tiny architectures

G = 4
COMPLETION = 6


def _batch(processor):
    """TRL's log-prob layout for 2 prompts x G: left-padded prompts, right-padded completions."""
    rng = np.random.default_rng(3)
    pics = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in ((64, 56), (40, 48))]
    texts = ["Detect the red circle in the image.", "Where is the square?"]
    rows = [p for p in (0, 1) for _ in range(G)]
    msgs = [
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": texts[p]}]}] for p in rows
    ]
    chat = [processor.apply_chat_template(m, add_generation_prompt=True) for m in msgs]
    inp = processor(images=[[pics[p]] for p in rows], text=chat, padding=True, return_tensors="pt")
    return with_completion(inp, COMPLETION)


def _pass(model, batch, comp, cmask, dtype):
    """Per-token log-probs of the completions, the GRPO-style loss, and the gradients."""
    model.zero_grad(set_to_none=True)
    auto = isinstance(dtype, str)
    cast = torch.float32 if auto else dtype
    fields = {
        k: (v.to(cast) if torch.is_tensor(v) and v.is_floating_point() else v) for k, v in batch.items()
    }
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if auto else nullcontext()
    with autocast:
        logits = model(**fields).logits[:, -COMPLETION - 1 : -1].float()
    logps = torch.log_softmax(logits, -1).gather(-1, comp[..., None])[..., 0]
    adv = torch.linspace(-1, 1, logps.shape[0])[:, None]
    loss = -((adv * logps) * cmask).sum() / cmask.sum()
    loss.backward()
    grads = {n: p.grad.float().clone() for n, p in model.named_parameters() if p.grad is not None}
    return logps.detach(), loss.item(), grads


def _rel(a: dict, b: dict) -> float:
    scale = max(v.abs().max().item() for v in b.values())
    return max((a[k] - b[k]).abs().max().item() for k in b) / scale


@pytest.mark.parametrize("mode", ["bf16 weights", "autocast"])
@pytest.mark.parametrize("arch", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl", "smolvlm"])
def test_speedups_give_the_same_step_in_bf16(arch, mode):
    from vrft.models.load import load_model_and_processor
    from vrft.models.tiny import cached_tiny

    model, processor = load_model_and_processor(cached_tiny(arch), dtype="float32")
    model.train()
    for m in model.modules():  # TRL's disable_dropout
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    batch, comp, cmask = _batch(processor)
    ref_lp, ref_loss, ref_g = _pass(model, batch, comp, cmask, torch.float32)  # fp32, no speed-ups
    if mode == "bf16 weights":
        model.to(torch.bfloat16)
        dtype = torch.bfloat16
    else:
        dtype = "autocast"
    off_lp, off_loss, off_g = _pass(model, batch, comp, cmask, dtype)
    hooks = [install_vision_dedup(model), install_prefix_share(model)]
    try:
        on_lp, on_loss, on_g = _pass(model, batch, comp, cmask, dtype)
        assert hooks[0].stats.images_encoded == 2 and hooks[0].stats.images_in == 2 * G
        assert hooks[1].stats.shared_calls == 1  # the prompt prefix ran once per prompt
    finally:
        for h in hooks:
            h.remove()

    m = cmask.bool()
    bf16_noise = (off_lp - ref_lp)[m].abs().max().item()
    diff = (on_lp - off_lp)[m].abs().max().item()
    assert bf16_noise > 0  # the run really was in bf16
    print(
        f"{arch} {mode}: log-probs {diff:.3g} / {bf16_noise:.3g}, gradients {_rel(on_g, off_g):.3g} / {_rel(off_g, ref_g):.3g}"
    )
    assert diff <= 2 * bf16_noise, f"log-probs: on vs off {diff:.4g}, bf16 vs fp32 {bf16_noise:.4g}"
    # the loss is a mean of log-probs weighted by advantages in [-1, 1]: it moves at most as they do
    assert abs(on_loss - off_loss) <= 2 * bf16_noise, (on_loss, off_loss, ref_loss)
    g_noise, g_diff = _rel(off_g, ref_g), _rel(on_g, off_g)
    assert any(("visual" in k or "vision" in k) and v.abs().max() > 0 for k, v in on_g.items())
    assert g_diff <= 2 * g_noise, f"gradients: on vs off {g_diff:.4g}, bf16 vs fp32 {g_noise:.4g} (relative)"


@pytest.mark.parametrize("arch", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl", "smolvlm"])
def test_shared_prefill_rollout_in_bf16(tmp_path, arch):
    """bf16 weights: the shared-prefill rollout samples what TRL's generation samples for the same seed
    (3 + 1 copies of two prompts), and its sampled tokens' log-probs are those of TRL's log-prob forward
    within bf16 rounding (0.05 absolute on log-probs of magnitude ~5: a few bf16 ulps)."""
    import copy

    from tests.speed.conftest import TEXTS, images, make_trainer
    from tests.speed.test_rollout import _forward_logprobs, _messages, _trl_generate

    from vrft.train.rollout import SharedPrefillRollout

    trainer = make_trainer(tmp_path, arch, speed=True, max_completion_length=8, dtype="bfloat16")
    imgs = images()
    rows = [0, 0, 0, 1]
    prompts = [_messages(TEXTS[r], imgs[r].copy()) for r in rows]
    rollout = SharedPrefillRollout(return_logprobs=True)
    torch.manual_seed(11)
    out = rollout(copy.deepcopy(prompts), trainer)
    assert rollout.stats.prefilled == 2
    torch.manual_seed(11)
    _, trl = _trl_generate(trainer, prompts)
    eos = set(trainer.eos_token_ids)
    expected = []
    for row in trl.tolist():
        end = next((t + 1 for t, tok in enumerate(row) if tok in eos), len(row))
        expected.append(row[:end])
    assert out["completion_ids"] == expected
    texts = [trainer.processing_class.apply_chat_template(_messages(TEXTS[r], imgs[r])[:1], add_generation_prompt=True)
             for r in rows]  # fmt: skip
    logps, _ = _forward_logprobs(
        trainer, out["prompt_ids"], out["completion_ids"], [imgs[r] for r in rows], texts
    )
    width = max(map(len, out["prompt_ids"]))
    for i, lp in enumerate(out["logprobs"]):
        if arch == "smolvlm" and len(out["prompt_ids"][i]) < width:
            continue  # SmolVLM numbers left-padded rows differently in forward and generate (docs/speed.md)
        diff = (logps[i, : len(lp)].float() - torch.tensor(lp)).abs().max().item()
        assert diff < 0.05, (i, diff)
