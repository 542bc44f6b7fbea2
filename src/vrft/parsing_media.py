"""Answers of the video and many-image tasks: a time window and an (image, box) pair.

Part of vrft's one parser of model output (`vrft.parsing` re-exports both functions; kept apart so
that module stays small). Same rules: nothing raises on model output, nothing is evaluated, every
number in a result is finite, at most `vrft.parsing.MAX_CHARS` characters are read, numbers are ASCII
digits only.

- `parse_window(answer) -> WindowAnswer`: the FIRST TWO numbers of the answer, in order. A number is
  ASCII digits with an optional decimal part (``12``, ``2.5``), unsigned: a ``-`` between two numbers
  is a separator, not a sign. ``[2.5, 7]``, ``2.5 - 7``, ``2.5 to 7.0`` and ``from 2.5s to 7s`` all
  give (2.5, 7.0). ``ok`` when two numbers parse and ``end > start`` (a reversed or empty window is
  not ok: reason ``"end not after start"``; its numbers are kept).
- `parse_image_box(answer) -> ImageBoxAnswer`: ONE JSON object ``{"image": i, "bbox_2d": [x1, y1, x2,
  y2]}`` (single quotes tolerated, as in detection; a code fence or text around it is ignored; keys
  matched ignoring case and ``_``). ``image`` must be an integer written without a decimal point
  (``true``/``false``, ``2.0``, ``"2"`` and lists are refused); ``bbox_2d`` four finite numbers (corners
  reordered). A second object after the first (an answer hedging between images) is refused. The
  image number's range (1..N) is checked by the reward, which knows N.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from vrft.scan import Scanner, Stop, as_box4, norm_key

MAX_CHARS = 200_000  # == vrft.parsing.MAX_CHARS (not imported: vrft.parsing imports this module)

_UNSIGNED = re.compile(r"[0-9]+(?:\.[0-9]+)?")  # ASCII digits only (\d matches any script's)
_INT_TEXT = re.compile(r"[-+]?[0-9]{1,9}")
_IMAGE_KEY = "image"
_BOX_KEY = "bbox2d"


def _text(answer: Any) -> str:
    if isinstance(answer, str):
        return answer[:MAX_CHARS]
    from vrft.parsing import completion_text

    return completion_text(answer)[:MAX_CHARS]


# ----------------------------------------------------------------------------------------------
# Time windows (temporal grounding)
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowAnswer:
    """A parsed time window in seconds: ``start``/``end`` (finite, >= 0; None when fewer than two
    numbers parse), ``ok`` when both parse and ``end > start``, else a ``reason``."""

    start: float | None = None
    end: float | None = None
    ok: bool = False
    reason: str = "ok"


def parse_window(answer: str | None) -> WindowAnswer:
    """The first two numbers of the answer as ``(start, end)`` seconds; never raises (module rules)."""
    if answer is None:
        return WindowAnswer(reason="no answer")
    nums: list[float] = []
    for m in _UNSIGNED.finditer(_text(answer)):
        v = float(m.group())
        if not math.isfinite(v):
            return WindowAnswer(reason="number too large")
        nums.append(v)
        if len(nums) == 2:
            break
    if len(nums) < 2:
        return WindowAnswer(start=nums[0] if nums else None, reason="fewer than two numbers")
    start, end = nums
    if end <= start:
        return WindowAnswer(start=start, end=end, reason="end not after start")
    return WindowAnswer(start=start, end=end, ok=True)


# ----------------------------------------------------------------------------------------------
# One box in one of several images (multi-image grounding)
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageBoxAnswer:
    """A parsed ``{"image": i, "bbox_2d": [...]}``: ``image`` (an int as written, any value: the
    reward checks 1..N) and ``box`` (model convention of image i, corners ordered, finite); ``ok``
    when both are valid, else a ``reason``."""

    image: int | None = None
    box: tuple[float, float, float, float] | None = None
    ok: bool = False
    reason: str = "ok"


class _IntScanner(Scanner):
    """The JSON-ish scanner, but an integer written without a decimal point or exponent (at most
    9 digits) stays an ``int`` (the base scanner makes every number a float)."""

    def number(self) -> Any:
        start = self.i
        value = super().number()
        text = self.s[start : self.i]
        return int(text) if _INT_TEXT.fullmatch(text) else value


def parse_image_box(answer: str | None) -> ImageBoxAnswer:
    """Parse ``{"image": i, "bbox_2d": [x1, y1, x2, y2]}``; never raises (module rules)."""
    if answer is None:
        return ImageBoxAnswer(reason="no answer")
    text = _text(answer)
    start = text.find("{")
    if start < 0:
        return ImageBoxAnswer(reason="no JSON object")
    sc = _IntScanner(text, start)
    try:
        obj = sc.value()
    except Stop as s:
        return ImageBoxAnswer(
            reason="truncated" if s.kind == "truncated" else f"syntax error at offset {s.at}"
        )
    if text.find("{", sc.i) >= 0:
        return ImageBoxAnswer(reason="more than one JSON object")
    image = box_value = None
    has_image = has_box = False
    for k, v in obj.items():
        key = norm_key(k)
        if key == _IMAGE_KEY and not has_image:
            has_image, image = True, v
        elif key == _BOX_KEY and not has_box:
            has_box, box_value = True, v
    if not has_image:
        return ImageBoxAnswer(reason="missing key 'image'")
    if not isinstance(image, int) or isinstance(image, bool):
        return ImageBoxAnswer(reason="'image' is not an integer")
    if not has_box:
        return ImageBoxAnswer(image=image, reason="missing key 'bbox_2d'")
    box = as_box4(box_value)
    if box is None:
        return ImageBoxAnswer(image=image, reason="'bbox_2d' is not four finite numbers")
    return ImageBoxAnswer(image=image, box=box, ok=True)


__all__ = ["ImageBoxAnswer", "WindowAnswer", "parse_image_box", "parse_window"]
