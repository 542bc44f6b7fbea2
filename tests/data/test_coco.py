import json
import math

import pytest

from vrft.data.coco import convert_coco
from vrft.data.presets import COCO_CLASSES, COCO_OV_BASE_65, COCO_OV_NOVEL_15, PRESETS
from vrft.data.records import load_records
from vrft.errors import DataError


def by_id(records):
    return {r.id: r for r in records}


def test_positives_crowd_and_clipping(coco_file):
    recs = by_id(convert_coco(coco_file))
    cat = recs["coco-1-cat"]
    assert cat.boxes == [[1.0, 2.0, 11.0, 10.0], [20.0, 5.0, 25.0, 10.0]]  # crowd box is no target
    assert cat.meta["crowd_boxes"] == [[0.0, 0.0, 40.0, 30.0]] and cat.meta["category_id"] == 2
    assert recs["coco-4-dog"].boxes == [[30.0, 20.0, 40.0, 30.0]]  # clipped to the image
    # image 2 has only a crowd person: that pair is neither positive nor negative
    assert "coco-2-person" not in recs
    assert set(recs) == {"coco-1-cat", "coco-1-dog", "coco-4-dog"}  # ratio 0: no negatives
    assert cat.image_path.name == "001.jpg" and cat.width == 40


def test_all_negatives_are_truly_absent(coco_file):
    recs = by_id(convert_coco(coco_file, negative_ratio=math.inf))
    negatives = {k for k, r in recs.items() if not r.boxes}
    assert "coco-2-person" not in recs  # crowd-only: never a negative either
    assert {
        "coco-3-person",
        "coco-3-cat",
        "coco-3-dog",
        "coco-3-hot_dog",
        "coco-2-cat",
        "coco-1-person",
    } <= negatives
    assert "coco-1-cat" not in negatives and "coco-4-dog" not in negatives


def test_negative_ratio_is_seeded(coco_file):
    a = convert_coco(coco_file, negative_ratio=1.0, seed=3)
    b = convert_coco(coco_file, negative_ratio=1.0, seed=3)
    assert [r.id for r in a] == [r.id for r in b]
    assert sum(1 for r in a if not r.boxes) == 3  # round(1.0 x 3 positives)
    seeds = {tuple(r.id for r in convert_coco(coco_file, negative_ratio=1.0, seed=s)) for s in range(8)}
    assert len(seeds) > 1


def test_category_subset_and_output(coco_file, tmp_path):
    out = tmp_path / "out" / "det.jsonl"
    convert_coco(coco_file, categories=["dog", "hot dog"], negative_ratio=math.inf, out=out)
    recs = load_records(out, task="detection")
    assert {r.category for r in recs} == {"dog", "hot dog"}
    assert json.loads(out.read_text().splitlines()[0])["image"] == "../coco/images/001.jpg"
    with pytest.raises(DataError, match="'zebra'"):
        convert_coco(coco_file, categories=["zebra"])


def test_missing_images_and_broken_json(coco_file, tmp_path):
    (coco_file.parent / "images" / "003.jpg").unlink()
    with pytest.raises(DataError, match=r"image id=3: file not found"):
        convert_coco(coco_file)
    assert len(convert_coco(coco_file, check_images=False)) == 3
    data = json.loads(coco_file.read_text())
    data["annotations"].append({"id": 10, "image_id": 9, "category_id": 7, "bbox": [0, 0, 1]})
    coco_file.write_text(json.dumps(data))
    with pytest.raises(DataError) as exc:
        convert_coco(coco_file, check_images=False)
    msg = str(exc.value)
    assert "annotation id=10: duplicate" in msg and "unknown image_id=9" in msg
    assert "unknown category_id=7" in msg and "bbox=[0, 0, 1]" in msg


def test_presets():
    assert len(COCO_CLASSES) == 80 and len(set(COCO_CLASSES)) == 80
    assert len(COCO_OV_NOVEL_15) == 15 and set(COCO_OV_NOVEL_15) <= set(COCO_CLASSES)
    assert len(COCO_OV_BASE_65) == 65 and not set(COCO_OV_BASE_65) & set(COCO_OV_NOVEL_15)
    assert all(set(PRESETS[p][1]) <= set(COCO_CLASSES) for p in PRESETS if PRESETS[p][0] == "coco")


# ---------------------------------------------------------------------------- issue 19
def _rewrite(path, **changes):
    data = json.loads(path.read_text())
    for key, fn in changes.items():
        data[key] = fn(data[key])
    path.write_text(json.dumps(data))


def test_same_name_categories_are_merged_not_both_positive_and_negative(coco_file, tmp_path, capsys):
    from vrft.cli import main

    # a second 'cat' category (id 7) with one box in image 4: image 4 would get cat positive (id 7)
    # and cat 'No Objects' (id 2)
    _rewrite(coco_file, categories=lambda c: [*c, {"id": 7, "name": "cat"}],
             annotations=lambda a: [*a, {"id": 70, "image_id": 4, "category_id": 7, "bbox": [2, 2, 5, 5]}])  # fmt: skip
    recs = convert_coco(coco_file, negative_ratio=math.inf)
    cats = [r for r in recs if r.category == "cat"]
    assert len({r.image_id for r in cats}) == len(cats)  # one record per image and name
    four = [r for r in cats if r.image_id == 4]
    assert len(four) == 1 and four[0].boxes == [[2.0, 2.0, 7.0, 7.0]]
    # validate catches such conflicting records in a records file
    out = tmp_path / "r.jsonl"
    lines = [json.dumps({"id": f"r{i}", "task": "detection", "image": str(coco_file.parent / "images" / "004.jpg"),
                         "width": 40, "height": 30, "category": "cat", "boxes": b})
             for i, b in enumerate([[[2, 2, 7, 7]], []])]  # fmt: skip
    out.write_text("\n".join(lines) + "\n")
    assert main(["data", "validate", str(out)]) != 0
    got = capsys.readouterr().out
    assert ":2: boxes: conflicts with line 1" in got and "'No Objects'" in got


def test_convert_coco_refuses_a_width_height_that_is_not_the_files(coco_file, capsys):
    from vrft.cli import main

    _rewrite(coco_file, images=lambda imgs: [{**i, "width": 20} if i["id"] == 4 else i for i in imgs])
    with pytest.raises(DataError, match=r"image id=4 \(004.jpg\): width/height 20x30 in the JSON but the file is 40x30"):
        convert_coco(coco_file)
    out = coco_file.parent / "out.jsonl"
    assert main(["data", "convert", "coco", str(coco_file), "--out", str(out)]) == 2
    assert not out.exists()
    # an image stored sideways with an EXIF orientation: the JSON's displayed size is right
    from PIL import Image

    img = Image.new("RGB", (30, 40))
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(coco_file.parent / "images" / "004.jpg", exif=exif.tobytes())
    _rewrite(coco_file, images=lambda imgs: [{**i, "width": 40} if i["id"] == 4 else i for i in imgs])
    assert main(["data", "convert", "coco", str(coco_file), "--out", str(out)]) == 0
    assert main(["data", "validate", str(out)]) == 0
