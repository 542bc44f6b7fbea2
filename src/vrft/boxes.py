"""Box geometry and every coordinate conversion of vrft (the only module that converts).

Boxes and points alike: `Frame.encode` / `Frame.decode` for boxes, `Frame.encode_point` /
`Frame.decode_point` for points (counting), `xywh_to_xyxy` / `clip_box` for COCO ground truth.

Boxes are ``[x1, y1, x2, y2]`` with ``x1 <= x2`` and ``y1 <= y2`` (corner order is the caller's job;
the parser reorders swapped corners). A box whose width or height is not positive has zero area.

Coordinate conventions (see ``docs/DESIGN.md``):

- ``"pixels"``: pixels of the original image.
- ``"norm1000"``: integers 0..1000 of the original width/height, ``int(x / W * 1000)`` (Qwen2-VL,
  Qwen3-VL, the Visual-RFT paper).
- ``"resized_pixels"``: absolute pixels of the image after the processor's :func:`smart_resize`
  (Qwen2.5-VL).

Robustness rules (relied on by the rewards): IoU is 0 for zero-area boxes and for boxes holding NaN or
infinity, never NaN and never a division by zero; GIoU is in ``[-1, 1]`` and is -1 for non-finite
input or when the enclosing box has zero area.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CONVENTIONS: tuple[str, ...] = ("norm1000", "resized_pixels", "pixels")

# Defaults of the Qwen2-VL / Qwen2.5-VL image processors.
QWEN_FACTOR = 28
QWEN_MIN_PIXELS = 56 * 56
QWEN_MAX_PIXELS = 28 * 28 * 1280

BoxLike = Sequence[float]


def _as_boxes(boxes) -> np.ndarray:
    """Return a float64 array of shape ``[N, 4]`` (``[4]`` input becomes ``[1, 4]``)."""
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, 4)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"boxes must have shape [N, 4] or [4], got {arr.shape}")
    return arr


def _areas(b: np.ndarray) -> np.ndarray:
    """Areas ``[N]`` of boxes ``[N, 4]``; 0 for non-positive sides."""
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def _valid(b: np.ndarray) -> np.ndarray:
    """``[N]`` bool: all four coordinates finite and the area positive and finite."""
    with np.errstate(invalid="ignore", over="ignore"):
        area = _areas(b)
        return np.isfinite(b).all(axis=1) & np.isfinite(area) & (area > 0)


def iou_matrix(a, b) -> np.ndarray:
    """Pairwise IoU of boxes ``a`` ``[N, 4]`` and ``b`` ``[M, 4]`` -> ``[N, M]`` in ``[0, 1]``.

    Pairs involving a zero-area or non-finite box get 0.
    """
    a, b = _as_boxes(a), _as_boxes(b)
    out = np.zeros((a.shape[0], b.shape[0]), dtype=np.float64)
    if out.size == 0:
        return out
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
        iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
        ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
        iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
        inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
        union = _areas(a)[:, None] + _areas(b)[None, :] - inter
        ok = _valid(a)[:, None] & _valid(b)[None, :] & np.isfinite(union) & (union > 0)
        np.divide(inter, union, out=out, where=ok)
    out[~np.isfinite(out)] = 0.0
    return np.clip(out, 0.0, 1.0)


def giou_matrix(a, b) -> np.ndarray:
    """Pairwise generalised IoU ``[N, M]`` in ``[-1, 1]``: ``IoU - (C - U) / C``.

    ``C`` is the area of the smallest enclosing box and ``U`` the union. A pair with a non-finite
    coordinate, or whose enclosing box has zero area, gets -1 (the worst value).
    """
    a, b = _as_boxes(a), _as_boxes(b)
    out = np.full((a.shape[0], b.shape[0]), -1.0, dtype=np.float64)
    if out.size == 0:
        return out
    iou = iou_matrix(a, b)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
        iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
        ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
        iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
        inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
        union = _areas(a)[:, None] + _areas(b)[None, :] - inter
        cx1 = np.minimum(a[:, None, 0], b[None, :, 0])
        cy1 = np.minimum(a[:, None, 1], b[None, :, 1])
        cx2 = np.maximum(a[:, None, 2], b[None, :, 2])
        cy2 = np.maximum(a[:, None, 3], b[None, :, 3])
        enclose = np.clip(cx2 - cx1, 0, None) * np.clip(cy2 - cy1, 0, None)
        finite = np.isfinite(a).all(axis=1)[:, None] & np.isfinite(b).all(axis=1)[None, :]
        ok = finite & np.isfinite(enclose) & (enclose > 0) & np.isfinite(union)
        penalty = np.zeros_like(out)
        np.divide(enclose - union, enclose, out=penalty, where=ok)
        np.subtract(iou, penalty, out=out, where=ok)
    out[~np.isfinite(out)] = -1.0
    return np.clip(out, -1.0, 1.0)


def iou(a: BoxLike, b: BoxLike) -> float:
    """IoU of two boxes ``[x1, y1, x2, y2]`` in ``[0, 1]`` (0 for degenerate or non-finite boxes)."""
    return float(iou_matrix(a, b)[0, 0])


def giou(a: BoxLike, b: BoxLike) -> float:
    """Generalised IoU of two boxes in ``[-1, 1]`` (see :func:`giou_matrix`)."""
    return float(giou_matrix(a, b)[0, 0])


# ----------------------------------------------------------------------------------------------
# Conversions
# ----------------------------------------------------------------------------------------------


def xyxy_to_xywh(box: BoxLike) -> list[float]:
    """``[x1, y1, x2, y2]`` -> COCO ``[x, y, w, h]``."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return [x1, y1, x2 - x1, y2 - y1]


def xywh_to_xyxy(box: BoxLike) -> list[float]:
    """COCO ``[x, y, w, h]`` -> ``[x1, y1, x2, y2]``."""
    x, y, w, h = (float(v) for v in box)
    return [x, y, x + w, y + h]


def _clip(v: float, hi: float) -> float:
    """Clip to ``[0, hi]``; NaN becomes 0."""
    if v != v:  # NaN
        return 0.0
    return min(max(v, 0.0), hi)


def clip_box(box: BoxLike, width: float, height: float, ndigits: int | None = 2) -> list[float] | None:
    """A pixel box clipped to a ``width`` x ``height`` image (coordinates rounded to `ndigits`), or
    None when nothing of it is left (zero width or height after clipping)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    x1, y1 = max(0.0, x1), max(0.0, y1)
    x2, y2 = min(float(width), x2), min(float(height), y2)
    if not (x2 > x1 and y2 > y1):
        return None
    return [x1, y1, x2, y2] if ndigits is None else [round(v, ndigits) for v in (x1, y1, x2, y2)]


def to_norm1000(box_px: BoxLike, width: float, height: float) -> list[int]:
    """Pixels -> integers 0..1000: ``int(x / W * 1000)`` (truncation, as the paper), clipped."""
    x1, y1, x2, y2 = (float(v) for v in box_px)
    return [
        int(_clip(x1 / width * 1000, 1000)),
        int(_clip(y1 / height * 1000, 1000)),
        int(_clip(x2 / width * 1000, 1000)),
        int(_clip(y2 / height * 1000, 1000)),
    ]


def from_norm1000(box: BoxLike, width: float, height: float) -> list[float]:
    """0..1000 -> pixels of the original image (``x / 1000 * W``), clipped to the image."""
    x1, y1, x2, y2 = (_clip(float(v), 1000.0) for v in box)
    return [x1 / 1000 * width, y1 / 1000 * height, x2 / 1000 * width, y2 / 1000 * height]


def to_resized(box_px: BoxLike, width: float, height: float, resized_w: int, resized_h: int) -> list[int]:
    """Original pixels -> integer pixels of the resized image (rounded), clipped to it."""
    sx, sy = resized_w / width, resized_h / height
    x1, y1, x2, y2 = (float(v) for v in box_px)
    return [
        round(_clip(x1 * sx, resized_w)),
        round(_clip(y1 * sy, resized_h)),
        round(_clip(x2 * sx, resized_w)),
        round(_clip(y2 * sy, resized_h)),
    ]


def from_resized(box: BoxLike, width: float, height: float, resized_w: int, resized_h: int) -> list[float]:
    """Pixels of the resized image -> original pixels, clipped to the original image."""
    sx, sy = width / resized_w, height / resized_h
    x1, y1, x2, y2 = (float(v) for v in box)
    return [
        _clip(x1 * sx, width),
        _clip(y1 * sy, height),
        _clip(x2 * sx, width),
        _clip(y2 * sy, height),
    ]


def smart_resize(
    height: int,
    width: int,
    factor: int = QWEN_FACTOR,
    min_pixels: int = QWEN_MIN_PIXELS,
    max_pixels: int = QWEN_MAX_PIXELS,
) -> tuple[int, int]:
    """``(resized_height, resized_width)`` as the Qwen2-VL / Qwen2.5-VL image processors compute it.

    Both sides become multiples of ``factor`` (rounded to nearest, Python's round-half-even), the pixel
    count is brought into ``[min_pixels, max_pixels]`` keeping the aspect ratio (floor when shrinking,
    ceil when growing). Raises ``ValueError`` for an aspect ratio above 200, like the processors.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got height={height} width={width}")
    if max(height, width) / min(height, width) > 200:
        raise ValueError(
            f"absolute aspect ratio must be smaller than 200, got {max(height, width) / min(height, width)}"
        )
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


@dataclass(frozen=True)
class Frame:
    """How one image's boxes are written for one model.

    ``width``/``height``: original image size (pixels). ``convention``: one of :data:`CONVENTIONS`.
    ``resized_width``/``resized_height``: the processor-resized size, required for ``"resized_pixels"``
    (build it with :meth:`Frame.for_image`).
    """

    width: float
    height: float
    convention: str = "norm1000"
    resized_width: int | None = None
    resized_height: int | None = None

    def __post_init__(self) -> None:
        if not (self.width > 0 and self.height > 0):
            raise ValueError(f"Frame needs a positive width and height, got {self.width}x{self.height}")
        if self.convention not in CONVENTIONS:
            raise ValueError(f"unknown coordinate convention {self.convention!r}; use one of {CONVENTIONS}")
        if self.convention == "resized_pixels" and not (
            self.resized_width and self.resized_height and self.resized_width > 0 and self.resized_height > 0
        ):
            raise ValueError("the 'resized_pixels' convention needs resized_width and resized_height")

    @classmethod
    def for_image(
        cls,
        width: float,
        height: float,
        convention: str = "norm1000",
        *,
        factor: int = QWEN_FACTOR,
        min_pixels: int = QWEN_MIN_PIXELS,
        max_pixels: int = QWEN_MAX_PIXELS,
    ) -> Frame:
        """A frame for an image; for ``"resized_pixels"`` the resized size comes from :func:`smart_resize`."""
        if convention == "resized_pixels":
            rh, rw = smart_resize(int(round(height)), int(round(width)), factor, min_pixels, max_pixels)
            return cls(width, height, convention, rw, rh)
        return cls(width, height, convention)

    @property
    def extent(self) -> tuple[float, float]:
        """``(max_x, max_y)`` of the model's coordinates (1000 for norm1000)."""
        if self.convention == "norm1000":
            return 1000.0, 1000.0
        if self.convention == "resized_pixels":
            return float(self.resized_width), float(self.resized_height)
        return float(self.width), float(self.height)

    def encode(self, box_px: BoxLike) -> list[int]:
        """Original pixels -> integer box in the model's convention (clipped to the image)."""
        if self.convention == "norm1000":
            return to_norm1000(box_px, self.width, self.height)
        if self.convention == "resized_pixels":
            return to_resized(box_px, self.width, self.height, self.resized_width, self.resized_height)
        return [round(_clip(float(v), hi)) for v, hi in zip(box_px, (self.width, self.height) * 2)]

    def encode_point(self, point_px: Sequence[float]) -> list[int]:
        """Original pixels ``[x, y]`` -> integer point in the model's convention (clipped to the image)."""
        x, y = (float(v) for v in point_px)
        if self.convention == "norm1000":
            return [int(_clip(x / self.width * 1000, 1000)), int(_clip(y / self.height * 1000, 1000))]
        if self.convention == "resized_pixels":
            sx, sy = self.resized_width / self.width, self.resized_height / self.height
            return [round(_clip(x * sx, self.resized_width)), round(_clip(y * sy, self.resized_height))]
        return [round(_clip(x, self.width)), round(_clip(y, self.height))]

    def decode_point(self, point_model: Sequence[float]) -> list[float]:
        """Point ``[x, y]`` in the model's convention -> original pixels (floats, clipped to the image)."""
        x, y = (float(v) for v in point_model)
        if self.convention == "norm1000":
            return [_clip(x, 1000.0) / 1000 * self.width, _clip(y, 1000.0) / 1000 * self.height]
        if self.convention == "resized_pixels":
            sx, sy = self.width / self.resized_width, self.height / self.resized_height
            return [_clip(x * sx, self.width), _clip(y * sy, self.height)]
        return [_clip(x, self.width), _clip(y, self.height)]

    def decode(self, box_model: BoxLike) -> list[float]:
        """Box in the model's convention -> original pixels (floats, clipped to the image)."""
        if self.convention == "norm1000":
            return from_norm1000(box_model, self.width, self.height)
        if self.convention == "resized_pixels":
            return from_resized(box_model, self.width, self.height, self.resized_width, self.resized_height)
        return [_clip(float(v), hi) for v, hi in zip(box_model, (self.width, self.height) * 2)]
