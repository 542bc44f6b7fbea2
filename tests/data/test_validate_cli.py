import json

from PIL import Image

from vrft.cli import main

from .conftest import write_image


def test_validate_records_reports_every_defect(tmp_path, capsys):
    write_image(tmp_path / "ok.png", size=(40, 30))
    (tmp_path / "bad.png").write_bytes(b"junk")
    lines = [
        {"id": "a", "task": "detection", "image": "ok.png", "width": 40, "height": 30, "category": "cat",
         "boxes": [[1, 1, 10, 10]]},
        {"id": "b", "task": "detection", "image": "missing.png", "width": 40, "height": 30, "category": "cat",
         "boxes": [[5, 5, 5, 9]]},
        {"id": "c", "task": "detection", "image": "ok.png", "width": 50, "height": 30, "category": "dog",
         "boxes": [[0, 0, 45, 10]]},
        {"id": "a", "task": "caption", "image": "bad.png", "width": 40, "height": 30},
        {"id": "e", "task": "classification", "image": "ok.png", "width": 40, "height": 30, "label": ""},
    ]  # fmt: skip
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n{oops\n")
    assert main(["data", "validate", str(path)]) == 1
    out, err = capsys.readouterr()
    assert f"{path}:1:" not in out
    assert f"{path}:2: boxes[0]: [5, 5, 5, 9] has non-positive width" in out
    assert f"{path}:2: image: " in out and "missing.png: file not found" in out
    assert f"{path}:3: image: " in out and "size 50x30 recorded but the file is 40x30" in out
    assert f"{path}:4: task: unknown task 'caption'" in out and f"{path}:4: id: duplicate id 'a'" in out
    assert f"{path}:4: image: " in out and "unreadable image" in out
    assert f"{path}:5: label: '' must be a non-empty string" in out
    assert f"{path}:6: -: invalid JSON" in out
    assert "6 records" in err and "8 problem(s)" in err


def test_validate_coco_names_ids_and_values(tmp_path, capsys, coco_file):
    assert main(["data", "validate", str(coco_file)]) == 0
    data = json.loads(coco_file.read_text())
    data["annotations"] += [
        {"id": 50, "image_id": 1, "category_id": 2, "bbox": [3, 3, 0, 5], "iscrowd": 0},
        {"id": 51, "image_id": 1, "category_id": 99, "bbox": [3, 3, 2, 5], "iscrowd": 0},
        {"id": 52, "image_id": 1, "category_id": 2, "bbox": [30, 20, 15, 5], "iscrowd": 0},
        {"id": 50, "image_id": 7, "category_id": 2, "bbox": [1, 1, 2, 2], "iscrowd": 0},
    ]
    data["images"][2]["width"] = 41
    data["categories"].append({"id": 9, "name": ""})
    Image.new("RGB", (10, 10)).save(coco_file.parent / "images" / "004.jpg")
    (coco_file.parent / "images" / "002.jpg").unlink()
    coco_file.write_text(json.dumps(data))
    assert main(["data", "validate", str(coco_file)]) == 1
    out, err = capsys.readouterr()
    assert "annotation id=50 (image 1): bbox [3, 3, 0, 5]: " in out and "non-positive" in out
    assert "annotation id=51: unknown category_id=99" in out
    assert "annotation id=52 (image 1): bbox [30, 20, 15, 5]: " in out and "outside the 40x30 image" in out
    assert "annotation id=50: duplicate annotation id" in out and "unknown image_id=7" in out
    assert "category id=9: name=''" in out
    assert "image id=3 (003.jpg): " in out and "size 41x30 recorded but the file is 40x30" in out
    assert "image id=4 (004.jpg): " in out and "the file is 10x10" in out
    assert "image id=2 (002.jpg): " in out and "file not found" in out
    assert "coco: 10 annotations" in err


def test_validate_lvis(tmp_path, capsys, lvis_file):
    assert main(["data", "validate", str(lvis_file)]) == 0
    data = json.loads(lvis_file.read_text())
    data["images"][0]["neg_category_ids"] = [1, 77]  # 1 is annotated on image 1; 77 unknown
    lvis_file.write_text(json.dumps(data))
    assert main(["data", "validate", str(lvis_file)]) == 1
    out, _ = capsys.readouterr()
    assert "image id=1: neg_category_ids has unknown category ids [77]" in out
    assert "image id=1: categories [1] are annotated but listed in neg_category_ids" in out


def test_convert_fewshot_split_synth_cli(tmp_path, capsys):
    shapes = tmp_path / "shapes"
    assert main(["data", "synth", "--out", str(shapes), "--images", "12", "--size", "64", "--seed", "1",
                 "--split", "base", "--grounding", "--classification", "4"]) == 0  # fmt: skip
    assert main(["data", "validate", str(shapes / "instances.json"), str(shapes / "grounding.jsonl"),
                 str(shapes / "classification.jsonl")]) == 0  # fmt: skip
    det = tmp_path / "det.jsonl"
    assert main(["data", "convert", "coco", str(shapes / "instances.json"), "--out", str(det),
                 "--preset", "shapes-base", "--negative-ratio", "0.5"]) == 0  # fmt: skip
    assert main(["data", "validate", str(det)]) == 0
    assert main(["data", "fewshot", str(det), "--shots", "1,2", "--out", str(tmp_path / "fs")]) == 0
    assert (tmp_path / "fs" / "2shot.jsonl").exists() and (tmp_path / "fs" / "manifest.json").exists()
    assert main(["data", "split", str(det), "--test-fraction", "0.25", "--out", str(tmp_path / "sp")]) == 0
    out, _ = capsys.readouterr()
    assert "1-shot:" in out and "train records" in out
    # user errors exit 2 with a message, no traceback
    assert main(["data", "convert", "coco", str(shapes / "instances.json"), "--out", str(det),
                 "--categories", "zebra"]) == 2  # fmt: skip
    assert "'zebra'" in capsys.readouterr().err
