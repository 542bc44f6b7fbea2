"""Tasks: prompt, SFT answer text, reward columns and parsing per task (see docs/DESIGN.md "Tasks").

Each task object has ``name``, ``max_new_tokens`` (evaluation default), ``prompt(record, frame=None)``,
``answer(record, frame)`` (the correct answer, the text inside ``<answer>``; e.g. to build honest
completions), ``answer_text(record, frame)`` (the SFT target, in the record's answer format),
``reward_columns(record, frame)`` and
``parse(text, frame=None, *, require_tags=True) -> Prediction``.
"""

from __future__ import annotations

from vrft.tasks.base import Prediction
from vrft.tasks.classification import ClassificationTask
from vrft.tasks.counting import CountingTask
from vrft.tasks.detection import DetectionTask
from vrft.tasks.grounding import GroundingTask
from vrft.tasks.ocr import OCRTask

TASKS = {
    "detection": DetectionTask(),
    "classification": ClassificationTask(),
    "grounding": GroundingTask(),
    "counting": CountingTask(),
    "ocr": OCRTask(),
}

__all__ = [
    "TASKS",
    "ClassificationTask",
    "CountingTask",
    "DetectionTask",
    "GroundingTask",
    "OCRTask",
    "Prediction",
]
