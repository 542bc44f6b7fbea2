"""Reading the user's input files: the checks every command needs, in one place.

Every command that reads a file the user gave (records JSONL, COCO / LVIS / CoOp / refs JSON, YAML
configs, predictions, `vrft score` lines, images) reads it through these helpers, so that hostile or
faulty input ends in one `vrft.errors.UserError` naming the file (and line) and the fix, never in a
traceback, a hang or a huge allocation:

- a path that is a directory where a file is expected: "is a directory" (`check_file`);
- bytes that are not UTF-8: ``FILE:LINE: not UTF-8 (byte 0xe9 at column 7) ...`` (`decode_utf8`,
  `read_text`, `iter_lines`, `read_json`); a leading UTF-8 byte-order mark is accepted;
- JSON nested deeper than Python can parse (`read_json`);
- YAML: duplicate keys (both lines named) and aliases that expand beyond `YAML_MAX_NODES` nodes (an
  "alias bomb"), both refused before anything walks the document (`read_yaml`);
- images: decoded at most `MAX_IMAGE_PIXELS` pixels (a header claiming 100000 x 100000 is refused
  before any pixel is decoded), unreadable files named (`open_image`, `image_size`). `open_image` is
  the one reader of pixels (training, eval, predict, the report): it applies the EXIF orientation,
  scales 16-bit greyscale to 8 bits and composites transparency on white; `image_size` reports the
  displayed (EXIF-oriented) size from the header alone;
- seeds: any integer, mapped to ``seed mod 2**32`` (`normalize_seed`), the range every seeded library
  (numpy, torch, random) accepts;
- user code (``package.module`` of `rewards.extra` / `tools.names`): a module that is missing, has a
  syntax error or raises while it is imported is one `ConfigError` naming the module and what failed
  (`import_user_module`), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vrft.errors import ConfigError, DataError

MAX_IMAGE_PIXELS: int = 100_000_000
"""Largest image (width x height) any command decodes: 100 megapixels (e.g. 10000 x 10000, 300 MB as
RGB). Larger headers are refused as decompression bombs with an error naming the file; Pillow's own
limit (89.5 MP warns, 179 MP raises) is superseded by this one for vrft's reads."""

YAML_MAX_NODES: int = 100_000
"""Nodes a YAML document may hold with every alias expanded. A real config has a few hundred; a
few nested anchors (an "alias bomb") expand to billions, which would hang the key-line mapper."""

SEED_MODULUS: int = 2**32
"""Seeds are taken modulo 2**32: numpy's legacy seeding (and so transformers' `set_seed`) accepts
0 .. 2**32 - 1 only. A negative seed s is the same run as s + 2**32."""

_UTF8_FIX = "save it as UTF-8 (e.g. `iconv -f latin1 -t utf-8 FILE > FILE.utf8`)"


# ------------------------------------------------------------------------------------------- files
def check_file(path: str | os.PathLike, what: str = "file", error: type[Exception] = DataError) -> Path:
    """`path` as a Path when it is an existing file; else `error` saying "not found" or "is a directory"."""
    p = Path(path)
    a = "an" if what[:1].lower() in "aeiou" else "a"
    if p.is_dir():
        raise error(f"{p}: is a directory, not {a} {what} (give the path of the {what} itself)")
    if not p.is_file():
        if p.exists():
            raise error(f"{p}: not a regular file (give the path of the {what})")
        raise error(f"{p}: {what} not found (check the path)")
    return p


def name_problem(path: str | os.PathLike) -> str | None:
    """A problem when a file name found on disk is not UTF-8 (records are UTF-8 text, so such a path
    cannot be written into them), else None. The name is shown with the bad bytes escaped."""
    text = os.fspath(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(text).decode("utf-8", "backslashreplace")
        return f"{shown}: the file name is not UTF-8 (rename it, e.g. with `convmv -f latin1 -t utf-8`)"
    return None


def _read_bytes(p: Path, what: str, error: type[Exception]) -> bytes:
    try:
        return p.read_bytes()
    except OSError as err:
        raise error(f"{p}: cannot read the {what} ({err.strerror or err})") from None


def decode_utf8(data: bytes, source: str, error: type[Exception] = DataError, first_line: int = 1) -> str:
    """`data` decoded as UTF-8 (a leading byte-order mark dropped); else `error` naming
    ``source:LINE`` and the column of the first bad byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + first_line
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise error(
            f"{source}:{line}: not UTF-8 (byte 0x{data[err.start]:02x} at column {column}); {_UTF8_FIX}"
        ) from None
    return text[1:] if text.startswith("\ufeff") else text


def read_text(path: str | os.PathLike, what: str = "file", error: type[Exception] = DataError) -> str:
    """The whole file as text: checked to be a file, decoded as UTF-8 (errors name file and line)."""
    p = check_file(path, what, error)
    return decode_utf8(_read_bytes(p, what, error), str(p), error)


def iter_lines(
    path: str | os.PathLike, what: str = "file", error: type[Exception] = DataError
) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, text)`` of every non-blank line (1-based), each decoded as UTF-8.

    Streams the file (constant memory); a line that is not UTF-8 raises `error` naming ``file:line``.
    """
    p = check_file(path, what, error)
    try:
        fh = open(p, "rb")  # noqa: SIM115 (closed below; a generator)
    except OSError as err:
        raise error(f"{p}: cannot read the {what} ({err.strerror or err})") from None
    with fh:
        for lineno, raw in enumerate(fh, start=1):
            text = decode_utf8(raw, str(p), error, first_line=lineno)
            if text.strip():
                yield lineno, text


def decode_lines(data: bytes, source: str, error: type[Exception] = DataError) -> list[str]:
    """Lines of already read bytes (e.g. stdin), decoded as UTF-8 with ``source:LINE`` errors; split
    at ``\n`` only, like the file readers (a U+2028 inside a JSON string does not end a line)."""
    text = decode_utf8(data, source, error)
    lines = text.split("\n")
    out = [line + "\n" for line in lines[:-1]]
    return out + [lines[-1]] if lines[-1] else out


def parse_json(text: str, source: str, error: type[Exception] = DataError) -> Any:
    """`json.loads` with errors naming ``source:LINE`` (syntax) or the nesting (too deep)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise error(f"{source}:{err.lineno}: invalid JSON ({err.msg} at column {err.colno})") from None
    except RecursionError:
        raise error(f"{source}: JSON nested too deeply to read (is this the right file?)") from None


def parse_json_line(line: str) -> tuple[Any, str | None]:
    """One JSONL line: ``(object, None)``, or ``(None, why)`` for invalid or too deeply nested JSON."""
    try:
        return json.loads(line), None
    except json.JSONDecodeError as err:
        return None, f"invalid JSON ({err.msg} at column {err.colno})"
    except RecursionError:
        return None, "JSON nested too deeply"


def read_json(path: str | os.PathLike, what: str = "JSON file", error: type[Exception] = DataError) -> Any:
    """A JSON file: a checked file, UTF-8, valid JSON; `error` naming the file and line otherwise."""
    p = check_file(path, what, error)
    return parse_json(decode_utf8(_read_bytes(p, what, error), str(p), error), str(p), error)


# -------------------------------------------------------------------------------------------- YAML
def read_yaml(path: str | os.PathLike, what: str = "config file") -> tuple[Any, dict[str, int]]:
    """A YAML file -> ``(data, {dotted key: line})``; ConfigError for every hostile or faulty input.

    Refused, each with the file and line: bytes that are not UTF-8, invalid YAML, a key given twice in
    one mapping (both lines named), and aliases expanding beyond `YAML_MAX_NODES` nodes.
    """
    p = check_file(path, what, ConfigError)
    return parse_yaml(decode_utf8(_read_bytes(p, what, ConfigError), str(p), ConfigError), str(p))


def parse_yaml(text: str, origin: str) -> tuple[Any, dict[str, int]]:
    """`read_yaml` for text already read; `origin` names it in errors."""
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f"{origin}:{mark.line + 1}" if mark is not None else origin
        raise ConfigError(f"{at}: invalid YAML: {getattr(err, 'problem', None) or err}") from None
    except RecursionError:
        raise ConfigError(f"{origin}: YAML nested too deeply to read") from None
    if root is None:
        return None, {}
    try:
        _check_yaml_tree(root, origin)
    except RecursionError:
        raise ConfigError(f"{origin}: YAML nested too deeply to read") from None
    try:
        data = yaml.load(text, Loader=yaml.SafeLoader)  # noqa: S506 (SafeLoader)
    except yaml.YAMLError as err:  # constructor errors (e.g. an unhashable key)
        mark = getattr(err, "problem_mark", None)
        at = f"{origin}:{mark.line + 1}" if mark is not None else origin
        raise ConfigError(f"{at}: invalid YAML: {getattr(err, 'problem', None) or err}") from None
    return data, _key_lines(root)


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _check_yaml_tree(root: Any, origin: str) -> None:
    """Duplicate keys and the expanded size of the node graph (memoised: linear in the text)."""
    import yaml

    sizes: dict[int, int] = {}
    visiting: set[int] = set()

    def size(node: Any) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in visiting:  # a recursive alias (&a [*a]) expands without end
            raise ConfigError(
                f"{origin}:{node.start_mark.line + 1}: a YAML alias refers to itself (write the value out)"
            )
        visiting.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.tag != _MERGE_TAG:
                    line = k.start_mark.line + 1
                    if k.value in seen:
                        raise ConfigError(
                            f"{origin}:{line}: duplicate key '{k.value}' (first at line {seen[k.value]}); "
                            "remove one of them"
                        )
                    seen[k.value] = line
                total += size(k) + size(v)
                if total > YAML_MAX_NODES:
                    break
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                total += size(item)
                if total > YAML_MAX_NODES:
                    break
        visiting.discard(key)
        if total > YAML_MAX_NODES:
            raise ConfigError(
                f"{origin}:{node.start_mark.line + 1}: YAML aliases expand this document beyond "
                f"{YAML_MAX_NODES} values (an alias bomb?); write the values out instead of nesting anchors"
            )
        sizes[key] = total
        return total

    size(root)


def _key_lines(root: Any) -> dict[str, int]:
    """Map each dotted key path of a composed YAML document to the 1-based line of its key."""
    import yaml

    out: dict[str, int] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                dotted = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
                out.setdefault(dotted, key_node.start_mark.line + 1)
                walk(value_node, dotted)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                out.setdefault(f"{prefix}.{i}", item.start_mark.line + 1)
                walk(item, f"{prefix}.{i}")

    walk(root, "")  # bounded: `_check_yaml_tree` capped the expanded size
    return out


# ------------------------------------------------------------------------------------------ images
def _pixel_problem(size: tuple[int, int]) -> str | None:
    w, h = size
    if w * h > MAX_IMAGE_PIXELS:
        return (
            f"the image claims {w}x{h} = {w * h} pixels, more than the limit of {MAX_IMAGE_PIXELS} "
            "(vrft.inputs.MAX_IMAGE_PIXELS; a decompression bomb or a wrong file?): resize it or drop it"
        )
    return None


def _open_problem(err: BaseException) -> str:
    from PIL import Image, UnidentifiedImageError

    if isinstance(err, FileNotFoundError):
        return "file not found"
    if isinstance(err, IsADirectoryError):
        return "is a directory, not an image file"
    if isinstance(err, Image.DecompressionBombError):
        return (
            f"refused as a decompression bomb ({err}); the limit is {MAX_IMAGE_PIXELS} pixels "
            "(vrft.inputs.MAX_IMAGE_PIXELS): resize the image or drop it"
        )
    if isinstance(err, UnidentifiedImageError):
        return "unreadable image (not an image Pillow can read: a wrong or corrupt file)"
    if isinstance(err, MemoryError):
        return "out of memory while decoding it"
    return f"unreadable image ({err.__class__.__name__}: {err})"


# EXIF orientation (tag 0x0112) -> the transpose that shows the image upright (as
# PIL.ImageOps.exif_transpose and transformers' load_image apply it); 5..8 swap width and height.
_ORIENTATION_TAG = 0x0112
_TRANSPOSE = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE", 6: "ROTATE_270",
              7: "TRANSVERSE", 8: "ROTATE_90"}  # fmt: skip


def _orientation(im: Any) -> int:
    """The EXIF orientation (1..8) of an opened, not yet decoded image, read from its header only; 1
    without one. A PNG's ``eXIf`` chunk counts only where it precedes the pixel data (Pillow would
    decode the image to find a later one), for the size and the pixels alike."""
    if im.format == "PNG" and "exif" not in im.info:
        return 1
    try:
        value = int(im.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:  # noqa: BLE001 (a corrupt EXIF block: shown as stored, like an image without one)
        return 1
    return value if value in _TRANSPOSE else 1


def _displayed_size(im: Any) -> tuple[int, int]:
    w, h = im.size
    return (h, w) if _orientation(im) in (5, 6, 7, 8) else (w, h)


def image_size(path: str | os.PathLike) -> tuple[int, int] | str:
    """``(width, height)`` as the image is displayed, from the header (no pixel decoded), or a problem
    description.

    The displayed size follows the EXIF orientation: a photo stored 4000x3000 with orientation 6
    (rotated 90 degrees) is 3000x4000, as `open_image` returns it. Refuses images above
    `MAX_IMAGE_PIXELS`, unreadable and missing files (never raises for them).
    """
    from PIL import Image

    if Path(path).is_dir():
        return "is a directory, not an image file"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                size = _displayed_size(im)
    except Exception as err:  # noqa: BLE001 (any failure to read untrusted bytes is a data problem)
        return _open_problem(err)
    return _pixel_problem(size) or size


def image_problem(path: str | os.PathLike) -> str | None:
    """A problem description when the image header is unusable (see `image_size`), else None."""
    got = image_size(path)
    return got if isinstance(got, str) else None


_HIGH_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def _to_rgb(im: Any, orientation: int = 1) -> Any:
    """A decoded image as the 8-bit RGB picture it shows: upright (EXIF `orientation`), 16-bit and
    32-bit greyscale scaled to 8 bits (``I;16``: value / 257; ``I`` above 255: as 16-bit; ``F`` in
    0..1: x 255, else clipped to 0..255), transparency composited on white."""
    import numpy as np
    from PIL import Image

    if orientation in _TRANSPOSE:
        im = im.transpose(getattr(Image.Transpose, _TRANSPOSE[orientation]))
    if im.mode in _HIGH_BIT_MODES:
        a = np.asarray(im, dtype=np.float64)
        if im.mode == "F":
            finite = a[np.isfinite(a)]
            a = np.nan_to_num(a, nan=0.0, posinf=255.0, neginf=0.0)
            if finite.size and finite.min() >= 0 and finite.max() <= 1.0:
                a = a * 255.0
        elif im.mode.startswith("I;16") or a.max(initial=0) > 255:
            a = a / 257.0
        im = Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB") if im.mode != "RGB" else im


def open_image(source: Any, where: str | None = None, error: type[Exception] = DataError):
    """THE image reader: decode an image (a path, a file object, bytes or a PIL image) fully as the
    8-bit RGB picture a viewer shows; `error` naming `where` (or the path) when it is missing,
    unreadable or larger than `MAX_IMAGE_PIXELS`.

    What a viewer shows: the EXIF orientation applied (as `image_size` reports the size), 16-bit
    greyscale scaled to 8 bits (not clipped to white), transparent areas on white (not black).
    """
    import io

    from PIL import Image

    if isinstance(source, Image.Image):
        problem = _pixel_problem(source.size)
        if problem:
            raise error(f"{where or 'image'}: {problem}")
        return _to_rgb(source, _orientation(source))
    name = where or str(source)
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    elif isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        raise error(f"{name}: is a directory, not an image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source) as im:
                problem = _pixel_problem(im.size)
                if problem is None:
                    orientation = _orientation(im)  # from the header, as `image_size` reads it
                    im.load()
                    return _to_rgb(im, orientation)
    except Exception as err:  # noqa: BLE001 (any failure to decode untrusted bytes is a data problem)
        raise error(f"{name}: cannot read the image: {_open_problem(err)}") from None
    raise error(f"{name}: {problem}")


# --------------------------------------------------------------------------------------- user code
def import_user_module(module: str, what: str):
    """Import the user's module `module` (for `what`, e.g. ``tool 'pkg.mod:fn'``); ConfigError naming
    it when it is missing, does not compile (file and line given) or raises while it is imported."""
    import importlib

    try:
        return importlib.import_module(module)
    except SyntaxError as err:  # a subclass of Exception: named with its file and line
        raise ConfigError(
            f"{what}: module {module!r} does not compile: {err.filename}:{err.lineno}: {err.msg} (fix the file)"
        ) from None
    except ImportError as err:
        raise ConfigError(f"{what}: cannot import module {module!r} ({err})") from None
    except (Exception, SystemExit) as err:  # noqa: BLE001 (user code run at import time)
        raise ConfigError(
            f"{what}: importing module {module!r} raised {type(err).__name__}: {err} (fix the module's "
            "top-level code)"
        ) from None


# ------------------------------------------------------------------------------------------- seeds
def normalize_seed(seed: int) -> int:
    """Any integer seed -> ``seed mod 2**32`` (0 .. 2**32 - 1, what numpy, torch and random accept)."""
    return int(seed) % SEED_MODULUS


def seed_arg(text: str) -> int:
    """argparse ``type=`` for ``--seed``: any integer (negative too), mapped by `normalize_seed`."""
    try:
        return normalize_seed(int(text, 10))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer seed") from None


__all__ = [
    "MAX_IMAGE_PIXELS",
    "SEED_MODULUS",
    "YAML_MAX_NODES",
    "check_file",
    "decode_lines",
    "decode_utf8",
    "image_problem",
    "image_size",
    "import_user_module",
    "iter_lines",
    "normalize_seed",
    "open_image",
    "parse_json",
    "parse_yaml",
    "read_json",
    "read_text",
    "read_yaml",
    "seed_arg",
]
