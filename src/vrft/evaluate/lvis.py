"""LVIS box AP with the official LVIS API (PyPI ``lvis``, install with ``pip install 'vrft[lvis]'``).

LVIS is a federated dataset, and its rules differ from COCO's (all handled by ``lvis.LVISEval``):
- at most 300 detections per image (over all classes, highest scores kept);
- a detection of a class that is neither annotated in the image nor listed in the image's
  ``neg_category_ids`` is dropped (the image was never checked for that class);
- an unmatched detection of a class in the image's ``not_exhaustive_category_ids`` is not a false
  positive;
- AP is also reported for the rare / common / frequent groups (``APr`` / ``APc`` / ``APf``).

The ground truth must be an LVIS annotation file (``lvis_v1_val.json``), or a dict of the same
shape: images carry ``neg_category_ids`` and ``not_exhaustive_category_ids``, categories carry
``frequency`` (``"r"``, ``"c"`` or ``"f"``). AP values are on 0..100, ``None`` where undefined.

lvis 0.5.3 (the current release) calls ``np.float`` (in ``LVISEval.accumulate``), which NumPy
removed in 1.24; while ``LVISEval`` runs (and only then, one evaluation at a time) we define that
alias as the builtin ``float`` it always meant, and remove it afterwards, also when the evaluation
raises: numpy is left exactly as it was (``hasattr(np, "float")`` is unchanged; tested).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import tempfile
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vrft.errors import UserError

logger = logging.getLogger(__name__)

LVIS_MAX_DETS = 300
FREQUENCY_GROUPS = ("r", "c", "f")
AREAS = ("all", "average")
"""Per-class AP: over area "all" (index 0 of LVIS's precision array), or "average": the mean of every
defined precision value over all four area ranges (all, small, medium, large), which is how the
reference's scoring notebook computes its per-class AP (``precision[:, :, k, :]``, values > -1)."""


def _import_lvis():
    try:
        import lvis  # noqa: F401
        from lvis import LVIS, LVISEval, LVISResults
    except ImportError:
        raise UserError(
            "LVIS evaluation needs the LVIS API: pip install 'vrft[lvis]' (or pip install lvis)"
        ) from None
    return LVIS, LVISEval, LVISResults


_ALIAS_LOCK = threading.Lock()


@contextlib.contextmanager
def _numpy_float_alias() -> Iterator[None]:
    """``np.float = float`` for the duration of the block only (serialised: two threads evaluating LVIS
    at once cannot remove the alias under each other); an existing ``np.float`` is left untouched."""
    with _ALIAS_LOCK:
        added = "float" not in np.__dict__
        if added:
            np.float = float  # type: ignore[attr-defined]
        try:
            yield
        finally:
            if added:
                np.__dict__.pop("float", None)


def _load_lvis(gt: dict | str | os.PathLike):
    LVIS, _, _ = _import_lvis()
    if isinstance(gt, (str, os.PathLike)):
        return LVIS(str(gt))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lvis_gt.json"
        path.write_text(json.dumps(gt), encoding="utf-8")
        return LVIS(str(path))


def _mean_defined(values: np.ndarray) -> float | None:
    defined = values[values > -1]
    return 100.0 * float(np.mean(defined)) if defined.size else None


def lvis_metrics(
    gt: dict | str | os.PathLike,
    results: list[dict],
    *,
    img_ids: Sequence[int] | None = None,
    cat_ids: Sequence[int] | None = None,
    max_dets: int = LVIS_MAX_DETS,
    area: str = "all",
) -> dict[str, Any]:
    """LVIS box AP of COCO-style `results` (``bbox`` xywh pixels, ``score``) against `gt`.

    Args:
        gt: LVIS annotation dict or path to the JSON file.
        results: detections; not modified.
        img_ids: images to evaluate (default: all images of `gt`).
        cat_ids: selected classes (default: all classes of `gt`).
        max_dets: detections kept per image over all classes (LVIS: 300).
        area: per-class AP (and so ``mAP``) over area ``"all"`` (default), or ``"average"`` over the
            four area ranges as the reference's notebook (`AREAS`); AP / APr / APc / APf are LVIS's own.

    Returns:
        ``{"AP", "AP50", "AP75", "APr", "APc", "APf", "mAP", "per_class_AP", "num_images",
        "num_classes", "num_classes_with_gt", "num_detections", "per_class_area"}`` on 0..100.

    Raises:
        UserError: the ``lvis`` package is not installed.
    """
    if area not in AREAS:
        raise UserError(f"LVIS per-class area must be one of {', '.join(AREAS)}, got {area!r}")
    _, LVISEval, LVISResults = _import_lvis()
    gt_api = _load_lvis(gt)
    img_ids = sorted(gt_api.get_img_ids()) if img_ids is None else sorted({int(i) for i in img_ids})
    cat_ids = sorted(gt_api.get_cat_ids()) if cat_ids is None else sorted({int(c) for c in cat_ids})
    img_set, cat_set = set(img_ids), set(cat_ids)
    results = [r for r in results if r["image_id"] in img_set and r["category_id"] in cat_set]
    names = {c["id"]: c["name"] for c in gt_api.dataset["categories"]}
    out: dict[str, Any] = {
        "num_images": len(img_ids),
        "num_classes": len(cat_ids),
        "num_detections": len(results),
        "per_class_area": area,
    }
    if not results:
        # LVISResults cannot take an empty list; with no detections every defined AP is 0.
        has_gt = {
            a["category_id"] for a in gt_api.dataset["annotations"] if a["image_id"] in img_set
        } & cat_set
        freq = {c["id"]: c.get("frequency") for c in gt_api.dataset["categories"]}
        zero = 0.0 if has_gt else None
        out.update(AP=zero, AP50=zero, AP75=zero, mAP=zero, num_classes_with_gt=len(has_gt))
        for g in FREQUENCY_GROUPS:
            out[f"AP{g}"] = 0.0 if any(freq[c] == g for c in has_gt) else None
        out["per_class_AP"] = {names[c]: (0.0 if c in has_gt else None) for c in cat_ids}
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # lvis calls logger.warn
        dt_api = LVISResults(gt_api, copy.deepcopy(results), max_dets=max_dets)
    ev = LVISEval(gt_api, dt_api, iou_type="bbox")
    ev.params.img_ids = img_ids
    ev.params.cat_ids = cat_ids
    ev.params.max_dets = max_dets
    with _numpy_float_alias():
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    # precision: [T iou thresholds, R recall thresholds, K classes, A areas]; area "all" = 0.
    precision = ev.eval["precision"]
    if area == "all":
        per_class = {names[c]: _mean_defined(precision[:, :, k, 0]) for k, c in enumerate(cat_ids)}
    else:
        per_class = {names[c]: _mean_defined(precision[:, :, k, :]) for k, c in enumerate(cat_ids)}
    defined = [v for v in per_class.values() if v is not None]

    def scaled(key: str) -> float | None:
        value = float(ev.results[key])
        return None if value < 0 else 100.0 * value

    out.update(
        AP=scaled("AP"),
        AP50=scaled("AP50"),
        AP75=scaled("AP75"),
        APr=scaled("APr"),
        APc=scaled("APc"),
        APf=scaled("APf"),
        mAP=float(np.mean(defined)) if defined else None,
        per_class_AP=per_class,
        num_classes_with_gt=len(defined),
    )
    return out
