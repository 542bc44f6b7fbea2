"""COCO-style detection metrics computed with pycocotools (no hand-written AP code).

Box conversions (``[x1, y1, x2, y2]`` <-> COCO ``[x, y, w, h]``) are `vrft.boxes`'; this module converts
nothing itself. Inputs are plain data: a COCO ground-truth dataset dict (``images``, ``annotations``,
``categories``) and a list of COCO results (``{"image_id", "category_id", "bbox": [x, y, w, h],
"score"}``, pixels of the original image). The ground truth comes either from a real
``instances_*.json`` file or from detection records (`gt_from_records`).

Scale: every AP returned here is on a 0..100 scale, like the paper's tables. A metric that is
undefined (no ground-truth box of the selected classes in the selected images) is ``None``.

Definitions (documented in docs/evaluation.md):
- ``AP`` / ``AP50`` / ``AP75``: pycocotools' summary numbers (IoU 0.50:0.95 / 0.50 / 0.75, area
  "all", at most ``max_dets`` detections per image and class) over the selected classes.
- ``per_class_AP``: AP 0.50:0.95 of each selected class alone (``None`` when it has no GT box).
- ``mAP``: the mean of ``per_class_AP`` over the selected classes that have GT (the paper's number).
  pycocotools' ``AP`` is the same mean taken over the precision array, so the two agree; both are
  reported so either can be compared with published tables.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from vrft.boxes import xyxy_to_xywh
from vrft.errors import DataError

logger = logging.getLogger(__name__)

COCO_MAX_DETS = 100


def image_key(record: Any) -> int | str:
    """The key that identifies a record's image: its ``image_id`` if set, else its image path."""
    return record.image_id if record.image_id is not None else str(record.image)


def gt_from_records(records: Iterable[Any]) -> tuple[dict, dict[int | str, int]]:
    """Build a COCO ground-truth dataset from detection records.

    Records of the same image (same `image_key`) are merged into one COCO image; each record adds
    its `boxes` (pixels ``[x1, y1, x2, y2]``) as annotations of its `category`. Integer image ids
    are kept; other keys get ids 1..N in first-seen order. Category ids are 1..K in sorted name
    order. Annotation ``area`` is the box area (records carry no masks). Crowd regions kept by the COCO
    converter in ``meta["crowd_boxes"]`` become ``iscrowd=1`` annotations (ignored regions in COCOeval).

    Returns:
        ``(dataset, image_ids)``: the COCO dataset dict, and the map image key -> COCO image id.

    Raises:
        DataError: two records of the same image and category disagree on the boxes, or the same
            image appears with different sizes.
    """
    records = [r for r in records if r.task == "detection"]
    keys = [image_key(r) for r in records]
    all_int = all(isinstance(k, int) for k in keys)
    image_ids: dict[int | str, int] = {}
    images: list[dict] = []
    sizes: dict[int, tuple[int, int, str]] = {}
    for rec, key in zip(records, keys):
        if key not in image_ids:
            image_ids[key] = int(key) if all_int else len(image_ids) + 1
            iid = image_ids[key]
            images.append({"id": iid, "width": rec.width, "height": rec.height, "file_name": str(rec.image)})
            sizes[iid] = (rec.width, rec.height, rec.source or rec.id)
        iid = image_ids[key]
        w, h, where = sizes[iid]
        if (rec.width, rec.height) != (w, h):
            raise DataError(
                f"{rec.source or rec.id}: width/height: image {key!r} is {rec.width}x{rec.height} here but "
                f"{w}x{h} at {where} (records of one image must agree)"
            )
    names = sorted({r.category for r in records})
    cat_ids = {name: i + 1 for i, name in enumerate(names)}
    seen: dict[tuple[int, str], tuple[list, str]] = {}
    annotations: list[dict] = []
    for rec, key in zip(records, keys):
        iid = image_ids[key]
        boxes = [[float(v) for v in b] for b in rec.boxes]
        prev = seen.get((iid, rec.category))
        if prev is not None:
            if sorted(prev[0]) != sorted(boxes):
                raise DataError(
                    f"{rec.source or rec.id}: boxes: image {key!r} category {rec.category!r} has different "
                    f"boxes at {prev[1]} (merge them into one record)"
                )
            continue
        seen[(iid, rec.category)] = (boxes, rec.source or rec.id)
        crowd = [[float(v) for v in b] for b in (rec.meta or {}).get("crowd_boxes") or []]
        for box, iscrowd in [(b, 0) for b in boxes] + [(b, 1) for b in crowd]:
            xywh = xyxy_to_xywh(box)  # the conversion lives in vrft.boxes
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": iid,
                    "category_id": cat_ids[rec.category],
                    "bbox": xywh,
                    "area": xywh[2] * xywh[3],
                    "iscrowd": iscrowd,
                }
            )
    categories = [{"id": cid, "name": name} for name, cid in cat_ids.items()]
    return {"images": images, "annotations": annotations, "categories": categories}, image_ids


def load_gt(path: str | os.PathLike, *, lvis: bool = False) -> dict:
    """Read and check a COCO (or LVIS) annotation JSON file with the shared reader
    (`vrft.data.coco.read_instances`: the checks `vrft data convert` and `validate` make), plus what
    evaluation needs: integer image ids (pycocotools) and, for LVIS, the category-id lists of images.

    Raises `DataError` naming the file and every bad image / category / annotation (id and field):
    one NaN coordinate must not turn into a perfect AP.
    """
    from vrft.data.coco import read_instances
    from vrft.data.records import format_problems

    data = read_instances(path, "ground-truth file")
    problems = [
        f"{path}: images[{i}]: id={img['id']!r} must be an integer (COCO evaluation ids)"
        for i, img in enumerate(data["images"])
        if not isinstance(img["id"], int)
    ]
    if lvis:
        from vrft.data.lvis import lvis_problems

        problems += lvis_problems(data, str(path))
    if problems:
        raise DataError(format_problems(problems, f"{path}: {len(problems)} problem(s) in the ground truth:"))
    for ann in data["annotations"]:  # optional in custom files; pycocotools needs both
        ann.setdefault("iscrowd", 0)
        ann.setdefault("area", float(ann["bbox"][2]) * float(ann["bbox"][3]))
    return data


def category_ids_by_name(gt: dict) -> dict[str, int]:
    """Map category name -> id of a COCO dataset dict."""
    return {c["name"]: int(c["id"]) for c in gt["categories"]}


def to_result(image_id: int, category_id: int, box_xyxy: Sequence[float], score: float) -> dict:
    """One COCO result entry from a pixel box ``[x1, y1, x2, y2]`` (written as xywh, `vrft.boxes`)."""
    return {
        "image_id": image_id,
        "category_id": category_id,
        "bbox": xyxy_to_xywh(box_xyxy),
        "score": float(score),
    }


def _coco(dataset: dict):
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        api = COCO()
        api.dataset = dataset
        api.createIndex()
    return api


def _load_results(gt_api, results: list[dict]):
    """`COCO.loadRes`, also for an empty result list (which pycocotools itself rejects)."""
    if results:
        with contextlib.redirect_stdout(io.StringIO()):
            return gt_api.loadRes(copy.deepcopy(results))
    empty = {
        "images": list(gt_api.dataset["images"]),
        "categories": copy.deepcopy(gt_api.dataset["categories"]),
        "annotations": [],
    }
    return _coco(empty)


def _mean_defined(values: np.ndarray) -> float | None:
    defined = values[values > -1]
    return float(np.mean(defined)) if defined.size else None


def _scaled(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


def coco_metrics(
    gt: dict,
    results: list[dict],
    *,
    img_ids: Sequence[int] | None = None,
    cat_ids: Sequence[int] | None = None,
    max_dets: int = COCO_MAX_DETS,
) -> dict[str, Any]:
    """Box AP of `results` against `gt` with pycocotools' COCOeval, restricted to images / classes.

    Args:
        gt: COCO dataset dict (images, annotations, categories); not modified.
        results: COCO results (``bbox`` xywh pixels, ``score``); not modified. Results for images or
            classes outside the selection are ignored by COCOeval.
        img_ids: images to evaluate (default: every image of `gt`).
        cat_ids: the selected classes (default: every class of `gt`).
        max_dets: detections kept per image and class (COCO: 100).

    Returns:
        ``{"AP", "AP50", "AP75", "mAP", "per_class_AP": {name: AP}, "per_class_AP50": {...},
        "num_images", "num_classes", "num_classes_with_gt", "num_detections"}``, AP on 0..100
        (``None`` where undefined).
    """
    from pycocotools.cocoeval import COCOeval

    gt_api = _coco(gt)
    img_ids = sorted(gt_api.getImgIds()) if img_ids is None else sorted(set(int(i) for i in img_ids))
    cat_ids = sorted(gt_api.getCatIds()) if cat_ids is None else sorted(set(int(c) for c in cat_ids))
    names = {c["id"]: c["name"] for c in gt["categories"]}
    known = set(gt_api.getImgIds())
    results = [r for r in results if r["image_id"] in known]
    img_set, cat_set = set(img_ids), set(cat_ids)
    out: dict[str, Any] = {
        "num_images": len(img_ids),
        "num_classes": len(cat_ids),
        "num_detections": sum(1 for r in results if r["image_id"] in img_set and r["category_id"] in cat_set),
    }
    if not img_ids or not cat_ids:
        out.update(AP=None, AP50=None, AP75=None, mAP=None, per_class_AP={}, per_class_AP50={})
        out["num_classes_with_gt"] = 0
        return out
    dt_api = _load_results(gt_api, results)
    ev = COCOeval(gt_api, dt_api, iouType="bbox")
    ev.params.imgIds = img_ids
    ev.params.catIds = cat_ids
    ev.params.maxDets = [1, 10, max_dets]
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    # precision: [T iou thresholds, R recall thresholds, K classes, A areas, M max-dets]; area "all" = 0,
    # the last max-dets entry is `max_dets`.
    precision = ev.eval["precision"][:, :, :, 0, -1]
    iou50 = int(np.argmin(np.abs(ev.params.iouThrs - 0.5)))
    per_class = {names[c]: _scaled(_mean_defined(precision[:, :, k])) for k, c in enumerate(cat_ids)}
    per_class50 = {names[c]: _scaled(_mean_defined(precision[iou50, :, k])) for k, c in enumerate(cat_ids)}
    defined = [v for v in per_class.values() if v is not None]
    stats = [None if s < 0 else 100.0 * float(s) for s in ev.stats[:3]]
    out.update(
        AP=stats[0],
        AP50=stats[1],
        AP75=stats[2],
        mAP=float(np.mean(defined)) if defined else None,
        per_class_AP=per_class,
        per_class_AP50=per_class50,
        num_classes_with_gt=len(defined),
    )
    return out
