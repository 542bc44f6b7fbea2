"""Hardware layout of a run: processes, ranks, gradient accumulation, precision, shared Trainer arguments.

Plain functions of plain arguments (and the environment: WORLD_SIZE / RANK, the CUDA devices);
`shared_trainer_args` is the only one that reads a config.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from vrft.errors import ConfigError

logger = logging.getLogger(__name__)


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


def shared_trainer_args(cfg: Any, precision: Precision) -> dict[str, Any]:
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
