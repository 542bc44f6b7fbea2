"""Vision encodes per step with several images and with video, speed-ups on vs off (issue 20).

Run through `python benchmarks/train_speed.py --media` (same model as the main table: a tiny random
Qwen2-VL with Qwen2-VL-2B's proportions). Each case runs 2 distinct prompts x G completions per step, beta
0.04 (a reference pass), one update per rollout:

- "one image", "3 images", "video as 8 frames": TRL's GRPOTrainer steps (its ``images`` column, one
  placeholder per image; a video fed as its frames is an image list, the way TRL 1.16 can carry it), with
  vrft's three speed-ups forced on, or off (TRL as-is);
- "video input (pixel_values_videos)": TRL 1.16's log-prob passes do not carry a video input, so this row
  times what such a step runs, by hand: the rollout (vrft's shared prefill, or `generate` on every row),
  a reference pass and a policy forward + backward over prompt + completion, with the processor's video
  path (one 8-frame clip per prompt).

The vision encode counts are exact (`VisionCounter`: what the tower receives per step, policy and
reference model); timings are medians on a shared CPU.
"""

from __future__ import annotations

import copy
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

# case -> (images per prompt, image side px, label); "video" is the processor's video path
CASES = {
    "image": (1, 448, "one image (448 px)"),
    "images": (3, 224, "3 images (224 px)"),
    "frames": (8, 224, "video as 8 frames (224 px, image list)"),
    "video": (8, 224, "video input, 8 frames (224 px, pixel_values_videos)"),
}
TEXTS = ["Which image shows the red square?", "When does the circle appear?"]


def _pictures(n: int, side: int, seed: int) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)) for _ in range(n)]


def _content(n: int, text: str, video: bool = False) -> list[dict]:
    visual = [{"type": "video"}] if video else [{"type": "image"}] * n
    return [*visual, {"type": "text", "text": text}]


def _reward(completions, **kwargs) -> list[float]:
    from vrft.parsing import completion_text

    return [len(completion_text(c)) % 7 / 7 for c in completions]


def _trainer(model_dir: Path, out: Path, case: str, *, speed: bool, g: int, steps: int, completion: int):
    """A GRPOTrainer over 2 prompts x g per step of `case`, vrft's speed-ups forced on or off."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from vrft.models.load import load_model_and_processor
    from vrft.train import speed as sp

    n, side, _ = CASES[case]
    model, processor = load_model_and_processor(
        str(model_dir), dtype="float32", min_pixels=side * side, max_pixels=side * side
    )
    video = processor.video_processor
    video.do_sample_frames = False
    video.size = {"shortest_edge": side * side, "longest_edge": side * side}
    prompts = [[{"role": "user", "content": _content(n, t)}] for t in TEXTS]
    rows = [_pictures(n, side, seed) for seed in range(steps * 2)]  # distinct prompts every step
    dataset = Dataset.from_dict({"prompt": prompts * steps, "images": rows})
    args = GRPOConfig(
        output_dir=str(out), use_cpu=True, report_to="none", seed=0, num_generations=g,
        per_device_train_batch_size=2 * g, max_completion_length=completion, beta=0.04, learning_rate=1e-6,
        max_steps=steps, logging_steps=1, save_strategy="no", log_completions=False,
        activation_checkpointing=False, disable_dropout=True,
    )  # fmt: skip
    rollout = sp.shared_prefill_rollout(model, speed)
    with sp.quiet_rollout_warning():
        trainer = GRPOTrainer(model=model, reward_funcs=_reward, args=args, train_dataset=dataset,
                              processing_class=processor, rollout_func=rollout)  # fmt: skip
    sp.dedup_vision(trainer, speed)
    sp.share_prompt_prefix(trainer, speed)
    return trainer


def trl_case(model_dir: Path, out: Path, case: str, *, speed: bool, g: int, steps: int, warmup: int,
             completion: int):  # fmt: skip
    """One row: TRL GRPO steps of `case` (not "video")."""
    from train_speed import Meter, Row

    trainer = _trainer(model_dir, out, case, speed=speed, g=g, steps=steps + warmup, completion=completion)
    meter = Meter(trainer, lambda: 0.0)
    trainer.train()
    return meter.result(Row(CASES[case][2], g, 2, "on" if speed else "off"), warmup)


def video_case(model_dir: Path, out: Path, *, speed: bool, g: int, steps: int, warmup: int, completion: int):
    """One row: rollout + reference pass + policy forward/backward with a real video input, by hand."""
    import torch
    from train_speed import Row

    from vrft.train.prefix_share import install_prefix_share
    from vrft.train.rollout import SharedPrefillRollout
    from vrft.train.vision_dedup import VisionCounter, install_vision_dedup

    trainer = _trainer(model_dir, out, "images", speed=False, g=g, steps=1, completion=completion)
    model, processor = trainer.model, trainer.processing_class
    # a random model may sample <|video_pad|>, which a log-prob pass with a video input then counts as a
    # video token (TRL suppresses only the image token): suppress it in both rollouts
    suppressed = list(trainer.generation_config.suppress_tokens or [])
    trainer.generation_config.suppress_tokens = [*suppressed, int(model.config.video_token_id)]
    ref = copy.deepcopy(model).eval()
    hooks = [install(m) for m in (model, ref) for install in (install_vision_dedup, install_prefix_share)]
    for h in hooks:
        h.enabled = speed
    counters = [VisionCounter(model), VisionCounter(ref)]
    n, side, label = CASES["video"]
    row = Row(label, g, 2, "on" if speed else "off")
    for step in range(steps + warmup):
        clips = [
            np.asarray(np.stack([np.asarray(p) for p in _pictures(n, side, 100 + 2 * step + i)]))
            for i in (0, 1)
        ]
        msgs = [[{"role": "user", "content": [{"type": "video", "video": clips[r]}, {"type": "text",
                 "text": TEXTS[r]}]}] for r in (0, 1) for _ in range(g)]  # fmt: skip
        for c in counters:
            c.reset()
        t0 = time.perf_counter()
        torch.manual_seed(step)
        if speed:
            got = SharedPrefillRollout()(copy.deepcopy(msgs), trainer)
            prompt_ids, completion_ids = got["prompt_ids"], got["completion_ids"]
        else:
            batch = processor.apply_chat_template(conversation=msgs, add_generation_prompt=True, tokenize=True,
                                                  return_dict=True, padding=True, return_tensors="pt")  # fmt: skip
            with torch.no_grad():
                seq = model.generate(**batch, generation_config=trainer.generation_config)
            width = batch["input_ids"].shape[1]
            prompt_ids = [
                ids[m.bool()].tolist() for ids, m in zip(batch["input_ids"], batch["attention_mask"])
            ]
            completion_ids = [r[width:].tolist() for r in seq]
        t1 = time.perf_counter()
        chat = [processor.apply_chat_template(m, add_generation_prompt=True) for m in msgs]
        inp = processor(text=chat, videos=[m[0]["content"][0]["video"] for m in msgs], padding=True,
                        return_tensors="pt")  # fmt: skip
        comp = torch.nn.utils.rnn.pad_sequence(
            [torch.tensor(c, dtype=torch.long) for c in completion_ids], batch_first=True, padding_value=-1
        )
        cmask = (comp >= 0).long()
        comp = comp.clamp(min=0)
        ids = torch.cat([inp["input_ids"], comp], 1)
        mask = torch.cat([inp["attention_mask"], cmask], 1)
        extra = {k: v for k, v in inp.items() if k not in ("input_ids", "attention_mask")}
        extra["mm_token_type_ids"] = torch.cat([extra["mm_token_type_ids"], torch.zeros_like(comp)], 1)
        t2 = time.perf_counter()
        with torch.no_grad():
            ref(input_ids=ids, attention_mask=mask, use_cache=False, **extra)
        t3 = time.perf_counter()
        logits = model(input_ids=ids, attention_mask=mask, use_cache=False, **extra).logits
        logits[:, -comp.shape[1] :].float().logsumexp(-1).mean().backward()
        model.zero_grad(set_to_none=True)
        t4 = time.perf_counter()
        assert len(prompt_ids) == 2 * g
        if step >= warmup:
            row.steps.append({"total": t4 - t0, "generation": t1 - t0, "logprob": t3 - t2, "update": t4 - t3,
                              "reward": 0.0, "other": t2 - t1})  # fmt: skip
            row.images.append(sum(c.images for c in counters))
            row.completion_tokens.append(statistics.fmean(len(c) for c in completion_ids))
    for h in hooks + counters:
        h.remove()
    return row


def media_table(rows: list) -> str:
    head = ("| case | speed-ups | G | prompts/step | images or clips encoded/step | step s (median) | generation | "
            "log-prob | update | other |")  # fmt: skip
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lines.append(
            f"| {r.name} | {r.speed} | {r.g} | {r.prompts} | {statistics.fmean(r.images):.0f} | "
            f"{r.mean('total'):.2f} | {r.mean('generation'):.2f} | {r.mean('logprob'):.2f} | "
            f"{r.mean('update'):.2f} | {r.mean('other'):.2f} |"
        )
    return "\n".join(lines)


def run(
    model_dir: Path, work: Path, *, g: int, steps: int, warmup: int, completion: int
) -> tuple[list, list[str]]:
    """All cases, off then on; returns the rows and one summary line per case."""
    import sys

    rows, summary = [], []
    for case in CASES:
        pair = []
        for speed in (False, True):
            out = work / f"media-{case}-{speed}"
            kw: dict[str, Any] = dict(speed=speed, g=g, steps=steps, warmup=warmup, completion=completion)
            row = (
                video_case(model_dir, out, **kw) if case == "video" else trl_case(model_dir, out, case, **kw)
            )
            pair.append(row)
            print(f"  done: {row.name}, speed-ups {row.speed}", file=sys.stderr, flush=True)
        off, on = pair
        rows += pair
        summary.append(
            f"- {off.name}: encoded per step {statistics.fmean(off.images):.0f} -> {statistics.fmean(on.images):.0f}, "
            f"median step {off.mean('total'):.2f} s -> {on.mean('total'):.2f} s "
            f"({off.mean('total') / on.mean('total'):.2f}x)"
        )
    return rows, summary
