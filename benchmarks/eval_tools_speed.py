"""Evaluation with tools: `ToolGenerator` (``vrft eval --tools``) at batch 1 vs 8 vs 16 on the same requests.

The model is the shipped demo tools base (``src/vrft/demo/tools_base_model``, a tiny Qwen3-VL, fp32, the
demo's view-size pixel budget) made ready for tools by `vrft.tools.generate.tool_generator` (which runs
`prepare_processor`); the requests are the demo's test scenes (`vrft.demo.tools_demo.tools_part`) with the
classification prompt, greedy, the demo's eval token budget, the demo's tools and budgets. The table says
how many requests got the same final answer, transcript and zoom regions as batch 1, and the tool calls
written (a turn-count check: batching must not change them).

    python benchmarks/eval_tools_speed.py [--images 48] [--batch-sizes 1,8,16] [--threads 1] [--repeats 1]

Prints one Markdown table: batch, requests, seconds, samples/s, speedup vs batch 1, same as batch 1.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path

BASE = Path(__file__).resolve().parents[1] / "src" / "vrft" / "demo" / "tools_base_model"
CALL = (
    "<think> The shape is too small to see here: zoom in on it. </think>\n<tool_call>\n"
    '{"name": "zoom_in", "arguments": {"bbox_2d": [250, 250, 750, 750]}}\n</tool_call>'
)
"""The first turn `--force-call` writes: a zoom on the scene's centre (norm1000)."""


def force_first_call(model, tokenizer) -> None:
    """Make `model.generate` write `CALL` in every row whose prompt has no tool result yet (a LogitsProcessor
    on the real generate: the model still runs on every token, image and tool image); rows answering after
    a tool result generate freely."""
    import functools

    from transformers import LogitsProcessor, LogitsProcessorList

    call = tokenizer(CALL, add_special_tokens=False)["input_ids"] + [
        tokenizer.convert_tokens_to_ids("<|im_end|>")
    ]
    original = model.generate

    class Force(LogitsProcessor):
        def __init__(self, rows: list[int], start: int):
            self.rows, self.start = rows, start

        def __call__(self, input_ids, scores):
            t = min(input_ids.shape[1] - self.start, len(call) - 1)
            for i in self.rows:
                scores[i] = float("-inf")
                scores[i, call[t]] = 0.0
            return scores

    @functools.wraps(original)
    def generate(*args, **kwargs):
        ids = kwargs["input_ids"]
        rows = [i for i, row in enumerate(ids) if "<tool_response>" not in tokenizer.decode(row)]
        kwargs["logits_processor"] = LogitsProcessorList([Force(rows, ids.shape[1])])
        return original(*args, **kwargs)

    model.generate = generate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=48, help="test scenes (requests)")
    ap.add_argument("--batch-sizes", default="1,8,16", help="comma-separated; the first is the reference")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    ap.add_argument(
        "--repeats", type=int, default=1, help="runs per batch size, interleaved; the fastest counts"
    )
    ap.add_argument("--force-call", action="store_true",
                    help="force each request's first turn to a zoom_in call (the base never calls a tool itself)")  # fmt: skip
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import torch

    from vrft.data.records import load_records
    from vrft.demo.settings import DemoSettings
    from vrft.demo.tools_demo import TOOL_NAMES, tools_part
    from vrft.evaluate.runner import Request
    from vrft.models.load import convention_for, frame_for, load_model_and_processor
    from vrft.tasks import TASKS
    from vrft.tools.generate import tool_generator

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = DemoSettings()
    settings = settings.model_copy(update={"tools": replace_tools(settings.tools, args.images)})
    pixels = settings.tools.view_size**2
    model, processor = load_model_and_processor(BASE, dtype="float32", min_pixels=pixels, max_pixels=pixels)
    convention = convention_for(model.config)
    if args.force_call:
        force_first_call(model, processor.tokenizer)
    budgets = {
        "max_calls": settings.tools.max_calls,
        "max_images": settings.tools.max_images,
        "max_pixels": pixels,
    }
    task = TASKS["classification"]
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        records = load_records(tools_part(settings, "tools_test", Path(tmp)))
        requests = [
            Request(r.resolved_image(), task.prompt(r, frame_for(r.width, r.height, convention, processor)),
                    settings.eval.max_new_tokens)
            for r in records
        ]  # fmt: skip

        def run(batch_size: int, reqs):
            generator = tool_generator(",".join(TOOL_NAMES), {"names": list(TOOL_NAMES), **budgets}, model,
                                       processor, convention, batch_size=batch_size, progress=False)  # fmt: skip
            t0 = time.perf_counter()
            answers = generator.generate(reqs)
            return time.perf_counter() - t0, (answers, generator.transcripts, generator.zooms)

        run(2, requests[:2])  # warm-up outside the timings
        best: dict[int, float] = {}
        outputs: dict[int, tuple] = {}
        for _ in range(args.repeats):  # interleaved, so that load changes hit every batch size alike
            for bs in batch_sizes:
                seconds, outputs[bs] = run(bs, requests)
                best[bs] = min(best.get(bs, math.inf), seconds)
    n = len(requests)
    ref = outputs[batch_sizes[0]]
    calls = sum(t.count("<tool_response>") for t in ref[1])
    print(f"# Evaluation with tools: batched ToolGenerator ({time.strftime('%Y-%m-%d')})\n")
    print(f"- machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}, "
          f"torch {torch.__version__}, {platform.python_implementation()} {platform.python_version()}")  # fmt: skip
    print(f"- model: shipped demo tools base (tiny qwen3_vl, {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M "
          f"parameters, fp32), convention {convention}, {settings.tools.view_size}x{settings.tools.view_size} "
          f"view, tools {', '.join(TOOL_NAMES)} (max_calls {budgets['max_calls']})")  # fmt: skip
    print(f"- data: {n} demo test scenes ({settings.tools.scene_size} px), classification, greedy, max_new_tokens "
          f"{settings.eval.max_new_tokens}; {'first turn forced to a zoom_in call (--force-call); ' if args.force_call else ''}"
          f"{calls} tool calls in all at batch {batch_sizes[0]}; best of "
          f"{args.repeats} interleaved run(s)\n")  # fmt: skip
    print(
        f"| batch | requests | seconds | samples/s | speedup | same answer, turns and zooms as batch {batch_sizes[0]} |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for bs in batch_sizes:
        out = outputs[bs]
        same = sum(all(out[j][i] == ref[j][i] for j in range(3)) for i in range(n))
        print(f"| {bs} | {n} | {best[bs]:.1f} | {n / best[bs]:.2f} | {best[batch_sizes[0]] / best[bs]:.1f}x | "
              f"{same}/{n} |")  # fmt: skip


def replace_tools(tools, images: int):
    """The demo's tools settings with `images` test scenes."""
    return (
        replace(tools, test_images=images)
        if hasattr(tools, "__dataclass_fields__")
        else tools.model_copy(update={"test_images": images})
    )


if __name__ == "__main__":
    main()
