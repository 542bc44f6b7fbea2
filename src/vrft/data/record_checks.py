"""The rules of one record line: its fields, its tasks, and every check `load_records` and `vrft data
validate` apply to a decoded JSON object before it becomes a `vrft.data.records.Record`.

Split from records.py (which keeps the dataclass, loading and saving): what a line may hold is one
concern, how records are read and written another. `vrft.data.records` re-exports every public name.
"""

from __future__ import annotations

import math
import os
from typing import Any

from vrft.media import MAX_IMAGES_PER_RECORD, MAX_VIDEO_SECONDS, WINDOW_TOLERANCE_S

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
    "trace",
    "meta",
)
_REQUIRED = ("id", "task", "image", "width", "height")
# A record shows exactly one of these (the one-image ``image`` form, ``images`` or ``video``).
VISUAL_FIELDS: tuple[str, ...] = ("image", "images", "video")
MAX_REPORTED_PROBLEMS = 200


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
            problems.append(
                (
                    key,
                    "missing (required field)"
                    if key != "image" or visual
                    else "missing (required field; or give 'images' or 'video')",
                )
            )
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
    if obj.get("trace") is not None:  # SFT on tool use (docs/tools.md)
        from vrft.tools.trace import trace_problems

        for problem in trace_problems(obj["trace"]):
            where, _, what = problem.partition(": ") if problem.startswith("[") else ("", "", problem)
            problems.append(("trace" + where, what))
        if "image" not in obj:
            problems.append(("trace", "a tool trace needs a one-image record ('image')"))
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
            (
                visual[1],
                f"a record shows exactly one of image / images / video, this one has {' and '.join(visual)} "
                "(split it into separate records or keep one)",
            )
        )
    if "images" in obj:
        images = obj["images"]
        if not isinstance(images, list) or not all(isinstance(p, str) and p.strip() for p in images):
            problems.append(("images", f"{images!r} must be a list of non-empty image paths"))
        elif not 1 <= len(images) <= MAX_IMAGES_PER_RECORD:
            problems.append(
                (
                    "images",
                    f"{len(images)} images, the limit is 1..{MAX_IMAGES_PER_RECORD} per record "
                    "(vrft.media.MAX_IMAGES_PER_RECORD): split the record or drop images",
                )
            )
        sizes = obj.get("image_sizes")
        if sizes is None:
            problems.append(
                ("image_sizes", "missing (the [width, height] of each image, required with 'images')")
            )
        elif not isinstance(sizes, list) or not all(
            isinstance(wh, list) and len(wh) == 2 and all(_positive_int(v) for v in wh) for wh in sizes
        ):
            problems.append(("image_sizes", f"{sizes!r} must be a list of [width, height] positive integers"))
        elif isinstance(images, list) and len(sizes) != len(images):
            problems.append(
                (
                    "image_sizes",
                    f"{len(sizes)} sizes for {len(images)} images (give one [width, height] per image)",
                )
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
            problems.append(
                ("video", f"{video!r} must be a non-empty path (a video file or a folder of frames)")
            )
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
            problems.append(
                ("duration", f"{duration!r} must be a number of seconds > 0 (the video's length)")
            )
        elif duration > MAX_VIDEO_SECONDS:
            problems.append(
                (
                    "duration",
                    f"{duration:g} s is longer than the limit of {MAX_VIDEO_SECONDS:g} s "
                    "(vrft.media.MAX_VIDEO_SECONDS): cut the video into shorter clips",
                )
            )
    fps = obj.get("fps")
    if "fps" in obj and "video" in obj and (not _is_number(fps) or fps <= 0):
        problems.append(("fps", f"{fps!r} must be a number of frames per second > 0"))
    if (
        "video" in obj
        and isinstance(obj["video"], str)
        and obj["video"].endswith(("/", os.sep))
        and "fps" not in obj
    ):
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
            (
                "target_image",
                f"{target} is out of range: the record has {n} image(s), so use 1..{n} (1-based)",
            )
        )
        target = None
    if "boxes" not in obj or (isinstance(boxes, list) and len(boxes) != 1):
        problems.append(
            (
                "boxes",
                "a multi_image_grounding record needs exactly one box [[x1, y1, x2, y2]] (pixels "
                "of image 'target_image')",
            )
        )
    sizes = obj.get("image_sizes")
    if (
        isinstance(boxes, list)
        and len(boxes) == 1
        and check_box(boxes[0], None, None) is None
        and _positive_int(target)
        and isinstance(sizes, list)
        and target <= len(sizes)
        and isinstance(sizes[target - 1], list)
        and len(sizes[target - 1]) == 2
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
                (
                    "window",
                    f"{window} ends after the video's duration {duration:g} s (tolerance "
                    f"{WINDOW_TOLERANCE_S:g} s; fix the window or the duration)",
                )
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
