"""`vrft eval`: evaluate a model on records, or re-score saved completions, with the paper's metrics.

    vrft eval --model DIR --data RECORDS --out DIR [--task T] [--protocol all-categories|paper|records]
              [--batch-size 16] [--max-new-tokens N] [--backend hf|vllm] [--limit N]
              [--coco-gt instances.json | --lvis-gt lvis_v1_val.json] [--categories a,b,...]
    vrft eval --predictions FILE.jsonl --coco-gt instances.json --out DIR [--images DIR]
    vrft eval --predictions FILE.jsonl --data RECORDS --out DIR

Writes metrics.json, predictions.jsonl, coco_results.json (detection) and report.html into --out.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from vrft.errors import DataError, UserError

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_argument_group("what to evaluate")
    src.add_argument("--model", help="local Hugging Face model directory (checkpoint or `vrft tiny` output)")
    src.add_argument(
        "--predictions", help="JSONL of saved completions to re-score instead of running a model"
    )
    src.add_argument("--data", help="records JSONL (vrft data convert / synthesize output)")
    src.add_argument("--out", required=True, help="output directory")
    src.add_argument(
        "--task", choices=("detection", "classification", "grounding"), help="default: the records' task"
    )
    det = parser.add_argument_group("detection")
    det.add_argument(
        "--protocol",
        choices=("all-categories", "paper", "records"),
        default="all-categories",
        help="all-categories: ask every category for every image; paper: the model's own yes/no presence "
        "pass first, boxes only where it says yes; records: exactly the records' (image, category) pairs, "
        "nothing added (default: all-categories)",
    )
    det.add_argument(
        "--coco-gt", help="COCO instances JSON: the ground truth (default: built from the records)"
    )
    det.add_argument(
        "--lvis-gt", help="LVIS annotation JSON: evaluate with LVIS rules (needs `pip install lvis`)"
    )
    det.add_argument(
        "--categories", help="comma-separated selected categories (default: those in the records)"
    )
    det.add_argument("--images", help="--predictions with --coco-gt: directory of the images, for the report")
    gen = parser.add_argument_group("generation")
    gen.add_argument("--batch-size", type=int, default=16, help="prompts per generate call (default 16)")
    gen.add_argument("--max-new-tokens", type=int, help="token budget per answer (default: the task's)")
    gen.add_argument(
        "--backend", choices=("hf", "vllm"), default="hf", help="generation backend (default hf)"
    )
    gen.add_argument("--limit", type=int, help="evaluate only the first N images (detection) / records")
    gen.add_argument("--dtype", default="auto", help="model dtype: auto, float32, bfloat16, float16")
    gen.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    gen.add_argument("--min-pixels", type=int, help="image processor min_pixels (Qwen; paper: 3136)")
    gen.add_argument("--max-pixels", type=int, help="image processor max_pixels (Qwen; paper: 401408)")
    gen.add_argument(
        "--convention",
        default="auto",
        help="coordinate convention of the answers: auto (from the model family), norm1000, resized_pixels, "
        "pixels; --predictions: norm1000 (default) or pixels",
    )
    gen.add_argument(
        "--presence-max-new-tokens",
        type=int,
        default=64,
        help="token budget of a presence answer (paper protocol)",
    )
    out = parser.add_argument_group("scoring and output")
    out.add_argument(
        "--lenient-parse",
        action="store_true",
        help="read answers without <answer> tags (text after </think>, or the whole text); default: tags required",
    )
    out.add_argument("--no-report", action="store_true", help="do not write report.html")


def _categories(text: str | None) -> list[str] | None:
    if not text:
        return None
    names = [c.strip() for c in text.split(",") if c.strip()]
    if not names:
        raise UserError("--categories is empty; give comma-separated names, e.g. --categories cat,dog")
    return names


def _infer_task(records, task: str | None) -> str:
    if task:
        return task
    tasks = sorted({r.task for r in records})
    if len(tasks) != 1:
        raise UserError(f"the records hold several tasks ({', '.join(tasks)}); choose one with --task")
    return tasks[0]


def _limit(records, task: str, limit: int | None):
    if limit is None:
        return records
    if limit < 1:
        raise UserError(f"--limit must be >= 1, got {limit}")
    if task != "detection":
        return records[:limit]
    from vrft.evaluate.coco import image_key

    keep: dict[Any, None] = {}
    for r in records:
        if len(keep) >= limit and image_key(r) not in keep:
            continue
        keep.setdefault(image_key(r), None)
    return [r for r in records if image_key(r) in keep]


def _ground_truth(args) -> tuple[dict | None, bool]:
    from vrft.evaluate.coco import load_gt

    if args.coco_gt and args.lvis_gt:
        raise UserError("give either --coco-gt or --lvis-gt, not both")
    if args.lvis_gt:
        return load_gt(args.lvis_gt), True
    if args.coco_gt:
        return load_gt(args.coco_gt), False
    return None, False


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def _run_model(args, records, task: str, gt: dict | None, lvis: bool) -> dict:
    from vrft.evaluate.pipeline import evaluate_model
    from vrft.models.load import convention_for, load_model_and_processor, load_processor

    override = None if args.convention == "auto" else args.convention
    extra = {"model": str(args.model), "data": str(args.data), "backend": args.backend}
    if args.backend == "vllm":
        from transformers import AutoConfig

        from vrft.evaluate.runner import VLLMGenerator

        processor = load_processor(args.model, min_pixels=args.min_pixels, max_pixels=args.max_pixels)
        config = AutoConfig.from_pretrained(args.model, local_files_only=True)
        generator = VLLMGenerator(args.model, processor, dtype=args.dtype)
        model = None
        convention = convention_for(config, override)
    else:
        model, processor = load_model_and_processor(
            args.model, dtype=args.dtype, min_pixels=args.min_pixels, max_pixels=args.max_pixels
        )
        model.to(_device(args.device))
        generator = None
        convention = convention_for(model.config, override)
    return evaluate_model(
        model,
        processor,
        records,
        task,
        args.out,
        batch_size=args.batch_size,
        protocol=args.protocol,
        max_new_tokens=args.max_new_tokens,
        convention=convention,
        gt=gt,
        lvis=lvis,
        categories=_categories(args.categories),
        generator=generator,
        presence_max_new_tokens=args.presence_max_new_tokens,
        require_tags=not args.lenient_parse,
        report=not args.no_report,
        title=f"vrft eval: {Path(args.model).name} on {Path(args.data).name} ({task})",
        extra=extra,
    )


def read_prediction_lines(path: str) -> list[tuple[str, dict]]:
    """``[(file:line, object)]`` of a predictions JSONL; DataError listing every malformed line."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: predictions file not found")
    out, problems = [], []
    with open(p, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{p}:{n}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                problems.append(f"{where}: invalid JSON ({err.msg})")
                continue
            if not isinstance(obj, dict):
                problems.append(f"{where}: expected a JSON object")
                continue
            if "completion" not in obj or not (
                obj["completion"] is None or isinstance(obj["completion"], str)
            ):
                problems.append(f"{where}: completion: missing or not a string (the raw model text)")
                continue
            out.append((where, obj))
    if problems:
        raise DataError(f"{p}: {len(problems)} problem(s):\n  " + "\n  ".join(problems[:50]))
    return out


def _line_image_id(where: str, obj: dict) -> Any:
    iid = obj.get("image_id")
    if isinstance(iid, str) and iid.strip().isdigit():
        return int(iid)
    if iid is None or isinstance(iid, bool):
        raise DataError(f"{where}: image_id: missing (detection lines need image_id and category)")
    return iid


def _records_from_gt(lines, gt: dict, images_dir: str | None) -> list:
    """One detection record per (image, category) named in the prediction lines, targets from `gt`."""
    from vrft.data.records import Record
    from vrft.evaluate.coco import category_ids_by_name
    from vrft.evaluate.protocols import resolve_category

    images = {img["id"]: img for img in gt["images"]}
    by_name = category_ids_by_name(gt)
    names = {}  # the name used in the prediction lines -> GT category id
    for _, obj in lines:
        cid = resolve_category(str(obj.get("category")), by_name)
        if cid is not None:
            names[obj.get("category")] = cid
    boxes: dict[tuple, list] = defaultdict(list)
    crowd: dict[tuple, list] = defaultdict(list)
    for a in gt["annotations"]:
        x, y, w, h = a["bbox"]
        (crowd if a.get("iscrowd", 0) else boxes)[(a["image_id"], a["category_id"])].append(
            [x, y, x + w, y + h]
        )
    records, seen, problems = [], set(), []
    for where, obj in lines:
        iid, cat = _line_image_id(where, obj), obj.get("category")
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


def _rescore(args, gt: dict | None, lvis: bool) -> dict:
    from vrft.boxes import Frame
    from vrft.data.records import load_records
    from vrft.evaluate.coco import image_key
    from vrft.evaluate.pipeline import score_predictions
    from vrft.evaluate.protocols import detection_setup

    convention = "norm1000" if args.convention == "auto" else args.convention
    if convention not in ("norm1000", "pixels"):
        raise UserError(
            "--predictions: --convention must be norm1000 or pixels (resized_pixels needs the model)"
        )

    def frame_fn(r):
        return Frame(r.width, r.height, convention)

    lines = read_prediction_lines(args.predictions)
    if args.data:
        records = load_records(args.data)
        task = _infer_task(records, args.task)
    elif gt is not None:
        task = args.task or "detection"
        if task != "detection":
            raise UserError(
                "--predictions without --data needs detection (give --data RECORDS for other tasks)"
            )
        records = _records_from_gt(lines, gt, args.images)
    else:
        raise UserError("--predictions needs --data RECORDS or --coco-gt / --lvis-gt to score against")
    records = [r for r in records if r.task == task]
    extra = {"predictions": str(args.predictions), "convention": convention}
    common = dict(
        gt=gt, lvis=lvis, require_tags=not args.lenient_parse, report=not args.no_report, extra=extra,
        title=f"vrft eval: {Path(args.predictions).name} ({task})",
    )  # fmt: skip
    if task != "detection":
        by_id = {r.id: r for r in records}
        chosen, completions, missing = [], [], []
        for where, obj in lines:
            rec = by_id.get(str(obj.get("id")))
            if rec is None:
                missing.append(f"{where}: id {obj.get('id')!r}")
                continue
            chosen.append(rec)
            completions.append(obj["completion"])
        if missing:
            raise DataError(
                "prediction lines whose id is not a record id of --data:\n  " + "\n  ".join(missing[:50])
            )
        return score_predictions(chosen, completions, task, args.out, frame_fn=frame_fn, **common)
    by_id = {r.id: r for r in records}
    texts: dict[tuple, str | None] = {}
    presence: dict[tuple, bool | None] = {}
    for where, obj in lines:
        rec = by_id.get(str(obj.get("id"))) if obj.get("id") is not None else None
        key = (
            (image_key(rec), rec.category)
            if rec is not None
            else (_line_image_id(where, obj), obj.get("category"))
        )
        if key in texts:
            raise DataError(f"{where}: a second line for image {key[0]!r}, category {key[1]!r}")
        texts[key] = obj["completion"]
        presence[key] = obj.get("presence")
    categories = _categories(args.categories) or list(dict.fromkeys(k[1] for k in texts))
    add_missing = args.protocol != "records"
    setup = detection_setup(records, gt=gt, categories=categories, lvis=lvis, add_missing=add_missing)
    queries = setup.queries
    keys = [(image_key(q), q.category) for q in queries]
    unused = set(texts) - set(keys)
    if unused:
        logger.warning(
            "%d prediction line(s) name an (image, category) outside the evaluated images/categories; ignored "
            "(e.g. %s)", len(unused), sorted(map(str, unused))[:3],
        )  # fmt: skip
    has_presence = any(v is not None for v in presence.values())
    return score_predictions(
        queries,
        [texts.get(k) for k in keys],
        "detection",
        args.out,
        frame_fn=frame_fn,
        categories=categories,
        presence=[presence.get(k) for k in keys] if has_presence else None,
        add_missing=add_missing,
        **common,
    )


def _summary(metrics: dict) -> str:
    lines = []
    for task, values in metrics.items():
        if task == "run" or not isinstance(values, dict):
            continue
        shown = [
            f"{k}={v:.2f}" if isinstance(v, float) and math.isfinite(v) else f"{k}={v}"
            for k, v in values.items()
            if not isinstance(v, dict)
        ]
        lines.append(f"{task}: " + " ".join(shown))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from vrft.data.records import load_records

    if bool(args.model) == bool(args.predictions):
        raise UserError("give exactly one of --model DIR (run the model) or --predictions FILE (re-score)")
    gt, lvis = _ground_truth(args)
    if args.predictions:
        metrics = _rescore(args, gt, lvis)
    else:
        if not args.data:
            raise UserError("--model needs --data RECORDS (the evaluation records)")
        records = load_records(args.data)
        task = _infer_task(records, args.task)
        records = _limit([r for r in records if r.task == task], task, args.limit)
        metrics = _run_model(args, records, task, gt, lvis)
    print(_summary(metrics))
    print(f"wrote {Path(args.out) / 'metrics.json'}")
    return 0
