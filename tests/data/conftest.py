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
