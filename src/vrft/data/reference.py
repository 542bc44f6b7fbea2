"""The reference implementation's published training sets -> records (+ images written as PNG).

Those sets have the columns ``image`` (an image), ``problem`` (the prompt text) and ``solution``
(``<answer>...</answer>``), published as parquet files or as `save_to_disk` folders (arrow).
They are read with the `datasets` library (`load_dataset("parquet", ...)`, `load_from_disk`, or
`Dataset.from_file` for one ``.arrow`` file).

The task of each row comes from its text: "category '{x}'" in the problem -> detection (solution:
``[{'Position': [x1, y1, x2, y2], 'Confidence': c}, ...]`` or ``No Objects``, coordinates 0..1000
of the image -> pixels); "bounding box" -> grounding (one 0..1000 box); else classification
(the answer is the label; the domain is read from "containing a {object}. Please identify the
{attribute} of ..."). Solutions are parsed by `vrft.parsing` (the same parser as rewards and
metrics) and converted by `vrft.boxes` (the only module that converts coordinates).

Rows showing the same picture (a detection set has one row per image and category) share one PNG
and one ``image_id``, so few-shot sampling and splits see real images.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm import tqdm

from vrft.data.records import Record, check_box, format_problems, save_records
from vrft.errors import DataError

logger = logging.getLogger(__name__)

_CATEGORY = re.compile(r"category '([^']+)'")
_DOMAIN = re.compile(r"containing an? ([^.]+?)\.\s*Please identify the ([\w -]+?) of the", re.IGNORECASE)
_INSTRUCTION = re.compile(r"instruction:\s*(.+?)(?:\.?\s*(?:First output|Output the thinking)|$)", re.DOTALL)


def load_reference_dataset(path: str | os.PathLike, split: str | None = None):
    """Read a parquet file / folder of parquet files, a `save_to_disk` folder or an ``.arrow`` file."""
    import datasets

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: not found (a .parquet file, a folder of them, or a save_to_disk folder)")
    if path.is_dir() and ((path / "state.json").exists() or (path / "dataset_dict.json").exists()):
        ds = datasets.load_from_disk(str(path))
    elif path.suffix == ".arrow":
        ds = datasets.Dataset.from_file(str(path))
    else:
        files = [str(path)] if path.is_file() else sorted(str(p) for p in path.rglob("*.parquet"))
        if not files:
            raise DataError(f"{path}: no .parquet files found (nor a save_to_disk folder with state.json)")
        ds = datasets.load_dataset("parquet", data_files=files)
    if isinstance(ds, datasets.DatasetDict):
        names = list(ds)
        if split is None:
            if len(names) != 1:
                raise DataError(f"{path}: splits {names}; choose one with --split")
            split = names[0]
        if split not in ds:
            raise DataError(f"{path}: no split {split!r} (has {names})")
        ds = ds[split]
    missing = [c for c in ("image", "problem", "solution") if c not in ds.column_names]
    if missing:
        raise DataError(
            f"{path}: columns {missing} missing (found {ds.column_names}; expected image, problem, solution)"
        )
    return ds


def _to_pil(value: Any) -> Image.Image:
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, dict) and value.get("bytes"):
        return Image.open(io.BytesIO(value["bytes"]))
    if isinstance(value, dict) and value.get("path"):
        return Image.open(value["path"])
    if isinstance(value, str):
        return Image.open(value)
    raise ValueError(f"unsupported image value of type {type(value).__name__}")


def detect_task(problem: str) -> str:
    """detection / grounding / classification, from the prompt text of a reference row."""
    if _CATEGORY.search(problem):
        return "detection"
    if "bounding box" in problem.lower():
        return "grounding"
    return "classification"


def convert_reference(
    path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    split: str | None = None,
    task: str | None = None,
    id_prefix: str = "ref",
    skip_invalid: bool = False,
    progress: bool = True,
) -> Path:
    """Convert a reference dataset to ``out_dir/records.jsonl`` with images in ``out_dir/images/``.

    Args:
        path: parquet file / folder, `save_to_disk` folder, or ``.arrow`` file.
        split: the split of a dataset dict (needed when it has several).
        task: force the task (default: detected per row from the problem text).
        skip_invalid: drop rows whose solution cannot be converted (each is logged) instead of
            failing with the full list of them.

    Returns:
        The records path.
    """
    from vrft.boxes import Frame
    from vrft.parsing import parse_box, parse_detections
    from vrft.parsing import split as split_completion

    ds = load_reference_dataset(path, split)
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    seen: dict[str, tuple[str, int]] = {}  # image content hash -> (file name, image id)
    records: list[Record] = []
    problems: list[str] = []
    labels: set[str] = set()
    for i, row in enumerate(tqdm(ds, desc="converting", disable=not progress or len(ds) < 500, unit="row")):
        where = f"{path}: row {i}"
        try:
            img = _to_pil(row["image"]).convert("RGB")
        except (OSError, ValueError) as err:
            problems.append(f"{where}: image: unreadable ({err})")
            continue
        problem = str(row["problem"] or "")
        answer = split_completion(str(row["solution"] or "")).answer
        if answer is None:
            problems.append(f"{where}: solution: no <answer>...</answer> in {str(row['solution'])[:80]!r}")
            continue
        key = hashlib.sha1(img.tobytes() + repr(img.size).encode()).hexdigest()
        if key not in seen:
            name = f"images/{len(seen):06d}.png"
            img.save(out / name, format="PNG")
            seen[key] = (name, len(seen) + 1)
        name, image_id = seen[key]
        w, h = img.size
        frame = Frame(w, h, "norm1000")
        kind = task or detect_task(problem)
        rec = Record(
            id=f"{id_prefix}-{i}",
            task=kind,
            image=name,
            width=w,
            height=h,
            image_id=image_id,
            meta={"row": i},
            image_path=(out / name).resolve(),
        )
        if kind == "detection":
            m = _CATEGORY.search(problem)
            if m is None:
                problems.append(f"{where}: problem: no \"category '...'\" phrase to take the category from")
                continue
            parsed = parse_detections(answer)
            if not parsed.ok or parsed.n_invalid or parsed.truncated:
                why = parsed.reason if not parsed.ok else f"{parsed.n_invalid} invalid entr(y/ies)"
                problems.append(f"{where}: solution: {why} in {answer[:80]!r}")
                continue
            rec.category = m.group(1).strip()
            rec.boxes = [[round(v, 2) for v in frame.decode(d.box)] for d in parsed.detections]
        elif kind == "grounding":
            parsed = parse_box(answer)
            if not parsed.ok:
                problems.append(f"{where}: solution: {parsed.reason} in {answer[:80]!r}")
                continue
            rec.boxes = [[round(v, 2) for v in frame.decode(parsed.box)]]
            m = _INSTRUCTION.search(problem)
            rec.expression = (m.group(1) if m else problem).strip()
        else:
            label = answer.strip()
            if not label:
                problems.append(f"{where}: solution: empty label")
                continue
            rec.label = label
            labels.add(label)
            m = _DOMAIN.search(problem)
            if m:
                rec.domain = {"object": m.group(1).strip(), "attribute": m.group(2).strip()}
        bad = [check_box(b, w, h) for b in rec.boxes]
        bad = [b for b in bad if b]
        if bad:
            problems.append(f"{where}: solution: {bad[0]}")
            continue
        records.append(rec)
    if labels:
        classes = sorted(labels)
        for rec in records:
            if rec.task == "classification":
                rec.classes = classes
    if problems:
        if not skip_invalid:
            raise DataError(
                format_problems(
                    problems,
                    f"{path}: {len(problems)} row(s) cannot be converted (--skip-invalid drops them):",
                )
            )
        for p in problems:
            logger.warning("skipped %s", p)
    logger.info(
        "%s: %d records, %d distinct images, %d rows skipped", path, len(records), len(seen), len(problems)
    )
    return save_records(records, out / "records.jsonl")
