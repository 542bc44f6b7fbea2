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
    ``frame``: the record's frame in 0..1000 (multi-image: the target image's; see `case_frames`).
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
    unambiguous expression of each image; multi_image_grounding: per image i, a record of 2 to 4
    scenes (i and the next ones) asking for the first unambiguous expression of scene i, which is
    image 1..4 of the record (only the rewards are audited, so another scene may hold the same
    thing); temporal_grounding: an 8-second video (never decoded) with a seeded window.
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
        if task == "temporal_grounding":
            records.append(_temporal_record(i, seed, size))
            continue
        if task == "multi_image_grounding":
            record = _multi_image_record(i, seed, size, n_images)
            if record is not None:
                records.append(record)
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


VIDEO_SECONDS = 8.0
"""Length of the audit's temporal grounding videos (seconds)."""


def _temporal_record(i: int, seed: int, size: int) -> Record:
    """A video record (the file is never read: only the rewards are audited) with a window of 1 to
    4 s starting in the first half, on a 0.5 s grid, drawn from (seed, i)."""
    import random

    from vrft.data import synthetic as sw

    rng = random.Random(seed * 1_000_003 + i)
    start = rng.randrange(0, int(VIDEO_SECONDS)) / 2
    end = start + rng.randrange(2, 9) / 2
    shape = sw.ALL_CLASSES[rng.randrange(len(sw.ALL_CLASSES))]
    return Record(
        id=f"tg-{i}", task="temporal_grounding", video=f"shapes-world/{seed}/{i:06d}/", fps=2.0,
        duration=VIDEO_SECONDS, width=size, height=size, event=f"a {shape} crosses the frame",
        window=[start, end],
    )  # fmt: skip


def _multi_image_record(i: int, seed: int, size: int, n_images: int) -> Record | None:
    from vrft.data import synthetic as sw

    k = 2 + i % 3  # 2 to 4 images
    target = 1 + (i * 7) % k
    scenes = [(i + j - (target - 1)) % max(n_images, k) for j in range(k)]  # scene i is image `target`
    _, objects = sw.draw_scene(i, seed, size)
    expressions = sw.referring_expressions(objects, size)
    if not expressions:
        return None
    text, obj = expressions[0]
    return Record(
        id=f"mi-{i}", task="multi_image_grounding", images=[f"shapes-world/{seed}/{s:06d}.png" for s in scenes],
        image_sizes=[[size, size]] * k, expression=text, target_image=target, boxes=[objects[obj].box],
    )  # fmt: skip


def case_frames(record: Record) -> tuple[Frame, Any]:
    """(the frame exploits draw in, the frame(s) the task reads) in 0..1000: a multi-image record's
    target image and one frame per image; else the record's frame (a video's frame size) twice."""
    if record.images is not None:
        from vrft.tasks.multi_image_grounding import image_frames

        frames = image_frames(record, None)
        return frames[int(record.target_image) - 1], frames
    frame = Frame(record.width, record.height, "norm1000")
    return frame, frame


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
        frame, task_frame = case_frames(r)
        text = t.answer_text(r, task_frame)
        honest = split(text)
        cases.append(
            AuditCase(
                task=task,
                record=r,
                frame=frame,
                prompt=t.prompt(r, task_frame),
                answer=honest.answer if honest.answer is not None else text.strip(),
                think=honest.think,  # None: the honest completion is the answer alone
                columns=dict(t.reward_columns(r, task_frame)),
                labels=tuple(r.classes) if r.classes else tuple(pool),
            )
        )
    return cases
