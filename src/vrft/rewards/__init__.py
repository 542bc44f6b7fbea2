"""Verifiable rewards with TRL's calling convention ``fn(completions, **columns) -> list[float]``.

Every reward is finite and within its documented range for any input; malformed output scores 0.
Columns read: ``gt_boxes`` (boxes in the model's coordinate convention; [] = No Objects; counting: the
objects counted; multi-image: the box in image ``gt_image``), ``gt_label``, ``gt_aliases``, ``gt_text``
(OCR), ``gt_window`` (temporal grounding: [S, E] seconds), ``gt_image`` and ``num_images`` (multi-image:
the 1-based target image and the image count). Each function's ``__name__`` equals
its key in :data:`REWARDS` (TRL logs ``rewards/<name>``). See docs/rewards.md for the presets, every
formula and the reference defects fixed.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping

from vrft.errors import ConfigError
from vrft.rewards.classification import (
    classification_exact,
    classification_substring,
    parse_fail_classification,
)
from vrft.rewards.counting import count_exact, count_points, count_relative, parse_fail_counting
from vrft.rewards.detection import detection_confidence, detection_iou, parse_fail_detection
from vrft.rewards.format import format_answer_only, format_nonempty_think, format_reward, format_strict
from vrft.rewards.grounding import grounding_giou, grounding_giou_plus1, grounding_iou, parse_fail_grounding
from vrft.rewards.hungarian import detection_confidence_hungarian, detection_f1, detection_iou_hungarian
from vrft.rewards.multi_image import multi_image_iou, parse_fail_multi_image_grounding
from vrft.rewards.ocr import ocr_exact, ocr_similarity, parse_fail_ocr
from vrft.rewards.temporal import parse_fail_temporal_grounding, temporal_iou
from vrft.rewards.tools import tool_bonus, tool_format

RewardFn = Callable[..., list]

# name -> function (range). A literal dict: greppable, no side effects.
REWARDS: dict[str, RewardFn] = {
    "format": format_reward,  # {0, 1}, whitespace around the completion allowed
    "format_strict": format_strict,  # {0, 1}, the reference's full match
    "format_nonempty_think": format_nonempty_think,  # {0, 1}, format + non-blank think
    "format_answer_only": format_answer_only,  # {0, 1}, exactly <answer>...</answer>, no think tag
    "detection_iou": detection_iou,  # [0, 1]
    "detection_confidence": detection_confidence,  # [0, 1]
    "detection_iou_hungarian": detection_iou_hungarian,  # [0, 1], Hungarian matching
    "detection_f1": detection_f1,  # [0, 1], Hungarian matching
    "detection_confidence_hungarian": detection_confidence_hungarian,  # [0, 1], Hungarian matching
    "parse_fail_detection": parse_fail_detection,  # {0, 1} diagnostic
    "classification_exact": classification_exact,  # {0, 1}
    "classification_substring": classification_substring,  # {0, 1}, the reference's rule
    "parse_fail_classification": parse_fail_classification,  # {0, 1} diagnostic
    "grounding_iou": grounding_iou,  # [0, 1]
    "grounding_giou": grounding_giou,  # [0, 1] = (GIoU + 1) / 2
    "grounding_giou_plus1": grounding_giou_plus1,  # [0, 2], the reference's LISA reward
    "parse_fail_grounding": parse_fail_grounding,  # {0, 1} diagnostic
    "count_exact": count_exact,  # {0, 1}
    "count_relative": count_relative,  # [0, 1]
    "count_points": count_points,  # [0, 1], point-in-box matching F1
    "parse_fail_counting": parse_fail_counting,  # {0, 1} diagnostic
    "ocr_similarity": ocr_similarity,  # [0, 1], 1 - normalised edit distance
    "ocr_exact": ocr_exact,  # {0, 1}
    "parse_fail_ocr": parse_fail_ocr,  # {0, 1} diagnostic
    "temporal_iou": temporal_iou,  # [0, 1], temporal IoU of [start, end] seconds
    "parse_fail_temporal_grounding": parse_fail_temporal_grounding,  # {0, 1} diagnostic
    "multi_image_iou": multi_image_iou,  # [0, 1], IoU when the image number is right, else 0
    "parse_fail_multi_image_grounding": parse_fail_multi_image_grounding,  # {0, 1} diagnostic
    "tool_format": tool_format,  # [0, 1], accepted calls / calls; 0 without a final answer turn (tools)
    "tool_bonus": tool_bonus,  # [0, 1], 1/calls when the answer reward > 0 and a call succeeded (tools)
}

THINK_FORMAT_REWARDS = ("format", "format_strict", "format_nonempty_think")
"""The rewards of the think format; answer-only mode scores `format_answer_only` instead."""
ANSWER_FORMATS = ("think", "answer_only")

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
        "counting": {"format": 1.0, "count_points": 1.0, "count_exact": 1.0, "parse_fail_counting": 0.0},
        "ocr": {"format": 1.0, "ocr_similarity": 1.0, "parse_fail_ocr": 0.0},
        "temporal_grounding": {"format": 1.0, "temporal_iou": 1.0, "parse_fail_temporal_grounding": 0.0},
        "multi_image_grounding": {
            "format": 1.0,
            "multi_image_iou": 1.0,
            "parse_fail_multi_image_grounding": 0.0,
        },
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
    # Perception-R1: Hungarian matching, point counting, edit similarity, no thinking.
    "perception": {
        "detection": {
            "format_answer_only": 1.0,
            "detection_iou_hungarian": 1.0,
            "detection_f1": 1.0,
            "detection_confidence_hungarian": 1.0,
            "parse_fail_detection": 0.0,
        },
        "classification": {
            "format_answer_only": 1.0,
            "classification_exact": 1.0,
            "parse_fail_classification": 0.0,
        },
        "grounding": {"format_answer_only": 1.0, "grounding_iou": 1.0, "parse_fail_grounding": 0.0},
        "counting": {
            "format_answer_only": 1.0,
            "count_points": 1.0,
            "count_exact": 1.0,
            "parse_fail_counting": 0.0,
        },
        "ocr": {"format_answer_only": 1.0, "ocr_similarity": 1.0, "parse_fail_ocr": 0.0},
        "temporal_grounding": {
            "format_answer_only": 1.0,
            "temporal_iou": 1.0,
            "parse_fail_temporal_grounding": 0.0,
        },
        "multi_image_grounding": {
            "format_answer_only": 1.0,
            "multi_image_iou": 1.0,
            "parse_fail_multi_image_grounding": 0.0,
        },
    },
}


def get_reward(name: str) -> RewardFn:
    """A reward by registry name, or an external one written ``package.module:function``."""
    if name in REWARDS:
        return REWARDS[name]
    if ":" in name:
        module, _, attr = name.partition(":")
        from vrft.inputs import import_user_module

        fn = getattr(import_user_module(module, f"reward {name!r}"), attr, None)
        if fn is None:
            raise ConfigError(f"reward {name!r}: module {module!r} has no {attr!r}")
        if not callable(fn):
            raise ConfigError(f"reward {name!r} is not callable")
        return fn
    close = difflib.get_close_matches(name, REWARDS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(
        f"unknown reward {name!r}{hint}. Known rewards: {', '.join(REWARDS)} (or write package.module:function)"
    )


def preset_for_format(rewards: Mapping[str, float], answer_format: str | None) -> dict[str, float]:
    """A preset's ``{reward: weight}`` with its format reward following ``answer_format``.

    ``"answer_only"``: the think-format rewards (``format``, ``format_strict``,
    ``format_nonempty_think``) are replaced, in place and with their weight, by ``format_answer_only``;
    ``"think"``: ``format_answer_only`` is replaced by ``format``; ``None``: unchanged (the preset as
    written). So one switch compares thinking with answering alone under the same task rewards.
    """
    if answer_format is None:
        return dict(rewards)
    if answer_format not in ANSWER_FORMATS:
        raise ConfigError(f"unknown answer format {answer_format!r}; use one of {', '.join(ANSWER_FORMATS)}")
    swap = THINK_FORMAT_REWARDS if answer_format == "answer_only" else ("format_answer_only",)
    target = "format_answer_only" if answer_format == "answer_only" else "format"
    out: dict[str, float] = {}
    for name, w in rewards.items():
        key = target if name in swap else name
        out.setdefault(key, w)
    return out


def rewards_for(
    task: str,
    preset: str = "default",
    weights: Mapping[str, float] | None = None,
    answer_format: str | None = None,
) -> tuple[list[RewardFn], list[float]]:
    """The reward functions and weights of ``task`` under ``preset``, in a stable order.

    ``answer_format`` (``"think"`` / ``"answer_only"``, None: the preset as written) swaps the preset's
    format reward (`preset_for_format`). ``weights`` then overrides preset weights and adds rewards
    (e.g. ``{"format": 0, "format_nonempty_think": 1}``); a weight of 0 keeps the reward as a logged
    diagnostic.
    """
    if preset not in PRESETS:
        raise ConfigError(f"unknown reward preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if task not in PRESETS[preset]:
        raise ConfigError(
            f"no rewards for task {task!r} in preset {preset!r}; tasks: {', '.join(PRESETS[preset])}"
        )
    merged = preset_for_format(PRESETS[preset][task], answer_format)
    for name, w in (weights or {}).items():
        try:
            merged[name] = float(w)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"reward weight for {name!r} must be a number, got {w!r}") from err
    fns = [get_reward(name) for name in merged]
    return fns, list(merged.values())


__all__ = ["ANSWER_FORMATS", "PRESETS", "REWARDS", "get_reward", "preset_for_format", "rewards_for"]
