"""`vrft score TASK FILE.jsonl [--preset NAME | --rewards a,b,...]`: re-score completions offline.

Each input line is a JSON object with ``completion`` (a string or a list of message dicts) and a target:

- ``solution`` in the reference's style, coordinates 0..1000: ``<answer>[{'Position': [x1, y1, x2, y2],
  'Confidence': 1}]</answer>`` or ``<answer>No Objects</answer>`` (detection), ``<answer>label</answer>``
  (classification), ``<answer> (x1,y1),(x2,y2) </answer>`` (grounding); counting: written like a
  detection solution, the GT boxes of the counted objects (the count is their number); OCR:
  ``<answer>TEXT</answer>``; the tags may be omitted; temporal grounding: ``[S, E]`` seconds (a JSON
  list, or a string like the answer); multi-image grounding: ``{"image": i, "bbox_2d": [x1, y1, x2,
  y2]}`` in 0..1000 of image i (a JSON object, or a string like the answer), with an optional
  ``num_images`` beside it;
- or our record format, PIXEL coordinates: a record object under ``record``, or its fields at the top
  level (detection/grounding/counting: ``boxes`` + ``width`` + ``height``; classification: ``label``,
  optionally ``aliases``; OCR: ``text``; temporal grounding: ``window`` seconds; multi-image:
  ``image_sizes`` + ``target_image`` + ``boxes``, one box in pixels of that image);
- or vrft's own outputs: a ``predictions.jsonl`` of ``vrft eval`` or a run's ``samples.jsonl``
  (``gt_boxes`` in pixels + ``width`` + ``height``; ``gt_label``: the label, or the OCR text;
  ``gt_window``; ``gt_image`` + ``gt_boxes`` + ``image_sizes``). A null
  ``completion`` (a pair the paper protocol did not ask) scores as an empty answer.

Pixel targets are converted with ``vrft.boxes.Frame`` into the answers' convention: ``--convention``
(norm1000, pixels, or resized_pixels with ``--min-pixels`` / ``--max-pixels``); default ``auto``: the
``convention`` and pixel budget the ``metrics.json`` beside FILE records (a ``vrft eval`` output
directory) or the ``final/vrft.json`` beside it (a training run's ``samples.jsonl``), else norm1000.
``solution`` targets are 0..1000 whatever the convention.

Output: one JSON line per scored input line, in input order, e.g.
``{"rewards": {"format": 1.0, "iou": 0.5, "confidence": 1.0}, "total": 2.5}``; ``total`` is the plain sum
of the shown components. With ``--rewards a,b,...`` the listed rewards are shown instead, keyed by
their registry name (``{"rewards": {"count_points": 0.8, "count_exact": 0.0}, "total": 0.8}``), and
``total`` is their plain (unweighted) sum. A bad input line (not JSON, no completion, unusable target,
more than `MAX_GT_BOXES` = 1,000 ground-truth boxes or an OCR text over `MAX_CHARS`) produces NO output line; it is reported as
``FILE:LINE: problem`` on stderr and the command exits 1 after scoring every good line. Blank lines
are skipped; a file with no line to score (empty, or only blank lines) is an error (exit 2). This module
must not import torch.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from typing import Any

from vrft.boxes import QWEN_FACTOR, Frame
from vrft.data.record_checks import TASK_NAMES
from vrft.errors import ConfigError, UserError
from vrft.parsing import (
    MAX_CHARS,
    MAX_ENTRIES,
    parse_box,
    parse_detections,
    parse_image_box,
    parse_label,
    parse_window,
    split,
)
from vrft.rewards import PRESETS, get_reward, rewards_for

MAX_GT_BOXES = MAX_ENTRIES
"""Ground-truth boxes one line may hold (1,000, the same cap as the predictions a completion may
hold, `vrft.parsing.MAX_ENTRIES`). A line with more is reported as a bad line, not scored: matching
100k boxes took 37 s and 6.4 GB."""

# reward name -> key in the output line
DISPLAY: dict[str, str] = {
    "format": "format",
    "format_strict": "format",
    "format_nonempty_think": "format",
    "detection_iou": "iou",
    "detection_confidence": "confidence",
    "classification_exact": "accuracy",
    "classification_substring": "accuracy",
    "grounding_iou": "iou",
    "grounding_giou": "giou",
    "grounding_giou_plus1": "giou",
    "format_answer_only": "format",
    "detection_iou_hungarian": "iou",
    "detection_f1": "f1",
    "detection_confidence_hungarian": "confidence",
    "count_points": "points",
    "count_exact": "exact",
    "count_relative": "relative",
    "ocr_similarity": "similarity",
    "ocr_exact": "exact",
    "temporal_iou": "iou",
    "multi_image_iou": "iou",
}


class _BadLine(Exception):
    """A problem with one input line (reported, then the next line is scored)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", choices=TASK_NAMES, help="which task's rewards to apply")
    parser.add_argument(
        "file", help="JSONL file with 'completion' and 'solution' or record fields ('-': stdin)"
    )
    parser.add_argument(
        "--preset",
        choices=list(PRESETS),
        default=None,
        help="reward preset (default 'default'): 'default' (recommended), 'visual-rft' (the reference's "
        "formulas, defects fixed) or 'perception' (Perception-R1: Hungarian matching, answer-only format)",
    )
    parser.add_argument(
        "--convention",
        choices=("auto", "norm1000", "pixels", "resized_pixels"),
        default="auto",
        help="coordinates of the answers, for pixel targets: auto (the metrics.json beside FILE, else "
        "norm1000), norm1000 (0..1000), pixels (original), resized_pixels (needs --min-pixels/--max-pixels)",
    )
    parser.add_argument("--min-pixels", type=int, help="resized_pixels: the processor's min_pixels")
    parser.add_argument("--max-pixels", type=int, help="resized_pixels: the processor's max_pixels")
    parser.add_argument(
        "--rewards",
        help="comma-separated registered reward names to show instead of a preset, e.g. "
        "count_points,count_exact; total = their unweighted sum",
    )


def chosen_rewards(task: str, preset: str | None, names: str | None) -> list[tuple[str, Callable]]:
    """``[(output key, reward function)]``: the preset's weighted rewards (display keys), or the named
    rewards keyed by their registry name."""
    if names is None:
        fns, weights = rewards_for(task, preset or "default")
        return [(DISPLAY.get(fn.__name__, fn.__name__), fn) for fn, w in zip(fns, weights) if w != 0]
    if preset is not None:
        raise UserError("give either --preset or --rewards, not both")
    listed = [n.strip() for n in names.split(",") if n.strip()]
    if not listed:
        raise UserError("--rewards is empty; give registered reward names, e.g. --rewards format,count_exact")
    if len(set(listed)) != len(listed):
        raise UserError(f"--rewards names a reward twice: {names}")
    try:
        return [(name, get_reward(name)) for name in listed]
    except ConfigError as err:
        raise UserError(f"--rewards: {err}") from None


def frame_maker(args: argparse.Namespace) -> Callable[[float, float], Frame]:
    """``(width, height) -> Frame`` of the answers' convention (`--convention`, see the module doc)."""
    import logging

    from vrft.models.contract import recorded_coordinates

    rec = recorded_coordinates(None if args.file == "-" else args.file)
    convention = rec["convention"] if args.convention == "auto" else args.convention
    convention = convention or "norm1000"
    lo = args.min_pixels if args.min_pixels is not None else rec["min_pixels"]
    hi = args.max_pixels if args.max_pixels is not None else rec["max_pixels"]
    for flag, v in (("--min-pixels", args.min_pixels), ("--max-pixels", args.max_pixels)):
        if v is not None and v < 1:
            raise UserError(f"{flag} must be a positive integer, got {v}")
    grid: dict[str, int] = {}
    if convention == "resized_pixels":
        if lo is None or hi is None:
            raise UserError(
                "--convention resized_pixels: give the processor's pixel budget with --min-pixels and --max-pixels"
            )
        grid = {
            "min_pixels": int(lo),
            "max_pixels": int(hi),
            "factor": int(rec["patch_factor"] or QWEN_FACTOR),
        }
    if args.convention == "auto" and rec["convention"]:
        logging.getLogger(__name__).info("reading pixel targets as %s (%s)", convention, rec["source"])
    frames: dict[tuple[float, float], Frame] = {}

    def frame_of(width: float, height: float) -> Frame:
        if (width, height) not in frames:
            try:
                frames[(width, height)] = Frame.for_image(width, height, convention, **grid)
            except ValueError as err:  # an aspect ratio smart_resize refuses
                raise _BadLine(str(err)) from None
        return frames[(width, height)]

    return frame_of


def run(args: argparse.Namespace) -> int:
    rewards = chosen_rewards(args.task, args.preset, args.rewards)
    name = "<stdin>" if args.file == "-" else args.file
    frame_of = frame_maker(args)
    lines = _read(args.file)
    if not any(line.strip() for line in lines):
        raise UserError(
            f"{name}: no rows to score: the file is empty or holds only blank lines (give a JSONL file with "
            "one JSON object per line: 'completion' and a target, e.g. a vrft eval predictions.jsonl)"
        )
    bad = 0
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            completion, columns = _parse_line(line, args.task, frame_of)
        except _BadLine as err:
            bad += 1
            print(f"{name}:{lineno}: {err}", file=sys.stderr)
            continue
        print(json.dumps(score_line(completion, columns, rewards)), flush=False)
    sys.stdout.flush()
    if bad:
        print(f"vrft score: {bad} line(s) could not be scored (no output line for them)", file=sys.stderr)
        return 1
    return 0


def _read(path: str) -> list[str]:
    """The input lines (file or '-' for stdin); UserError for a missing file, a directory, non-UTF-8."""
    from vrft.inputs import check_file, decode_lines

    if path == "-":
        stream = getattr(sys.stdin, "buffer", None)
        data = stream.read() if stream is not None else sys.stdin.read().encode("utf-8", "surrogateescape")
        return decode_lines(data, "<stdin>", UserError)
    p = check_file(path, "input file", UserError)
    try:
        data = p.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror or err}") from None
    return decode_lines(data, str(p), UserError)


def score_line(
    completion: Any, columns: dict[str, Any], rewards: list[tuple[str, Callable]]
) -> dict[str, Any]:
    """``{"rewards": {key: value}, "total": sum}`` for one completion (values rounded to 6 decimals)."""
    batch = {k: [v] for k, v in columns.items()}
    shown = {}
    for key, fn in rewards:
        try:
            shown[key] = round(float(fn([completion], **batch)[0]), 6)
        except ValueError as err:  # a reward reading a column this task's lines do not have
            raise UserError(f"reward {key!r} cannot score these lines: {err}") from None
    return {"rewards": shown, "total": round(sum(shown.values()), 6)}


def _parse_line(
    line: str, task: str, frame_of: Callable[[float, float], Frame] | None = None
) -> tuple[Any, dict[str, Any]]:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        raise _BadLine(f"not valid JSON ({err.msg} at column {err.colno})") from None
    except RecursionError:
        raise _BadLine("JSON nested too deeply") from None
    if not isinstance(obj, dict):
        raise _BadLine("each line must be a JSON object with 'completion' and a target")
    completion = obj.get("completion")
    if completion is None and "completion" in obj:
        completion = ""  # vrft eval's paper protocol: a pair not asked (an empty answer)
    if not isinstance(completion, (str, list)):
        raise _BadLine("missing 'completion' (a string, or a list of message dicts)")
    if "solution" in obj:
        if task in MEDIA_TASKS:
            return completion, _from_media_solution(obj, task)
        return completion, _from_solution(obj["solution"], task)
    target = obj.get("record", obj)
    if not isinstance(target, dict):
        raise _BadLine("'record' must be a JSON object")
    return completion, _from_record(target, task, frame_of)


def _from_solution(solution: Any, task: str) -> dict[str, Any]:
    if not isinstance(solution, str):
        raise _BadLine("'solution' must be a string like \"<answer>...</answer>\"")
    answer = split(solution).answer
    if answer is None:
        answer = solution.strip()
    if task == "ocr":
        return {"gt_text": _capped_text(answer)}
    if task in ("detection", "counting"):
        d = parse_detections(answer)
        if d.truncated and len(d.detections) >= MAX_GT_BOXES:
            raise _BadLine(
                f"the solution holds more than {MAX_GT_BOXES} ground-truth boxes (the cap; split it)"
            )
        if not d.ok or d.n_invalid or d.truncated:
            raise _BadLine(
                f"unusable {task} solution: expected <answer>[{{'Position': [x1, y1, x2, y2], "
                f"'Confidence': 1}}, ...]</answer> or <answer>No Objects</answer> ({d.reason}, "
                f"{d.n_invalid} invalid entries)"
            )
        return {"gt_boxes": [list(x.box) for x in d.detections]}
    if task == "classification":
        p = parse_label(answer)
        if not p.ok:
            raise _BadLine("unusable classification solution: expected <answer>label</answer> (empty label)")
        return {"gt_label": p.label, "gt_aliases": None}
    b = parse_box(answer)
    if not b.ok:
        raise _BadLine(
            f"unusable grounding solution: expected <answer> (x1,y1),(x2,y2) </answer> ({b.reason})"
        )
    return {"gt_boxes": [list(b.box)]}


def _capped_text(text: str) -> str:
    if len(text) > MAX_CHARS:
        raise _BadLine(
            f"the ground-truth text has {len(text)} characters, more than the cap of {MAX_CHARS} "
            "(the characters of an answer that are parsed, vrft.parsing.MAX_CHARS)"
        )
    return text


def _number(obj: dict, key: str) -> float:
    v = obj.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise _BadLine(f"'{key}' must be a positive number (image size in pixels), got {v!r}")
    return float(v)


def _pixel_boxes(obj: dict) -> list[list[float]]:
    boxes = obj.get("boxes", obj.get("gt_boxes"))  # a record's boxes, or vrft's outputs' gt_boxes
    if not isinstance(boxes, list):
        raise _BadLine(
            "missing target: give 'solution', a 'record', or 'boxes' (or 'gt_boxes') + 'width' + 'height' (pixels)"
        )
    if len(boxes) > MAX_GT_BOXES:
        raise _BadLine(
            f"'boxes' holds {len(boxes)} ground-truth boxes, more than the cap of {MAX_GT_BOXES} (split it)"
        )
    out = []
    for i, b in enumerate(boxes):
        if not (
            isinstance(b, list)
            and len(b) == 4
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in b)
        ):
            raise _BadLine(f"boxes[{i}] must be [x1, y1, x2, y2] (four finite numbers, pixels), got {b!r}")
        out.append([float(v) for v in b])
    return out


def _from_record(
    obj: dict, task: str, frame_of: Callable[[float, float], Frame] | None = None
) -> dict[str, Any]:
    if task == "classification":
        label = obj.get("label", obj.get("gt_label"))
        if not isinstance(label, str) or not label.strip():
            raise _BadLine("missing target: give 'solution', a 'record', or a non-empty 'label'")
        aliases = obj.get("aliases")
        if aliases is not None and not (
            isinstance(aliases, list) and all(isinstance(a, str) for a in aliases)
        ):
            raise _BadLine("'aliases' must be a list of strings")
        return {"gt_label": label, "gt_aliases": aliases}
    if task == "temporal_grounding":
        return {"gt_window": _window(obj.get("window", obj.get("gt_window")), "'window' (or 'gt_window')")}
    if task == "multi_image_grounding":
        return _multi_image_record(obj, frame_of)
    if task == "ocr":
        text = obj.get("text", obj.get("gt_label"))
        if not isinstance(text, str):
            raise _BadLine("missing target: give 'solution', a 'record', or 'text' (the text in the image)")
        return {"gt_text": _capped_text(text)}
    boxes = _pixel_boxes(obj)
    width, height = _number(obj, "width"), _number(obj, "height")
    frame = frame_of(width, height) if frame_of is not None else Frame(width, height, "norm1000")
    encoded = [frame.encode(b) for b in boxes]
    if task == "grounding" and not encoded:
        raise _BadLine("grounding needs at least one target box in 'boxes' (any of them counts)")
    return {"gt_boxes": encoded}


MEDIA_TASKS = ("temporal_grounding", "multi_image_grounding")


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _window(value: Any, what: str) -> list[float]:
    if not (isinstance(value, list) and len(value) == 2 and all(_finite(v) for v in value)):
        raise _BadLine(f"{what} must be [start, end] (two finite numbers, seconds), got {value!r}")
    if not 0 <= value[0] < value[1]:
        raise _BadLine(f"{what} {value} needs 0 <= start < end (seconds)")
    return [float(value[0]), float(value[1])]


def _image_number(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _BadLine(f"{what} must be a 1-based image number (an integer >= 1), got {value!r}")
    return value


def _num_images(obj: dict, image: int) -> int | None:
    n = obj.get("num_images")
    if n is None:
        return None
    if not isinstance(n, int) or isinstance(n, bool) or n < image:
        raise _BadLine(f"'num_images' must be an integer >= the target image {image}, got {n!r}")
    return n


def _from_media_solution(obj: dict, task: str) -> dict[str, Any]:
    """The ``solution`` of the video / many-image tasks, written like the ground truth the reward reads:
    ``[S, E]`` seconds, or ``{"image": i, "bbox_2d": [x1, y1, x2, y2]}`` in 0..1000 (as JSON, or as a
    string, optionally in answer tags); multi-image: an optional ``num_images`` beside it."""
    solution = obj["solution"]
    if isinstance(solution, str):
        answer = split(solution).answer
        text = answer if answer is not None else solution.strip()
    if task == "temporal_grounding":
        if not isinstance(solution, str):
            return {"gt_window": _window(solution, "'solution'")}
        w = parse_window(text)
        if not w.ok:
            raise _BadLine(
                f"unusable temporal_grounding solution: expected [start, end] seconds ({w.reason})"
            )
        return {"gt_window": [w.start, w.end]}
    if isinstance(solution, dict):
        image = _image_number(solution.get("image"), "solution 'image'")
        box = solution.get("bbox_2d")
        if not (isinstance(box, list) and len(box) == 4 and all(_finite(v) for v in box)):
            raise _BadLine(
                f"solution 'bbox_2d' must be [x1, y1, x2, y2] (four finite numbers, 0..1000), got {box!r}"
            )
        box = [float(v) for v in box]
    elif isinstance(solution, str):
        p = parse_image_box(text)
        if not p.ok:
            raise _BadLine(
                'unusable multi_image_grounding solution: expected {"image": i, "bbox_2d": [x1, y1, x2, y2]} '
                f"({p.reason})"
            )
        image, box = _image_number(p.image, "solution 'image'"), list(p.box)
    else:
        raise _BadLine('\'solution\' must be {"image": i, "bbox_2d": [x1, y1, x2, y2]} (0..1000)')
    return {"gt_image": image, "gt_boxes": [box], "num_images": _num_images(obj, image)}


def _multi_image_record(obj: dict, frame_of: Callable[[float, float], Frame] | None) -> dict[str, Any]:
    """A multi-image record (``target_image``, ``boxes`` in pixels of that image, ``image_sizes``) or a
    ``vrft eval`` predictions row (``gt_image``, ``gt_boxes`` in pixels, ``image_sizes``)."""
    sizes = obj.get("image_sizes")
    if not (
        isinstance(sizes, list)
        and sizes
        and all(
            isinstance(wh, list) and len(wh) == 2 and all(_finite(v) and v > 0 for v in wh) for wh in sizes
        )
    ):
        raise _BadLine(
            "missing target: give 'solution', a 'record', or 'image_sizes' ([width, height] per image) + "
            "'target_image' + 'boxes' (pixels of that image)"
        )
    image = _image_number(obj.get("target_image", obj.get("gt_image")), "'target_image' (or 'gt_image')")
    if image > len(sizes):
        raise _BadLine(f"'target_image' {image} is out of range: the line has {len(sizes)} image size(s)")
    boxes = _pixel_boxes(obj)
    if len(boxes) != 1:
        raise _BadLine(f"multi_image_grounding needs exactly one target box in 'boxes', got {len(boxes)}")
    w, h = (float(v) for v in sizes[image - 1])
    frame = frame_of(w, h) if frame_of is not None else Frame(w, h, "norm1000")
    return {"gt_image": image, "gt_boxes": [frame.encode(boxes[0])], "num_images": len(sizes)}
