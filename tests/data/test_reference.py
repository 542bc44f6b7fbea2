import datasets
import pytest
from PIL import Image

from vrft.data.records import load_records
from vrft.data.reference import convert_reference
from vrft.errors import DataError

DET = (
    "Detect all objects belonging to the category '{}' in the image, and provide the bounding boxes "
    "(between 0 and 1000, integer) and confidence (between 0 and 1, with two decimal places)."
)
CLS = "This is an image containing a plant. Please identify the species of the plant based on the image."


def _dataset(rows):
    features = datasets.Features(
        {"image": datasets.Image(), "problem": datasets.Value("string"), "solution": datasets.Value("string")}
    )
    return datasets.Dataset.from_list(rows, features=features)


@pytest.fixture
def rows():
    a = Image.new("RGB", (200, 100), (10, 200, 30))
    b = Image.new("RGB", (50, 40), (200, 10, 30))
    return [
        {"image": a, "problem": DET.format("cat"),
         "solution": "<answer>[{'Position': [100, 200, 500, 1000], 'Confidence': 1}]</answer>"},
        {"image": a, "problem": DET.format("hot dog"), "solution": "<answer>No Objects</answer>"},
        {"image": b, "problem": CLS, "solution": "<answer>pink primrose</answer>"},
    ]  # fmt: skip


def test_save_to_disk_and_parquet(tmp_path, rows):
    _dataset(rows).save_to_disk(str(tmp_path / "disk"))
    _dataset(rows).to_parquet(str(tmp_path / "train.parquet"))
    for src, out in ((tmp_path / "disk", tmp_path / "o1"), (tmp_path / "train.parquet", tmp_path / "o2")):
        recs = load_records(convert_reference(src, out, progress=False))
        cat, hotdog, flower = recs
        assert cat.task == "detection" and cat.category == "cat"
        assert cat.boxes == [[20.0, 20.0, 100.0, 100.0]]  # 0..1000 -> pixels of 200x100
        assert hotdog.category == "hot dog" and hotdog.boxes == []
        assert cat.image == hotdog.image and cat.image_id == hotdog.image_id == 1  # one PNG per picture
        assert flower.label == "pink primrose" and flower.domain == {
            "object": "plant",
            "attribute": "species",
        }
        assert flower.classes == ["pink primrose"] and (flower.width, flower.height) == (50, 40)
        assert Image.open(flower.image_path).size == (50, 40)


def test_bad_rows_listed(tmp_path, rows):
    rows[0]["solution"] = "[{'Position': [1, 2, 3, 4]}]"  # no <answer>
    rows[1]["problem"] = "Detect all objects."  # no category phrase -> a classification row
    rows.append({"image": rows[2]["image"], "problem": DET.format("dog"),
                 "solution": "<answer>[{'Position': [5, 5, 400, 900], 'Confidence': 1}, {'Position': [1, 2]}]</answer>"})  # fmt: skip
    _dataset(rows).save_to_disk(str(tmp_path / "disk"))
    with pytest.raises(DataError) as exc:
        convert_reference(tmp_path / "disk", tmp_path / "o", progress=False)
    msg = str(exc.value)
    assert "row 0: solution: no <answer>" in msg and "row 3: solution:" in msg
    recs = load_records(
        convert_reference(tmp_path / "disk", tmp_path / "o", skip_invalid=True, progress=False)
    )
    assert [r.meta["row"] for r in recs] == [1, 2]


def test_convention_option_and_impossible_boxes(tmp_path, rows, capsys):
    from vrft.cli import main

    _dataset(rows).save_to_disk(str(tmp_path / "disk"))
    # the same solution read as pixels of the 200x100 image: [100, 200, 500, 1000] is impossible there
    with pytest.raises(DataError) as exc:
        convert_reference(tmp_path / "disk", tmp_path / "px", convention="pixels", progress=False)
    msg = str(exc.value)
    assert "row 0: solution: box [100.0, 200.0, 500.0, 1000.0] lies outside the 200x100 image" in msg
    assert "try --convention norm1000" in msg
    with pytest.raises(DataError, match="not skippable"):  # a wrong convention is never silently skipped
        convert_reference(tmp_path / "disk", tmp_path / "px", convention="pixels", skip_invalid=True,
                          progress=False)  # fmt: skip

    # a set written in pixels: > 1000 is impossible in norm1000 (the default), and says which one fits
    big = Image.new("RGB", (1600, 1200))
    px_rows = [{"image": big, "problem": DET.format("cat"),
                "solution": "<answer>[{'Position': [100, 200, 1500, 1100], 'Confidence': 1}]</answer>"},
               {"image": big, "problem": "Output the bounding box of the region: the cat",
                "solution": "<answer>[800, 50, 1200, 600]</answer>"}]  # fmt: skip
    _dataset(px_rows).save_to_disk(str(tmp_path / "pxset"))
    capsys.readouterr()
    args = ["data", "convert", "reference", str(tmp_path / "pxset"), "--out", str(tmp_path / "o")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "vrft data: error:" in err and "row 0: solution: box [100.0, 200.0, 1500.0, 1100.0]" in err
    assert "row 1: solution: box [800.0, 50.0, 1200.0, 600.0] lies outside 0..1000" in err
    assert "try --convention pixels" in err and "Traceback" not in err
    assert main([*args, "--convention", "pixels"]) == 0
    cat, grounding = load_records(tmp_path / "o" / "records.jsonl")
    assert cat.boxes == [[100.0, 200.0, 1500.0, 1100.0]] and grounding.boxes == [[800.0, 50.0, 1200.0, 600.0]]

    # resized_pixels needs the processor budget; with it, boxes are scaled from the resized image
    assert main([*args, "--convention", "resized_pixels"]) == 2
    assert "needs --min-pixels and --max-pixels" in capsys.readouterr().err
    rz = [{"image": big, "problem": DET.format("cat"),
           "solution": "<answer>[{'Position': [98, 49, 700, 588], 'Confidence': 1}]</answer>"}]  # fmt: skip
    _dataset(rz).save_to_disk(str(tmp_path / "rzset"))
    assert main(["data", "convert", "reference", str(tmp_path / "rzset"), "--out", str(tmp_path / "r"),
                 "--convention", "resized_pixels", "--min-pixels", "3136", "--max-pixels", str(800 * 600)]) == 0  # fmt: skip
    (cat,) = load_records(tmp_path / "r" / "records.jsonl")  # 1600x1200 -> 784x588 (factor 28)
    assert cat.boxes == [[pytest.approx(v, abs=0.01) for v in (200.0, 100.0, 700 * 1600 / 784, 1200.0)]]


def test_keep_prompts_and_drop_no_objects(tmp_path, rows):
    """--keep-prompts: training sees each published problem text byte for byte; --drop-no-objects: the
    paper's training set had no 'No Objects' prompts (maintainer, reference issue #8)."""
    from vrft.boxes import Frame
    from vrft.data.hf import build_grpo_dataset
    from vrft.train.builder import get_task

    rows[0]["problem"] = "  " + DET.format("cat") + "\nOutput ... tags.The output\n"  # odd spacing kept
    _dataset(rows).save_to_disk(str(tmp_path / "disk"))
    recs = load_records(
        convert_reference(
            tmp_path / "disk", tmp_path / "o", keep_prompts=True, drop_no_objects=True, progress=False
        )
    )
    assert [r.task for r in recs] == ["detection", "classification"]  # the No Objects row is gone
    assert recs[0].prompt == rows[0]["problem"] and recs[1].prompt == CLS
    ds = build_grpo_dataset(recs[:1], get_task("detection", "visual-rft"), lambda r: Frame(r.width, r.height))
    assert ds.data.column("prompt").to_pylist()[0][0]["content"][1]["text"] == rows[0]["problem"]
