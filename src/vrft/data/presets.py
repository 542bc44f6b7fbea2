"""Class lists of the paper's data splits (literal lists: greppable, no downloads needed).

Names are exactly the category names of the COCO 2017 / LVIS v1 annotation files.
"""

from __future__ import annotations

from vrft.data.synthetic import BASE_CLASSES, NOVEL_CLASSES
from vrft.errors import UserError

# The 80 COCO 2017 detection classes, in category-id order.
COCO_CLASSES: list[str] = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
]  # fmt: skip

# Open-vocabulary COCO (the paper): evaluate on 15 novel classes, train on the other 65.
COCO_OV_NOVEL_15: list[str] = [
    "mouse", "fork", "hot dog", "cat", "airplane", "suitcase", "parking meter", "sandwich", "train",
    "hair drier", "toilet", "toaster", "snowboard", "frisbee", "bear",
]  # fmt: skip
COCO_OV_BASE_65: list[str] = [c for c in COCO_CLASSES if c not in COCO_OV_NOVEL_15]

# Few-shot COCO: 8 classes, 1/2/4/8/16 shots.
COCO_FEWSHOT_8: list[str] = ["bus", "train", "fire hydrant", "stop sign", "cat", "dog", "bed", "toilet"]

# Open-vocabulary LVIS: 13 rare classes (LVIS v1 names).
LVIS_RARE_13: list[str] = [
    "casserole", "die", "egg_roll", "futon", "garbage", "handsaw", "hippopotamus", "kitchen_table",
    "mallet", "omelet", "shot_glass", "stepladder", "sugar_bowl",
]  # fmt: skip
# Few-shot LVIS: 6 classes.
LVIS_FEWSHOT_6: list[str] = ["horse_buggy", "die", "kitchen_table", "omelet", "papaya", "stepladder"]

# name -> (dataset kind the list refers to, class names).
PRESETS: dict[str, tuple[str, list[str]]] = {
    "coco-all80": ("coco", COCO_CLASSES),
    "coco-ov-base65": ("coco", COCO_OV_BASE_65),
    "coco-ov-novel15": ("coco", COCO_OV_NOVEL_15),
    "coco-fewshot8": ("coco", COCO_FEWSHOT_8),
    "lvis-rare13": ("lvis", LVIS_RARE_13),
    "lvis-fewshot6": ("lvis", LVIS_FEWSHOT_6),
    "shapes-base": ("shapes", list(BASE_CLASSES)),
    "shapes-novel": ("shapes", list(NOVEL_CLASSES)),
}


def preset_classes(name: str) -> list[str]:
    """The class list of preset `name`; UserError listing the presets if unknown."""
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
    return list(PRESETS[name][1])
