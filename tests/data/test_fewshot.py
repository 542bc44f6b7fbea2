import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vrft.data.fewshot import image_key, sample_fewshot, split_by_image, write_fewshot, write_split
from vrft.data.records import Record, load_records, save_records
from vrft.errors import DataError


def det(img, cat, boxes=True):
    return Record(id=f"{img}-{cat}", task="detection", image=f"/d/{img}.jpg", width=10, height=10,
                  category=cat, boxes=[[0, 0, 5, 5]] if boxes else [], image_path=f"/d/{img}.jpg")  # fmt: skip


def detection_pool(n_images=30):
    recs = []
    for i in range(n_images):
        cats = ["cat", "dog", "bus"]
        for j, c in enumerate(cats):
            recs.append(det(i, c, boxes=(i + j) % 3 != 0))
    return recs


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_images=st.integers(1, 25))
def test_fewshot_sets_are_nested_and_per_class(seed, n_images):
    recs = detection_pool(n_images)
    subsets, manifest = sample_fewshot(recs, [1, 2, 4, 8], seed)
    ids = {k: {r.id for r in v} for k, v in subsets.items()}
    assert ids[1] <= ids[2] <= ids[4] <= ids[8]
    for k, chosen in subsets.items():
        for cat, info in manifest["classes"].items():
            available = info["available_images"]
            imgs = {image_key(r) for r in chosen if r.category == cat}
            assert len(imgs) == min(k, available)
        assert all(r.boxes for r in chosen)  # negatives only on request


def test_fewshot_seeded_and_class_independent():
    recs = detection_pool()
    a, _ = sample_fewshot(recs, [4], 5)
    b, _ = sample_fewshot(recs, [4], 5)
    c, _ = sample_fewshot(recs, [4], 6)
    assert [r.id for r in a[4]] == [r.id for r in b[4]] != [r.id for r in c[4]]
    only_cat, _ = sample_fewshot([r for r in recs if r.category == "cat"], [4], 5)
    assert {r.id for r in only_cat[4]} == {r.id for r in a[4] if r.category == "cat"}


def test_keep_negatives_and_classes():
    recs = detection_pool()
    subsets, _ = sample_fewshot(recs, [2], 0, classes=["cat"], keep_negatives=True)
    chosen_images = {image_key(r) for r in subsets[2] if r.boxes}
    assert len(chosen_images) == 2
    assert all(r.category == "cat" for r in subsets[2])
    with pytest.raises(DataError, match="zebra"):
        sample_fewshot(recs, [1], 0, classes=["zebra"])


def test_write_fewshot_classification(tmp_path):
    recs = [
        Record(
            id=f"c{i}", task="classification", image=f"i{i}.png", width=4, height=4, label=["a", "b"][i % 2]
        )
        for i in range(10)
    ]
    save_records(recs, tmp_path / "all.jsonl")
    manifest = json.loads(
        write_fewshot(tmp_path / "all.jsonl", tmp_path / "fs", [1, 2, 16], seed=1).read_text()
    )
    one = load_records(tmp_path / "fs" / "1shot.jsonl")
    assert sorted(r.label for r in one) == ["a", "b"]
    assert len(load_records(tmp_path / "fs" / "16shot.jsonl")) == 10
    assert manifest["short_classes"] == {"a": 5, "b": 5} and manifest["counts"]["2"]["records"] == 4


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 1000), frac=st.floats(0, 1))
def test_split_never_shares_an_image(seed, frac):
    recs = detection_pool(12)
    train, test = split_by_image(recs, frac, seed)
    assert not {image_key(r) for r in train} & {image_key(r) for r in test}
    assert len(train) + len(test) == len(recs)
    assert len({image_key(r) for r in test}) == round(frac * 12)


def test_write_split(tmp_path):
    recs = detection_pool(10)
    for r in recs:
        r.image_path = None
    save_records(recs, tmp_path / "all.jsonl")
    tr, te = write_split(tmp_path / "all.jsonl", tmp_path / "s", 0.3, seed=2)
    train, test = load_records(tr), load_records(te)
    assert len({r.image for r in test}) == 3
    assert not {r.image for r in train} & {r.image for r in test}
