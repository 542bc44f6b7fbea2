import json

import pytest
from PIL import Image

from vrft.data.records import load_records
from vrft.data.synthetic import (
    ALL_CLASSES,
    BASE_CLASSES,
    CATEGORY_IDS,
    NOVEL_CLASSES,
    SHAPE_SPLIT,
    classification_labels,
    draw_scene,
    referring_expressions,
    synthesize,
)
from vrft.errors import UserError


def test_split_is_a_partition():
    assert set(BASE_CLASSES).isdisjoint(NOVEL_CLASSES)
    assert len(ALL_CLASSES) >= 8 and set(ALL_CLASSES) == set(SHAPE_SPLIT["base"]) | set(SHAPE_SPLIT["novel"])


def test_same_seed_is_byte_identical_whatever_n(tmp_path):
    a = synthesize(tmp_path / "a", 3, seed=7, size=64, grounding=True, classification=2)
    b = synthesize(tmp_path / "b", 5, seed=7, size=64, grounding=True, classification=3)
    c = synthesize(tmp_path / "c", 3, seed=7, size=64, grounding=True, classification=2)
    assert a.read_bytes() == c.read_bytes()
    for sub in ("images/000000.png", "images/000002.png", "classification/000001.png", "grounding.jsonl"):
        assert (tmp_path / "a" / sub).read_bytes() == (tmp_path / "c" / sub).read_bytes()
    for i in range(3):
        name = f"images/{i:06d}.png"
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    ja, jb = json.loads(a.read_text()), json.loads(b.read_text())
    assert ja["annotations"] == jb["annotations"][: len(ja["annotations"])]
    d = synthesize(tmp_path / "d", 3, seed=8, size=64)
    assert (tmp_path / "d/images/000000.png").read_bytes() != (tmp_path / "a/images/000000.png").read_bytes()
    assert d.exists()


def test_instances_json_is_coco(tmp_path):
    path = synthesize(tmp_path, 6, seed=1, size=96, min_objects=2, max_objects=4, split="base")
    data = json.loads(path.read_text())
    assert len(data["images"]) == 6
    assert {c["name"] for c in data["categories"]} == set(BASE_CLASSES)
    assert all(c["split"] == "base" and c["id"] == CATEGORY_IDS[c["name"]] for c in data["categories"])
    ids = [a["id"] for a in data["annotations"]]
    assert len(ids) == len(set(ids))
    per_image = {}
    for ann in data["annotations"]:
        x, y, w, h = ann["bbox"]
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= 96 and y + h <= 96
        assert ann["iscrowd"] == 0 and 0 < ann["area"] <= w * h + 1e-6
        per_image[ann["image_id"]] = per_image.get(ann["image_id"], 0) + 1
    assert all(1 <= n <= 4 for n in per_image.values()) and len(per_image) == 6
    img = Image.open(tmp_path / data["images"][0]["file_name"])
    assert img.mode == "RGB" and img.size == (96, 96)
    from pycocotools.coco import COCO

    coco = COCO(str(path))
    assert len(coco.getAnnIds()) == len(ids)


def test_objects_visible_and_within_overlap_limit():
    for i in range(30):
        _, objects = draw_scene(i, 3, 128, max_objects=4, max_overlap=0.25)
        for a in range(len(objects)):
            for b in range(a + 1, len(objects)):
                p, q = objects[a].box, objects[b].box
                iw = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
                ih = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
                smaller = min((p[2] - p[0]) * (p[3] - p[1]), (q[2] - q[0]) * (q[3] - q[1]))
                assert iw * ih <= 0.25 * smaller + 1e-3


def test_referring_expressions_are_unambiguous(tmp_path):
    for i in range(40):
        _, objects = draw_scene(i, 11, 128, min_objects=2, max_objects=4)
        for text, target in referring_expressions(objects, 128):
            words = text.split()
            if text.startswith("the shape ") and len(words) >= 5:  # relation to an anchor
                rel = " ".join(words[2:-3]) if words[2] in ("left", "right") else words[2]
                colour, shape = words[-2], words[-1]
                (a,) = [o for o in objects if o.colour == colour and o.shape == shape]
                holds = {
                    "left of": lambda o, a: o.box[2] < a.box[0],
                    "right of": lambda o, a: o.box[0] > a.box[2],
                    "above": lambda o, a: o.box[3] < a.box[1],
                    "below": lambda o, a: o.box[1] > a.box[3],
                }[rel]
                assert [k for k, o in enumerate(objects) if o is not a and holds(o, a)] == [target], text
                continue
            if words[1] in ("largest", "smallest", "leftmost", "rightmost", "topmost", "bottommost"):
                continue
            # "the <colour> <shape>" / "the <shape>" / "the <colour> shape": exactly one match
            matches = [
                k for k, o in enumerate(objects) if all(w in (o.colour, o.shape, "shape") for w in words[1:])
            ]
            assert matches == [target], text
    recs = load_records(synthesize(tmp_path, 10, seed=2, size=96, grounding=True).parent / "grounding.jsonl")
    assert recs and all(r.task == "grounding" and len(r.boxes) == 1 for r in recs)


def test_classification_records(tmp_path):
    synthesize(tmp_path, 1, seed=0, size=64, classification=12, split="novel")
    recs = load_records(tmp_path / "classification.jsonl", task="classification")
    labels = classification_labels(NOVEL_CLASSES)
    assert "six-pointed star" in labels and "hollow heart" in labels and "circle" not in labels
    assert len(recs) == 12 and all(r.label in labels and r.classes == labels for r in recs)
    assert recs[0].domain == {"object": "shape", "attribute": "type"}
    assert Image.open(recs[0].image_path).size == (64, 64)


def test_bad_arguments(tmp_path):
    with pytest.raises(UserError, match="unknown shape classes"):
        synthesize(tmp_path, 1, classes=["blob"])
    with pytest.raises(UserError, match="unknown split"):
        synthesize(tmp_path, 1, split="rare")


def test_object_scale_range(tmp_path):
    for lo, hi in ((0.15, 0.15), (0.5, 0.5)):
        p = synthesize(
            tmp_path / str(lo), 8, size=112, min_objects=1, max_objects=1, min_scale=lo, max_scale=hi
        )
        heights = [a["bbox"][3] / 112 for a in json.loads(p.read_text())["annotations"]]
        assert heights and all(lo - 0.01 <= h <= hi + 0.1 for h in heights), (lo, heights)
    with pytest.raises(UserError):
        synthesize(tmp_path / "bad", 1, min_scale=0.5, max_scale=0.2)


def test_class_colours(tmp_path):
    from vrft.data.synthetic import CLASS_COLOURS

    p = synthesize(tmp_path / "c", 12, size=64, min_objects=1, max_objects=3, class_colours=True)
    data = json.loads(p.read_text())
    names = {c["id"]: c["name"] for c in data["categories"]}
    anns = data["annotations"]
    assert anns and all(a["attributes"]["color"] == CLASS_COLOURS[names[a["category_id"]]][0] for a in anns)
    assert len({rgb for _, rgb in CLASS_COLOURS.values()}) == len(CLASS_COLOURS)  # one colour per class
    # The same scenes (boxes) as without class colours: only the fill changes.
    q = synthesize(tmp_path / "r", 12, size=64, min_objects=1, max_objects=3)
    assert [a["bbox"] for a in json.loads(q.read_text())["annotations"]] == [a["bbox"] for a in anns]
