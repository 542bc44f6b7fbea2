"""GRPO training throughput: completions per second and where a step's time goes.

Runs `vrft.train.run_grpo` (the path `vrft train` takes) for N steps on a tiny model and prints ONE
table: completions per second and the split of each step into generation, reward, log-prob passes,
update and other (measured by `vrft.train.timing.StepTimer`: forward hooks on the model plus timing
inside the reward wrappers; nothing in TRL is patched), for 1 and for several prompts per step. Each
setting runs with TRL's own generation (`grpo.shared_prefill=false grpo.dedup_images=false`: the
baseline) and with vrft's defaults, so later speed work is measured against the same table.

    python benchmarks/train_throughput.py                          # the table below (CPU: a few minutes)
    python benchmarks/train_throughput.py --prompts 1 --steps 3    # a quick look

Writes benchmarks/results/train_throughput.md (date, machine, command, table) unless --no-save.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "train_throughput.md"
PARTS = ("generation", "reward", "logprob", "update", "other")


def make_data(root: Path, images: int, size: int) -> Path:
    """Synthetic shapes world -> detection records (one prompt per image and category)."""
    from vrft.data.coco import convert_coco
    from vrft.data.synthetic import synthesize

    instances = synthesize(root / "shapes", images, seed=0, size=size)
    path = root / "detection.jsonl"
    convert_coco(instances, out=path)
    return path


def run_setting(model: Path, records: Path, out: Path, *, g: int, prompts: int, steps: int, completion: int,
                defaults: bool) -> list[dict[str, float]]:  # fmt: skip
    """Per-step timings (seconds) of one GRPO run, plus completions and completion tokens per step."""
    from vrft.config import load_config
    from vrft.train.grpo import run_grpo
    from vrft.train.timing import StepTimer

    cfg = load_config(
        {
            "model": {"path": str(model), "min_pixels": 3136, "max_pixels": 12544},
            "data": {"train": str(records), "task": "detection"},
            "grpo": {
                "num_generations": g,
                "prompts_per_step": prompts,
                "per_device_prompts": prompts,
                "max_completion_length": completion,
                "max_steps": steps,
                "learning_rate": 1e-4,
                "shared_prefill": defaults,
                "dedup_images": defaults,
                "seed": 0,
            },
            "output": {"dir": str(out), "logging_steps": 1, "num_samples": 0, "overwrite": True},
        }  # fmt: skip
    )
    timers: list[StepTimer] = []

    def grab(trainer: Any) -> None:
        from transformers import PrinterCallback, ProgressCallback

        timers.extend(cb for cb in trainer.callback_handler.callbacks if isinstance(cb, StepTimer))
        for cb in (ProgressCallback, PrinterCallback):  # keep the console for the table
            trainer.remove_callback(cb)

    run_grpo(cfg, trainer_hook=grab)
    lengths = {
        row["step"]: row["train/completion_length"]
        for row in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
        if "train/completion_length" in row
    }
    rows = []
    for step, timing in enumerate(timers[0].history, start=1):
        rows.append({**timing, "completions": prompts * g, "tokens": prompts * g * lengths.get(step, 0.0)})
    return rows


def summarise(name: str, prompts: int, g: int, rows: list[dict[str, float]], warmup: int) -> dict[str, Any]:
    kept = rows[warmup:] or rows
    total = sum(r["total"] for r in kept)
    return {
        "name": name,
        "prompts": prompts,
        "g": g,
        "steps": len(kept),
        "s_per_step": statistics.mean(r["total"] for r in kept),
        "completions_per_s": sum(r["completions"] for r in kept) / total,
        "tokens_per_s": sum(r["tokens"] for r in kept) / total,
        **{p: sum(r[p] for r in kept) / total * 100 for p in PARTS},
    }


def table(results: list[dict[str, Any]]) -> str:
    head = ("| rollouts | prompts/step | G | completions/step | s/step | completions/s | tokens/s | "
            "generation | reward | log-prob | update | other | every run (completions/s) |")  # fmt: skip
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        lines.append(
            f"| {r['name']} | {r['prompts']} | {r['g']} | {r['prompts'] * r['g']} | {r['s_per_step']:.2f} | "
            f"{r['completions_per_s']:.2f} | {r['tokens_per_s']:.1f} | "
            + " | ".join(f"{r[p]:.0f}%" for p in PARTS)
            + " | "
            + ", ".join(f"{x:.2f}" for x in r.get("runs", []))
            + " |"
        )
    return "\n".join(lines)


def machine(threads: int) -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    return (f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} cores, device {device}, "
            f"torch {torch.__version__} ({threads} thread{'s' if threads > 1 else ''}), "
            f"Python {platform.python_version()}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--arch", default="qwen2_5_vl", help="tiny architecture (vrft.models.tiny.TINY_ARCHS)"
    )
    parser.add_argument("--size", default="tiny", help="tiny size preset ('tiny' or 'demo')")
    parser.add_argument("--prompts", default="1,4", help="prompts per step to measure, comma-separated")
    parser.add_argument("--g", type=int, default=4, help="completions per prompt (G)")
    parser.add_argument("--steps", type=int, default=5, help="GRPO steps per setting (the first is warm-up)")
    parser.add_argument("--warmup", type=int, default=1, help="steps dropped from the averages")
    parser.add_argument("--max-completion", type=int, default=32, help="max completion tokens")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--rollouts", default="trl,default", help="'trl' (baseline) and/or 'default'")
    parser.add_argument(
        "--repeats", type=int, default=2, help="runs per setting, interleaved; the fastest counts"
    )
    parser.add_argument("--no-save", action="store_true", help="print only, do not write the results file")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    from vrft.models.tiny import cached_tiny

    started = datetime.datetime.now(datetime.timezone.utc)
    model = cached_tiny(args.arch, args.size)
    results = []
    with tempfile.TemporaryDirectory(prefix="vrft-train-throughput-") as tmp:
        root = Path(tmp)
        records = make_data(root, images=16, size=112)
        settings = [(int(p), r) for p in args.prompts.split(",") for r in args.rollouts.split(",")]
        best: dict[tuple[int, str], dict[str, Any]] = {}
        for repeat in range(args.repeats):  # interleaved, so a burst of load hits every setting alike
            for prompts, rollouts in settings:
                name = {"trl": "TRL generation (baseline)", "default": "vrft defaults"}[rollouts]
                t = time.perf_counter()
                rows = run_setting(
                    model, records, root / f"run-{prompts}-{rollouts}", g=args.g, prompts=prompts,
                    steps=args.steps, completion=args.max_completion, defaults=rollouts == "default",
                )  # fmt: skip
                result = summarise(name, prompts, args.g, rows, args.warmup)
                key = (prompts, rollouts)
                runs = best.get(key, {}).get("runs", []) + [result["completions_per_s"]]
                if key not in best or result["completions_per_s"] > best[key]["completions_per_s"]:
                    best[key] = result
                best[key]["runs"] = runs
                print(f"[{repeat + 1}/{args.repeats}] {name}, {prompts} prompt(s)/step: "
                      f"{time.perf_counter() - t:.1f} s", file=sys.stderr)  # fmt: skip
        results = [best[k] for k in settings]

    text = table(results)
    print(text)
    if not args.no_save:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        command = "python benchmarks/train_throughput.py " + " ".join(
            argv if argv is not None else sys.argv[1:]
        )
        params = sum(p.numel() for p in __import__("safetensors.torch").torch.load_file(
            str(model / "model.safetensors")).values())  # fmt: skip
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(
            f"# GRPO training throughput ({started:%Y-%m-%d})\n\n"
            f"- machine: {machine(args.threads)}; load average at the end: {load}\n"
            f"- model: tiny {args.arch} ({args.size}, random weights, {params:,} parameters); detection on "
            f"16 synthetic 112x112 shapes images\n"
            f"- GRPO: G = {args.g}, max {args.max_completion} completion tokens, {args.steps} steps per setting "
            f"(first {args.warmup} dropped), all prompts of a step in one forward pass; "
            f"{args.repeats} interleaved runs per setting, the fastest counts\n"
            f"- command: `{command.strip()}` (started {started:%Y-%m-%d %H:%M} UTC)\n\n"
            f"{text}\n\n"
            "Columns: completions/s and tokens/s over the measured steps; the percentages split the step's wall\n"
            "time (vrft.train.timing.StepTimer): *generation* = first to last sampling forward, *reward* = inside\n"
            "the reward functions, *log-prob* = gradient-free scoring passes (reference model for the KL),\n"
            "*update* = training forward + backward + optimizer step, *other* = the rest (processor calls,\n"
            "padding, advantages, data loading). 'TRL generation (baseline)' is TRL's GRPOTrainer path unchanged\n"
            "(grpo.shared_prefill=false grpo.dedup_images=false); 'vrft defaults' has the speed-ups of docs/speed.md\n"
            "on. 'every run' shows the spread between repeats: on a shared machine under load, differences\n"
            "between rows smaller than that spread are noise. A tiny random model makes each step mostly fixed\n"
            "per-call overhead, so absolute numbers say little about a 2B model on a GPU; the table is the\n"
            "reference later changes are compared with on the same machine.\n",
            encoding="utf-8",
        )
        print(f"wrote {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
