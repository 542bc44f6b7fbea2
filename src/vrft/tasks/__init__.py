"""Tasks: prompt, SFT answer text, reward columns and parsing per task (see docs/DESIGN.md "Tasks").

Each task object has ``name``, ``max_new_tokens`` (evaluation default), ``prompt(record, frame=None)``,
``answer(record, frame)`` (the correct answer, the text inside ``<answer>``; e.g. to build honest
completions), ``answer_text(record, frame)`` (the SFT target, in the record's answer format),
``reward_columns(record, frame)`` and
``parse(text, frame=None, *, require_tags=True) -> Prediction``. ``multi_image_grounding`` takes one
frame per image (a list) as ``frame``; ``temporal_grounding`` ignores it (seconds, no coordinates).
"""

from __future__ import annotations

from vrft.tasks.base import Prediction
from vrft.tasks.classification import ClassificationTask
from vrft.tasks.counting import CountingTask
from vrft.tasks.detection import DetectionTask
from vrft.tasks.grounding import GroundingTask
from vrft.tasks.multi_image_grounding import MultiImageGroundingTask
from vrft.tasks.ocr import OCRTask
from vrft.tasks.temporal_grounding import TemporalGroundingTask

TASKS = {
    "detection": DetectionTask(),
    "classification": ClassificationTask(),
    "grounding": GroundingTask(),
    "counting": CountingTask(),
    "ocr": OCRTask(),
    "temporal_grounding": TemporalGroundingTask(),
    "multi_image_grounding": MultiImageGroundingTask(),
}

PROMPT_STYLES = ("vrft", "visual-rft")
"""``vrft``: the task's own templates (the default); ``visual-rft``: the reference implementation's
texts byte for byte (`vrft.tasks.reference`)."""


def task_for(name: str, style: str = "vrft", phase: str = "train"):
    """The task object `name` with the prompt texts of `style` for `phase` (``train`` or ``eval``; the
    reference's texts differ between its training and its inference scripts)."""
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    if style == "vrft":
        return TASKS[name]
    if style == "visual-rft":
        from vrft.tasks.reference import REFERENCE_TASKS

        # tasks the reference does not have (counting, ocr, temporal / multi-image grounding) keep vrft's own texts
        return REFERENCE_TASKS[name](phase) if name in REFERENCE_TASKS else TASKS[name]
    raise ValueError(f"unknown prompt style {style!r}; use one of {', '.join(PROMPT_STYLES)}")


__all__ = [
    "PROMPT_STYLES",
    "TASKS",
    "task_for",
    "ClassificationTask",
    "CountingTask",
    "DetectionTask",
    "GroundingTask",
    "MultiImageGroundingTask",
    "OCRTask",
    "Prediction",
    "TemporalGroundingTask",
]
