"""Records: the one data format every converter writes and everything downstream reads.

A record is one JSON object per line (JSONL). The image path is relative to the JSONL file, the
target is in PIXEL coordinates of the original image (boxes ``[x1, y1, x2, y2]``, floats allowed),
and records never hold model-specific text. See docs/DESIGN.md "Records". Instead of ``image`` a
record may hold ``images`` (several images, each with its size in ``image_sizes``) or ``video`` (a
video file or a frame folder, with ``duration``); `Record.visual_parts` says what a record shows
(`vrft.media`). See docs/data.md "Many images and video".

`load_records` never drops anything silently: every problem of every line is collected and raised
together as one `DataError` whose lines read ``file:line: field: problem (how to fix)``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vrft.data.record_checks import (  # noqa: F401  (re-exported: the rules of a line live there)
    _REQUIRED,
    ANSWER_FORMATS,
    BOX_TOLERANCE_PX,
    FIELDS,
    MAX_REPORTED_PROBLEMS,
    MULTI_IMAGE_TASKS,
    TASK_NAMES,
    VIDEO_TASKS,
    VISUAL_FIELDS,
    _is_number,
    check_box,
    counting_size_problem,
    validate_record_dict,
)
from vrft.errors import DataError
from vrft.media import VisualPart


@dataclass
class Record:
    """One training / evaluation example.

    Attributes:
        id: unique string id within a file.
        task: one of `TASK_NAMES`.
        image: image path as written in the file (relative to the JSONL file, or absolute); None
            for a record with `images` or `video` (exactly one of the three is set).
        width, height: original image size in pixels (> 0); for a `video` record the frame size;
            None for an `images` record (each image's size is in `image_sizes`).
        image_id: id of the image in its source dataset (COCO image id), if any.
        category: detection / counting: the category asked about.
        boxes: detection: every GT box of `category` ([] means "No Objects"); grounding: one box;
            counting: every object of `category` (the count is their number).
            Pixels of the original image, ``[x1, y1, x2, y2]`` with x1 < x2, y1 < y2.
        label: classification: the correct class name.
        classes: classification: the list of class names of the dataset (optional).
        domain: classification: ``{"object": "flower", "attribute": "species"}`` (optional).
        aliases: classification: other accepted names for `label` (optional).
        expression: grounding: the referring expression / instruction.
        text: ocr: the text in the image ("" for an image without text).
        prompt: the user text of this example, replacing the task's template (optional; the answer
            format and rewards are unchanged, so the text should still ask for that format).
            ``{category}``, ``{expression}``, ``{label}`` and ``{event}`` are replaced by those fields.
        answer_format: "think" (the default: ``<think>..</think> <answer>..</answer>``) or
            "answer_only" (prompt for ``<answer>..</answer>`` alone and score that format); None: the
            run's setting (`data.answer_format`, `vrft eval --answer-only`).
        meta: free-form extra information (source ids, frequency tags, ...).
        images: several images, in order (1..`MAX_IMAGES_PER_RECORD` paths, relative to the JSONL
            file like `image`), instead of `image` (multi_image_grounding).
        image_sizes: ``[[width, height], ...]`` of each of `images` (required with `images`).
        video: a video file, or a folder of frames (sorted by name) with their `fps`, instead of
            `image` (temporal_grounding); decoded by PyAV (`vrft.media`).
        duration: the video's length in seconds (> 0, <= `MAX_VIDEO_SECONDS`; required with `video`).
        fps: frame rate of a frame folder (required for one; optional for a video file).
        event: temporal_grounding: the event asked about.
        window: temporal_grounding: the ground truth ``[start, end]`` in seconds, 0 <= start < end
            (end <= duration + `WINDOW_TOLERANCE_S`).
        target_image: multi_image_grounding: the 1-based index into `images` of the image that
            holds the target; `boxes` (one box) is in pixels of that image.
        trace: a tool-use demonstration for SFT (docs/tools.md): the assistant's turns
            ``[{"content": ..., "tool_calls": [{"name": ..., "arguments": {...}}]}, ..., {"content":
            "<final answer>"}]``; the tool results are not stored, `vrft sft` makes them with the tools.
        image_path: absolute image path, resolved at load time (not serialised).
        image_paths: absolute paths of `images`, resolved at load time (not serialised).
        video_path: absolute path of `video`, resolved at load time (not serialised).
        source: where the record came from, ``"file:line"`` (not serialised).
    """

    id: str
    task: str
    image: str | None = None
    width: int | None = None
    height: int | None = None
    image_id: int | str | None = None
    category: str | None = None
    boxes: list[list[float]] = field(default_factory=list)
    label: str | None = None
    classes: list[str] | None = None
    domain: dict[str, str] | None = None
    aliases: list[str] | None = None
    expression: str | None = None
    text: str | None = None
    prompt: str | None = None
    answer_format: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    images: list[str] | None = None
    image_sizes: list[list[int]] | None = None
    video: str | None = None
    duration: float | None = None
    fps: float | None = None
    event: str | None = None
    window: list[float] | None = None
    target_image: int | None = None
    trace: list[dict[str, Any]] | None = None
    image_path: Path | None = field(default=None, compare=False, repr=False)
    source: str | None = field(default=None, compare=False, repr=False)
    image_paths: list[Path] | None = field(default=None, compare=False, repr=False)
    video_path: Path | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this record (only set optional fields; `boxes` always for box tasks)."""
        out: dict[str, Any] = {}
        for name in FIELDS:
            value = getattr(self, name)
            if name in ("image", "width", "height") and value is None and (self.images or self.video):
                continue  # a many-image or video record has no `image` (nor width/height for images)
            if name in _REQUIRED:
                out[name] = value
            elif name == "boxes":
                if self.task in ("detection", "grounding", "counting") or value:
                    out[name] = [list(b) for b in value]
            elif name == "meta":
                if value:
                    out[name] = value
            elif name == "images" and value is not None:
                out[name] = list(value)
            elif name in ("image_sizes", "window") and value is not None:
                out[name] = [list(v) if isinstance(v, (list, tuple)) else v for v in value]
            elif value is not None:
                out[name] = value
        return out

    def visual_parts(self) -> list[VisualPart]:
        """What this record shows, in order: ``[ImagePart]`` for a one-image record, one
        `ImagePart` per image of an `images` record, ``[VideoPart]`` for a `video` record.

        Paths are the resolved ones (`image_path`, `image_paths`, `video_path`) when the record was
        loaded from a file, else the strings as given."""
        from vrft.media import ImagePart, VideoPart

        if self.images is not None:
            paths = self.image_paths if self.image_paths is not None else [Path(p) for p in self.images]
            sizes = self.image_sizes or [[0, 0]] * len(paths)
            return [ImagePart(p, int(w), int(h)) for p, (w, h) in zip(paths, sizes)]
        if self.video is not None:
            path = self.video_path if self.video_path is not None else Path(self.video)
            return [
                VideoPart(
                    path,
                    int(self.width or 0),
                    int(self.height or 0),
                    float(self.duration or 0.0),
                    None if self.fps is None else float(self.fps),
                )
            ]
        return [ImagePart(self.resolved_image(), int(self.width or 0), int(self.height or 0))]

    def resolved_image(self) -> Path:
        """The absolute image path (`image_path` if resolved at load, else `image` as given).

        DataError for an `images` / `video` record (it has no one image: use `visual_parts`)."""
        if self.image_path is None and self.image is None:
            form = "images" if self.images is not None else "video" if self.video is not None else "no image"
            raise DataError(
                f"{self.source or self.id}: image: this record shows {form}, not one image, and this step "
                "reads one image per record (use records with 'image' here)"
            )
        return self.image_path if self.image_path is not None else Path(self.image)


def record_from_dict(
    obj: dict[str, Any], base_dir: Path | None = None, source: str | None = None, _cache: dict | None = None
) -> Record:
    """Build a `Record` from an already validated dict; resolve `image` against `base_dir`.

    The absolute path is normalised (``..`` removed) without resolving symlinks; `_cache` (image
    string -> Path) lets a loader share one Path per image.
    """
    kwargs = {k: obj[k] for k in FIELDS if k in obj}
    kwargs["boxes"] = [list(b) for b in kwargs.get("boxes", [])]
    if kwargs.get("meta") is None:
        kwargs["meta"] = {}
    rec = Record(**kwargs)
    cache = _cache if _cache is not None else {}
    rec.source = source
    if rec.image is None:  # an `images` or `video` record
        if rec.images is not None:
            rec.image_sizes = [list(wh) for wh in rec.image_sizes or []]
            paths = [_resolve(p, base_dir, cache) for p in rec.images]
            rec.image_paths = None if None in paths else paths
        if rec.video is not None:
            rec.video_path = _resolve(rec.video, base_dir, cache)
        return rec
    path = cache.get(rec.image)
    if path is None:
        if os.path.isabs(rec.image):
            path = Path(os.path.normpath(rec.image))
        elif base_dir is not None:
            path = Path(os.path.normpath(os.path.join(base_dir, rec.image)))
        cache[rec.image] = path
    rec.image_path = path
    return rec


def _resolve(name: str, base_dir: Path | None, cache: dict) -> Path | None:
    """`name` as an absolute normalised path (relative to `base_dir`; None when relative and there
    is no `base_dir`, like `image_path`), shared through `cache`."""
    path = cache.get(name)
    if path is None:
        if base_dir is None and not os.path.isabs(name):
            return None
        if os.path.isabs(name):
            path = Path(os.path.normpath(name))
        else:
            path = Path(os.path.normpath(os.path.join(base_dir, name)))
        cache[name] = path
    return path


def format_problems(problems: list[str], header: str) -> str:
    """Join problem lines under a header, truncating very long lists (the count stays exact)."""
    shown = problems[:MAX_REPORTED_PROBLEMS]
    text = header + "\n  " + "\n  ".join(shown)
    if len(problems) > len(shown):
        text += f"\n  ... and {len(problems) - len(shown)} more (run `vrft data validate` for the full list)"
    return text


def finish_conversion(
    records: list[Record], problems: list[str], path: Path, out: str | os.PathLike | None, empty: str
) -> list[Record]:
    """The end every converter shares: DataError listing every problem (none converted), DataError
    ``{path}: {empty}`` when nothing was converted, else the records (saved to `out` as JSONL when given)."""
    if problems:
        raise DataError(format_problems(problems, f"{path}: {len(problems)} problem(s):"))
    if not records:
        raise DataError(f"{path}: {empty}")
    if out is not None:
        save_records(records, out)
    return records


def iter_record_lines(path: Path) -> Iterable[tuple[int, str]]:
    """Yield ``(line_number, text)`` for non-blank lines of a JSONL file (1-based line numbers).

    DataError ``file:line: not UTF-8 ...`` for a line that is not UTF-8 (`vrft.inputs.iter_lines`)."""
    from vrft.inputs import iter_lines

    yield from iter_lines(path, "records file")


def sample_records(records: list[Record], max_samples: int | None, seed: int) -> list[Record]:
    """At most `max_samples` of `records`: a seeded subset (`random.Random(seed)`), file order kept."""
    import random

    if max_samples is None or len(records) <= max_samples:
        return records
    keep = sorted(random.Random(seed).sample(range(len(records)), max_samples))
    return [records[i] for i in keep]


def image_problems(records: Iterable[Record]) -> list[str]:
    """``file:line: image: PATH: problem`` for every record whose image is missing or unreadable.

    Reads each distinct image's header once (no pixel decoded; `vrft.inputs.image_size`): what a
    training run checks before it loads the model, so a bad image is not found at step 1. An
    ``images`` record has each image checked (``file:line: images[i]: PATH: problem``); a ``video``
    record its video, once per distinct video (`vrft.media.video_problem`: header, first frame,
    duration and size; ``file:line: video: problem``)."""
    from vrft.inputs import image_problem
    from vrft.media import VideoPart, video_problem

    checked: dict[Path, str | None] = {}
    videos: dict[VideoPart, str | None] = {}
    problems = []
    for rec in records:
        if rec.image is None and (rec.images is not None or rec.video is not None):
            for i, part in enumerate(rec.visual_parts()):
                if isinstance(part, VideoPart):
                    if part not in videos:
                        videos[part] = video_problem(part)
                    if videos[part]:
                        problems.append(f"{rec.source or rec.id}: video: {videos[part]}")
                    continue
                if part.path not in checked:
                    checked[part.path] = image_problem(part.path)
                if checked[part.path]:
                    problems.append(f"{rec.source or rec.id}: images[{i}]: {part.path}: {checked[part.path]}")
            continue
        path = rec.resolved_image()
        if path not in checked:
            checked[path] = image_problem(path)
        if checked[path]:
            problems.append(f"{rec.source or rec.id}: image: {path}: {checked[path]}")
    return problems


def load_records(path: str | os.PathLike, *, task: str | None = None) -> list[Record]:
    """Load and check a records JSONL file.

    Args:
        path: the JSONL file. Image paths inside are resolved relative to its directory.
        task: if given, every record must have this task.

    Returns:
        The records, in file order, with `image_path` (absolute) and `source` ("file:line") set.

    Raises:
        DataError: the file is missing, or any line is invalid (all problems are listed, each as
            ``file:line: field: problem (how to fix)``), or ids repeat.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not a records file (give the .jsonl file inside it)")
    if not path.is_file():
        raise DataError(
            f"{path}: records file not found (write it with `vrft data convert ...` or check the path)"
        )
    base_dir = path.resolve().parent
    problems: list[str] = []
    records: list[Record] = []
    seen: dict[str, int] = {}
    paths: dict[str, Path] = {}
    for lineno, line in iter_record_lines(path):
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            problems.append(
                f"{where}: -: invalid JSON ({err.msg} at column {err.colno}; one object per line)"
            )
            continue
        except RecursionError:
            problems.append(f"{where}: -: JSON nested too deeply (one flat record object per line)")
            continue
        line_problems = validate_record_dict(obj)
        if task is not None and isinstance(obj, dict) and obj.get("task") not in (None, task):
            line_problems.append(("task", f"{obj.get('task')!r} but {task!r} records are expected here"))
        if isinstance(obj, dict) and isinstance(obj.get("id"), str):
            rid = obj["id"]
            if rid in seen:
                line_problems.append(
                    ("id", f"duplicate id {rid!r} (first at line {seen[rid]}; ids must be unique)")
                )
            else:
                seen[rid] = lineno
        if line_problems:
            problems.extend(f"{where}: {fld}: {msg}" for fld, msg in line_problems)
            continue
        records.append(record_from_dict(obj, base_dir, where, paths))
    if problems:
        raise DataError(format_problems(problems, f"{path}: {len(problems)} problem(s) in records file:"))
    return records


def save_records(records: Iterable[Record], path: str | os.PathLike) -> Path:
    """Write records as JSONL (atomically). Image paths are written relative to the output file.

    A record whose `image_path` is set is written with that path made relative to `path`'s
    directory; otherwise `image` is written unchanged. The same holds for `image_paths` (`images`)
    and `video_path` (`video`; a frame folder keeps its trailing ``/``). Returns the output path.
    UserError, before anything is written, when `path` is a file the records show or lies in a frame
    folder they show (`refuse_media_overlap`).
    """
    from vrft.outputs import atomic_open

    path = Path(path)
    records = list(records)
    refuse_media_overlap(records, path)
    out_dir = str(path.resolve().parent)
    rel: dict[str, str] = {}
    with atomic_open(path, "w") as fh:  # a unique temporary name, renamed into place
        for rec in records:
            obj = rec.to_dict()
            if rec.image_path is not None:
                key = str(rec.image_path)
                if key not in rel:
                    rel[key] = Path(os.path.relpath(os.path.abspath(key), out_dir)).as_posix()
                obj["image"] = rel[key]
            if rec.image_paths is not None and rec.images is not None:
                obj["images"] = [_relative(p, out_dir, rel) for p in rec.image_paths]
            if rec.video_path is not None and rec.video is not None:
                obj["video"] = _relative(rec.video_path, out_dir, rel)
                if rec.video.endswith(("/", os.sep)):
                    obj["video"] += "/"
            fh.write(json.dumps(obj, ensure_ascii=False) + "\n")
    return path


def refuse_media_overlap(records: Iterable[Record], path: str | os.PathLike) -> None:
    """UserError when writing `path` would replace what the records show: their image, one of their
    images or their video file, or a file inside their frame folder (a converter's ``--out`` pointed at
    its own inputs; the output check before the conversion cannot know the media paths)."""
    from vrft.errors import UserError
    from vrft.outputs import refuse_overlap

    out = Path(path)
    same_name: list[Path] = []
    videos: set[Path] = set()
    for rec in records:
        for p in (rec.image_path, *(rec.image_paths or ())):
            if p is not None and Path(p).name == out.name:
                same_name.append(Path(p))
        if rec.video_path is not None:
            videos.add(Path(rec.video_path))
    same_name += [v for v in videos if v.name == out.name]
    refuse_overlap([out], same_name)
    where = out.resolve().parent
    for folder in videos:
        if folder.is_dir() and (where == folder.resolve() or folder.resolve() in where.parents):
            raise UserError(
                f"--out: the output {out} lies in the frame folder {folder} of a record; writing it would add "
                "to or replace its frames. Choose another output path"
            )


def _relative(path: Path, out_dir: str, cache: dict[str, str]) -> str:
    key = str(path)
    if key not in cache:
        cache[key] = Path(os.path.relpath(os.path.abspath(key), out_dir)).as_posix()
    return cache[key]
