"""Detection: one prompt per (image, category); the answer is a box list with confidences."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vrft.parsing import parse_detections
from vrft.tasks.base import FORMAT_INSTRUCTION, Task, convention_of, need, think_answer

if TYPE_CHECKING:
    from vrft.boxes import Frame
    from vrft.data.records import Record

PROMPT = (
    "Detect all objects belonging to the category '{category}' in the image, and provide the bounding "
    "boxes {coords} and confidence (between 0 and 1, with two decimal places). If no object belonging to "
    "the category '{category}' in the image, return 'No Objects'. "
) + FORMAT_INSTRUCTION.replace("{answer}", "[{{'Position': [x1, y1, x2, y2], 'Confidence': number}}, ...]")

# convention -> how the prompt describes coordinates (Qwen2.5-VL must not be told "0..1000").
COORDINATE_PHRASES: dict[str, str] = {
    "norm1000": "(between 0 and 1000, integer)",
    "resized_pixels": "(absolute pixel coordinates, integer)",
    "pixels": "(absolute pixel coordinates, integer)",
}


def format_detections(boxes: list[list[int]]) -> str:
    """The answer text of a GT box list: ``[{'Position': [x1, y1, x2, y2], 'Confidence': 1}, ...]`` or
    ``No Objects`` for an empty list."""
    if not boxes:
        return "No Objects"
    return (
        "["
        + ", ".join(f"{{'Position': [{', '.join(str(v) for v in b)}], 'Confidence': 1}}" for b in boxes)
        + "]"
    )


class DetectionTask(Task):
    """The paper's detection task. Reward columns: ``gt_boxes`` (model convention, [] = No Objects)."""

    name = "detection"
    max_new_tokens = 1024

    def question(self, record: Record, frame: Frame | None) -> str:
        """The prompt text; the coordinate phrase follows ``frame.convention`` (default 0..1000)."""
        return PROMPT.format(
            category=need(record, "category", record.category),
            coords=COORDINATE_PHRASES[convention_of(frame)],
        )

    def answer(self, record: Record, frame: Frame) -> str:
        """The correct answer (the text inside ``<answer>``): the GT boxes in the model's convention
        with confidence 1, or ``No Objects``."""
        return format_detections([frame.encode(b) for b in record.boxes])

    def answer_text(self, record: Record, frame: Frame) -> str:
        """SFT target: a short count as think text, the GT boxes in the model's convention."""
        category = need(record, "category", record.category)
        boxes = [frame.encode(b) for b in record.boxes]
        n = len(boxes)
        if n == 0:
            think = f"There is no {category} in the image."
        else:
            think = f"The image shows {n} {category}{'' if n == 1 else '(s)'}."
        return think_answer(think, format_detections(boxes), record)

    def reward_columns(self, record: Record, frame: Frame) -> dict[str, Any]:
        """``{"gt_boxes": [[x1, y1, x2, y2], ...]}`` in the model's convention."""
        return {"gt_boxes": [frame.encode(b) for b in record.boxes]}

    def read(self, answer: str | None, frame: Frame | None) -> dict[str, Any]:
        """Boxes (pixels when ``frame`` is given) and confidences."""
        d = parse_detections(answer)
        return {
            "ok": d.ok,
            "reason": d.reason,
            "boxes": [frame.decode(x.box) if frame is not None else list(x.box) for x in d.detections],
            "scores": [x.confidence for x in d.detections],
            "no_objects": d.no_objects,
            "n_invalid": d.n_invalid,
            "truncated": d.truncated,
        }
