"""`vrft data convert multi-image`: JSONL {images, expression, target, bbox} -> multi_image_grounding records."""

import json

import pytest
from PIL import Image

from vrft.cli import main
from vrft.data.multi_image import convert_multi_image
from vrft.data.records import load_records
from vrft.errors import DataError


@pytest.fixture
def src(tmp_path):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    Image.new("RGB", (40, 30)).save(imgs / "a.png")
    Image.new("RGB", (64, 48)).save(imgs / "b.png")
    Image.new("RGB", (32, 32)).save(imgs / "c.png")
    return tmp_path


def _write(path, *entries):
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return path


def test_multi_image_records(src):
    f = _write(
        src / "sets.jsonl",
        {"images": ["imgs/a.png", "imgs/b.png", "imgs/c.png"], "expression": "the mug", "target": 2,
         "bbox": [10, 5, 60, 48.5], "id": "q7"},
    )  # fmt: skip
    out = src / "out" / "mi.jsonl"
    assert main(["data", "convert", "multi-image", str(f), "--out", str(out)]) == 0
    (rec,) = load_records(out)
    assert rec.task == "multi_image_grounding" and rec.id == "mi-q7"
    assert rec.images == ["../imgs/a.png", "../imgs/b.png", "../imgs/c.png"]
    assert rec.image_sizes == [[40, 30], [64, 48], [32, 32]]
    assert rec.target_image == 2 and rec.boxes == [[10.0, 5.0, 60.0, 48.0]]  # clipped (0.5 px past the edge)
    from vrft.data.validate import validate_path

    assert validate_path(out).problems == []


def test_zero_based_targets_and_xywh(src):
    f = _write(
        src / "s.jsonl",
        {"images": ["a.png", "b.png"], "expression": "x", "target": 0, "bbox": [1, 2, 10, 10]},
    )
    (rec,) = convert_multi_image(f, images_dir=src / "imgs", target_base=0, box_format="xywh")
    assert rec.target_image == 1 and rec.boxes == [[1.0, 2.0, 11.0, 12.0]]


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"target": 3}, r"s.jsonl:1: target: unknown image index 3 \(2 images: 1..2 with --target-base 1"),
        ({"target": 0}, r"s.jsonl:1: target: unknown image index 0"),
        ({"target": True}, r"s.jsonl:1: target: True must be an integer"),
        ({"target": 1.0}, r"s.jsonl:1: target: 1.0 must be an integer"),
        ({"images": ["a.png", "gone.png"]}, r"s.jsonl:1: images\[1\]: .*gone.png"),
        ({"images": []}, r"s.jsonl:1: images: \[\] must be a non-empty list"),
        ({"images": ["a.png"] * 17}, r"s.jsonl:1: images: 17 images, the limit is 16"),
        ({"bbox": [1, 2, 3]}, r"s.jsonl:1: bbox: \[1, 2, 3\] must be four finite numbers"),
        ({"bbox": [5, 5, 2, 9]}, r"s.jsonl:1: bbox: .* has no area"),
        ({"bbox": [0, 0, 50, 20]}, r"s.jsonl:1: bbox: .* lies outside image 1 \(40x30 px"),
        ({"expression": " "}, r"s.jsonl:1: expression: missing"),
    ],
)
def test_refusals(src, entry, message):
    base = {"images": ["a.png", "b.png"], "expression": "x", "target": 1, "bbox": [1, 1, 5, 5]}
    f = _write(src / "s.jsonl", {**base, **entry})
    with pytest.raises(DataError, match=message):
        convert_multi_image(f, images_dir=src / "imgs")


def test_cli_refusal_is_one_line_per_problem(src, capsys):
    f = src / "s.jsonl"
    f.write_text('{"images": ["a.png"], "expression": "x", "target": 2, "bbox": [1, 1, 5, 5]}\nnot json\n')
    args = [
        "data",
        "convert",
        "multi-image",
        str(f),
        "--images",
        str(src / "imgs"),
        "--out",
        str(src / "o.jsonl"),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "s.jsonl:1: target: unknown image index 2" in err and "s.jsonl:2: invalid JSON" in err
    assert "Traceback" not in err and not (src / "o.jsonl").exists()
