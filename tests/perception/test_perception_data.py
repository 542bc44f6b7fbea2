"""Counting and OCR converters (fixtures written here), and the shapes world's counting / OCR images."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from vrft.cli import main
from vrft.data.counting import convert_counting
from vrft.data.ocr import convert_icdar, convert_ocr_jsonl
from vrft.data.records import load_records
from vrft.errors import DataError


def image(path, w=200, h=100):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (w, h), "white").save(path)
    return path


def test_counting_points_percent_and_boxes(tmp_path):
    image(tmp_path / "img" / "a.png")
    image(tmp_path / "img" / "b.png")
    entries = [
        {"image": "img/a.png", "label": "apple", "points": [{"x": 50, "y": 50}, [10, 20]], "count": 2},
        {"image_path": "img/b.png", "boxes": [[10, 10, 20, 20]]},
        {"image": "img/b.png", "category": "pear", "points": []},
    ]
    src = tmp_path / "pixmo.json"
    src.write_text(json.dumps(entries))
    recs = convert_counting(src, category="object", coords="percent", out=tmp_path / "out" / "c.jsonl")
    assert [r.category for r in recs] == ["apple", "object", "pear"]
    # (50 %, 50 %) of 200x100 -> (100, 50); radius 0.04 * 100 = 4 px
    assert recs[0].boxes[0] == [96.0, 46.0, 104.0, 54.0] and recs[0].meta["points"][0] == [100.0, 50.0]
    assert recs[0].boxes[1] == [16.0, 16.0, 24.0, 24.0]
    assert recs[1].boxes == [[20.0, 10.0, 40.0, 20.0]] and recs[2].boxes == []
    loaded = load_records(tmp_path / "out" / "c.jsonl", task="counting")
    assert [len(r.boxes) for r in loaded] == [2, 1, 0]
    assert loaded[0].resolved_image().resolve() == (tmp_path / "img" / "a.png").resolve()


def test_counting_jsonl_xywh_and_cli(tmp_path, capsys):
    image(tmp_path / "a.png")
    src = tmp_path / "clevr.jsonl"
    src.write_text(json.dumps({"image": "a.png", "category": "cube", "boxes": [[10, 10, 5, 5]]}) + "\n")
    out = tmp_path / "c.jsonl"
    rc = main(["data", "convert", "counting", str(src), "--box-format", "xywh", "--out", str(out)])
    assert rc == 0 and "wrote 1 counting records (1 objects)" in capsys.readouterr().out
    assert load_records(out)[0].boxes == [[10.0, 10.0, 15.0, 15.0]]


def test_counting_bad_entries_are_all_reported(tmp_path, capsys):
    image(tmp_path / "a.png")
    entries = [
        {"image": "a.png", "category": "x", "points": [[1, 2, 3]]},
        {"image": "a.png", "category": "x", "count": 3},
        {"image": "missing.png", "category": "x", "points": [[1, 2]]},
        {"image": "a.png", "points": [[1, 2]]},
        {"image": "a.png", "category": "x", "points": [[500, 20]]},
        {"image": "a.png", "category": "x", "points": [[5, 5]], "count": 2},
        {"image": "a.png", "category": "x", "boxes": [[20, 20, 10, 10]]},
        "not an object",
    ]
    src = tmp_path / "bad.json"
    src.write_text(json.dumps(entries))
    with pytest.raises(DataError) as err:
        convert_counting(src)
    text = str(err.value)
    assert "8 problem(s)" in text
    for i, fragment in enumerate(["points[0]", "neither 'points' nor 'boxes'", "file not found", "category: missing",
                                  "outside the 200x100 image", "count: 2 but 1 points", "has no area",
                                  "expected an object"]):  # fmt: skip
        assert f"bad.json:[{i}]: " in text and fragment in text
    assert main(["data", "convert", "counting", str(src), "--out", str(tmp_path / "o.jsonl")]) == 2
    assert "vrft data: error:" in capsys.readouterr().err
    src.write_text("{}")
    with pytest.raises(DataError, match="expected a JSON list"):
        convert_counting(src)


def test_ocr_jsonl(tmp_path):
    image(tmp_path / "w1.png")
    image(tmp_path / "w2.png", 60, 20)
    src = tmp_path / "ocr.jsonl"
    src.write_text(
        json.dumps({"image": "w1.png", "text": "Hello  World"}) + "\n\n"
        + json.dumps({"image": "w2.png", "transcription": "", "id": "blank"}) + "\n"
    )  # fmt: skip
    recs = convert_ocr_jsonl(src, out=tmp_path / "o.jsonl")
    assert [(r.id, r.text, r.width) for r in recs] == [("ocr-1", "Hello  World", 200), ("blank", "", 60)]
    assert [r.text for r in load_records(tmp_path / "o.jsonl", task="ocr")] == ["Hello  World", ""]
    src.write_text('{"image": "w1.png"}\nnot json\n{"image": "nope.png", "text": "a"}\n[1]\n')
    with pytest.raises(DataError) as err:
        convert_ocr_jsonl(src)
    assert "4 problem(s)" in str(err.value)
    for n, fragment in [
        (1, "text: missing"),
        (2, "invalid JSON"),
        (3, "file not found"),
        (4, "expected an object"),
    ]:
        assert f"ocr.jsonl:{n}: " in str(err.value) and fragment in str(err.value)


def test_icdar_folders(tmp_path, capsys):
    words = tmp_path / "words"
    image(words / "word_1.png")
    image(words / "word_2.png")
    (words / "gt.txt").write_text(
        '\ufeffword_1.png, "Tiredness"\nword_2.png, "say \\"hi\\""\n', encoding="utf-8"
    )
    recs = convert_icdar(words)
    assert [r.text for r in recs] == ["Tiredness", 'say "hi"'] and recs[0].id == "icdar-word_1"
    scenes = tmp_path / "scenes"
    image(scenes / "img_1.jpg")
    image(scenes / "img_2.png")
    (scenes / "gt_img_1.txt").write_text(
        "1,2,3,4,5,6,7,8,Genaxis\n1,2,3,4,5,6,7,8,###\n9,9,9,9,9,9,9,9,Theatre\n"
    )
    (scenes / "img_2.txt").write_text("  plain text\n")
    out = tmp_path / "icdar.jsonl"
    assert main(["data", "convert", "icdar", str(scenes), "--out", str(out)]) == 0
    assert [r.text for r in load_records(out)] == ["Genaxis Theatre", "plain text"]
    capsys.readouterr()
    image(scenes / "img_3.png")
    (scenes / "orphan.txt").write_text("x")
    with pytest.raises(DataError) as err:
        convert_icdar(scenes)
    assert "img_3.png: no text file" in str(err.value) and "orphan.txt: a text file without an image" in str(
        err.value
    )
    with pytest.raises(DataError, match="not a folder"):
        convert_icdar(tmp_path / "none")


def test_synth_counting_and_ocr(tmp_path, capsys):
    from vrft.data.shapes import draw_counting, draw_ocr

    out = tmp_path / "shapes"
    rc = main(
        ["data", "synth", "--out", str(out), "--images", "0", "--size", "64", "--counting", "6", "--ocr", "4"]
    )
    assert rc == 0
    counting = load_records(out / "counting.jsonl", task="counting")
    ocr = load_records(out / "ocr.jsonl", task="ocr")
    assert len(counting) == 6 and len(ocr) == 4
    assert all(r.category and r.width == 64 and r.resolved_image().is_file() for r in counting)
    assert len({len(r.boxes) for r in counting}) > 1  # the counts vary
    assert all(r.text and r.text.strip() == r.text and r.resolved_image().is_file() for r in ocr)
    # deterministic, and the drawn text is visible
    a, b = draw_counting(3, 7, 64), draw_counting(3, 7, 64)
    assert a[1:] == b[1:] and a[0].tobytes() == b[0].tobytes()
    img, text = draw_ocr(1, 0)
    assert text == draw_ocr(1, 0)[1] and np.asarray(img.convert("L")).min() < 100


def test_counting_converter_and_validate_refuse_more_points_than_the_parser_reads(tmp_path, capsys):
    """Issue 19: a record with 20,000 points was accepted, then its honest answer scored 0 in audit."""
    from vrft.parsing import MAX_POINTS

    image(tmp_path / "a.png")
    src = tmp_path / "many.json"
    many = [[1 + i % 150, 1 + i % 90] for i in range(20_000)]
    src.write_text(json.dumps([{"image": "a.png", "category": "dot", "points": many},
                               {"image": "a.png", "category": "dot", "points": many[:MAX_POINTS]}]))  # fmt: skip
    with pytest.raises(DataError, match=rf"\[0\]: points: 20000 objects, more than the {MAX_POINTS} points"):
        convert_counting(src)
    src.write_text(json.dumps([{"image": "a.png", "category": "dot", "points": many[:MAX_POINTS]}]))
    assert len(convert_counting(src)[0].boxes) == MAX_POINTS  # the limit itself is fine
    rec = {"id": "r", "task": "counting", "image": "a.png", "width": 200, "height": 100, "category": "dot",
           "boxes": [[0, 0, 1, 1]] * (MAX_POINTS + 1)}  # fmt: skip
    (tmp_path / "r.jsonl").write_text(json.dumps(rec) + "\n")
    assert main(["data", "validate", str(tmp_path / "r.jsonl")]) != 0
    got = capsys.readouterr()
    assert "vrft.parsing.MAX_POINTS" in got.out + got.err


def test_ocr_jsonl_reads_mmocr_filename_and_names_the_keys_it_wants(tmp_path):
    """Issue 19: mmocr's {"filename": ..., "text": ...} was refused without naming the wanted key."""
    image(tmp_path / "w1.png")
    src = tmp_path / "mmocr.jsonl"
    src.write_text(json.dumps({"filename": "w1.png", "text": "Hi"}) + "\n")
    assert [(r.text, r.width) for r in convert_ocr_jsonl(src)] == [("Hi", 200)]
    src.write_text(json.dumps({"picture": "w1.png", "text": "Hi"}) + "\n")
    with pytest.raises(DataError, match="image: missing \\(give one of the keys 'image', .*'filename'"):
        convert_ocr_jsonl(src)
