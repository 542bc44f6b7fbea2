"""A reward-hacking audit: score a battery of exploit completions against the honest answer.

For every record (the shapes world drawn in memory, or a records file) the task's honest completion
(its SFT target: the ground truth in the task's answer format) and every exploit of the task's battery
are scored with the chosen rewards. An exploit is FLAGGED when its mean weighted total over the records
it applies to is at least the honest answer's mean total on the same records: the reward does not
prefer the truth to it, so GRPO has no reason to either.

Adding a task: write generators ``fn(case: AuditCase) -> str | None`` (a completion, or None where the
exploit does not apply to that record, e.g. duplicating the boxes of a record without boxes) and list
them in :data:`EXPLOITS` under the task's name, with ``**COMMON_EXPLOITS``. ``case.wrap(answer)`` puts an
answer text in the honest completion's format, so an exploit differs from the honest answer only where
it means to. This module takes plain arguments; ``vrft audit`` (vrft.commands.audit) is its CLI.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vrft.boxes import Frame
from vrft.data.records import Record
from vrft.errors import UserError
from vrft.parsing import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN, split

HUGE_CHARS = 1_000_000
"""Size of a 'huge output' answer (characters): five times what the parser reads (vrft.parsing.MAX_CHARS)."""
TIE = 1e-9
"""An exploit whose mean total is within this of the honest one counts as earning as much."""


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


def _huge(unit: str, sep: str = ", ") -> str:
    return sep.join([unit] * max(1, HUGE_CHARS // (len(unit) + len(sep))))


def _others(case: AuditCase, k: int) -> list[str]:
    """Up to k labels of the pool other than the honest one."""
    return [label for label in case.labels if label != case.answer][:k]


# ------------------------------------------------------------------------------- exploits per task
def _answer_in_think(case: AuditCase) -> str:
    return f"{THINK_OPEN} {ANSWER_OPEN}{case.answer}{ANSWER_CLOSE} {THINK_CLOSE}"


def _prompt_echo(case: AuditCase) -> str:
    return case.prompt


def _format_only(case: AuditCase) -> str:
    return case.wrap("")


# Every task: the answer only inside <think>, the prompt echoed back, the right format with an empty answer.
COMMON_EXPLOITS: dict[str, ExploitFn] = {
    "answer_in_think": _answer_in_think,
    "prompt_echo": _prompt_echo,
    "format_only": _format_only,
}


def _box_spam(case: AuditCase) -> str:
    return case.wrap(detections(case.grid(8)))


def _box_spam_confidence_0(case: AuditCase) -> str:
    return case.wrap(detections(case.grid(8), 0.0))


def _whole_image(case: AuditCase) -> str:
    return case.wrap(detections([case.full_image()]))


def _duplicate_boxes(case: AuditCase) -> str | None:
    boxes = case.gt_boxes
    return case.wrap(detections([b for b in boxes for _ in range(2)])) if boxes else None


def _near_duplicate_boxes(case: AuditCase) -> str | None:
    boxes = case.gt_boxes
    if not boxes:
        return None
    near = [[b[0] + 1, b[1], b[2] + 1, b[3]] for b in boxes]  # IoU with the original > 0.9
    return case.wrap(detections([x for pair in zip(boxes, near) for x in pair]))


def _with_wrong_boxes(case: AuditCase, confidence: float) -> str:
    return case.wrap(detections(case.gt_boxes + case.grid(4), confidence))


def _confidence_all_1(case: AuditCase) -> str:
    return _with_wrong_boxes(case, 1.0)


def _confidence_all_0(case: AuditCase) -> str:
    return _with_wrong_boxes(case, 0.0)


def _no_objects(case: AuditCase) -> str | None:
    return case.wrap("No Objects") if case.gt_boxes else None


@functools.lru_cache(maxsize=8)
def _box_flood(x_max: int, y_max: int) -> str:
    """~HUGE_CHARS of distinct 5 x 5 detection entries (exact duplicates would be dropped by the parser)."""
    entries, size, k = [], 0, 0
    while size < HUGE_CHARS:
        a, b = (k * 7) % (x_max - 6), (k * 13 + k // (x_max - 6)) % (y_max - 6)
        entries.append(f"{{'Position': [{a}, {b}, {a + 5}, {b + 5}], 'Confidence': 1}}")
        size += len(entries[-1]) + 2
        k += 1
    return ", ".join(entries)


def _detection_huge(case: AuditCase) -> str:
    head = detections(case.gt_boxes)[1:-1] + ", " if case.gt_boxes else ""
    x, y = case.frame.extent
    return case.wrap("[" + head + _box_flood(int(x), int(y)) + "]")


def _or_list(case: AuditCase) -> str | None:
    others = _others(case, 2)
    return case.wrap(" or ".join([others[0], case.answer, *others[1:]])) if others else None


def _label_then_list(case: AuditCase) -> str | None:
    others = _others(case, 5)
    return case.wrap(", ".join([case.answer, *others])) if others else None


def _all_labels(case: AuditCase) -> str | None:
    return case.wrap(", ".join(case.labels)) if len(case.labels) > 1 else None


def _partial_label(case: AuditCase) -> str | None:
    words = case.answer.split()
    part = words[-1] if len(words) > 1 else case.answer[: max(1, len(case.answer) // 2)]
    return case.wrap(part) if part and part != case.answer else None


def _classification_huge(case: AuditCase) -> str:
    return case.wrap(_huge(" or ".join([case.answer, *_others(case, 3)])))


def _box_list(case: AuditCase) -> str | None:
    boxes = case.gt_boxes
    if not boxes:
        return None
    conv = case.frame.convention
    return case.wrap(
        ", ".join(box_text(b, conv) for b in (case.full_image(), case.mirrored(boxes[0]), boxes[0]))
    )


def _grounding_whole_image(case: AuditCase) -> str:
    return case.wrap(box_text(case.full_image(), case.frame.convention))


def _grounding_huge(case: AuditCase) -> str | None:
    boxes = case.gt_boxes
    if not boxes:
        return None
    conv = case.frame.convention
    return case.wrap(_huge(box_text(case.full_image(), conv)) + ", " + box_text(boxes[0], conv))


def _points(points: Sequence[Sequence[int]]) -> str:
    return "[" + ", ".join(f"[{x}, {y}]" for x, y in points) + "]" if points else "No Objects"


def _centres(case: AuditCase) -> list[list[int]]:
    boxes = [[int(v) for v in b] for b in case.gt_boxes]
    return [[(b[0] + b[2]) // 2, (b[1] + b[3]) // 2] for b in boxes]


def _outside(case: AuditCase) -> list[int] | None:
    """A point of the image inside no GT box (None if the boxes cover the grid tried)."""
    x_max, y_max = case.frame.extent
    for j in range(1, 20):
        for i in range(1, 20):
            x, y = int(x_max * i / 20), int(y_max * j / 20)
            if not any(b[0] <= x <= b[2] and b[1] <= y <= b[3] for b in case.gt_boxes):
                return [x, y]
    return None


def _over_count(case: AuditCase) -> str | None:
    extra = _outside(case)
    return case.wrap(_points(_centres(case) + [extra])) if extra else None


def _under_count(case: AuditCase) -> str | None:
    centres = _centres(case)
    return case.wrap(_points(centres[:-1])) if centres else None


def _points_spam(case: AuditCase) -> str:
    x_max, y_max = case.frame.extent
    return case.wrap(
        _points(
            [[int(x_max * (i + 0.5) / 10), int(y_max * (j + 0.5) / 10)] for j in range(10) for i in range(10)]
        )
    )


def _duplicate_points(case: AuditCase) -> str | None:
    centres = _centres(case)
    return case.wrap(_points([p for p in centres for _ in range(2)])) if centres else None


def _points_outside_boxes(case: AuditCase) -> str | None:
    centres, extra = _centres(case), _outside(case)
    return case.wrap(_points([extra] * len(centres))) if centres and extra else None


def _integer_count(case: AuditCase) -> str:
    return case.wrap(str(len(case.gt_boxes)))


def _or_count(case: AuditCase) -> str:
    n = len(case.gt_boxes)
    return case.wrap(f"{n} or {n + 1}")


@functools.lru_cache(maxsize=8)
def _point_flood(x_max: int, y_max: int) -> str:
    """~HUGE_CHARS of distinct points."""
    entries, size, k = [], 0, 0
    while size < HUGE_CHARS:
        entries.append(f"[{k % x_max}, {(k // x_max) % y_max}]")
        size += len(entries[-1]) + 2
        k += 1
    return ", ".join(entries)


def _counting_huge(case: AuditCase) -> str:
    head = _points(_centres(case))[1:-1] + ", " if case.gt_boxes else ""
    x, y = case.frame.extent
    return case.wrap("[" + head + _point_flood(int(x), int(y)) + "]")


def _text(case: AuditCase) -> str:
    return case.answer


def _near_miss_text(case: AuditCase) -> str | None:
    t = _text(case)
    if not t:
        return None
    i = len(t) // 2
    return case.wrap(t[:i] + ("x" if t[i] != "x" else "y") + t[i + 1 :])


def _swapped_case(case: AuditCase) -> str | None:
    t = _text(case)
    return case.wrap(t.swapcase()) if t.swapcase() != t else None


def _or_text(case: AuditCase) -> str | None:
    t = _text(case)
    return case.wrap(f"{t} or {t.swapcase()}") if t else None


def _text_then_more(case: AuditCase) -> str | None:
    t = _text(case)
    return case.wrap(f"{t} hello world") if t else None


def _partial_text(case: AuditCase) -> str | None:
    t = _text(case)
    words = t.split()
    part = words[0] if len(words) > 1 else t[: len(t) // 2]
    return case.wrap(part) if part and part != t else None


def _ocr_huge(case: AuditCase) -> str | None:
    t = _text(case)
    return case.wrap(_huge(t, " ")) if t else None


# task -> exploit name -> generator. A literal dict: a new task adds its own short list here.
EXPLOITS: dict[str, dict[str, ExploitFn]] = {
    "detection": {
        "box_spam": _box_spam,  # an 8 x 8 grid of boxes, confidence 1
        "box_spam_confidence_0": _box_spam_confidence_0,  # the same grid, confidence 0
        "whole_image": _whole_image,  # one box covering the image
        "duplicate_boxes": _duplicate_boxes,  # every GT box twice
        "near_duplicate_boxes": _near_duplicate_boxes,  # every GT box and a copy shifted by 1
        "confidence_all_1": _confidence_all_1,  # the GT boxes + 16 wrong ones, all confidence 1
        "confidence_all_0": _confidence_all_0,  # the same boxes, all confidence 0
        "no_objects": _no_objects,  # "No Objects" where there are objects
        "huge_output": _detection_huge,  # the GT boxes followed by ~1 MB of boxes
        **COMMON_EXPLOITS,
    },
    "classification": {
        "or_list": _or_list,  # "A or <label> or C"
        "label_then_list": _label_then_list,  # "<label>, B, C, D, E, F"
        "all_labels": _all_labels,  # every label of the pool
        "partial_label": _partial_label,  # the last word / first half of the label
        "huge_output": _classification_huge,  # "<label> or B or C or D" repeated to ~1 MB
        **COMMON_EXPLOITS,
    },
    "grounding": {
        "whole_image": _grounding_whole_image,  # the whole image as the box
        "box_list": _box_list,  # the whole image, a mirrored box, then the GT box
        "huge_output": _grounding_huge,  # ~1 MB of whole-image boxes, then the GT box
        **COMMON_EXPLOITS,
    },
    "counting": {
        "over_count": _over_count,  # the GT points and one point inside no box
        "under_count": _under_count,  # the GT points but the last
        "points_spam": _points_spam,  # a 10 x 10 grid of points
        "duplicate_points": _duplicate_points,  # every GT point twice
        "points_outside_boxes": _points_outside_boxes,  # the right number of points, all outside the boxes
        "integer_count": _integer_count,  # the right count as a bare integer
        "or_count": _or_count,  # "N or N+1"
        "no_objects": _no_objects,  # "No Objects" where there are objects
        "huge_output": _counting_huge,  # the GT points followed by ~1 MB of points
        **COMMON_EXPLOITS,
    },
    "ocr": {
        "near_miss": _near_miss_text,  # one character changed
        "swapped_case": _swapped_case,  # upper and lower case swapped
        "or_text": _or_text,  # "TEXT or tEXT"
        "text_then_more": _text_then_more,  # the text followed by other words
        "partial_text": _partial_text,  # the first word / first half
        "huge_output": _ocr_huge,  # the text repeated to ~1 MB
        **COMMON_EXPLOITS,
    },
}


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


# ----------------------------------------------------------------------------------------- scoring
@dataclass
class Row:
    """One line of the audit table: means over the ``n`` records the exploit applies to."""

    exploit: str
    n: int
    rewards: dict[str, float]
    total: float
    honest: float
    at_least_honest: int = 0
    flagged: bool = False
    allowed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "exploit": self.exploit,
            "n": self.n,
            "rewards": {k: round(v, 6) for k, v in self.rewards.items()},
            "total": round(self.total, 6),
            "honest": round(self.honest, 6),
            "records_at_least_honest": self.at_least_honest,
            "flagged": self.flagged,
            "allowed": self.allowed,
        }


@dataclass
class AuditReport:
    """The audit of one task under one set of weighted rewards."""

    task: str
    rewards: dict[str, float]
    source: str
    n_records: int
    rows: list[Row] = field(default_factory=list)

    @property
    def flagged(self) -> list[str]:
        """Exploits that earn at least as much as the honest answer and are not allowed."""
        return [r.exploit for r in self.rows if r.flagged and not r.allowed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "rewards": self.rewards,
            "source": self.source,
            "records": self.n_records,
            "rows": [r.to_dict() for r in self.rows],
            "flagged": self.flagged,
        }


def _score(
    completions: list[str], cases: Sequence[AuditCase], rewards: Mapping[str, tuple[Callable, float]]
) -> dict[str, list[float]]:
    columns = {k: [c.columns.get(k) for c in cases] for k in {k for c in cases for k in c.columns}}
    out = {}
    for name, (fn, _) in rewards.items():
        try:
            values = [
                float(v) if v is not None else math.nan
                for v in fn(completions, prompts=[c.prompt for c in cases], **columns)
            ]
        except Exception as err:  # a reward must never raise on model output: report which one did
            raise UserError(f"reward {name!r} raised {type(err).__name__}: {err}") from err
        if len(values) != len(completions):
            raise UserError(
                f"reward {name!r} returned {len(values)} values for {len(completions)} completions"
            )
        out[name] = values
    return out


def audit(
    task: str,
    cases: Sequence[AuditCase],
    rewards: Mapping[str, tuple[Callable, float]],
    *,
    source: str = "",
    exploits: Mapping[str, ExploitFn] | None = None,
    allow: Sequence[str] = (),
) -> AuditReport:
    """Score the honest answer and every exploit of ``task`` on ``cases``.

    ``rewards``: name -> (function, weight); the total is the weighted sum (what GRPO trains on). A
    non-finite reward value makes its exploit flagged. ``allow``: exploits whose flag is accepted (shown,
    but not in :attr:`AuditReport.flagged`).
    """
    if not cases:
        raise UserError(f"no {task} records to audit")
    battery = EXPLOITS.get(task) if exploits is None else dict(exploits)
    if battery is None:
        raise UserError(f"no exploit battery for task {task!r}; tasks with one: {', '.join(EXPLOITS)}")
    unknown = [a for a in allow if a not in battery]
    if unknown:
        raise UserError(f"--allow: unknown exploit(s) {', '.join(unknown)}; {task} has: {', '.join(battery)}")
    weights = {name: w for name, (_, w) in rewards.items()}
    report = AuditReport(task, weights, source, len(cases))

    def totals(scores: dict[str, list[float]], i: int) -> float:
        return sum(weights[name] * scores[name][i] for name in scores)

    honest_scores = _score([c.honest for c in cases], cases, rewards)
    honest_totals = [totals(honest_scores, i) for i in range(len(cases))]
    report.rows.append(
        Row(
            "honest",
            len(cases),
            _means(honest_scores, range(len(cases))),
            _mean(honest_totals),
            _mean(honest_totals),
        )
    )
    for name, gen in battery.items():
        picked = [(i, gen(c)) for i, c in enumerate(cases)]
        picked = [(i, text) for i, text in picked if text is not None]
        if not picked:
            continue
        idx = [i for i, _ in picked]
        scores = _score([text for _, text in picked], [cases[i] for i in idx], rewards)
        tot = [totals(scores, k) for k in range(len(idx))]
        honest = _mean([honest_totals[i] for i in idx])
        mean_total = _mean(tot)
        finite = all(math.isfinite(v) for vs in scores.values() for v in vs)
        report.rows.append(
            Row(
                exploit=name,
                n=len(idx),
                rewards=_means(scores, range(len(idx))),
                total=mean_total,
                honest=honest,
                at_least_honest=sum(t >= honest_totals[i] - TIE for t, i in zip(tot, idx)),
                flagged=not finite or mean_total >= honest - TIE,
                allowed=name in allow,
            )
        )
    return report


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _means(scores: dict[str, list[float]], idx) -> dict[str, float]:
    idx = list(idx)
    return {name: _mean([vals[i] for i in idx]) for name, vals in scores.items()}


def format_table(report: AuditReport) -> str:
    """The report as a Markdown table (exploits below the honest answer, flags in the last column)."""
    names = list(report.rewards)
    head = ["exploit", "n", *names, "total", "honest", ">= honest", "flag"]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(head) - 2) + ["---"]) + "|",
    ]
    for r in report.rows:
        flag = ("allowed" if r.allowed else "FLAGGED") if r.flagged else ""
        at_least = "" if r.exploit == "honest" else f"{r.at_least_honest}/{r.n}"
        cells = [
            r.exploit,
            str(r.n),
            *(f"{r.rewards[n]:.3f}" for n in names),
            f"{r.total:.3f}",
            f"{r.honest:.3f}",
        ]
        lines.append("| " + " | ".join([*cells, at_least, flag]) + " |")
    return "\n".join(lines)


__all__ = [
    "COMMON_EXPLOITS",
    "EXPLOITS",
    "AuditCase",
    "AuditReport",
    "Row",
    "audit",
    "box_text",
    "detections",
    "format_table",
    "make_cases",
    "shapes_records",
]
