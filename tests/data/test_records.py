import json

import pytest

from vrft.data.records import Record, load_records, save_records
from vrft.errors import DataError


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_roundtrip_relative_paths(tmp_path):
    img = tmp_path / "imgs" / "a.png"
    img.parent.mkdir()
    img.write_bytes(b"x")
    recs = [
        Record(
            id="d1",
            task="detection",
            image="imgs/a.png",
            width=10,
            height=8,
            category="cat",
            boxes=[[1, 1, 5, 5.5]],
            image_id=3,
            meta={"k": 1},
        ),
        Record(id="d2", task="detection", image="imgs/a.png", width=10, height=8, category="dog"),
        Record(
            id="c1",
            task="classification",
            image="imgs/a.png",
            width=10,
            height=8,
            label="rose",
            classes=["rose", "tulip"],
            domain={"object": "flower", "attribute": "species"},
        ),
        Record(
            id="g1",
            task="grounding",
            image="imgs/a.png",
            width=10,
            height=8,
            expression="the cat",
            boxes=[[0, 0, 10, 8]],
        ),
    ]
    for r in recs:
        r.image_path = img
    out = save_records(recs, tmp_path / "sub" / "recs.jsonl")
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert lines[0]["image"] == "../imgs/a.png"
    assert lines[1]["boxes"] == []  # No Objects is explicit
    assert "boxes" not in lines[2]
    loaded = load_records(out)
    strip = lambda r: {k: v for k, v in r.to_dict().items() if k != "image"}  # noqa: E731
    assert [strip(r) for r in loaded] == [strip(r) for r in recs]
    assert all(r.image == "../imgs/a.png" for r in loaded)
    assert loaded[0].image_path == img.resolve()
    assert loaded[0].source.endswith("recs.jsonl:1")


def test_every_problem_is_reported_with_place(tmp_path):
    p = _write(
        tmp_path / "bad.jsonl",
        [
            '{"id": "a", "task": "detection", "image": "x.png", "width": 10, "height": 10, "category": "cat", "boxes": [[5, 5, 2, 8]]}',
            "{not json",
            '{"id": "a", "task": "segmentation", "image": "x.png", "width": 10, "height": 10}',
            '{"id": "b", "task": "classification", "image": "x.png", "width": 0, "height": 10, "label": "", "colour": 1}',
            '{"id": "c", "task": "detection", "image": "x.png", "width": 10, "height": 10, "category": "cat", "boxes": [[0, 0, 12, 5]]}',
            '{"id": "d", "task": "detection", "image": "x.png", "width": 10, "height": 10, "category": "cat", "boxes": [[0, 0, 11, 5]]}',
        ],
    )
    with pytest.raises(DataError) as exc:
        load_records(p)
    msg = str(exc.value)
    assert f"{p}:1: boxes[0]: " in msg and "non-positive" in msg
    assert f"{p}:2: -: invalid JSON" in msg
    assert f"{p}:3: task: unknown task 'segmentation'" in msg
    assert f"{p}:3: id: duplicate id 'a' (first at line 1" in msg
    assert f"{p}:4: width: " in msg
    assert f"{p}:4: label: " in msg
    assert f"{p}:4: colour: unknown field" in msg
    assert f"{p}:5: boxes[0]: " in msg and "outside" in msg
    assert f"{p}:6:" not in msg  # within the 1-pixel tolerance


def test_missing_task_fields(tmp_path):
    p = _write(
        tmp_path / "r.jsonl",
        [
            '{"id": "a", "task": "detection", "image": "x.png", "width": 10, "height": 10}',
            '{"id": "b", "task": "grounding", "image": "x.png", "width": 10, "height": 10, "expression": "it", "boxes": []}',
        ],
    )
    with pytest.raises(DataError) as exc:
        load_records(p)
    msg = str(exc.value)
    assert ":1: category: missing" in msg and ":1: boxes: missing" in msg
    assert ":2: boxes: a grounding record needs" in msg


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_records(tmp_path / "nope.jsonl")


def test_prompt_field_roundtrips_and_is_checked(tmp_path):
    rec = Record(id="a", task="detection", image="x.png", width=10, height=10, category="cat",
                 boxes=[[1, 1, 5, 5]], prompt="Detect cat.")  # fmt: skip
    assert rec.to_dict()["prompt"] == "Detect cat."
    p = _write(
        tmp_path / "p.jsonl",
        [
            json.dumps(rec.to_dict()),
            '{"id": "b", "task": "detection", "image": "x.png", "width": 10, "height": 10, "category": "cat", "boxes": [], "prompt": 3}',
        ],
    )
    with pytest.raises(DataError) as exc:
        load_records(p)
    assert f"{p}:2: prompt: 3 must be a non-empty string" in str(exc.value)
