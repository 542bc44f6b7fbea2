"""What an exploit generator sees (`AuditCase`), the answer writers, and the records of an audit."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vrft.boxes import Frame
from vrft.data.records import Record
from vrft.errors import UserError
from vrft.parsing import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN, split

HUGE_CHARS = 1_000_000
"""Size of a 'huge output' answer (characters): five times what the parser reads (vrft.parsing.MAX_CHARS)."""


@dataclass(frozen=True)
class AuditCase:
    """One record as the exploit generators see it.

    ``answer``: the honest answer text (inside the answer tags, the task's own SFT target);
    ``think``: the honest think text (None in answer-only format); ``columns``: the reward columns;
    ``labels``: the label pool of the audit (classification: the record's classes, else every label seen).
    """

    task: str
    record: Record
    frame: Frame
    prompt: str
    answer: str
    think: str | None
    columns: dict[str, Any]
    labels: tuple[str, ...] = ()

    def wrap(self, answer: str) -> str:
        """``answer`` in the honest completion's format (think + answer, or answer only)."""
        if self.think is None:
            return f"{ANSWER_OPEN}{answer}{ANSWER_CLOSE}"
        return f"{THINK_OPEN} {self.think} {THINK_CLOSE} {ANSWER_OPEN}{answer}{ANSWER_CLOSE}"

    @property
    def honest(self) -> str:
        return self.wrap(self.answer)

    @property
    def gt_boxes(self) -> list[list[float]]:
        """The GT boxes in the model's coordinates (the reward column)."""
        return [list(b) for b in self.columns.get("gt_boxes") or []]

    def full_image(self) -> list[int]:
        return self.frame.encode([0, 0, self.frame.width, self.frame.height])

    def grid(self, n: int) -> list[list[int]]:
        """An n x n tiling of the image, in the model's coordinates."""
        w, h = self.frame.width / n, self.frame.height / n
        return [
            self.frame.encode([i * w, j * h, (i + 1) * w, (j + 1) * h]) for j in range(n) for i in range(n)
        ]

    def mirrored(self, box: Sequence[float]) -> list[int]:
        """``box`` (model coordinates) mirrored left-right and top-bottom: a wrong box of the same size."""
        x1, y1, x2, y2 = self.frame.decode(box)
        return self.frame.encode(
            [self.frame.width - x2, self.frame.height - y2, self.frame.width - x1, self.frame.height - y1]
        )


ExploitFn = Callable[[AuditCase], "str | None"]


# ------------------------------------------------------------------------------------ answer writers
def detections(boxes: Sequence[Sequence[float]], confidence: float | Sequence[float] = 1.0) -> str:
    """``[{'Position': [x1, y1, x2, y2], 'Confidence': c}, ...]`` (``No Objects`` when empty)."""
    if not boxes:
        return "No Objects"
    confs = [confidence] * len(boxes) if isinstance(confidence, (int, float)) else list(confidence)
    return (
        "["
        + ", ".join(
            f"{{'Position': [{', '.join(_num(v) for v in b)}], 'Confidence': {_num(c)}}}"
            for b, c in zip(boxes, confs)
        )
        + "]"
    )


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{float(v):g}"


def box_text(box: Sequence[float], convention: str) -> str:
    """A grounding box as the task writes it: ``(x1,y1),(x2,y2)`` for norm1000, else ``[x1, y1, x2, y2]``."""
    x1, y1, x2, y2 = (_num(v) for v in box)
    return f"({x1},{y1}),({x2},{y2})" if convention == "norm1000" else f"[{x1}, {y1}, {x2}, {y2}]"


def huge_text(unit: str, sep: str = ", ") -> str:
    return sep.join([unit] * max(1, HUGE_CHARS // (len(unit) + len(sep))))


def other_labels(case: AuditCase, k: int) -> list[str]:
    """Up to k labels of the pool other than the honest one."""
    return [label for label in case.labels if label != case.answer][:k]


# --------------------------------------------------------------------------------------- the records
def shapes_records(task: str, n_images: int = 8, seed: int = 0) -> list[Record]:
    """Records of ``task`` on the shapes world, drawn in memory (no file is written; images unused).

    detection: one record per class present in each image (all its boxes) and one for an absent class;
    classification, counting, ocr: one record per image (their own drawings); grounding: the first
    unambiguous expression of each image.
    """
    from vrft.data import synthetic as sw

    if n_images < 1:
        raise UserError(f"the audit needs at least one image (got {n_images})")
    records: list[Record] = []
    size = 224
    for i in range(n_images):
        base = {"task": task, "image": f"shapes-world/{seed}/{i:06d}.png", "width": size, "height": size}
        if task == "classification":
            _, label = sw.draw_classification(i, seed, size)
            labels = sw.classification_labels()
            records.append(
                Record(
                    id=f"cls-{i}", label=label, classes=labels, domain=dict(sw.CLASSIFICATION_DOMAIN), **base
                )
            )
            continue
        if task == "counting":
            _, category, boxes = sw.draw_counting(i, seed, size)
            records.append(Record(id=f"cnt-{i}", category=category, boxes=boxes, **base))
            continue
        if task == "ocr":
            _, text = sw.draw_ocr(i, seed)
            records.append(Record(id=f"ocr-{i}", text=text, **{**base, "height": 64}))
            continue
        _, objects = sw.draw_scene(i, seed, size)
        if task == "detection":
            present = sorted({o.shape for o in objects}, key=sw.ALL_CLASSES.index)
            absent = [c for c in sw.ALL_CLASSES if c not in present][:1]
            for c in present + absent:
                boxes = [o.box for o in objects if o.shape == c]
                records.append(Record(id=f"det-{i}-{c}", category=c, boxes=boxes, **base))
        elif task == "grounding":
            expressions = sw.referring_expressions(objects, size)
            if expressions:
                text, k = expressions[0]
                records.append(Record(id=f"grd-{i}", expression=text, boxes=[objects[k].box], **base))
        else:
            raise UserError(f"the shapes world has no {task!r} records; give --records FILE")
    return records


def make_cases(task: str, records: Sequence[Record], answer_format: str | None = None) -> list[AuditCase]:
    """The audit cases of ``records`` (coordinates 0..1000, the paper's convention).

    ``answer_format``: "think" or "answer_only" sets every record's ``answer_format`` (the prompt and the
    honest completion follow it); None keeps the records' own.
    """
    from vrft.tasks import TASKS

    if task not in TASKS:
        raise UserError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    t = TASKS[task]
    pool: list[str] = []
    for r in records:
        for label in [r.label, *(r.classes or [])]:
            if label and label not in pool:
                pool.append(label)
    cases = []
    for r in records:
        if answer_format is not None:
            r = dataclasses.replace(r, answer_format=answer_format)
        frame = Frame(r.width, r.height, "norm1000")
        text = t.answer_text(r, frame)
        honest = split(text)
        cases.append(
            AuditCase(
                task=task,
                record=r,
                frame=frame,
                prompt=t.prompt(r, frame),
                answer=honest.answer if honest.answer is not None else text.strip(),
                think=honest.think,  # None: the honest completion is the answer alone
                columns=dict(t.reward_columns(r, frame)),
                labels=tuple(r.classes) if r.classes else tuple(pool),
            )
        )
    return cases
