"""Evaluation: batched generation, the paper's metrics (COCO / LVIS AP, accuracy, IoU), counting, OCR,
temporal grounding (R@t, mIoU) and multi-image grounding (image accuracy, acc@0.5, mIoU) metrics,
protocols.

Evaluators follow a reset / process / evaluate protocol; metrics come from the standard libraries
(pycocotools, the LVIS API), and completions are parsed by the same parser as the rewards.
See docs/evaluation.md.
"""

from vrft.evaluate.base import set_answer_format
from vrft.evaluate.classification import ClassificationEvaluator
from vrft.evaluate.counting import CountingEvaluator
from vrft.evaluate.detection import DetectionEvaluator
from vrft.evaluate.grounding import GroundingEvaluator
from vrft.evaluate.multi_image import MultiImageGroundingEvaluator
from vrft.evaluate.ocr import OCREvaluator
from vrft.evaluate.pipeline import evaluate_model, score_predictions, write_outputs
from vrft.evaluate.protocols import PROTOCOLS, detection_setup
from vrft.evaluate.temporal import TemporalGroundingEvaluator

__all__ = [
    "PROTOCOLS",
    "ClassificationEvaluator",
    "CountingEvaluator",
    "DetectionEvaluator",
    "GroundingEvaluator",
    "MultiImageGroundingEvaluator",
    "OCREvaluator",
    "TemporalGroundingEvaluator",
    "detection_setup",
    "evaluate_model",
    "score_predictions",
    "set_answer_format",
    "write_outputs",
]
