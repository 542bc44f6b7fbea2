"""Re-scoring saved completions without a model (``vrft eval --predictions``), and choosing what a
model is evaluated on.

- `rescore(predictions, out_dir, ...)`: metrics of a predictions JSONL against records or a COCO/LVIS
  ground truth;
- `records_from_gt(lines, gt, images_dir)`: one detection record per (image, category) of the lines;
- `read_prediction_lines(path)`: the checked lines of a predictions JSONL;
- `infer_task`, `limit_records`: the task of a record file, and its first N images / records.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vrft.boxes import CONVENTIONS, QWEN_FACTOR, Frame
from vrft.data.coco import gt_boxes
from vrft.data.records import Record, load_records
from vrft.errors import DataError, UserError
from vrft.evaluate.base import record_frame
from vrft.evaluate.coco import category_ids_by_name, image_key
from vrft.evaluate.pipeline import score_predictions
from vrft.evaluate.protocols import apply_presence_map, detection_setup, resolve_category

logger = logging.getLogger(__name__)


def infer_task(records, task: str | None) -> str:
    """`task`, or the single task of `records` (UserError when they hold several)."""
    if task:
        return task
    tasks = sorted({r.task for r in records})
    if len(tasks) != 1:
        raise UserError(f"the records hold several tasks ({', '.join(tasks)}); choose one with --task")
    return tasks[0]


def limit_records(records, task: str, limit: int | None):
    """The first `limit` records; detection: every record of the first `limit` images."""
    if limit is None:
        return records
    if limit < 1:
        raise UserError(f"--limit must be >= 1, got {limit}")
    if task != "detection":
        return records[:limit]
    keep: dict[Any, None] = {}
    for r in records:
        if len(keep) >= limit and image_key(r) not in keep:
            continue
        keep.setdefault(image_key(r), None)
    return [r for r in records if image_key(r) in keep]


def read_prediction_lines(path: str) -> list[tuple[str, dict]]:
    """``[(file:line, object)]`` of a predictions JSONL; DataError listing every malformed line."""
    from vrft.inputs import iter_lines, parse_json_line

    p = Path(path)
    out, problems = [], []
    for n, line in iter_lines(p, "predictions file"):  # not found / a directory / not UTF-8: DataError
        where = f"{p}:{n}"
        obj, why = parse_json_line(line)
        if why:
            problems.append(f"{where}: {why}")
            continue
        if not isinstance(obj, dict):
            problems.append(f"{where}: expected a JSON object")
            continue
        if "completion" not in obj or not (obj["completion"] is None or isinstance(obj["completion"], str)):
            problems.append(f"{where}: completion: missing or not a string (the raw model text)")
            continue
        bad = _field_problem(obj)
        if bad:
            problems.append(f"{where}: {bad}")
            continue
        out.append((where, obj))
    if problems:
        raise DataError(f"{p}: {len(problems)} problem(s):\n  " + "\n  ".join(problems[:50]))
    return out


def _field_problem(obj: dict) -> str | None:
    """The first prediction-line field of a wrong type (they become dictionary keys), else None."""
    for key, ok, want in (
        ("id", lambda v: isinstance(v, (str, int)) and not isinstance(v, bool), "a string"),
        (
            "image_id",
            lambda v: isinstance(v, (str, int)) and not isinstance(v, bool),
            "an integer (or string)",
        ),
        ("category", lambda v: isinstance(v, str), "a string"),
        ("presence", lambda v: isinstance(v, bool), "true or false"),
    ):
        if obj.get(key) is not None and not ok(obj[key]):
            return f"{key}: {obj[key]!r} must be {want}"
    return None


def line_image_id(where: str, obj: dict) -> Any:
    iid = obj.get("image_id")
    if isinstance(iid, str) and iid.strip().isdigit():
        return int(iid)
    if iid is None or isinstance(iid, bool):
        raise DataError(f"{where}: image_id: missing (detection lines need image_id and category)")
    return iid


def records_from_gt(lines, gt: dict, images_dir: str | None) -> list[Record]:
    """One detection record per (image, category) named in the prediction lines, targets from `gt`."""
    images = {img["id"]: img for img in gt["images"]}
    by_name = category_ids_by_name(gt)
    names = {}  # the name used in the prediction lines -> GT category id
    for _, obj in lines:
        cid = resolve_category(str(obj.get("category")), by_name)
        if cid is not None:
            names[obj.get("category")] = cid
    boxes, crowd, _ = gt_boxes(gt)  # the one xywh -> xyxy + crowd split (vrft.data.coco)
    records, seen, problems = [], set(), []
    for where, obj in lines:
        iid, cat = line_image_id(where, obj), obj.get("category")
        if iid not in images:
            problems.append(f"{where}: image_id {iid!r} is not an image of the ground-truth file")
            continue
        if cat not in names:
            problems.append(f"{where}: category {cat!r} is not a category of the ground-truth file")
            continue
        if (iid, cat) in seen:
            continue
        seen.add((iid, cat))
        img = images[iid]
        name = img.get("file_name") or (img.get("coco_url") or "").rsplit("/", 1)[-1] or f"{iid}.jpg"
        path = Path(images_dir) / name if images_dir else Path(name)
        meta: dict = {"category_id": names[cat]}
        if crowd.get((iid, names[cat])):
            meta["crowd_boxes"] = crowd[(iid, names[cat])]
        records.append(
            Record(
                id=str(obj.get("id") or f"{iid}-{cat}"),
                task="detection",
                image=str(path),
                width=int(img["width"]),
                height=int(img["height"]),
                image_id=iid,
                category=cat,
                boxes=boxes.get((iid, names[cat]), []),
                meta=meta,
                image_path=path.resolve() if images_dir else None,
                source=where,
            )
        )
    if problems:
        raise DataError(
            f"{len(problems)} prediction line(s) do not match the ground truth:\n  "
            + "\n  ".join(problems[:50])
        )
    return records


def _default_categories(records, texts: dict, gt: dict | None, from_data: bool) -> list[str] | None:
    """The selected categories when --categories is not given: with --data, None (every category of
    the records, `detection_setup`); against a GT file alone, the categories the lines name plus every
    GT category with a box in the evaluated images, so a class with ground truth but no answer counts
    (AP 0, as pycocotools counts it)."""
    if from_data or gt is None:
        return None
    names = list(dict.fromkeys(k[1] for k in texts))
    by_name = category_ids_by_name(gt)
    named_ids = {resolve_category(str(n), by_name) for n in names}
    images = {r.image_id for r in records}
    with_gt = {
        a["category_id"] for a in gt["annotations"] if a["image_id"] in images and not a.get("iscrowd")
    }
    names += [c["name"] for c in gt["categories"] if c["id"] in with_gt and c["id"] not in named_ids]
    return names


def rescore(
    predictions: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    data: str | os.PathLike | None = None,
    task: str | None = None,
    gt: dict | None = None,
    lvis: bool = False,
    images_dir: str | None = None,
    convention: str = "norm1000",
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    patch_factor: int | None = None,
    categories: Sequence[str] | None = None,
    protocol: str = "all-categories",
    require_tags: bool = True,
    report: bool = True,
    answer_format: str | None = None,
    presence_map: Any = None,
    lvis_area: str = "all",
    limit: int | None = None,
) -> dict:
    """Metrics of saved completions (``vrft eval --predictions``), without a model.

    `predictions`: JSONL with ``completion`` per line, and ``id`` (a record id of `data`) or, for
    detection against `gt`, ``image_id`` and ``category``. `convention`: the coordinates of the answers
    (norm1000, pixels, or resized_pixels: then `min_pixels` / `max_pixels` and `patch_factor`, default
    28 as Qwen2.5-VL, give the processor's resize, `vrft.boxes.smart_resize`). Detection pairs of the
    evaluated images and categories that have no line count as no detections, except with
    ``protocol="records"``; a record of another task without a line counts as unanswered (wrong). `answer_format` ("think" / "answer_only")
    overrides the records' ``answer_format`` for the format score (None: each record's own).
    `presence_map` (a `protocols.PresenceMap`, detection with ``protocol="paper"``): only the pairs it
    lists count as asked, the others as not asked: an all-categories run re-scored under another
    model's presence answers. `lvis_area`: LVIS per-class AP over area "all" or "average" (the
    reference's notebook). `limit`: evaluate only the first N images (detection) / records of `data`
    (`limit_records`, as ``vrft eval --model --limit`` chose them).
    """
    if limit is not None and not data:
        raise UserError(
            "--limit with --predictions needs --data (it keeps the first N images / records of it)"
        )
    if presence_map is not None and protocol != "paper":
        raise UserError(
            "--presence-from replaces the presence pass of the paper protocol: add --protocol paper"
        )
    if convention not in CONVENTIONS:
        raise UserError(f"--convention {convention}: use one of {', '.join(CONVENTIONS)}")
    grid: dict[str, int] = {}
    if convention == "resized_pixels":
        if min_pixels is None or max_pixels is None:
            raise UserError(
                "--convention resized_pixels: the answers are pixels of the image as the processor resized it; "
                "give the run's pixel budget with --min-pixels and --max-pixels (or re-score the "
                "predictions.jsonl of a vrft eval run, whose metrics.json records it)"
            )
        grid = {"min_pixels": int(min_pixels), "max_pixels": int(max_pixels)}
        grid["factor"] = int(patch_factor or QWEN_FACTOR)
    frames: dict[tuple, Frame] = {}

    def frame_fn(r):
        def make(width, height):
            if (width, height) not in frames:
                try:
                    frames[(width, height)] = Frame.for_image(width, height, convention, **grid)
                except ValueError as err:  # an aspect ratio the processor's resize refuses
                    raise DataError(f"{r.source or r.id}: width/height {width}x{height}: {err}") from None
            return frames[(width, height)]

        return record_frame(r, make)

    lines = read_prediction_lines(predictions)
    if data:
        records = load_records(data)
        task = infer_task(records, task)
    elif gt is not None:
        task = task or "detection"
        if task != "detection":
            raise UserError(
                "--predictions without --data needs detection (give --data RECORDS for other tasks)"
            )
        records = records_from_gt(lines, gt, images_dir)
    else:
        raise UserError("--predictions needs --data RECORDS or --coco-gt / --lvis-gt to score against")
    records = [r for r in records if r.task == task]
    known_ids = {r.id for r in records}  # before --limit: a line of a record past the limit is ignored
    records = limit_records(records, task, limit)
    extra: dict[str, Any] = {"predictions": str(predictions), "convention": convention}
    if grid:
        extra.update(pixel_budget=[grid["min_pixels"], grid["max_pixels"]], patch_factor=grid["factor"])
    common = dict(
        gt=gt, lvis=lvis, require_tags=require_tags, report=report, extra=extra,
        title=f"vrft eval: {Path(predictions).name} ({task})", answer_format=answer_format,
        lvis_area=lvis_area,
    )  # fmt: skip
    if task != "detection":
        if presence_map is not None:
            raise UserError("--presence-from applies to detection only")
        by_id = {r.id: r for r in records}
        answer_of: dict[str, str | None] = {}
        missing, past_limit = [], 0
        for where, obj in lines:
            rid = str(obj.get("id"))
            if rid not in by_id:
                if rid in known_ids:
                    past_limit += 1
                else:
                    missing.append(f"{where}: id {obj.get('id')!r}")
                continue
            if rid in answer_of:
                raise DataError(f"{where}: a second line for record id {rid!r} (keep one line per record)")
            answer_of[rid] = obj["completion"]
        if missing:
            raise DataError(
                "prediction lines whose id is not a record id of --data:\n  " + "\n  ".join(missing[:50])
            )
        if past_limit:
            logger.warning("%d prediction line(s) are of records past --limit %s; ignored", past_limit, limit)
        # every record of --data is evaluated: one without a line counts as unanswered (wrong), not skipped
        unanswered = [r.id for r in records if r.id not in answer_of]
        if unanswered:
            logger.warning(
                "%d of %d record(s) of %s have no prediction line; they count as unanswered (wrong) (e.g. %s)",
                len(unanswered), len(records), data, unanswered[:3],
            )  # fmt: skip
        extra["unanswered"] = len(unanswered)
        completions = [answer_of.get(r.id, "") for r in records]
        return score_predictions(records, completions, task, out_dir, frame_fn=frame_fn, **common)
    by_id = {r.id: r for r in records}
    texts: dict[tuple, str | None] = {}
    presence: dict[tuple, bool | None] = {}
    for where, obj in lines:
        rec = by_id.get(str(obj.get("id"))) if obj.get("id") is not None else None
        key = (
            (image_key(rec), rec.category)
            if rec is not None
            else (line_image_id(where, obj), obj.get("category"))
        )
        if key in texts:
            raise DataError(f"{where}: a second line for image {key[0]!r}, category {key[1]!r}")
        texts[key] = obj["completion"]
        presence[key] = obj.get("presence")
    categories = list(categories or ()) or _default_categories(records, texts, gt, data is not None)
    add_missing = protocol != "records"
    setup = detection_setup(records, gt=gt, categories=categories, lvis=lvis, add_missing=add_missing)
    queries = setup.queries
    keys = [(image_key(q), q.category) for q in queries]
    unused = set(texts) - set(keys)
    if unused:
        logger.warning(
            "%d prediction line(s) name an (image, category) outside the evaluated images/categories; ignored "
            "(e.g. %s)", len(unused), sorted(map(str, unused))[:3],
        )  # fmt: skip
    answers = [texts.get(k) for k in keys]
    if presence_map is not None:  # the paper protocol with another run's presence answers
        answers, said = apply_presence_map(queries, answers, presence_map)
        presence = dict(zip(keys, said))
        extra["presence_from"] = presence_map.source
    has_presence = any(v is not None for v in presence.values())
    return score_predictions(
        queries,
        answers,
        "detection",
        out_dir,
        frame_fn=frame_fn,
        categories=categories,
        presence=[presence.get(k) for k in keys] if has_presence else None,
        add_missing=add_missing,
        **common,
    )
