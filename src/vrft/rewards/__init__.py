"""Verifiable rewards with TRL's calling convention ``fn(completions, **columns) -> list[float]``.

Every reward is finite and within its documented range for any input; malformed output scores 0.
Columns read: ``gt_boxes`` (boxes in the model's coordinate convention; [] = No Objects),
``gt_label``, ``gt_aliases``. Each function's ``__name__`` equals its key in :data:`REWARDS` (TRL logs
``rewards/<name>``). See docs/rewards.md for the presets and the reference defects fixed.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Mapping

from vrft.errors import ConfigError
from vrft.rewards.classification import (
    classification_exact,
    classification_substring,
    parse_fail_classification,
)
from vrft.rewards.detection import detection_confidence, detection_iou, parse_fail_detection
from vrft.rewards.format import format_nonempty_think, format_reward, format_strict
from vrft.rewards.grounding import grounding_giou, grounding_giou_plus1, grounding_iou, parse_fail_grounding

RewardFn = Callable[..., list]

# name -> function (range). A literal dict: greppable, no side effects.
REWARDS: dict[str, RewardFn] = {
    "format": format_reward,  # {0, 1}, whitespace around the completion allowed
    "format_strict": format_strict,  # {0, 1}, the reference's full match
    "format_nonempty_think": format_nonempty_think,  # {0, 1}, format + non-blank think
    "detection_iou": detection_iou,  # [0, 1]
    "detection_confidence": detection_confidence,  # [0, 1]
    "parse_fail_detection": parse_fail_detection,  # {0, 1} diagnostic
    "classification_exact": classification_exact,  # {0, 1}
    "classification_substring": classification_substring,  # {0, 1}, the reference's rule
    "parse_fail_classification": parse_fail_classification,  # {0, 1} diagnostic
    "grounding_iou": grounding_iou,  # [0, 1]
    "grounding_giou": grounding_giou,  # [0, 1] = (GIoU + 1) / 2
    "grounding_giou_plus1": grounding_giou_plus1,  # [0, 2], the reference's LISA reward
    "parse_fail_grounding": parse_fail_grounding,  # {0, 1} diagnostic
}

# preset -> task -> {reward name: weight}. Weight 0 = logged by TRL, not trained on.
PRESETS: dict[str, dict[str, dict[str, float]]] = {
    "default": {
        "detection": {
            "format": 1.0,
            "detection_iou": 1.0,
            "detection_confidence": 1.0,
            "parse_fail_detection": 0.0,
        },
        "classification": {"format": 1.0, "classification_exact": 1.0, "parse_fail_classification": 0.0},
        "grounding": {"format": 1.0, "grounding_iou": 1.0, "parse_fail_grounding": 0.0},
    },
    "visual-rft": {
        "detection": {
            "format_strict": 1.0,
            "detection_iou": 1.0,
            "detection_confidence": 1.0,
            "parse_fail_detection": 0.0,
        },
        "classification": {
            "format_strict": 1.0,
            "classification_substring": 1.0,
            "parse_fail_classification": 0.0,
        },
        "grounding": {"format_strict": 1.0, "grounding_giou_plus1": 1.0, "parse_fail_grounding": 0.0},
    },
}


def get_reward(name: str) -> RewardFn:
    """A reward by registry name, or an external one written ``package.module:function``."""
    if name in REWARDS:
        return REWARDS[name]
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            fn = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as err:
            raise ConfigError(f"reward {name!r}: cannot import {attr!r} from {module!r} ({err})") from err
        if not callable(fn):
            raise ConfigError(f"reward {name!r} is not callable")
        return fn
    close = difflib.get_close_matches(name, REWARDS, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigError(
        f"unknown reward {name!r}{hint} Known rewards: {', '.join(REWARDS)} (or write package.module:function)"
    )


def rewards_for(
    task: str, preset: str = "default", weights: Mapping[str, float] | None = None
) -> tuple[list[RewardFn], list[float]]:
    """The reward functions and weights of ``task`` under ``preset``, in a stable order.

    ``weights`` overrides preset weights and adds rewards (e.g. ``{"format": 0,
    "format_nonempty_think": 1}``); a weight of 0 keeps the reward as a logged diagnostic.
    """
    if preset not in PRESETS:
        raise ConfigError(f"unknown reward preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if task not in PRESETS[preset]:
        raise ConfigError(f"no rewards for task {task!r}; tasks: {', '.join(PRESETS[preset])}")
    merged = dict(PRESETS[preset][task])
    for name, w in (weights or {}).items():
        try:
            merged[name] = float(w)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"reward weight for {name!r} must be a number, got {w!r}") from err
    fns = [get_reward(name) for name in merged]
    return fns, list(merged.values())


__all__ = ["PRESETS", "REWARDS", "get_reward", "rewards_for"]
