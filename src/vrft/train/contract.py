"""Saving the trained model's contract (``vrft.json``, see `vrft.models.contract`) beside its weights.

`training_contract` builds it from what training actually used (the records' shared prompt template,
the resolved coordinate convention, the processor's pixel budget); `ContractWriter` writes it into
every ``checkpoint-<step>`` directory as it is saved, and `save_contract` into ``final/`` (and the
LoRA ``adapter/``), mentioning it in a model card (README.md) found there or in the run directory.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from vrft.models.contract import ModelContract, mention_in_card, shared_prompt, write_contract

logger = logging.getLogger(__name__)


def training_contract(
    task: str,
    records: Sequence[Any],
    convention: str,
    processor: Any,
    answer_format: str = "think",
    model_cfg: Any = None,
    tools: dict[str, Any] | None = None,
) -> ModelContract:
    """The contract of a model trained on `records` of `task` with this processor and convention;
    the many-image / video budgets (`vrft.models.contract.MEDIA_BUDGETS`) from `model_cfg` (the
    config's `model` section) when given; `tools`: the tools offered (`contract_tools`), None without."""
    from vrft.models.contract import MEDIA_BUDGETS
    from vrft.models.load import pixel_budget

    budget = pixel_budget(processor)
    return ModelContract(
        task=task,
        prompt=shared_prompt(records),
        answer_format=answer_format,
        coordinate_convention=convention,
        min_pixels=int(budget[0]) if budget and budget[0] is not None else None,
        max_pixels=int(budget[1]) if budget and budget[1] is not None else None,
        **({name: getattr(model_cfg, name, None) for name in MEDIA_BUDGETS} if model_cfg is not None else {}),
        tools=tools,
    )


class ContractWriter(TrainerCallback):
    """Writes ``vrft.json`` into each checkpoint directory right after the Trainer saved it."""

    def __init__(self, contract: ModelContract, is_main: bool = True) -> None:
        self.contract = contract
        self.is_main = is_main

    def on_save(self, args, state, control, **kwargs):
        if not self.is_main:
            return
        ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if ckpt.is_dir():
            write_contract(ckpt, self.contract)


def save_contract(run_dir: Path, contract: ModelContract, is_main: bool = True) -> None:
    """``vrft.json`` into ``final/`` and ``adapter/`` (when present); the run's model card mentions it."""
    if not is_main:
        return
    for name in ("final", "adapter"):
        d = Path(run_dir) / name
        if d.is_dir():
            write_contract(d, contract)
    mention_in_card(Path(run_dir) / "README.md", contract)
    logger.info(
        "saved how to ask the model (%s: task=%s, prompt=%s, coordinates=%s) in %s",
        "vrft.json", contract.task, contract.prompt or "the task's default", contract.coordinate_convention,
        Path(run_dir) / "final" / "vrft.json",
    )  # fmt: skip


def contract_tools(tools_cfg: Any, model_max_pixels: int) -> dict[str, Any] | None:
    """The ``tools`` field of the contract of a run (None when `tools.enabled` is off)."""
    if not tools_cfg.enabled:
        return None
    return {
        "names": list(tools_cfg.names),
        "max_calls": tools_cfg.max_calls,
        "max_images": tools_cfg.max_images,
        "max_pixels": tools_cfg.max_pixels or model_max_pixels,
    }
