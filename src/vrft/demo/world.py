"""The demo's data: the synthetic shapes world (white background), each part drawn with its own seed.

- ``base_train``: scenes of 1-3 BASE shapes (sizes ``base_train_min_scale``..``base_train_max_scale``
  of the side); every present base name asked, plus as many absent ones ('No Objects'). Experiment
  (a) trains on these.
- ``det_pool`` / ``det_val`` / ``det_test``: one NOVEL shape per image (filled, random colour, sized
  ``min_scale``..``max_scale`` of the side), every novel name asked on every image (the
  all-categories protocol: absent ones must be answered 'No Objects'). The few-shot detection sets
  are drawn from the pool; ``det_val`` is for tuning only.
- ``cls_pool`` / ``cls_val`` / ``cls_test``: one NOVEL shape per image in the same filled look (25-60 %
  of the side, `draw_single`), as classification records (the answer is a shape name; every one of
  the 8 names is a valid answer).

Detection parts go through the COCO converter (`vrft.data.coco.convert_coco`), as COCO itself would.
The shipped base model saw the novel names only on black outlines (`vrft.demo.base`): the filled look
of these parts is new to it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path

from vrft.data.coco import convert_coco
from vrft.data.records import Record, save_records
from vrft.data.synthetic import ALL_CLASSES, BASE_CLASSES, NOVEL_CLASSES, synthesize
from vrft.demo.settings import WorldSettings
from vrft.outputs import atomic_open

logger = logging.getLogger(__name__)

# Seed offsets per part (world seed * 10 + offset + 1000), so the parts never share an image (and never
# the base model's own images, drawn from seeds below 1000).
SEED_OFFSETS: dict[str, int] = {
    "base_train": 0, "det_pool": 1, "det_test": 2, "det_val": 3, "cls_pool": 4, "cls_val": 5, "cls_test": 6,
}  # fmt: skip


def part_seed(world: WorldSettings, part: str) -> int:
    return 1000 + world.seed * 10 + SEED_OFFSETS[part]


@dataclass(frozen=True)
class World:
    """Record files of the parts (JSONL, image paths relative to them), by part name."""

    parts: dict[str, Path]

    def __getitem__(self, part: str) -> Path:
        return self.parts[part]


# The user text of a detection record (a record prompt template, see vrft.tasks.base.custom_prompt): the
# tiny model pays for every prompt token; the answer format is the paper's.
SHORT_PROMPT = "Detect every {category}."


def with_prompts(records: list[Record], style: str = "short") -> list[Record]:
    """`records` with their user text set for `style` ('short': `SHORT_PROMPT`; 'paper': unchanged)."""
    if style == "paper":
        return records
    return [replace(r, prompt=SHORT_PROMPT) for r in records]


def novel_records(instances: Path, seed: int) -> list[Record]:
    """Every novel category asked on every image holding a novel shape (the all-categories protocol)."""
    records = convert_coco(instances, categories=list(NOVEL_CLASSES), negative_ratio=math.inf, seed=seed)
    keep = {r.image_id for r in records if r.boxes}
    return [r for r in records if r.image_id in keep]


def build_world(world: WorldSettings, out_dir: str | Path, parts: tuple[str, ...] | None = None) -> World:
    """Draw the parts (default: all) under `out_dir`/<part>/ and write their records."""
    out = Path(out_dir)
    size, paths = world.image_size, {}
    wanted = parts or tuple(SEED_OFFSETS)
    for part in wanted:
        seed, d = part_seed(world, part), out / part
        n = getattr(world, f"{part}_images")
        if part == "base_train":
            inst = synthesize(d, n, seed=seed, size=size, classes=BASE_CLASSES, min_objects=1, max_objects=3,
                              background="plain", min_scale=world.base_train_min_scale,
                              max_scale=world.base_train_max_scale)  # fmt: skip
            recs = convert_coco(inst, categories=list(BASE_CLASSES), negative_ratio=1.0, seed=seed)
            paths[part] = save_records(with_prompts(recs), d / "records.jsonl")
        elif part.startswith("det_"):
            inst = synthesize(d, n, seed=seed, size=size, classes=NOVEL_CLASSES, min_objects=1, max_objects=1,
                              background="plain", min_scale=world.min_scale, max_scale=world.max_scale)  # fmt: skip
            paths[part] = save_records(with_prompts(novel_records(inst, seed)), d / "records.jsonl")
        else:
            looks = {c: "filled" for c in NOVEL_CLASSES}
            paths[part] = classification_part(d, n, seed, size, looks, id_prefix=part)
        logger.info("world part %s: %d images", part, n)
    return World(paths)


# ------------------------------------------------------------------------------ classification images
# Looks of a single shape: 'filled' (a random colour, as in the few-shot and test images), 'outline'
# (a black outline only: the look in which the shipped base learned the NOVEL names) and 'any' (either).
LOOKS = ("filled", "outline", "any")
CLASSIFY_PROMPT = "What shape is this?"
CLASS_DOMAIN = {"object": "shape", "attribute": "type"}


def draw_single(
    index: int, seed: int, size: int, shape: str, look: str, scale: tuple[float, float] = (0.25, 0.6)
) -> tuple[object, list[float]]:
    """One shape of class `shape` on white, `scale` (25-60 %) of the side, in `look`; returns (PIL image,
    box in pixels)."""
    import numpy as np
    from PIL import Image, ImageDraw

    from vrft.data import synthetic as syn

    rng = np.random.default_rng([seed, index, 7])
    if look == "any":
        look = "filled" if rng.random() < 0.5 else "outline"
    img = Image.new("RGB", (size, size), (255, 255, 255))
    placed = None
    while placed is None:
        obj = float(rng.uniform(*scale)) * size
        placed = syn._place(rng, shape, size, obj, [], 0.0)
    poly, box = placed
    if look == "outline":
        fill, variant = syn.COLOURS["black"], "hollow"
    else:
        names = [c for c in syn.COLOURS if c != "white"]
        fill, variant = syn._jitter(rng, syn.COLOURS[names[int(rng.integers(len(names)))]]), "filled"
    syn._draw(ImageDraw.Draw(img), poly, fill, variant, obj)
    return img, [round(v, 2) for v in box]


def classification_part(
    out_dir: str | Path, n_images: int, seed: int, size: int, looks: dict[str, str], id_prefix: str = "cls"
) -> Path:
    """`n_images` single-shape images, classes cycling over `looks` (class -> look), and their
    classification records (`CLASSIFY_PROMPT`, every shape name a valid class); returns the JSONL path."""
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    classes = list(looks)
    records = []
    for i in range(n_images):
        shape = classes[i % len(classes)]
        img, _ = draw_single(i, seed, size, shape, looks[shape])
        rel = f"images/{i:06d}.png"
        with atomic_open(out / rel, "wb", encoding=None) as fh:
            img.save(fh, format="PNG", compress_level=1)
        records.append(
            Record(id=f"{id_prefix}-{seed}-{i}", task="classification", image=rel, width=size, height=size,
                   image_id=i + 1, label=shape, classes=list(ALL_CLASSES), domain=dict(CLASS_DOMAIN),
                   prompt=CLASSIFY_PROMPT)
        )  # fmt: skip
    return save_records(records, out / "records.jsonl")
