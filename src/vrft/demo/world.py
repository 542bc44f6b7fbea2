"""The demo's data: the synthetic shapes world drawn three times and read through the COCO converter.

- ``base``: images with BASE shapes only; records ask for every base shape present (positives) plus
  sampled 'No Objects' prompts for absent base shapes. The warm start learns from these.
- ``pool``: the images the novel k-shot sets are sampled from (`vrft.data.fewshot`).
- ``test``: held-out images for the evaluation. With ``world.novel_prompts: present`` (default) each
  image is asked for the novel categories it holds; with ``all`` every novel category is asked (the
  all-categories protocol) and absent ones must be answered 'No Objects'.

Pool and test images hold novel shapes (and base shapes too with ``world.novel_scenes: all``); an
image without any novel shape is dropped from both. Each part has its own world seed, so no image is
shared between them.
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

logger = logging.getLogger(__name__)

# Offsets of the world seed per part (so the parts never share an image).
SEED_OFFSETS: dict[str, int] = {"base": 0, "pool": 1, "test": 2}


@dataclass(frozen=True)
class World:
    """Record files of the three parts (JSONL, image paths relative to them)."""

    base: Path
    pool: Path
    test: Path
    base_classes: tuple[str, ...] = BASE_CLASSES
    novel_classes: tuple[str, ...] = NOVEL_CLASSES


def draw_part(world: WorldSettings, part: str, out_dir: Path, n_images: int) -> Path:
    """Synthesise one part into `out_dir` (PNGs + COCO instances.json); returns the instances path."""
    classes = (
        BASE_CLASSES if part == "base" else (NOVEL_CLASSES if world.novel_scenes == "novel" else ALL_CLASSES)
    )
    return synthesize(
        out_dir,
        n_images,
        seed=world.seed * 10 + SEED_OFFSETS[part],
        size=world.image_size,
        classes=classes,
        min_objects=world.min_objects,
        max_objects=world.max_objects,
        background=world.background,
        min_scale=world.min_scale,
        max_scale=world.max_scale,
        class_colours=world.colours == "by_class",
    )


# The 'short' user text of a detection record (world.prompt; a record prompt template, see
# vrft.tasks.base.custom_prompt); 'paper' keeps the task's template.
SHORT_PROMPT = "Detect every {category}."


def with_prompts(records: list[Record], style: str) -> list[Record]:
    """`records` with their user text set for `style` ('short': `SHORT_PROMPT`; 'paper': unchanged)."""
    if style == "paper":
        return records
    return [replace(r, prompt=SHORT_PROMPT) for r in records]


def novel_records(instances: Path, seed: int, prompts: str = "all") -> list[Record]:
    """The novel-category prompts of the images holding at least one novel shape: every novel category
    (`prompts` 'all') or only those present ('present')."""
    negatives = math.inf if prompts == "all" else 0
    records = convert_coco(instances, categories=list(NOVEL_CLASSES), negative_ratio=negatives, seed=seed)
    keep = {r.image_id for r in records if r.boxes}
    return [r for r in records if r.image_id in keep]


def build_world(world: WorldSettings, out_dir: str | Path) -> World:
    """Draw and convert the three parts under `out_dir` (``base/``, ``pool/``, ``test/``)."""
    out = Path(out_dir)
    base_json = draw_part(world, "base", out / "base", world.base_images)
    base = convert_coco(
        base_json, categories=list(BASE_CLASSES), negative_ratio=world.base_negative_ratio, seed=world.seed
    )
    base = with_prompts(base, world.prompt)
    paths = {"base": save_records(base, out / "base" / "records.jsonl")}
    for part, n in (("pool", world.pool_images), ("test", world.test_images)):
        records = with_prompts(
            novel_records(draw_part(world, part, out / part, n), world.seed, world.novel_prompts),
            world.prompt,
        )
        paths[part] = save_records(records, out / part / "records.jsonl")
        logger.info(
            "%s: %d images with novel shapes, %d (image, category) prompts, %d with objects",
            part, len({r.image_id for r in records}), len(records), sum(1 for r in records if r.boxes),
        )  # fmt: skip
    logger.info(
        "base: %d warm-start prompts (%d 'No Objects')", len(base), sum(1 for r in base if not r.boxes)
    )
    return World(base=paths["base"], pool=paths["pool"], test=paths["test"])
