"""From a `VrftConfig` to the pieces a TRL trainer takes: records, rewards, model, precision, batches.

Only this module (and the CLI) reads config objects; everything it calls takes plain arguments.
Order matters for large runs and is kept by `grpo.run_grpo` / `sft.run_sft`: check the config and the
world size, build the TRL arguments (so DeepSpeed ZeRO-3 can partition the weights at load time),
then load the model.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vrft.config import VrftConfig, resolve_reward
from vrft.errors import ConfigError, UserError

logger = logging.getLogger(__name__)

# Attribute names under which Hugging Face VLMs keep their vision encoder (first match, shallowest).
VISION_MODULE_NAMES = ("visual", "vision_tower", "vision_model", "vision_encoder", "image_encoder")


# ------------------------------------------------------------------------------------------ processes
def world_size() -> int:
    """Number of training processes (torchrun / accelerate set WORLD_SIZE; 1 otherwise)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """Rank 0 (or a single process)."""
    return int(os.environ.get("RANK", "0")) == 0


def quiet_other_ranks() -> bool:
    """Log INFO on rank 0 only (other ranks keep warnings and errors); returns whether this is rank 0."""
    main = is_main_process()
    if not main:
        for name in ("vrft", "transformers", "trl"):
            logging.getLogger(name).setLevel(logging.WARNING)
    return main


def gradient_accumulation(prompts_per_step: int, per_device_prompts: int, processes: int) -> int:
    """Micro-steps per optimizer step so that `prompts_per_step` prompts are seen per step, all devices together.

    Raises ConfigError if the prompts do not split evenly over processes x per-device batches.
    """
    per_pass = per_device_prompts * processes
    if prompts_per_step % per_pass:
        raise ConfigError(
            f"grpo.prompts_per_step ({prompts_per_step}) must be a multiple of grpo.per_device_prompts "
            f"({per_device_prompts}) x the number of processes ({processes}) = {per_pass}; "
            f"e.g. grpo.prompts_per_step={max(per_pass, prompts_per_step // per_pass * per_pass)}"
        )
    return prompts_per_step // per_pass


# ------------------------------------------------------------------------------------------ precision
@dataclass(frozen=True)
class Precision:
    """weights: dtype the weights are loaded in; bf16 / fp16: mixed-precision autocast; use_cpu: no accelerator."""

    weights: str
    bf16: bool
    fp16: bool
    use_cpu: bool


def resolve_precision(dtype: str, precision: str, lora: bool) -> Precision:
    """Pick weight dtype and autocast for the hardware (bf16 where the GPU has it, fp32 on CPU).

    Full fine-tuning keeps float32 master weights by default: AdamW steps of ~1e-6 (the paper's
    learning rate) vanish in bfloat16 weights. A frozen LoRA base is loaded in bf16 to save memory.
    """
    import torch

    cuda = torch.cuda.is_available()
    bf16_ok = cuda and torch.cuda.is_bf16_supported()
    if precision == "auto":
        precision = "bf16" if bf16_ok else "fp32"
    if precision == "fp16" and not cuda:
        raise ConfigError("model.precision: fp16 needs a CUDA GPU; use 'auto' or 'fp32' on CPU")
    if precision == "bf16" and cuda and not bf16_ok:
        raise ConfigError("model.precision: this GPU has no bfloat16; use 'fp16' or 'fp32'")
    if dtype == "auto":
        dtype = "bfloat16" if (lora and precision == "bf16") else "float32"
    return Precision(weights=dtype, bf16=precision == "bf16", fp16=precision == "fp16", use_cpu=not cuda)


def shared_trainer_args(cfg: VrftConfig, precision: Precision) -> dict[str, Any]:
    """The Trainer arguments GRPO and SFT set alike: precision, checkpointing, logging and saving."""
    o = cfg.output
    return {
        "bf16": precision.bf16,
        "fp16": precision.fp16,
        "use_cpu": precision.use_cpu,
        "activation_checkpointing": cfg.model.gradient_checkpointing,
        "logging_steps": o.logging_steps,
        "save_strategy": "steps" if o.save_steps else "no",
        "save_steps": o.save_steps or 500,
        "save_total_limit": o.save_total_limit,
        "report_to": o.report_to or "none",
        "remove_unused_columns": False,
        "dataloader_num_workers": 0,
    }


# -------------------------------------------------------------------------------------------- outputs
TRAINING_OUTPUTS = ("final", "adapter", "checkpoint-*", "metrics.jsonl", "samples.jsonl", "samples.html",
                    "config.resolved.yaml", "rank_checksums", "README.md")  # fmt: skip
"""What a training run writes into its output directory (README.md: TRL's model card, beside the
checkpoints, which vrft's contract section is added to; also runs/ with TensorBoard): the run
directory's manifest lists these."""


def run_inputs(cfg: VrftConfig) -> list[str]:
    """The paths a training run reads: its output directory may not be or hold one of them."""
    return [p for p in (cfg.model.path, cfg.data.train, cfg.data.eval) if p]


def prepare_output_dir(
    out: str | Path,
    resume: bool | str,
    overwrite: bool = False,
    *,
    inputs: Sequence[Any] = (),
    owner: str = "train",
    report_to: Sequence[str] = (),
) -> tuple[Path, str | None]:
    """Check, lock and prepare the output directory; resolve what to resume from.

    Returns (directory, checkpoint path or None). The directory is checked first (a file, an unwritable
    place, or one that is or holds an input (`inputs`: model, data) is refused), then locked for this
    run (released by `release_output_dir` or when the process ends) and its manifest records what the
    run writes (`TRAINING_OUTPUTS`). A directory holding an earlier run (checkpoints, a final model or
    its metrics.jsonl) is only reused to resume it, or emptied of THAT RUN's files with `overwrite`:
    files vrft did not write are never deleted, and never overwritten (the run is refused). Resume
    picks the last COMPLETE checkpoint (`checkpoint_problem`), skipping (and removing) half-written ones.
    """
    from vrft import outputs

    out = Path(out)
    names = list(TRAINING_OUTPUTS)
    if "tensorboard" in (report_to or ()):
        names.append("runs")
    existing_ckpts = [str(p.name) for p in _checkpoints(out)]
    outputs.check_dir_output(
        out, option="output.dir", inputs=inputs,
        writes=[n for n in names if "*" not in n] + existing_ckpts, foreign=False,
    )  # fmt: skip
    main = is_main_process()
    d = outputs.OutputDir(out, owner, option="output.dir", lock=main).open()
    try:
        if not d.entries and (out / "config.resolved.yaml").is_file():
            # a run directory of a vrft version without manifests: its training files are vrft's
            d.entries.update({n: owner for n in names})
        foreign = d.foreign(names)
        if foreign:
            raise UserError(
                f"output.dir {out} holds {', '.join(foreign[:5])}, which vrft did not write; a run writes "
                f"{', '.join(names)} there and never overwrites files that are not its own: move them or "
                "choose another output.dir"
            )
        checkpoint = _resolve_checkpoint(out, resume, clean=main)
        if checkpoint is None and not resume:
            earlier = [n for n in ("final", "metrics.jsonl") if (out / n).exists()] + existing_ckpts
            if earlier and overwrite:
                if main:
                    removed = d.clean("train", "sft")
                    logger.warning(
                        "output.overwrite: removed the earlier run's files in %s (%s); nothing else",
                        out, ", ".join(sorted(p.name for p in removed)) or "none",
                    )  # fmt: skip
            elif earlier:
                raise UserError(
                    f"{out} already holds an earlier run ({', '.join(earlier[:3])}); resume it with "
                    "output.resume=true (or --resume), replace it with output.overwrite=true (removes only "
                    "that run's files), or choose another output.dir"
                )
        if main:
            d.claim(names)
    except BaseException:
        d.close()
        raise
    return out, checkpoint


def release_output_dir(out: str | Path) -> None:
    """Release the lock `prepare_output_dir` took (the end of a run)."""
    from vrft import outputs

    outputs.release_lock(out)


def _checkpoints(out: Path) -> list[Path]:
    """`checkpoint-<step>` folders of `out`, newest first."""
    if not out.is_dir():
        return []
    found = [p for p in out.iterdir() if p.is_dir() and re.fullmatch(r"checkpoint-\d+", p.name)]
    return sorted(found, key=checkpoint_step, reverse=True)


def _resolve_checkpoint(out: Path, resume: bool | str, *, clean: bool) -> str | None:
    if isinstance(resume, str) and resume:
        ckpt = Path(resume)
        if not ckpt.is_dir():
            raise ConfigError(f"output.resume: checkpoint directory not found: {ckpt}")
        problem = checkpoint_problem(ckpt)
        if problem:
            raise ConfigError(
                f"output.resume: {ckpt} is not a complete checkpoint ({problem}); give an earlier one, "
                "or output.resume=true to take the last complete checkpoint"
            )
        return str(ckpt)
    if not resume:
        return None
    for ckpt in _checkpoints(out):
        problem = checkpoint_problem(ckpt)
        if problem is None:
            logger.info("resuming from %s (step %d)", ckpt, checkpoint_step(str(ckpt)))
            return str(ckpt)
        logger.warning("resume: skipping %s, an incomplete checkpoint (%s)", ckpt, problem)
        if clean:  # vrft's own half-written save; a later save of that step would be mixed into it
            import shutil

            shutil.rmtree(ckpt, ignore_errors=True)
    logger.warning("output.resume is set but %s has no complete checkpoint yet: starting from scratch", out)
    return None


def checkpoint_problem(ckpt: str | Path) -> str | None:
    """Why `ckpt` is not a complete Trainer checkpoint, or None if it is.

    Complete: `trainer_state.json` (the Trainer writes it LAST) parses and names the folder's step, and
    the weights are there: full safetensors (single file or every shard of the index, each with a
    readable header and as many bytes as the header promises), a LoRA adapter, a .bin, or a DeepSpeed /
    FSDP state folder.
    """
    import json

    ckpt = Path(ckpt)
    state = ckpt / "trainer_state.json"
    if not state.is_file():
        return "no trainer_state.json, which the Trainer writes last: the save was interrupted"
    try:
        step = json.loads(state.read_text(encoding="utf-8")).get("global_step")
    except (OSError, ValueError, AttributeError) as err:
        return f"trainer_state.json is unreadable ({err})"
    expected = checkpoint_step(str(ckpt))
    if re.search(r"checkpoint-\d+$", ckpt.name) and step != expected:
        return f"trainer_state.json says step {step}, the folder name {expected}"
    for single in ("model.safetensors", "adapter_model.safetensors"):
        if (ckpt / single).is_file():
            return _safetensors_problem(ckpt / single)
    index = ckpt / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            return f"{index.name} is unreadable ({err})"
        for shard in shards:
            if not (ckpt / shard).is_file():
                return f"weight shard {shard} is missing"
            problem = _safetensors_problem(ckpt / shard)
            if problem:
                return problem
        return None
    if any(
        (ckpt / n).is_file() and (ckpt / n).stat().st_size > 0
        for n in ("pytorch_model.bin", "adapter_model.bin")
    ):
        return None
    if any(p.is_dir() for p in ckpt.glob("global_step*")) or any(ckpt.glob("pytorch_model_fsdp*")):
        return None
    return "no model weights (model.safetensors, an index with its shards, or an adapter)"


def _safetensors_problem(path: Path) -> str | None:
    import json
    import struct

    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return f"{path.name} is truncated"
            (n,) = struct.unpack("<Q", head)
            if n > size - 8:
                return f"{path.name} is truncated (header)"
            header = json.loads(fh.read(n))
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    except (OSError, ValueError, KeyError, TypeError, IndexError, struct.error) as err:
        return f"{path.name} is unreadable ({err})"
    if size < 8 + n + end:
        return f"{path.name} is truncated ({size} of {8 + n + end} bytes)"
    return None


def checkpoint_step(checkpoint: str | None) -> int:
    """Global step of a `checkpoint-<step>` directory (0 for None)."""
    if checkpoint is None:
        return 0
    m = re.search(r"checkpoint-(\d+)$", str(Path(checkpoint)))
    return int(m.group(1)) if m else 0


# ---------------------------------------------------------------------------------------------- data
def training_records(cfg: VrftConfig) -> tuple[list[Any], str]:
    """The training records of the config's task (at most `data.max_samples`, a seeded subset)."""
    from vrft.data.records import load_records, sample_records

    records = load_records(cfg.data.train)
    task = cfg.data.task
    if task is None:
        tasks = sorted({r.task for r in records})
        if len(tasks) != 1:
            raise ConfigError(
                f"data.task: {cfg.data.train} holds tasks {tasks}; set data.task to one of them"
            )
        task = tasks[0]
    records = [r for r in records if r.task == task]
    if not records:
        raise ConfigError(f"data.train: {cfg.data.train} has no '{task}' records")
    records = sample_records(records, cfg.data.max_samples, cfg.data.seed)
    return with_answer_format(records, cfg.data.answer_format, "data.answer_format"), task


def with_answer_format(records: list[Any], answer_format: str, setting: str) -> list[Any]:
    """The records with ``answer_format`` set to the run's format (copies; the prompts, SFT targets and
    format reward follow it). A record that sets a DIFFERENT format is a ConfigError naming it: one run
    trains (and its model contract records) one format."""
    import dataclasses

    clash = [r for r in records if r.answer_format not in (None, answer_format)]
    if clash:
        where = ", ".join(f"{r.source or r.id} ({r.answer_format})" for r in clash[:5])
        raise ConfigError(
            f"{setting} is {answer_format!r} but {len(clash)} record(s) set another answer_format: {where}; "
            f"set {setting} to match the records, or remove answer_format from them"
        )
    return [dataclasses.replace(r, answer_format=answer_format) for r in records]


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
    """record -> `vrft.boxes.Frame` of its image for this model (the coordinates rewards compare in)."""
    from vrft.models.load import frame_for

    def frame_fn(record: Any):
        return frame_for(record.width, record.height, convention, processor)

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


def resume_weights(checkpoint: str | None) -> str | None:
    """The checkpoint directory if it holds full model weights in Hugging Face format, else None.

    transformers' Trainer reloads a resumed model with a plain `load_state_dict`, which misses every
    key of models whose saved names differ from their module names (Qwen-VL: `visual.*` on disk,
    `model.visual.*` in memory) and silently keeps the initial weights. Loading the checkpoint with
    `from_pretrained` applies the conversion. Adapter (LoRA), DeepSpeed and FSDP checkpoints are
    restored by the Trainer itself.
    """
    if checkpoint is None:
        return None
    ckpt = Path(checkpoint)
    if (ckpt / "model.safetensors").is_file() or (ckpt / "model.safetensors.index.json").is_file():
        return str(ckpt)
    return None


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
