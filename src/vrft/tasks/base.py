"""What every task shares: the `Task` skeleton (``prompt`` and ``parse``), the prediction a parse
returns, the think/answer target, and record checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from vrft.errors import DataError
from vrft.parsing import lenient_answer, split

if TYPE_CHECKING:
    from vrft.boxes import Frame
    from vrft.data.records import Record

FORMAT_INSTRUCTION = (
    "Output the thinking process in <think> </think> and final answer in <answer> </answer> tags. "
    "The output answer format should be as follows: <think> ... </think> <answer>{answer}</answer> "
    "Please strictly follow the format."
)

# Answer-only mode (Perception-R1: explicit thinking hurts perception): the two parts of
# FORMAT_INSTRUCTION that ask for thinking, and what replaces them.
_THINK_SENTENCE = (
    "Output the thinking process in <think> </think> and final answer in <answer> </answer> tags."
)
_ANSWER_ONLY_SENTENCE = "Output only the final answer in <answer> </answer> tags, without any thinking."
_THINK_EXAMPLE = "<think> ... </think> <answer>"


@dataclass
class Prediction:
    """A parsed completion, for the metrics. Boxes are PIXELS of the original image when a frame was
    given to ``parse`` (else the model's coordinates).

    ``ok``: the answer was parsed; ``reason``: why not (or ``"ok"``). ``boxes``/``scores``: detection
    boxes and confidences (grounding: one box, score 1.0). ``label``: classification. ``no_objects``:
    the model answered No Objects. ``n_invalid``/``truncated``: see ``vrft.parsing.DetectionAnswer``.
    ``count``/``points``: counting (points in pixels when a frame was given; None for an integer
    answer). ``text``: OCR (normalised). ``window``: temporal grounding, ``[start, end]`` seconds.
    ``image``: multi-image grounding, the answered 1-based image number (``boxes`` then holds its box,
    in pixels of that image when its frame was given).
    """

    task: str
    ok: bool
    reason: str = "ok"
    format_ok: bool = False
    format_strict: bool = False
    answer: str | None = None
    boxes: list[list[float]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    label: str | None = None
    no_objects: bool = False
    n_invalid: int = 0
    truncated: bool = False
    count: int | None = None
    points: list[list[float]] | None = None
    text: str | None = None
    window: list[float] | None = None
    image: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (for predictions.jsonl)."""
        return asdict(self)


def is_answer_only(record: Record | None) -> bool:
    """Whether the record asks for the answer alone (``record.answer_format == "answer_only"``)."""
    return record is not None and record.answer_format == "answer_only"


def think_answer(think: str, answer: str, record: Record | None = None) -> str:
    """The SFT target ``<think> ... </think> <answer>...</answer>``, or ``<answer>...</answer>`` alone
    for an answer-only record."""
    if is_answer_only(record):
        return f"<answer>{answer}</answer>"
    return f"<think> {think} </think> <answer>{answer}</answer>"


def answer_only_prompt(text: str) -> str:
    """A prompt asking for the answer alone: the think instruction of :data:`FORMAT_INSTRUCTION`
    becomes "Output only the final answer in <answer> </answer> tags, without any thinking." and its
    example ``<think> ... </think> <answer>X</answer>`` becomes ``<answer>X</answer>``. A prompt
    without that instruction (a record's own prompt) is returned unchanged."""
    return text.replace(_THINK_SENTENCE, _ANSWER_ONLY_SENTENCE).replace(_THINK_EXAMPLE, "<answer>")


def finish_prompt(record: Record, text: str) -> str:
    """The user text of ``record`` in its answer format (see :func:`answer_only_prompt`)."""
    return answer_only_prompt(text) if is_answer_only(record) else text


def answer_of(text: Any, require_tags: bool) -> tuple[str | None, bool, bool]:
    """(answer text, format_ok, format_strict) of a completion. Without ``require_tags`` a completion
    lacking the answer tags is read leniently (see ``vrft.parsing.lenient_answer``)."""
    c = split(text)
    answer = c.answer if (require_tags or c.answer is not None) else lenient_answer(c.text)
    return answer, c.format_ok, c.format_strict


def need(record: Record, name: str, value: Any) -> Any:
    """``value`` or a DataError naming the record and the missing field."""
    if value is None or (isinstance(value, (list, str)) and not value and name != "boxes"):
        where = record.source or record.id
        raise DataError(f"{where}: record {record.id!r} ({record.task}) needs the field {name!r}")
    return value


def custom_prompt(record: Record) -> str | None:
    """The record's own user text (``record.prompt``), which replaces a task's template when set.

    The placeholders ``{category}``, ``{expression}``, ``{label}`` and ``{event}`` are replaced by those
    fields (plain text replacement: other braces, e.g. an answer-format example, are kept as written)."""
    if not record.prompt:
        return None
    text = record.prompt
    for name in ("category", "expression", "label", "event"):
        value = getattr(record, name)
        if value is not None:
            text = text.replace("{" + name + "}", value)
    return text


def record_frame(record: Record, make: Callable[[float, float], Frame]) -> Frame | list[Frame]:
    """``make(width, height)`` of the record's image (a video's frame size), or a list of them (one per
    image, from ``image_sizes``) for an ``images`` record (multi-image grounding reads one frame per
    image, `vrft.tasks.multi_image_grounding`)."""
    if record.images is not None:
        return [make(w, h) for w, h in record.image_sizes or []]
    return make(record.width, record.height)


def convention_of(frame: Frame | None) -> str:
    """The frame's coordinate convention (``norm1000`` without a frame)."""
    return frame.convention if frame is not None else "norm1000"


class Task:
    """The skeleton of every vrft task: a subclass gives `name`, `question` (its prompt text) and
    `read` (its parser); `prompt` and `parse` are the same for all.

    - ``prompt(record, frame=None)``: the record's own prompt (`custom_prompt`) or the task's
      `question`, in the record's answer format (`finish_prompt`);
    - ``parse(text, frame=None, *, require_tags=True)``: the answer of the completion (`answer_of`),
      read by `read` into the task's `Prediction` fields; never raises.
    """

    name: str = ""
    max_new_tokens: int = 1024

    def prompt(self, record: Record, frame: Frame | None = None) -> str:
        """The user text: the record's own prompt, else the task's question; in its answer format."""
        own = custom_prompt(record)
        return finish_prompt(record, own if own else self.question(record, frame))

    def question(self, record: Record, frame: Frame | None) -> str:
        """The task's prompt text for `record` (before the answer-format change)."""
        raise NotImplementedError

    def parse(self, text: Any, frame: Frame | None = None, *, require_tags: bool = True) -> Prediction:
        """Completion -> `Prediction` (boxes and points in pixels when ``frame`` is given); never raises."""
        answer, fmt_ok, fmt_strict = answer_of(text, require_tags)
        return Prediction(
            task=self.name,
            format_ok=fmt_ok,
            format_strict=fmt_strict,
            answer=answer,
            **self.read(answer, frame),
        )

    def read(self, answer: str | None, frame: Frame | None) -> dict[str, Any]:
        """The task's `Prediction` fields (``ok``, ``reason`` and its own) of the answer text."""
        raise NotImplementedError
