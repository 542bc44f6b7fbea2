"""Evaluation throughput: batched `vrft eval` vs a one-sample-at-a-time generate loop.

The loop is what the reference implementation's evaluation scripts do: for each (image, category)
prompt, build the chat text, run the processor on one image and call `model.generate` alone. vrft
batches prompts (left padding) and stops each sequence at ``</answer>``. Both use the same tiny
Qwen2.5-VL (random weights, built offline), the same synthetic shapes-world records, greedy
decoding and the same token budget; the table also says whether both produced identical text.

    python benchmarks/eval_throughput.py [--images 32] [--categories 2] [--max-new-tokens 32]
                                         [--batch-sizes 16] [--threads N] [--repeats 3]

Prints one Markdown table: method, batch size, prompts, seconds, images/s, prompts/s, speedup.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import platform
import tempfile
import time
from pathlib import Path


def _records(root: Path, n_images: int, n_categories: int):
    from vrft.data.coco import convert_coco
    from vrft.data.synthetic import ALL_CLASSES, synthesize

    instances = synthesize(root / "world", n_images, seed=7, size=112)
    cats = list(ALL_CLASSES[:n_categories])
    return convert_coco(instances, categories=cats, negative_ratio=math.inf)


def _loop(model, processor, requests) -> list[str]:
    """One prompt at a time, as the reference's evaluation scripts do."""
    import torch

    from vrft.evaluate.runner import load_image, messages_for

    outs = []
    for r in requests:
        text = processor.apply_chat_template(messages_for(r.text), tokenize=False, add_generation_prompt=True)
        inputs = processor(text=[text], images=[load_image(r.image)], return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=r.max_new_tokens, do_sample=False)
        outs.append(
            processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)[0]
        )
    return outs


def _recording_generator():
    from vrft.evaluate.runner import HFGenerator

    class Recording(HFGenerator):
        """HFGenerator that keeps the texts it generated (to compare with the loop)."""

        texts: list[str]

        def generate(self, reqs, desc="generate"):
            out = super().generate(reqs, desc)
            self.texts = getattr(self, "texts", []) + list(out)
            return out

    return Recording


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--categories", type=int, default=2, help="categories asked per image")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--batch-sizes", default="16", help="comma-separated vrft batch sizes")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    ap.add_argument("--arch", default="qwen2_5_vl")
    ap.add_argument("--repeats", type=int, default=3, help="runs per method, interleaved; the fastest counts")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import torch

    from vrft.evaluate.pipeline import evaluate_model
    from vrft.evaluate.protocols import detection_setup
    from vrft.evaluate.runner import HFGenerator, Request
    from vrft.models.load import convention_for, frame_for, load_model_and_processor
    from vrft.models.tiny import cached_tiny
    from vrft.tasks import TASKS

    _Recording = _recording_generator()
    if args.threads:
        torch.set_num_threads(args.threads)
    model_dir = cached_tiny(args.arch)
    model, processor = load_model_and_processor(model_dir)
    convention = convention_for(model.config)
    task = TASKS["detection"]
    with tempfile.TemporaryDirectory() as tmp:
        records = _records(Path(tmp), args.images, args.categories)
        queries = detection_setup(records).queries
        requests = [
            Request(
                q.resolved_image(),
                task.prompt(q, frame_for(q.width, q.height, convention, processor)),
                args.max_new_tokens,
            )
            for q in queries
        ]
        # warm-up (allocations, stop-string tables) outside the timings
        HFGenerator(model, processor, batch_size=2, progress=False).generate(requests[:2])
        _loop(model, processor, requests[:1])

        batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
        best: dict[int, float] = {}
        same: dict[int, int] = {}
        reference: list[str] = []
        for _ in range(args.repeats):  # interleaved, so that load changes hit every method alike
            t0 = time.perf_counter()
            reference = _loop(model, processor, requests)
            best[0] = min(best.get(0, math.inf), time.perf_counter() - t0)
            for bs in batch_sizes:
                gen = _Recording(model, processor, batch_size=bs, progress=False)
                t0 = time.perf_counter()
                evaluate_model(
                    model, processor, records, "detection", None, batch_size=bs, max_new_tokens=args.max_new_tokens,
                    generator=gen, report=False,
                )  # fmt: skip
                best[bs] = min(best.get(bs, math.inf), time.perf_counter() - t0)
                same[bs] = sum(a == b[: len(a)] or b == a[: len(b)] for a, b in zip(gen.texts, reference))
        base_s = best[0]
        rows = [("one-at-a-time generate loop (reference style)", 1, base_s, None)]
        rows += [
            ("vrft eval (batched, stop at </answer>, metrics)", bs, best[bs], same[bs]) for bs in batch_sizes
        ]
    n = len(requests)
    print(f"# Evaluation throughput ({time.strftime('%Y-%m-%d')})\n")
    print(f"- machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}, "
          f"torch {torch.__version__}, {platform.python_implementation()} {platform.python_version()}")  # fmt: skip
    print(f"- model: tiny {args.arch} (random weights, {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M "
          f"parameters), convention {convention}")  # fmt: skip
    print(f"- data: {args.images} synthetic 112x112 images x {args.categories} categories = {n} detection prompts, "
          f"greedy, max_new_tokens {args.max_new_tokens}; best of {args.repeats} interleaved runs\n")  # fmt: skip
    print("| method | batch | prompts | seconds | images/s | prompts/s | speedup | same text as loop |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, bs, seconds, same in rows:
        print(
            f"| {name} | {bs} | {n} | {seconds:.1f} | {args.images / seconds:.2f} | {n / seconds:.2f} | "
            f"{base_s / seconds:.1f}x | {'-' if same is None else f'{same}/{n}'} |"
        )


if __name__ == "__main__":
    main()
