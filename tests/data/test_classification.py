import json

import pytest

from vrft.data.classification import clean_class_name, convert_coop, convert_imagefolder, parse_domain
from vrft.data.records import load_records
from vrft.errors import DataError, UserError

from .conftest import write_image


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("001.Black_footed_Albatross", "black footed albatross"),
        ("12_Pink  Primrose", "pink primrose"),
        ("Boeing_737-300", "boeing 737-300"),
        ("3-american_bulldog", "american bulldog"),
        ("rose", "rose"),
    ],
)
def test_clean_class_name(raw, clean):
    assert clean_class_name(raw) == clean


def test_imagefolder(tmp_path):
    root = tmp_path / "birds"
    write_image(root / "001.Black_footed_Albatross" / "a.jpg", size=(20, 10))
    write_image(root / "001.Black_footed_Albatross" / "b.png")
    write_image(root / "002.Laysan_Albatross" / "c.jpg")
    (root / "002.Laysan_Albatross" / "notes.txt").write_text("x")
    (root / "003.Empty").mkdir()
    out = tmp_path / "cls.jsonl"
    recs = convert_imagefolder(root, domain="bird,species", out=out)
    assert [r.label for r in recs] == ["black footed albatross"] * 2 + ["laysan albatross"]
    assert recs[0].classes == ["black footed albatross", "laysan albatross", "empty"]
    assert (recs[0].width, recs[0].height) == (20, 10)
    loaded = load_records(out, task="classification")
    assert loaded[0].domain == {"object": "bird", "attribute": "species"}
    assert loaded[2].image == "birds/002.Laysan_Albatross/c.jpg"


def test_imagefolder_problems(tmp_path):
    root = tmp_path / "x"
    write_image(root / "1_rose" / "a.jpg")
    write_image(root / "2_Rose" / "b.jpg")
    with pytest.raises(DataError, match="both give class 'rose'"):
        convert_imagefolder(root)
    root = tmp_path / "y"
    write_image(root / "tulip" / "a.jpg")
    (root / "tulip" / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"broken\.jpg: unreadable image"):
        convert_imagefolder(root)


def test_coop(tmp_path):
    imgs = tmp_path / "jpg"
    for n in ("a.jpg", "b.jpg", "c.jpg"):
        write_image(imgs / n)
    split = {
        "train": [["a.jpg", 0, "pink_primrose"], ["b.jpg", 1, "hard-leaved pocket orchid"]],
        "val": [["c.jpg", 1, "hard-leaved pocket orchid"]],
        "test": [["c.jpg", 0, "pink_primrose"]],
    }
    path = tmp_path / "split_zhou_OxfordFlowers.json"
    path.write_text(json.dumps(split))
    res = convert_coop(path, imgs, domain="flowers102", out_dir=tmp_path / "recs")
    assert [r.label for r in res["train"]] == ["pink primrose", "hard-leaved pocket orchid"]
    assert res["test"][0].classes == ["pink primrose", "hard-leaved pocket orchid"]
    test = load_records(tmp_path / "recs" / "test.jsonl")
    assert test[0].domain == {"object": "plant", "attribute": "species"} and test[0].meta["split"] == "test"
    split["val"].append(["d.jpg", 0, "other name"])
    split["val"].append(["e.jpg", "x"])
    path.write_text(json.dumps(split))
    with pytest.raises(DataError) as exc:
        convert_coop(path, imgs)
    assert "val[1]: label 0 named 'other name'" in str(exc.value) and "val[2]:" in str(exc.value)


def test_parse_domain():
    assert parse_domain("pets37") == {"object": "pet", "attribute": "breed"}
    with pytest.raises(UserError):
        parse_domain("flower")
