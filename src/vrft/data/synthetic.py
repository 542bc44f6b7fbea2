"""The synthetic shapes world: procedurally drawn images with COCO-style annotations, written to disk.

The pictures are drawn by `vrft.data.shapes` (classes, colours, outlines, scenes; re-exported here);
this module writes them (PNGs, the COCO instances JSON, records), in parts a later run can replace
one at a time (`SYNTH_PARTS`).

Each image has a noisy, textured background and 1..4 coloured shapes (8 classes, a base/novel split
like the paper's open-vocabulary COCO setting). Detection data is written as a standard COCO
instances JSON, so it flows through the same converter as real data (`vrft data convert coco`).
Optionally the world also emits classification records (one dominant shape per image, with
fine-grained pairs such as "square" vs "hollow square"), grounding records (referring
expressions that are unambiguous for their image), counting records (several shapes of one asked
category among distractors) and OCR records (rendered words, Pillow's built-in font: no download).
Videos (`temporal_grounding`) and image sets (`multi_image_grounding`) are drawn and written by
`vrft.data.video_world`; their parts are listed here in `SYNTH_PARTS` with the others.

Determinism: image ``i`` is drawn from ``numpy.random.default_rng([seed, i, stream])``, so the same
seed gives byte-identical PNGs and JSON, and image ``i`` is the same whatever the number of images.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from vrft.data.records import Record, save_records
from vrft.data.shapes import (  # noqa: F401 (the drawing API, re-exported: vrft.data.synthetic is the world's entry point)
    _STREAM_GROUNDING,
    ALL_CLASSES,
    BACKGROUNDS,
    BASE_CLASSES,
    CATEGORY_IDS,
    CLASS_COLOURS,
    CLASSIFICATION_CLASSES,
    CLASSIFICATION_DOMAIN,
    COLOURS,
    NOVEL_CLASSES,
    OCR_WORDS,
    SHAPE_SPLIT,
    ShapeObject,
    _draw,
    _jitter,
    _place,
    classification_labels,
    draw_classification,
    draw_counting,
    draw_ocr,
    draw_scene,
    referring_expressions,
)
from vrft.errors import UserError

logger = logging.getLogger(__name__)


# Bounds of `synthesize` (a side of 100000 px asked for a 37 GiB image): clear errors, not allocations.
MAX_SIZE = 4096
"""Largest image side in pixels (a 4096 x 4096 RGB image is 50 MB while drawn)."""
MAX_IMAGES = 1_000_000
"""Most detection (and classification) images one call draws."""
MAX_OBJECTS = 64
"""Most objects per detection image."""
MAX_WORKERS = 256
"""Most drawing processes."""


# --------------------------------------------------------------------------- writing
def _save_png(img: Image.Image, path: Path) -> None:
    from vrft.outputs import atomic_open

    with atomic_open(path, "wb", encoding=None) as fh:  # a killed run never leaves half a PNG
        img.save(fh, format="PNG", compress_level=1)


def _render_detection(job: tuple) -> tuple[int, list[ShapeObject]]:
    out, index, seed, size, classes, min_objects, max_objects, max_overlap, background, scale, by_class = job
    img, objects = draw_scene(
        index, seed, size, classes, min_objects, max_objects, *scale, max_overlap=max_overlap,
        background=background, class_colours=by_class,
    )  # fmt: skip
    _save_png(img, out / f"images/{index:06d}.png")
    return index, objects


def _render_classification(job: tuple) -> tuple[int, str]:
    out, index, seed, size, labels, distractors = job
    img, label = draw_classification(index, seed, size, labels, distractors)
    _save_png(img, out / f"classification/{index:06d}.png")
    return index, label


def _run_jobs(fn, jobs: list, workers: int | None):
    """Run `fn` over `jobs` in order; in a process pool ('spawn', safe beside torch) when worth it."""
    if workers is None or workers <= 1 or len(jobs) < 2:
        return map(fn, jobs)
    import concurrent.futures
    import multiprocessing

    pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        return list(pool.map(fn, jobs, chunksize=max(1, len(jobs) // (workers * 8))))
    finally:
        pool.shutdown()


def _resolve_classes(classes: Sequence[str] | None, split: str) -> tuple[str, ...]:
    if classes is None:
        if split == "all":
            return ALL_CLASSES
        if split not in SHAPE_SPLIT:
            raise UserError(f"unknown split {split!r} (use one of: base, novel, all)")
        return SHAPE_SPLIT[split]
    unknown = [c for c in classes if c not in CATEGORY_IDS]
    if unknown or not classes:
        raise UserError(f"unknown shape classes {unknown} (known: {', '.join(ALL_CLASSES)})")
    return tuple(classes)


def check_bounds(
    *,
    n_images: int,
    size: int,
    min_objects: int = 1,
    max_objects: int = 1,
    classification: int = 0,
    start_index: int = 0,
    workers: int | None = None,
    images_flag: str = "--images",
) -> None:
    """UserError naming the option (the CLI's flag) for any count or size outside its bound."""
    rules = [
        (0 <= n_images <= MAX_IMAGES, f"{images_flag} {n_images}: must be 0..{MAX_IMAGES}"),
        (32 <= size <= MAX_SIZE, f"--size {size}: the image side must be 32..{MAX_SIZE} pixels"),
        (
            1 <= min_objects <= max_objects <= MAX_OBJECTS,
            f"--min-objects {min_objects} / --max-objects {max_objects}: need 1 <= min <= max <= {MAX_OBJECTS}",
        ),
        (
            0 <= classification <= MAX_IMAGES,
            f"--classification {classification}: must be 0..{MAX_IMAGES} images",
        ),
        (
            0 <= start_index <= 10**9,
            f"--start-index {start_index}: must be 0..{10**9} (image indices are not negative)",
        ),
        (workers is None or 0 <= workers <= MAX_WORKERS, f"--workers {workers}: must be 1..{MAX_WORKERS}"),
    ]
    problems = [msg for ok, msg in rules if not ok]
    if problems:
        raise UserError("; ".join(problems))


def synthesize(
    out_dir: str | os.PathLike,
    n_images: int,
    seed: int = 0,
    *,
    size: int = 224,
    classes: Sequence[str] | None = None,
    split: str = "all",
    min_objects: int = 1,
    max_objects: int = 4,
    max_overlap: float = 0.25,
    classification: int = 0,
    classification_distractors: int = 0,
    grounding: bool = False,
    grounding_per_image: int = 1,
    start_index: int = 0,
    workers: int | None = None,
    background: str = "textured",
    min_scale: float = 0.15,
    max_scale: float = 0.42,
    class_colours: bool = False,
) -> Path:
    """Draw the shapes world into `out_dir` and return the path of its COCO `instances.json`.

    Writes ``images/{index:06d}.png`` and ``instances.json`` (images, annotations with bbox xywh,
    area, iscrowd=0, polygon segmentation, category_id; categories with ``name`` and ``split``).
    With `classification` > 0 also writes that many images under ``classification/`` and the records
    ``classification.jsonl``; with `grounding` also ``grounding.jsonl`` (referring expressions on the
    detection images).

    Args:
        n_images: number of detection images (image ids are ``start_index + i + 1``).
        seed: world seed; image i depends only on (seed, start_index + i).
        size: square image side in pixels (the demo uses 112).
        classes: shape classes to draw (default: those of `split`); ids are fixed per class.
        split: "base", "novel" or "all" (used when `classes` is None).
        min_objects, max_objects: objects per image (inclusive).
        max_overlap: max fraction of the smaller of two boxes that their intersection may cover.
        classification: number of classification images (0: none). Labels are the fine-grained
            classes of `CLASSIFICATION_CLASSES` whose shape family is in `classes`.
        grounding_per_image: expressions per image (fewer if fewer are unambiguous).
        start_index: index of the first image (to draw disjoint test sets from the same world).
        workers: processes used to draw (default 1; a 'spawn' pool, so call from under
            ``if __name__ == "__main__":``); the output does not depend on it.
        background: detection images' background, one of `BACKGROUNDS` ("plain": white).
        min_scale, max_scale: detection objects' height as a fraction of the image side.
        class_colours: draw each class in its own colour (`CLASS_COLOURS`) instead of a random one.
    """
    if background not in BACKGROUNDS:
        raise UserError(f"unknown background {background!r} (use one of: {', '.join(BACKGROUNDS)})")
    check_bounds(
        n_images=n_images, size=size, min_objects=min_objects, max_objects=max_objects,
        classification=classification, start_index=start_index, workers=workers,
    )  # fmt: skip
    from vrft.inputs import normalize_seed

    seed = normalize_seed(seed)
    if not (0.0 < min_scale <= max_scale <= 0.9):
        raise UserError(f"need 0 < min_scale <= max_scale <= 0.9 (got {min_scale}, {max_scale})")
    drawn = _resolve_classes(classes, split)
    from vrft.outputs import OutputDir, check_dir_output

    out = check_dir_output(out_dir)
    names = detection_names(n_images, start_index, classification, grounding)
    with OutputDir(out, "data synth") as d:
        # the detection part of an earlier synth here is removed first (no stale image is left
        # behind); its other parts stay unless this run draws them again
        claim_parts(d, names, ["detection"])
        return _synthesize(
            out, n_images, seed, size, drawn, min_objects, max_objects, max_overlap, classification,
            classification_distractors, grounding, grounding_per_image, start_index, workers, background,
            min_scale, max_scale, class_colours,
        )  # fmt: skip


SYNTH_PARTS: dict[str, tuple[str, ...]] = {
    "detection": ("instances.json", "images", "detection.jsonl", "grounding.jsonl"),
    "classification": ("classification.jsonl", "classification"),
    "counting": ("counting.jsonl", "counting"),
    "ocr": ("ocr.jsonl", "ocr"),
    "video": ("temporal_grounding.jsonl", "video"),  # vrft.data.video_world.synthesize_video
    "multi_image": ("multi_image_grounding.jsonl", "multi_image"),  # ... .synthesize_multi_image
}
"""The parts of a synth directory, by the first component of the names each writes. A synth run
replaces the parts it draws (all of their earlier files) and keeps the others: `vrft data synth
--images 0 --counting 32` into a folder holding the detection world adds counting and keeps the
rest (grounding and detection records derive from the detection images: they are that part's)."""


def synth_part(name: str) -> str | None:
    """The part (`SYNTH_PARTS`) a written name (relative to the synth directory) belongs to."""
    head = name.split("/", 1)[0]
    return next((part for part, heads in SYNTH_PARTS.items() if head in heads), None)


def claim_parts(d, names: Sequence[str], parts: Sequence[str]) -> None:
    """Take `names` in the synth directory `d` (a locked `vrft.outputs.OutputDir`): refuse files vrft
    did not write, remove every earlier synth file of `parts`, then list `names` as synth's."""
    d.refuse_foreign(names)
    d.clean("data synth", only=lambda e: synth_part(e) in parts)
    d.claim(names)


def detection_names(n_images: int, start_index: int, classification: int, grounding: bool) -> list[str]:
    """What `synthesize` writes, relative to its output directory (its manifest entries)."""
    names = ["instances.json"] + [f"images/{start_index + i:06d}.png" for i in range(n_images)]
    if grounding:
        names.append("grounding.jsonl")
    if classification:
        names += classification_names(classification, start_index)
    return names


def classification_names(n_images: int, start_index: int = 0) -> list[str]:
    """What `synthesize_classification` writes (manifest entries)."""
    return ["classification.jsonl"] + [f"classification/{start_index + i:06d}.png" for i in range(n_images)]


def part_names(part: str, n_images: int, start_index: int = 0) -> list[str]:
    """What `synthesize_counting` (part "counting") or `synthesize_ocr` ("ocr") writes."""
    return [f"{part}.jsonl"] + [f"{part}/{start_index + i:06d}.png" for i in range(n_images)]


def _synthesize(
    out, n_images, seed, size, drawn, min_objects, max_objects, max_overlap, classification,
    classification_distractors, grounding, grounding_per_image, start_index, workers, background,
    min_scale, max_scale, class_colours,
) -> Path:  # fmt: skip
    (out / "images").mkdir(parents=True, exist_ok=True)
    images, annotations, grounding_records = [], [], []
    ann_id = 0
    jobs = [
        (
            out,
            start_index + i,
            seed,
            size,
            drawn,
            min_objects,
            max_objects,
            max_overlap,
            background,
            (min_scale, max_scale),
            class_colours,
        )
        for i in range(n_images)
    ]
    for index, objects in _run_jobs(_render_detection, jobs, workers):
        file_name = f"images/{index:06d}.png"
        image_id = index + 1
        images.append({"id": image_id, "file_name": file_name, "width": size, "height": size})
        for o in objects:
            ann_id += 1
            x1, y1, x2, y2 = o.box
            annotations.append(
                {
                    "id": ann_id,
                    "image_id": image_id,
                    "category_id": CATEGORY_IDS[o.shape],
                    "bbox": [x1, y1, round(x2 - x1, 2), round(y2 - y1, 2)],
                    "area": o.area,
                    "iscrowd": 0,
                    "segmentation": [o.polygon],
                    "attributes": {"color": o.colour},
                }
            )
        if grounding:
            rng = np.random.default_rng([seed, index, _STREAM_GROUNDING])
            candidates = referring_expressions(objects, size)
            if candidates:
                k = min(grounding_per_image, len(candidates))
                for j, c in enumerate(
                    sorted(int(v) for v in rng.choice(len(candidates), size=k, replace=False))
                ):
                    text, target = candidates[c]
                    grounding_records.append(
                        Record(
                            id=f"shapes-{image_id}-g{j}",
                            task="grounding",
                            image=file_name,
                            width=size,
                            height=size,
                            image_id=image_id,
                            expression=text,
                            boxes=[objects[target].box],
                            meta={"target_class": objects[target].shape},
                        )
                    )
    categories = [
        {
            "id": CATEGORY_IDS[c],
            "name": c,
            "supercategory": "shape",
            "split": "base" if c in BASE_CLASSES else "novel",
        }
        for c in ALL_CLASSES
        if c in drawn
    ]
    instances = {
        "info": {
            "description": "vrft synthetic shapes world",
            "seed": seed,
            "size": size,
            "classes": list(drawn),
            "min_objects": min_objects,
            "max_objects": max_objects,
            "background": background,
            "class_colours": class_colours,
        },
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }
    from vrft.outputs import atomic_write_text

    path = atomic_write_text(
        out / "instances.json", json.dumps(instances, indent=None, separators=(",", ":")) + "\n"
    )
    if grounding:
        save_records(grounding_records, out / "grounding.jsonl")
    if classification:
        synthesize_classification(
            out,
            classification,
            seed,
            size=size,
            classes=drawn,
            distractors=classification_distractors,
            start_index=start_index,
            workers=workers,
        )
    logger.info("synthesised %d images (%d objects) into %s", n_images, len(annotations), out)
    return path


def synthesize_classification(
    out_dir: str | os.PathLike,
    n_images: int,
    seed: int = 0,
    *,
    size: int = 224,
    classes: Sequence[str] = ALL_CLASSES,
    distractors: int = 0,
    start_index: int = 0,
    workers: int | None = None,
) -> Path:
    """Write `n_images` classification images under ``out_dir/classification/`` and their records.

    Returns the path of ``out_dir/classification.jsonl``. Each record's `classes` is the full label
    list and `domain` is ``{"object": "shape", "attribute": "type"}``.
    """
    check_bounds(n_images=n_images, size=size, start_index=start_index, workers=workers)
    from vrft.inputs import normalize_seed
    from vrft.outputs import OutputDir

    seed = normalize_seed(seed)
    out = Path(out_dir)
    with OutputDir(out, "data synth") as d:  # re-entrant inside `synthesize`
        claim_parts(d, classification_names(n_images, start_index), ["classification"])
        return _synthesize_classification(
            out, n_images, seed, size, classes, distractors, start_index, workers
        )


def _synthesize_classification(out, n_images, seed, size, classes, distractors, start_index, workers) -> Path:
    (out / "classification").mkdir(parents=True, exist_ok=True)
    labels = classification_labels(classes)
    records = []
    jobs = [(out, start_index + i, seed, size, labels, distractors) for i in range(n_images)]
    for index, label in _run_jobs(_render_classification, jobs, workers):
        rel = f"classification/{index:06d}.png"
        records.append(
            Record(
                id=f"shapes-cls-{index}",
                task="classification",
                image=rel,
                width=size,
                height=size,
                image_id=index + 1,
                label=label,
                classes=list(labels),
                domain=dict(CLASSIFICATION_DOMAIN),
            )
        )
    return save_records(records, out / "classification.jsonl")


def synthesize_counting(
    out_dir: str | os.PathLike,
    n_images: int,
    seed: int = 0,
    *,
    size: int = 224,
    classes: Sequence[str] = ALL_CLASSES,
    max_count: int = 6,
    max_distractors: int = 2,
    background: str = "textured",
    start_index: int = 0,
) -> Path:
    """Write `n_images` counting images under ``out_dir/counting/`` and their records
    ``out_dir/counting.jsonl`` (task ``counting``: the asked ``category`` and the ``boxes`` of its
    shapes; the count is their number). Returns the records path."""
    check_bounds(n_images=n_images, size=size, start_index=start_index, images_flag="--counting")
    if not (0 <= max_count <= MAX_OBJECTS and 0 <= max_distractors <= MAX_OBJECTS):
        raise UserError(f"need 0 <= max_count, max_distractors <= {MAX_OBJECTS}")
    from vrft.inputs import normalize_seed

    seed = normalize_seed(seed)
    if n_images < 0 or max_count < 0 or max_distractors < 0:
        raise UserError("need n_images >= 0, max_count >= 0 and max_distractors >= 0")
    if size < 32:
        raise UserError(f"image size {size} is too small (use at least 32 pixels)")
    if background not in BACKGROUNDS:
        raise UserError(f"unknown background {background!r} (use one of: {', '.join(BACKGROUNDS)})")
    drawn = _resolve_classes(classes, "all")
    from vrft.outputs import OutputDir

    out = Path(out_dir)
    with OutputDir(out, "data synth") as d:  # re-entrant inside `vrft data synth`
        claim_parts(d, part_names("counting", n_images, start_index), ["counting"])
        return _synthesize_counting(out, n_images, seed, size, drawn, max_count, max_distractors, background,
                                    start_index)  # fmt: skip


def _synthesize_counting(
    out, n_images, seed, size, drawn, max_count, max_distractors, background, start_index
):
    (out / "counting").mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(n_images):
        index = start_index + i
        img, category, boxes = draw_counting(
            index, seed, size, drawn, max_count, max_distractors, background=background
        )
        rel = f"counting/{index:06d}.png"
        _save_png(img, out / rel)
        records.append(
            Record(
                id=f"shapes-count-{index}",
                task="counting",
                image=rel,
                width=size,
                height=size,
                image_id=index + 1,
                category=category,
                boxes=boxes,
            )
        )
    return save_records(records, out / "counting.jsonl")


def synthesize_ocr(
    out_dir: str | os.PathLike,
    n_images: int,
    seed: int = 0,
    *,
    width: int = 224,
    height: int = 64,
    max_words: int = 3,
    start_index: int = 0,
) -> Path:
    """Write `n_images` OCR images under ``out_dir/ocr/`` and their records ``out_dir/ocr.jsonl``
    (task ``ocr``, ``text`` = the rendered words). Returns the records path."""
    check_bounds(n_images=n_images, size=max(32, width), start_index=start_index, images_flag="--ocr")
    check_bounds(n_images=0, size=max(32, height), images_flag="--ocr")
    from vrft.inputs import normalize_seed

    seed = normalize_seed(seed)
    if n_images < 0 or max_words < 1:
        raise UserError("need n_images >= 0 and max_words >= 1")
    if width < 32 or height < 16:
        raise UserError(f"OCR image {width}x{height} is too small (use at least 32x16 pixels)")
    from vrft.outputs import OutputDir

    out = Path(out_dir)
    with OutputDir(out, "data synth") as d:  # re-entrant inside `vrft data synth`
        claim_parts(d, part_names("ocr", n_images, start_index), ["ocr"])
        return _synthesize_ocr(out, n_images, seed, width, height, max_words, start_index)


def _synthesize_ocr(out, n_images, seed, width, height, max_words, start_index):
    (out / "ocr").mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(n_images):
        index = start_index + i
        img, text = draw_ocr(index, seed, width, height, max_words)
        rel = f"ocr/{index:06d}.png"
        _save_png(img, out / rel)
        records.append(
            Record(
                id=f"shapes-ocr-{index}",
                task="ocr",
                image=rel,
                width=width,
                height=height,
                image_id=index + 1,
                text=text,
            )
        )
    return save_records(records, out / "ocr.jsonl")
