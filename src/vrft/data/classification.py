"""Classification sources -> classification records.

- ImageFolder: ``root/<class folder>/<image>``; folder names are cleaned for prompts
  (``001.Black_footed_Albatross`` -> ``black footed albatross``; a folder index is stripped only when
  every folder has a distinct one, so years and model numbers stay: ``2012 Acura RL Sedan``, ``737-200``).
- CoOp-style split files: ``{"train": [[path, label, classname], ...], "val": [...], "test": [...]}``
  (paths relative to the images folder), one records file per split.

Every record carries the full class list (`classes`) and, when given, the prompt `domain`
(``{"object": "flower", "attribute": "species"}``).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from vrft.data.coco import load_json, slug
from vrft.data.records import Record, format_problems, save_records
from vrft.errors import DataError, UserError

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")

# The paper's fine-grained datasets: name -> (object, attribute) for the classification prompt.
DOMAIN_PRESETS: dict[str, tuple[str, str]] = {
    "flowers102": ("plant", "species"),
    "pets37": ("pet", "breed"),
    "aircraft": ("aircraft", "model"),
    "cars196": ("car", "model"),
    "shapes": ("shape", "type"),
}


_INDEX_PREFIX = re.compile(r"^(\d+)[._](?=\S)")


def clean_class_name(name: str, *, strip_index: bool = True) -> str:
    """Folder / dataset class name -> prompt text.

    With `strip_index`, a folder-index prefix (digits then ``.`` or ``_``: ``001.``, ``12_``) is
    removed; then underscores become spaces, whitespace is collapsed and the text lower-cased:
    ``001.Black_footed_Albatross`` -> ``black footed albatross``. A year or a model number is never
    an index: ``2012 Acura RL Sedan`` -> ``2012 acura rl sedan``, ``737-200`` stays ``737-200``.
    A dataset's names are better cleaned together with `clean_class_names`, which strips indices only
    when every name carries a distinct one.
    """
    text = name.strip()
    if strip_index:
        text = _INDEX_PREFIX.sub("", text, count=1)
    text = text.replace("_", " ")
    return re.sub(r"\s+", " ", text).strip().lower()


def has_index_prefixes(names: Sequence[str]) -> bool:
    """True when the names look like an enumeration of folders: EVERY distinct name starts with a
    number followed by ``.`` or ``_`` and no two names share that number (``001.Black_footed_Albatross``,
    ``002.Laysan_Albatross``, ...). A repeated number is a year or a model number (Stanford Cars'
    ``2012 ...``), not an index."""
    distinct = set(names)
    matches = [_INDEX_PREFIX.match(n.strip()) for n in distinct]
    if not distinct or not all(matches):
        return False
    return len({int(m.group(1)) for m in matches if m}) == len(distinct)


def clean_class_names(names: Sequence[str]) -> list[str]:
    """`clean_class_name` over a dataset's class names, stripping folder indices only when
    `has_index_prefixes` holds for the whole list (so a year or a model number is always kept)."""
    strip = has_index_prefixes(names)
    return [clean_class_name(n, strip_index=strip) for n in names]


def parse_domain(spec: str | None) -> dict[str, str] | None:
    """``"flower,species"`` or a preset name (``pets37``) -> ``{"object": ..., "attribute": ...}``."""
    if spec is None:
        return None
    if spec in DOMAIN_PRESETS:
        obj, attr = DOMAIN_PRESETS[spec]
        return {"object": obj, "attribute": attr}
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) != 2 or not all(parts):
        raise UserError(
            f"--domain {spec!r}: expected OBJECT,ATTRIBUTE (e.g. flower,species) or one of {', '.join(DOMAIN_PRESETS)}"
        )
    return {"object": parts[0], "attribute": parts[1]}


def image_size(path: Path) -> tuple[int, int] | str:
    """(width, height) from the image header, or a problem description (`vrft.inputs.image_size`:
    missing, unreadable, or larger than `vrft.inputs.MAX_IMAGE_PIXELS`)."""
    from vrft.inputs import image_size as header_size

    return header_size(path)


def _check_names(paths, source: str) -> None:
    """DataError listing every path whose name is not UTF-8 (it could not be written to records)."""
    from vrft.inputs import name_problem

    problems = [msg for msg in map(name_problem, paths) if msg]
    if problems:
        raise DataError(format_problems(problems, f"{source}: {len(problems)} file name(s) not UTF-8:"))


def _sized_records(items: list[dict[str, Any]], source: str, progress: bool) -> list[Record]:
    """Open every image header to fill width/height; DataError listing every unreadable one."""
    problems, records = [], []
    for item in tqdm(items, desc="reading image sizes", disable=not progress or len(items) < 500, unit="img"):
        size = image_size(item["image_path"])
        if isinstance(size, str):
            problems.append(f"{item['where']}: image: {item['image_path']}: {size}")
            continue
        where = item.pop("where")
        records.append(
            Record(width=size[0], height=size[1], image=str(item["image_path"]), source=where, **item)
        )
    if problems:
        raise DataError(format_problems(problems, f"{source}: {len(problems)} image problem(s):"))
    return records


def convert_imagefolder(
    root: str | os.PathLike,
    *,
    domain: str | None = None,
    id_prefix: str | None = None,
    out: str | os.PathLike | None = None,
    progress: bool = True,
) -> list[Record]:
    """ImageFolder (one sub-folder per class) -> classification records, sorted by class then file.

    Raises DataError when two folders clean to the same class name or an image cannot be read.
    Non-image files are skipped with a warning (counted); empty class folders are warned about
    and stay in the class list.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (expected one sub-folder per class)")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    _check_names([root, *folders, *(p for f in folders for p in f.rglob("*"))], str(root))
    if not folders:
        raise DataError(f"{root}: no class sub-folders found (expected root/<class>/<image files>)")
    names: dict[str, str] = {}
    for f, clean in zip(folders, clean_class_names([f.name for f in folders])):
        if not clean:
            raise DataError(f"{root / f.name}: folder name gives an empty class name (rename the folder)")
        if clean in names:
            raise DataError(
                f"{root}: folders {names[clean]!r} and {f.name!r} both give class {clean!r} (merge or rename)"
            )
        names[clean] = f.name
    classes = list(names)
    dom = parse_domain(domain)
    prefix = id_prefix or slug(root.name)
    items, skipped = [], []
    for clean, folder in names.items():
        files = sorted(p for p in (root / folder).rglob("*") if p.is_file() and not p.name.startswith("."))
        images = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
        skipped += [p for p in files if p.suffix.lower() not in IMAGE_EXTENSIONS]
        if not images:
            logger.warning("%s: class folder %r has no images", root, folder)
        for p in images:
            rel = p.relative_to(root / folder).with_suffix("").as_posix()
            items.append(
                {
                    "id": f"{prefix}-{slug(clean)}-{slug(rel)}",
                    "task": "classification",
                    "image_path": p.resolve(),
                    "label": clean,
                    "classes": classes,
                    "domain": dom,
                    "meta": {"folder": folder},
                    "where": str(p),
                }
            )
    if skipped:
        logger.warning(
            "%s: skipped %d non-image file(s) (extensions other than %s), e.g. %s",
            root,
            len(skipped),
            ", ".join(IMAGE_EXTENSIONS),
            skipped[0],
        )
    records = _sized_records(items, str(root), progress)
    ids = [r.id for r in records]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise DataError(f"{root}: file names give duplicate record ids {dup} (rename the files)")
    if out is not None:
        save_records(records, out)
    return records


def convert_coop(
    split_json: str | os.PathLike,
    images_dir: str | os.PathLike,
    *,
    splits: Sequence[str] = ("train", "val", "test"),
    domain: str | None = None,
    id_prefix: str | None = None,
    out_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> dict[str, list[Record]]:
    """CoOp-style split file -> ``{split: records}`` (and ``out_dir/<split>.jsonl`` when given).

    Class names are cleaned together (`clean_class_names`: years and model numbers kept); the class
    list is ordered by the integer label.
    Raises DataError (every problem, as ``file: split[i]: ...``) for malformed entries, a label
    used with two class names, or unreadable images.
    """
    split_json = Path(split_json)
    data = load_json(split_json)
    src = str(split_json)
    if not isinstance(data, dict):
        raise DataError(f"{src}: expected an object {{'train': [[path, label, classname], ...], ...}}")
    missing = [s for s in splits if s not in data]
    if missing:
        raise DataError(f"{src}: no split(s) {missing} (the file has {sorted(data)}; choose with --splits)")
    label_names: dict[int, str] = {}
    problems = []
    raw_names = [
        e[2]
        for s in splits
        if isinstance(data[s], list)
        for e in data[s]
        if isinstance(e, list) and len(e) == 3 and isinstance(e[2], str)
    ]
    strip_index = has_index_prefixes(raw_names)
    for s in splits:
        entries = data[s]
        if not isinstance(entries, list):
            problems.append(f"{src}: {s}: must be a list of [path, label, classname]")
            continue
        for i, e in enumerate(entries):
            ok = (
                isinstance(e, list)
                and len(e) == 3
                and isinstance(e[0], str)
                and isinstance(e[1], int)
                and isinstance(e[2], str)
                and e[2].strip()
            )
            if not ok:
                problems.append(f"{src}: {s}[{i}]: {e!r} is not [path, integer label, classname]")
                continue
            name = clean_class_name(e[2], strip_index=strip_index)
            if label_names.setdefault(e[1], name) != name:
                problems.append(
                    f"{src}: {s}[{i}]: label {e[1]} named {name!r} but earlier {label_names[e[1]]!r}"
                )
    if problems:
        raise DataError(format_problems(problems, f"{src}: {len(problems)} problem(s):"))
    classes = [label_names[k] for k in sorted(label_names)]
    if len(set(classes)) != len(classes):
        raise DataError(f"{src}: two labels share a class name after cleaning: {sorted(classes)}")
    dom = parse_domain(domain)
    prefix = id_prefix or slug(split_json.stem)
    base = Path(images_dir).resolve()
    result = {}
    for s in splits:
        items = [
            {
                "id": f"{prefix}-{s}-{i}",
                "task": "classification",
                "image_path": (base / path).resolve(),
                "label": label_names[label],
                "classes": classes,
                "domain": dom,
                "meta": {"split": s, "label_index": label, "path": path},
                "where": f"{src}: {s}[{i}]",
            }
            for i, (path, label, _) in enumerate(data[s])
        ]
        result[s] = _sized_records(items, src, progress)
        if out_dir is not None:
            save_records(result[s], Path(out_dir) / f"{s}.jsonl")
    return result
