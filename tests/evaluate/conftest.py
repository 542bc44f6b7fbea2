"""Fixtures: small detection / classification / grounding record sets written to tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from vrft.data.records import Record, save_records

# image id -> (width, height); several classes, several boxes per image, an image without GT.
IMAGES = {1: (200, 100), 2: (300, 300), 3: (640, 480)}
GT = {
    (1, "cat"): [[10, 10, 60, 50], [100, 20, 180, 90]],
    (1, "dog"): [[70, 5, 120, 60]],
    (2, "dog"): [[30, 40, 150, 200], [160, 160, 290, 290]],
    (2, "bird"): [[5, 5, 50, 50]],
    # image 3: nothing at all
}
CATEGORIES = ["cat", "dog", "bird"]


def write_images(root: Path) -> dict[int, Path]:
    paths = {}
    for iid, (w, h) in IMAGES.items():
        p = root / "images" / f"{iid:03d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (w, h), (30 * iid, 90, 160)).save(p)
        paths[iid] = p
    return paths


def detection_records(root: Path, exhaustive: bool = True) -> list[Record]:
    """One record per (image, category); with exhaustive=False only the positive pairs."""
    paths = write_images(root)
    recs = []
    for iid, (w, h) in IMAGES.items():
        for cat in CATEGORIES:
            boxes = GT.get((iid, cat), [])
            if boxes or exhaustive:
                recs.append(
                    Record(
                        id=f"d-{iid}-{cat}",
                        task="detection",
                        image=str(paths[iid]),
                        width=w,
                        height=h,
                        image_id=iid,
                        category=cat,
                        boxes=[list(map(float, b)) for b in boxes],
                        image_path=paths[iid],
                    )
                )
    return recs


def coco_gt() -> dict:
    anns = []
    for (iid, cat), boxes in GT.items():
        for x1, y1, x2, y2 in boxes:
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": iid,
                    "category_id": CATEGORIES.index(cat) + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": 0,
                }
            )
    return {
        "images": [
            {"id": i, "width": w, "height": h, "file_name": f"{i:03d}.png"} for i, (w, h) in IMAGES.items()
        ],
        "annotations": anns,
        "categories": [{"id": k + 1, "name": c} for k, c in enumerate(CATEGORIES)],
    }


def det_answer(boxes_conf: list[tuple[list[int], float]]) -> str:
    """A well-formed detection completion (boxes in 0..1000)."""
    if not boxes_conf:
        return "<think>none</think> <answer>No Objects</answer>"
    items = ", ".join(f"{{'Position': {b}, 'Confidence': {c}}}" for b, c in boxes_conf)
    return f"<think>looking</think> <answer>[{items}]</answer>"


# (image, category) -> the model's answer: boxes in 0..1000 and confidences. Missing pairs: not answered.
ANSWERS = {
    (1, "cat"): [([50, 100, 300, 500], 0.9), ([500, 200, 900, 900], 0.6), ([0, 0, 100, 100], 0.95)],
    (1, "dog"): [],  # says No Objects although there is a dog
    (1, "bird"): [([10, 10, 200, 200], 0.4)],  # false positive
    (2, "dog"): [([100, 133, 500, 666], 0.8), ([600, 600, 1000, 1000], 0.5)],  # exact, and IoU 0.63
    (2, "bird"): [([16, 16, 166, 166], 0.7)],
    (2, "cat"): [],
    (3, "cat"): [],
    (3, "dog"): [([0, 0, 500, 500], 0.3)],
}


def answers_text() -> dict[tuple[int, str], str]:
    out = {k: det_answer([(b, c) for b, c in v]) for k, v in ANSWERS.items()}
    out[(3, "bird")] = "I cannot see well <answer>[{'Position': [1, 2], 'Confidence': 0.5}"  # malformed
    return out


@pytest.fixture
def det_dir(tmp_path: Path) -> Path:
    recs = detection_records(tmp_path)
    save_records(recs, tmp_path / "det.jsonl")
    (tmp_path / "instances.json").write_text(json.dumps(coco_gt()))
    return tmp_path
