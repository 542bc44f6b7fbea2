"""Fixtures for the speed tests: a tiny TRL GRPOTrainer with vrft's speed-ups on or off."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

# Two prompts with different images of different sizes (so different numbers of patches) and texts.
IMAGE_SIZES = [(64, 56), (40, 48)]
TEXTS = ["Detect the red circle in the image.", "Where is the square?"]


def images() -> list[Image.Image]:
    rng = np.random.default_rng(7)
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in IMAGE_SIZES]


def prompt(text: str, n_images: int = 1) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [*[{"type": "image"}] * n_images, {"type": "text", "text": text}]}]


# Several images per prompt: the two prompts share picture 1 (so 3 distinct pictures over 2 prompts), and
# pictures 0 and 2 have the same size (same grid) with other pixels.
IMAGE_SETS = [(0, 1), (1, 2)]


def several_images() -> list[Image.Image]:
    rng = np.random.default_rng(11)
    return [
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        for w, h in [(64, 56), (40, 48), (64, 56)]
    ]


class RewardLog:
    """A deterministic reward of the completion text (crc32), recording what it saw."""

    __name__ = "crc_reward"

    def __init__(self) -> None:
        self.completions: list[str] = []
        self.rewards: list[float] = []

    def __call__(self, completions, **kwargs) -> list[float]:
        from vrft.parsing import completion_text

        texts = [completion_text(c) for c in completions]
        out = [(zlib.crc32(t.encode()) % 11) / 10 for t in texts]
        self.completions += texts
        self.rewards += out
        return out


class GradCapture:
    """TrainerCallback keeping a copy of every gradient just before the optimizer step."""

    def __init__(self) -> None:
        from transformers import TrainerCallback

        capture = self

        class _CB(TrainerCallback):
            def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
                capture.grads.append(
                    {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
                )

        self.grads: list[dict[str, torch.Tensor]] = []
        self.callback = _CB()


def make_trainer(tmp_path, arch: str, *, speed: bool, g: int = 4, beta: float = 0.0, num_iterations: int = 1,
                 max_completion_length: int = 8, seed: int = 0, steps: int = 1, model_dir=None,
                 dtype: str = "float32", bf16: bool = False, several: bool = False):  # fmt: skip
    """A GRPOTrainer over 2 prompts x G completions per step; with `speed`, vrft's rollout and image dedup.

    `several`: each prompt shows two images (TRL's ``images`` column, IMAGE_SETS) instead of one."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from vrft.models.load import load_model_and_processor
    from vrft.models.tiny import cached_tiny
    from vrft.train import speed as sp

    model, processor = load_model_and_processor(model_dir or cached_tiny(arch), dtype=dtype)
    if several:
        pics = several_images()
        dataset = Dataset.from_dict({"prompt": [prompt(t, 2) for t in TEXTS],
                                     "images": [[pics[i] for i in s] for s in IMAGE_SETS]})  # fmt: skip
    else:
        dataset = Dataset.from_dict({"prompt": [prompt(t) for t in TEXTS], "image": images()})
    args = GRPOConfig(
        output_dir=str(tmp_path / f"out-{arch}-{speed}-{several}"), use_cpu=True, bf16=bf16, report_to="none",
        max_completion_length=max_completion_length, num_generations=g, per_device_train_batch_size=2 * g,
        max_steps=steps, logging_steps=1, save_strategy="no", learning_rate=1e-3, seed=seed, beta=beta,
        num_iterations=num_iterations, disable_dropout=True, activation_checkpointing=False,
    )  # fmt: skip
    reward = RewardLog()
    rollout = sp.shared_prefill_rollout(model, speed)
    with sp.quiet_rollout_warning():
        trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=dataset,
                              processing_class=processor, rollout_func=rollout)  # fmt: skip
    hooks = sp.dedup_vision(trainer, speed)
    prefix = sp.share_prompt_prefix(trainer, speed)
    grads = GradCapture()
    trainer.add_callback(grads.callback)
    trainer.vrft_test = {
        "reward": reward,
        "grads": grads,
        "rollout": rollout,
        "hooks": hooks,
        "prefix": prefix,
    }
    return trainer


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: on a shared 2-core machine, spinning OpenMP threads make steps far slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def with_completion(inp: dict[str, Any], length: int) -> tuple[dict[str, Any], Any, Any]:
    """A processor batch `inp` followed by `length` random completion tokens per row (seed 0; the first
    row's second half masked out): the forward kwargs, the completion ids and their mask. Per-token
    fields of the prompt (e.g. ``mm_token_type_ids``) are extended with zeros: completions are text."""
    comp = torch.randint(5, 200, (inp["input_ids"].shape[0], length), generator=torch.Generator().manual_seed(0))
    cmask = torch.ones_like(comp)
    cmask[0, length // 2 :] = 0
    n, width = inp["input_ids"].shape
    extra = {}
    for k, v in inp.items():
        if k in ("input_ids", "attention_mask"):
            continue
        if isinstance(v, torch.Tensor) and v.dim() == 2 and tuple(v.shape) == (n, width):
            v = torch.cat([v, torch.zeros_like(comp, dtype=v.dtype)], 1)
        extra[k] = v
    ids = torch.cat([inp["input_ids"], comp], 1)
    mask = torch.cat([inp["attention_mask"], cmask], 1)
    return dict(input_ids=ids, attention_mask=mask, use_cache=False, **extra), comp, cmask
