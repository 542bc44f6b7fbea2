"""Does a tiny model learn the video and multi-image tasks? Metric before / after training, mean ± sd
over seeds, in a few CPU minutes per seed (issue 20 part 8).

For each task (``temporal_grounding``: `vrft data synth --video`; ``multi_image_grounding``:
`vrft data synth --multi-image`) and each seed:

1. the shapes world: ``--train`` training records (seeded by the seed) and one held-out set of
   ``--test`` records (seed 1000, the same for every seed), 112 px;
2. the model: the shipped demo base (`src/vrft/demo/base_model`, a 1.6M-parameter Qwen2.5-VL trained
   on one-image classification and detection; it has never seen several images, a video or these
   answers), evaluated on the held-out set (``base``);
3. ``--sft-steps`` steps of SFT on the task's answers (``sft``), then ``--grpo-steps`` steps of GRPO
   (Visual-RFT, the task's default rewards) from that model (``sft+grpo``); GRPO straight from the base
   gets no reward (the base never writes the answer format), so it is not run;
4. every model answers the held-out set greedily, answer-only (``<answer>..</answer>``: short answers,
   cheap on a CPU), with the same budgets (video: 2 fps, at most 6 frames of 112x112).

Also printed: what needs no picture at all, from the training records (``prior``): for temporal
grounding the mIoU of always answering the mean training window; for multi-image grounding the
image accuracy of always answering the most frequent training target index and the expected accuracy
of a uniform guess.

    python benchmarks/learn_media.py [--seeds 0,1,2] [--train 48] [--test 12] [--sft-steps 40]
        [--sft-batch 4] [--sft-lr 3e-3] [--grpo-steps 2] [--grpo-lr 2e-4]
        [--tasks temporal_grounding,multi_image_grounding] [--keep DIR] [--threads 2] [--json FILE]

Prints one Markdown table per task (mean ± sd over seeds, per stage) and the wall time per seed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

BASE = Path(__file__).resolve().parents[1] / "src" / "vrft" / "demo" / "base_model"
MEDIA = {"video_fps": 2.0, "video_max_frames": 6, "video_max_pixels": 12544, "video_min_pixels": 12544}
METRICS = {
    "temporal_grounding": ("mIoU", "R@0.3", "R@0.5", "format_ok"),
    "multi_image_grounding": ("image_accuracy", "acc@0.5", "mIoU", "format_ok"),
}
FLAGS = {"temporal_grounding": ["--video"], "multi_image_grounding": ["--multi-image"]}
MAX_NEW_TOKENS = 40


def synth(out: Path, task: str, n: int, seed: int) -> Path:
    from vrft.cli import main

    extra = ["--video-seconds", "2,3"] if task == "temporal_grounding" else []
    argv = ["data", "synth", "--out", str(out), "--images", "0", "--size", "112", "--seed", str(seed),
            FLAGS[task][0], str(n), *extra]  # fmt: skip
    assert main(argv) == 0
    return out / f"{task}.jsonl"


def evaluate(model: Path, data: Path, out: Path, task: str) -> dict:
    from vrft.cli import main

    argv = ["eval", "--model", str(model), "--data", str(data), "--out", str(out), "--task", task,
            "--max-new-tokens", str(MAX_NEW_TOKENS), "--batch-size", "16", "--answer-only", "--device", "cpu"]  # fmt: skip
    for name, value in MEDIA.items():
        argv += ["--" + name.replace("_", "-"), str(value)]
    assert main(argv) == 0
    return json.loads((out / "metrics.json").read_text())[task]


def config(root: Path, task: str, train: Path, seed: int, sft_steps: int, grpo_steps: int, base: Path, a):
    from vrft.config import load_config

    data = {
        "name": f"learn-{task}-{seed}",
        "model": {"path": str(base), "min_pixels": 12544, "max_pixels": 12544, **MEDIA},
        "data": {"train": str(train), "task": task, "answer_format": "answer_only"},
        "sft": {"max_steps": sft_steps, "learning_rate": a.sft_lr, "per_device_batch_size": a.sft_batch, "seed": seed,
                "warmup": 0.1},
        "grpo": {"num_generations": 4, "prompts_per_step": 4, "per_device_prompts": 2, "max_steps": grpo_steps,
                 "max_completion_length": MAX_NEW_TOKENS, "learning_rate": a.grpo_lr, "beta": 0.0, "seed": seed,
                 "temperature": 1.0},
        "output": {"dir": str(root / "grpo"), "sft_dir": str(root / ("sft" if base == BASE else "sft-unused")), "logging_steps": 1,
                   "sample_every": 1000, "num_samples": 0},
    }  # fmt: skip
    return load_config(data, [])


def prior(task: str, train: Path, test: Path) -> dict:
    from vrft.data.records import load_records
    from vrft.rewards import REWARDS

    tr, te = load_records(train), load_records(test)
    if task == "temporal_grounding":
        s = statistics.mean(r.window[0] for r in tr)
        e = statistics.mean(r.window[1] for r in tr)
        ious = REWARDS["temporal_iou"](
            [f"<answer>[{s:.2f}, {e:.2f}]</answer>"] * len(te), gt_window=[r.window for r in te]
        )
        return {"mIoU": 100 * statistics.mean(ious)}
    top = statistics.mode(r.target_image for r in tr)
    return {
        "image_accuracy": 100 * statistics.mean(r.target_image == top for r in te),
        "uniform_guess": 100 * statistics.mean(1 / len(r.images) for r in te),
    }


def fmt(values: list[float]) -> str:
    if not values:
        return "-"
    mean = statistics.mean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.1f} ± {sd:.1f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--train", type=int, default=48)
    p.add_argument("--test", type=int, default=12)
    p.add_argument("--sft-steps", type=int, default=40)
    p.add_argument("--grpo-steps", type=int, default=2)
    p.add_argument("--sft-lr", type=float, default=3e-3)
    p.add_argument("--sft-batch", type=int, default=4)
    p.add_argument("--grpo-lr", type=float, default=2e-4)
    p.add_argument("--tasks", default="temporal_grounding,multi_image_grounding")
    p.add_argument("--keep", help="write outputs here (default: a temporary directory, removed)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--json", help="also write the per-seed numbers to this JSON file")
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    logging.basicConfig(level=logging.WARNING)
    seeds = [int(s) for s in a.seeds.split(",") if s]
    tasks = [t for t in a.tasks.split(",") if t]
    root = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="vrft-learn-media-"))
    results: dict = {}
    try:
        for task in tasks:
            test = synth(root / task / "test", task, a.test, 1000)
            base_metrics = evaluate(BASE, test, root / task / "eval-base", task)
            rows = results.setdefault(task, {"base": base_metrics, "seeds": {}})
            for seed in seeds:
                from vrft.train import run_grpo, run_sft

                t0 = time.perf_counter()
                run = root / task / f"seed{seed}"
                train = synth(run / "data", task, a.train, seed)
                cfg = config(run, task, train, seed, a.sft_steps, a.grpo_steps, BASE, a)
                sft_final = run_sft(cfg)
                after_sft = evaluate(sft_final, test, run / "eval-sft", task)
                cfg = config(run, task, train, seed, a.sft_steps, a.grpo_steps, sft_final, a)
                grpo_final = run_grpo(cfg)
                after_grpo = evaluate(grpo_final, test, run / "eval-grpo", task)
                rows["seeds"][seed] = {
                    "sft": after_sft, "sft+grpo": after_grpo, "prior": prior(task, train, test),
                    "seconds": round(time.perf_counter() - t0, 1),
                }  # fmt: skip
                print(f"{task} seed {seed}: {rows['seeds'][seed]['seconds']} s", flush=True)
                if a.json:  # after every seed: a run cut short keeps what it measured
                    Path(a.json).write_text(json.dumps(results, indent=2) + "\n")
        _print(results, a)
        if a.json:
            Path(a.json).write_text(json.dumps(results, indent=2) + "\n")
    finally:
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


def _print(results: dict, a) -> None:
    print(f"\nlearn_media: {a.train} training records per seed, {a.test} held-out, SFT {a.sft_steps} steps x "
          f"{a.sft_batch} (lr {a.sft_lr:g}), GRPO {a.grpo_steps} steps x 4 prompts x G=4 (lr {a.grpo_lr:g}); "
          f"seeds {a.seeds}; {os.cpu_count()} CPUs, {a.threads} torch threads\n")  # fmt: skip
    for task, rows in results.items():
        names = METRICS[task]
        print(f"### {task}\n")
        print("| stage | " + " | ".join(names) + " |")
        print("|---|" + "---:|" * len(names))
        print(
            "| base (demo base, no training) | "
            + " | ".join(f"{rows['base'].get(n, 0):.1f}" for n in names)
            + " |"
        )
        for stage in ("sft", "sft+grpo"):
            cells = [fmt([s[stage][n] for s in rows["seeds"].values()]) for n in names]
            print(f"| {stage} | " + " | ".join(cells) + " |")
        priors = [s["prior"] for s in rows["seeds"].values()]
        for key in priors[0] if priors else ():
            print(
                f"| prior: {key} (no picture) | "
                + fmt([q[key] for q in priors])
                + " |"
                + " |" * (len(names) - 1)
            )
        secs = [s["seconds"] for s in rows["seeds"].values()]
        print(f"\nwall time per seed: {fmt(secs)} s\n")


if __name__ == "__main__":
    raise SystemExit(main())
