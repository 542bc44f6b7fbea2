"""Temporal grounding (video): when does an event happen? The answer is ``[start, end]`` in seconds.

The prompt asks "When does {event} happen in the video?"; the answer is ``<answer>[start, end]</answer>``
(the first two numbers of the answer, `vrft.parsing.parse_window`). Reward column: ``gt_window`` =
the record's ``window`` [S, E] seconds (`vrft.rewards.temporal`). Times are seconds of the video's
own timeline whatever frames the model is shown, so no coordinate frame is involved (``frame`` is
accepted and ignored).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vrft.parsing import parse_window
from vrft.tasks.base import FORMAT_INSTRUCTION, Task, need, think_answer

if TYPE_CHECKING:
    from vrft.data.records import Record

PROMPT = (
    "When does {event} happen in the video? Give its start and end time in seconds, as [start, end]. "
) + FORMAT_INSTRUCTION.replace("{answer}", "[start, end]")


def format_window(start: float, end: float) -> str:
    """The answer text of a window: ``[2.5, 6]`` (``f"[{s:g}, {e:g}]"``)."""
    return f"[{float(start):g}, {float(end):g}]"


def _event(record: Record) -> str:
    text = " ".join(str(need(record, "event", record.event)).split())
    return text.rstrip(".?!") or text


class TemporalGroundingTask(Task):
    """Temporal grounding. A record is a ``video`` with ``duration``, ``event`` and the ground truth
    ``window`` [start, end] seconds. Reward columns: ``gt_window``."""

    name = "temporal_grounding"
    max_new_tokens = 512

    def question(self, record: Record, frame: Any) -> str:
        """``When does {event} happen in the video? ...`` and the format instruction."""
        return PROMPT.format(event=_event(record))

    def _window(self, record: Record) -> list[float]:
        window = need(record, "window", record.window)
        if len(window) != 2:
            need(record, "window", None)
        return [float(window[0]), float(window[1])]

    def answer(self, record: Record, frame: Any = None) -> str:
        """The correct answer (the text inside ``<answer>``): ``[S, E]``, e.g. ``[2.5, 6]``."""
        return format_window(*self._window(record))

    def answer_text(self, record: Record, frame: Any = None) -> str:
        """SFT target: ``<think> Finding when a red star crosses the frame. </think> <answer>[2.5, 6]</answer>``."""
        return think_answer(f"Finding when {_event(record)}.", self.answer(record), record)

    def reward_columns(self, record: Record, frame: Any = None) -> dict[str, Any]:
        """``{"gt_window": [S, E]}`` in seconds."""
        return {"gt_window": self._window(record)}

    def read(self, answer: str | None, frame: Any) -> dict[str, Any]:
        """The window ``[start, end]`` (None when it does not parse)."""
        w = parse_window(answer)
        return {"ok": w.ok, "reason": w.reason, "window": [w.start, w.end] if w.ok else None}
