"""The shapes world's pictures: classes, colours, shape outlines and the drawing of every scene.

Pure pixels, no files: `draw_scene` (detection), `draw_classification`, `referring_expressions`
(grounding), `draw_counting` and `draw_ocr`. `vrft.data.synthetic` writes them to disk.

Determinism: scene ``i`` is drawn from ``numpy.random.default_rng([seed, i, stream])`` (one stream
per kind of scene), so the same seed gives the same pixels, whatever else is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

# The class split, as in the paper's open-vocabulary setting: train on base, evaluate on novel.
SHAPE_SPLIT: dict[str, tuple[str, ...]] = {
    "base": ("circle", "square", "triangle", "cross", "hexagon"),
    "novel": ("star", "heart", "diamond"),
}
BASE_CLASSES: tuple[str, ...] = SHAPE_SPLIT["base"]
NOVEL_CLASSES: tuple[str, ...] = SHAPE_SPLIT["novel"]
ALL_CLASSES: tuple[str, ...] = BASE_CLASSES + NOVEL_CLASSES
# Fixed COCO category ids, whatever subset is drawn (so base and novel files agree).
CATEGORY_IDS: dict[str, int] = {name: i + 1 for i, name in enumerate(ALL_CLASSES)}

# Object colours (name -> RGB). Backgrounds are muted, so these stay visible.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (240, 215, 40),
    "purple": (140, 50, 190),
    "orange": (245, 135, 20),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}

# One colour per class, for worlds drawn with `class_colours`: an easier world, where colour alone
# tells the classes apart (the demo's tiny model still did not learn to within its budget: docs/demo.md).
# Not part of COLOURS, so random colour draws stay unchanged.
CLASS_COLOURS: dict[str, tuple[str, tuple[int, int, int]]] = {
    "circle": ("red", COLOURS["red"]),
    "square": ("blue", COLOURS["blue"]),
    "triangle": ("green", COLOURS["green"]),
    "cross": ("purple", COLOURS["purple"]),
    "hexagon": ("orange", COLOURS["orange"]),
    "star": ("yellow", COLOURS["yellow"]),
    "heart": ("black", COLOURS["black"]),
    "diamond": ("cyan", (20, 185, 200)),
}

# Fine-grained classification classes: label -> (shape drawn, variant). Pairs differ in one detail.
CLASSIFICATION_CLASSES: dict[str, tuple[str, str]] = {
    "circle": ("circle", "filled"),
    "ring": ("circle", "hollow"),
    "square": ("square", "filled"),
    "hollow square": ("square", "hollow"),
    "triangle": ("triangle", "filled"),
    "hollow triangle": ("triangle", "hollow"),
    "cross": ("cross", "filled"),
    "x cross": ("cross", "rotated"),
    "hexagon": ("hexagon", "filled"),
    "pentagon": ("pentagon", "filled"),
    "star": ("star", "filled"),
    "six-pointed star": ("star6", "filled"),
    "heart": ("heart", "filled"),
    "hollow heart": ("heart", "hollow"),
    "diamond": ("diamond", "filled"),
    "hollow diamond": ("diamond", "hollow"),
}
# Which detection class each drawn shape belongs to (for the base/novel split of classification).
_SHAPE_FAMILY = {"pentagon": "hexagon", "star6": "star"}
CLASSIFICATION_DOMAIN = {"object": "shape", "attribute": "type"}

_STREAM_DETECTION, _STREAM_CLASSIFICATION, _STREAM_GROUNDING, _STREAM_COUNTING, _STREAM_OCR = 0, 1, 2, 3, 4

# The words OCR images are made of (common English words, mixed case, a few digits).
OCR_WORDS: tuple[str, ...] = (
    "the", "red", "blue", "green", "shape", "circle", "square", "star", "open", "closed", "exit", "stop",
    "north", "south", "east", "west", "River", "Street", "Park", "Hotel", "Cafe", "Museum", "Station",
    "Market", "Garden", "Bridge", "Library", "School", "Tower", "Square", "OPEN", "SALE", "EXIT", "No",
    "Entry", "Welcome", "Today", "Fresh", "Bread", "Coffee", "Tea", "Books", "Music", "Gate", "Hall",
    "Road", "Lane", "Main", "High", "Old", "New", "Green", "Sun", "Moon", "2024", "42", "7", "100",
    "A1", "B12",
)  # fmt: skip

# Detection backgrounds: "textured" (muted gradient, blotches, noise, strokes) or "plain" (white; the demo's
# 1.5M-parameter model learns to localise on it in minutes, on "textured" it does not).
BACKGROUNDS = ("textured", "plain")


# --------------------------------------------------------------------------- geometry of shapes
def _regular(n: int, phase: float = -math.pi / 2) -> np.ndarray:
    t = phase + np.arange(n) * 2 * math.pi / n
    return np.stack([np.cos(t), np.sin(t)], axis=1)


def _star(points: int, inner: float) -> np.ndarray:
    t = -math.pi / 2 + np.arange(2 * points) * math.pi / points
    r = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


def _heart() -> np.ndarray:
    t = np.linspace(0, 2 * math.pi, 48, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    return np.stack([x, y], axis=1)


def _cross(arm: float = 1 / 3) -> np.ndarray:
    a = arm
    pts = [
        (-a, -1),
        (a, -1),
        (a, -a),
        (1, -a),
        (1, a),
        (a, a),
        (a, 1),
        (-a, 1),
        (-a, a),
        (-1, a),
        (-1, -a),
        (-a, -a),
    ]
    return np.array(pts, dtype=float)


def _normalise(poly: np.ndarray) -> np.ndarray:
    """Scale a polygon so that its bounding box is [-1, 1] in both axes."""
    lo, hi = poly.min(axis=0), poly.max(axis=0)
    return (poly - (lo + hi) / 2) / ((hi - lo) / 2)


# Unit outlines (bounding box [-1, 1]^2 before aspect and rotation).
_OUTLINES: dict[str, np.ndarray] = {
    "circle": _regular(48),
    "square": np.array([(-1, -1), (1, -1), (1, 1), (-1, 1)], dtype=float),
    "triangle": _normalise(_regular(3)),
    "cross": _cross(),
    "hexagon": _normalise(_regular(6, 0.0)),
    "pentagon": _normalise(_regular(5)),
    "star": _normalise(_star(5, 0.45)),
    "star6": _normalise(_star(6, 0.55)),
    "heart": _normalise(_heart()),
    "diamond": np.array([(0, -1), (1, 0), (0, 1), (-1, 0)], dtype=float),
}
# Per shape: (aspect range width/height, max rotation in degrees). Diamonds are tall rhombi, never
# rotated, so that they stay distinct from squares (rotated at most 15 degrees).
_SHAPE_PARAMS: dict[str, tuple[tuple[float, float], float]] = {
    "circle": ((1.0, 1.0), 0.0),
    "square": ((1.0, 1.0), 15.0),
    "triangle": ((0.9, 1.1), 20.0),
    "cross": ((1.0, 1.0), 10.0),
    "hexagon": ((1.0, 1.0), 30.0),
    "pentagon": ((1.0, 1.0), 30.0),
    "star": ((1.0, 1.0), 30.0),
    "star6": ((1.0, 1.0), 30.0),
    "heart": ((1.0, 1.1), 15.0),
    "diamond": ((0.6, 0.75), 0.0),
}


def _shape_polygon(
    shape: str, size: float, cx: float, cy: float, aspect: float, angle_deg: float
) -> np.ndarray:
    """Polygon (N x 2, pixels) of `shape` whose unrotated box is `size` tall, centred at (cx, cy)."""
    poly = _OUTLINES[shape] * np.array([aspect * size / 2, size / 2])
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return poly @ rot.T + np.array([cx, cy])


def _poly_area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


# --------------------------------------------------------------------------- drawing
def _background(rng: np.random.Generator, size: int) -> Image.Image:
    """Muted two-colour gradient + low-frequency blotches + pixel noise (uint8 RGB)."""
    c0 = rng.uniform(70, 185, size=3).astype(np.float32)
    c1 = np.clip(c0 + rng.uniform(-45, 45, size=3), 40, 215).astype(np.float32)
    theta = rng.uniform(0, 2 * math.pi)
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)
    t = np.float32(math.cos(theta)) * ramp[None, :] + np.float32(math.sin(theta)) * ramp[:, None]
    t = ((t - t.min()) / max(float(t.max() - t.min()), 1e-6))[..., None]
    grid = rng.integers(100, 157, size=(5, 5, 3), dtype=np.uint8)  # 128 +- 28
    blotch = np.asarray(Image.fromarray(grid, "RGB").resize((size, size), Image.BILINEAR), dtype=np.float32)
    sigma = np.float32(rng.uniform(6, 16))
    noise = rng.random(size=(size, size, 3), dtype=np.float32) - np.float32(0.5)  # uniform: fast
    sigma *= np.float32(math.sqrt(12.0))  # same standard deviation as N(0, sigma)
    arr = c0 + (c1 - c0) * t + (blotch - 128.0) + sigma * noise
    arr = np.clip(arr, 0, 255).astype(np.uint8)
    out = Image.fromarray(arr, "RGB")
    # A few faint distractor strokes (texture, never closed shapes).
    draw = ImageDraw.Draw(out)
    for _ in range(int(rng.integers(2, 6))):
        p = rng.uniform(0, size, size=4)
        g = tuple(int(v) for v in np.clip(c0 + rng.uniform(-35, 35, size=3), 0, 255))
        draw.line([(p[0], p[1]), (p[2], p[3])], fill=g, width=max(1, size // 112))
    return out


def _jitter(rng: np.random.Generator, rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    return tuple(int(v) for v in np.clip(np.array(rgb) + rng.integers(-18, 19, size=3), 0, 255))


def _draw(
    draw: ImageDraw.ImageDraw, poly: np.ndarray, fill: tuple[int, int, int], variant: str, size: float
) -> None:
    pts = [(float(x), float(y)) for x, y in poly]
    edge = tuple(max(0, int(v * 0.55)) for v in fill)
    if variant == "hollow":
        draw.polygon(pts, outline=fill, width=max(2, int(round(size * 0.12))))
    else:
        draw.polygon(pts, fill=fill, outline=edge, width=max(1, int(round(size / 40))))


# --------------------------------------------------------------------------- scenes
@dataclass
class ShapeObject:
    """One drawn object: class, colour name, box [x1, y1, x2, y2] (pixels), polygon, area."""

    shape: str
    colour: str
    box: list[float]
    polygon: list[float]
    area: float


def _overlap_ok(box: list[float], others: Sequence[list[float]], max_overlap: float) -> bool:
    """Each pair's box intersection covers at most `max_overlap` of the smaller box."""
    for o in others:
        iw = min(box[2], o[2]) - max(box[0], o[0])
        ih = min(box[3], o[3]) - max(box[1], o[1])
        if iw > 0 and ih > 0:
            smaller = min((box[2] - box[0]) * (box[3] - box[1]), (o[2] - o[0]) * (o[3] - o[1]))
            if iw * ih > max_overlap * smaller:
                return False
    return True


def _place(
    rng: np.random.Generator,
    shape: str,
    size: int,
    obj_size: float,
    others: Sequence[list[float]],
    max_overlap: float,
    tries: int = 40,
) -> tuple[np.ndarray, list[float]] | None:
    (a_lo, a_hi), max_rot = _SHAPE_PARAMS[shape]
    aspect = float(rng.uniform(a_lo, a_hi))
    angle = float(rng.uniform(-max_rot, max_rot))
    unit = _shape_polygon(shape, obj_size, 0.0, 0.0, aspect, angle)
    lo, hi = unit.min(axis=0), unit.max(axis=0)
    w, h = hi - lo
    if w >= size - 2 or h >= size - 2:
        return None
    for _ in range(tries):
        cx = float(rng.uniform(1 - lo[0], size - 1 - hi[0]))
        cy = float(rng.uniform(1 - lo[1], size - 1 - hi[1]))
        poly = unit + np.array([cx, cy])
        box = [
            float(poly[:, 0].min()),
            float(poly[:, 1].min()),
            float(poly[:, 0].max()),
            float(poly[:, 1].max()),
        ]
        if _overlap_ok(box, others, max_overlap):
            return poly, box
    return None


def draw_scene(
    index: int,
    seed: int,
    size: int = 224,
    classes: Sequence[str] = ALL_CLASSES,
    min_objects: int = 1,
    max_objects: int = 4,
    min_scale: float = 0.15,
    max_scale: float = 0.42,
    max_overlap: float = 0.25,
    background: str = "textured",
    class_colours: bool = False,
) -> tuple[Image.Image, list[ShapeObject]]:
    """Draw detection image `index` of the world `seed`.

    Args:
        size: image side in pixels (square RGB image).
        classes: the shape classes that may appear.
        min_objects, max_objects: number of objects (inclusive range); an object that cannot be
            placed without covering more than `max_overlap` of another is skipped (rare).
        min_scale, max_scale: object height as a fraction of the image side.
        background: one of `BACKGROUNDS` ("plain": white).
        class_colours: draw each class in its `CLASS_COLOURS` colour (else a random `COLOURS` one).

    Returns:
        The RGB image and its objects (boxes in pixels, [x1, y1, x2, y2]).
    """
    rng = np.random.default_rng([seed, index, _STREAM_DETECTION])
    img = (
        _background(rng, size)
        if background == "textured"
        else Image.new("RGB", (size, size), (255, 255, 255))
    )
    draw = ImageDraw.Draw(img)
    colour_names = list(COLOURS)
    n = int(rng.integers(min_objects, max_objects + 1))
    objects: list[ShapeObject] = []
    for _ in range(n):
        shape = classes[int(rng.integers(len(classes)))]
        colour = colour_names[int(rng.integers(len(colour_names)))]
        obj_size = float(rng.uniform(min_scale, max_scale)) * size
        placed = _place(rng, shape, size, obj_size, [o.box for o in objects], max_overlap)
        if placed is None:
            continue
        poly, box = placed
        rgb = COLOURS[colour]
        if class_colours:
            colour, rgb = CLASS_COLOURS[shape]
        _draw(draw, poly, _jitter(rng, rgb), "filled", obj_size)
        box = [round(v, 2) for v in box]
        flat = [round(float(v), 2) for v in poly.reshape(-1)]
        objects.append(ShapeObject(shape, colour, box, flat, round(_poly_area(poly), 2)))
    if not objects:  # guarantee at least one object (only possible with extreme settings)
        shape = classes[0]
        poly = _shape_polygon(shape, size * min_scale, size / 2, size / 2, 1.0, 0.0)
        _draw(draw, poly, COLOURS["red"], "filled", size * min_scale)
        box = [round(float(v), 2) for v in (*poly.min(axis=0), *poly.max(axis=0))]
        objects.append(
            ShapeObject(
                shape, "red", box, [round(float(v), 2) for v in poly.reshape(-1)], round(_poly_area(poly), 2)
            )
        )
    return img, objects


def draw_classification(
    index: int,
    seed: int,
    size: int = 224,
    labels: Sequence[str] = tuple(CLASSIFICATION_CLASSES),
    distractors: int = 0,
) -> tuple[Image.Image, str]:
    """Draw classification image `index`: one dominant shape (40-75% of the side) + optional small distractors."""
    rng = np.random.default_rng([seed, index, _STREAM_CLASSIFICATION])
    img = _background(rng, size)
    draw = ImageDraw.Draw(img)
    label = labels[int(rng.integers(len(labels)))]
    shape, variant = CLASSIFICATION_CLASSES[label]
    colour = list(COLOURS)[int(rng.integers(len(COLOURS)))]
    obj_size = float(rng.uniform(0.4, 0.75)) * size
    (a_lo, a_hi), max_rot = _SHAPE_PARAMS[shape]
    aspect = float(rng.uniform(a_lo, a_hi))
    angle = 45.0 if variant == "rotated" else float(rng.uniform(-max_rot, max_rot))
    if variant == "rotated":
        obj_size /= math.sqrt(2)
    cx, cy = (float(v) for v in rng.uniform(0.4, 0.6, size=2) * size)
    poly = _shape_polygon(shape, obj_size, cx, cy, aspect, angle)
    shift = np.clip(poly.min(axis=0), 1, None) - poly.min(axis=0)
    shift += np.clip(size - 1 - poly.max(axis=0), None, 0)
    poly = poly + shift
    boxes = [
        [float(poly[:, 0].min()), float(poly[:, 1].min()), float(poly[:, 0].max()), float(poly[:, 1].max())]
    ]
    for _ in range(distractors):
        small = list(_OUTLINES)[int(rng.integers(len(_OUTLINES)))]
        placed = _place(rng, small, size, float(rng.uniform(0.08, 0.14)) * size, boxes, 0.0)
        if placed is not None:
            dpoly, dbox = placed
            boxes.append(dbox)
            _draw(
                draw,
                dpoly,
                _jitter(rng, COLOURS[list(COLOURS)[int(rng.integers(len(COLOURS)))]]),
                "filled",
                10,
            )
    _draw(draw, poly, _jitter(rng, COLOURS[colour]), "filled" if variant == "rotated" else variant, obj_size)
    return img, label


# --------------------------------------------------------------------------- referring expressions
def _describe(o: ShapeObject) -> str:
    return f"{o.colour} {o.shape}"


def _centre(o: ShapeObject) -> tuple[float, float]:
    return (o.box[0] + o.box[2]) / 2, (o.box[1] + o.box[3]) / 2


def referring_expressions(objects: Sequence[ShapeObject], size: int) -> list[tuple[str, int]]:
    """All unambiguous referring expressions for a scene: ``[(expression, object index), ...]``.

    An expression is emitted only when exactly one object satisfies it; comparative ones
    (largest, leftmost, ...) need a clear margin (area ratio >= 1.5; centre gap >= 10% of the side).
    """
    out: list[tuple[str, int]] = []
    n = len(objects)
    by = lambda key: [i for i in range(n) if key(objects[i])]  # noqa: E731
    for i, o in enumerate(objects):
        if len(by(lambda p, o=o: p.shape == o.shape and p.colour == o.colour)) == 1:
            out.append((f"the {o.colour} {o.shape}", i))
        if len(by(lambda p, o=o: p.shape == o.shape)) == 1:
            out.append((f"the {o.shape}", i))
        if len(by(lambda p, o=o: p.colour == o.colour)) == 1:
            out.append((f"the {o.colour} shape", i))
    if n >= 2:
        order = sorted(range(n), key=lambda i: objects[i].area, reverse=True)
        if objects[order[0]].area >= 1.5 * objects[order[1]].area:
            out.append(("the largest shape", order[0]))
        if objects[order[-2]].area >= 1.5 * objects[order[-1]].area:
            out.append(("the smallest shape", order[-1]))
        gap = 0.1 * size
        for axis, (low_word, high_word) in ((0, ("leftmost", "rightmost")), (1, ("topmost", "bottommost"))):
            pos = sorted(range(n), key=lambda i: _centre(objects[i])[axis])
            if _centre(objects[pos[1]])[axis] - _centre(objects[pos[0]])[axis] >= gap:
                out.append((f"the {low_word} shape", pos[0]))
            if _centre(objects[pos[-1]])[axis] - _centre(objects[pos[-2]])[axis] >= gap:
                out.append((f"the {high_word} shape", pos[-1]))
    # Colour-qualified superlatives among >= 2 objects of one colour.
    for colour in sorted({o.colour for o in objects}):
        same = sorted(by(lambda p, c=colour: p.colour == c), key=lambda i: objects[i].area, reverse=True)
        if len(same) >= 2 and objects[same[0]].area >= 1.5 * objects[same[1]].area:
            out.append((f"the largest {colour} shape", same[0]))
    # Spatial relations to a uniquely named anchor: the only object entirely left/right/above/below it.
    relations = (
        ("left of", lambda p, a: p.box[2] < a.box[0]),
        ("right of", lambda p, a: p.box[0] > a.box[2]),
        ("above", lambda p, a: p.box[3] < a.box[1]),
        ("below", lambda p, a: p.box[1] > a.box[3]),
    )
    for j, anchor in enumerate(objects):
        if len(by(lambda p, a=anchor: p.shape == a.shape and p.colour == a.colour)) != 1:
            continue
        for word, rel in relations:
            hits = [i for i in range(n) if i != j and rel(objects[i], anchor)]
            if len(hits) == 1:
                out.append((f"the shape {word} the {_describe(anchor)}", hits[0]))
    return out


def classification_labels(classes: Sequence[str] = ALL_CLASSES) -> list[str]:
    """Fine-grained classification labels whose shape family is among `classes` (detection names)."""
    return [
        label
        for label, (shape, _) in CLASSIFICATION_CLASSES.items()
        if _SHAPE_FAMILY.get(shape, shape) in classes
    ]


# --------------------------------------------------------------------------- counting
def draw_counting(
    index: int,
    seed: int,
    size: int = 224,
    classes: Sequence[str] = ALL_CLASSES,
    max_count: int = 6,
    max_distractors: int = 2,
    min_scale: float = 0.1,
    max_scale: float = 0.22,
    background: str = "textured",
) -> tuple[Image.Image, str, list[list[float]]]:
    """Draw counting image `index`: 0..`max_count` shapes of one asked category and up to
    `max_distractors` shapes of other categories (none when only one class is drawn).

    Returns the RGB image, the asked category and the boxes of its shapes (pixels, [x1, y1, x2, y2]).
    A shape that cannot be placed without overlap is skipped, so the count is the boxes' number.
    """
    rng = np.random.default_rng([seed, index, _STREAM_COUNTING])
    img = (
        _background(rng, size)
        if background == "textured"
        else Image.new("RGB", (size, size), (255, 255, 255))
    )
    draw = ImageDraw.Draw(img)
    category = classes[int(rng.integers(len(classes)))]
    others = [c for c in classes if c != category]
    n_target = int(rng.integers(0, max_count + 1))
    n_other = int(rng.integers(0, max_distractors + 1)) if others else 0
    wanted = [category] * n_target + [others[int(rng.integers(len(others)))] for _ in range(n_other)]
    order = rng.permutation(len(wanted))
    placed_boxes: list[list[float]] = []
    targets: list[list[float]] = []
    colour_names = list(COLOURS)
    for k in order:
        shape = wanted[int(k)]
        obj_size = float(rng.uniform(min_scale, max_scale)) * size
        placed = _place(rng, shape, size, obj_size, placed_boxes, 0.0)
        colour = colour_names[int(rng.integers(len(colour_names)))]
        if placed is None:
            continue
        poly, box = placed
        _draw(draw, poly, _jitter(rng, COLOURS[colour]), "filled", obj_size)
        box = [round(v, 2) for v in box]
        placed_boxes.append(box)
        if shape == category:
            targets.append(box)
    return img, category, targets


# --------------------------------------------------------------------------- OCR
def _font(size: int):
    """Pillow's built-in font at `size` pixels (its scalable FreeType face; the fixed bitmap face where
    Pillow has no FreeType)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ValueError, OSError, ImportError):
        return ImageFont.load_default()


def draw_ocr(
    index: int, seed: int, width: int = 224, height: int = 64, max_words: int = 3
) -> tuple[Image.Image, str]:
    """Draw OCR image `index`: 1..`max_words` words of `OCR_WORDS` in one line, dark text on a light
    noisy background (random size, position and colour). Returns the image and its text."""
    rng = np.random.default_rng([seed, index, _STREAM_OCR])
    base = rng.uniform(200, 250, size=3)
    noise = rng.normal(0, 6, size=(height, width, 3))
    img = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    n = int(rng.integers(1, max_words + 1))
    words = [OCR_WORDS[int(rng.integers(len(OCR_WORDS)))] for _ in range(n)]
    text = " ".join(words)
    font_px = int(rng.integers(max(8, height // 4), max(9, height // 2) + 1))
    font = _font(font_px)
    while True:  # shrink until the line fits the width
        x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
        if x1 - x0 <= width - 4 or font_px <= 6:
            break
        font_px -= 2
        font = _font(font_px)
    tw, th = x1 - x0, y1 - y0
    x = float(rng.uniform(2, max(2.0, width - tw - 2))) - x0
    y = float(rng.uniform(2, max(2.0, height - th - 2))) - y0
    ink = tuple(int(v) for v in rng.uniform(0, 90, size=3))
    draw.text((x, y), text, font=font, fill=ink)
    return img, text
