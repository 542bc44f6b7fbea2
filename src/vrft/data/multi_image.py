"""Multi-image grounding sources -> `multi_image_grounding` records (`vrft data convert multi-image`).

Input: a JSONL file, one object per line::

    {"images": ["a.jpg", "b.jpg", "c.jpg"], "expression": "the red mug", "target": 2, "bbox": [x1, y1, x2, y2]}

- ``images``: 1..`vrft.media.MAX_IMAGES_PER_RECORD` paths, relative to ``images_dir`` (default: the
  JSONL file's folder) or absolute. Each must exist and its header decode (its size is read from it).
- ``expression``: non-empty text (what to find).
- ``target``: the index of the image holding it, **1-based by default** (the record's
  ``target_image`` convention: ``1`` is the first image); ``target_base=0`` reads 0-based sources
  (``0`` is the first image). A bool, a non-integer or an index outside the list is refused.
- ``bbox``: the box in PIXELS of the target image, ``[x1, y1, x2, y2]`` (``box_format="xywh"``:
  ``[x, y, width, height]``); it may pass the image's edge by at most 1 px (then clipped).
- ``id`` (optional): the record id's suffix (default: the line number).

Every problem of every line is refused together, each as ``FILE:LINE: field: what (fix)``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from vrft.boxes import clip_box
from vrft.data.records import Record, finish_conversion
from vrft.errors import UserError
from vrft.media import MAX_IMAGES_PER_RECORD

BOX_FORMATS = ("xyxy", "xywh")


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def convert_multi_image(
    path: str | os.PathLike,
    *,
    images_dir: str | os.PathLike | None = None,
    target_base: int = 1,
    box_format: str = "xyxy",
    id_prefix: str = "mi",
    out: str | os.PathLike | None = None,
) -> list[Record]:
    """Multi-image JSONL -> multi_image_grounding records (see the module). Returns the records
    (and writes them to `out` when given); DataError listing every problem otherwise."""
    from vrft.inputs import iter_lines, parse_json_line

    if target_base not in (0, 1):
        raise UserError(f"--target-base {target_base}: 1 (the first image is 1) or 0 (the first image is 0)")
    if box_format not in BOX_FORMATS:
        raise UserError(f"--box-format {box_format!r}: use one of {', '.join(BOX_FORMATS)}")
    path = Path(path)
    base = Path(images_dir) if images_dir is not None else path.parent
    problems: list[str] = []
    records: list[Record] = []
    for n, line in iter_lines(path, "multi-image JSONL"):
        where = f"{path}:{n}"
        entry, why = parse_json_line(line)
        if why:
            problems.append(f"{where}: {why}")
            continue
        rec = _entry_record(entry, where, n, base, target_base, box_format, id_prefix, problems)
        if rec is not None:
            records.append(rec)
    return finish_conversion(records, problems, path, out, "no entries to convert")


def _entry_record(
    entry: Any, where: str, n: int, base: Path, target_base: int, box_format: str, id_prefix: str,
    problems: list[str],
) -> Record | None:  # fmt: skip
    from vrft.inputs import image_size

    if not isinstance(entry, dict):
        problems.append(f"{where}: expected an object with images, expression, target and bbox")
        return None
    bad = len(problems)
    images, expression, target, bbox = (entry.get(k) for k in ("images", "expression", "target", "bbox"))
    if not (isinstance(images, list) and images and all(isinstance(p, str) and p.strip() for p in images)):
        problems.append(f"{where}: images: {images!r} must be a non-empty list of image paths")
        images = None
    elif len(images) > MAX_IMAGES_PER_RECORD:
        problems.append(
            f"{where}: images: {len(images)} images, the limit is {MAX_IMAGES_PER_RECORD} per record (split the entry)"
        )
        images = None
    if not isinstance(expression, str) or not expression.strip():
        problems.append(f"{where}: expression: missing (the text naming what to find)")
    k = None
    if not isinstance(target, int) or isinstance(target, bool):
        problems.append(f"{where}: target: {target!r} must be an integer image index ({target_base}-based)")
    elif images is not None:
        k = target - target_base + 1  # 1-based
        if not 1 <= k <= len(images):
            first, last = target_base, len(images) - 1 + target_base
            problems.append(
                f"{where}: target: unknown image index {target} ({len(images)} images: {first}..{last} with "
                f"--target-base {target_base}; check --target-base)"
            )
            k = None
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(_num(v) for v in bbox)):
        problems.append(f"{where}: bbox: {bbox!r} must be four finite numbers ({box_format}, pixels)")
        bbox = None
    if images is None:
        return None
    paths = [Path(os.path.normpath(base / p)) for p in images]
    sizes: list[list[int]] = []
    for i, p in enumerate(paths):
        size = image_size(p)
        if isinstance(size, str):
            problems.append(f"{where}: images[{i}]: {p}: {size}")
        else:
            sizes.append([int(size[0]), int(size[1])])
    if len(problems) > bad or k is None or bbox is None:
        return None
    w, h = sizes[k - 1]
    x1, y1, a, b = (float(v) for v in bbox)
    x2, y2 = (x1 + a, y1 + b) if box_format == "xywh" else (a, b)
    if x2 <= x1 or y2 <= y1:
        problems.append(f"{where}: bbox: {bbox!r} has no area ({box_format}; check --box-format)")
        return None
    if x1 < -1 or y1 < -1 or x2 > w + 1 or y2 > h + 1:
        problems.append(
            f"{where}: bbox: {bbox!r} lies outside image {k} ({w}x{h} px; the box is in its pixels)"
        )
        return None
    box = clip_box([x1, y1, x2, y2], w, h)
    if box is None:
        problems.append(f"{where}: bbox: {bbox!r} is empty after clipping to the {w}x{h} image")
        return None
    rid = entry.get("id")
    rid = rid if isinstance(rid, (str, int)) and not isinstance(rid, bool) and str(rid).strip() else n
    return Record(
        id=f"{id_prefix}-{rid}",
        task="multi_image_grounding",
        images=[str(p) for p in paths],
        image_paths=[p.resolve() for p in paths],
        image_sizes=sizes,
        expression=expression.strip(),
        target_image=k,
        boxes=[box],
        source=where,
    )
