"""LVIS v1 JSON -> detection records, respecting LVIS's federated annotation semantics.

LVIS does not label every category on every image. Per image:
- categories with annotations are *positives* (targets: their boxes);
- ``neg_category_ids`` were verified absent: only these may become negatives ("No Objects");
- ``not_exhaustive_category_ids`` may have unannotated instances: never negatives, and their
  positives carry ``meta["not_exhaustive"] = True`` (``skip_not_exhaustive`` drops them, e.g. for
  training, where a missing box would punish a correct detection);
- every other category is unknown for that image and is never asked.

The category's ``frequency`` tag (r / c / f) is kept in ``meta["frequency"]``. LVIS v1 images have
no ``file_name``; the path comes from ``coco_url`` (``train2017/xxx.jpg`` under the images folder
when that exists, else the bare file name).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vrft.data.coco import (
    build_detection_records,
    check_image_files,
    load_json,
    select_categories,
    structural_problems,
    subsample_images,
)
from vrft.data.records import Record, format_problems, save_records
from vrft.errors import DataError


def clean_lvis_name(name: str) -> str:
    """LVIS synset-style name -> prompt text: ``egg_roll`` -> ``egg roll``, ``bow_(weapon)`` -> ``bow (weapon)``."""
    return name.replace("_", " ").strip()


def lvis_image_candidates(image: dict) -> list[str]:
    """Relative paths to try for an LVIS image: file_name, ``<split>/<name>`` from coco_url, ``<name>``."""
    out = []
    if isinstance(image.get("file_name"), str) and image["file_name"]:
        out.append(image["file_name"])
    url = image.get("coco_url")
    if isinstance(url, str) and url:
        parts = url.rstrip("/").split("/")
        if len(parts) >= 2:
            out.append(f"{parts[-2]}/{parts[-1]}")
        out.append(parts[-1])
    return out


def lvis_problems(data: dict, source: str) -> list[str]:
    """LVIS-only checks of a structurally valid file: each image's negative / not-exhaustive category
    lists are lists of the file's category ids, and each image names a file."""
    cat_ids = {c["id"] for c in data["categories"]}
    problems = []
    for img in data["images"]:
        for key in ("neg_category_ids", "not_exhaustive_category_ids"):
            ids = img.get(key, [])
            if not isinstance(ids, list):
                problems.append(f"{source}: image id={img['id']}: {key} must be a list of category ids")
                continue
            bad = [c for c in ids if not isinstance(c, int) or isinstance(c, bool) or c not in cat_ids]
            if bad:
                problems.append(f"{source}: image id={img['id']}: {key} has unknown category ids {bad[:10]}")
        if not lvis_image_candidates(img):
            problems.append(f"{source}: image id={img['id']}: neither file_name nor coco_url")
    return problems


def lvis_image_paths(data: dict, json_path: Path, images_dir: str | os.PathLike | None) -> dict[Any, Path]:
    """Image id -> path: the first candidate that exists under the images folder (else the last one)."""
    bases = (
        [Path(images_dir).resolve()]
        if images_dir
        else [json_path.resolve().parent / "images", json_path.resolve().parent]
    )
    paths = {}
    for img in data["images"]:
        cands = lvis_image_candidates(img)
        found = next((b / c for b in bases for c in cands if (b / c).is_file()), None)
        paths[img["id"]] = Path(os.path.normpath(found or bases[0] / cands[-1]))
    return paths


def convert_lvis(
    json_path: str | os.PathLike,
    *,
    images_dir: str | os.PathLike | None = None,
    categories: Sequence[str] | None = None,
    negative_ratio: float = 0.0,
    seed: int = 0,
    max_images: int | None = None,
    skip_not_exhaustive: bool = False,
    clean_names: bool = True,
    check_images: bool = True,
    id_prefix: str = "lvis",
    out: str | os.PathLike | None = None,
) -> list[Record]:
    """LVIS JSON -> detection records (see the module docstring).

    Args:
        categories: LVIS category names (e.g. ``egg_roll``) to ask about; default all.
        negative_ratio: negatives per positive, drawn (seeded) from each image's ``neg_category_ids``;
            ``math.inf`` asks every verified-absent category.
        skip_not_exhaustive: drop positives of categories in the image's ``not_exhaustive_category_ids``.
        clean_names: write ``egg roll`` rather than ``egg_roll`` as the record's category
            (the LVIS name stays in ``meta["lvis_name"]``).
        Other arguments as in `vrft.data.coco.convert_coco`.
    """
    json_path = Path(json_path)
    source = str(json_path)
    data = load_json(json_path)
    problems = structural_problems(data, source)
    if not problems:
        problems = lvis_problems(data, source)
    if problems:
        raise DataError(
            format_problems(problems, f"{source}: {len(problems)} problem(s) (see `vrft data validate`):")
        )
    selected = select_categories(data, categories, source)
    data = subsample_images(data, max_images, seed)
    paths = lvis_image_paths(data, json_path, images_dir)
    if check_images:
        check_image_files(paths.items(), source)
    not_exhaustive = {img["id"]: set(img.get("not_exhaustive_category_ids", [])) for img in data["images"]}
    if skip_not_exhaustive:
        data = {
            **data,
            "annotations": [
                a for a in data["annotations"] if a["category_id"] not in not_exhaustive[a["image_id"]]
            ],
        }

    def negatives(img: dict, present: set) -> list[int]:
        return [c for c in img.get("neg_category_ids", []) if c not in not_exhaustive[img["id"]]]

    records = build_detection_records(
        data,
        image_paths=paths,
        selected=selected,
        negative_ratio=negative_ratio,
        seed=seed,
        id_prefix=id_prefix,
        negative_candidates=negatives,
        category_name=(lambda c: clean_lvis_name(c["name"])) if clean_names else None,
        category_meta=lambda c: {
            "lvis_name": c["name"],
            **({"frequency": c["frequency"]} if "frequency" in c else {}),
        },
        source=source,
    )
    for rec in records:
        if rec.boxes and rec.meta["category_id"] in not_exhaustive[rec.image_id]:
            rec.meta["not_exhaustive"] = True
    if out is not None:
        save_records(records, out)
    return records
