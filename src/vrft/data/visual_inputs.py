"""What a record shows the model, as model input: the images of its prompt, in order, and the user
turn that places them. Training (`vrft.data.hf`), evaluation and predict (`vrft.evaluate.runner`) all
build their prompts here, so a model is asked as it was trained.

- one ``image``: the user turn is ``[image, question]`` (unchanged);
- ``images`` (multi-image): ``["Image 1:", image, "Image 2:", image, ..., question]``: one image
  placeholder per image, in record order (TRL fills placeholders in order), at most
  `MediaBudget.max_images` of them (`check_image_count`);
- ``video``: VIDEO-AS-FRAMES. The video is sampled at `MediaBudget.video_fps`, at most
  `video_max_frames` frames, each resized to `video_max_pixels` / `video_min_pixels`
  (`vrft.media.sample_frames`), and shown as an ordered image list, each frame after its timestamp:
  ``["Video of 6 s, 4 frames.", "0.75 s:", frame, "2.25 s:", frame, ..., question]``.

Why frames and not a video input: TRL 1.16 cannot carry one. `GRPOTrainer` reads images only from the
``image`` / ``images`` columns (its signature columns are prompt / image / images) and its log-prob
pass (`_get_per_token_logps_and_entropies`) forwards ``pixel_values`` / ``image_grid_thw`` but never
``pixel_values_videos`` / ``video_grid_thw``; `SFTTrainer`'s vision collator passes ``images`` alone.
A real video input would therefore be generated from but not trained on. The timestamps in the text
let the model answer in seconds of the video's own timeline (the ground truth's).

Decoding is LAZY: the Arrow table holds a small JSON description of a record's visuals
(`visual_spec`: paths, or the video's path, duration and the sampled timestamps) and `load_visuals`
decodes it when a row is read; only the sampled frames of a video are decoded.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from vrft.errors import DataError
from vrft.media import BUDGET_NAMES

VIDEO_HEADER = "Video of {duration:g} s, {n} frames."
FRAME_CAPTION = "{t:g} s:"
IMAGE_CAPTION = "Image {i}:"


@dataclass(frozen=True)
class MediaBudget:
    """The many-image and video budgets (`model.*` of the config, ``vrft.json``; docs/configuration.md).

    ``max_images``: most images of one record; ``video_fps``: frames sampled per second of video;
    ``video_max_frames``: most frames per video; ``video_max_pixels`` / ``video_min_pixels``: the area
    range of one sampled frame (resized keeping its aspect ratio)."""

    max_images: int = 4
    video_fps: float = 2.0
    video_max_frames: int = 8
    video_max_pixels: int = 12544
    video_min_pixels: int = 3136

    @classmethod
    def of(cls, source: Any) -> MediaBudget:
        """The budget of an object holding the five fields (a config's ``model`` section, a
        `vrft.models.contract.AskSettings`); a field that is missing or None keeps the default."""
        if source is None:
            return cls()
        values = {}
        for name in BUDGET_NAMES:
            value = getattr(source, name, None)
            if value is not None:
                values[name] = value
        return cls(**values)


def check_image_count(record: Any, budget: MediaBudget) -> None:
    """DataError when an ``images`` record shows more images than ``budget.max_images``."""
    images = getattr(record, "images", None)
    if images is not None and len(images) > budget.max_images:
        raise DataError(
            f"{record.source or record.id}: images: {len(images)} images, more than model.max_images="
            f"{budget.max_images} (raise model.max_images, up to 16, or drop the record)"
        )


def is_single_image(record: Any) -> bool:
    """Whether the record has the one-image ``image`` form."""
    return getattr(record, "images", None) is None and getattr(record, "video", None) is None


def frame_times(record: Any, budget: MediaBudget) -> list[float]:
    """The timestamps (seconds) sampled from a ``video`` record (`vrft.media.video_timestamps`)."""
    from vrft.media import video_timestamps

    try:
        return video_timestamps(float(record.duration or 0.0), budget.video_fps, budget.video_max_frames)
    except DataError as err:
        raise DataError(f"{record.source or record.id}: video: {err}") from None


def visual_spec(record: Any, budget: MediaBudget) -> dict[str, Any]:
    """A JSON-able description of what `record` shows (decoded by `load_visuals`) with the captions of
    its images: ``{"paths": [...], "captions": [...]}`` for images, ``{"video": path, "fps": ...,
    "duration": ..., "times": [...], "max_pixels": ..., "min_pixels": ..., "captions": [...],
    "header": ...}`` for a video. DataError when the record has more images than the budget allows."""
    from vrft.media import ImagePart

    check_image_count(record, budget)
    parts = record.visual_parts()
    if all(isinstance(p, ImagePart) for p in parts):
        paths = [str(p.path) for p in parts]
        captions = (
            [""] if is_single_image(record) else [IMAGE_CAPTION.format(i=i + 1) for i in range(len(paths))]
        )
        return {"paths": paths, "captions": captions}
    (video,) = parts
    times = frame_times(record, budget)
    return {
        "video": str(video.path), "fps": video.fps, "duration": video.duration, "width": video.width,
        "height": video.height, "times": times, "sample_fps": budget.video_fps,
        "max_frames": budget.video_max_frames, "max_pixels": budget.video_max_pixels,
        "min_pixels": budget.video_min_pixels, "captions": [FRAME_CAPTION.format(t=t) for t in times],
        "header": VIDEO_HEADER.format(duration=video.duration, n=len(times)),
    }  # fmt: skip


def load_visuals(spec: dict[str, Any] | str) -> list[Any]:
    """The RGB PIL images a `visual_spec` (or its JSON text) describes, in order: the images, or the
    sampled video frames (only those are decoded; DataError naming the file on a bad one)."""
    if isinstance(spec, str):
        spec = json.loads(spec)
    if "paths" in spec:
        from vrft.inputs import open_image

        return [open_image(p) for p in spec["paths"]]
    return list(
        _video_frames(
            spec["video"], spec["fps"], float(spec["duration"]), int(spec["width"]), int(spec["height"]),
            float(spec["sample_fps"]), int(spec["max_frames"]), int(spec["max_pixels"]), int(spec["min_pixels"]),
        )
    )  # fmt: skip


@functools.lru_cache(maxsize=4)  # a GRPO group reads the same row G times in a row: decode it once
def _video_frames(
    path, fps, duration, width, height, sample_fps, max_frames, max_pixels, min_pixels
) -> tuple:
    from pathlib import Path

    from vrft.media import VideoPart, sample_frames

    part = VideoPart(Path(path), width, height, duration, fps)
    return tuple(img for _, img in sample_frames(part, sample_fps, max_frames, max_pixels, min_pixels))


def user_content(text: str, spec: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The content of the user turn: ``[image, text]`` for one image (`spec` None or one uncaptioned
    image), else each image after its caption (a video's header first), then `text`. Images are
    placeholders ``{"type": "image"}``, filled in order by TRL or the processor."""
    if spec is None or spec.get("captions") == [""]:
        return [{"type": "image"}, {"type": "text", "text": text}]
    content: list[dict[str, Any]] = []
    if spec.get("header"):
        content.append({"type": "text", "text": spec["header"] + "\n"})
    for caption in spec["captions"]:
        content += [{"type": "text", "text": caption}, {"type": "image"}]
    content.append({"type": "text", "text": "\n" + text})
    return content


__all__ = [
    "FRAME_CAPTION",
    "IMAGE_CAPTION",
    "VIDEO_HEADER",
    "MediaBudget",
    "check_image_count",
    "frame_times",
    "is_single_image",
    "load_visuals",
    "user_content",
    "visual_spec",
]
