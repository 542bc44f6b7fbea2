import json

import pytest

from vrft.data.grounding import convert_lisa, convert_refcoco
from vrft.data.records import load_records
from vrft.errors import DataError

from .conftest import write_image


def test_refcoco(coco_file, tmp_path):
    refs = [
        {"ref_id": 7, "ann_id": 10, "image_id": 1, "split": "train",
         "sentences": [{"sent": "cat on the left"}, {"sent": "small cat"}]},
        {"ref_id": 8, "ann_id": 13, "image_id": 1, "split": "testA", "sentences": [{"sent": "the dog"}]},
    ]  # fmt: skip
    path = tmp_path / "refs.json"
    path.write_text(json.dumps(refs))
    out = tmp_path / "g.jsonl"
    recs = convert_refcoco(path, coco_file, splits=["train"], out=out)
    assert [r.expression for r in recs] == ["cat on the left", "small cat"]
    assert recs[0].boxes == [[1.0, 2.0, 11.0, 10.0]] and recs[0].image_id == 1
    assert len(load_records(out, task="grounding")) == 2
    assert len(convert_refcoco(path, coco_file, first_sentence_only=True)) == 2
    refs.append({"ref_id": 9, "ann_id": 999, "image_id": 1, "sentences": [{"sent": "x"}]})
    refs.append({"ref_id": 10, "ann_id": 13, "image_id": 2, "sentences": []})
    path.write_text(json.dumps(refs))
    with pytest.raises(DataError) as exc:
        convert_refcoco(path, coco_file)
    assert "refs[2]: ann_id=999" in str(exc.value) and "refs[3]: image_id=2" in str(exc.value)


def test_simple_list(tmp_path):
    write_image(tmp_path / "im.png", size=(50, 40))
    path = tmp_path / "simple.json"
    path.write_text(json.dumps([{"image": "im.png", "expression": "the thing", "bbox": [10, 5, 20, 10]}]))
    (rec,) = convert_refcoco(path)
    assert rec.boxes == [[10.0, 5.0, 30.0, 15.0]] and (rec.width, rec.height) == (50, 40)
    path.write_text(json.dumps([{"image": "im.png", "expression": "x", "bbox": [10, 5, 0, 10]}]))
    with pytest.raises(DataError, match=r"\[0\]: bbox"):
        convert_refcoco(path)


def test_lisa(tmp_path):
    d = tmp_path / "lisa"
    write_image(d / "a.jpg", size=(60, 50))
    (d / "a.json").write_text(json.dumps({
        "text": ["what can I sit on?", "the object for sitting"], "is_sentence": True,
        "shapes": [
            {"label": "target", "points": [[10, 10], [20, 5], [25, 30]]},
            {"label": "target", "points": [[30, 40], [70, 45], [40, 48]]},   # partly outside: clipped
            {"label": "ignore", "points": [[0, 0], [5, 5], [0, 5]]},
        ],
    }))  # fmt: skip
    write_image(d / "b.jpg")
    (d / "b.json").write_text(
        json.dumps({"text": "x", "shapes": [{"label": "ignore", "points": [[0, 0], [1, 1]]}]})
    )
    (d / "c.json").write_text(json.dumps({"text": "y", "shapes": []}))
    with pytest.raises(DataError) as exc:
        convert_lisa(d)
    msg = str(exc.value)
    assert "b.json: shapes: no target polygon" in msg and "c.json: image: none of" in msg
    (d / "b.json").unlink()
    (d / "c.json").unlink()
    recs = convert_lisa(d, out=tmp_path / "lisa.jsonl")
    assert [r.expression for r in recs] == ["what can I sit on?", "the object for sitting"]
    assert recs[0].boxes == [[10.0, 5.0, 60.0, 48.0]]
    assert load_records(tmp_path / "lisa.jsonl")[1].meta["n_polygons"] == 2


def test_lisa_reference_recipe_first_shape_first_instruction(tmp_path):
    """--first-shape: the box of shapes[0] whatever its label (the reference's gen_box_ann.py);
    --first-instruction: one record per image with text[0] (its LISA test items)."""
    d = tmp_path / "lisa"
    write_image(d / "a.jpg", size=(60, 50))
    (d / "a.json").write_text(json.dumps({
        "text": ["what can I sit on?", "the object for sitting"],
        "shapes": [
            {"label": "ignore", "points": [[1, 2], [5, 9], [3, 4]]},
            {"label": "target", "points": [[10, 10], [20, 5], [25, 30]]},
        ],
    }))  # fmt: skip
    default = convert_lisa(d)
    assert [r.boxes for r in default] == [[[10.0, 5.0, 25.0, 30.0]]] * 2
    paper = convert_lisa(d, first_shape=True)
    assert [r.boxes for r in paper] == [[[1.0, 2.0, 5.0, 9.0]]] * 2 and paper[0].meta[
        "box_from"
    ] == "first shape"
    test = convert_lisa(d, first_shape=True, first_instruction=True)
    assert [r.expression for r in test] == ["what can I sit on?"]


# ---------------------------------------------------------------------------- issue 19
@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", "true", "false"])
def test_lisa_refuses_non_finite_and_boolean_points(tmp_path, bad):
    d = tmp_path / "lisa"
    write_image(d / "a.jpg", size=(60, 50))
    # json.dumps cannot write NaN as a bare literal inside our text: build the line by hand
    (d / "a.json").write_text(
        '{"text": ["the cup"], "shapes": [{"label": "target", "points": [[10, 10], [' + bad + ', 30], [20, 5]]}]}'
    )
    with pytest.raises(DataError, match=r"a.json: shapes\[0\].points: .* finite numbers"):
        convert_lisa(d)


def test_simple_list_expression_lists_give_one_record_each_and_bad_ones_are_refused(tmp_path):
    write_image(tmp_path / "im.png", size=(50, 40))
    path = tmp_path / "simple.json"
    path.write_text(json.dumps([{"id": "q", "image": "im.png", "expression": ["a cup", " the red cup "],
                                 "bbox": [10, 5, 20, 10]}]))  # fmt: skip
    recs = convert_refcoco(path)
    assert [(r.id, r.expression) for r in recs] == [("q-0", "a cup"), ("q-1", "the red cup")]
    assert all(r.boxes == [[10.0, 5.0, 30.0, 15.0]] for r in recs)
    for expression in ([], ["ok", 3], ["ok", " "], {"a": 1}, 7):
        path.write_text(json.dumps([{"image": "im.png", "expression": expression, "bbox": [10, 5, 20, 10]}]))
        with pytest.raises(DataError, match=r"\[0\]: expression: "):
            convert_refcoco(path)
    path.write_text('[{"image": "im.png", "expression": "x", "bbox": [10, 5, NaN, 10]}]')
    with pytest.raises(DataError, match=r"\[0\]: bbox=.* finite"):
        convert_refcoco(path)
