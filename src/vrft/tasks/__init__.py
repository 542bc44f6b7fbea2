"""Tasks: prompt, SFT answer text, reward columns and parsing per task (see docs/DESIGN.md "Tasks").

Each task object has ``name``, ``max_new_tokens`` (evaluation default), ``prompt(record, frame=None)``,
``answer_text(record, frame)``, ``reward_columns(record, frame)`` and
``parse(text, frame=None, *, require_tags=True) -> Prediction``.
"""

from __future__ import annotations

from vrft.tasks.base import Prediction
from vrft.tasks.classification import ClassificationTask
from vrft.tasks.detection import DetectionTask
from vrft.tasks.grounding import GroundingTask

TASKS = {
    "detection": DetectionTask(),
    "classification": ClassificationTask(),
    "grounding": GroundingTask(),
}

__all__ = ["TASKS", "ClassificationTask", "DetectionTask", "GroundingTask", "Prediction"]
