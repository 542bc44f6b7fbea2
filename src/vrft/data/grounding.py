"""Referring-expression / reasoning-grounding sources -> grounding records (one box per expression).

- RefCOCO-style: a refs list (``[{"ref_id", "ann_id", "image_id", "split", "sentences": [{"sent"}]}]``,
  JSON) plus the COCO instances file that holds the boxes and image names; one record per sentence.
- Simple list: ``[{"image": path, "expression": text, "bbox": [x, y, w, h]}, ...]``; an
  ``expression`` given as a list of strings gives one record per expression (ids ``<id>-0``,
  ``<id>-1``, ...), anything else that is not a non-empty string is refused.
- LISA-style folder: per image a JSON (labelme-like) with ``text`` (instructions) and ``shapes``
  (``{"label", "points": polygon}``); the target box is the box enclosing every non-"ignore"
  polygon (clipped to the image); one record per instruction. Point coordinates must be finite
  numbers (NaN, Infinity and true/false are refused, as by the counting converter). The reference's recipe
  (``first_shape``: the box of the FIRST shape only, as its ``gen_box_ann.py``; ``first_instruction``:
  one record per image with the first instruction, as its LISA inference) is available too.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vrft.boxes import clip_box
from vrft.data.classification import image_size
from vrft.data.coco import (
    _finite,
    image_file_name,
    load_json,
    resolve_images_dir,
    slug,
    structural_problems,
    xywh_to_xyxy,
)
from vrft.data.records import Record, format_problems, save_records
from vrft.errors import DataError


def _raise(problems: list[str], source: str) -> None:
    if problems:
        raise DataError(format_problems(problems, f"{source}: {len(problems)} problem(s):"))


def convert_refcoco(
    refs_json: str | os.PathLike,
    instances_json: str | os.PathLike | None = None,
    *,
    images_dir: str | os.PathLike | None = None,
    splits: Sequence[str] | None = None,
    first_sentence_only: bool = False,
    id_prefix: str = "refcoco",
    check_images: bool = True,
    out: str | os.PathLike | None = None,
) -> list[Record]:
    """RefCOCO-style refs (+ COCO instances) or a simple expression list -> grounding records.

    Args:
        refs_json: the refs list as JSON (convert ``refs(unc).p`` once with
            ``python -c "import pickle,json,sys; json.dump(pickle.load(open(sys.argv[1],'rb')),open(sys.argv[2],'w'))" refs.p refs.json``),
            or a simple ``[{"image", "expression", "bbox"}]`` list (then `instances_json` is not used).
        instances_json: COCO instances with the refs' annotations and images (RefCOCO form only).
        images_dir: image folder (default: next to the JSON, as for COCO).
        splits: keep refs whose ``split`` is one of these (e.g. ``["train"]``, ``["testA"]``).
        first_sentence_only: one record per ref instead of one per sentence.
    """
    refs_json = Path(refs_json)
    src = str(refs_json)
    refs = load_json(refs_json)
    if not isinstance(refs, list):
        raise DataError(f"{src}: expected a JSON list of refs (or of {{image, expression, bbox}})")
    if refs and isinstance(refs[0], dict) and "expression" in refs[0]:
        return _convert_simple(refs, refs_json, images_dir, id_prefix, check_images, out)
    if instances_json is None:
        raise DataError(
            f"{src}: RefCOCO refs need the COCO instances file with their boxes (--instances FILE)"
        )
    instances_json = Path(instances_json)
    inst = load_json(instances_json)
    problems = structural_problems(inst, str(instances_json))
    _raise(problems, str(instances_json))
    anns = {a["id"]: a for a in inst["annotations"]}
    images = {img["id"]: img for img in inst["images"]}
    base = resolve_images_dir(instances_json, [image_file_name(i) for i in inst["images"]], images_dir)
    records: list[Record] = []
    for i, ref in enumerate(refs):
        where = f"{src}: refs[{i}]"
        if not isinstance(ref, dict):
            problems.append(f"{where}: not an object")
            continue
        if splits is not None and ref.get("split") not in splits:
            continue
        ann = anns.get(ref.get("ann_id"))
        if ann is None:
            problems.append(f"{where}: ann_id={ref.get('ann_id')!r} not in {instances_json.name}")
            continue
        img = images[ann["image_id"]]
        if ref.get("image_id", img["id"]) != img["id"]:
            problems.append(
                f"{where}: image_id={ref.get('image_id')!r} but annotation {ann['id']} is on image {img['id']}"
            )
            continue
        box = xywh_to_xyxy(ann["bbox"], img["width"], img["height"])
        sentences = ref.get("sentences")
        if box is None:
            problems.append(f"{where}: annotation {ann['id']} has an empty box {ann['bbox']}")
            continue
        if not isinstance(sentences, list) or not sentences:
            problems.append(f"{where}: 'sentences' missing or empty")
            continue
        texts = [s.get("sent", s.get("raw")) if isinstance(s, dict) else s for s in sentences]
        if first_sentence_only:
            texts = texts[:1]
        path = (base / image_file_name(img)).resolve()
        ref_id = ref.get("ref_id", i)
        for k, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                problems.append(f"{where}: sentences[{k}]: {str(text)[:60]!r} is not a non-empty string")
                continue
            records.append(
                Record(
                    id=f"{id_prefix}-{ref_id}-{k}",
                    task="grounding",
                    image=str(path),
                    width=img["width"],
                    height=img["height"],
                    image_id=img["id"],
                    expression=text.strip(),
                    boxes=[box],
                    meta={"ann_id": ann["id"], "category_id": ann["category_id"], "split": ref.get("split")},
                    image_path=path,
                    source=where,
                )
            )
    if check_images:
        problems += [
            f"{r.source}: image file not found: {r.image_path}" for r in records if not r.image_path.is_file()
        ]
    _raise(problems, src)
    if out is not None:
        save_records(records, out)
    return records


def _convert_simple(
    items: list[Any], path: Path, images_dir: Any, id_prefix: str, check_images: bool, out: Any
) -> list[Record]:
    src = str(path)
    base = Path(images_dir).resolve() if images_dir else path.resolve().parent
    problems, records = [], []
    for i, it in enumerate(items):
        where = f"{src}: [{i}]"
        if not isinstance(it, dict) or not isinstance(it.get("image"), str):
            problems.append(f"{where}: needs 'image' (path) and a non-empty 'expression'")
            continue
        texts = _expressions(it.get("expression"))
        if isinstance(texts, str):
            problems.append(f"{where}: expression: {texts}")
            continue
        img_path = (base / it["image"]).resolve()
        size = (it.get("width"), it.get("height"))
        if not all(isinstance(v, int) and v > 0 for v in size):
            got = image_size(img_path) if check_images or img_path.is_file() else "file not found"
            if isinstance(got, str):
                problems.append(f"{where}: image: {img_path}: {got}")
                continue
            size = got
        bbox = it.get("bbox")
        box = (
            xywh_to_xyxy(bbox, *size)
            if isinstance(bbox, list) and len(bbox) == 4 and all(_finite(v) for v in bbox)
            else None
        )
        if box is None:
            problems.append(
                f"{where}: bbox={bbox!r} must be 4 finite numbers [x, y, w, h] with w, h > 0 inside the image"
            )
            continue
        rid = str(it.get("id", f"{id_prefix}-{i}"))
        for k, text in enumerate(texts):
            records.append(
                Record(
                    id=rid if len(texts) == 1 else f"{rid}-{k}",
                    task="grounding",
                    image=str(img_path),
                    width=size[0],
                    height=size[1],
                    image_id=it.get("image_id"),
                    expression=text,
                    boxes=[box],
                    image_path=img_path,
                    source=where,
                )
            )
    _raise(problems, src)
    if out is not None:
        save_records(records, out)
    return records


def _expressions(value: Any) -> list[str] | str:
    """A simple list's ``expression``: one string, or a list of strings (one record each); else why not."""
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts:
        return f"{value!r} must be a non-empty string or a list of them (one record per expression)"
    bad = [k for k, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if bad:
        return f"item {bad[0]} of {str(value)[:80]} is not a non-empty string"
    return [t.strip() for t in texts]


def polygon_box(points: Sequence[Sequence[float]]) -> list[float]:
    """Enclosing box [x1, y1, x2, y2] of a polygon given as [[x, y], ...]."""
    xs = [float(p[0]) for p in points]
    ys = [float(p[1]) for p in points]
    return [min(xs), min(ys), max(xs), max(ys)]


def convert_lisa(
    folder: str | os.PathLike,
    *,
    id_prefix: str = "lisa",
    first_shape: bool = False,
    first_instruction: bool = False,
    out: str | os.PathLike | None = None,
) -> list[Record]:
    """LISA-style folder (``name.jpg`` + ``name.json`` per image) -> grounding records.

    The JSON holds ``text`` (a list of instructions, or one string) and ``shapes``
    (``[{"label": "target" | "ignore" | ..., "points": [[x, y], ...]}]``). Shapes labelled
    ``ignore`` are skipped; the box encloses all other polygons, clipped to the image. One record
    per instruction, all sharing the box. Every problem of every file is reported together.

    Args:
        first_shape: the reference's box (its ``gen_box_ann.py``): the box of the first shape of the
            file, whatever its label, ignoring the others (still clipped to the image).
        first_instruction: one record per image with its first instruction (the reference's LISA
            inference scores one item per image with ``instruction[0]``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder (expected <name>.jpg + <name>.json pairs)")
    from vrft.data.classification import _check_names

    _check_names([folder, *folder.iterdir()], str(folder))
    files = sorted(folder.glob("*.json"))
    if not files:
        raise DataError(f"{folder}: no .json annotation files found")
    problems, records = [], []
    for jf in files:
        where = str(jf)
        try:
            ann = load_json(jf)
        except DataError as err:
            problems.append(str(err))
            continue
        if not isinstance(ann, dict):
            problems.append(f"{where}: expected an object with 'text' and 'shapes'")
            continue
        img_path = None
        cands = [ann.get("imagePath")] if isinstance(ann.get("imagePath"), str) else []
        cands += [jf.with_suffix(ext).name for ext in (".jpg", ".jpeg", ".png")]
        for c in cands:
            if (folder / c).is_file():
                img_path = (folder / c).resolve()
                break
        if img_path is None:
            problems.append(f"{where}: image: none of {cands} found next to the annotation")
            continue
        size = image_size(img_path)
        if isinstance(size, str):
            problems.append(f"{where}: image: {img_path}: {size}")
            continue
        w, h = size
        texts = ann.get("text")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not any(isinstance(t, str) and t.strip() for t in texts):
            problems.append(f"{where}: text: no instruction (need a string or a list of strings)")
            continue
        shapes = ann.get("shapes")
        if not isinstance(shapes, list):
            problems.append(f"{where}: shapes: missing (a list of {{label, points}})")
            continue
        boxes = []
        for k, s in enumerate(shapes[:1] if first_shape else shapes):
            if not isinstance(s, dict):
                continue
            if not first_shape and str(s.get("label", "")).lower() == "ignore":
                continue
            pts = s.get("points")
            if not (
                isinstance(pts, list)
                and len(pts) >= 2
                and all(isinstance(p, list) and len(p) == 2 and all(_finite(v) for v in p) for p in pts)
            ):
                problems.append(
                    f"{where}: shapes[{k}].points: {str(pts)[:60]} is not a polygon [[x, y], ...] "
                    "of finite numbers (no NaN, Infinity, true/false)"
                )
                continue
            boxes.append(polygon_box(pts))
        if not boxes:
            if not any(p.startswith(where) for p in problems):
                problems.append(f"{where}: shapes: no target polygon (all missing or labelled 'ignore')")
            continue
        enclosing = [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
                     max(b[3] for b in boxes)]  # fmt: skip
        box = clip_box(enclosing, w, h)
        if box is None:
            problems.append(f"{where}: shapes: target box {enclosing} is empty after clipping to {w}x{h}")
            continue
        instructions = [t for t in texts if isinstance(t, str) and t.strip()]
        for k, text in enumerate(instructions[:1] if first_instruction else instructions):
            records.append(
                Record(
                    id=f"{id_prefix}-{slug(jf.stem)}-{k}",
                    task="grounding",
                    image=str(img_path),
                    width=w,
                    height=h,
                    expression=text.strip(),
                    boxes=[box],
                    meta={
                        "is_sentence": ann.get("is_sentence"),
                        "n_polygons": len(boxes),
                        "box_from": "first shape" if first_shape else "all non-ignore shapes",
                    },
                    image_path=img_path,
                    source=where,
                )
            )
    _raise(problems, str(folder))
    if out is not None:
        save_records(records, out)
    return records
