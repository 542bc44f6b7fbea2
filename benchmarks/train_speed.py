"""Training speed of vrft's GRPO speed-ups (shared prefill, one vision encode per distinct image, shared
prompt prefix in the log-prob passes).

One run, one table: completions per second, the step-time split, and images encoded per step, with the
speed-ups on and off at G = 4 and G = 8, plus TRL's `GRPOTrainer` used as-is with one prompt per step
(what users of the reference run today) as the yardstick of the last column.

The model is a tiny random Qwen2-VL with the PROPORTIONS of Qwen2-VL-2B (built offline by
`vrft.models.tiny.cached_tiny`): per patch its vision tower costs about 0.6x the FLOPs the language model
spends per token (Qwen2-VL-2B: 0.59x, attention included), and it sees 1,024 patches per image (256 image
tokens after the 2x2 merge; Qwen2-VL-2B at max_pixels 401,408: ~2,000 patches, 512 tokens). The printed
header states the measured sizes and FLOPs.

    python benchmarks/train_speed.py                      # the full table (2-core CPU: ~10 minutes)
    python benchmarks/train_speed.py --quick --steps 1 --rounds 1 --no-save    # a smoke run (G = 4 only)
    python benchmarks/train_speed.py --media       # several images and video, on vs off (~5 minutes)

Writes benchmarks/results/train_speed.md (date, machine, load, command, table); with --media,
benchmarks/results/train_speed_media.md (benchmarks/train_speed_media.py: vision encodes per step with
one image, 3 images, a video as 8 frames, and a real video input).
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

# Qwen2-VL-2B proportions, tiny (see the module docstring); image side 448 -> 32 x 32 patches of 14 px.
MODEL_SIZES = dict(
    hidden_size=128, layers=4, heads=4, kv_heads=2, intermediate_size=512,
    vision_hidden=96, vision_depth=2, vision_heads=4, vision_intermediate=512, image_size=448,
)  # fmt: skip
IMAGE_SIDE = 448
COMPLETION = 32  # max completion tokens (the measurement)
RESULTS = Path(__file__).parent / "results" / "train_speed.md"
MEDIA_RESULTS = Path(__file__).parent / "results" / "train_speed_media.md"


@dataclass
class Row:
    """One measured configuration."""

    name: str
    g: int
    prompts: int  # prompts per optimizer step
    speed: str  # "on" | "off" | "TRL as-is"
    steps: list[dict[str, float]] = field(default_factory=list)  # StepTimer rows (warm-up dropped)
    images: list[int] = field(default_factory=list)  # images the vision tower encoded, per step
    completion_tokens: list[float] = field(default_factory=list)

    def mean(self, key: str) -> float:
        """Median over the measured steps (robust to the other jobs of a shared machine)."""
        return statistics.median(s[key] for s in self.steps)

    def merge(self, other: Row) -> Row:
        self.steps += other.steps
        self.images += other.images
        self.completion_tokens += other.completion_tokens
        return self

    @property
    def completions_per_s(self) -> float:
        return self.prompts * self.g / self.mean("total")


# ---------------------------------------------------------------------------------------------- data
def write_records(root: Path, n: int) -> Path:
    """n detection records, one distinct picture each (no two prompts share an image: no free dedup)."""
    rng = np.random.default_rng(0)
    (root / "img").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        w, h = int(rng.integers(320, 640)), int(rng.integers(240, 480))
        img = Image.new("RGB", (w, h), tuple(int(c) for c in rng.integers(0, 255, 3)))
        draw = ImageDraw.Draw(img)
        boxes = []
        for _ in range(3):
            x1, y1 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
            x2, y2 = x1 + int(rng.integers(20, w // 2)), y1 + int(rng.integers(20, h // 2))
            draw.rectangle([x1, y1, x2, y2], fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
            boxes.append([float(x1), float(y1), float(x2), float(y2)])
        img.save(root / "img" / f"{i}.png")
        lines.append(json.dumps({
            "id": f"bench-{i}", "task": "detection", "image": f"img/{i}.png", "width": w, "height": h,
            "image_id": i, "category": "rectangle", "boxes": boxes,
        }))  # fmt: skip
    path = root / "records.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


# ----------------------------------------------------------------------------------------- measuring
class Meter:
    """Step timer (vrft.train.timing.StepTimer) + vision-tower image counter, as one callback."""

    def __init__(self, trainer: Any, reward_seconds) -> None:
        from transformers import TrainerCallback

        from vrft.train.timing import StepTimer
        from vrft.train.vision_dedup import VisionCounter

        models = [trainer.model] + ([trainer.ref_model] if getattr(trainer, "ref_model", None) else [])
        self.timer = StepTimer([_innermost(m) for m in models], reward_seconds)
        self.counters = [VisionCounter(m) for m in models]
        self.images: list[int] = []
        self.completion_tokens: list[float] = []
        meter = self

        class _Count(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                for c in meter.counters:
                    c.reset()

            def on_step_end(self, args, state, control, **kwargs):
                meter.images.append(sum(c.images for c in meter.counters))

            def on_log(self, args, state, control, logs=None, **kwargs):
                if logs and "completions/mean_length" in logs:
                    meter.completion_tokens.append(float(logs["completions/mean_length"]))

        trainer.add_callback(self.timer)
        trainer.add_callback(_Count())

    def result(self, row: Row, warmup: int) -> Row:
        row.steps = self.timer.history[warmup:]
        row.images = self.images[warmup:]
        row.completion_tokens = self.completion_tokens[warmup:]
        return row


def _innermost(model: Any) -> Any:
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


VARIANTS = {  # name -> (shared_prefill, dedup_images, share_prompt_prefix, label)
    "off": (False, False, False, "vrft, speed-ups off"),
    "prefill+images": (True, True, False, "vrft, shared prefill + image dedup only"),
    "on": (True, True, True, "vrft, speed-ups on (all three)"),
}


def vrft_config(
    model_dir: Path, records: Path, out: Path, *, g: int, prompts: int, speed: str, steps: int, warmup: int,
    image_side: int = IMAGE_SIDE, completion: int = COMPLETION, extra: dict | None = None,
) -> dict:  # fmt: skip
    """The config dict of a `vrft_row` run (`extra`: more keys per section, e.g. {"model": {"lora": ...}})."""
    prefill, images, prefix, _ = VARIANTS[speed]
    data = {
        "name": f"bench-g{g}-{speed}",
        "model": {"path": str(model_dir), "min_pixels": image_side**2, "max_pixels": image_side**2},
        "data": {"train": str(records), "task": "detection"},
        "grpo": {
            "num_generations": g, "prompts_per_step": prompts, "per_device_prompts": prompts, "beta": 0.04,
            "max_completion_length": completion, "max_steps": steps + warmup, "learning_rate": 1e-6,
            "seed": 0, "shared_prefill": prefill, "dedup_images": images, "share_prompt_prefix": prefix,
        },
        "output": {"dir": str(out), "logging_steps": 1, "sample_every": 1000, "num_samples": 0, "overwrite": True},
    }  # fmt: skip
    for section, values in (extra or {}).items():
        data.setdefault(section, {}).update(values)
    return data


def vrft_row(
    model_dir: Path, records: Path, out: Path, *, g: int, prompts: int, speed: str, steps: int, warmup: int,
    image_side: int = IMAGE_SIDE, completion: int = COMPLETION, extra: dict | None = None,
) -> Row:  # fmt: skip
    """`vrft train` (run_grpo) with the speed-ups of VARIANTS[speed]; `prompts` prompts per device per step."""
    label = VARIANTS[speed][3]
    from vrft.config import load_config
    from vrft.train import run_grpo

    cfg = load_config(vrft_config(
        model_dir, records, out, g=g, prompts=prompts, speed=speed, steps=steps, warmup=warmup,
        image_side=image_side, completion=completion, extra=extra,
    ))  # fmt: skip
    meters: list[Meter] = []

    def hook(trainer):
        rewards = [f for f in trainer.reward_funcs if hasattr(f, "seconds")]
        meters.append(Meter(trainer, lambda: sum(r.seconds for r in rewards)))

    run_grpo(cfg, trainer_hook=hook)
    return meters[0].result(Row(label, g, prompts, speed), warmup)


def trl_row(
    model_dir: Path, records: Path, out: Path, *, g: int, prompts: int, steps: int, warmup: int,
    image_side: int = IMAGE_SIDE, completion: int = COMPLETION, gpu: bool = False,
) -> Row:  # fmt: skip
    """TRL's GRPOTrainer used as-is: same model, data, rewards and hyper-parameters (activation checkpointing
    off, as in the vrft rows), no vrft speed-ups."""
    from trl import GRPOConfig, GRPOTrainer

    from vrft.data.hf import build_grpo_dataset
    from vrft.data.records import load_records
    from vrft.models.load import convention_for, frame_for, load_model_and_processor
    from vrft.rewards import rewards_for
    from vrft.tasks import TASKS

    model, processor = load_model_and_processor(
        str(model_dir), dtype="float32", min_pixels=image_side**2, max_pixels=image_side**2
    )
    convention = convention_for(model.config)
    task = TASKS["detection"]
    dataset = build_grpo_dataset(
        load_records(records), task, lambda r: frame_for(r.width, r.height, convention, processor)
    )
    fns, weights = rewards_for("detection", "default")
    seconds = [0.0]

    def timed(fn):
        def wrapped(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                seconds[0] += time.perf_counter() - t

        wrapped.__name__ = getattr(fn, "__name__", "reward")
        return wrapped

    args = GRPOConfig(
        output_dir=str(out), use_cpu=not gpu, bf16=gpu, report_to="none", seed=0, num_generations=g,
        per_device_train_batch_size=prompts * g, max_completion_length=completion, beta=0.04,
        learning_rate=1e-6, max_steps=steps + warmup, logging_steps=1, save_strategy="no",
        reward_weights=[float(w) for w in weights], remove_unused_columns=False, log_completions=False,
        activation_checkpointing=False,  # TRL's default is on; vrft's (model.gradient_checkpointing) is off
    )  # fmt: skip
    trainer = GRPOTrainer(model=model, reward_funcs=[timed(f) for f in fns], args=args, train_dataset=dataset,
                          processing_class=processor)  # fmt: skip
    meter = Meter(trainer, lambda: seconds[0])
    trainer.train()
    return meter.result(Row("TRL GRPOTrainer as-is", g, prompts, "TRL as-is"), warmup)


# ------------------------------------------------------------------------------------------- report
def table(rows: list[Row], baseline: Row) -> str:
    head = ("| run | G | prompts/step | completions/s | x TRL as-is (1 prompt) | step s (median) | generation | "
            "log-prob | update | reward | other | images encoded/step | mean completion tokens |")  # fmt: skip
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lines.append(
            f"| {r.name} | {r.g} | {r.prompts} | {r.completions_per_s:.2f} | "
            f"{r.completions_per_s / baseline.completions_per_s:.2f}x | {r.mean('total'):.2f} | "
            f"{r.mean('generation'):.2f} | {r.mean('logprob'):.2f} | {r.mean('update'):.2f} | "
            f"{r.mean('reward'):.3f} | {r.mean('other'):.2f} | {statistics.fmean(r.images):.0f} | "
            f"{statistics.fmean(r.completion_tokens) if r.completion_tokens else float('nan'):.1f} |"
        )
    return "\n".join(lines)


def speedups(rows: list[Row]) -> list[str]:
    out = []
    for g in sorted({r.g for r in rows}):
        on = [r for r in rows if r.g == g and r.speed == "on"]
        off = [r for r in rows if r.g == g and r.speed == "off" and r.prompts == (on[0].prompts if on else 0)]
        if on and off:
            out.append(
                f"- G = {g}: median step time {off[0].mean('total'):.2f} s -> {on[0].mean('total'):.2f} s "
                f"({off[0].mean('total') / on[0].mean('total'):.2f}x faster with the speed-ups); images "
                f"encoded per step {statistics.fmean(off[0].images):.0f} -> {statistics.fmean(on[0].images):.0f}"
            )
    return out


def machine() -> str:
    import torch
    import transformers
    import trl

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores visible, torch {torch.__version__} ({torch.get_num_threads()} "
            f"intra-op thread(s)), transformers {transformers.__version__}, trl {trl.__version__}, "
            f"Python {platform.python_version()}")  # fmt: skip


def model_description(model_dir: Path) -> str:
    """Sizes and FLOPs of the benchmark model next to Qwen2-VL-2B's (matmuls measured, attention analytic)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32)
    vision = sum(p.numel() for n, p in model.named_parameters() if ".visual." in f".{n}")
    embed = sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" in n or "lm_head" in n)
    lm = sum(p.numel() for p in model.parameters()) - vision - embed
    side = IMAGE_SIDE // 14
    patches, seq = side * side, side * side // 4 + 90  # prompt: image tokens + ~90 text tokens
    with torch.no_grad(), FlopCounterMode(display=False) as f:
        model.model.visual(torch.randn(patches, 3 * 2 * 14 * 14), grid_thw=torch.tensor([[1, side, side]]))
    v_mm = f.get_total_flops() / patches
    with torch.no_grad(), FlopCounterMode(display=False) as f:
        model.model.language_model(inputs_embeds=torch.randn(1, seq, MODEL_SIZES["hidden_size"]))
    l_mm = f.get_total_flops() / seq
    v_att = 4 * patches * MODEL_SIZES["vision_hidden"] * MODEL_SIZES["vision_depth"]
    l_att = 4 * seq * MODEL_SIZES["hidden_size"] * MODEL_SIZES["layers"]
    ratio = (v_mm + v_att) / (l_mm + l_att)
    return (
        f"tiny Qwen2-VL (random weights): language model {lm / 1e6:.2f}M parameters without embeddings "
        f"({MODEL_SIZES['layers']} layers, hidden {MODEL_SIZES['hidden_size']}, MLP {MODEL_SIZES['intermediate_size']}), "
        f"vision tower {vision / 1e6:.2f}M ({MODEL_SIZES['vision_depth']} blocks, hidden {MODEL_SIZES['vision_hidden']}, "
        f"MLP {MODEL_SIZES['vision_intermediate']}, patch embedding and 2x2 merger); images {IMAGE_SIDE}x{IMAGE_SIDE} px = "
        f"{patches} patches = {patches // 4} image tokens. FLOPs of the tower per patch / of the LM per prompt "
        f"token: {v_mm / 1e6:.2f} / {l_mm / 1e6:.2f} M in matmuls ({v_mm / l_mm:.2f}x; Qwen2-VL-2B: 1.28 / 2.62 G "
        f"= 0.49x), {ratio:.2f}x with attention (Qwen2-VL-2B, ~2,000 patches, ~600-token prompt: 0.59x); per "
        f"image token (4 patches) the tower costs {4 * ratio:.1f}x the LM (Qwen2-VL-2B: 2.4x)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--steps", type=int, default=3, help="measured optimizer steps per row (after warm-up)"
    )
    parser.add_argument("--warmup", type=int, default=1, help="steps dropped before measuring")
    parser.add_argument("--prompts", type=int, default=4, help="prompts per step of the vrft rows")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (shared CPU: 1)")
    parser.add_argument("--rounds", type=int, default=2, help="repeat every row, in alternating order")
    parser.add_argument("--quick", action="store_true", help="G = 4 rows only (smoke run)")
    parser.add_argument(
        "--media", action="store_true", help="several images and video (train_speed_media.py)"
    )
    parser.add_argument("--out", type=Path, default=None, help="markdown file of the results")
    parser.add_argument("--no-save", action="store_true", help="print only")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING)
    from vrft.models.tiny import cached_tiny

    load_before = os.getloadavg()
    started = time.time()
    model_dir = cached_tiny("qwen2_vl", size="demo", **MODEL_SIZES)
    if args.media:
        return media_main(args, argv, model_dir, load_before, started)
    work = Path(tempfile.mkdtemp(prefix="vrft-train-speed-"))
    try:
        n_records = max(args.prompts, 1) * (args.steps + args.warmup) * 2
        records = write_records(work / "data", n_records)
        kw = dict(steps=args.steps, warmup=args.warmup)
        gs = [4] if args.quick else [4, 8]
        base_g = gs[-1]
        jobs = [("trl", base_g, "")] + [("vrft", g, v) for g in gs for v in ("off", "on")]
        jobs.insert(-1, ("vrft", base_g, "prefill+images"))  # what the vision-side speed-ups alone give
        merged: dict[tuple, Row] = {}
        for r in range(args.rounds):  # alternate the order: slow drifts of the machine's load cancel out
            for kind, g, speed in jobs if r % 2 == 0 else jobs[::-1]:
                out = work / f"r{r}-{kind}-g{g}-{speed}"
                if kind == "trl":
                    row = trl_row(model_dir, records, out, g=g, prompts=1, **kw)
                else:
                    row = vrft_row(model_dir, records, out, g=g, prompts=args.prompts, speed=speed, **kw)
                key = (kind, g, speed)
                merged[key] = merged[key].merge(row) if key in merged else row
                shutil.rmtree(out, ignore_errors=True)
                print(f"  done: round {r + 1}: {row.name}, G={g}", file=sys.stderr, flush=True)
        rows = [merged[j] for j in jobs]
        baseline = rows[0]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()

    text = table(rows, baseline)
    summary = speedups(rows)
    best = max((r for r in rows if r.speed == "on"), key=lambda r: r.g)
    summary.append(
        f"- vrft (speed-ups on, {best.prompts} prompts/step, G = {best.g}) vs TRL as-is with 1 prompt/step "
        f"(G = {baseline.g}): {best.completions_per_s:.2f} / {baseline.completions_per_s:.2f} completions/s = "
        f"{best.completions_per_s / baseline.completions_per_s:.2f}x"
    )
    command = "python benchmarks/train_speed.py " + " ".join(argv if argv is not None else sys.argv[1:])
    report = "\n".join([
        "# Training speed: shared prefill, one vision encode per distinct image, shared prompt prefix (issue #7)",
        "",
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}; wall time {time.time() - started:.0f} s",
        *environment_lines(command, load_before, load_after),
        f"- model: {model_description(model_dir)}",
        f"- run: detection prompts (one distinct image each), beta 0.04 (reference pass), 1 update per rollout, "
        f"max {COMPLETION} completion tokens, fp32, {args.warmup} warm-up step(s) dropped per run, "
        f"median of {args.steps} steps x {args.rounds} rounds (rows run in alternating order)",
        "- step split (s): generation = rollout forwards, log-prob = reference pass, update = policy forward + "
        "backward + optimizer, other = processor calls, padding, advantages (vrft.train.timing.StepTimer)",
        "",
        text,
        "",
        *summary,
        "",
    ])  # fmt: skip
    _save(report, args.out or RESULTS, args.no_save)
    return 0


def environment_lines(command: str, load_before, load_after) -> list[str]:
    """The machine, the load average before / after, and the command: the lines every speed report opens
    with (a shared machine: other jobs may have run)."""
    return [
        f"- machine: {machine()}",
        f"- load average (1/5/15 min) before {load_before[0]:.1f}/{load_before[1]:.1f}/{load_before[2]:.1f}, "
        f"after {load_after[0]:.1f}/{load_after[1]:.1f}/{load_after[2]:.1f} (a shared machine: other jobs ran)",
        f"- command: `{command.strip()}`",
    ]


def _save(report: str, out: Path, no_save: bool) -> None:
    print(report)
    if not no_save:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report, encoding="utf-8")


def media_main(
    args: argparse.Namespace, argv: list[str] | None, model_dir: Path, load_before, started
) -> int:
    """--media: the table of benchmarks/train_speed_media.py (vision encodes per step, on vs off)."""
    sys.path.insert(0, str(Path(__file__).parent))
    import train_speed_media as tm

    work = Path(tempfile.mkdtemp(prefix="vrft-train-speed-media-"))
    g = 4
    try:
        rows, summary = tm.run(model_dir, work, g=g, steps=args.steps, warmup=args.warmup, completion=16)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    command = "python benchmarks/train_speed.py " + " ".join(argv if argv is not None else sys.argv[1:])
    report = "\n".join([
        "# Training speed with several images and video: vision encodes per step, speed-ups on vs off (issue 20)",
        "",
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}; wall time {time.time() - started:.0f} s",
        *environment_lines(command, load_before, load_after),
        f"- model: {model_description(model_dir)}",
        f"- run: 2 distinct prompts x G = {g} per step, beta 0.04 (reference pass), 1 update per rollout, max 16 "
        f"completion tokens, fp32, {args.warmup} warm-up step(s) dropped, median of {args.steps} steps; 'images or "
        "clips encoded/step' counts what the vision tower of the policy and the reference model receives (exact)",
        "- the first three cases are TRL GRPOTrainer steps (off = TRL as-is); TRL 1.16's log-prob passes carry no "
        "video input, so the last case times the same work by hand: rollout (generation), reference pass "
        "(log-prob), policy forward + backward (update), processor (other)",
        "",
        tm.media_table(rows),
        "",
        *summary,
        "",
    ])  # fmt: skip
    _save(report, args.out or MEDIA_RESULTS, args.no_save)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
