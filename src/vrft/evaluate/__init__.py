"""Evaluation: batched generation, the paper's metrics (COCO / LVIS AP, accuracy, IoU), protocols.

Evaluators follow a reset / process / evaluate protocol; metrics come from the standard libraries
(pycocotools, the LVIS API), and completions are parsed by the same parser as the rewards.
See docs/evaluation.md.
"""

from vrft.evaluate.classification import ClassificationEvaluator
from vrft.evaluate.detection import DetectionEvaluator
from vrft.evaluate.grounding import GroundingEvaluator
from vrft.evaluate.pipeline import evaluate_model, score_predictions, write_outputs
from vrft.evaluate.protocols import PROTOCOLS, detection_setup

__all__ = [
    "PROTOCOLS",
    "ClassificationEvaluator",
    "DetectionEvaluator",
    "GroundingEvaluator",
    "detection_setup",
    "evaluate_model",
    "score_predictions",
    "write_outputs",
]
