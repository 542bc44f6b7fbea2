"""Counting: how many objects of a category; the answer points to each one (Perception-R1 style)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vrft.parsing import parse_count
from vrft.tasks.base import FORMAT_INSTRUCTION, Task, convention_of, need, think_answer
from vrft.tasks.detection import COORDINATE_PHRASES

if TYPE_CHECKING:
    from vrft.boxes import Frame
    from vrft.data.records import Record

PROMPT = (
    "Count all objects belonging to the category '{category}' in the image by pointing to the centre "
    "of each one {coords}. If no object belonging to the category '{category}' in the image, return "
    "'No Objects'. "
) + FORMAT_INSTRUCTION.replace("{answer}", "[[x1, y1], [x2, y2], ...]")


def box_centre(box: list[int]) -> list[int]:
    """The integer centre of an integer box (floor of the midpoint, so it lies inside the box)."""
    x1, y1, x2, y2 = box
    return [(x1 + x2) // 2, (y1 + y2) // 2]


def format_points(points: list[list[int]]) -> str:
    """The answer text of a point list: ``[[x1, y1], [x2, y2], ...]``, or ``No Objects`` when empty."""
    if not points:
        return "No Objects"
    return "[" + ", ".join(f"[{x}, {y}]" for x, y in points) + "]"


class CountingTask(Task):
    """Counting. A record is detection-style: ``category`` and the ``boxes`` of its objects (the count is
    their number). Reward columns: ``gt_boxes`` (model convention). The answer is a point list
    ``[[x, y], ...]`` in the model's convention, an integer, or ``No Objects``."""

    name = "counting"
    max_new_tokens = 1024

    def question(self, record: Record, frame: Frame | None) -> str:
        """The prompt text; the coordinate phrase follows ``frame.convention`` (default 0..1000)."""
        return PROMPT.format(
            category=need(record, "category", record.category),
            coords=COORDINATE_PHRASES[convention_of(frame)],
        )

    def answer(self, record: Record, frame: Frame) -> str:
        """The correct answer (the text inside ``<answer>``): the centre of every GT box in the model's
        convention, or ``No Objects``."""
        return format_points([box_centre(frame.encode(b)) for b in record.boxes])

    def answer_text(self, record: Record, frame: Frame) -> str:
        """SFT target: ``<think> There are 3 apple(s). </think> <answer>[[x, y], ...]</answer>``."""
        category = need(record, "category", record.category)
        n = len(record.boxes)
        think = f"There is no {category} in the image." if n == 0 else f"There are {n} {category}(s)."
        return think_answer(think, self.answer(record, frame), record)

    def reward_columns(self, record: Record, frame: Frame) -> dict[str, Any]:
        """``{"gt_boxes": [[x1, y1, x2, y2], ...]}`` in the model's convention."""
        return {"gt_boxes": [frame.encode(b) for b in record.boxes]}

    def read(self, answer: str | None, frame: Frame | None) -> dict[str, Any]:
        """Count and points (pixels when ``frame`` is given)."""
        c = parse_count(answer)
        points = None
        if c.points is not None:
            points = [frame.decode_point(p) if frame is not None else list(p) for p in c.points]
        return {
            "ok": c.ok,
            "reason": c.reason,
            "no_objects": c.no_objects,
            "count": c.count,
            "points": points,
        }
