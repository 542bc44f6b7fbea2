"""Counting sources (Pixmo-Count / CLEVR-count style) -> counting records.

Input: a JSON list of entries (or an object holding it under ``data``, ``annotations`` or ``items``),
or a JSONL file with one entry per line. An entry::

    {"image": "img/0001.jpg", "category": "apple", "points": [[x, y], ...]}      # or {"x": .., "y": ..}
    {"image": "img/0002.jpg", "category": "cube", "boxes": [[x1, y1, x2, y2], ...]}

Keys also accepted: ``image_path`` / ``file_name`` / ``filename`` for the image, ``label`` / ``object``
/ ``class`` for the category; ``count`` (optional) must equal the number of points or boxes;
``width`` / ``height`` (optional; default: read from the image header). Point and box coordinates
are pixels, percent of the image side (``coords="percent"``, Pixmo's 0..100) or fractions
(``coords="unit"``); boxes are ``xyxy`` or ``xywh``.

A counting record holds boxes (the count is their number, and ``count_points`` matches answered
points to them), so a GT point becomes a square box of half-side ``point_radius`` x the image's
shorter side around it (clipped to the image); the points are kept in ``meta["points"]`` (pixels).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vrft.boxes import clip_box
from vrft.data.classification import image_size
from vrft.data.coco import load_json, slug
from vrft.data.records import Record, counting_size_problem, finish_conversion, format_problems
from vrft.errors import DataError, UserError

COORDS = ("pixels", "percent", "unit")
BOX_FORMATS = ("xyxy", "xywh")
_IMAGE_KEYS = ("image", "image_path", "file_name", "filename")
_CATEGORY_KEYS = ("category", "label", "object", "class")


def read_entries(path: Path) -> list[tuple[str, Any]]:
    """``[(file:line or file:[index], entry)]`` of a JSON list / JSONL file; DataError when unreadable."""
    from vrft.inputs import check_file, iter_lines, parse_json_line

    check_file(path, "annotation file")  # not found / a directory: DataError
    if path.suffix.lower() == ".jsonl":
        out, problems = [], []
        for n, line in iter_lines(path, "annotation file"):  # not UTF-8: DataError naming the line
            entry, why = parse_json_line(line)
            if why:
                problems.append(f"{path}:{n}: {why}")
            else:
                out.append((f"{path}:{n}", entry))
        if problems:
            raise DataError(format_problems(problems, f"{path}: {len(problems)} invalid line(s):"))
        return out
    data = load_json(path)
    if isinstance(data, dict):
        for key in ("data", "annotations", "items"):
            if isinstance(data.get(key), list):
                data = data[key]
                break
    if not isinstance(data, list):
        raise DataError(
            f"{path}: expected a JSON list of entries (or an object with a 'data' list, or a .jsonl file)"
        )
    return [(f"{path}:[{i}]", e) for i, e in enumerate(data)]


def _first(entry: dict, keys: tuple[str, ...]) -> Any:
    for k in keys:
        if entry.get(k) is not None:
            return entry[k]
    return None


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _scale(coords: str, w: int, h: int) -> tuple[float, float]:
    return {"pixels": (1.0, 1.0), "percent": (w / 100.0, h / 100.0), "unit": (float(w), float(h))}[coords]


def convert_counting(
    path: str | os.PathLike,
    *,
    images_dir: str | os.PathLike | None = None,
    category: str | None = None,
    coords: str = "pixels",
    box_format: str = "xyxy",
    point_radius: float = 0.04,
    id_prefix: str = "count",
    check_images: bool = True,
    out: str | os.PathLike | None = None,
) -> list[Record]:
    """Counting entries -> counting records (every problem of every entry reported together).

    Args:
        path: the JSON / JSONL file (see the module).
        images_dir: folder the image paths are relative to (default: the file's folder).
        category: category of entries that name none (e.g. ``"object"`` for CLEVR).
        coords: ``pixels``, ``percent`` (0..100) or ``unit`` (0..1) of the image width / height.
        box_format: ``xyxy`` or ``xywh`` for ``boxes``.
        point_radius: half-side of the box made around a GT point, as a fraction of the shorter side.
        check_images: open each image (its size, and that it exists); without it every entry needs
            ``width`` and ``height``.
        out: write the records there (JSONL) too.
    """
    if coords not in COORDS:
        raise UserError(f"--coords {coords!r}: use one of {', '.join(COORDS)}")
    if box_format not in BOX_FORMATS:
        raise UserError(f"--box-format {box_format!r}: use one of {', '.join(BOX_FORMATS)}")
    if not (_num(point_radius) and 0 < point_radius <= 0.5):
        raise UserError(f"--point-radius {point_radius!r}: a fraction of the shorter image side in (0, 0.5]")
    path = Path(path)
    opts = _Options(
        base=Path(images_dir) if images_dir is not None else path.parent,
        default_category=category, coords=coords, box_format=box_format, point_radius=point_radius,
        id_prefix=id_prefix, check_images=check_images,
    )  # fmt: skip
    problems: list[str] = []
    records: list[Record] = []
    for n, (where, entry) in enumerate(read_entries(path)):
        rec = _entry_record(entry, where, n, opts, problems)
        if rec is not None:
            records.append(rec)
    return finish_conversion(records, problems, path, out, "no entries to convert")


@dataclass(frozen=True)
class _Options:
    base: Path
    default_category: str | None
    coords: str
    box_format: str
    point_radius: float
    id_prefix: str
    check_images: bool


def _fields(entry: Any, where: str, opts: _Options, problems: list[str]) -> tuple[str, str, str] | None:
    """(image, category, "points" | "boxes") of an entry, or None after reporting what is missing."""
    if not isinstance(entry, dict):
        problems.append(f"{where}: expected an object with image, category and points or boxes")
        return None
    bad = len(problems)
    image = _first(entry, _IMAGE_KEYS)
    if not isinstance(image, str) or not image.strip():
        problems.append(f"{where}: image: missing (give 'image': a path relative to {opts.base})")
    category = _first(entry, _CATEGORY_KEYS) or opts.default_category
    if not isinstance(category, str) or not category.strip():
        problems.append(f"{where}: category: missing (give 'category', or --category for every entry)")
    has_points, has_boxes = entry.get("points") is not None, entry.get("boxes") is not None
    if not has_points and not has_boxes:
        problems.append(
            f"{where}: neither 'points' nor 'boxes' (a count alone cannot be scored by point matching; "
            "give the objects' points or boxes)"
        )
    elif has_points and has_boxes:
        problems.append(f"{where}: both 'points' and 'boxes'; give one of them")
    if len(problems) > bad:
        return None
    return image, category.strip(), "points" if has_points else "boxes"


def _size(
    entry: dict, img_path: Path, where: str, opts: _Options, problems: list[str]
) -> tuple[int, int] | None:
    w, h = entry.get("width"), entry.get("height")
    if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0:
        return w, h
    if not opts.check_images:
        problems.append(f"{where}: width/height: missing (needed with --no-check-images)")
        return None
    size = image_size(img_path)
    if isinstance(size, str):
        problems.append(f"{where}: image: {img_path}: {size}")
        return None
    return size


def _point_box(item: Any, w: int, h: int, opts: _Options) -> tuple[list[float], list[float]] | str:
    """(point, box around it) in pixels, or a problem description."""
    if isinstance(item, dict):
        item = [item.get("x"), item.get("y")]
    if not (isinstance(item, list) and len(item) == 2 and all(_num(v) for v in item)):
        return f"{item!r} is not [x, y] (two finite numbers)"
    sx, sy = _scale(opts.coords, w, h)
    x, y = item[0] * sx, item[1] * sy
    if not (-1 <= x <= w + 1 and -1 <= y <= h + 1):
        return f"({x:g}, {y:g}) px lies outside the {w}x{h} image (check --coords: pixels, percent or unit)"
    x, y = min(max(x, 0.0), w), min(max(y, 0.0), h)
    r = opts.point_radius * min(w, h)
    box = clip_box([x - r, y - r, x + r, y + r], w, h)
    if box is None:
        return f"({x:g}, {y:g}) px: the box of radius {r:g} around it is empty (use a positive point radius)"
    return [round(x, 2), round(y, 2)], box


def _box(item: Any, w: int, h: int, opts: _Options) -> list[float] | str:
    """A pixel box ``[x1, y1, x2, y2]`` clipped to the image, or a problem description."""
    if not (isinstance(item, list) and len(item) == 4 and all(_num(v) for v in item)):
        return f"{item!r} is not four finite numbers ({opts.box_format})"
    a, b, c, d = item
    if opts.box_format == "xywh":
        c, d = a + c, b + d
    sx, sy = _scale(opts.coords, w, h)
    box = [a * sx, b * sy, c * sx, d * sy]
    if box[2] <= box[0] or box[3] <= box[1]:
        return f"{item!r} has no area ({opts.box_format}; check --box-format)"
    if box[0] < -1 or box[1] < -1 or box[2] > w + 1 or box[3] > h + 1:
        return f"{item!r} lies outside the {w}x{h} image (check --coords)"
    return clip_box(box, w, h) or f"{item!r} is empty after clipping to the {w}x{h} image (check --coords)"


def _entry_record(entry: Any, where: str, n: int, opts: _Options, problems: list[str]) -> Record | None:
    fields = _fields(entry, where, opts, problems)
    if fields is None:
        return None
    image, category, kind = fields
    img_path = Path(os.path.normpath(opts.base / image))
    size = _size(entry, img_path, where, opts, problems)
    if size is None:
        return None
    w, h = size
    items = entry[kind]
    if not isinstance(items, list):
        problems.append(f"{where}: {kind}: must be a list")
        return None
    too_many = counting_size_problem(len(items))
    if too_many:
        problems.append(f"{where}: {kind}: {too_many}")
        return None
    bad = len(problems)
    boxes: list[list[float]] = []
    points: list[list[float]] = []
    for i, item in enumerate(items):
        got = _point_box(item, w, h, opts) if kind == "points" else _box(item, w, h, opts)
        if isinstance(got, str):
            problems.append(f"{where}: {kind}[{i}]: {got}")
        elif kind == "points":
            points.append(got[0])
            boxes.append(got[1])
        else:
            boxes.append(got)
    count = entry.get("count")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count != len(items)):
        problems.append(f"{where}: count: {count!r} but {len(items)} {kind}")
    if len(problems) > bad:
        return None
    rid = entry.get("id")
    rid = rid if isinstance(rid, (str, int)) and str(rid).strip() else n
    return Record(
        id=f"{opts.id_prefix}-{rid}-{slug(category)}",
        task="counting",
        image=str(img_path),
        width=int(w),
        height=int(h),
        image_id=entry.get("image_id") if isinstance(entry.get("image_id"), (int, str)) else None,
        category=category,
        boxes=boxes,
        meta={"points": points} if kind == "points" else {},
        image_path=img_path.resolve() if img_path.exists() else img_path,
        source=where,
    )
