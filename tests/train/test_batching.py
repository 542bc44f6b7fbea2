"""Several prompts per device with images of different sizes: each completion is scored against ITS image.

The reference implementation misaligned images and prompts beyond one prompt per device. Here the
trainer's own log-prob function (the one GRPO uses for old / reference / policy log-probs) is run on a
left-padded batch of two prompts whose images differ in size (so in number of visual tokens), and on
each prompt alone: the completion log-probs must agree to ~1e-5. A control shows they do depend on
the image, so agreement is not vacuous.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

ARCHS = ["qwen2_vl", "qwen2_5_vl", "qwen3_vl"]


def _image(w: int, h: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def _prompt(text: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]


@pytest.fixture(scope="module", params=ARCHS)
def trainer(request, tmp_path_factory):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from vrft.models.load import load_model_and_processor
    from vrft.models.tiny import cached_tiny

    # a pixel budget wide enough that the two images below get different visual-token counts
    model, processor = load_model_and_processor(
        cached_tiny(request.param), dtype="float32", min_pixels=32 * 32, max_pixels=128 * 128
    )
    ds = Dataset.from_list([{"prompt": _prompt("hi"), "image": _image(32, 32, 0)}] * 2)
    args = GRPOConfig(
        output_dir=str(tmp_path_factory.mktemp("out")), use_cpu=True, bf16=False, beta=0.0,
        num_generations=2, per_device_train_batch_size=2, max_completion_length=4, max_steps=1,
        report_to="none", activation_checkpointing=False, save_strategy="no",
    )  # fmt: skip
    return GRPOTrainer(
        model=model, reward_funcs=[lambda completions, **kw: [0.0] * len(completions)], args=args,
        train_dataset=ds, processing_class=processor,
    )  # fmt: skip


def _inputs(trainer, prompts, images, completion_ids):
    """Tensors as the trainer builds them: left-padded prompts + completions, processor image tensors."""
    from trl.data_utils import apply_chat_template, prepare_multimodal_messages

    processor = trainer.processing_class
    msgs = [prepare_multimodal_messages(p, images=[im]) for p, im in zip(prompts, images)]
    texts = [apply_chat_template({"prompt": m}, processor)["prompt"] for m in msgs]
    enc = processor(images=[[im] for im in images], text=texts, padding=True, return_tensors="pt")
    assert processor.tokenizer.padding_side == "left"
    ids = torch.cat([enc["input_ids"], completion_ids], dim=1)
    mask = torch.cat([enc["attention_mask"], torch.ones_like(completion_ids)], dim=1)
    extra = {k: v for k, v in enc.items() if k not in ("input_ids", "attention_mask")}
    if "mm_token_type_ids" in extra:  # extended over the completion, as the trainer does
        extra["mm_token_type_ids"] = torch.cat(
            [extra["mm_token_type_ids"], torch.zeros_like(completion_ids)], dim=1
        )
    return ids, mask, extra


def _logps(trainer, prompts, images, completion_ids, batch_size):
    ids, mask, extra = _inputs(trainer, prompts, images, completion_ids)
    with torch.no_grad():
        logps, _, _ = trainer._get_per_token_logps_and_entropies(
            trainer.model, ids, mask, completion_ids.size(1), batch_size=batch_size,
            num_images=[1] * len(prompts), **extra,
        )  # fmt: skip
    return logps


def test_batched_logps_match_per_sample(trainer):
    trainer.model.eval()
    big, small = _image(96, 64, 1), _image(40, 36, 2)  # different sizes -> different token counts
    prompts = [_prompt("Detect all squares in the image."), _prompt("What shape is this?")]
    vocab = trainer.processing_class.tokenizer
    gen = torch.Generator().manual_seed(0)
    completion_ids = torch.randint(0, len(vocab) - 64, (2, 6), generator=gen)

    ids, _, extra = _inputs(trainer, prompts, [big, small], completion_ids)
    grid = extra["image_grid_thw"]
    assert grid[0].prod() != grid[1].prod(), "the two images must differ in visual tokens"

    batched = _logps(trainer, prompts, [big, small], completion_ids, batch_size=2)
    chunked = _logps(trainer, prompts, [big, small], completion_ids, batch_size=1)  # trainer's chunking path
    alone = [
        _logps(trainer, [prompts[i]], [im], completion_ids[i : i + 1], 1)[0]
        for i, im in enumerate([big, small])
    ]
    for i in range(2):
        torch.testing.assert_close(batched[i], alone[i], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(chunked[i], alone[i], atol=1e-5, rtol=1e-5)

    # control: the log-probs depend on the image content (another image of the same size)
    other = _logps(trainer, [prompts[0]], [_image(96, 64, 7)], completion_ids[:1], 1)[0]
    assert (other - alone[0]).abs().max() > 1e-4
