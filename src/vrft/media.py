"""What a record shows the model: its images and videos, and how a video becomes frames.

`vrft.data.records.Record.visual_parts()` is THE way downstream code asks what a record shows: a
list of `ImagePart` (one-image and many-image records) or one `VideoPart` (video records).

Videos are decoded with PyAV (the ``av`` package: its wheels bundle FFmpeg, so nothing is
downloaded at run time). A video is either a video file or a FOLDER of frames (image files, in
name order) with their frame rate (`VideoPart.fps`).

- `probe_video` reads the container header only (size, duration, frame count, frame rate); for a
  frame folder it lists the folder and reads the first frame's header.
- `video_timestamps` chooses the sampled timestamps first (uniform at `fps`, at most `max_frames`,
  evenly spread over the duration, each at the centre of its slot); `sample_frames` then decodes
  only around those frames: it seeks to each timestamp (a jump to the key frame before it; when
  the next timestamp is less than 2 s ahead it decodes on instead) and decodes forward to the frame
  shown at that time, so memory stays bounded on a long video (at most two decoded frames are held
  besides the returned ones; a stream that cannot seek is decoded forward once). Frames larger
  than `vrft.inputs.MAX_IMAGE_PIXELS` are refused from the header. The timestamps depend only on
  the duration and the budgets, so they are deterministic.
- `video_problem` is what `vrft data validate` and the training preflight check per video: it
  exists, the header decodes, it has >= 1 frame (the first frame is decoded, and the last one a
  sampling can ask for, so a file cut short is found here), its duration is > 0
  and <= `MAX_VIDEO_SECONDS`, its frame size is within `vrft.inputs.MAX_IMAGE_PIXELS` and matches
  the record's, the record's ``duration`` is not longer than the video (`DURATION_TOLERANCE_S`); a frame
  folder has >= 1 frame, no gap or repeat in its frame numbers, and every frame's header is readable.

Every failure on a bad file is a `vrft.errors.DataError` naming the file (never a traceback).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vrft.errors import DataError

MAX_IMAGES_PER_RECORD: int = 16
"""Most images one record may hold (``images`` of 1..16 paths)."""

MAX_VIDEO_SECONDS: float = 3600.0
"""Longest video a record may hold (``duration`` and the decoded length), in seconds: one hour."""

WINDOW_TOLERANCE_S: float = 0.5
"""A ground-truth ``window`` may end at most this many seconds after ``duration`` (rounding in the
source annotations); later is an error."""

FRAME_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
"""Files of a frame folder that are frames (case-insensitive); other files are ignored."""

MAX_VIDEO_FRAMES: int = 256
"""Most frames sampled from one video (``model.video_max_frames``, ``--video-max-frames``)."""

MAX_VIDEO_FPS: float = 60.0
"""Most frames sampled per second of video (``model.video_fps``, ``--video-fps``)."""


BUDGET_NAMES: tuple[str, ...] = ("max_images", "video_fps", "video_max_frames", "video_max_pixels", "video_min_pixels")
"""The many-image / video budgets: `model.*` config keys, eval / predict options (``--max-images``, ...),
fields of a model's ``vrft.json`` and of `vrft.data.visual_inputs.MediaBudget`, all of one name."""


def budget_problem(name: str, value: Any) -> str | None:
    """Why `value` is not a valid media budget `name` (``max_images``, ``video_fps``,
    ``video_max_frames``, ``video_max_pixels``, ``video_min_pixels``), or None. The one set of bounds
    the config (`vrft.config.ModelSection`), the command-line options of eval / predict and a model's
    ``vrft.json`` all apply (a frame is never scaled past `vrft.inputs.MAX_IMAGE_PIXELS`)."""
    from vrft.inputs import MAX_IMAGE_PIXELS

    if name == "video_fps":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return None if ok and 0 < value <= MAX_VIDEO_FPS else f"a number of frames per second in (0, {MAX_VIDEO_FPS:g}]"
    top = {"max_images": MAX_IMAGES_PER_RECORD, "video_max_frames": MAX_VIDEO_FRAMES,
           "video_max_pixels": MAX_IMAGE_PIXELS, "video_min_pixels": MAX_IMAGE_PIXELS}[name]  # fmt: skip
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= top:
        return None
    return f"an integer in 1..{top}"


DURATION_TOLERANCE_S: float = 1.0
DURATION_TOLERANCE_SHARE: float = 0.1
"""A record's ``duration`` may exceed its video's length (header; frame count / fps for a folder) by at
most max(1 s, 10% of the video): annotation timelines round; a longer one is refused."""

_SEEK_GAP_S = 2.0  # decode forward instead of seeking when the next timestamp is this close


@dataclass(frozen=True)
class ImagePart:
    """One image of a record: its absolute path and original size in pixels."""

    path: Path
    width: int
    height: int


@dataclass(frozen=True)
class VideoPart:
    """The video of a record: a video file or a frame folder (then `fps` is its frame rate).

    `width` / `height` are the frame size in pixels, `duration` the length in seconds (the
    record's; the timeline ground-truth windows refer to)."""

    path: Path
    width: int
    height: int
    duration: float
    fps: float | None = None

    @property
    def is_folder(self) -> bool:
        return self.path.is_dir()


VisualPart = ImagePart | VideoPart


@dataclass(frozen=True)
class VideoInfo:
    """What a video's header says: frame size, duration (s), frame count and frame rate."""

    width: int
    height: int
    duration: float
    num_frames: int
    fps: float


# ---------------------------------------------------------------------------------- frame folders
def _natural_key(name: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def list_frames(folder: str | os.PathLike) -> list[Path]:
    """The frames of a frame folder: files with a `FRAME_EXTENSIONS` suffix, sorted by name (numbers
    in names compare as numbers: ``f2.png`` before ``f10.png``)."""
    folder = Path(folder)
    try:
        names = [e.name for e in os.scandir(folder) if e.name.lower().endswith(FRAME_EXTENSIONS)]
    except OSError as err:
        raise DataError(f"{folder}: cannot list the frame folder ({err.strerror or err})") from None
    return [folder / n for n in sorted(names, key=_natural_key)]


def _frame_gap(frames: list[Path]) -> str | None:
    """A description of the first missing (or repeated) frame number when every frame name is one prefix
    and a number (``frame_0001.png``, ``frame_0002.png``, ...); None otherwise (nothing to compare)."""
    numbers, prefixes = [], set()
    for f in frames:
        m = re.search(r"(\d+)$", f.stem)
        if m is None:
            return None
        numbers.append(int(m.group(1)))
        prefixes.add(f.stem[: m.start()])
    if len(prefixes) > 1:
        return None
    for prev, cur, before, name in zip(numbers, numbers[1:], frames, frames[1:]):
        if cur == prev:  # frame_3.png beside frame_0003.png (or .png and .jpg): every later frame's time shifts
            return (
                f"frame number {cur} appears twice ({before.name} and {name.name}; keep one: each frame is "
                "1/fps seconds after the one before it)"
            )
        if cur > prev + 1:
            return (
                f"frame number {prev + 1} is missing (the frames jump from {prev} to {cur} at {name.name}; "
                "add the missing frame or renumber the frames without gaps)"
            )
    return None


# -------------------------------------------------------------------------------------------- probe
def _open(path: Path):
    import av

    try:
        return av.open(str(path), "r")
    except Exception as err:  # noqa: BLE001 (any failure to read untrusted bytes is a data problem)
        if isinstance(err, FileNotFoundError) or not path.exists():
            raise DataError(f"{path}: video file not found (check the path)") from None
        raise DataError(
            f"{path}: not a readable video (truncated or not a video file: {err.__class__.__name__}); "
            "re-encode it (e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`) or drop the record"
        ) from None


def _video_stream(container, path: Path):
    if not container.streams.video:
        raise DataError(
            f"{path}: no video stream in the file (truncated, or audio only); re-encode it or drop the record"
        )
    return container.streams.video[0]


def _frame_size(stream) -> tuple[int, int]:
    """(width, height) of a video stream from its header; (0, 0) when the header has none (a
    corrupt file can leave the stream without a codec context)."""
    ctx = getattr(stream, "codec_context", None)
    try:
        return int(getattr(ctx, "width", 0) or 0), int(getattr(ctx, "height", 0) or 0)
    except (TypeError, ValueError):
        return 0, 0


def probe_video(path: str | os.PathLike, fps: float | None = None) -> VideoInfo:
    """Read a video's header (no frame decoded) into a `VideoInfo`.

    For a frame folder, `fps` (> 0) is required: ``num_frames`` is the frame count, ``duration``
    ``num_frames / fps`` and the size the first frame's. DataError naming the file when it is
    missing or not a video."""
    path = Path(path)
    if path.is_dir():
        return _probe_folder(path, fps)
    if not path.exists():
        raise DataError(f"{path}: video file not found (check the path)")
    with _open(path) as container:
        try:
            return _probe_stream(container, path)
        except DataError:
            raise
        except Exception as err:  # noqa: BLE001 (a corrupt header is a data problem)
            raise DataError(
                f"{path}: not a readable video (corrupt header: {err.__class__.__name__}); re-encode it or drop the record"
            ) from None


def _probe_stream(container, path: Path) -> VideoInfo:
    """`probe_video` of an opened container."""
    stream = _video_stream(container, path)
    width, height = _frame_size(stream)
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    rate_f = float(rate) if rate else 0.0
    duration = 0.0
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    if duration <= 0 and container.duration is not None:
        duration = container.duration / 1_000_000  # AV_TIME_BASE
    frames = int(stream.frames or 0)
    if frames <= 0 and duration > 0 and rate_f > 0:
        frames = max(1, round(duration * rate_f))  # the header has no count: estimate it
    if rate_f <= 0 and duration > 0 and frames > 0:
        rate_f = frames / duration
    return VideoInfo(width, height, duration, frames, rate_f)


def _probe_folder(path: Path, fps: float | None) -> VideoInfo:
    from vrft.inputs import image_size

    if fps is None or not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise DataError(f"{path}: a frame folder needs its frame rate: set 'fps' (> 0) in the record")
    frames = list_frames(path)
    if not frames:
        raise DataError(
            f"{path}: the frame folder holds no frames ({', '.join(FRAME_EXTENSIONS)} files); add them or drop the record"
        )
    size = image_size(frames[0])
    if isinstance(size, str):
        raise DataError(f"{frames[0]}: {size}")
    return VideoInfo(size[0], size[1], len(frames) / float(fps), len(frames), float(fps))


def video_problem(part: VideoPart) -> str | None:
    """What is wrong with a record's video (see the module docstring), or None when it is usable.

    Reads headers; decodes the first frame of a video file only (a file whose header opens but holds
    no decodable frame is "zero frames"). The problem names the file and says how to fix it."""
    from vrft.inputs import MAX_IMAGE_PIXELS, image_size

    path = part.path
    try:
        info = probe_video(path, part.fps)
    except DataError as err:
        return str(err)
    if path.is_dir():
        frames = list_frames(path)
        gap = _frame_gap(frames)
        if gap:
            return f"{path}: {gap}"
        for f in frames:
            size = image_size(f)
            if isinstance(size, str):
                return f"{f}: frame unreadable: {size}"
            if size != (info.width, info.height):
                return (
                    f"{f}: frame is {size[0]}x{size[1]} but the first frame is {info.width}x{info.height} "
                    "(every frame of a folder must have one size)"
                )
    if info.duration > MAX_VIDEO_SECONDS:
        return (
            f"{path}: the video lasts {info.duration:g} s, more than the limit of {MAX_VIDEO_SECONDS:g} s "
            "(vrft.media.MAX_VIDEO_SECONDS): cut it into shorter clips"
        )
    if info.width * info.height > MAX_IMAGE_PIXELS:
        return (
            f"{path}: frames of {info.width}x{info.height} exceed the limit of {MAX_IMAGE_PIXELS} pixels "
            "(vrft.inputs.MAX_IMAGE_PIXELS): downscale the video"
        )
    if not path.is_dir():  # the header is sane: decode the first frame (nothing larger is decoded)
        if info.width <= 0 or info.height <= 0:
            return f"{path}: the video header has no frame size (a corrupt file? re-encode it)"
        try:
            first = _first_frame_time(path)
        except DataError as err:
            return str(err)
        if first is None:
            return f"{path}: the video holds zero frames (an empty or truncated file); re-encode it or drop the record"
        if not (math.isfinite(info.duration) and info.duration > 0):
            return f"{path}: the video header gives no positive duration (re-encode it, e.g. with ffmpeg)"
        end = min(info.duration, part.duration) if math.isfinite(part.duration) else info.duration
        try:  # the last frame a sampling can ask for: a file cut short fails here, not mid-training
            _file_frames(path, [max(0.0, end - 1.0 / (info.fps if info.fps > 0 else 1.0))])
        except DataError as err:
            return f"{err}: the video does not decode to its end; re-encode it or drop the record"
    if (part.width, part.height) != (info.width, info.height):
        return (
            f"{path}: frame size {part.width}x{part.height} recorded but the video is "
            f"{info.width}x{info.height} (fix width/height)"
        )
    problem = duration_problem(part.duration, info.duration)
    return f"{path}: {problem}" if problem else None


def duration_problem(recorded: float, video_seconds: float) -> str | None:
    """Why a record's `recorded` duration does not fit a video of `video_seconds` (its header; frame
    count / fps for a folder), or None: longer by more than max(`DURATION_TOLERANCE_S`,
    `DURATION_TOLERANCE_SHARE`) is refused (every frame sampled past the end would be its last one)."""
    slack = max(DURATION_TOLERANCE_S, DURATION_TOLERANCE_SHARE * video_seconds)
    if video_seconds > 0 and math.isfinite(recorded) and recorded > video_seconds + slack:
        return (
            f"duration {recorded:g} s recorded but the video lasts {video_seconds:g} s: every frame "
            "sampled after its end would show its last frame (fix duration, or give the whole video)"
        )
    return None


def _first_frame_time(path: Path) -> float | None:
    with _open(path) as container:
        stream = _video_stream(container, path)
        try:
            for frame in container.decode(stream):
                return float(frame.time or 0.0)
        except Exception as err:  # noqa: BLE001 (corrupt bytes are a data problem)
            raise DataError(
                f"{path}: the video does not decode ({err.__class__.__name__}: {err}); re-encode it or drop the record"
            ) from None
    return None


# ------------------------------------------------------------------------------------------ sampling
def video_timestamps(duration: float, fps: float, max_frames: int) -> list[float]:
    """The timestamps (seconds) sampled from a video of `duration` seconds.

    ``n = clamp(floor(duration * fps), 1, max_frames)`` frames, the i-th at the centre of the i-th
    of n equal slots: ``(i + 0.5) * duration / n`` (rounded to the millisecond). Deterministic."""
    if not (math.isfinite(duration) and duration > 0):
        raise DataError(f"video duration {duration!r} must be a positive number of seconds")
    if not (math.isfinite(fps) and fps > 0) or max_frames < 1:
        raise DataError(
            f"video budget fps={fps!r}, max_frames={max_frames!r}: need fps > 0 and max_frames >= 1"
        )
    n = max(1, min(int(max_frames), int(math.floor(duration * fps + 1e-9))))
    return [round((i + 0.5) * duration / n, 3) for i in range(n)]


def fit_pixels(
    width: int, height: int, max_pixels: int | None, min_pixels: int | None = None
) -> tuple[int, int]:
    """The size (keeping the aspect ratio) of a `width` x `height` frame scaled to have at most
    `max_pixels` (and at least `min_pixels`) pixels; unchanged when already within both."""
    area = width * height
    scale = 1.0
    if max_pixels is not None and area > max_pixels:
        scale = math.sqrt(max_pixels / area)
    elif min_pixels is not None and area < min_pixels:
        scale = math.sqrt(min_pixels / area)
    if scale == 1.0:
        return width, height
    w, h = max(1, int(width * scale)), max(1, int(height * scale))
    if max_pixels is not None:
        while w * h > max_pixels and (w > 1 or h > 1):  # float rounding
            w, h = (w - 1, h) if w >= h and w > 1 else (w, max(1, h - 1))
    return w, h


def _resize(img: Any, max_pixels: int | None, min_pixels: int | None):
    from PIL import Image

    img = img.convert("RGB") if img.mode != "RGB" else img
    size = fit_pixels(img.width, img.height, max_pixels, min_pixels)
    return img if size == img.size else img.resize(size, Image.BICUBIC)


def sample_frames(
    part: VideoPart,
    fps: float,
    max_frames: int,
    max_pixels: int | None,
    min_pixels: int | None = None,
) -> list[tuple[float, Any]]:
    """``[(timestamp_seconds, PIL.Image RGB), ...]`` of the frames of `part` at `video_timestamps`
    (over `part.duration`), each resized (aspect kept) to at most `max_pixels` pixels (at least
    `min_pixels` when given).

    Only the sampled frames are decoded (seek, then decode forward to the frame shown at each
    timestamp: the last frame starting at or before it); a frame folder opens only the sampled
    files (frame ``floor(t * fps)``). DataError naming the file when it cannot be decoded."""
    try:
        times = video_timestamps(part.duration, fps, max_frames)
    except DataError as err:
        raise DataError(f"{part.path}: {err}") from None
    if part.path.is_dir():
        raw = _folder_frames(part, times)
    else:
        raw = _file_frames(part.path, times)
    return [(t, _resize(img, max_pixels, min_pixels)) for t, img in zip(times, raw)]


def _folder_frames(part: VideoPart, times: list[float]) -> list[Any]:
    from vrft.inputs import open_image

    if part.fps is None or not part.fps > 0:
        raise DataError(f"{part.path}: a frame folder needs its frame rate: set 'fps' (> 0) in the record")
    frames = list_frames(part.path)
    if not frames:
        raise DataError(f"{part.path}: the frame folder holds no frames")
    out, cache = [], {}
    for t in times:
        i = min(len(frames) - 1, max(0, int(math.floor(t * part.fps + 1e-9))))
        if i not in cache:
            cache[i] = open_image(frames[i])
        out.append(cache[i])
    return out


def _file_frames(path: Path, times: list[float]) -> list[Any]:
    from vrft.inputs import MAX_IMAGE_PIXELS

    out: list[Any] = []
    with _open(path) as container:
        stream = _video_stream(container, path)
        w, h = _frame_size(stream)
        if w * h > MAX_IMAGE_PIXELS:
            raise DataError(
                f"{path}: frames of {w}x{h} exceed the limit of {MAX_IMAGE_PIXELS} pixels "
                "(vrft.inputs.MAX_IMAGE_PIXELS): downscale the video"
            )
        stream.thread_type = "AUTO"
        can_seek = True
        tb = float(stream.time_base) if stream.time_base is not None else None
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None and tb else 0.0
        decoder = None
        last = None  # (time, frame) of the last decoded frame
        pending = None  # a decoded frame that lies after the previous timestamp
        try:
            for t in times:
                target = start + t
                lost = last is None and pending is None
                behind = last is not None and (last[0] > target + 1e-6 or target - last[0] > _SEEK_GAP_S)
                if decoder is None or (can_seek and (lost or behind)):
                    if can_seek and tb:
                        try:
                            container.seek(
                                int(max(0.0, target) / tb), stream=stream, backward=True, any_frame=False
                            )
                        except Exception:  # noqa: BLE001 (a stream that cannot seek: decode forward)
                            can_seek = False
                    if decoder is None or can_seek:
                        decoder = container.decode(stream)
                        last, pending = None, None
                if pending is not None and pending[0] <= target + 1e-6:
                    last, pending = pending, None
                if pending is None:
                    for frame in decoder:
                        ft = float(frame.time) if frame.time is not None else (last[0] if last else 0.0)
                        if ft <= target + 1e-6:
                            last = (ft, frame)
                        else:
                            pending = (ft, frame)
                            break
                chosen = last if last is not None else pending
                if chosen is None:
                    raise DataError(f"{path}: no frame could be decoded at t={t:g} s (a truncated file?)")
                out.append(chosen[1].to_image())
        except DataError:
            raise
        except Exception as err:  # noqa: BLE001 (corrupt bytes are a data problem)
            raise DataError(
                f"{path}: the video does not decode ({err.__class__.__name__}: {err}); re-encode it or drop the record"
            ) from None
    return out


__all__ = [
    "FRAME_EXTENSIONS",
    "MAX_IMAGES_PER_RECORD",
    "MAX_VIDEO_SECONDS",
    "WINDOW_TOLERANCE_S",
    "ImagePart",
    "VideoInfo",
    "VideoPart",
    "VisualPart",
    "fit_pixels",
    "list_frames",
    "probe_video",
    "sample_frames",
    "video_problem",
    "video_timestamps",
]
