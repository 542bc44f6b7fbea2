"""The built-in image tools as pure functions of (image, validated arguments) -> image.

Every function here checks its arguments BEFORE any pixel is touched and raises `ToolCallError` with a
sentence the model can read (TRL puts a raised tool's message into the conversation as
``{"error": "..."}``). No function reads or writes a file, and no output image exceeds the pixel budget
it is given: the output size is computed from the arguments first, and the one resize that makes the
image allocates exactly that size (`PIL.Image.resize` with a source ``box`` crops and scales in one step).

Coordinates: a `zoom_in` box is in the model's coordinate convention of the image it currently sees
(`vrft.boxes.Frame`: integers 0..1000 for ``norm1000``, pixels of the processor-resized image for
``resized_pixels``, plain pixels for ``pixels``), and ``0 <= x1 < x2 <= extent`` must hold exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from PIL import Image, ImageEnhance

ROTATIONS = (90, 180, 270)
"""`rotate`: counter-clockwise degrees allowed."""
FLIPS = ("horizontal", "vertical")
"""`flip`: the directions allowed (horizontal mirrors left-right)."""
BRIGHTNESS_RANGE = (0.25, 4.0)
"""`adjust`: brightness factor bounds (1 = unchanged, PIL.ImageEnhance.Brightness)."""
CONTRAST_RANGE = (0.25, 4.0)
"""`adjust`: contrast factor bounds (1 = unchanged, PIL.ImageEnhance.Contrast)."""
MAX_ZOOM_SHARE = 0.9
"""`zoom_in`: a region covering this share of the current image or more is refused (it would not narrow the
view: the "zoom on the whole image" exploit of a tool bonus)."""
MAX_ASPECT = 100.0
"""Longest over shortest side of a zoom region; beyond it the image processors refuse the image."""


class ToolCallError(ValueError):
    """A tool call the tool refuses; the message is what the model reads."""


# ------------------------------------------------------------------------------------------ checking
def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ToolCallError(f"{what} must be a number, got {_show(value)}")
    f = float(value)
    if not math.isfinite(f):
        raise ToolCallError(f"{what} must be a finite number, got {_show(value)}")
    return f


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_box(bbox_2d: Any, extent: tuple[float, float]) -> tuple[float, float, float, float]:
    """`bbox_2d` as four finite numbers with ``0 <= x1 < x2 <= ext_x`` and ``0 <= y1 < y2 <= ext_y``."""
    if not isinstance(bbox_2d, list | tuple) or len(bbox_2d) != 4:
        raise ToolCallError(f"bbox_2d must be a list of 4 numbers [x1, y1, x2, y2], got {_show(bbox_2d)}")
    x1, y1, x2, y2 = (_number(v, "each bbox_2d value") for v in bbox_2d)
    if x1 >= x2 or y1 >= y2:
        raise ToolCallError(
            f"bbox_2d {_show(list(bbox_2d))} is inverted or empty: it needs x1 < x2 and y1 < y2"
        )
    ex, ey = extent
    if x1 < 0 or y1 < 0 or x2 > ex or y2 > ey:
        raise ToolCallError(
            f"bbox_2d {_show(list(bbox_2d))} is outside the image: coordinates go from [0, 0] to "
            f"[{_fmt(ex)}, {_fmt(ey)}]"
        )
    return x1, y1, x2, y2


def check_zoom_region(box: Sequence[float], extent: tuple[float, float]) -> None:
    """Refuse a zoom region covering `MAX_ZOOM_SHARE` of the image or more."""
    x1, y1, x2, y2 = box
    share = (x2 - x1) * (y2 - y1) / (extent[0] * extent[1])
    if share >= MAX_ZOOM_SHARE:
        raise ToolCallError(
            f"the region covers {share:.0%} of the image you see; zoom on a smaller part of it "
            f"(under {MAX_ZOOM_SHARE:.0%})"
        )


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def fit_budget(width: float, height: float, max_pixels: int) -> tuple[int, int]:
    """The size ``(w, h)`` of a ``width x height`` region scaled (up or down) to fill `max_pixels`,
    aspect ratio kept, each side at least 1, ``w * h <= max_pixels``."""
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be positive, got {max_pixels}")
    scale = math.sqrt(max_pixels / (width * height))
    w = max(1, math.floor(width * scale))
    h = max(1, math.floor(height * scale))
    while w * h > max_pixels:  # a side clamped to 1 can push the area over: shrink the other side
        if w >= h:
            w -= 1
        else:
            h -= 1
    return w, h


def shrink_to_budget(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    """``(width, height)`` unchanged when within `max_pixels`, else scaled down to fit it."""
    if width * height <= max_pixels:
        return width, height
    return fit_budget(width, height, max_pixels)


# ---------------------------------------------------------------------------------------------- tools
def zoom(image: Image.Image, box_px: Sequence[float], max_pixels: int) -> Image.Image:
    """The region `box_px` (pixels of `image`, already checked) scaled to fill `max_pixels`."""
    x1, y1, x2, y2 = (float(v) for v in box_px)
    w, h = x2 - x1, y2 - y1
    if w < 1 or h < 1:
        raise ToolCallError(
            f"the region is smaller than one pixel of the image ({w:.2f} x {h:.2f} px); zoom on a larger box"
        )
    if max(w, h) / min(w, h) > MAX_ASPECT:
        raise ToolCallError(
            f"the region is too thin (aspect ratio above {MAX_ASPECT:g}); zoom on a squarer box"
        )
    size = fit_budget(w, h, max_pixels)
    return image.resize(size, Image.Resampling.BICUBIC, box=(x1, y1, x2, y2))


def check_degrees(degrees: Any) -> int:
    d = _number(degrees, "degrees")
    if d not in ROTATIONS:
        raise ToolCallError(f"degrees must be one of {', '.join(map(str, ROTATIONS))}, got {_show(degrees)}")
    return int(d)


def rotate(image: Image.Image, degrees: int, max_pixels: int) -> Image.Image:
    """`image` turned `degrees` (90/180/270, checked) counter-clockwise, within `max_pixels`."""
    size = shrink_to_budget(image.width, image.height, max_pixels)
    out = image.resize(size, Image.Resampling.BICUBIC) if size != image.size else image
    op = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}
    return out.transpose(op[degrees])


def check_direction(direction: Any) -> str:
    if not isinstance(direction, str) or direction not in FLIPS:
        raise ToolCallError(f"direction must be one of {', '.join(FLIPS)}, got {_show(direction)}")
    return direction


def flip(image: Image.Image, direction: str, max_pixels: int) -> Image.Image:
    """`image` mirrored (``horizontal``: left-right, ``vertical``: top-bottom), within `max_pixels`."""
    size = shrink_to_budget(image.width, image.height, max_pixels)
    out = image.resize(size, Image.Resampling.BICUBIC) if size != image.size else image
    op = Image.Transpose.FLIP_LEFT_RIGHT if direction == "horizontal" else Image.Transpose.FLIP_TOP_BOTTOM
    return out.transpose(op)


def check_factors(brightness: Any, contrast: Any) -> tuple[float, float]:
    b = _number(brightness, "brightness")
    c = _number(contrast, "contrast")
    for name, v, (lo, hi) in (("brightness", b, BRIGHTNESS_RANGE), ("contrast", c, CONTRAST_RANGE)):
        if not lo <= v <= hi:
            raise ToolCallError(f"{name} must be between {lo:g} and {hi:g} (1 = unchanged), got {_show(v)}")
    return b, c


def adjust(image: Image.Image, brightness: float, contrast: float, max_pixels: int) -> Image.Image:
    """`image` with brightness then contrast scaled (factors checked), within `max_pixels`."""
    size = shrink_to_budget(image.width, image.height, max_pixels)
    out = image.resize(size, Image.Resampling.BICUBIC) if size != image.size else image.copy()
    out = ImageEnhance.Brightness(out.convert("RGB")).enhance(brightness)
    return ImageEnhance.Contrast(out).enhance(contrast)
