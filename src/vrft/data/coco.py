"""COCO instances JSON -> detection records (one per image and category asked).

Semantics:
- a *positive* record asks about a category with at least one non-crowd box in the image; its
  target is every non-crowd box of that category (crowd boxes are never targets; they are kept in
  ``meta["crowd_boxes"]`` so an evaluator can treat them as ignore regions);
- an (image, category) pair whose only instances are crowd boxes is skipped: it is neither a
  positive (nothing countable to find) nor a negative ("No Objects" would be false);
- a *negative* record asks about a category absent from the image (answer "No Objects"). Negatives
  are sampled, seeded: ``negative_ratio`` r gives round(r x #positives) negatives drawn uniformly
  from all (image, absent category) pairs; r = inf ("all") asks every absent category of every
  image (the exhaustive protocol an AP evaluation needs).

Categories that share a name are merged into the first of them (with a warning): otherwise one
image could get a positive and a 'No Objects' record for the same name. With image checks on (the
default), an image whose width/height in the JSON differs from the file's displayed size is refused.

The same core serves LVIS (see `vrft.data.lvis`), which restricts which absent categories may
serve as negatives.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from vrft.data.records import Record, save_records
from vrft.errors import DataError
from vrft.inputs import normalize_seed

logger = logging.getLogger(__name__)


def load_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """Read a JSON file; DataError naming the file and position when it is missing, a directory,
    not UTF-8 or invalid (`vrft.inputs.read_json`)."""
    from vrft.inputs import read_json

    return read_json(path, what)


def slug(text: str) -> str:
    """A compact id fragment: lower-case, runs of non-alphanumerics -> '_'."""
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_") or "x"


def image_file_name(image: dict) -> str | None:
    """The image's file name: ``file_name``, else the basename of ``coco_url`` (LVIS)."""
    name = image.get("file_name")
    if isinstance(name, str) and name:
        return name
    url = image.get("coco_url")
    if isinstance(url, str) and url:
        return url.rstrip("/").rsplit("/", 1)[-1]
    return None


def resolve_images_dir(
    json_path: Path, file_names: Sequence[str], images_dir: str | os.PathLike | None
) -> Path:
    """Directory that the images' file names are relative to.

    `images_dir` when given; else the first of ``<json dir>/images`` and ``<json dir>`` where the
    first image exists; else ``<json dir>/images`` (missing images are reported by the caller).
    """
    if images_dir is not None:
        return Path(images_dir).resolve()
    base = json_path.resolve().parent
    candidates = [base / "images", base]
    if file_names:
        for cand in candidates:
            if (cand / file_names[0]).is_file():
                return cand
    return candidates[0]


def check_image_files(paths: Iterable[tuple[Any, Path]], source: str) -> None:
    """DataError listing every (image id, path) whose file does not exist."""
    missing = [(iid, p) for iid, p in paths if not p.is_file()]
    if missing:
        lines = [f"{source}: image id={iid}: file not found: {p}" for iid, p in missing[:20]]
        more = f"\n  ... and {len(missing) - 20} more" if len(missing) > 20 else ""
        raise DataError(
            f"{len(missing)} image file(s) not found (pass --images DIR pointing at the image folder, "
            "or --no-check-images to convert without them):\n  " + "\n  ".join(lines) + more
        )


def structural_problems(data: Any, source: str) -> list[str]:
    """Problems that make a COCO/LVIS JSON unusable: missing lists, duplicate / unknown ids, bad fields."""
    if not isinstance(data, dict):
        return [f"{source}: top level must be an object with images / annotations / categories"]
    problems = []
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            problems.append(f"{source}: '{key}' missing or not a list (a COCO instances file has all three)")
    if problems:
        return problems
    image_ids: set = set()
    for i, img in enumerate(data["images"]):
        iid = img.get("id") if isinstance(img, dict) else None
        if iid is None:
            problems.append(f"{source}: images[{i}]: missing 'id'")
            continue
        if isinstance(iid, bool) or not isinstance(iid, (int, str)):
            problems.append(f"{source}: images[{i}]: id={iid!r} must be an integer (or a string)")
            continue
        if iid in image_ids:
            problems.append(f"{source}: image id={iid}: duplicate image id")
        image_ids.add(iid)
        for key in ("width", "height"):
            v = img.get(key)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                problems.append(f"{source}: image id={iid}: {key}={v!r} must be a positive integer")
        if image_file_name(img) is None:
            problems.append(f"{source}: image id={iid}: no 'file_name' (nor 'coco_url')")
    cat_ids: set = set()
    for i, cat in enumerate(data["categories"]):
        cid = cat.get("id") if isinstance(cat, dict) else None
        if cid is None:
            problems.append(f"{source}: categories[{i}]: missing 'id'")
            continue
        if isinstance(cid, bool) or not isinstance(cid, int):
            problems.append(f"{source}: categories[{i}]: id={cid!r} must be an integer")
            continue
        if cid in cat_ids:
            problems.append(f"{source}: category id={cid}: duplicate category id")
        cat_ids.add(cid)
        name = cat.get("name")
        if not isinstance(name, str) or not name.strip():
            problems.append(f"{source}: category id={cid}: name={name!r} must be a non-empty string")
    ann_ids: set = set()
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict):
            problems.append(f"{source}: annotations[{i}]: not an object")
            continue
        aid = ann.get("id", f"#{i}")
        where = f"{source}: annotation id={aid}" if "id" in ann else f"{source}: annotations[{i}]"
        if "id" in ann:
            try:
                if aid in ann_ids:
                    problems.append(f"{where}: duplicate annotation id")
                ann_ids.add(aid)
            except TypeError:  # an unhashable id (a list, an object)
                problems.append(f"{where}: id must be an integer")
        if not _hashable(ann.get("image_id")) or ann.get("image_id") not in image_ids:
            problems.append(
                f"{where}: unknown image_id={ann.get('image_id')!r} (not an image id of the file)"
            )
        if not _hashable(ann.get("category_id")) or ann.get("category_id") not in cat_ids:
            problems.append(
                f"{where}: unknown category_id={ann.get('category_id')!r} (not a category id of the file)"
            )
        bbox = ann.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_finite(v) for v in bbox)):
            problems.append(f"{where}: bbox={bbox!r} must be 4 finite numbers [x, y, w, h]")
        elif bbox[2] < 0 or bbox[3] < 0:
            problems.append(
                f"{where}: bbox={bbox!r} has a negative width or height ([x, y, w, h], w, h >= 0)"
            )
        if "iscrowd" in ann and ann["iscrowd"] not in (0, 1):
            problems.append(f"{where}: iscrowd={ann['iscrowd']!r} must be 0 or 1")
        if "area" in ann and not (_finite(ann["area"]) and ann["area"] >= 0):
            problems.append(f"{where}: area={ann['area']!r} must be a finite number >= 0")
    return problems


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _hashable(v: Any) -> bool:
    try:
        hash(v)
    except TypeError:
        return False
    return True


def xywh_to_xyxy(bbox: Sequence[float], width: int, height: int) -> list[float] | None:
    """COCO [x, y, w, h] -> [x1, y1, x2, y2] clipped to the image; None when empty after clipping."""
    from vrft.boxes import clip_box
    from vrft.boxes import xywh_to_xyxy as corners

    return clip_box(corners(bbox), width, height)


def read_instances(path: str | os.PathLike, what: str = "COCO instances file") -> dict:
    """THE reader of a COCO / LVIS instances (ground-truth) file, shared by `vrft data convert`,
    `vrft data validate` (which lists the same `structural_problems` without raising) and
    `vrft eval --coco-gt / --lvis-gt`.

    Raises DataError (every problem, each naming the image / category / annotation id or index and
    the field) for: a missing file or directory, bytes that are not UTF-8, invalid JSON, missing
    lists, duplicate or unknown ids, a bbox that is not 4 finite numbers or has a negative size, an
    iscrowd other than 0/1, a non-finite or negative area.
    """
    source = str(path)
    data = load_json(path, what)
    problems = structural_problems(data, source)
    if problems:
        from vrft.data.records import format_problems

        raise DataError(
            format_problems(problems, f"{source}: {len(problems)} problem(s) (see `vrft data validate`):")
        )
    return data


class GTBoxes(NamedTuple):
    """Pixel boxes ``[x1, y1, x2, y2]`` (clipped to the image) of a checked instances file."""

    boxes: dict[tuple[Any, Any], list[list[float]]]
    """(image id, category id) -> the non-crowd boxes: the targets."""
    crowd: dict[tuple[Any, Any], list[list[float]]]
    """(image id, category id) -> the crowd boxes (iscrowd=1): ignore regions, never targets."""
    dropped: list[Any]
    """Ids of annotations whose box is empty after clipping to the image."""


def gt_boxes(data: dict, categories: Iterable[Any] | None = None) -> GTBoxes:
    """The ONE xywh -> xyxy and crowd split of COCO ground truth (convert, eval and its protocols use
    it): each annotation of `categories` (default all) as a clipped pixel box, crowd kept apart."""
    images = {img["id"]: img for img in data["images"]}
    wanted = None if categories is None else set(categories)
    boxes: dict[tuple, list[list[float]]] = defaultdict(list)
    crowd: dict[tuple, list[list[float]]] = defaultdict(list)
    dropped = []
    for ann in data["annotations"]:
        iid, cid = ann["image_id"], ann["category_id"]
        if wanted is not None and cid not in wanted:
            continue
        img = images[iid]
        box = xywh_to_xyxy(ann["bbox"], img["width"], img["height"])
        if box is None:
            dropped.append(ann.get("id"))
            continue
        (crowd if ann.get("iscrowd", 0) else boxes)[(iid, cid)].append(box)
    return GTBoxes(dict(boxes), dict(crowd), dropped)


NegativeFn = Callable[[dict, set], Iterable[int]]


def build_detection_records(
    data: dict,
    *,
    image_paths: dict[Any, Path],
    selected: Sequence[int],
    negative_ratio: float = 0.0,
    seed: int = 0,
    id_prefix: str = "coco",
    negative_candidates: NegativeFn | None = None,
    category_name: Callable[[dict], str] | None = None,
    category_meta: Callable[[dict], dict] | None = None,
    source: str = "",
) -> list[Record]:
    """Core of the COCO and LVIS converters (data already structurally checked).

    Args:
        data: the instances dict.
        image_paths: image id -> absolute image path.
        selected: category ids to ask about (in output order).
        negative_ratio: negatives per positive (float, >= 0) or ``math.inf`` for every allowed pair.
        negative_candidates: ``(image, present category ids) -> category ids`` allowed as negatives
            (default: every selected category not present in the image).
        category_name: category dict -> the name written into records (default: its ``name``).
        category_meta: category dict -> extra meta for its records.

    Returns:
        Records sorted by image id then category order: positives, and the sampled negatives.
    """
    cats = {c["id"]: c for c in data["categories"]}
    sel = list(selected)
    sel_set = set(sel)
    order = {cid: k for k, cid in enumerate(sel)}
    present: dict[Any, set] = defaultdict(set)
    images = {img["id"]: img for img in data["images"]}
    for ann in data["annotations"]:
        present[ann["image_id"]].add(ann["category_id"])
    boxes, crowd, dropped = gt_boxes(data, sel_set)
    if dropped:
        logger.warning(
            "%s: dropped %d annotation(s) with an empty box after clipping to the image (ids: %s%s)",
            source,
            len(dropped),
            ", ".join(str(d) for d in dropped[:10]),
            " ..." if len(dropped) > 10 else "",
        )
    name_of = category_name or (lambda c: c["name"])
    meta_of = category_meta or (lambda c: {})

    slugs = {cid: slug(name_of(cats[cid])) for cid in sel}
    if len(set(slugs.values())) < len(slugs):  # two names with one slug: disambiguate by id
        slugs = {cid: f"{s}_{cid}" for cid, s in slugs.items()}

    def make(iid: Any, cid: int, target: list[list[float]]) -> Record:
        img = images[iid]
        cat = cats[cid]
        meta: dict[str, Any] = {"category_id": cid, **meta_of(cat)}
        if crowd.get((iid, cid)):
            meta["crowd_boxes"] = crowd[(iid, cid)]
        return Record(
            id=f"{id_prefix}-{iid}-{slugs[cid]}",
            task="detection",
            image=str(image_paths[iid]),
            width=img["width"],
            height=img["height"],
            image_id=iid,
            category=name_of(cat),
            boxes=target,
            meta=meta,
            image_path=image_paths[iid],
        )

    positives = [(iid, cid) for (iid, cid) in boxes]

    # Negative candidates of an image, in category order (recomputed rather than stored: COCO has
    # ~9M (image, absent category) pairs).
    def candidates(img: dict) -> list[int]:
        here = present.get(img["id"], set())
        if negative_candidates is None:
            return [cid for cid in sel if cid not in here]
        allowed = set(negative_candidates(img, here))
        return [cid for cid in sel if cid in allowed and cid not in here]

    negatives: list[tuple[Any, int]] = []
    if negative_ratio == math.inf:
        negatives = [(img["id"], cid) for img in data["images"] for cid in candidates(img)]
    elif negative_ratio > 0:
        counts = np.array([len(candidates(img)) for img in data["images"]], dtype=np.int64)
        total = int(counts.sum())
        want = min(total, int(round(negative_ratio * len(positives))))
        if want > 0:
            rng = np.random.default_rng(normalize_seed(seed))
            picks = np.sort(rng.choice(total, size=want, replace=False))
            offsets = np.concatenate([[0], np.cumsum(counts)])
            owners = np.searchsorted(offsets, picks, side="right") - 1
            cache: dict[int, list[int]] = {}
            for p, k in zip(picks.tolist(), owners.tolist()):
                if k not in cache:
                    cache[k] = candidates(data["images"][k])
                negatives.append((data["images"][k]["id"], cache[k][p - int(offsets[k])]))
    image_order = {img["id"]: k for k, img in enumerate(data["images"])}
    pairs = sorted(positives + negatives, key=lambda p: (image_order[p[0]], order[p[1]]))
    records = [make(iid, cid, boxes.get((iid, cid), [])) for iid, cid in pairs]
    n_crowd_only = sum(1 for key in crowd if key not in boxes)
    logger.info(
        "%s: %d positive and %d negative records (%d crowd-only pairs skipped)",
        source,
        len(positives),
        len(negatives),
        n_crowd_only,
    )
    return records


def merge_same_name_categories(data: dict, source: str) -> dict:
    """`data` with categories of the same name merged into the first of them (a warning names them).

    Two categories named alike would otherwise give one image both a positive record and a
    'No Objects' record for that name (the same question with two answers)."""
    first: dict[str, int] = {}
    remap: dict[int, int] = {}
    for c in data["categories"]:
        if c["name"] in first:
            remap[c["id"]] = first[c["name"]]
        else:
            first[c["name"]] = c["id"]
    if not remap:
        return data
    shown = ", ".join(f"id {a} -> {b}" for a, b in list(remap.items())[:10])
    logger.warning(
        "%s: %d categor%s share%s a name with an earlier one; merged into it (%s%s): one record per image "
        "and name",
        source, len(remap), "y" if len(remap) == 1 else "ies", "s" if len(remap) == 1 else "", shown,
        " ..." if len(remap) > 10 else "",
    )  # fmt: skip
    return {
        **data,
        "categories": [c for c in data["categories"] if c["id"] not in remap],
        "annotations": [
            {**a, "category_id": remap[a["category_id"]]} if a["category_id"] in remap else a
            for a in data["annotations"]
        ],
    }


def check_image_sizes(data: dict, image_paths: dict[Any, Path], source: str) -> None:
    """DataError listing every image whose width/height in the JSON differs from the file's (the size
    as displayed: `vrft.inputs.image_size` applies the EXIF orientation, as `vrft data validate` and
    every reader of pixels do). Boxes clipped to a wrong size would be cut or dropped."""
    from vrft.inputs import image_size

    problems = []
    for img in data["images"]:
        got = image_size(image_paths[img["id"]])
        if isinstance(got, str):
            problems.append(f"{source}: image id={img['id']} ({image_paths[img['id']]}): {got}")
        elif (img["width"], img["height"]) != got:
            swapped = (img["width"], img["height"]) == got[::-1]
            problems.append(
                f"{source}: image id={img['id']} ({image_file_name(img)}): width/height {img['width']}x"
                f"{img['height']} in the JSON but the file is {got[0]}x{got[1]}"
                + (" as displayed (vrft applies its EXIF orientation)" if swapped else "")
                + ": fix the JSON's width/height (or pass --no-check-images to convert without reading images)"
            )
    if problems:
        from vrft.data.records import format_problems

        raise DataError(
            format_problems(problems, f"{source}: {len(problems)} image(s) do not match the JSON:")
        )


def select_categories(data: dict, names: Sequence[str] | None, source: str) -> list[int]:
    """Category ids for `names` (all categories, in file order, when None); DataError for unknown names."""
    by_name = {c["name"]: c["id"] for c in data["categories"]}
    if names is None:
        return [c["id"] for c in data["categories"]]
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise DataError(
            f"{source}: categories not in the file: {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(list(by_name)[:20])}{' ...' if len(by_name) > 20 else ''})"
        )
    return [by_name[n] for n in names]


def subsample_images(data: dict, max_images: int | None, seed: int) -> dict:
    """A copy of `data` restricted to `max_images` images chosen at random (seeded); same order."""
    if max_images is None or max_images >= len(data["images"]):
        return data
    rng = np.random.default_rng([normalize_seed(seed), 1])
    keep_idx = set(rng.choice(len(data["images"]), size=max_images, replace=False).tolist())
    images = [img for k, img in enumerate(data["images"]) if k in keep_idx]
    ids = {img["id"] for img in images}
    return {**data, "images": images, "annotations": [a for a in data["annotations"] if a["image_id"] in ids]}


def prepare(
    json_path: str | os.PathLike,
    images_dir: str | os.PathLike | None,
    check_images: bool,
) -> tuple[dict, dict[Any, Path], str]:
    """Load and structurally check an instances file; resolve every image path."""
    json_path = Path(json_path)
    source = str(json_path)
    data = read_instances(json_path)
    names = [image_file_name(img) for img in data["images"]]
    base = resolve_images_dir(json_path, names, images_dir)
    paths = {
        img["id"]: Path(os.path.normpath(os.path.join(base, name)))
        for img, name in zip(data["images"], names)
    }
    if check_images:
        check_image_files(paths.items(), source)
    return data, paths, source


def convert_coco(
    json_path: str | os.PathLike,
    *,
    images_dir: str | os.PathLike | None = None,
    categories: Sequence[str] | None = None,
    negative_ratio: float = 0.0,
    seed: int = 0,
    max_images: int | None = None,
    check_images: bool = True,
    id_prefix: str = "coco",
    out: str | os.PathLike | None = None,
) -> list[Record]:
    """COCO instances JSON -> detection records (see the module docstring for the semantics).

    Args:
        json_path: the instances file (e.g. ``annotations/instances_train2017.json``).
        images_dir: folder the ``file_name`` entries are relative to (default: ``<json dir>/images``
            or the JSON's folder, whichever holds the first image).
        categories: category names to ask about (default: every category of the file).
        negative_ratio: negatives per positive record; ``math.inf`` asks every absent category.
        seed: seeds negative sampling and image subsampling.
        max_images: keep at most this many images (seeded random subset) before building records.
        check_images: fail (listing them) when image files are missing, unreadable, or of another
            width/height than the JSON says (read from the header, EXIF orientation applied).
        out: when given, also write the records there (image paths relative to it).
    """
    data, paths, source = prepare(json_path, images_dir, check_images)
    data = merge_same_name_categories(data, source)
    selected = select_categories(data, categories, source)
    data = subsample_images(data, max_images, seed)
    if check_images:
        check_image_sizes(data, paths, source)
    records = build_detection_records(
        data,
        image_paths=paths,
        selected=selected,
        negative_ratio=negative_ratio,
        seed=seed,
        id_prefix=id_prefix,
        category_meta=lambda c: {"split": c["split"]} if "split" in c else {},
        source=source,
    )
    if out is not None:
        save_records(records, out)
    return records
