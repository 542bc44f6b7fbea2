"""The one parser of model output, shared by the rewards (training) and the metrics (evaluation).

Its scanner of JSON-ish values lives in `vrft.scan`; this module holds the rules of every answer
kind (think/answer split, detections, boxes, labels, counts, text).

Nothing here raises on model output and nothing evaluates it (no ``eval``, no ``ast.literal_eval``): a
small linear-time scanner reads JSON-ish values (single or double quotes, ``NaN``/``Infinity``
literals, missing or extra commas, trailing text). Every number in a result is finite. Work is capped
(:data:`MAX_CHARS` characters, :data:`MAX_TOKENS` scanner steps, :data:`MAX_ENTRIES` detections,
nesting depth :data:`MAX_DEPTH`), so a multi-megabyte completion parses in a fraction of a second.

Rules (also in ``docs/rewards.md``):

- The answer is the content of the LAST complete ``<answer>...</answer>`` pair (stripped); the think
  text is the content of the first ``<think>...</think>`` pair.
- ``format_strict``: the whole completion matches ``<think>.*?</think>\\s*<answer>.*?</answer>``
  (DOTALL), as the reference checks it; ``format_ok``: the same after stripping surrounding whitespace.
- Detections: ``[{'Position': [x1, y1, x2, y2], 'Confidence': c}, ...]``; keys are case-insensitive
  (``position``/``bbox_2d``/``bbox``/``box``; ``confidence``/``score``); ``[[...]]`` wrapping is
  flattened; a bare ``{...}, {...}`` sequence is accepted. ``No Objects`` (any case, spaces, quotes or
  final period) is the explicit empty prediction; ``[]`` is an empty prediction too.
- An entry is INVALID (dropped from ``detections``, counted in ``n_invalid``) when its position is not
  exactly four finite numbers, or its confidence is missing, non-numeric, NaN or infinite. Numbers
  written as strings (``'0.9'``) are accepted. Finite confidences outside [0, 1] are clipped to it.
  Swapped corners are reordered so that ``x1 <= x2`` and ``y1 <= y2``.
- A truncated list keeps every complete entry (``truncated=True``); the cut-off entry, if any, counts as
  invalid. A syntax error stops the scan the same way (entries before it are kept). Duplicates are kept
  (the rewards drop exact duplicates).
- Boxes (grounding): ``(x1,y1),(x2,y2)``, ``[x1, y1, x2, y2]``, ``{"bbox_2d": [...], "label": ...}``
  alone, in a list or in a code fence; the first box found wins (the tuple form is tried first).
- Numbers use ASCII digits only: fullwidth (``１２``) or Arabic-Indic (``١٢``) digits are not numbers
  (an entry written with them is invalid), as in the reference's JSON / Python-literal parsing.
- Labels: stripped, whitespace collapsed; the raw answer is kept too.
- Time windows (``parse_window``) and ``{"image": i, "bbox_2d": [...]}`` answers (``parse_image_box``):
  rules in `vrft.parsing_media`, re-exported here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from vrft.scan import MAX_DEPTH, MAX_TOKENS  # noqa: F401 (documented as vrft.parsing's limits too)
from vrft.scan import Scanner as _Scanner
from vrft.scan import Stop as _Stop
from vrft.scan import as_box4 as _box4
from vrft.scan import as_number as _number
from vrft.scan import norm_key as _key

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"

MAX_CHARS = 200_000
"""Characters of an answer that are parsed; the rest is ignored (a detection list is then truncated)."""
MAX_ENTRIES = 1_000
"""Detections kept at most (LVIS evaluates 300 per image)."""
MAX_POINTS = 1_000
"""Points a counting answer may hold (`parse_count`); a longer list is not a counting answer. The
converters refuse records with more objects than this (their honest answer could not be read)."""
MAX_COUNT_DIGITS = 9
"""Digits of an integer counting answer at most (counts up to 999,999,999); a longer number is not a
counting answer (and Python's int() refuses more than 4,300 digits)."""

_SEP_ANSWER = re.compile(r"\s*<answer>")
_NUMS = r"([-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)"
_TUPLE_BOX = re.compile(
    r"\(\s*" + _NUMS + r"\s*,\s*" + _NUMS + r"\s*\)\s*,?\s*\(\s*" + _NUMS + r"\s*,\s*" + _NUMS + r"\s*\)"
)
_BOX_KEYS = frozenset({"position", "bbox2d", "bbox", "box"})
_CONF_KEYS = frozenset({"confidence", "score"})


# ----------------------------------------------------------------------------------------------
# Completion text, think / answer
# ----------------------------------------------------------------------------------------------


def completion_text(completion: Any) -> str:
    """The text of one TRL completion: a string, or a list of message dicts
    (``[{"role": "assistant", "content": "..."}]``, content possibly a list of ``{"type": "text"}``
    parts). Messages are concatenated. Anything else gives ``""`` or its ``str``; never raises."""
    if completion is None:
        return ""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return _content_text(completion.get("content"))
    if isinstance(completion, (list, tuple)):
        return "".join(
            _content_text(m.get("content")) if isinstance(m, dict) else completion_text(m) for m in completion
        )
    return str(completion)


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        parts = []
        for p in content:
            if isinstance(p, str):
                parts.append(p)
            elif isinstance(p, dict) and isinstance(p.get("text"), str):
                parts.append(p["text"])
        return "".join(parts)
    return str(content)


@dataclass(frozen=True)
class Completion:
    """A completion split into its parts.

    ``think``/``answer`` are ``None`` when the tags are missing. ``format_strict``: the reference's
    full match; ``format_ok``: the same, ignoring whitespace around the completion.
    """

    text: str
    think: str | None
    answer: str | None
    format_strict: bool
    format_ok: bool


def _full_format(text: str) -> bool:
    """Linear-time equivalent of ``re.fullmatch(r"<think>.*?</think>\\s*<answer>.*?</answer>", text, DOTALL)``.

    The smallest end of ``</think>\\s*<answer>`` is found by trying ``</think>`` occurrences in order
    (their whitespace runs are disjoint, so the total work is linear).
    """
    if not (text.startswith(THINK_OPEN) and text.endswith(ANSWER_CLOSE)):
        return False
    last = len(text) - len(ANSWER_CLOSE)
    pos = len(THINK_OPEN)
    while True:
        j = text.find(THINK_CLOSE, pos)
        if j < 0 or j > last:
            return False
        m = _SEP_ANSWER.match(text, j + len(THINK_CLOSE))
        if m is not None:
            return m.end() <= last
        pos = j + 1


def split(text: str) -> Completion:
    """Split a completion into think text and answer text (see the module rules); never raises."""
    if not isinstance(text, str):
        text = completion_text(text)
    think = None
    t0 = text.find(THINK_OPEN)
    if t0 >= 0:
        t1 = text.find(THINK_CLOSE, t0 + len(THINK_OPEN))
        if t1 >= 0:
            think = text[t0 + len(THINK_OPEN) : t1].strip()
    answer = None
    a1 = text.rfind(ANSWER_CLOSE)
    if a1 >= 0:
        a0 = text.rfind(ANSWER_OPEN, 0, a1)
        if a0 >= 0:
            answer = text[a0 + len(ANSWER_OPEN) : a1].strip()
    strict = _full_format(text)
    ok = strict or _full_format(text.strip())
    return Completion(text=text, think=think, answer=answer, format_strict=strict, format_ok=ok)


def lenient_answer(text: str) -> str:
    """The answer text, or, without a complete answer pair, the best guess: the text after the last
    ``<answer>``, else after ``</think>``, else the whole text (stripped). For metrics of models that
    ignore the tag format; rewards never use it."""
    c = split(text)
    if c.answer is not None:
        return c.answer
    text = c.text
    a0 = text.rfind(ANSWER_OPEN)
    if a0 >= 0:
        return text[a0 + len(ANSWER_OPEN) :].strip()
    t1 = text.rfind(THINK_CLOSE)
    if t1 >= 0:
        return text[t1 + len(THINK_CLOSE) :].strip()
    return text.strip()


# ----------------------------------------------------------------------------------------------
# Detections
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Detection:
    """One predicted box ``(x1, y1, x2, y2)`` (model convention, corners ordered, finite) and its
    confidence in ``[0, 1]``."""

    box: tuple[float, float, float, float]
    confidence: float


@dataclass(frozen=True)
class DetectionAnswer:
    """A parsed detection answer.

    ``ok``: the answer was recognised (a list, possibly empty, or ``No Objects``); ``reason`` says why
    not (or ``"ok"``). ``detections``: the valid entries in output order (duplicates kept).
    ``n_invalid``: entries dropped by the rules. ``truncated``: the scan stopped before the end of the
    list (cut-off output, a syntax error or the work cap). An empty prediction is ``ok`` with no
    detections and no invalid entries (see :attr:`empty`).
    """

    detections: tuple[Detection, ...] = ()
    no_objects: bool = False
    ok: bool = False
    reason: str = "ok"
    n_invalid: int = 0
    truncated: bool = False

    @property
    def empty(self) -> bool:
        """True for an explicit empty prediction (``No Objects`` or ``[]``)."""
        return self.ok and not self.detections and self.n_invalid == 0

    @property
    def n_predictions(self) -> int:
        """Valid plus invalid entries: what the model claimed to see."""
        return len(self.detections) + self.n_invalid


def is_no_objects(answer: str) -> bool:
    """``No Objects``, tolerant of case, spaces, quotes and punctuation (``'no objects.'``)."""
    return len(answer) <= 64 and _key(answer) == "noobjects"


def _first_structure(text: str) -> int:
    a, b = text.find("["), text.find("{")
    if a < 0:
        return b
    if b < 0:
        return a
    return min(a, b)


def parse_detections(answer: str | None) -> DetectionAnswer:
    """Parse a detection answer (the text inside ``<answer>``); never raises. See the module rules."""
    if answer is None:
        return DetectionAnswer(ok=False, reason="no answer")
    if not isinstance(answer, str):
        answer = completion_text(answer)
    answer = answer[:MAX_CHARS]
    if is_no_objects(answer.strip()):
        return DetectionAnswer(no_objects=True, ok=True)
    start = _first_structure(answer)
    if start < 0:
        return DetectionAnswer(ok=False, reason="no detection list")

    sc = _Scanner(answer, start)
    stop: _Stop | None = None
    if answer[start] == "[":
        try:
            top = sc.value()
        except _Stop as s:
            stop, top = s, (s.partial if s.partial is not None else [])
    else:  # a bare sequence of dicts: {...}, {...}
        top = []
        while len(top) < MAX_ENTRIES:
            sc.ws()
            if sc.i < sc.n and sc.s[sc.i] == ",":
                sc.i += 1
                continue
            if sc.i >= sc.n or sc.s[sc.i] != "{":
                break
            try:
                top.append(sc.value())
            except _Stop as s:
                stop = s
                break

    entries: list = []
    n_invalid = _collect(top, entries, 0)
    dets: list[Detection] = []
    for e in entries:
        det = _detection(e)
        if det is None:
            n_invalid += 1
        elif len(dets) < MAX_ENTRIES:
            dets.append(det)
    if stop is not None and stop.incomplete and stop.kind != "limit":
        n_invalid += 1
    truncated = stop is not None or len(entries) > MAX_ENTRIES
    if stop is not None and not entries:  # nothing complete before the cut: not an answer
        return DetectionAnswer(ok=False, reason=_reason(stop), n_invalid=n_invalid, truncated=True)
    return DetectionAnswer(
        detections=tuple(dets),
        ok=True,
        reason=_reason(stop) if stop is not None else "ok",
        n_invalid=n_invalid,
        truncated=truncated,
    )


def _reason(stop: _Stop) -> str:
    if stop.kind == "truncated":
        return "truncated"
    if stop.kind == "limit":
        return "work limit reached"
    return f"syntax error at offset {stop.at}"


def _collect(v: Any, out: list, depth: int) -> int:
    """Flatten a parsed value into detection-entry candidates (dicts); returns the count of items that
    cannot be entries (a bare list of numbers counts once, as one box without a confidence)."""
    if isinstance(v, dict):
        out.append(v)
        return 0
    if not isinstance(v, list):
        return 1
    if v and not any(isinstance(x, (dict, list)) for x in v):
        return 1  # a bare box like [x1, y1, x2, y2]: no confidence
    bad = 0
    for x in v:
        if isinstance(x, (dict, list)) and depth < MAX_DEPTH:
            bad += _collect(x, out, depth + 1)
        else:
            bad += 1
    return bad


def _detection(entry: dict) -> Detection | None:
    box = conf = None
    has_box = has_conf = False
    for k, v in entry.items():
        nk = _key(k)
        if nk in _BOX_KEYS and not has_box:
            has_box, box = True, _box4(v)
        elif nk in _CONF_KEYS and not has_conf:
            has_conf, conf = True, _number(v)
    if box is None or conf is None:
        return None
    return Detection(box=box, confidence=min(max(conf, 0.0), 1.0))


# ----------------------------------------------------------------------------------------------
# One box (grounding)
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoxAnswer:
    """A parsed single box ``(x1, y1, x2, y2)`` (model convention, ordered, finite) or ``box=None``
    with ``ok=False`` and a ``reason``."""

    box: tuple[float, float, float, float] | None = None
    ok: bool = False
    reason: str = "ok"


def parse_box(answer: str | None) -> BoxAnswer:
    """Parse one box from an answer; never raises. See the module rules."""
    if answer is None:
        return BoxAnswer(reason="no answer")
    if not isinstance(answer, str):
        answer = completion_text(answer)
    answer = answer[:MAX_CHARS]
    m = _TUPLE_BOX.search(answer)
    if m is not None:
        box = _box4([float(g) for g in m.groups()])
        if box is not None:
            return BoxAnswer(box=box, ok=True)
    start = _first_structure(answer)
    if start < 0:
        return BoxAnswer(reason="no box")
    sc = _Scanner(answer, start)
    try:
        value = sc.value()
    except _Stop as s:
        value = s.partial
    box = _find_box(value, 0)
    if box is None:
        return BoxAnswer(reason="no valid box")
    return BoxAnswer(box=box, ok=True)


def _find_box(v: Any, depth: int) -> tuple[float, float, float, float] | None:
    if depth > MAX_DEPTH:
        return None
    if isinstance(v, dict):
        for k, x in v.items():
            if _key(k) in _BOX_KEYS:
                return _box4(x)
        return None
    if isinstance(v, list):
        box = _box4(v)
        if box is not None:
            return box
        for x in v:
            if isinstance(x, (list, dict)):
                box = _find_box(x, depth + 1)
                if box is not None:
                    return box
    return None


# ----------------------------------------------------------------------------------------------
# Labels (classification)
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelAnswer:
    """A class label: ``label`` stripped with whitespace collapsed, ``raw`` the answer as given."""

    label: str = ""
    ok: bool = False
    reason: str = "ok"
    raw: str | None = field(default=None, repr=False)


def parse_label(answer: str | None) -> LabelAnswer:
    """Parse a label; ``ok`` is False for a missing or blank answer. Never raises."""
    if answer is None:
        return LabelAnswer(reason="no answer")
    if not isinstance(answer, str):
        answer = completion_text(answer)
    answer = answer[:MAX_CHARS]
    label = " ".join(answer.split())
    if not label:
        return LabelAnswer(label="", ok=False, reason="empty answer", raw=answer)
    return LabelAnswer(label=label, ok=True, raw=answer)


# ----------------------------------------------------------------------------------------------
# Counts (counting): a point list, an integer, or No Objects
# ----------------------------------------------------------------------------------------------

_INTEGER = re.compile(r"[+-]?[0-9]+")  # ASCII digits only (\d matches any script's)


@dataclass(frozen=True)
class CountAnswer:
    """A parsed counting answer.

    ``ok``: the answer is a point list ``[[x, y], ...]``, an integer or ``No Objects`` (``reason``
    says why not). ``count``: the answered count (a point list's length; ``No Objects`` and ``[]``:
    0). ``points``: the points (model convention) when the answer is a point list, else ``None``
    (an integer answer has no points). ``no_objects``: the answer was ``No Objects``.
    """

    count: int | None = None
    points: tuple[tuple[float, float], ...] | None = None
    no_objects: bool = False
    ok: bool = False
    reason: str = "ok"


def _point(v: Any) -> tuple[float, float] | None:
    """``[x, y]``: exactly two finite numbers (not strings, not booleans); None otherwise."""
    if not isinstance(v, list) or len(v) != 2:
        return None
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v):
        return None
    return (float(v[0]), float(v[1]))


def parse_count(answer: str | None) -> CountAnswer:
    """Parse a counting answer (the text inside ``<answer>``); never raises.

    Accepted, after stripping: ``No Objects`` (as for detection), an integer (``[+-]?digits``, ASCII
    digits, at most :data:`MAX_COUNT_DIGITS`), or exactly one list of at most :data:`MAX_POINTS`
    points ``[[x, y], ...]`` (each point two finite numbers; ``[]`` is 0 points; nothing but
    whitespace around the list). Anything else, including a truncated list, a point with
    a third number or text around the answer, is not a counting answer (``ok=False``).
    """
    if answer is None:
        return CountAnswer(reason="no answer")
    if not isinstance(answer, str):
        answer = completion_text(answer)
    text = answer.strip()
    if len(text) > MAX_CHARS:
        return CountAnswer(reason="answer too long")
    if is_no_objects(text):
        return CountAnswer(count=0, points=(), no_objects=True, ok=True)
    if _INTEGER.fullmatch(text):
        if len(text.lstrip("+-")) > MAX_COUNT_DIGITS:
            return CountAnswer(reason=f"an integer of more than {MAX_COUNT_DIGITS} digits")
        return CountAnswer(count=int(text), ok=True)
    if not text.startswith("["):
        return CountAnswer(reason="not a point list, an integer or No Objects")
    # a point is three scanner steps ([, x, y): room for MAX_POINTS points and a few more to notice excess
    sc = _Scanner(text, 0, budget=3 * (MAX_POINTS + 1) + 2)
    try:
        value = sc.value()
    except _Stop as stop:
        if stop.kind == "limit":
            return CountAnswer(reason=f"more than {MAX_POINTS} points (vrft.parsing.MAX_POINTS)")
        return CountAnswer(reason=_reason(stop))
    sc.ws()
    if sc.i != sc.n:
        return CountAnswer(reason=f"text after the point list at offset {sc.i}")
    if not isinstance(value, list):
        return CountAnswer(reason="not a point list, an integer or No Objects")
    if len(value) > MAX_POINTS:
        return CountAnswer(reason=f"more than {MAX_POINTS} points (vrft.parsing.MAX_POINTS)")
    points = []
    for i, v in enumerate(value):
        p = _point(v)
        if p is None:
            return CountAnswer(reason=f"point {i} is not [x, y] (two numbers)")
        points.append(p)
    return CountAnswer(count=len(points), points=tuple(points), ok=True)


# ----------------------------------------------------------------------------------------------
# Text (OCR)
# ----------------------------------------------------------------------------------------------


def normalize_text(text: str) -> str:
    """OCR normalisation: strip, and collapse every whitespace run to one space (case kept)."""
    return " ".join(text.split())


@dataclass(frozen=True)
class TextAnswer:
    """A parsed OCR answer: ``text`` normalised (:func:`normalize_text`); ``ok`` False without an
    answer (an empty answer is a valid answer: the image has no text)."""

    text: str = ""
    ok: bool = False
    reason: str = "ok"


def parse_text(answer: str | None) -> TextAnswer:
    """Parse an OCR answer (at most :data:`MAX_CHARS` characters are read); never raises."""
    if answer is None:
        return TextAnswer(reason="no answer")
    if not isinstance(answer, str):
        answer = completion_text(answer)
    return TextAnswer(text=normalize_text(answer[:MAX_CHARS]), ok=True)


# ----------------------------------------------------------------------------------------------
# Time windows and (image, box) answers: `vrft.parsing_media` (re-exported here)
# ----------------------------------------------------------------------------------------------

from vrft.parsing_media import ImageBoxAnswer, WindowAnswer, parse_image_box, parse_window  # noqa: E402, F401
