"""Tiny COCO / LVIS fixtures written by the tests themselves."""

import json

import pytest
from PIL import Image


def write_image(path, size=(40, 30), colour=(120, 30, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


@pytest.fixture
def coco_file(tmp_path):
    """4 images (40x30): 1 cat+dog(+crowd cat), 2 crowd-only person, 3 empty, 4 dog + box past the edge."""
    root = tmp_path / "coco"
    for i in range(1, 5):
        write_image(root / "images" / f"{i:03d}.jpg")
    data = {
        "images": [{"id": i, "file_name": f"{i:03d}.jpg", "width": 40, "height": 30} for i in range(1, 5)],
        "categories": [
            {"id": 1, "name": "person"},
            {"id": 2, "name": "cat"},
            {"id": 3, "name": "dog"},
            {"id": 5, "name": "hot dog"},
        ],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 2, "bbox": [1, 2, 10, 8], "area": 80, "iscrowd": 0},
            {"id": 11, "image_id": 1, "category_id": 2, "bbox": [20, 5, 5, 5], "area": 25, "iscrowd": 0},
            {"id": 12, "image_id": 1, "category_id": 2, "bbox": [0, 0, 40, 30], "area": 900, "iscrowd": 1},
            {"id": 13, "image_id": 1, "category_id": 3, "bbox": [5, 5, 5, 5], "area": 25, "iscrowd": 0},
            {"id": 20, "image_id": 2, "category_id": 1, "bbox": [0, 0, 30, 30], "area": 900, "iscrowd": 1},
            {
                "id": 40,
                "image_id": 4,
                "category_id": 3,
                "bbox": [30, 20, 10.5, 10],
                "area": 100,
                "iscrowd": 0,
            },
        ],
    }
    path = root / "instances.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def lvis_file(tmp_path):
    """LVIS-style file: images only via coco_url under train2017/, federated negatives."""
    root = tmp_path / "lvis"
    for i in (1, 2, 3):
        write_image(root / "images" / "train2017" / f"{i:012d}.jpg")
    url = "http://images.cocodataset.org/train2017/{:012d}.jpg"
    data = {
        "images": [
            {"id": 1, "coco_url": url.format(1), "width": 40, "height": 30,
             "neg_category_ids": [2, 3], "not_exhaustive_category_ids": [1]},
            {"id": 2, "coco_url": url.format(2), "width": 40, "height": 30,
             "neg_category_ids": [1], "not_exhaustive_category_ids": [3]},
            {"id": 3, "coco_url": url.format(3), "width": 40, "height": 30,
             "neg_category_ids": [], "not_exhaustive_category_ids": []},
        ],
        "categories": [
            {"id": 1, "name": "egg_roll", "frequency": "r", "synonyms": ["egg_roll"]},
            {"id": 2, "name": "die", "frequency": "r", "synonyms": ["die", "dice"]},
            {"id": 3, "name": "kitchen_table", "frequency": "c", "synonyms": ["kitchen_table"]},
            {"id": 4, "name": "papaya", "frequency": "f", "synonyms": ["papaya"]},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5], "area": 25},
            {"id": 2, "image_id": 2, "category_id": 2, "bbox": [2, 2, 8, 4], "area": 32},
            {"id": 3, "image_id": 3, "category_id": 4, "bbox": [0, 0, 10, 10], "area": 100},
        ],
    }  # fmt: skip
    path = root / "lvis_v1_train.json"
    path.write_text(json.dumps(data))
    return path
