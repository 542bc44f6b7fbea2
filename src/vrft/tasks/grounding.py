"""Reasoning grounding (LISA-style): one box for a referring expression / instruction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vrft.parsing import parse_box
from vrft.tasks.base import FORMAT_INSTRUCTION, Task, convention_of, need, think_answer

if TYPE_CHECKING:
    from vrft.boxes import Frame
    from vrft.data.records import Record

PROMPT = "Output the bounding box in the image corresponding to the instruction: {expression} {coords}"

# convention -> (coordinate sentence, answer template shown in the prompt)
COORDINATES: dict[str, tuple[str, str]] = {
    "norm1000": ("The box coordinates are integers between 0 and 1000. ", "(x1,y1),(x2,y2)"),
    "resized_pixels": ("The box coordinates are absolute pixel coordinates (integers). ", "[x1, y1, x2, y2]"),
    "pixels": ("The box coordinates are absolute pixel coordinates (integers). ", "[x1, y1, x2, y2]"),
}


def format_box(box: list[int], convention: str) -> str:
    """GT answer text: ``(x1,y1),(x2,y2)`` for norm1000 (the paper), ``[x1, y1, x2, y2]`` otherwise
    (the Qwen2.5-VL style)."""
    x1, y1, x2, y2 = box
    if convention == "norm1000":
        return f"({x1},{y1}),({x2},{y2})"
    return f"[{x1}, {y1}, {x2}, {y2}]"


def _sentence(text: str) -> str:
    text = " ".join(str(text).split())
    return text if text[-1:] in ".?!" else text + "."


class GroundingTask(Task):
    """Grounding. Reward columns: ``gt_boxes`` = every target box in the model's convention."""

    name = "grounding"
    max_new_tokens = 512

    def question(self, record: Record, frame: Frame | None) -> str:
        """The paper's LISA prompt; the box format follows ``frame.convention`` (default 0..1000)."""
        sentence, template = COORDINATES[convention_of(frame)]
        expression = _sentence(need(record, "expression", record.expression))
        head = PROMPT.format(expression=expression, coords=sentence)
        return head + FORMAT_INSTRUCTION.replace("{answer}", template)

    def answer(self, record: Record, frame: Frame) -> str:
        """The correct answer (the text inside ``<answer>``): the GT box in the model's convention."""
        return format_box(self._box(record, frame), frame.convention)

    def _box(self, record: Record, frame: Frame) -> list[int]:
        boxes = need(record, "boxes", record.boxes)
        if not boxes:
            need(record, "boxes", None)
        return frame.encode(boxes[0])

    def answer_text(self, record: Record, frame: Frame) -> str:
        """SFT target: ``<think> Locating: the red cup. </think> <answer>(x1,y1),(x2,y2)</answer>``."""
        expression = _sentence(need(record, "expression", record.expression))
        return think_answer(f"Locating: {expression}", self.answer(record, frame), record)

    def reward_columns(self, record: Record, frame: Frame) -> dict[str, Any]:
        """``{"gt_boxes": [[x1, y1, x2, y2], ...]}``: every target box, in the model's convention (a
        record with several boxes: any of them counts, `vrft.rewards.grounding`)."""
        self._box(record, frame)  # the record must have a box
        return {"gt_boxes": [frame.encode(b) for b in record.boxes]}

    def read(self, answer: str | None, frame: Frame | None) -> dict[str, Any]:
        """One box (pixels when ``frame`` is given), score 1.0."""
        b = parse_box(answer)
        boxes = [] if b.box is None else [frame.decode(b.box) if frame is not None else list(b.box)]
        return {"ok": b.ok, "reason": b.reason, "boxes": boxes, "scores": [1.0] * len(boxes)}
