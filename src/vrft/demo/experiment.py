"""The few-shot experiment: from one warm start, SFT and Visual-RFT on the same k-shot novel sets with
the same budget (optimizer steps x prompts per step), then the real evaluation of every model.

Both methods go through the project's training entry points (`run_sft`, `run_grpo`) with configs
built here, exactly what `vrft sft CONFIG` / `vrft train CONFIG` run; evaluation is `evaluate_model`
(COCO mAP with pycocotools, greedy decoding; the protocol follows `world.novel_prompts`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from vrft.demo.settings import DemoSettings

logger = logging.getLogger(__name__)


def _common(settings: DemoSettings, model_dir: Path, records: Path, out: Path, name: str) -> dict[str, Any]:
    pixels = settings.world.image_size**2
    return {
        "name": name,
        "model": {"path": str(model_dir), "min_pixels": pixels, "max_pixels": pixels, "dtype": "float32"},
        "data": {"train": str(records), "task": "detection", "shuffle": True},
        "output": {"dir": str(out), "sft_dir": str(out), "logging_steps": 1, "overwrite": True,
                   "sample_every": 5, "num_samples": 8},
    }  # fmt: skip


def sft_config(settings: DemoSettings, model_dir: Path, records: Path, out: Path, shots: int):
    """The `vrft sft` config of the SFT baseline at `shots` (a `VrftConfig`)."""
    from vrft.config import load_config

    f, s = settings.fewshot, settings.sft
    data = _common(settings, model_dir, records, out, f"demo SFT {shots}-shot")
    data["sft"] = {
        "learning_rate": s.learning_rate, "lr_scheduler": s.lr_scheduler, "warmup": s.warmup,
        "per_device_batch_size": f.prompts_per_step, "max_steps": f.steps, "seed": f.seed,
    }  # fmt: skip
    return load_config(data)


def rft_config(settings: DemoSettings, model_dir: Path, records: Path, out: Path, shots: int):
    """The `vrft train` config of Visual-RFT at `shots` (a `VrftConfig`)."""
    from vrft.config import load_config

    f, r = settings.fewshot, settings.rft
    data = _common(settings, model_dir, records, out, f"demo Visual-RFT {shots}-shot")
    data["rewards"] = {"preset": r.reward_preset, "weights": dict(r.reward_weights)}
    data["grpo"] = {
        "num_generations": r.num_generations, "prompts_per_step": f.prompts_per_step,
        "per_device_prompts": f.prompts_per_step, "beta": r.beta, "learning_rate": r.learning_rate,
        "lr_scheduler": r.lr_scheduler, "warmup": r.warmup, "temperature": r.temperature,
        "max_completion_length": r.max_completion_length, "max_steps": f.steps, "loss_type": r.loss_type,
        "seed": f.seed,
    }  # fmt: skip
    return load_config(data)


def train(method: str, settings: DemoSettings, model_dir: Path, records: Path, out: Path, shots: int) -> Path:
    """Train `method` ("sft" or "rft") on `records`; returns the final model directory."""
    if method == "sft":
        from vrft.train.sft import run_sft

        return run_sft(sft_config(settings, model_dir, records, out, shots))
    from vrft.train.grpo import run_grpo

    return run_grpo(rft_config(settings, model_dir, records, out, shots))


def evaluate(
    settings: DemoSettings, model_dir: Path, test_records: list[Any], out: Path, title: str
) -> dict[str, Any]:
    """Novel-class detection metrics of the model in `model_dir` on the test records (writes `out`)."""
    import torch

    from vrft.data.synthetic import NOVEL_CLASSES
    from vrft.evaluate.pipeline import evaluate_model
    from vrft.models.load import load_model_and_processor

    pixels = settings.world.image_size**2
    model, processor = load_model_and_processor(
        model_dir, dtype="float32", min_pixels=pixels, max_pixels=pixels
    )
    t0 = time.perf_counter()
    with torch.inference_mode():
        metrics = evaluate_model(
            model, processor, test_records, "detection", out,
            batch_size=settings.eval.batch_size, max_new_tokens=settings.eval.max_new_tokens,
            categories=list(NOVEL_CLASSES), progress=False, title=title,
            protocol="records" if settings.world.novel_prompts == "present" else "all-categories",
        )  # fmt: skip
    metrics["seconds"] = round(time.perf_counter() - t0, 1)
    return metrics
