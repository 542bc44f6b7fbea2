"""Report figures for samples that show several images or a video (issue 20).

`vrft.report.html` calls `media_figure` for every sample; it returns None for a one-image sample (the
page then draws its usual figure). The sample dicts are the rows `vrft eval` writes to
predictions.jsonl (`vrft.evaluate.multi_image`, `vrft.evaluate.temporal`):

- several images (``multi_image_grounding``)::

      {"images": [path, ...], "image_sizes": [[w, h], ...],   # in order; image i is images[i - 1]
       "gt_image": 2, "gt_boxes": [[x1, y1, x2, y2]],         # 1-based; pixels of that image
       "pred_image": 2, "pred_boxes": [[x1, y1, x2, y2]]}     # the model's pick and box (pixels)

  The images are shown side by side, numbered; the true box is drawn on image ``gt_image`` and the
  predicted box on image ``pred_image`` (the same one when the model picked right), each image as an
  SVG whose ``viewBox`` is its original size, so boxes stay aligned at any display size.
- video (``temporal_grounding``)::

      {"video": path, "duration": 12.0, "fps": 2.0,           # fps: a frame folder's frame rate
       "gt_window": [S, E], "pred_window": [s, e]}            # seconds

  A strip of at most `STRIP_FRAMES` frames sampled over the video (`vrft.media.sample_frames`: only
  those frames are decoded, each at most `FRAME_PIXELS` pixels) above a timeline (an SVG whose x axis
  is seconds, 0..duration) with the true window (green) and the predicted one (red), and a tick at
  each shown frame's time. A predicted window reaching past the video is cut at its ends.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

STRIP_FRAMES = 8
"""Frames shown per video."""
FRAME_PIXELS = 160 * 90
"""Pixels of one frame thumbnail at most (aspect kept)."""
TIMELINE_UNITS = 1000.0
"""Width of the timeline's SVG coordinate system (the video's duration maps onto it)."""

MEDIA_CSS = (
    ".multi{display:flex;gap:6px;align-items:flex-start;width:480px}.video{width:480px}"
    ".multi .img{flex:1 1 0;min-width:0;position:relative}"
    ".multi .img .num{position:absolute;left:4px;top:2px;background:#fffc;padding:0 4px;font-weight:bold}"
    ".multi .img.gt-img{outline:3px solid #00c853}.multi .img.pred-img{outline:3px dashed #ff1744}"
    ".multi .img svg.fig{width:100%;height:auto;display:block}"
    ".strip{display:flex;gap:2px}.strip img{flex:1 1 0;min-width:0;width:0;height:auto;display:block}"
    ".strip .blank{flex:1 1 0;height:40px;background:#ddd}"
    "svg.timeline{width:100%;height:28px;display:block;background:#f4f4f4;margin-top:2px}"
)
"""CSS the page adds for these figures."""


def _resolve(path: Any, base_dir: Path | None) -> Path:
    p = Path(str(path))
    return base_dir / p if base_dir is not None and not p.is_absolute() else p


def _num(v: Any) -> float | None:
    from vrft.report.html import _num as num

    return num(v)


def _index(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    try:
        return int(v) if float(v) == int(v) else None
    except (TypeError, ValueError, OverflowError):
        return None


# --------------------------------------------------------------------------------------- several images
def _multi_figure(sample: Mapping[str, Any], cache: dict, base_dir: Path | None) -> str:
    from vrft.report.html import GT_COLOR, PRED_COLOR, _rects, _thumbnail

    paths = list(sample.get("images") or [])
    sizes = list(sample.get("image_sizes") or [])
    gt_i, pred_i = _index(sample.get("gt_image")), _index(sample.get("pred_image"))
    parts = ['<div class="multi">']
    for k, path in enumerate(paths, start=1):
        thumb = _thumbnail(_resolve(path, base_dir), cache)
        size = sizes[k - 1] if k - 1 < len(sizes) and isinstance(sizes[k - 1], (list, tuple)) else ()
        width = (_num(size[0]) if len(size) == 2 else None) or (thumb[1] if thumb else None) or 1000.0
        height = (_num(size[1]) if len(size) == 2 else None) or (thumb[2] if thumb else None) or 1000.0
        classes = "img" + (" gt-img" if k == gt_i else "") + (" pred-img" if k == pred_i else "")
        svg = [f'<svg class="fig" data-image="{k}" viewBox="0 0 {width:g} {height:g}" '
               f'preserveAspectRatio="xMinYMin meet">']  # fmt: skip
        if thumb:
            svg.append(
                f'<image href="{thumb[0]}" x="0" y="0" width="{width:g}" height="{height:g}" '
                f'preserveAspectRatio="none"/>'
            )
        else:
            svg.append(f'<rect x="0" y="0" width="{width:g}" height="{height:g}" fill="#ddd"/>')
        if k == gt_i:
            svg += _rects(sample.get("gt_boxes"), GT_COLOR, "gt")
        if k == pred_i:
            svg += _rects(sample.get("pred_boxes"), PRED_COLOR, "pred")
        svg.append("</svg>")
        parts.append(f'<div class="{classes}"><span class="num">{k}</span>{"".join(svg)}</div>')
    parts.append("</div>")
    return "".join(parts)


# ------------------------------------------------------------------------------------------------ video
def _frames(
    sample: Mapping[str, Any], cache: dict, base_dir: Path | None
) -> tuple[float | None, list[tuple[float, str]]]:
    """(duration s, ``[(time s, JPEG data URI)]`` of the strip): the row's duration, else the video
    header's; the strip is empty (and the duration may be None) when the video cannot be read."""
    from vrft.errors import UserError
    from vrft.media import VideoPart, probe_video, sample_frames

    path = _resolve(sample.get("video"), base_dir)
    duration = _num(sample.get("duration"))
    fps = _num(sample.get("fps"))
    key = ("video", str(path), duration, fps)
    if key in cache:
        return cache[key]
    strip: list[tuple[float, str]] = []
    known = duration
    try:
        width, height = int(sample.get("width") or 0), int(sample.get("height") or 0)
        if duration is None or duration <= 0 or (path.is_dir() and not fps):
            info = probe_video(path, fps)
            duration = duration if duration and duration > 0 else info.duration
            width, height = info.width, info.height
        part = VideoPart(path, width, height, float(duration), fps)
        for t, img in sample_frames(part, STRIP_FRAMES / float(duration), STRIP_FRAMES, FRAME_PIXELS):
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=75)
            strip.append((t, "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")))
    except (OSError, ValueError, TypeError, UserError) as err:
        logger.warning("report: cannot read video %s (%s); drawing the timeline without frames", path, err)
        strip, duration = [], known
    cache[key] = (duration, strip)
    return cache[key]


def _window_rect(window: Any, duration: float, color: str, cls: str, y: float, h: float) -> str:
    vals = [_num(v) for v in window] if isinstance(window, (list, tuple)) and len(window) == 2 else []
    if len(vals) != 2 or any(v is None for v in vals) or vals[1] <= vals[0]:
        return ""
    scale = TIMELINE_UNITS / duration
    x1, x2 = max(vals[0], 0.0) * scale, min(vals[1], duration) * scale
    if x2 <= x1:
        return ""
    return (
        f'<rect class="{cls}" data-start="{vals[0]:g}" data-end="{vals[1]:g}" x="{x1:.2f}" y="{y:g}" '
        f'width="{x2 - x1:.2f}" height="{h:g}" fill="{color}" fill-opacity="0.85"/>'
    )


def _video_figure(sample: Mapping[str, Any], cache: dict, base_dir: Path | None) -> str:
    from vrft.report.html import GT_COLOR, PRED_COLOR

    duration, strip = _frames(sample, cache, base_dir)
    if duration is None or not duration > 0:  # unreadable video without a duration: nothing to scale by
        windows = [_num(v) for key in ("gt_window", "pred_window") for v in (sample.get(key) or [])]
        duration = max([v for v in windows if v is not None] + [1.0])
    frames = (
        "".join(f'<img class="frame" data-t="{t:g}" src="{uri}" alt="frame at {t:g} s">' for t, uri in strip)
        or '<div class="blank"></div>'
    )
    scale = TIMELINE_UNITS / duration
    ticks = "".join(
        f'<line class="tick" x1="{t * scale:.2f}" x2="{t * scale:.2f}" y1="0" y2="10" stroke="#555" '
        f'stroke-width="2" vector-effect="non-scaling-stroke"/>'
        for t, _ in strip
    )
    timeline = (
        f'<svg class="timeline" data-duration="{duration:g}" viewBox="0 0 {TIMELINE_UNITS:g} 28" '
        f'preserveAspectRatio="none">{ticks}'
        f"{_window_rect(sample.get('gt_window'), duration, GT_COLOR, 'gt-window', 2, 12)}"
        f"{_window_rect(sample.get('pred_window'), duration, PRED_COLOR, 'pred-window', 14, 12)}</svg>"
    )
    return f'<div class="video"><div class="strip">{frames}</div>{timeline}</div>'


# ------------------------------------------------------------------------------------------------ entry
def media_figure(sample: Mapping[str, Any], cache: dict, base_dir: Path | None) -> str | None:
    """The figure of a several-images or video sample, or None (a one-image sample)."""
    if isinstance(sample.get("images"), (list, tuple)) and sample["images"]:
        return _multi_figure(sample, cache, base_dir)
    if sample.get("video"):
        return _video_figure(sample, cache, base_dir)
    return None


def media_rows(sample: Mapping[str, Any]) -> list[str]:
    """Table rows (``<tr>``) naming the true / predicted image or time window, when the sample has them."""
    rows = []
    if sample.get("gt_image") is not None or sample.get("pred_image") is not None:
        truth, pred = sample.get("gt_image"), sample.get("pred_image")
        text = f"truth {html.escape(str(truth))}, predicted {'—' if pred is None else html.escape(str(pred))}"
        rows.append(f"<tr><th>image</th><td>{text}</td></tr>")
    for key, label in (("gt_window", "true window"), ("pred_window", "predicted window")):
        window = sample.get(key)
        if key in sample:
            vals = [_num(v) for v in window] if isinstance(window, (list, tuple)) else []
            shown = f"{vals[0]:g} – {vals[1]:g} s" if len(vals) == 2 and None not in vals else "—"
            rows.append(f"<tr><th>{label}</th><td>{shown}</td></tr>")
    return rows
