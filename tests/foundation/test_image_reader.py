"""Issue 19: the one image reader shows what a viewer shows (EXIF orientation, 16-bit, transparency),
and the header size agrees with it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from vrft.inputs import image_size, open_image


def _exif_jpeg(path, orientation: int, size=(40, 20)):
    """A JPEG stored `size` (left half red, right half blue) with an EXIF orientation tag."""
    img = Image.new("RGB", size, (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, size[0] // 2, size[1]))
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(path, exif=exif.tobytes(), quality=95)
    return path


@pytest.mark.parametrize("orientation", [6, 8, 5, 7])
def test_exif_rotated_photo_is_read_upright_and_its_header_size_is_the_displayed_one(tmp_path, orientation):
    path = _exif_jpeg(tmp_path / "photo.jpg", orientation)
    with Image.open(path) as raw:
        assert raw.size == (40, 20)  # stored sideways
    assert image_size(path) == (20, 40)
    img = open_image(path)
    assert img.size == (20, 40) and img.mode == "RGB"
    from PIL import ImageOps

    with Image.open(path) as raw:
        expected = np.asarray(ImageOps.exif_transpose(raw).convert("RGB"), dtype=int)
    assert np.abs(np.asarray(img, dtype=int) - expected).max() <= 1  # as transformers' load_image


def test_exif_orientation_1_and_3_keep_the_size(tmp_path):
    for o in (1, 3):
        path = _exif_jpeg(tmp_path / f"p{o}.jpg", o)
        assert image_size(path) == (40, 20) == open_image(path).size
    a = np.asarray(open_image(tmp_path / "p3.jpg"), dtype=int)
    assert a[10, 35, 0] > 200 and a[10, 5, 2] > 200  # rotated 180: red on the right now


def test_sixteen_bit_png_is_scaled_not_white(tmp_path):
    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1024).astype(np.uint16)  # 0 .. 64512
    path = tmp_path / "deep.png"
    deep = Image.new("I;16", (8, 8))
    deep.frombytes(ramp.astype("<u2").tobytes())
    deep.save(path)
    with Image.open(path) as raw:
        assert raw.mode in ("I;16", "I")
    img = open_image(path)
    a = np.asarray(img)
    assert img.mode == "RGB" and a[0, 0, 0] == 0 and a[7, 7, 0] == round(63 * 1024 / 257)
    assert len(np.unique(a)) > 32  # a ramp, not a white square
    assert open_image(deep).getpixel((7, 7))[0] == round(63 * 1024 / 257)


def test_transparent_areas_are_white_not_black(tmp_path):
    img = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    img.paste((255, 0, 0, 255), (0, 0, 5, 10))
    img.putpixel((7, 7), (0, 0, 255, 128))  # half transparent blue
    path = tmp_path / "cut.png"
    img.save(path)
    got = open_image(path)
    assert got.getpixel((9, 9)) == (255, 255, 255) and got.getpixel((2, 2)) == (255, 0, 0)
    assert got.getpixel((7, 7)) == (127, 127, 255)
    pal = Image.new("P", (4, 4), 0)
    pal.putpalette([0, 0, 0, 255, 0, 0])
    pal.info["transparency"] = 0
    pal.save(tmp_path / "pal.png", transparency=0)
    assert open_image(tmp_path / "pal.png").getpixel((0, 0)) == (255, 255, 255)
    la = Image.new("LA", (4, 4), (0, 0))
    assert open_image(la).getpixel((0, 0)) == (255, 255, 255)


def test_validate_accepts_sizes_of_the_displayed_orientation(tmp_path, capsys):
    """A COCO file whose sizes follow the displayed orientation converts and validates; the stored
    (sideways) size is the one refused, with a hint naming the orientation."""
    from vrft.cli import main

    _exif_jpeg(tmp_path / "photo.jpg", 6)
    rec = {"id": "a", "task": "classification", "image": "photo.jpg", "width": 20, "height": 40,
           "label": "x", "classes": ["x", "y"]}  # fmt: skip
    (tmp_path / "ok.jsonl").write_text(json.dumps(rec) + "\n")
    assert main(["data", "validate", str(tmp_path / "ok.jsonl")]) == 0
    (tmp_path / "bad.jsonl").write_text(json.dumps({**rec, "width": 40, "height": 20}) + "\n")
    assert main(["data", "validate", str(tmp_path / "bad.jsonl")]) != 0
    got = capsys.readouterr()
    assert "20x40" in got.out + got.err and "EXIF" in got.out + got.err
