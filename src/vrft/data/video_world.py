"""The shapes world in time and across images: videos for `temporal_grounding`, image sets for
`multi_image_grounding` (`vrft data synth --video N` / `--multi-image N`).

Drawing reuses `vrft.data.shapes` (outlines, colours, backgrounds, placement).

**Videos** (`draw_video`): a static background (textured, or plain white) with 0..1 static
distractor shape of another class; one moving shape enters the frame, crosses it in a straight
line (left to right, right to left, top to bottom or bottom to top) and leaves. It is drawn in
frames ``first..last`` only (inclusive; its centre runs from one edge to the opposite one, so at
least about half of it shows in each of them) and in no other frame; ``first >= 1`` and ``last <=
n - 2``, so it is absent at the start and at the end. The record's ``event`` names it (``"the red
star crosses the frame"``: the distractor is another class, so the name is unambiguous) and its
``window`` is ``[first / fps, (last + 1) / fps]`` seconds (rounded to the millisecond): frame ``i``
is shown during ``[i / fps, (i + 1) / fps)``, the convention `vrft.media.sample_frames` decodes
by, so a sampled frame at time ``t`` shows the shape exactly when ``start <= t < end``.

Videos are written as MPEG-4 Part 2 (``mpeg4``, FFmpeg's native encoder, always in the PyAV
wheels; ``libx264`` is there too but GPL, ``libvpx`` cannot go in .mp4) in an .mp4 container, one
thread, FFmpeg's ``bitexact`` flags: the same seed gives the same bytes with the same PyAV/FFmpeg
build (the frames themselves are deterministic on any build; a different FFmpeg version may encode
them to other bytes). `video_format="frames"` writes a folder of PNG frames instead (the record then
carries ``fps``): byte-identical everywhere.

**Image sets** (`draw_multi_image`): 2..4 square images (each its own background); the asked
shape (class and colour) is in exactly one of them (0..1 distractor of another class beside it),
every other image holds 1..2 shapes of other classes only. ``expression`` is ``"the {colour}
{shape}"``, ``target_image`` the 1-based index of its image and ``boxes`` its box in that image's
pixels.

Determinism: video / image set ``i`` is drawn from ``numpy.random.default_rng([seed, i, stream])``
(streams 5 and 6, after those of `vrft.data.shapes`), so item ``i`` is the same whatever the
number of items.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from vrft.data.records import Record, save_records
from vrft.data.shapes import (
    _SHAPE_PARAMS,
    ALL_CLASSES,
    BACKGROUNDS,
    COLOURS,
    _background,
    _draw,
    _jitter,
    _place,
    _shape_polygon,
)
from vrft.errors import UserError

_STREAM_VIDEO, _STREAM_MULTI_IMAGE = 5, 6

VIDEO_FORMATS: tuple[str, ...] = ("mp4", "frames")
"""How `synthesize_video` writes a video: an .mp4 file, or a folder of PNG frames."""
VIDEO_CODEC = "mpeg4"
"""The encoder of the .mp4 files (MPEG-4 Part 2: FFmpeg's own, LGPL, in every PyAV wheel)."""
MAX_VIDEO_SIDE = 1024
"""Largest frame side of a synthetic video, in pixels."""
MIN_VIDEO_FRAMES = 4
"""Fewest frames of a synthetic video (the shape must be absent at the start and at the end)."""
MAX_VIDEO_FRAMES = 600
"""Most frames of a synthetic video (``max_seconds * fps``)."""
_DIRECTIONS = ("left to right", "right to left", "top to bottom", "bottom to top")


# --------------------------------------------------------------------------------------- videos
@dataclass
class VideoScene:
    """A drawn video: its frames (RGB, all one size), frame rate, and the moving shape's frames."""

    frames: list[Image.Image]
    fps: float
    shape: str
    colour: str
    direction: str
    first: int
    """Index of the first frame that shows the moving shape."""
    last: int
    """Index of the last frame that shows it (inclusive)."""
    distractors: list[str] = field(default_factory=list)

    @property
    def event(self) -> str:
        return f"the {self.colour} {self.shape} crosses the frame"

    @property
    def duration(self) -> float:
        return round(len(self.frames) / self.fps, 3)

    @property
    def window(self) -> list[float]:
        """``[first / fps, (last + 1) / fps]`` seconds: when the shape is on screen."""
        return [round(self.first / self.fps, 3), round((self.last + 1) / self.fps, 3)]


def _canvas(rng: np.random.Generator, size: int, background: str) -> Image.Image:
    if background == "textured":
        return _background(rng, size)
    return Image.new("RGB", (size, size), (255, 255, 255))


def video_frame_count(index: int, seed: int, fps: float, min_seconds: float, max_seconds: float) -> int:
    """The number of frames of video `index` (the first draw of its generator)."""
    rng = np.random.default_rng([seed, index, _STREAM_VIDEO])
    return _frame_count(rng, fps, min_seconds, max_seconds)


def _frame_count(rng: np.random.Generator, fps: float, min_seconds: float, max_seconds: float) -> int:
    lo = max(MIN_VIDEO_FRAMES, int(math.ceil(min_seconds * fps - 1e-9)))
    hi = max(lo, int(math.floor(max_seconds * fps + 1e-9)))
    return int(rng.integers(lo, hi + 1))


def draw_video(
    index: int,
    seed: int,
    size: int = 112,
    fps: float = 4.0,
    min_seconds: float = 4.0,
    max_seconds: float = 10.0,
    classes: Sequence[str] = ALL_CLASSES,
    background: str = "textured",
) -> VideoScene:
    """Draw video `index` of the world `seed` (see the module): ``size`` x ``size`` frames at `fps`,
    ``min_seconds``..``max_seconds`` long (at least `MIN_VIDEO_FRAMES` frames)."""
    rng = np.random.default_rng([seed, index, _STREAM_VIDEO])
    n = _frame_count(rng, fps, min_seconds, max_seconds)
    # the window: 2 .. 60 % of the frames, never the first nor the last frame
    length = int(rng.integers(max(2, int(math.ceil(0.2 * n))), max(2, min(n - 2, int(0.6 * n))) + 1))
    first = int(rng.integers(1, n - length))  # 1 .. n - length - 1
    last = first + length - 1
    base = _canvas(rng, size, background)
    shape = classes[int(rng.integers(len(classes)))]
    colour_names = list(COLOURS)
    colour = colour_names[int(rng.integers(len(colour_names)))]
    rgb = _jitter(rng, COLOURS[colour])
    others = [c for c in classes if c != shape]
    distractors: list[str] = []
    if others and rng.random() < 0.5:
        other = others[int(rng.integers(len(others)))]
        d_size = float(rng.uniform(0.2, 0.32)) * size
        placed = _place(rng, other, size, d_size, [], 0.0)
        d_colour = colour_names[int(rng.integers(len(colour_names)))]
        if placed is not None:
            _draw(ImageDraw.Draw(base), placed[0], _jitter(rng, COLOURS[d_colour]), "filled", d_size)
            distractors.append(other)
    obj_size = float(rng.uniform(0.25, 0.4)) * size
    direction = _DIRECTIONS[int(rng.integers(len(_DIRECTIONS)))]
    (a_lo, a_hi), max_rot = _SHAPE_PARAMS[shape]  # the class's outline: a diamond stays a tall rhombus
    aspect = float(rng.uniform(a_lo, a_hi))
    angle = float(rng.uniform(-max_rot, max_rot))
    # the other coordinate keeps the whole outline inside the frame
    axis = 1 if direction in ("left to right", "right to left") else 0
    unit = _shape_polygon(shape, obj_size, 0.0, 0.0, aspect, angle)
    lo, hi = float(unit[:, axis].min()), float(unit[:, axis].max())
    across = float(rng.uniform(1 - lo, size - 1 - hi))
    frames: list[Image.Image] = []
    for i in range(n):
        img = base.copy()
        if first <= i <= last:
            u = (i - first) / (last - first)  # 0 .. 1 along the path, centre from edge to edge
            along = u * size if direction in ("left to right", "top to bottom") else (1 - u) * size
            cx, cy = (along, across) if direction in ("left to right", "right to left") else (across, along)
            poly = _shape_polygon(shape, obj_size, cx, cy, aspect, angle)
            _draw(ImageDraw.Draw(img), poly, rgb, "filled", obj_size)
        frames.append(img)
    return VideoScene(frames, float(fps), shape, colour, direction, first, last, distractors)


def write_mp4(frames: Sequence[Image.Image], fps: float, path: str | os.PathLike) -> Path:
    """Encode `frames` (RGB, even sides) as an .mp4 (`VIDEO_CODEC`, yuv420p, one thread, bitexact),
    atomically. Frame ``i`` has the timestamp ``i / fps``."""
    import av

    from vrft.outputs import atomic_open

    path = Path(path)
    w, h = frames[0].size
    with atomic_open(path, "wb", encoding=None) as fh:
        with av.open(fh, "w", format="mp4", container_options={"fflags": "+bitexact"}) as out:
            stream = out.add_stream(VIDEO_CODEC, rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.thread_count = 1
            stream.options = {"flags": "+bitexact", "qmax": "3", "g": "12"}  # qmax: sharp shapes
            for img in frames:
                for packet in stream.encode(av.VideoFrame.from_image(img)):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
    return path


# ---------------------------------------------------------------------------------- image sets
@dataclass
class MultiImageScene:
    """A drawn image set: the images, the asked shape, its image (1-based) and box (pixels)."""

    images: list[Image.Image]
    shape: str
    colour: str
    target_image: int
    box: list[float]

    @property
    def expression(self) -> str:
        return f"the {self.colour} {self.shape}"


def draw_multi_image(
    index: int,
    seed: int,
    size: int = 112,
    classes: Sequence[str] = ALL_CLASSES,
    min_images: int = 2,
    max_images: int = 4,
    background: str = "textured",
) -> MultiImageScene:
    """Draw image set `index` of the world `seed` (see the module). `classes` needs two or more."""
    if len(classes) < 2:
        raise UserError(
            "a multi-image set needs at least two shape classes (the other images hold other shapes)"
        )
    rng = np.random.default_rng([seed, index, _STREAM_MULTI_IMAGE])
    n = int(rng.integers(min_images, max_images + 1))
    target = int(rng.integers(n))
    shape = classes[int(rng.integers(len(classes)))]
    others = [c for c in classes if c != shape]
    colour_names = list(COLOURS)
    colour = colour_names[int(rng.integers(len(colour_names)))]
    images: list[Image.Image] = []
    box: list[float] = []
    for k in range(n):
        img = _canvas(rng, size, background)
        draw = ImageDraw.Draw(img)
        boxes: list[list[float]] = []
        if k == target:
            wanted = [shape] + [
                others[int(rng.integers(len(others)))] for _ in range(int(rng.integers(0, 2)))
            ]
        else:
            wanted = [others[int(rng.integers(len(others)))] for _ in range(int(rng.integers(1, 3)))]
        for j, s in enumerate(wanted):
            obj_size = float(rng.uniform(0.22, 0.42)) * size
            placed = _place(rng, s, size, obj_size, boxes, 0.0)
            c = colour if (k == target and j == 0) else colour_names[int(rng.integers(len(colour_names)))]
            if placed is None:  # only a distractor can fail: the first shape goes on an empty image
                continue
            poly, b = placed
            _draw(draw, poly, _jitter(rng, COLOURS[c]), "filled", obj_size)
            boxes.append(b)
            if k == target and j == 0:
                box = [round(v, 2) for v in b]
        images.append(img)
    return MultiImageScene(images, shape, colour, target + 1, box)


# ------------------------------------------------------------------------------------- writing
def check_video_bounds(
    n_videos: int, size: int, fps: float, min_seconds: float, max_seconds: float, video_format: str
) -> None:
    """UserError naming the option for any `synthesize_video` setting out of its bound."""
    from vrft.data.synthetic import MAX_IMAGES

    rules = [
        (0 <= n_videos <= MAX_IMAGES, f"--video {n_videos}: must be 0..{MAX_IMAGES}"),
        (
            32 <= size <= MAX_VIDEO_SIDE and size % 2 == 0,
            f"--size {size}: a video's frame side must be even and 32..{MAX_VIDEO_SIDE} pixels (e.g. 112)",
        ),
        (math.isfinite(fps) and 1 <= fps <= 30, f"--video-fps {fps}: must be 1..30 frames per second"),
        (
            math.isfinite(min_seconds) and math.isfinite(max_seconds) and 0 < min_seconds <= max_seconds
            and max_seconds * fps <= MAX_VIDEO_FRAMES,
            f"video length {min_seconds}..{max_seconds} s at {fps} fps: need 0 < min <= max and at most "
            f"{MAX_VIDEO_FRAMES} frames",
        ),
        (video_format in VIDEO_FORMATS, f"--video-format {video_format}: use one of {', '.join(VIDEO_FORMATS)}"),
    ]  # fmt: skip
    problems = [msg for ok, msg in rules if not ok]
    if problems:
        raise UserError("; ".join(problems))


def video_names(n_videos: int, start_index: int = 0, video_format: str = "mp4") -> list[str]:
    """What `synthesize_video` writes (manifest entries: the records, each .mp4 or frame folder)."""
    ext = ".mp4" if video_format == "mp4" else ""
    return ["temporal_grounding.jsonl"] + [f"video/{start_index + i:06d}{ext}" for i in range(n_videos)]


def multi_image_names(n_sets: int, start_index: int = 0) -> list[str]:
    """What `synthesize_multi_image` writes (manifest entries): the records and each set's folder."""
    return ["multi_image_grounding.jsonl"] + [f"multi_image/{start_index + i:06d}" for i in range(n_sets)]


def synthesize_video(
    out_dir: str | os.PathLike,
    n_videos: int,
    seed: int = 0,
    *,
    size: int = 112,
    fps: float = 4.0,
    min_seconds: float = 4.0,
    max_seconds: float = 10.0,
    classes: Sequence[str] = ALL_CLASSES,
    background: str = "textured",
    video_format: str = "mp4",
    start_index: int = 0,
) -> Path:
    """Write `n_videos` videos under ``out_dir/video/`` (``NNNNNN.mp4``, or with ``video_format=
    "frames"`` the folders ``NNNNNN/frame_NNNN.png``) and their `temporal_grounding` records
    ``out_dir/temporal_grounding.jsonl``. Returns the records path."""
    check_video_bounds(n_videos, size, fps, min_seconds, max_seconds, video_format)
    if background not in BACKGROUNDS:
        raise UserError(f"unknown background {background!r} (use one of: {', '.join(BACKGROUNDS)})")
    from vrft.data.synthetic import _resolve_classes, claim_parts
    from vrft.inputs import normalize_seed
    from vrft.outputs import OutputDir

    seed = normalize_seed(seed)
    drawn = _resolve_classes(classes, "all")
    out = Path(out_dir)
    with OutputDir(out, "data synth") as d:  # re-entrant inside `vrft data synth`
        claim_parts(d, video_names(n_videos, start_index, video_format), ["video"])
        (out / "video").mkdir(parents=True, exist_ok=True)
        records = []
        for i in range(n_videos):
            index = start_index + i
            scene = draw_video(index, seed, size, fps, min_seconds, max_seconds, drawn, background)
            if video_format == "mp4":
                rel = f"video/{index:06d}.mp4"
                write_mp4(scene.frames, fps, out / rel)
            else:
                from vrft.data.synthetic import _save_png

                rel = f"video/{index:06d}/"
                for k, img in enumerate(scene.frames):
                    _save_png(img, out / rel / f"frame_{k:04d}.png")
            records.append(
                Record(
                    id=f"shapes-video-{index}",
                    task="temporal_grounding",
                    video=rel,
                    video_path=(out / rel).resolve(),
                    width=size,
                    height=size,
                    duration=scene.duration,
                    fps=None if video_format == "mp4" else float(fps),
                    event=scene.event,
                    window=scene.window,
                    meta={
                        "shape": scene.shape,
                        "colour": scene.colour,
                        "direction": scene.direction,
                        "frames": [scene.first, scene.last],
                        "num_frames": len(scene.frames),
                    },
                )  # fmt: skip
            )
        return save_records(records, out / "temporal_grounding.jsonl")


def synthesize_multi_image(
    out_dir: str | os.PathLike,
    n_sets: int,
    seed: int = 0,
    *,
    size: int = 112,
    classes: Sequence[str] = ALL_CLASSES,
    background: str = "textured",
    start_index: int = 0,
) -> Path:
    """Write `n_sets` image sets under ``out_dir/multi_image/NNNNNN/{1..N}.png`` and their
    `multi_image_grounding` records ``out_dir/multi_image_grounding.jsonl``. Returns the records path."""
    from vrft.data.synthetic import _resolve_classes, _save_png, check_bounds, claim_parts
    from vrft.inputs import normalize_seed
    from vrft.outputs import OutputDir

    check_bounds(n_images=n_sets, size=size, start_index=start_index, images_flag="--multi-image")
    if background not in BACKGROUNDS:
        raise UserError(f"unknown background {background!r} (use one of: {', '.join(BACKGROUNDS)})")
    seed = normalize_seed(seed)
    drawn = _resolve_classes(classes, "all")
    if len(drawn) < 2:
        raise UserError(
            f"--multi-image needs at least two shape classes (got {', '.join(drawn)}): the other images hold other shapes"
        )
    out = Path(out_dir)
    with OutputDir(out, "data synth") as d:  # re-entrant inside `vrft data synth`
        claim_parts(d, multi_image_names(n_sets, start_index), ["multi_image"])
        records = []
        for i in range(n_sets):
            index = start_index + i
            scene = draw_multi_image(index, seed, size, drawn, background=background)
            rels = [f"multi_image/{index:06d}/{k + 1}.png" for k in range(len(scene.images))]
            for rel, img in zip(rels, scene.images):
                _save_png(img, out / rel)
            records.append(
                Record(
                    id=f"shapes-mi-{index}",
                    task="multi_image_grounding",
                    images=rels,
                    image_paths=[(out / r).resolve() for r in rels],
                    image_sizes=[[size, size] for _ in rels],
                    expression=scene.expression,
                    target_image=scene.target_image,
                    boxes=[scene.box],
                    meta={"target_class": scene.shape, "colour": scene.colour},
                )
            )
        return save_records(records, out / "multi_image_grounding.jsonl")
