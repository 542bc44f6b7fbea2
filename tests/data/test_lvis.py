import math

from vrft.data.lvis import clean_lvis_name, convert_lvis


def test_lvis_semantics(lvis_file):
    recs = {r.id: r for r in convert_lvis(lvis_file, negative_ratio=math.inf)}
    # negatives only from neg_category_ids; image 3 has none; papaya (4) never verified absent anywhere
    negatives = {k for k, r in recs.items() if not r.boxes}
    assert negatives == {"lvis-1-die", "lvis-1-kitchen_table", "lvis-2-egg_roll"}
    assert recs["lvis-1-egg_roll"].meta["not_exhaustive"] is True
    assert "not_exhaustive" not in recs["lvis-2-die"].meta
    assert recs["lvis-1-egg_roll"].category == "egg roll"
    assert recs["lvis-1-egg_roll"].meta["lvis_name"] == "egg_roll"
    assert recs["lvis-1-kitchen_table"].meta["frequency"] == "c"
    assert recs["lvis-3-papaya"].image_path.parts[-2:] == ("train2017", "000000000003.jpg")


def test_not_exhaustive_never_negative(lvis_file):
    import json

    data = json.loads(lvis_file.read_text())
    data["images"][1]["neg_category_ids"] = [1, 3]  # 3 is also not-exhaustive there: must not be asked
    lvis_file.write_text(json.dumps(data))
    recs = {r.id for r in convert_lvis(lvis_file, negative_ratio=math.inf)}
    assert "lvis-2-kitchen_table" not in recs and "lvis-2-egg_roll" in recs


def test_skip_not_exhaustive_and_subset(lvis_file):
    recs = convert_lvis(
        lvis_file, categories=["egg_roll", "die"], skip_not_exhaustive=True, clean_names=False
    )
    assert [r.id for r in recs] == ["lvis-2-die"]
    assert recs[0].category == "die"


def test_clean_name():
    assert clean_lvis_name("bow_(weapon)") == "bow (weapon)"
