"""One training run and one evaluation of the demo, through the project's own entry points.

Both methods go through `run_sft` / `run_grpo` with configs built here, exactly what `vrft sft CONFIG` /
`vrft train CONFIG` run, from the same base model, on the same records, with the same budget (optimizer
steps x prompts per step; in (c) each method at its own learning rate and steps, `make_run`), after
`check_settings` has checked every config they will build. Evaluation is `evaluate_model` (greedy decoding): detection is COCO mAP with
pycocotools under the all-categories protocol (every novel shape asked on every image), classification
is exact-match accuracy.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vrft.demo.settings import TASK_OF, DemoSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Run:
    """What one training run needs: the task, its records, its budget and seed, and a name."""

    task: str
    records: Path
    steps: int
    seed: int
    name: str
    learning_rate: float | None = None  # None: the method's `sft`/`rft.learning_rate`


def make_run(
    settings: DemoSettings, experiment: str, method: str, records: Path, seed: int, name: str
) -> Run:
    """The run of `method` ("sft" | "rft") in `experiment`: (c) fewshot_classification at the method's
    own learning rate and steps (`experiments.classification`, tuned per method on validation; None:
    the shared value), (a) and (b) at the shared ones (`sft`/`rft.learning_rate`, `experiments.steps`
    or `open_vocab_steps`)."""
    ex = settings.experiments
    steps = ex.open_vocab_steps if experiment == "open_vocab" else ex.steps
    task = TASK_OF[experiment]
    if experiment == "fewshot_classification":
        own = getattr(ex.classification, method)
        return Run(task, records, own.steps or steps, seed, name, own.learning_rate)
    return Run(task, records, steps, seed, name)


def _common(settings: DemoSettings, model_dir: Path, run: Run, out: Path) -> dict[str, Any]:
    pixels = settings.world.image_size**2
    return {
        "name": run.name,
        "model": {"path": str(model_dir), "min_pixels": pixels, "max_pixels": pixels, "dtype": "float32"},
        "data": {"train": str(run.records), "task": run.task, "shuffle": True},
        "output": {"dir": str(out), "sft_dir": str(out), "logging_steps": 1, "overwrite": True,
                   "sample_every": 5, "num_samples": 8},
    }  # fmt: skip


def sft_config(settings: DemoSettings, model_dir: Path, run: Run, out: Path):
    """The `vrft sft` config of the SFT baseline (a `VrftConfig`; `run_sft` checks its files)."""
    from vrft.config import load_config

    s = settings.sft
    data = _common(settings, model_dir, run, out)
    data["sft"] = {
        "learning_rate": run.learning_rate or s.learning_rate, "lr_scheduler": s.lr_scheduler, "warmup": s.warmup,
        "per_device_batch_size": settings.experiments.prompts_per_step, "max_steps": run.steps, "seed": run.seed,
    }  # fmt: skip
    return load_config(data)


def rft_config(settings: DemoSettings, model_dir: Path, run: Run, out: Path):
    """The `vrft train` config of Visual-RFT (a `VrftConfig`; `run_grpo` checks its files)."""
    from vrft.config import load_config

    r, pps = settings.rft, settings.experiments.prompts_per_step
    data = _common(settings, model_dir, run, out)
    data["rewards"] = {"preset": r.reward_preset, "weights": dict(r.reward_weights)}
    data["grpo"] = {
        "num_generations": r.num_generations, "prompts_per_step": pps, "per_device_prompts": pps,
        "beta": r.beta, "learning_rate": run.learning_rate or r.learning_rate, "lr_scheduler": r.lr_scheduler, "warmup": r.warmup,
        "temperature": r.temperature, "max_completion_length": r.max_completion_length, "max_steps": run.steps,
        "loss_type": r.loss_type, "seed": run.seed,
    }  # fmt: skip
    return load_config(data)


def check_settings(settings: DemoSettings) -> None:
    """Every training config the demo will build, checked before any work (`vrft.config` rules, files
    aside) and the schedulers known to transformers: a bad setting fails at once, not after the world
    and the baseline evaluations.

    Raises:
        ConfigError: naming the demo setting (``sft.lr_scheduler``...) and the fix.
    """
    from transformers.trainer_utils import SchedulerType

    from vrft.errors import ConfigError
    from vrft.train.preflight import preflight

    known = [t.value for t in SchedulerType]
    for method in ("sft", "rft"):
        name = getattr(settings, method).lr_scheduler
        if name not in known:
            raise ConfigError(f"{method}.lr_scheduler: unknown scheduler {name!r}; known: {', '.join(known)}")
    for e in settings.experiments.run:
        if e == "tools":
            from vrft.demo.tools_demo import check_tools_settings

            check_tools_settings(settings)
            continue
        run = Run(TASK_OF[e], Path("records.jsonl"), settings.experiments.steps, 0, f"demo {e} (check)")
        for method, build in (("sft", sft_config), ("rft", rft_config)):
            try:
                preflight(build(settings, Path("base"), run, Path("out")), check_paths=False)
            except ConfigError as err:
                msg = str(err).removeprefix("<dict>: ")
                for key, ours in _DEMO_KEYS.items():
                    msg = msg.replace(key, ours)
                raise ConfigError(f"{msg} (the {method} run of {e})") from None


# The generated configs' keys -> the demo settings they come from (for the messages of `check_settings`).
_DEMO_KEYS = {"rewards.weights": "rft.reward_weights", "rewards.preset": "rft.reward_preset", "grpo.": "rft."}


def train(method: str, settings: DemoSettings, model_dir: Path, run: Run, out: Path) -> Path:
    """Train `method` ("sft" or "rft"); returns the final model directory."""
    if method == "sft":
        from vrft.train.sft import run_sft

        return run_sft(sft_config(settings, model_dir, run, out))
    from vrft.train.grpo import run_grpo

    return run_grpo(rft_config(settings, model_dir, run, out))


def evaluate(
    settings: DemoSettings, model_dir: Path, task: str, records: list[Any], out: Path, title: str
) -> dict[str, Any]:
    """Metrics of the model in `model_dir` on `records` (writes `out`): detection of the NOVEL shapes
    under the all-categories protocol, or classification accuracy."""
    import torch

    from vrft.data.synthetic import NOVEL_CLASSES
    from vrft.evaluate.pipeline import evaluate_model
    from vrft.models.load import load_model_and_processor

    pixels = settings.world.image_size**2
    model, processor = load_model_and_processor(
        model_dir, dtype="float32", min_pixels=pixels, max_pixels=pixels
    )
    t0 = time.perf_counter()
    kw: dict[str, Any] = (
        {"categories": list(NOVEL_CLASSES), "protocol": "all-categories"} if task == "detection" else {}
    )
    with torch.inference_mode():
        metrics = evaluate_model(
            model, processor, records, task, out, batch_size=settings.eval.batch_size,
            max_new_tokens=settings.eval.max_new_tokens, progress=False, title=title, **kw,
        )  # fmt: skip
    metrics["seconds"] = round(time.perf_counter() - t0, 1)
    return metrics


def score(task: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """The row fields of one evaluation: the headline number and a few diagnostics."""
    if task == "detection":
        d = metrics["detection"]
        return {"novel_mAP": _num(d.get("mAP")), "novel_AP50": _num(d.get("AP50")),
                "parse_fail": _num(d.get("parse_fail")), "eval_seconds": metrics.get("seconds")}  # fmt: skip
    c = metrics["classification"]
    return {"accuracy": _num(c.get("accuracy")), "parse_fail": _num(c.get("parse_fail")),
            "eval_seconds": metrics.get("seconds")}  # fmt: skip


def _num(v: Any) -> float | None:
    try:
        return round(float(v), 2)
    except (TypeError, ValueError):
        return None
