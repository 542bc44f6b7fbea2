"""From a checked config to the pieces a TRL trainer takes: records, prompt order, task, rewards, model, LoRA.

`grpo.run_grpo` and `sft.run_sft` read top to bottom: `vrft.train.preflight` checks the config against
the world and loads the records once; `vrft.train.run_dir` prepares the output directory;
`vrft.train.processes` lays the run out on the hardware (the TRL arguments are built before the model,
so DeepSpeed ZeRO-3 can partition the weights at load time); this module turns the config into
records, rewards and the model. The config is read by these `vrft.train` modules and the CLI; what
they call (`vrft.data`, `vrft.tasks`, `vrft.rewards`, `vrft.models`) takes plain arguments.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vrft.config import VrftConfig
from vrft.errors import ConfigError
from vrft.train.checkpoints import resume_weights
from vrft.train.preflight import resolve_reward, select_records
from vrft.train.preflight import with_answer_format as with_answer_format  # re-exported

logger = logging.getLogger(__name__)

# Attribute names under which Hugging Face VLMs keep their vision encoder (first match, shallowest).
VISION_MODULE_NAMES = ("visual", "vision_tower", "vision_model", "vision_encoder", "image_encoder")


# ---------------------------------------------------------------------------------------------- data
def training_records(cfg: VrftConfig, *, mixed_tasks: bool = False) -> tuple[list[Any], str]:
    """Load `data.train` and select what the run trains on (`vrft.train.preflight.select_records`).

    A run gets its records from `preflight` instead (read once, images checked); this is for callers
    that want the records alone."""
    from vrft.data.records import load_records

    return select_records(cfg, load_records(cfg.data.train), mixed_tasks=mixed_tasks)


def prompt_order(
    n: int, prompts_per_step: int, *, epochs: float, max_steps: int | None, seed: int, shuffle: bool
) -> list[int]:
    """Indices of the records in the order training visits them, every pass laid out in advance.

    Passes over the `n` records (each a seeded permutation, or 0..n-1 without `shuffle`) are appended
    until `max_steps` optimizer steps of `prompts_per_step` prompts (or `epochs` passes, rounded up to
    whole steps) are covered; a step may span two passes, so a few-shot set smaller than one step still
    trains. Training reads this list front to back in ONE trainer epoch: a resumed run skips exactly the
    steps it has done and sees the same prompts in the same order as an uninterrupted one (a sampler's
    private random state would restart at every resume).
    """
    if n <= 0:
        raise ConfigError("no training records (check data.train and data.task)")
    if max_steps is not None:
        steps = max_steps
    else:
        steps = max(1, math.ceil(epochs * n / prompts_per_step - 1e-9))
    needed = steps * prompts_per_step
    order: list[int] = []
    rng = random.Random(seed)
    while len(order) < needed:
        perm = list(range(n))
        if shuffle:
            rng.shuffle(perm)
        order += perm
    return order[:needed]


def get_task(name: str, preset: str = "default"):
    """The task object of `vrft.tasks.TASKS`; under the ``visual-rft`` reward preset its prompts are
    the reference implementation's training texts byte for byte (`vrft.tasks.reference`)."""
    from vrft.tasks import TASKS, task_for

    if name not in TASKS:
        raise ConfigError(f"data.task: unknown task '{name}'; known: {', '.join(TASKS)}")
    return task_for(name, "visual-rft" if preset == "visual-rft" else "vrft", "train")


def with_task_prompt(contract: Any, task: Any, records: Sequence[Any], convention: str) -> Any:
    """The contract (``vrft.json``) with the task's training text as its prompt template when the task
    renders its own texts (the ``visual-rft`` prompt style) and the records carry none, so that
    ``vrft eval`` / ``vrft predict`` ask the model with the text it was trained on."""
    template_for = getattr(task, "template_for", None)
    if contract.prompt is not None or template_for is None:
        return contract
    template = template_for(records, convention)
    return dataclasses.replace(contract, prompt=template) if template else contract


def make_frame_fn(convention: str, processor: Any) -> Callable[[Any], Any]:
    """record -> `vrft.boxes.Frame` of its image for this model (the coordinates rewards compare in);
    one per image (a list) for an ``images`` record (`vrft.tasks.base.record_frame`)."""
    from vrft.models.load import frame_for
    from vrft.tasks.base import record_frame

    def frame_fn(record: Any):
        return record_frame(record, lambda w, h: frame_for(w, h, convention, processor))

    return frame_fn


# ------------------------------------------------------------------------------------------- rewards
def reward_functions(cfg: VrftConfig, task: str) -> tuple[list[tuple[str, Callable]], list[float]]:
    """[(name, fn)] and weights: the task's preset rewards, re-weighted, plus external ones.

    The preset's format reward follows `data.answer_format` (`vrft.rewards.preset_for_format`);
    `rewards.weights` overrides (or adds) weights by reward name (`vrft.rewards.rewards_for`);
    `rewards.extra` adds 'package.module:function' rewards (weight 1 unless `weights` names them by the
    full string or the function name).
    """
    from vrft.rewards import REWARDS, rewards_for

    registered = {k: v for k, v in cfg.rewards.weights.items() if k in REWARDS}
    fns, weights = rewards_for(task, cfg.rewards.preset, registered, answer_format=cfg.data.answer_format)
    pairs = [(_reward_name(fn), fn) for fn in fns]
    weights = [float(w) for w in weights]
    names = [n for n, _ in pairs]
    for spec in cfg.rewards.extra:
        fn = resolve_reward(spec)
        name = getattr(fn, "__name__", spec.rpartition(":")[2])
        weight = cfg.rewards.weights.get(spec, cfg.rewards.weights.get(name, 1.0))
        if name in names:
            raise ConfigError(f"rewards.extra: '{spec}' has the same name as another reward ('{name}')")
        pairs.append((name, fn))
        weights.append(float(weight))
        names.append(name)
    return pairs, weights


def _reward_name(fn: Callable) -> str:
    from vrft.rewards import REWARDS

    for name, registered in REWARDS.items():
        if registered is fn:
            return name
    return getattr(fn, "__name__", type(fn).__name__)


# --------------------------------------------------------------------------------------------- model
def load_policy(cfg: VrftConfig, weights_dtype: str, checkpoint: str | None = None):
    """(model, processor, coordinate convention) from the config's local model directory.

    When resuming full fine-tuning, the weights come from the checkpoint (see `resume_weights`); the
    model still names the ORIGINAL directory (`config.name_or_path`), where TRL loads the reference from.
    """
    from vrft.models.load import check_processor, convention_for, load_model_and_processor

    source = resume_weights(checkpoint) or cfg.model.path
    budget = _has_pixel_budget(cfg.model.path)
    model, processor = load_model_and_processor(
        source,
        dtype=weights_dtype,
        min_pixels=cfg.model.min_pixels if budget else None,
        max_pixels=cfg.model.max_pixels if budget else None,
        attn_implementation=cfg.model.attn_implementation,
    )
    check_processor(processor)
    if source != cfg.model.path:
        model.config.name_or_path = str(cfg.model.path)
        logger.info(
            "resuming: loaded the weights of %s (transformers' Trainer cannot map the saved keys of models "
            "with a checkpoint conversion, huggingface/transformers#43701; a 'missing keys' warning from its "
            "own reload is then expected and harmless)",
            source,
        )
    convention = convention_for(model.config, cfg.model.coordinate_convention)
    return model, processor, convention


def _has_pixel_budget(path: str) -> bool:
    """Whether the model family resizes images to a min/max pixel budget (Qwen-VL families)."""
    import json

    from vrft.models.families import FAMILIES

    try:
        model_type = json.loads((Path(path) / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError):
        return True  # let the loader report the problem
    family = FAMILIES.get(model_type or "")
    return family is None or family.pixel_budget


def vision_module_names(model: Any) -> list[str]:
    """Qualified names of the vision encoder module(s) of a VLM (e.g. ['model.visual'])."""
    found = []
    for name, _ in model.named_modules():
        last = name.rsplit(".", 1)[-1]
        if last in VISION_MODULE_NAMES and not any(name.startswith(f + ".") for f in found):
            found.append(name)
    return found


def freeze_vision(model: Any) -> int:
    """Freeze the vision encoder (for Qwen-VL including its patch merger); returns parameters frozen."""
    names = vision_module_names(model)
    if not names:
        raise ConfigError(
            f"model.freeze_vision: no vision encoder found in {type(model).__name__} "
            f"(looked for modules named {', '.join(VISION_MODULE_NAMES)})"
        )
    n = 0
    for name in names:
        for p in model.get_submodule(name).parameters():
            p.requires_grad_(False)
            n += p.numel()
    return n


def lora_config(cfg: VrftConfig, model: Any):
    """peft LoraConfig for the model (vision tower excluded unless `model.lora.include_vision`), or None."""
    lora = cfg.model.lora
    if not lora.enabled:
        return None
    from peft import LoraConfig

    exclude = None
    if not lora.include_vision:
        vision = vision_module_names(model)
        if vision:
            exclude = r"^(" + "|".join(re.escape(v) for v in vision) + r")(\..*)?$"
    from vrft.train.preflight import lora_target_problem

    problem = lora_target_problem(model, lora.target_modules, include_vision=lora.include_vision)
    if problem:  # preflight checks it on a weightless model where it can; this is the last word
        raise ConfigError(f"model.lora.target_modules: {problem}")
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        exclude_modules=exclude,
        task_type="CAUSAL_LM",
    )


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total
