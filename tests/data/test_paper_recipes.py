"""docs/data.md's paper recipes, run AS WRITTEN on small fixtures laid out like the official downloads,
build exactly the files configs/paper/*.yaml read, with the paper's content (6,000 positive-only
COCO base-class prompts, LVIS names with underscores, CoOp names with years and model numbers, LISA
first-shape boxes and one test item per image)."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from vrft.cli import main
from vrft.config import load_config
from vrft.data.presets import COCO_CLASSES, COCO_OV_BASE_65, COCO_OV_NOVEL_15, LVIS_FEWSHOT_6, LVIS_RARE_13
from vrft.data.records import load_records
from vrft.train.builder import training_records

pytestmark = pytest.mark.slow  # the paper-mode recipes: a module fixture builds every recipe's data (~3 s)

ROOT = Path(__file__).resolve().parents[2]
N_COCO_IMAGES = 1600  # x 4 base classes each = 6,400 base-class positives (> the 6,000 kept)


def _jpeg(size=(8, 6)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (90, 120, 30)).save(buf, format="JPEG")
    return buf.getvalue()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _coco(root: Path) -> None:
    """coco/{train,val}2017 + annotations: every image has 4 base classes and 1 novel class."""
    jpg = _jpeg()
    cats = [{"id": i + 1, "name": n} for i, n in enumerate(COCO_CLASSES)]
    cid = {c["name"]: c["id"] for c in cats}
    for split, n in (("train2017", N_COCO_IMAGES), ("val2017", 30)):
        images, anns = [], []
        for i in range(1, n + 1):
            name = f"{i:012d}.jpg"
            _write(root / "coco" / split / name, jpg)
            images.append({"id": i, "file_name": name, "width": 8, "height": 6})
            names = [COCO_OV_BASE_65[(4 * i + j) % 65] for j in range(4)] + [COCO_OV_NOVEL_15[i % 15]]
            for name_ in names:
                anns.append({"id": len(anns) + 1, "image_id": i, "category_id": cid[name_],
                             "bbox": [1, 1, 4, 3], "area": 12, "iscrowd": 0})  # fmt: skip
        data = {"images": images, "annotations": anns, "categories": cats}
        (root / "coco" / "annotations").mkdir(parents=True, exist_ok=True)
        (root / "coco" / "annotations" / f"instances_{split}.json").write_text(json.dumps(data))


def _lvis(root: Path) -> None:
    names = sorted(set(LVIS_RARE_13) | set(LVIS_FEWSHOT_6))
    cats = [{"id": i + 1, "name": n, "frequency": "r"} for i, n in enumerate(names)]
    for split, folder in (("train", "train2017"), ("val", "val2017")):
        images, anns = [], []
        for i in range(1, 21):
            images.append({
                "id": i, "width": 8, "height": 6,
                "coco_url": f"http://images.cocodataset.org/{folder}/{i:012d}.jpg",
                "neg_category_ids": [cats[(i + 1) % len(cats)]["id"]], "not_exhaustive_category_ids": [],
            })  # fmt: skip
            anns.append({"id": i, "image_id": i, "category_id": cats[i % len(cats)]["id"],
                         "bbox": [1, 1, 4, 3], "area": 12})  # fmt: skip
        (root / "lvis").mkdir(exist_ok=True)
        data = {"images": images, "annotations": anns, "categories": cats}
        (root / "lvis" / f"lvis_v1_{split}.json").write_text(json.dumps(data))


CLASS_LISTS = Path(__file__).parent / "fixtures" / "coop_classnames"


def _coop(root: Path) -> None:
    jpg = _jpeg()
    layout = {
        "split_zhou_OxfordFlowers.json": ("oxford_flowers/jpg", "flowers102"),
        "split_zhou_OxfordPets.json": ("oxford_pets/images", "pets37"),
        "split_zhou_StanfordCars.json": ("stanford_cars", "cars196"),
    }
    for fname, (folder, names_file) in layout.items():
        names = (CLASS_LISTS / f"{names_file}.txt").read_text().splitlines()
        split = {}
        for s in ("train", "val", "test"):
            split[s] = []
            for k, name in enumerate(names[:12]):  # 12 classes x 2 images per split
                for j in range(2):
                    rel = f"{s}_{k}_{j}.jpg" if names_file != "cars196" else f"cars_{s}/{k:03d}{j}.jpg"
                    _write(root / folder / rel, jpg)
                    split[s].append([rel, k, name])
        (root / fname).write_text(json.dumps(split))
    # FGVC-Aircraft: the official files CoOp reads
    d = root / "fgvc-aircraft-2013b" / "data"
    names = (CLASS_LISTS / "aircraft.txt").read_text().splitlines()
    d.mkdir(parents=True)
    (d / "variants.txt").write_text("\n".join(names) + "\n")
    n = 0
    for s in ("train", "val", "test"):
        lines = []
        for name in names[:12]:
            n += 1
            _write(d / "images" / f"{1000000 + n}.jpg", jpg)
            lines.append(f"{1000000 + n} {name}")
        (d / f"images_variant_{s}.txt").write_text("\n".join(lines) + "\n")


def _lisa(root: Path) -> None:
    for split in ("train", "test"):
        (root / "lisa" / split).mkdir(parents=True, exist_ok=True)
        for stem in ("a", "b"):
            Image.new("RGB", (60, 50)).save(root / "lisa" / split / f"{stem}.jpg")
            ann = {
                "text": [f"what can I sit on in {stem}?", f"the seat of {stem}"],
                "shapes": [
                    {"label": "target", "points": [[10, 10], [20, 5], [25, 30]]},
                    {"label": "target", "points": [[30, 40], [50, 45], [40, 48]]},
                ],
            }
            (root / "lisa" / split / f"{stem}.json").write_text(json.dumps(ann))


def _blocks(doc: Path, heading: str) -> list[str]:
    text = doc.read_text(encoding="utf-8")
    start = text.index(heading)
    end = text.find("\n## ", start + 1)
    section = text[start : end if end > 0 else None]
    return re.findall(r"```bash\n(.*?)```", section, re.S)


def _run_block(block: str, cwd: Path) -> list[str]:
    """Run one bash block of the docs: `vrft ...` commands in-process, a `python - <<'PY'` heredoc with
    this Python; every other line must be a comment. Returns the commands run."""
    lines = block.splitlines()
    ran, i = [], 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        heredoc = re.fullmatch(r"python - <<'(\w+)'", line)
        if heredoc:
            end = lines.index(heredoc.group(1), i)
            code = "\n".join(lines[i:end])
            i = end + 1
            subprocess.run([sys.executable, "-"], input=code, text=True, cwd=cwd, check=True)
            ran.append("python heredoc")
            continue
        while line.endswith("\\"):
            line = line[:-1] + " " + lines[i].strip()
            i += 1
        argv = shlex.split(line)
        assert argv[0] == "vrft", f"the recipe has a line the test does not know how to run: {line}"
        assert main(argv[1:]) == 0, line
        ran.append(line)
    return ran


@pytest.fixture(scope="module")
def recipe_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("downloads")
    _coco(root)
    _lvis(root)
    _coop(root)
    _lisa(root)
    blocks = _blocks(ROOT / "docs" / "data.md", "## Recipes: the paper's data")
    assert len(blocks) >= 6
    old = Path.cwd()
    os.chdir(root)
    try:
        ran = [cmd for b in blocks for cmd in _run_block(b, root)]
    finally:
        os.chdir(old)
    assert len(ran) >= 20
    return root


@pytest.fixture
def in_recipe_dir(recipe_dir, monkeypatch):
    monkeypatch.chdir(recipe_dir)
    return recipe_dir


CONFIGS = sorted((ROOT / "configs" / "paper").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_configs_read_what_the_recipes_write(in_recipe_dir, path):
    cfg = load_config(path)
    for key in ("train", "eval"):
        f = Path(getattr(cfg.data, key))
        assert f.is_file(), f"{path.name}: data.{key} = {f} is not written by docs/data.md's recipes"
        assert {r.task for r in load_records(f)} == {cfg.data.task}
    # the reference's scripts: gradient checkpointing only for LISA (2B_lisa_grounding.sh)
    assert cfg.model.gradient_checkpointing == (path.stem == "lisa")
    assert cfg.rewards.preset == "visual-rft"


def test_coco_ov_recipe_yields_6000_positive_only_base_prompts(in_recipe_dir):
    full = load_records("data/coco_ov/base65_train.jsonl")
    assert len(full) == 4 * N_COCO_IMAGES and all(r.boxes for r in full)  # no 'No Objects' at all
    for name in ("coco_ov", "lvis_ov"):
        cfg = load_config(ROOT / "configs" / "paper" / f"{name}.yaml")
        records, task = training_records(cfg)
        assert task == "detection" and len(records) == 6000 and cfg.data.max_samples == 6000
        assert all(r.boxes for r in records) and {r.category for r in records} <= set(COCO_OV_BASE_65)
        assert cfg.grpo.epochs == 2.0  # 6k x 2 epochs / 16 prompts per step = 750 steps
    val = load_records("data/coco_ov/novel15_val.jsonl")
    assert {r.category for r in val} == set(COCO_OV_NOVEL_15) and len(val) == 30 * 15


def test_lvis_recipes_keep_underscores(in_recipe_dir):
    rare = load_records("data/lvis/rare13_val.jsonl")
    assert {r.category for r in rare} <= set(LVIS_RARE_13) and "egg_roll" in {r.category for r in rare}
    assert {r.category for r in load_records("data/lvis/fs6/4shot.jsonl")} <= set(LVIS_FEWSHOT_6)


def test_coop_recipes_keep_years_and_model_numbers(in_recipe_dir):
    cars = load_records("data/cars196/test.jsonl")
    assert cars[0].classes[:2] == ["2000 am general hummer suv", "2012 acura rl sedan"]
    air = load_records("data/aircraft/test.jsonl")
    assert air[0].classes[:3] == ["707-320", "727-200", "737-200"]
    assert air[0].domain == {"object": "aircraft", "attribute": "model"}
    assert len(load_records("data/flowers102/fewshot/1shot.jsonl")) == 12  # one image per class


def test_lisa_recipe_first_shape_and_one_test_item_per_image(in_recipe_dir):
    train = load_records("data/lisa/train.jsonl")
    assert len(train) == 4  # every instruction trains
    assert all(r.boxes == [[10.0, 5.0, 25.0, 30.0]] for r in train)  # the first shape only
    test = load_records("data/lisa/test.jsonl")
    assert [r.expression for r in test] == ["what can I sit on in a?", "what can I sit on in b?"]


def test_evaluation_doc_reads_what_the_recipes_write(in_recipe_dir):
    """Every records file docs/evaluation.md's paper commands evaluate on is one the recipes write."""
    text = (ROOT / "docs" / "evaluation.md").read_text(encoding="utf-8")
    section = text[text.index("## Reproducing the paper's evaluations") :]
    paths = set(re.findall(r"--data (data/\S+\.jsonl)", section))
    assert len(paths) >= 5
    for p in paths:
        assert Path(p).is_file(), f"docs/evaluation.md evaluates on {p}, which docs/data.md does not write"
