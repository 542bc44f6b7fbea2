"""The evaluation API: generate, score, write ``metrics.json``, ``predictions.jsonl``, the COCO results
and ``report.html``.

- `evaluate_model(model, processor, records, task, out_dir, ...)`: batched generation with the model
  (or any generator with ``generate(requests) -> list[str]``), then `score_predictions`.
- `score_predictions(records, completions, task, out_dir, ...)`: metrics of given completions,
  without a model (``vrft eval --predictions``; the demo and training call it too).

Metric scale: every AP, accuracy, IoU and rate is a percentage (0..100), like the paper's tables.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vrft.data.record_checks import TASK_NAMES
from vrft.data.records import Record
from vrft.errors import DataError, UserError
from vrft.evaluate.base import FrameFn, norm1000_frame, record_frame, set_answer_format
from vrft.evaluate.classification import ClassificationEvaluator
from vrft.evaluate.coco import image_key
from vrft.evaluate.counting import CountingEvaluator
from vrft.evaluate.detection import DetectionEvaluator
from vrft.evaluate.grounding import GroundingEvaluator
from vrft.evaluate.multi_image import MultiImageGroundingEvaluator
from vrft.evaluate.ocr import OCREvaluator
from vrft.evaluate.protocols import (
    PRESENCE_MAX_NEW_TOKENS,
    PROTOCOLS,
    apply_presence_map,
    detection_setup,
    parse_presence,
    presence_prompt,
)
from vrft.evaluate.runner import HFGenerator, Request, request_for
from vrft.evaluate.temporal import TemporalGroundingEvaluator

logger = logging.getLogger(__name__)

# task -> evaluator with one row per sample (detection has its own: queries, COCO / LVIS AP)
SAMPLE_EVALUATORS: dict[str, Any] = {
    "classification": ClassificationEvaluator,
    "grounding": GroundingEvaluator,
    "counting": CountingEvaluator,
    "ocr": OCREvaluator,
    "temporal_grounding": TemporalGroundingEvaluator,
    "multi_image_grounding": MultiImageGroundingEvaluator,
}
EVAL_OUTPUTS = ("metrics.json", "predictions.jsonl", "coco_results.json", "report.html")
"""What `write_outputs` may write into an evaluation's output directory."""
REPORT_MAX_SAMPLES = 1000
"""Samples shown in report.html at most: the lowest-scoring three quarters, plus a seeded random
quarter of the rest (every sample stays in predictions.jsonl)."""


def _check_task(task: str, records: Sequence[Record]) -> list[Record]:
    if task not in TASK_NAMES:
        raise UserError(f"unknown task {task!r}; use one of {', '.join(TASK_NAMES)}")
    chosen = [r for r in records if r.task == task]
    if not chosen:
        found = sorted({r.task for r in records})
        raise DataError(f"no {task!r} records to evaluate (the file has: {', '.join(found) or 'nothing'})")
    return chosen


def _report_rows(rows: list[dict], limit: int) -> list[dict]:
    if len(rows) <= limit:
        return rows
    scored = sorted(
        range(len(rows)), key=lambda i: (rows[i].get("score") is not None, rows[i].get("score") or 0)
    )
    worst = scored[: limit * 3 // 4]
    rest = scored[limit * 3 // 4 :]
    chosen = set(worst) | set(random.Random(0).sample(rest, limit - len(worst)))
    return [rows[i] for i in sorted(chosen)]


def write_outputs(
    out_dir: str | os.PathLike,
    metrics: dict[str, Any],
    rows: list[dict],
    *,
    coco_results: list[dict] | None = None,
    title: str = "vrft evaluation",
    report: bool = True,
) -> Path:
    """Write ``metrics.json``, ``predictions.jsonl``, ``coco_results.json`` (detection) and
    ``report.html`` into `out_dir`; returns `out_dir`.

    The directory is locked while writing and each file is renamed into place (`vrft.outputs`); the
    files of an earlier evaluation there are replaced (a stale report.html or coco_results.json is
    removed), a file vrft did not write is never overwritten (UserError).
    """
    from vrft.outputs import OutputDir, atomic_open, atomic_write_text

    out = Path(out_dir)
    names = ["metrics.json", "predictions.jsonl"]
    names += ["coco_results.json"] if coco_results is not None else []
    names += ["report.html"] if report else []
    with OutputDir(out, "eval") as d:
        d.claim(names, clean=True)
        atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2, sort_keys=False) + "\n")
        with atomic_open(out / "predictions.jsonl") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        if coco_results is not None:
            atomic_write_text(out / "coco_results.json", json.dumps(coco_results) + "\n")
        if report:
            from vrft.report.html import render_report

            shown = _report_rows(rows, REPORT_MAX_SAMPLES)
            if len(shown) < len(rows):
                title = f"{title} ({len(shown)} of {len(rows)} samples shown, lowest scores first)"
            render_report(shown, out / "report.html", title=title, metrics=metrics, sort="worst")
    logger.info("wrote %s into %s", ", ".join(names), out)
    return out


def score_predictions(
    records: Sequence[Record],
    completions: Sequence[str | None],
    task: str,
    out_dir: str | os.PathLike | None = None,
    *,
    frame_fn: FrameFn = norm1000_frame,
    gt: dict | None = None,
    lvis: bool = False,
    categories: Sequence[str] | None = None,
    presence: Sequence[bool | None] | None = None,
    require_tags: bool = True,
    report: bool = True,
    title: str | None = None,
    extra: dict[str, Any] | None = None,
    add_missing: bool = True,
    answer_format: str | None = None,
    lvis_area: str = "all",
    annotate: Any = None,
) -> dict[str, Any]:
    """Metrics of `completions` (one per record, ``None`` = not asked) for `task`.

    `annotate(rows, metrics)`, when given, may add to the per-sample rows and the metrics before they
    are written (`vrft.tools.generate.ToolGenerator.annotate`: the turns and the tool metrics).

    `answer_format` ("think" / "answer_only") overrides the records' ``answer_format`` (which format
    the ``format`` reward and ``format_ok`` score); None: each record's own (think when unset).

    Detection: the records are the asked (image, category) pairs; with the all-categories protocol
    every selected category of every image is evaluated, and a pair without a record/completion
    counts as "no detections" (``add_missing=False``, the records protocol: only the records' pairs
    are evaluated). `gt` is a COCO (or, with ``lvis=True``, LVIS) ground-truth dict;
    default: built from the records. `frame_fn` decodes the model's coordinates (default: 0..1000
    of the original image, the paper's convention). `lvis_area`: LVIS per-class AP over area "all" or
    "average" (the reference's notebook; `vrft.evaluate.lvis.lvis_metrics`).

    Returns:
        ``{task: metrics, "run": {...}}`` (also written as ``metrics.json`` when `out_dir` is given).
    """
    if len(records) != len(completions):
        raise ValueError(f"{len(records)} records but {len(completions)} completions")
    records = set_answer_format(records, answer_format)
    task_records = _check_task(task, records)
    keep = {id(r) for r in task_records}
    pairs = [(r, c) for r, c in zip(records, completions) if id(r) in keep]
    presence_of = dict(zip((id(r) for r in records), presence)) if presence is not None else {}
    coco_results = None
    if task == "detection":
        setup = detection_setup(
            [r for r, _ in pairs], gt=gt, categories=categories, lvis=lvis, add_missing=add_missing
        )
        setup.lvis_area = lvis_area
        by_pair: dict[tuple, tuple[str | None, bool | None]] = {}
        for r, c in pairs:
            key = (image_key(r), r.category)
            if key in by_pair:
                raise DataError(
                    f"{r.source or r.id}: a second completion for image {key[0]!r}, category {key[1]!r} "
                    "(keep one line per image and category)"
                )
            by_pair[key] = (c, presence_of.get(id(r)))
        evaluator: Any = DetectionEvaluator(setup, frame_fn, require_tags=require_tags)
        answers = [by_pair.get((image_key(q), q.category), (None, None)) for q in setup.queries]
        evaluator.process(
            setup.queries,
            [a[0] for a in answers],
            [a[1] for a in answers] if presence is not None else None,
        )
        coco_results = evaluator.results
    else:
        evaluator = SAMPLE_EVALUATORS[task](frame_fn, require_tags=require_tags)
        evaluator.process([r for r, _ in pairs], [c for _, c in pairs])
    metrics: dict[str, Any] = {task: evaluator.evaluate()}
    formats = sorted({r.answer_format or "think" for r in task_records})
    metrics["run"] = {
        "task": task,
        "require_tags": require_tags,
        "answer_format": formats[0] if len(formats) == 1 else formats,
        **(extra or {}),
    }
    if annotate is not None:
        annotate(evaluator.rows, metrics)
    if out_dir is not None:
        write_outputs(
            out_dir,
            metrics,
            evaluator.rows,
            coco_results=coco_results,
            title=title or f"vrft {task} evaluation",
            report=report,
        )
    return metrics


def _resize_grid(convention: str, processor: Any) -> dict[str, Any]:
    """What re-scoring needs to decode resized-pixel answers without the model: the processor's pixel
    budget and resize grid (`vrft eval --predictions` reads them from this run's ``metrics.json``)."""
    from vrft.models.load import patch_factor, pixel_budget

    if convention != "resized_pixels" or processor is None:
        return {}
    budget = pixel_budget(processor)
    return {"pixel_budget": list(budget) if budget else None, "patch_factor": patch_factor(processor)}


def evaluate_model(
    model: Any,
    processor: Any,
    records: Sequence[Record],
    task: str,
    out_dir: str | os.PathLike | None,
    *,
    batch_size: int = 16,
    protocol: str = "all-categories",
    max_new_tokens: int | None = None,
    convention: str | None = None,
    gt: dict | None = None,
    lvis: bool = False,
    categories: Sequence[str] | None = None,
    generator: Any = None,
    presence_max_new_tokens: int = PRESENCE_MAX_NEW_TOKENS,
    require_tags: bool = True,
    report: bool = True,
    progress: bool = True,
    title: str | None = None,
    extra: dict[str, Any] | None = None,
    answer_format: str | None = None,
    prompt_style: str = "vrft",
    presence_map: Any = None,
    lvis_area: str = "all",
    media: Any = None,
) -> dict[str, Any]:
    """Generate answers for `records` with `model` and score them (see `score_predictions`).

    Args:
        model, processor: a loaded model and its LEFT-padding processor (`vrft.models.load`).
        records: evaluation records (only those of `task` are used).
        task: "detection", "classification", "grounding", "counting", "ocr", "temporal_grounding" or
            "multi_image_grounding" (the last two need the model-input support of issue 20).
        out_dir: where to write metrics.json / predictions.jsonl / coco_results.json / report.html
            (None: write nothing).
        batch_size: prompts per generate call.
        protocol: detection only: "all-categories", "paper" (own presence pass first) or "records"
            (exactly the records' (image, category) pairs).
        max_new_tokens: generation budget (default: the task's ``max_new_tokens``).
        convention: the model's coordinate convention (default: from its family,
            `vrft.models.load.convention_for`).
        gt, lvis, categories: detection ground truth / LVIS rules / selected categories.
        generator: an object with ``generate(requests, desc) -> list[str]`` (default: `HFGenerator`).
        presence_max_new_tokens: budget of each presence answer (paper protocol).
        answer_format: "think" / "answer_only": every prompt asks for that format and it is scored
            (overrides the records' ``answer_format``); None: each record's own (think when unset).
        prompt_style: "vrft" (the tasks' templates) or "visual-rft" (the reference's inference texts
            byte for byte, with its system prompt and budget where it has them; `vrft.tasks.reference`).
        presence_map: paper protocol only: a `protocols.PresenceMap` (another model's presence
            answers) used instead of running the model's own presence pass.
        lvis_area: LVIS per-class AP over area "all" or "average" (the reference's notebook).
        media: the many-image / video budgets (`vrft.data.visual_inputs.MediaBudget`; None: its
            defaults): records with ``images`` or a ``video`` are asked with every image, or the
            sampled frames, as training showed them (`vrft.evaluate.runner.request_for`).

    Returns:
        The metrics dict (``{task: {...}, "run": {...}}``).
    """
    from vrft.models.load import convention_for, frame_for
    from vrft.tasks import task_for

    for name, value in (("max_new_tokens", max_new_tokens), ("batch_size", batch_size),
                        ("presence_max_new_tokens", presence_max_new_tokens)):  # fmt: skip
        if value is not None and value < 1:  # 0 must not silently mean "the task's default"
            raise UserError(f"{name} must be a positive integer, got {value}")
    records = set_answer_format(records, answer_format)
    task_records = _check_task(task, records)
    if protocol not in PROTOCOLS:
        raise UserError(f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")
    if presence_map is not None and (protocol != "paper" or task != "detection"):
        raise UserError("a presence map (--presence-from) needs detection with --protocol paper")
    if convention is None:
        convention = convention_for(getattr(model, "config", None))
    task_obj = task_for(task, prompt_style, "eval")
    system = getattr(task_obj, "system_prompt", None)
    budget = int(max_new_tokens if max_new_tokens is not None else task_obj.max_new_tokens)
    frames: dict[tuple[int, int], Any] = {}

    def make(width, height):
        if (width, height) not in frames:
            frames[(width, height)] = frame_for(width, height, convention, processor)
        return frames[(width, height)]

    def frame_fn(r: Record):
        return record_frame(r, make)

    if generator is None:
        generator = HFGenerator(model, processor, batch_size=batch_size, progress=progress)
    t0 = time.perf_counter()
    presence: list[bool | None] | None = None
    n_generated = 0
    if task == "detection":
        queries = detection_setup(
            task_records, gt=gt, categories=categories, lvis=lvis, add_missing=protocol != "records"
        ).queries
        asked = list(queries)
        if protocol == "paper" and presence_map is not None:
            _, presence = apply_presence_map(queries, [""] * len(queries), presence_map)
            asked = [q for q, p in zip(queries, presence) if p]
            logger.info(
                "presence map %s: %d of %d (image, category) pairs present",
                presence_map.source,
                len(asked),
                len(queries),
            )
        elif protocol == "paper":
            texts = generator.generate(
                [Request(q.resolved_image(), presence_prompt(q), presence_max_new_tokens) for q in queries],
                desc="presence",
            )
            presence = [parse_presence(t) for t in texts]
            n_generated += len(texts)
            asked = [q for q, p in zip(queries, presence) if p]
            logger.info(
                "presence pass: %d of %d (image, category) pairs answered yes", len(asked), len(queries)
            )
        texts = generator.generate(
            [Request(q.resolved_image(), task_obj.prompt(q, frame_fn(q)), budget, system) for q in asked],
            desc="detect",
        )
        n_generated += len(texts)
        answer_of = {id(q): t for q, t in zip(asked, texts)}
        eval_records: list[Record] = queries
        completions: list[str | None] = [answer_of.get(id(q)) for q in queries]
    else:
        eval_records = task_records
        completions = list(
            generator.generate(
                [
                    request_for(r, task_obj.prompt(r, frame_fn(r)), budget, system, media)
                    for r in task_records
                ],
                desc=task,
            )
        )
        n_generated += len(completions)
    seconds = time.perf_counter() - t0
    run = {
        "protocol": protocol if task == "detection" else None,
        "convention": convention,
        **_resize_grid(convention, processor),
        "batch_size": batch_size,
        "max_new_tokens": budget,
        **({"media_budget": vars(media).copy()} if media is not None else {}),
        "prompt_style": prompt_style,
        "presence_from": presence_map.source if presence_map is not None else None,
        "num_generations": n_generated,
        "generation_seconds": round(seconds, 3),
        "generations_per_second": round(n_generated / seconds, 3) if seconds > 0 else None,
        **(extra or {}),
    }
    return score_predictions(
        eval_records,
        completions,
        task,
        out_dir,
        frame_fn=frame_fn,
        gt=gt,
        lvis=lvis,
        categories=categories,
        presence=presence,
        require_tags=require_tags,
        report=report,
        title=title,
        extra=run,
        add_missing=protocol != "records",
        lvis_area=lvis_area,
        annotate=getattr(generator, "annotate", None),
    )
