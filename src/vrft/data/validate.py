"""`vrft data validate`: report EVERY defect of a records JSONL or a COCO / LVIS instances JSON.

Each problem names its place: ``file:line: field: problem`` for JSONL records, and
``file: annotation id=7 (image 3): bbox [..]: problem`` / ``file: image id=3 (003.jpg): ...`` for
COCO. Images are checked by reading their header only (``PIL.Image.open(...).size``), once per file.

Records with several images (``images``) have each image checked the same way against its
``image_sizes`` entry (``images[2]: PATH: ...``); a record's ``video`` is checked by
`vrft.media.video_problem` (it exists, the container header decodes, it holds >= 1 frame, its
duration is > 0 and within `vrft.media.MAX_VIDEO_SECONDS`, its frame size is within the pixel
limit and matches width/height; a frame folder has >= 1 frame, no gap in its frame numbers and
every frame readable), once per distinct video.

Box rule (records and COCO alike): width and height must be positive and the box must lie inside
the image up to a tolerance of `BOX_TOLERANCE_PX` = 1 pixel (rounding in annotation tools routinely
gives x2 = W + 0.5; more than that is an error).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from vrft.data.classification import image_size
from vrft.data.coco import _hashable, image_file_name, load_json, resolve_images_dir, structural_problems
from vrft.data.lvis import lvis_image_candidates
from vrft.data.records import BOX_TOLERANCE_PX, check_box, iter_record_lines, validate_record_dict

PROGRESS_MIN_ITEMS = 2000


@dataclass
class ValidationReport:
    """Outcome of validating one file: its kind, how many items were checked, every problem."""

    path: Path
    kind: str  # "records" | "coco" | "lvis"
    items: int = 0
    images: int = 0
    problems: list[str] = field(default_factory=list)
    videos: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        what = "records" if self.kind == "records" else "annotations"
        verdict = "OK" if self.ok else f"{len(self.problems)} problem(s)"
        checked = f"{self.images} images" + (f", {self.videos} videos" if self.videos else "")
        return f"{self.path}: {self.kind}: {self.items} {what}, {checked} checked: {verdict}"


class _ImageChecker:
    """Reads each image header once; returns a problem string or None."""

    def __init__(self) -> None:
        self.sizes: dict[Path, tuple[int, int] | str] = {}

    def check(self, path: Path, width: Any, height: Any, fields: str = "width/height") -> str | None:
        if path not in self.sizes:
            self.sizes[path] = image_size(path)
        got = self.sizes[path]
        if isinstance(got, str):
            return f"{path}: {got}"
        if (width, height) != got:
            return f"{path}: size {width}x{height} recorded but the file is {got[0]}x{got[1]} " + (
                "as displayed (vrft applies the image's EXIF orientation, as viewers do): swap width and height"
                f"{'' if fields == 'width/height' else ' in ' + fields}"
                if (width, height) == got[::-1]
                else f"(fix {fields})"
            )
        return None


class _QuestionChecker:
    """Detection and counting records that ask the same question (image, task, category) must give the
    same answer: a positive and a 'No Objects' record for one name (two COCO categories sharing a
    name) would train the model on both answers."""

    def __init__(self) -> None:
        self.first: dict[tuple, tuple[int, Any]] = {}

    def check(self, obj: dict, base: Path, lineno: int) -> tuple[str, str] | None:
        task, img, cat, boxes = obj.get("task"), obj.get("image"), obj.get("category"), obj.get("boxes")
        if task not in ("detection", "counting") or not isinstance(img, str) or not isinstance(cat, str):
            return None
        if not isinstance(boxes, list):
            return None
        path = os.path.normpath(img if os.path.isabs(img) else base / img)
        try:
            answer = sorted(json.dumps(b) for b in boxes)
        except (TypeError, ValueError):
            return None
        key = (task, path, cat, obj.get("prompt"))
        if key not in self.first:
            self.first[key] = (lineno, answer)
            return None
        first, earlier = self.first[key]
        if earlier == answer:
            return None
        said = "'No Objects'" if not boxes else f"{len(boxes)} box(es)"
        was = "'No Objects'" if not earlier else f"{len(earlier)} box(es)"
        return (
            "boxes",
            f"conflicts with line {first}: the same image and category {cat!r} answered {was} there and "
            f"{said} here (two categories of one name?); keep one record per image and category",
        )


def _progress(items, total: int | None, desc: str, enabled: bool):
    return tqdm(items, total=total, desc=desc, unit="it", disable=not enabled, leave=False, mininterval=1.0)


def validate_records_file(
    path: Path, *, check_images: bool = True, progress: bool = True
) -> ValidationReport:
    """Check every line of a records JSONL (fields, boxes, ids, tasks) and, optionally, its images."""
    report = ValidationReport(path, "records")
    base = path.resolve().parent
    seen: dict[str, int] = {}
    questions = _QuestionChecker()
    images = _ImageChecker()
    videos: dict[tuple, str | None] = {}
    size = path.stat().st_size
    show = progress and size > 1_000_000
    for lineno, line in _progress(iter_record_lines(path), None, "validating records", show):
        where = f"{path}:{lineno}"
        report.items += 1
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            report.problems.append(f"{where}: -: invalid JSON ({err.msg} at column {err.colno})")
            continue
        except RecursionError:
            report.problems.append(f"{where}: -: JSON nested too deeply (one flat record object per line)")
            continue
        problems = validate_record_dict(obj)
        if isinstance(obj, dict):
            rid = obj.get("id")
            if isinstance(rid, str):
                if rid in seen:
                    problems.append(
                        ("id", f"duplicate id {rid!r} (first at line {seen[rid]}; ids must be unique)")
                    )
                else:
                    seen[rid] = lineno
            conflict = questions.check(obj, base, lineno)
            if conflict:
                problems.append(conflict)
            img = obj.get("image")
            if check_images and isinstance(img, str) and img.strip():
                p = Path(img) if Path(img).is_absolute() else base / img
                problem = images.check(Path(os.path.normpath(p)), obj.get("width"), obj.get("height"))
                if problem:
                    problems.append(("image", problem))
            if check_images:
                problems.extend(_media_problems(obj, base, images, videos))
        report.problems.extend(f"{where}: {fld}: {msg}" for fld, msg in problems)
    report.images = len(images.sizes)
    report.videos = len({key[0] for key in videos})
    return report


def _abs(base: Path, name: str) -> Path:
    return Path(os.path.normpath(Path(name) if Path(name).is_absolute() else base / name))


def _media_problems(
    obj: dict[str, Any], base: Path, images: _ImageChecker, videos: dict[tuple, str | None]
) -> list[tuple[str, str]]:
    """The files of an ``images`` or ``video`` record: every image header against its size, the
    video by `vrft.media.video_problem` (each distinct file once). Skipped where the fields
    themselves are malformed (`validate_record_dict` reports those)."""
    from vrft.data.records import _is_number
    from vrft.media import VideoPart, video_problem

    problems: list[tuple[str, str]] = []
    names, sizes = obj.get("images"), obj.get("image_sizes")
    if isinstance(names, list) and isinstance(sizes, list) and len(names) == len(sizes):
        for i, (name, wh) in enumerate(zip(names, sizes)):
            if isinstance(name, str) and name.strip() and isinstance(wh, list) and len(wh) == 2:
                problem = images.check(_abs(base, name), wh[0], wh[1], f"image_sizes[{i}]")
                if problem:
                    problems.append((f"images[{i}]", problem))
    video = obj.get("video")
    w, h, duration, fps = obj.get("width"), obj.get("height"), obj.get("duration"), obj.get("fps")
    if isinstance(video, str) and video.strip() and all(isinstance(v, int) for v in (w, h)):
        part = VideoPart(
            _abs(base, video), w, h, float(duration) if _is_number(duration) else 0.0,
            float(fps) if _is_number(fps) else None,
        )  # fmt: skip
        key = (part.path, w, h, part.fps)
        if key not in videos:
            videos[key] = video_problem(part)
        if videos[key]:
            problems.append(("video", videos[key]))
    return problems


def validate_instances_file(
    path: Path,
    *,
    images_dir: str | os.PathLike | None = None,
    check_images: bool = True,
    progress: bool = True,
) -> ValidationReport:
    """Check a COCO or LVIS instances JSON: ids, references, boxes, categories, images on disk."""
    src = str(path)
    data = load_json(path)

    def first(key: str) -> list:
        items = data.get(key) if isinstance(data, dict) else None
        return [i for i in items[:50] if isinstance(i, dict)] if isinstance(items, list) else []

    is_lvis = any("neg_category_ids" in i for i in first("images")) or any(
        "frequency" in c for c in first("categories")
    )
    report = ValidationReport(path, "lvis" if is_lvis else "coco")
    report.problems += structural_problems(data, src)
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), list) for k in ("images", "annotations")
    ):
        return report
    images = {i["id"]: i for i in data["images"] if isinstance(i, dict) and _hashable(i.get("id"))}
    cat_ids = {
        c.get("id") for c in data.get("categories", []) if isinstance(c, dict) and _hashable(c.get("id"))
    }
    anns = data["annotations"]
    report.items = len(anns)
    show = progress and len(anns) + len(images) >= PROGRESS_MIN_ITEMS
    present: dict[Any, set] = {}
    for i, ann in enumerate(_progress(anns, len(anns), "checking annotations", show)):
        if not isinstance(ann, dict):
            continue
        aid = ann.get("id", f"#{i}")
        if not (_hashable(ann.get("image_id")) and _hashable(ann.get("category_id"))):
            continue  # already reported as structural problems
        img = images.get(ann.get("image_id"))
        present.setdefault(ann.get("image_id"), set()).add(ann.get("category_id"))
        bbox = ann.get("bbox")
        if img is None or not (isinstance(bbox, list) and len(bbox) == 4):
            continue  # already reported as structural problems
        try:
            x, y, w, h = (float(v) for v in bbox)
        except (TypeError, ValueError):
            continue
        if not all(math.isfinite(v) for v in (x, y, w, h)) or w < 0 or h < 0:
            continue  # already reported as structural problems
        problem = check_box([x, y, x + w, y + h], img.get("width"), img.get("height"))
        if problem:
            report.problems.append(f"{src}: annotation id={aid} (image {img['id']}): bbox {bbox}: {problem}")
    if is_lvis:
        for iid, img in images.items():
            for key in ("neg_category_ids", "not_exhaustive_category_ids"):
                ids = img.get(key, [])
                if not isinstance(ids, list):
                    report.problems.append(f"{src}: image id={iid}: {key} must be a list")
                    continue
                bad = [c for c in ids if not _hashable(c) or c not in cat_ids]
                if bad:
                    report.problems.append(f"{src}: image id={iid}: {key} has unknown category ids {bad}")
            negs = img.get("neg_category_ids")
            negs = {c for c in negs if _hashable(c)} if isinstance(negs, list) else set()
            both = sorted(negs & present.get(iid, set()), key=str)
            if both:
                report.problems.append(
                    f"{src}: image id={iid}: categories {both} are annotated but listed in neg_category_ids"
                )
    if check_images and images:
        if is_lvis:
            from vrft.data.lvis import lvis_image_paths

            paths = lvis_image_paths({"images": list(images.values())}, path, images_dir)
        else:
            names = [image_file_name(i) for i in images.values()]
            base = resolve_images_dir(path, [n for n in names if n], images_dir)
            paths = {iid: Path(os.path.normpath(base / n)) for iid, n in zip(images, names) if n}
        checker = _ImageChecker()
        for iid, p in _progress(paths.items(), len(paths), "checking images", show):
            img = images[iid]
            problem = checker.check(p, img.get("width"), img.get("height"))
            if problem:
                name = image_file_name(img) or lvis_image_candidates(img)
                report.problems.append(f"{src}: image id={iid} ({name}): {problem}")
        report.images = len(checker.sizes)
    return report


def validate_path(
    path: str | os.PathLike,
    *,
    images_dir: str | os.PathLike | None = None,
    check_images: bool = True,
    progress: bool = True,
) -> ValidationReport:
    """Validate a records JSONL (``.jsonl``) or a COCO / LVIS instances JSON (``.json``)."""
    from vrft.errors import DataError
    from vrft.inputs import check_file

    path = check_file(path, "records (.jsonl) or instances (.json) file")
    if path.suffix.lower() == ".jsonl":
        return validate_records_file(path, check_images=check_images, progress=progress)
    if path.suffix.lower() == ".json":
        return validate_instances_file(
            path, images_dir=images_dir, check_images=check_images, progress=progress
        )
    raise DataError(f"{path}: expected records (.jsonl) or a COCO / LVIS instances file (.json)")


__all__ = ["BOX_TOLERANCE_PX", "ValidationReport", "validate_path"]
