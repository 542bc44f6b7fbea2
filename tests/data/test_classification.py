import json
from pathlib import Path

import pytest

from vrft.data.classification import (
    clean_class_name,
    clean_class_names,
    convert_coop,
    convert_imagefolder,
    has_index_prefixes,
    parse_domain,
)
from vrft.data.records import load_records
from vrft.errors import DataError, UserError

from .conftest import write_image


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("001.Black_footed_Albatross", "black footed albatross"),
        ("12_Pink  Primrose", "pink primrose"),
        ("Boeing_737-300", "boeing 737-300"),
        ("3-american_bulldog", "3-american bulldog"),  # '-' is never an index separator
        ("rose", "rose"),
        ("2012 Acura RL Sedan", "2012 acura rl sedan"),  # a year is not an index
        ("737-200", "737-200"),  # nor a model number
        ("F-16A/B", "f-16a/b"),
    ],
)
def test_clean_class_name(raw, clean):
    assert clean_class_name(raw) == clean


def test_index_prefixes_only_when_every_name_has_a_distinct_one():
    assert has_index_prefixes(["001.Black_footed_Albatross", "002.Laysan_Albatross"])
    assert clean_class_names(["001.Black_footed_Albatross", "002.Laysan_Albatross"]) == [
        "black footed albatross",
        "laysan albatross",
    ]
    # a repeated number is a year / model number, not an index: kept
    years = ["2012_Acura_RL_Sedan", "2012_Acura_TL_Sedan", "2008_Acura_TL_Type-S"]
    assert not has_index_prefixes(years)
    assert clean_class_names(years) == ["2012 acura rl sedan", "2012 acura tl sedan", "2008 acura tl type-s"]
    assert not has_index_prefixes(["001.rose", "tulip"])  # not every name: nothing stripped
    assert clean_class_names(["001.rose", "tulip"]) == ["001.rose", "tulip"]


COOP_NAMES = Path(__file__).parent / "fixtures" / "coop_classnames"


@pytest.mark.parametrize(
    "dataset, count, samples",
    [
        ("flowers102", 102, {0: "pink primrose", 1: "hard-leaved pocket orchid"}),
        ("pets37", 37, {1: "american bulldog", 2: "american pit bull terrier"}),
        # years and variants kept: 7 labels collided when the leading number was stripped
        ("cars196", 196, {1: "2012 acura rl sedan", 2: "2012 acura tl sedan", 3: "2008 acura tl type-s"}),
        # model numbers kept: '737-200' became '200' (3 collisions) before
        ("aircraft", 100, {2: "737-200", 3: "737-300", 21: "a300b4", 72: "f-16a/b", 73: "f/a-18"}),
    ],
)
def test_coop_real_class_name_styles_convert(tmp_path, dataset, count, samples):
    """The four CoOp datasets' class names (the reference's val_data/*.txt lists, as CoOp writes them)
    convert without 'two labels share a class name'; years, variants and model numbers are kept."""
    names = (COOP_NAMES / f"{dataset}.txt").read_text(encoding="utf-8").splitlines()
    assert len(names) == count
    write_image(tmp_path / "img" / "x.jpg")
    split = {"test": [["x.jpg", k, name] for k, name in enumerate(names)]}
    path = tmp_path / f"split_{dataset}.json"
    path.write_text(json.dumps(split))
    res = convert_coop(path, tmp_path / "img", splits=["test"], domain=dataset, progress=False)
    classes = res["test"][0].classes
    assert len(classes) == len(set(classes)) == count
    for k, name in samples.items():
        assert classes[k] == name


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
