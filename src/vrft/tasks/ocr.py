"""OCR: read the text in the image; the answer is the text."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vrft.parsing import normalize_text, parse_text
from vrft.tasks.base import FORMAT_INSTRUCTION, Task, think_answer

if TYPE_CHECKING:
    from vrft.boxes import Frame
    from vrft.data.records import Record

PROMPT = (
    "Read all the text in the image and write it out exactly as it appears (same letters and case, "
    "words separated by single spaces). If the image contains no text, give an empty answer. "
) + FORMAT_INSTRUCTION.replace("{answer}", "text")


def record_text(record: Record) -> str:
    """The record's ``text`` (a DataError naming the record when it is missing; "" is a valid text)."""
    if record.text is None:
        from vrft.errors import DataError

        raise DataError(f"{record.source or record.id}: record {record.id!r} (ocr) needs the field 'text'")
    return record.text


class OCRTask(Task):
    """OCR. Reward columns: ``gt_text`` (the record's text)."""

    name = "ocr"
    max_new_tokens = 1024

    def question(self, record: Record, frame: Frame | None) -> str:
        """The prompt text (no coordinates)."""
        return PROMPT

    def answer(self, record: Record, frame: Frame | None = None) -> str:
        """The correct answer (the text inside ``<answer>``): the normalised text."""
        return normalize_text(record_text(record))

    def answer_text(self, record: Record, frame: Frame | None = None) -> str:
        """SFT target: ``<think> The image reads: TEXT </think> <answer>TEXT</answer>``."""
        text = self.answer(record, frame)
        think = f"The image reads: {text}" if text else "The image contains no text."
        return think_answer(think, text, record)

    def reward_columns(self, record: Record, frame: Frame | None = None) -> dict[str, Any]:
        """``{"gt_text": str}``."""
        return {"gt_text": record_text(record)}

    def read(self, answer: str | None, frame: Frame | None) -> dict[str, Any]:
        """The normalised text."""
        t = parse_text(answer)
        return {"ok": t.ok, "reason": t.reason, "text": t.text if t.ok else None}
