"""Switch vrft's GRPO speed-ups on: shared-prefill rollouts, one vision encode per distinct image, and one
pass of each shared prompt prefix through the language model in the log-prob passes.

`run_grpo` calls these two functions around `GRPOTrainer(...)` (docs/speed.md):

    rollout = speed.shared_prefill_rollout(model, cfg.grpo.shared_prefill, use_vllm=cfg.grpo.use_vllm)
    with speed.quiet_rollout_warning():
        trainer = GRPOTrainer(..., rollout_func=rollout)
    speed.dedup_vision(trainer, cfg.grpo.dedup_images)
    speed.share_prompt_prefix(trainer, cfg.grpo.share_prompt_prefix)

Each logs one line saying whether it is on, off by config, or not supported for the model family (then
TRL's own path runs unchanged).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from vrft.train.prefix_share import TEXT_MODELS, PrefixShare, install_prefix_share
from vrft.train.rollout import SHARED_PREFILL_FAMILIES, SharedPrefillRollout
from vrft.train.vision_dedup import VISION_LAYOUTS, VisionDedup, install_vision_dedup

logger = logging.getLogger(__name__)


def _model_type(model: Any) -> str | None:
    from vrft.train.vision_dedup import _unwrap

    return getattr(getattr(_unwrap(model), "config", None), "model_type", None)


def shared_prefill_rollout(
    model: Any, enabled: bool, *, use_vllm: bool = False
) -> SharedPrefillRollout | None:
    """The `rollout_func` to give `GRPOTrainer`, or None (TRL's own generation) with a one-line log why."""
    model_type = _model_type(model)
    if not enabled:
        logger.info(
            "speed: shared prefill off (grpo.shared_prefill=false): TRL generates each of the G copies"
        )
        return None
    if use_vllm:
        logger.info("speed: shared prefill not used with vLLM (vLLM shares prompt prefixes itself)")
        return None
    if model_type not in SHARED_PREFILL_FAMILIES:
        logger.info(
            "speed: shared prefill not supported for model_type %r (supported: %s): TRL's generation is used",
            model_type, ", ".join(SHARED_PREFILL_FAMILIES),
        )  # fmt: skip
        return None
    logger.info(
        "speed: shared prefill on (%s): one processor call and one prefill per distinct prompt", model_type
    )
    return SharedPrefillRollout()


@contextmanager
def quiet_rollout_warning() -> Iterator[None]:
    """Silence TRL's 'rollout_func is experimental' UserWarning for the block (vrft pins and tests TRL)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*rollout_func.*experimental.*", category=UserWarning)
        yield


def dedup_vision(trainer: Any, enabled: bool) -> list[VisionDedup]:
    """Install `VisionDedup` on the policy's vision tower (and the reference model's); returns the hooks."""
    model_type = _model_type(trainer.model)
    if not enabled:
        logger.info("speed: image de-duplication off (grpo.dedup_images=false): the tower encodes G copies")
        return []
    installed = []
    for model in (trainer.model, getattr(trainer, "ref_model", None)):
        if model is None:
            continue
        hook = install_vision_dedup(model)
        if hook is not None:
            installed.append(hook)
    if not installed:
        logger.info(
            "speed: image de-duplication not supported for model_type %r (supported: %s): every copy is encoded",
            model_type, ", ".join(VISION_LAYOUTS),
        )  # fmt: skip
    else:
        logger.info(
            "speed: image de-duplication on (%s): one vision encode per distinct image per pass", model_type
        )
    return installed


def share_prompt_prefix(trainer: Any, enabled: bool) -> list[PrefixShare]:
    """Install `PrefixShare` on the policy's decoder (and the reference model's); returns the hooks."""
    model_type = _model_type(trainer.model)
    if not enabled:
        logger.info("speed: prompt-prefix sharing off (grpo.share_prompt_prefix=false): G copies per pass")
        return []
    installed = []
    for model in (trainer.model, getattr(trainer, "ref_model", None)):
        if model is None:
            continue
        hook = install_prefix_share(model)
        if hook is not None:
            installed.append(hook)
    if not installed:
        logger.info(
            "speed: prompt-prefix sharing not supported for model_type %r (supported: %s): G copies per pass",
            model_type, ", ".join(TEXT_MODELS),
        )  # fmt: skip
    else:
        logger.info(
            "speed: prompt-prefix sharing on (%s): each prompt prefix once per log-prob pass", model_type
        )
    return installed
