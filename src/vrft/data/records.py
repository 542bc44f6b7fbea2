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
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vrft.errors import DataError
from vrft.media import MAX_IMAGES_PER_RECORD, MAX_VIDEO_SECONDS, WINDOW_TOLERANCE_S, VisualPart

TASK_NAMES: tuple[str, ...] = (
    "detection", "classification", "grounding", "counting", "ocr",
    "temporal_grounding", "multi_image_grounding",
)  # fmt: skip
# Tasks whose records hold several images (``images``) or a video (``video``) instead of ``image``.
MULTI_IMAGE_TASKS: tuple[str, ...] = ("multi_image_grounding",)
VIDEO_TASKS: tuple[str, ...] = ("temporal_grounding",)
ANSWER_FORMATS: tuple[str, ...] = ("think", "answer_only")

# Boxes may exceed the image by at most this many pixels (annotation tools and float rounding
# routinely produce x2 = W + 0.5); beyond it the box is an error.
BOX_TOLERANCE_PX: float = 1.0

# Serialised field order (also the set of allowed keys).
FIELDS: tuple[str, ...] = (
    "id",
    "task",
    "image",
    "images",
    "image_sizes",
    "video",
    "fps",
    "duration",
    "width",
    "height",
    "image_id",
    "category",
    "boxes",
    "label",
    "classes",
    "domain",
    "aliases",
    "expression",
    "target_image",
    "event",
    "window",
    "text",
    "prompt",
    "answer_format",
    "meta",
)
_REQUIRED = ("id", "task", "image", "width", "height")
# A record shows exactly one of these (the one-image ``image`` form, ``images`` or ``video``).
VISUAL_FIELDS: tuple[str, ...] = ("image", "images", "video")
MAX_REPORTED_PROBLEMS = 200


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


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def check_box(box: Any, width: Any, height: Any, tolerance: float = BOX_TOLERANCE_PX) -> str | None:
    """Return a problem description for a pixel box ``[x1, y1, x2, y2]``, or None when it is valid.

    Valid: four finite numbers, x2 > x1, y2 > y1, inside ``[-tol, W + tol] x [-tol, H + tol]``.
    """
    if not isinstance(box, (list, tuple)) or len(box) != 4 or not all(_is_number(v) for v in box):
        return f"{box!r} is not 4 finite numbers [x1, y1, x2, y2]"
    x1, y1, x2, y2 = box
    if x2 <= x1 or y2 <= y1:
        return f"{list(box)} has non-positive width or height (need x2 > x1 and y2 > y1, pixels)"
    if _is_number(width) and _is_number(height):
        if x1 < -tolerance or y1 < -tolerance or x2 > width + tolerance or y2 > height + tolerance:
            return (
                f"{list(box)} lies outside the {width}x{height} image "
                f"(tolerance {tolerance:g} px; clip it or fix width/height)"
            )
    return None


def validate_record_dict(obj: Any) -> list[tuple[str, str]]:
    """Check one decoded JSON line; return ``[(field, problem (how to fix)), ...]`` (empty when valid)."""
    problems: list[tuple[str, str]] = []
    if not isinstance(obj, dict):
        return [("-", f"expected a JSON object, got {type(obj).__name__} (write one record object per line)")]
    for key in obj:
        if key not in FIELDS:
            problems.append(
                (key, f"unknown field (allowed: {', '.join(FIELDS)}; move extra data into 'meta')")
            )
    visual = [k for k in VISUAL_FIELDS if k in obj]
    for key in _REQUIRED:
        if key in ("image", "width", "height") and ("images" in obj or "video" in obj):
            continue  # checked by `_visual_problems`
        if key not in obj:
            problems.append((key, "missing (required field)" if key != "image" or visual else
                             "missing (required field; or give 'images' or 'video')"))
    problems.extend(_visual_problems(obj, visual))
    rid = obj.get("id")
    if "id" in obj and (not isinstance(rid, str) or not rid.strip()):
        problems.append(("id", f"{rid!r} must be a non-empty string"))
    task = obj.get("task")
    if "task" in obj and task not in TASK_NAMES:
        problems.append(("task", f"unknown task {task!r} (use one of {', '.join(TASK_NAMES)})"))
    if "image" in obj and (not isinstance(obj["image"], str) or not obj["image"].strip()):
        problems.append(("image", f"{obj['image']!r} must be a non-empty path string"))
    for key in ("width", "height"):
        v = obj.get(key)
        if key in obj and "images" not in obj and (not isinstance(v, int) or isinstance(v, bool) or v <= 0):
            problems.append((key, f"{v!r} must be a positive integer (pixels of the original image)"))
    iid = obj.get("image_id")
    if iid is not None and (isinstance(iid, bool) or not isinstance(iid, (int, str))):
        problems.append(("image_id", f"{iid!r} must be an integer or string"))
    for key in ("category", "label", "expression", "prompt", "event"):
        v = obj.get(key)
        if v is not None and (not isinstance(v, str) or not v.strip()):
            problems.append((key, f"{v!r} must be a non-empty string"))
    boxes = obj.get("boxes", [])
    if not isinstance(boxes, list):
        problems.append(("boxes", f"{boxes!r} must be a list of [x1, y1, x2, y2] pixel boxes"))
        boxes = []
    for i, box in enumerate(boxes):
        problem = check_box(box, obj.get("width"), obj.get("height"))
        if problem:
            problems.append((f"boxes[{i}]", problem))
    text = obj.get("text")
    if text is not None and not isinstance(text, str):
        problems.append(("text", f"{text!r} must be a string (the text in the image)"))
    fmt = obj.get("answer_format")
    if fmt is not None and fmt not in ANSWER_FORMATS:
        problems.append(
            ("answer_format", f"{fmt!r} must be one of {', '.join(ANSWER_FORMATS)} (or leave it out)")
        )
    for key in ("classes", "aliases"):
        v = obj.get(key)
        if v is not None and (
            not isinstance(v, list) or not all(isinstance(s, str) and s.strip() for s in v)
        ):
            problems.append((key, f"{v!r} must be a list of non-empty strings"))
    domain = obj.get("domain")
    if domain is not None and (
        not isinstance(domain, dict) or not all(isinstance(v, str) and v.strip() for v in domain.values())
    ):
        problems.append(
            ("domain", f"{domain!r} must be an object like {{'object': 'flower', 'attribute': 'species'}}")
        )
    meta = obj.get("meta")
    if meta is not None and not isinstance(meta, dict):
        problems.append(("meta", f"{meta!r} must be a JSON object"))
    # Task-specific requirements.
    if task == "detection":
        if obj.get("category") is None:
            problems.append(("category", "missing (a detection record asks about one category)"))
        if "boxes" not in obj:
            problems.append(("boxes", "missing (use [] for an image without the category: 'No Objects')"))
    elif task == "classification":
        if obj.get("label") is None:
            problems.append(("label", "missing (the correct class name of a classification record)"))
        classes = obj.get("classes")
        label = obj.get("label")
        if isinstance(classes, list) and isinstance(label, str) and classes and label not in classes:
            problems.append(("label", f"{label!r} is not in 'classes' (add it to the class list)"))
    elif task == "counting":
        if obj.get("category") is None:
            problems.append(("category", "missing (a counting record counts the objects of one category)"))
        if "boxes" not in obj:
            problems.append(("boxes", "missing (the boxes of the objects counted; [] for none)"))
        elif isinstance(boxes, list) and (too_many := counting_size_problem(len(boxes))):
            problems.append(("boxes", too_many))
    elif task == "ocr":
        if "text" not in obj:
            problems.append(("text", 'missing (the text in the image of an OCR record; "" for none)'))
    elif task == "grounding":
        if obj.get("expression") is None:
            problems.append(("expression", "missing (the referring expression of a grounding record)"))
        if isinstance(boxes, list) and len(boxes) < 1:
            problems.append(("boxes", "a grounding record needs at least one target box"))
    elif task == "multi_image_grounding":
        problems.extend(_multi_image_problems(obj, boxes))
    elif task == "temporal_grounding":
        problems.extend(_temporal_problems(obj))
    if task in TASK_NAMES:
        problems.extend(_task_form_problems(task, visual))
    return problems


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _visual_problems(obj: dict[str, Any], visual: list[str]) -> list[tuple[str, str]]:
    """Problems of the `image` / `images` / `video` fields (exactly one; their shapes and limits)."""
    problems: list[tuple[str, str]] = []
    if len(visual) > 1:
        problems.append(
            (visual[1], f"a record shows exactly one of image / images / video, this one has {' and '.join(visual)} "
             "(split it into separate records or keep one)")
        )
    if "images" in obj:
        images = obj["images"]
        if not isinstance(images, list) or not all(isinstance(p, str) and p.strip() for p in images):
            problems.append(("images", f"{images!r} must be a list of non-empty image paths"))
        elif not 1 <= len(images) <= MAX_IMAGES_PER_RECORD:
            problems.append(
                ("images", f"{len(images)} images, the limit is 1..{MAX_IMAGES_PER_RECORD} per record "
                 "(vrft.media.MAX_IMAGES_PER_RECORD): split the record or drop images")
            )
        sizes = obj.get("image_sizes")
        if sizes is None:
            problems.append(("image_sizes", "missing (the [width, height] of each image, required with 'images')"))
        elif not isinstance(sizes, list) or not all(
            isinstance(wh, list) and len(wh) == 2 and all(_positive_int(v) for v in wh) for wh in sizes
        ):
            problems.append(("image_sizes", f"{sizes!r} must be a list of [width, height] positive integers"))
        elif isinstance(images, list) and len(sizes) != len(images):
            problems.append(
                ("image_sizes", f"{len(sizes)} sizes for {len(images)} images (give one [width, height] per image)")
            )
        for key in ("width", "height"):
            if key in obj:
                problems.append(
                    (key, "not used by an 'images' record (each image's size is in 'image_sizes'): remove it")
                )
    elif "image_sizes" in obj:
        problems.append(("image_sizes", "only for an 'images' record (remove it, or give 'images')"))
    if "video" in obj:
        video = obj["video"]
        if not isinstance(video, str) or not video.strip():
            problems.append(("video", f"{video!r} must be a non-empty path (a video file or a folder of frames)"))
        for key in ("width", "height"):
            if key not in obj:
                problems.append((key, "missing (the frame size in pixels, required with 'video')"))
        if "duration" not in obj:
            problems.append(("duration", "missing (the video's length in seconds, required with 'video')"))
    else:
        for key in ("duration", "fps"):
            if key in obj:
                problems.append((key, "only for a 'video' record (remove it, or give 'video')"))
    duration = obj.get("duration")
    if "duration" in obj and "video" in obj:
        if not _is_number(duration) or duration <= 0:
            problems.append(("duration", f"{duration!r} must be a number of seconds > 0 (the video's length)"))
        elif duration > MAX_VIDEO_SECONDS:
            problems.append(
                ("duration", f"{duration:g} s is longer than the limit of {MAX_VIDEO_SECONDS:g} s "
                 "(vrft.media.MAX_VIDEO_SECONDS): cut the video into shorter clips")
            )
    fps = obj.get("fps")
    if "fps" in obj and "video" in obj and (not _is_number(fps) or fps <= 0):
        problems.append(("fps", f"{fps!r} must be a number of frames per second > 0"))
    if "video" in obj and isinstance(obj["video"], str) and obj["video"].endswith(("/", os.sep)) and "fps" not in obj:
        problems.append(("fps", "missing (a folder of frames needs its frame rate: set 'fps')"))
    return problems


def _multi_image_problems(obj: dict[str, Any], boxes: Any) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if obj.get("expression") is None:
        problems.append(("expression", "missing (what to find in one of the images)"))
    images = obj.get("images")
    n = len(images) if isinstance(images, list) else None
    target = obj.get("target_image")
    if "target_image" not in obj:
        problems.append(("target_image", "missing (the 1-based number of the image that holds the target)"))
    elif not isinstance(target, int) or isinstance(target, bool):
        problems.append(("target_image", f"{target!r} must be an integer, the 1-based index into 'images'"))
    elif n is not None and not 1 <= target <= n:
        problems.append(
            ("target_image", f"{target} is out of range: the record has {n} image(s), so use 1..{n} (1-based)")
        )
        target = None
    if "boxes" not in obj or (isinstance(boxes, list) and len(boxes) != 1):
        problems.append(("boxes", "a multi_image_grounding record needs exactly one box [[x1, y1, x2, y2]] (pixels "
                         "of image 'target_image')"))
    sizes = obj.get("image_sizes")
    if (
        isinstance(boxes, list) and len(boxes) == 1 and check_box(boxes[0], None, None) is None
        and _positive_int(target) and isinstance(sizes, list) and target <= len(sizes)
        and isinstance(sizes[target - 1], list) and len(sizes[target - 1]) == 2
    ):
        w, h = sizes[target - 1]
        problem = check_box(boxes[0], w, h)
        if problem:
            problems.append(("boxes[0]", f"{problem} (image {target} of 'images')"))
    return problems


def _temporal_problems(obj: dict[str, Any]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if obj.get("event") is None:
        problems.append(("event", "missing (the event whose time window is asked for)"))
    window = obj.get("window")
    if "window" not in obj:
        problems.append(("window", "missing (the ground truth [start, end] in seconds)"))
    elif not isinstance(window, list) or len(window) != 2 or not all(_is_number(v) for v in window):
        problems.append(("window", f"{window!r} must be two finite numbers [start, end] in seconds"))
    else:
        start, end = window
        duration = obj.get("duration")
        if start < 0 or end <= start:
            problems.append(("window", f"{window} needs 0 <= start < end (seconds)"))
        elif _is_number(duration) and duration > 0 and end > duration + WINDOW_TOLERANCE_S:
            problems.append(
                ("window", f"{window} ends after the video's duration {duration:g} s (tolerance "
                 f"{WINDOW_TOLERANCE_S:g} s; fix the window or the duration)")
            )
    return problems


def _task_form_problems(task: str, visual: list[str]) -> list[tuple[str, str]]:
    """The visual form each task reads: `images` for multi-image tasks, `video` for video tasks,
    `image` for the rest."""
    if not visual or len(visual) > 1:
        return []
    form = visual[0]
    want = "images" if task in MULTI_IMAGE_TASKS else "video" if task in VIDEO_TASKS else "image"
    if form == want:
        return []
    return [(form, f"a {task} record reads '{want}', not '{form}' (write the record with '{want}')")]


def counting_size_problem(n: int) -> str | None:
    """Why a counting record with `n` objects is refused (more than `vrft.parsing.MAX_POINTS`: its
    correct answer could not be parsed, so it would score 0), else None."""
    from vrft.parsing import MAX_POINTS

    if n <= MAX_POINTS:
        return None
    return (
        f"{n} objects, more than the {MAX_POINTS} points a counting answer may hold "
        "(vrft.parsing.MAX_POINTS: the correct answer could not be read); split the image or drop it"
    )


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
    """
    from vrft.outputs import atomic_open

    path = Path(path)
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


def _relative(path: Path, out_dir: str, cache: dict[str, str]) -> str:
    key = str(path)
    if key not in cache:
        cache[key] = Path(os.path.relpath(os.path.abspath(key), out_dir)).as_posix()
    return cache[key]
