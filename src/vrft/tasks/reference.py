"""The reference implementation's prompt texts, byte for byte: prompt style ``visual-rft``.

Used by the ``visual-rft`` reward preset at training time (`vrft.train.builder.get_task`) and by
``vrft eval --paper`` (see docs/evaluation.md, "Paper reproduction mode"). Where the texts come from
(Liu-Zi-Yu/Visual-RFT, read for its facts; no code is taken from it):

- detection (COCO / LVIS) and classification: the questions of its inference scripts
  (``coco_evaluation/Qwen2_VL_coco_infere.py``, ``lvis_evaluation/Qwen2_VL_lvis_infere.py``,
  ``classification/Qwen2_VL_classification_infere.py``): newlines between the sentences, no space in
  "tags.The", ``<answer>species name</answer>`` for every classification dataset; at inference the
  user text is ``"<image>\\n" + question`` (phase ``eval``). Its training text is the ``problem``
  column of its published datasets, which its code does not contain; phase ``train`` uses the
  question without the ``<image>\\n`` line (the layout of that column as third-party dumps show it).
- LISA grounding: training ``QUESTION_TEMPLATE`` of ``src/virft/src/open_r1/grpo_lisa.py`` around
  "Output the bounding box in the image corresponding to the instruction: {instruction}" (the
  instruction verbatim); inference (``lisa_evaluation/Qwen2_VL_lisa_infere.py``): the same with a
  full stop after the instruction, the R1 system prompt, and 128 new tokens.

The texts speak of 0..1000 integers (Qwen2-VL, ``norm1000``); for a model with another coordinate
convention only the coordinate phrase changes (the reference has no text for those models).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from vrft.errors import UserError
from vrft.tasks.base import custom_prompt, is_answer_only, need
from vrft.tasks.classification import ClassificationTask, _article
from vrft.tasks.detection import COORDINATE_PHRASES, DetectionTask
from vrft.tasks.grounding import GroundingTask

if TYPE_CHECKING:
    from vrft.boxes import Frame
    from vrft.data.records import Record

PHASES = ("train", "eval")

IMAGE_LINE = "<image>\n"
"""What the reference's COCO / LVIS / classification inference puts before the question (a literal
text, after the image placeholder of the chat template)."""

_FORMAT = (
    "Output the thinking process in <think> </think> and final answer in <answer> </answer> tags."
    "The output answer format should be as follows:\n"
    "<think> ... </think> <answer>{answer}</answer>\n"
    "Please strictly follow the format."
)

DETECTION_QUESTION = (
    "Detect all objects belonging to the category '{category}' in the image, and provide the bounding "
    "boxes (between 0 and 1000, integer) and confidence (between 0 and 1, with two decimal places).\n"
    "If no object belonging to the category '{category}' in the image, return 'No Objects'.\n"
) + _FORMAT.replace("{answer}", "[{'Position': [x1, y1, x2, y2], 'Confidence': number}, ...]")

CLASSIFICATION_QUESTION = (
    "This is an image containing {article} {object}. Please identify the {attribute} of the {object} "
    "based on the image.\n"
) + _FORMAT.replace("{answer}", "species name")

LISA_TRAIN_PROMPT = (
    "Output the bounding box in the image corresponding to the instruction: {instruction} "
    "Output the thinking process in <think> </think> and your grouding box. "
    'Following "<think> thinking process </think>\n<answer>(x1,y1),(x2,y2)</answer>)" format.'
)
LISA_EVAL_PROMPT = (
    "Output the bounding box in the image corresponding to the instruction: {instruction}. "
    "Output the thinking process in <think> </think> and your grouding box. "
    'Following "<think> thinking process </think>\n<answer>(x1,y1),(x2,y2)</answer>)" format.'
)

R1_SYSTEM_PROMPT = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The assistant "
    "first thinks about the reasoning process in the mind and then provides the user with the answer. The reasoning "
    "process and answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, i.e., "
    "<think> reasoning process here </think><answer> answer here </answer>"
)
"""The system prompt of the reference's LISA inference (its COCO / LVIS / classification inference
and all its training runs use none)."""

LISA_EVAL_MAX_NEW_TOKENS = 128


def _fill(template: str, **values: str) -> str:
    """Plain replacement of ``{name}`` (the templates hold other braces: the answer format)."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


def _think_only(record: Record) -> None:
    if is_answer_only(record):
        raise UserError(
            f"{record.source or record.id}: the visual-rft prompt style (the reference's texts) asks for "
            "<think> ... </think> <answer> ... </answer>; an answer-only record needs vrft's own prompts "
            "(rewards.preset default / vrft eval without --paper)"
        )


class _ReferenceText:
    """What the reference-text tasks share: the phase ("train" | "eval"), the style name, and the
    preamble of `prompt` (a record's own prompt wins; answer-only records are refused)."""

    style = "visual-rft"

    def __init__(self, phase: str = "train") -> None:
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
        self.phase = phase

    def prompt(self, record: Record, frame: Frame | None = None) -> str:
        if custom_prompt(record):
            return custom_prompt(record)
        _think_only(record)
        return self._text(record, frame)

    def _text(self, record: Record, frame: Frame | None) -> str:
        raise NotImplementedError


class ReferenceDetectionTask(_ReferenceText, DetectionTask):
    """Detection with the reference's question text (phase ``eval``: after ``<image>\\n``)."""

    def _text(self, record: Record, frame: Frame | None) -> str:
        text = _fill(DETECTION_QUESTION, category=need(record, "category", record.category))
        convention = frame.convention if frame is not None else "norm1000"
        if convention != "norm1000":
            text = text.replace(COORDINATE_PHRASES["norm1000"], COORDINATE_PHRASES[convention])
        return IMAGE_LINE + text if self.phase == "eval" else text

    def template_for(self, records: Any, convention: str) -> str | None:
        """The text as a record-prompt template (``{category}``) for the model's ``vrft.json``."""
        return self.prompt(
            _placeholder("detection", category="{category}"), SimpleNamespace(convention=convention)
        )


class ReferenceClassificationTask(_ReferenceText, ClassificationTask):
    """Classification with the reference's text: newlines, "tags.The", ``species name`` always."""

    def _text(self, record: Record, frame: Frame | None) -> str:
        obj, attr = self.domain(record)
        text = _fill(CLASSIFICATION_QUESTION, article=_article(obj), object=obj, attribute=attr)
        return IMAGE_LINE + text if self.phase == "eval" else text

    def template_for(self, records: Any, convention: str) -> str | None:
        """The text for the model's ``vrft.json`` when every record has the same domain, else None."""
        domains = {self.domain(r) for r in records}
        return self.prompt(records[0]) if len(domains) == 1 else None


class ReferenceGroundingTask(_ReferenceText, GroundingTask):
    """LISA grounding with the reference's training / inference texts; at inference the R1 system
    prompt and a 128-token budget, as its LISA inference script."""

    def __init__(self, phase: str = "train") -> None:
        super().__init__(phase)
        if phase == "eval":
            self.system_prompt = R1_SYSTEM_PROMPT
            self.max_new_tokens = LISA_EVAL_MAX_NEW_TOKENS

    def _text(self, record: Record, frame: Frame | None) -> str:
        instruction = need(record, "expression", record.expression).strip()
        template = LISA_EVAL_PROMPT if self.phase == "eval" else LISA_TRAIN_PROMPT
        return _fill(template, instruction=instruction)

    def template_for(self, records: Any, convention: str) -> str | None:
        """The text as a record-prompt template (``{expression}``) for the model's ``vrft.json``."""
        return self.prompt(_placeholder("grounding", expression="{expression}"))


def _placeholder(task: str, **fields: str) -> Record:
    from vrft.data.records import Record

    return Record(id="template", task=task, image="template", width=1, height=1, **fields)


REFERENCE_TASKS = {
    "detection": ReferenceDetectionTask,
    "classification": ReferenceClassificationTask,
    "grounding": ReferenceGroundingTask,
}
