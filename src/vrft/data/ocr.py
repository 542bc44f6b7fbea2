"""OCR sources -> OCR records (task ``ocr``: the image and its ``text``).

- Generic JSONL: one ``{"image": path, "text": "..."}`` per line (``image_path``, ``img_path``,
  ``file_name`` or ``filename`` (mmocr's) are read as the image too, ``transcription`` or ``label``
  as the text); image paths relative to the file's folder (or ``images_dir``).
- ICDAR-style folder, either
  - a ``gt.txt`` of lines ``word_1.png, "Text"`` (ICDAR 2013/2015 word recognition; quotes optional,
    ``\\"`` is a quote), or
  - per image a text file with the same stem (``img_1.txt`` or ``gt_img_1.txt``) holding its text. A
    text file whose every line is ``x1,y1,...,x4,y4,transcription`` (ICDAR detection ground truth) gives
    the transcriptions in file order, joined by spaces, ``###`` (don't care) left out.
Text files are read as UTF-8 (a byte-order mark is dropped). The text is kept as written; rewards and
metrics normalise whitespace.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from vrft.data.classification import image_size
from vrft.data.records import Record, finish_conversion
from vrft.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_IMAGE_KEYS = ("image", "image_path", "img_path", "file_name", "filename")  # filename: mmocr's JSONL
_TEXT_KEYS = ("text", "transcription", "label")
_QUAD_LINE = re.compile(r"^\s*(?:-?\d+(?:\.\d+)?\s*,\s*){8}(.*)$")


def _record(img: Path, text: str, rid: str, where: str, problems: list[str]) -> Record | None:
    size = image_size(img)
    if isinstance(size, str):
        problems.append(f"{where}: image: {img}: {size}")
        return None
    return Record(id=rid, task="ocr", image=str(img), width=size[0], height=size[1], text=text,
                  image_path=img.resolve(), source=where)  # fmt: skip


def _finish(records: list[Record], problems: list[str], source: Path, out: Any) -> list[Record]:
    return finish_conversion(records, problems, source, out, "nothing to convert (no images with text found)")


def convert_ocr_jsonl(
    path: str | os.PathLike,
    *,
    images_dir: str | os.PathLike | None = None,
    id_prefix: str = "ocr",
    out: str | os.PathLike | None = None,
) -> list[Record]:
    """Generic OCR JSONL -> OCR records; every problem of every line reported together."""
    from vrft.inputs import iter_lines, parse_json_line

    path = Path(path)
    base = Path(images_dir) if images_dir is not None else path.parent
    problems: list[str] = []
    records: list[Record] = []
    for n, line in iter_lines(path, "OCR records file"):  # not found, a directory, not UTF-8: DataError
        where = f"{path}:{n}"
        obj, why = parse_json_line(line)  # invalid, or nested too deeply
        if why:
            problems.append(f"{where}: {why}; one object per line")
            continue
        if not isinstance(obj, dict):
            problems.append(f'{where}: expected an object {{"image": ..., "text": ...}}')
            continue
        image = next((obj[k] for k in _IMAGE_KEYS if obj.get(k)), None)
        text = next((obj[k] for k in _TEXT_KEYS if k in obj), None)
        if not isinstance(image, str) or not image.strip():
            keys = ", ".join(f"'{k}'" for k in _IMAGE_KEYS)
            problems.append(
                f"{where}: image: missing (give one of the keys {keys}: a path relative to {base})"
            )
            continue
        if not isinstance(text, str):
            keys = ", ".join(f"'{k}'" for k in _TEXT_KEYS)
            problems.append(
                f"{where}: text: missing or not a string (give one of the keys {keys}: the text in the image; "
                '"" for none)'
            )
            continue
        rid = obj.get("id")
        rid = str(rid) if isinstance(rid, (str, int)) and str(rid).strip() else f"{id_prefix}-{n}"
        rec = _record(Path(os.path.normpath(base / image)), text, rid, where, problems)
        if rec is not None:
            records.append(rec)
    return _finish(records, problems, path, out)


def _gt_line(line: str) -> tuple[str, str] | None:
    """``name, "text"`` -> (name, text); None when there is no comma."""
    name, sep, rest = line.partition(",")
    if not sep or not name.strip():
        return None
    text = rest.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = text[1:-1].replace('\\"', '"')
    return name.strip(), text


def _text_file(path: Path) -> str:
    from vrft.inputs import read_text

    raw = read_text(path, "text file")
    lines = [ln for ln in raw.splitlines() if ln.strip()]
    quads = [_QUAD_LINE.match(ln) for ln in lines]
    if lines and all(quads):
        words = [m.group(1).strip() for m in quads]
        return " ".join(w for w in words if w and w != "###")
    return raw.strip()


def convert_icdar(
    folder: str | os.PathLike, *, id_prefix: str = "icdar", out: str | os.PathLike | None = None
) -> list[Record]:
    """ICDAR-style folder -> OCR records (see the module); every problem reported together."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder (give the folder holding the images and text files)")
    problems: list[str] = []
    records: list[Record] = []
    gt = folder / "gt.txt"
    if gt.is_file():
        from vrft.inputs import read_text

        lines = read_text(gt, "ground-truth text file").splitlines()  # not UTF-8: DataError FILE:LINE
        seen: set[str] = set()
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            parsed = _gt_line(line)
            where = f"{gt}:{n}"
            if parsed is None:
                problems.append(f'{where}: expected `image_name, "text"`, got {line[:80]!r}')
                continue
            name, text = parsed
            if name in seen:
                problems.append(f"{where}: {name} is listed twice")
                continue
            seen.add(name)
            rec = _record(folder / name, text, f"{id_prefix}-{Path(name).stem}", where, problems)
            if rec is not None:
                records.append(rec)
        return _finish(records, problems, gt, out)
    files = sorted(p for p in folder.iterdir() if p.is_file())
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    texts = {p.name: p for p in files if p.suffix.lower() == ".txt"}
    used: set[str] = set()
    for img in images:
        txt = texts.get(f"{img.stem}.txt") or texts.get(f"gt_{img.stem}.txt")
        if txt is None:
            problems.append(f"{img}: no text file ({img.stem}.txt or gt_{img.stem}.txt)")
            continue
        used.add(txt.name)
        try:
            text = _text_file(txt)
        except UnicodeDecodeError as err:
            problems.append(f"{txt}: not UTF-8 text ({err.reason} at byte {err.start})")
            continue
        rec = _record(img, text, f"{id_prefix}-{img.stem}", str(txt), problems)
        if rec is not None:
            records.append(rec)
    for name in sorted(set(texts) - used):
        problems.append(f"{texts[name]}: a text file without an image of the same name")
    return _finish(records, problems, folder, out)
