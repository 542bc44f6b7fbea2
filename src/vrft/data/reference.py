"""The reference implementation's published training sets -> records (+ images written as PNG).

Those sets have the columns ``image`` (an image), ``problem`` (the prompt text) and ``solution``
(``<answer>...</answer>``), published as parquet files or as `save_to_disk` folders (arrow).
They are read with the `datasets` library (`load_dataset("parquet", ...)`, `load_from_disk`, or
`Dataset.from_file` for one ``.arrow`` file).

The task of each row comes from its text: "category '{x}'" in the problem -> detection (solution:
``[{'Position': [x1, y1, x2, y2], 'Confidence': c}, ...]`` or ``No Objects``, coordinates 0..1000
of the image -> pixels); "bounding box" -> grounding (one box); else classification
(the answer is the label; the domain is read from "containing a {object}. Please identify the
{attribute} of ..."). Solutions are parsed by `vrft.parsing` (the same parser as rewards and
metrics) and converted by `vrft.boxes` (the only module that converts coordinates).

The coordinates are read in one convention (``convention``): ``norm1000`` (default; the reference's
sets are 0..1000 of the image), ``pixels`` of the image, or ``resized_pixels`` of the image resized by
a Qwen2.5-VL processor with the given ``min_pixels`` / ``max_pixels``. A box that cannot exist in that
convention (a coordinate below 0 or beyond 1000, the image, or the resized image) is refused with its
row, never clipped: it means the set is written in another convention.

Rows showing the same picture (a detection set has one row per image and category) share one PNG
and one ``image_id``, so few-shot sampling and splits see real images.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm import tqdm

from vrft.data.records import Record, check_box, format_problems, save_records
from vrft.errors import DataError, UserError

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
    try:  # a corrupt or foreign file raises anything from pyarrow / datasets: name the file instead
        if path.is_dir() and ((path / "state.json").exists() or (path / "dataset_dict.json").exists()):
            ds = datasets.load_from_disk(str(path))
        elif path.suffix == ".arrow":
            ds = datasets.Dataset.from_file(str(path))
        else:
            files = [str(path)] if path.is_file() else sorted(str(p) for p in path.rglob("*.parquet"))
            if not files:
                raise DataError(
                    f"{path}: no .parquet files found (nor a save_to_disk folder with state.json)"
                )
            ds = datasets.load_dataset("parquet", data_files=files)
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001
        raise DataError(
            f"{path}: cannot read it as parquet / arrow / save_to_disk data ({type(err).__name__}: "
            f"{str(err).splitlines()[0][:200] if str(err) else ''})"
        ) from None
    if isinstance(ds, datasets.DatasetDict):
        names = list(ds)
        if split is None:
            if len(names) != 1:
                raise DataError(f"{path}: splits {names}; choose one with --split")
            split = names[0]
        if split not in ds:
            raise DataError(f"{path}: no split {split!r} (has {names})")
        ds = ds[split]
    if isinstance(ds.features.get("image"), datasets.Image):  # decoded by us, with the pixel limit
        ds = ds.cast_column("image", datasets.Image(decode=False))
    missing = [c for c in ("image", "problem", "solution") if c not in ds.column_names]
    if missing:
        raise DataError(
            f"{path}: columns {missing} missing (found {ds.column_names}; expected image, problem, solution)"
        )
    return ds


def _to_pil(value: Any) -> Image.Image:
    """The row's image decoded as RGB (ValueError naming the problem: unreadable, too many pixels)."""
    from vrft.inputs import open_image

    if isinstance(value, Image.Image):
        return open_image(value, "image", error=ValueError)
    if isinstance(value, dict) and value.get("bytes"):
        return open_image(bytes(value["bytes"]), "image", error=ValueError)
    if isinstance(value, dict) and value.get("path"):
        return open_image(value["path"], error=ValueError)
    if isinstance(value, str):
        return open_image(value, error=ValueError)
    raise ValueError(f"unsupported image value of type {type(value).__name__}")


def detect_task(problem: str) -> str:
    """detection / grounding / classification, from the prompt text of a reference row."""
    if _CATEGORY.search(problem):
        return "detection"
    if "bounding box" in problem.lower():
        return "grounding"
    return "classification"


def _impossible(box: Any, frame: Any) -> str | None:
    """Why `box` (in the frame's convention) cannot exist there, or None."""
    ex, ey = frame.extent
    if all(0.0 <= float(v) <= hi for v, hi in zip(box, (ex, ey, ex, ey))):
        return None
    if frame.convention == "norm1000":
        where = "0..1000"
    elif frame.convention == "pixels":
        where = f"the {frame.width:g}x{frame.height:g} image"
    else:
        where = f"the {ex:g}x{ey:g} resized image"
    hints = []
    for name in ("norm1000", "pixels"):
        if name != frame.convention:
            hx, hy = (1000.0, 1000.0) if name == "norm1000" else (float(frame.width), float(frame.height))
            if all(0.0 <= float(v) <= hi for v, hi in zip(box, (hx, hy, hx, hy))):
                hints.append(f"--convention {name}")
    fix = f"the set is not {frame.convention}; " + (
        f"try {' or '.join(hints)}" if hints else "fix the box or choose the set's --convention"
    )
    shown = [round(float(v), 2) for v in box]
    return f"box {shown} lies outside {where} ({frame.convention} coordinates): {fix}"


def convert_reference(
    path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    split: str | None = None,
    task: str | None = None,
    id_prefix: str = "ref",
    skip_invalid: bool = False,
    keep_prompts: bool = False,
    drop_no_objects: bool = False,
    progress: bool = True,
    convention: str = "norm1000",
    min_pixels: int | None = None,
    max_pixels: int | None = None,
) -> Path:
    """Convert a reference dataset to ``out_dir/records.jsonl`` with images in ``out_dir/images/``.

    Args:
        path: parquet file / folder, `save_to_disk` folder, or ``.arrow`` file.
        split: the split of a dataset dict (needed when it has several).
        task: force the task (default: detected per row from the problem text).
        skip_invalid: drop rows whose solution cannot be converted (each is logged) instead of
            failing with the full list of them. Boxes impossible in `convention` are never skipped:
            they mean the whole set is read in the wrong convention.
        convention: the coordinates of the solutions: ``norm1000`` (the reference's), ``pixels`` or
            ``resized_pixels`` (needs `min_pixels` and `max_pixels`, the Qwen processor budget).
        keep_prompts: keep each row's ``problem`` text as the record's ``prompt``, so that training
            sees the published text byte for byte (otherwise the task renders its template).
        drop_no_objects: drop detection rows whose answer is 'No Objects' (the maintainer says the
            paper's training set had none, reference issue #8; its published base-65 set has a few).

    Returns:
        The records path.
    """
    from vrft.boxes import CONVENTIONS, Frame
    from vrft.parsing import parse_box, parse_detections
    from vrft.parsing import split as split_completion

    if convention not in CONVENTIONS:
        raise UserError(f"--convention: unknown {convention!r}; use one of {', '.join(CONVENTIONS)}")
    if convention == "resized_pixels" and (min_pixels is None or max_pixels is None):
        raise UserError(
            "--convention resized_pixels needs --min-pixels and --max-pixels (the image processor budget the "
            "set was written with; Qwen2.5-VL's defaults: --min-pixels 3136 --max-pixels 12845056)"
        )
    if convention != "resized_pixels" and (min_pixels is not None or max_pixels is not None):
        raise UserError("--min-pixels / --max-pixels only apply to --convention resized_pixels")
    if min_pixels is not None and max_pixels is not None and not 0 < min_pixels <= max_pixels:
        raise UserError(f"--min-pixels ({min_pixels}) must be > 0 and <= --max-pixels ({max_pixels})")
    budget = {} if min_pixels is None else {"min_pixels": int(min_pixels), "max_pixels": int(max_pixels)}
    ds = load_reference_dataset(path, split)
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    seen: dict[str, tuple[str, int]] = {}  # image content hash -> (file name, image id)
    records: list[Record] = []
    problems: list[str] = []
    impossible: list[str] = []
    labels: set[str] = set()
    dropped = 0
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
        frame = Frame.for_image(w, h, convention, **budget)
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
            why = next((b for b in (_impossible(d.box, frame) for d in parsed.detections) if b), None)
            if why:
                impossible.append(f"{where}: solution: {why}")
                continue
            rec.boxes = [[round(v, 2) for v in frame.decode(d.box)] for d in parsed.detections]
            if drop_no_objects and not rec.boxes:
                dropped += 1
                continue
        elif kind == "grounding":
            parsed = parse_box(answer)
            if not parsed.ok:
                problems.append(f"{where}: solution: {parsed.reason} in {answer[:80]!r}")
                continue
            why = _impossible(parsed.box, frame)
            if why:
                impossible.append(f"{where}: solution: {why}")
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
        if keep_prompts:
            rec.prompt = problem
        records.append(rec)
    if dropped:
        logger.info("%s: dropped %d 'No Objects' detection row(s) (--drop-no-objects)", path, dropped)
    if labels:
        classes = sorted(labels)
        for rec in records:
            if rec.task == "classification":
                rec.classes = classes
    if impossible:
        raise DataError(
            format_problems(
                impossible + problems,
                f"{path}: {len(impossible)} row(s) hold boxes impossible in {convention} coordinates "
                "(not skippable: the set is probably in another convention; see --convention):",
            )
        )
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
