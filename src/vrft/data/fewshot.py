"""Few-shot sampling (k images per class, nested over k) and train/test splits by image.

Few-shot: for every class, the distinct images that show it are put in a seeded random order
(seeded by the run seed AND the class name, so adding a class does not change another's picks); the
k-shot set takes the first k images of each class. Hence the 1-shot set is inside the 2-shot set,
and so on. A class is:
- detection: the category of a record with at least one box (the image's record for that category
  is included; with ``keep_negatives`` also the image's "No Objects" records of the sampled classes);
- classification: the label;
- counting: the category (every record, also those with 0 objects);
- grounding, OCR: a single class (k images overall).

Splits assign whole IMAGES to train or test, so no image is in both (a video, or an ordered image
list, counts as one visual: records of the same video or the same image list stay together).
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vrft.data.records import Record, save_records
from vrft.errors import DataError, UserError
from vrft.inputs import normalize_seed

logger = logging.getLogger(__name__)


def image_key(record: Record) -> str:
    """Identity of what a record shows: its image's resolved path (records of one image share it);
    for an ``images`` record its image paths in order (joined by a newline), for a ``video`` record
    the video's path (records of one video share it)."""
    if record.images is not None or record.video is not None:
        return "\n".join(str(part.path) for part in record.visual_parts())
    return str(record.image_path) if record.image_path is not None else record.image


def class_of(record: Record) -> str | None:
    """The class a record counts for in few-shot sampling (None: not a shot, e.g. a negative)."""
    if record.task == "detection":
        return record.category if record.boxes else None
    if record.task == "classification":
        return record.label
    if record.task == "counting":
        return record.category  # an image with 0 objects is a shot too: counting 0 is an answer
    return "*"


def _class_rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([normalize_seed(seed), zlib.crc32(name.encode("utf-8"))])


def sample_fewshot(
    records: Sequence[Record],
    shots: Sequence[int],
    seed: int = 0,
    *,
    classes: Sequence[str] | None = None,
    keep_negatives: bool = False,
) -> tuple[dict[int, list[Record]], dict[str, Any]]:
    """Nested k-shot subsets of `records`.

    Args:
        records: records of one task.
        shots: the k values (e.g. 1, 2, 4, 8, 16); each is a positive integer.
        seed: sampling seed.
        classes: restrict to these classes (default: every class found).
        keep_negatives: detection only: also include the chosen images' "No Objects" records for
            the sampled classes.

    Returns:
        ``({k: records in file order}, manifest)``; the manifest lists, per class, the images in
        pick order, how many were available, and the counts per k.
    """
    shots = sorted(set(int(k) for k in shots))
    if not shots or shots[0] < 1:
        raise UserError(f"--shots must be positive integers, got {shots}")
    tasks = sorted({r.task for r in records})
    if len(tasks) != 1:
        raise DataError(
            f"few-shot sampling needs records of one task, got {tasks or 'none'} (filter the file first)"
        )
    by_class: dict[str, dict[str, None]] = defaultdict(dict)  # class -> distinct image keys (ordered set)
    for r in records:
        c = class_of(r)
        if c is not None:
            by_class[c][image_key(r)] = None
    if classes is not None:
        unknown = [c for c in classes if c not in by_class]
        if unknown:
            raise DataError(f"classes with no positive records: {unknown} (known: {sorted(by_class)})")
        by_class = {c: by_class[c] for c in classes}
    if not by_class:
        raise DataError("no positive records to sample shots from")
    kmax = shots[-1]
    order: dict[str, list[str]] = {}
    for c in sorted(by_class):
        keys = sorted(by_class[c])
        perm = _class_rng(seed, c).permutation(len(keys))
        order[c] = [keys[i] for i in perm[:kmax]]
    short = {c: len(by_class[c]) for c in order if len(by_class[c]) < kmax}
    if short:
        logger.warning("classes with fewer than %d images (all of them are used): %s", kmax, short)
    subsets: dict[int, list[Record]] = {}
    counts: dict[str, Any] = {}
    for k in shots:
        chosen = {(c, key) for c, keys in order.items() for key in keys[:k]}
        chosen_images = {key for _, key in chosen}
        keep = []
        for r in records:
            c = class_of(r)
            if (c, image_key(r)) in chosen:
                keep.append(r)
            elif (
                keep_negatives
                and c is None
                and r.task == "detection"
                and r.category in order
                and image_key(r) in chosen_images
            ):
                keep.append(r)
        subsets[k] = keep
        counts[str(k)] = {
            "records": len(keep),
            "images": len({image_key(r) for r in keep}),
            "per_class": {c: min(k, len(keys)) for c, keys in order.items()},
        }
    manifest = {
        "task": tasks[0],
        "seed": seed,
        "shots": shots,
        "keep_negatives": keep_negatives,
        "classes": {c: {"available_images": len(by_class[c]), "picked_images": order[c]} for c in order},
        "short_classes": short,
        "counts": counts,
    }
    return subsets, manifest


def write_fewshot(
    records_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    shots: Sequence[int],
    seed: int = 0,
    *,
    classes: Sequence[str] | None = None,
    keep_negatives: bool = False,
) -> Path:
    """Load records, sample nested k-shot sets, write ``out_dir/{k}shot.jsonl`` + ``manifest.json``.

    `out_dir` is locked while writing (`vrft.outputs.OutputDir`); the k-shot files of an earlier
    `fewshot` run there are replaced (none is left behind), other files are never touched.
    """
    from vrft.data.records import load_records
    from vrft.outputs import OutputDir, atomic_write_text, check_dir_output

    names = [f"{k}shot.jsonl" for k in dict.fromkeys(shots)] + ["manifest.json"]
    out = check_dir_output(out_dir, inputs=[records_path], writes=names)
    records = load_records(records_path)
    subsets, manifest = sample_fewshot(records, shots, seed, classes=classes, keep_negatives=keep_negatives)
    manifest["source"] = str(Path(records_path).resolve())
    manifest["files"] = {}
    with OutputDir(out, "data fewshot") as d:
        d.claim(names, clean=True)
        for k, recs in subsets.items():
            save_records(recs, out / f"{k}shot.jsonl")
            manifest["files"][str(k)] = f"{k}shot.jsonl"
        path = atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return path


def split_by_image(
    records: Sequence[Record], test_fraction: float, seed: int = 0
) -> tuple[list[Record], list[Record]]:
    """Split records into (train, test) so that no image appears in both.

    ``round(test_fraction x #images)`` images (seeded choice) go to test; records keep file order.
    """
    if not 0.0 <= test_fraction <= 1.0:
        raise UserError(f"--test-fraction must be in [0, 1], got {test_fraction}")
    keys = sorted({image_key(r) for r in records})
    n_test = int(round(test_fraction * len(keys)))
    perm = np.random.default_rng(normalize_seed(seed)).permutation(len(keys))
    test_keys = {keys[i] for i in perm[:n_test]}
    train = [r for r in records if image_key(r) not in test_keys]
    test = [r for r in records if image_key(r) in test_keys]
    return train, test


def write_split(
    records_path: str | os.PathLike, out_dir: str | os.PathLike, test_fraction: float, seed: int = 0
) -> tuple[Path, Path]:
    """Load records, split by image, write ``out_dir/train.jsonl`` and ``out_dir/test.jsonl`` (locked;
    refused if one of them is the input, or a file vrft did not write)."""
    from vrft.data.records import load_records
    from vrft.outputs import OutputDir, check_dir_output

    names = ["train.jsonl", "test.jsonl"]
    out = check_dir_output(out_dir, inputs=[records_path], writes=names)
    train, test = split_by_image(load_records(records_path), test_fraction, seed)
    with OutputDir(out, "data split") as d:
        d.claim(names)
        return save_records(train, out / "train.jsonl"), save_records(test, out / "test.jsonl")
