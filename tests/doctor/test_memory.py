"""The memory estimate: its arithmetic, and against the peak memory of real training steps on the demo
base (CPU, float32). The measurement runs in a fresh process: peak resident memory (VmHWM) of two
AdamW steps minus the resident memory after loading the model and one warm-up pass (so the
weights, counted exactly by the formula, are left out of both sides). No GPU was available here: the estimate is
not checked against GPU memory (docs/training.md says so)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from vrft.doctor.memory import GIB, ModelShape, estimate

SHAPE = ModelShape(params=1000, trainable=1000, layers=2, hidden=8, intermediate=16, vocab=10,
                   vision_layers=1, vision_hidden=4, vision_intermediate=8)  # fmt: skip


def test_parts_follow_the_formula():
    e = estimate(SHAPE, rows=2, tokens_per_row=5, patches_per_row=3, beta=0.04)
    assert (e.weights, e.gradients, e.optimizer, e.reference) == (4000, 4000, 8000, 4000)
    per_token = 2 * (12 * 8 + 5 * 16) * 4 + 3 * 10 * 4
    per_patch = 1 * (12 * 4 + 5 * 8) * 4
    assert e.activations == 2 * (5 * per_token + 3 * per_patch)
    assert e.per_device["ddp"] == 20000 + e.activations


def test_distribution_divides_the_right_parts():
    e = estimate(SHAPE, rows=1, tokens_per_row=1, beta=0.04, processes=4)
    assert e.per_device["zero2"] == 4000 + 4000 + (4000 + 8000) // 4 + e.activations
    assert e.per_device["zero3"] == e.per_device["fsdp2"] == 20000 // 4 + e.activations


def test_lora_and_beta_zero_have_no_reference_copy():
    assert estimate(SHAPE, rows=1, tokens_per_row=1, beta=0.04, lora=True).reference == 0
    assert estimate(SHAPE, rows=1, tokens_per_row=1, beta=0.0).reference == 0


def test_checkpointing_keeps_less():
    full = estimate(SHAPE, rows=1, tokens_per_row=100)
    ckpt = estimate(SHAPE, rows=1, tokens_per_row=100, gradient_checkpointing=True)
    assert ckpt.activations < full.activations


MEASURE = textwrap.dedent("""
    import gc, json, sys
    import torch

    def rss(field):
        for line in open("/proc/self/status"):
            if line.startswith(field):
                return int(line.split()[1]) * 1024

    from transformers import AutoModelForImageTextToText
    from vrft.demo.base import SHIPPED_BASE
    from vrft.doctor.memory import estimate, model_shape

    torch.set_num_threads(1)
    rows, prompt, completion = int(sys.argv[1]), 30, 64
    model = AutoModelForImageTextToText.from_pretrained(SHIPPED_BASE, dtype=torch.float32)
    model.train()
    image = model.config.image_token_id
    ids = torch.randint(0, 700, (rows, prompt + completion))
    ids[:, 4:20] = image  # 16 image tokens: one 112 x 112 image per row
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
             "pixel_values": torch.randn(rows * 64, 1176), "image_grid_thw": torch.tensor([[1, 8, 8]] * rows),
             "mm_token_type_ids": (ids == image).long()}
    warm = {k: v[:1] for k, v in batch.items() if k not in ("pixel_values", "image_grid_thw")}
    model(**warm, pixel_values=batch["pixel_values"][:64], image_grid_thw=batch["image_grid_thw"][:1]).logits.sum().backward()
    model.zero_grad(set_to_none=True)  # one-time costs (autograd engine, thread pools) before the baseline
    gc.collect()
    open("/proc/self/clear_refs", "w").write("5")  # reset VmHWM to the current resident memory
    before = rss("VmRSS")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    for _ in range(2):
        logits = model(**batch).logits.float()
        loss = torch.log_softmax(logits, -1).gather(-1, ids[..., None]).mean()
        loss.backward()
        del logits, loss
        opt.step()
        opt.zero_grad(set_to_none=False)
        gc.collect()
    peak = rss("VmHWM") - before
    est = estimate(model_shape(model), rows=rows, tokens_per_row=prompt + completion, patches_per_row=64,
                   attention_scores=True)  # SDPA on a CPU keeps the probabilities
    print(json.dumps({"measured": peak, "estimate": est.per_device["ddp"] - est.weights}))
""")

MEASURE_GPU = textwrap.dedent("""
    import json, sys
    import torch
    from transformers import AutoModelForImageTextToText
    from vrft.demo.base import SHIPPED_BASE
    from vrft.doctor.memory import estimate, model_shape

    rows, prompt, completion = int(sys.argv[1]), 30, 64
    model = AutoModelForImageTextToText.from_pretrained(SHIPPED_BASE, dtype=torch.float32).to("cuda")
    model.train()
    image = model.config.image_token_id
    ids = torch.randint(0, 700, (rows, prompt + completion), device="cuda")
    ids[:, 4:20] = image
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
             "pixel_values": torch.randn(rows * 64, 1176, device="cuda"),
             "image_grid_thw": torch.tensor([[1, 8, 8]] * rows, device="cuda"), "mm_token_type_ids": (ids == image).long()}
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    for _ in range(2):
        logits = model(**batch).logits.float()
        loss = torch.log_softmax(logits, -1).gather(-1, ids[..., None]).mean()
        loss.backward()
        del logits, loss
        opt.step()
        opt.zero_grad(set_to_none=False)
    peak = torch.cuda.max_memory_allocated() - before - batch["pixel_values"].numel() * 4
    est = estimate(model_shape(model), rows=rows, tokens_per_row=prompt + completion, patches_per_row=64)
    print(json.dumps({"measured": peak, "estimate": est.per_device["ddp"] - est.weights}))
""")


@pytest.mark.slow
def test_estimate_is_within_its_stated_error_of_measured_peak():
    out = subprocess.run([sys.executable, "-c", MEASURE, "32"], capture_output=True, text=True, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    ratio = got["estimate"] / got["measured"]
    print(
        f"estimate {got['estimate'] / GIB:.3f} GiB, measured {got['measured'] / GIB:.3f} GiB, ratio {ratio:.2f}"
    )
    assert 0.75 <= ratio <= 1.25  # docs/training.md states the measured error (0.92-1.05 on 2 CPUs)


@pytest.mark.slow
def test_estimate_against_peak_gpu_memory():
    """Never run yet (no GPU where it was written): the tolerance is a first guess, to be stated in
    docs/training.md once a GPU has measured it."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    out = subprocess.run(
        [sys.executable, "-c", MEASURE_GPU, "32"], capture_output=True, text=True, check=True
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    ratio = got["estimate"] / got["measured"]
    print(
        f"GPU: estimate {got['estimate'] / GIB:.3f} GiB, measured {got['measured'] / GIB:.3f} GiB, ratio {ratio:.2f}"
    )
    assert 0.6 <= ratio <= 1.4
