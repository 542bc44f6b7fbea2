"""Hostile OUTPUTS: every command that writes, with every bad --out class (issue 14).

Each case runs the CLI in-process and asserts: exit code 2, exactly one `vrft CMD: error: ...` line on
stderr, no traceback, no model loaded, and every file that existed before is byte-identical afterwards
(no file added either). Classes:

- ``wrong_kind``: an existing directory where a file is written, or an existing file where a
  directory is written;
- ``under_file``: a path below an existing file;
- ``unwritable``: a place that cannot be written (``/sys``: refused even to root);
- ``is_input``: the output is (or would replace) one of the command's inputs;
- ``foreign``: a directory output that already holds, at a name the command writes, a file vrft did
  not write.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from PIL import Image

from vrft.cli import main

UNWRITABLE = Path("/sys/vrft-hostile-out")


# ---------------------------------------------------------------------------------------- fixtures
def _png(path: Path, size=(32, 32), colour=(200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


@pytest.fixture
def world(tmp_path, monkeypatch):
    """Inputs of every command in tmp_path/in, plus a `no model loading` guard."""
    import vrft.models.load

    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded although --out is bad")

    monkeypatch.setattr(vrft.models.load, "load_model_and_processor", no_loading)
    root = tmp_path / "in"
    imgs = root / "images"
    for i in range(2):
        _png(imgs / f"{i}.png")
    coco = {
        "images": [{"id": i + 1, "file_name": f"{i}.png", "width": 32, "height": 32} for i in range(2)],
        "categories": [{"id": 1, "name": "circle"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10], "area": 100, "iscrowd": 0}],
    }  # fmt: skip
    (root / "instances.json").write_text(json.dumps(coco))
    recs = [
        {"id": f"r{i}", "task": "detection", "image": f"images/{i}.png", "width": 32, "height": 32,
         "image_id": i + 1, "category": "circle", "boxes": [[1, 1, 11, 11]] if i == 0 else []}
        for i in range(2)
    ]  # fmt: skip
    (root / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (root / "preds.jsonl").write_text(
        "".join(json.dumps({"id": r["id"], "completion": "<answer>No Objects</answer>"}) + "\n" for r in recs)
    )
    for cls in ("a", "b"):
        _png(root / "folder" / cls / "x.png")
    (root / "split.json").write_text(
        json.dumps({"train": [["0.png", 0, "circle"]], "test": [["1.png", 0, "circle"]]})
    )
    (root / "refs.json").write_text(
        json.dumps([{"image": "0.png", "expression": "the red one", "bbox": [1, 1, 5, 5]}])
    )
    (root / "count.json").write_text(
        json.dumps([{"image": "0.png", "category": "circle", "points": [[5, 5]]}])
    )
    (root / "ocr.jsonl").write_text(json.dumps({"image": "0.png", "text": "hello"}) + "\n")
    (root / "lisa").mkdir()
    (root / "reference").mkdir()
    (root / "reference" / "data.arrow").write_bytes(b"not really arrow")
    (root / "model").mkdir()
    (root / "model" / "config.json").write_text("{}")
    (root / "demo.yaml").write_text("{}\n")
    (root / "vocab.txt").write_text("shapes and colours\n")
    (root / "afile").write_text("I am a file")
    return root


def _train_config(root: Path) -> Path:
    from vrft.models.tiny import cached_tiny

    cfg = root / "train.yaml"
    cfg.write_text(
        f"model:\n  path: {cached_tiny('qwen2_5_vl')}\n"
        f"data:\n  train: {root / 'records.jsonl'}\n"
        "grpo:\n  max_steps: 1\n  num_generations: 2\n  max_completion_length: 8\n"
        "sft:\n  max_steps: 1\n"
    )
    return cfg


# Each command that writes: (name, kind of output, argv builder(root, out)).
FILE_OUT = {
    "convert-coco": lambda r, o: ["data", "convert", "coco", str(r / "instances.json"), "--images", str(r / "images"), "--out", str(o)],
    "convert-lvis": lambda r, o: ["data", "convert", "lvis", str(r / "instances.json"), "--images", str(r / "images"), "--out", str(o)],
    "convert-imagefolder": lambda r, o: ["data", "convert", "imagefolder", str(r / "folder"), "--out", str(o)],
    "convert-refcoco": lambda r, o: ["data", "convert", "refcoco", str(r / "refs.json"), "--images", str(r / "images"), "--out", str(o)],
    "convert-lisa": lambda r, o: ["data", "convert", "lisa", str(r / "lisa"), "--out", str(o)],
    "convert-counting": lambda r, o: ["data", "convert", "counting", str(r / "count.json"), "--images", str(r / "images"), "--out", str(o)],
    "convert-ocr": lambda r, o: ["data", "convert", "ocr", str(r / "ocr.jsonl"), "--images", str(r / "images"), "--out", str(o)],
    "convert-icdar": lambda r, o: ["data", "convert", "icdar", str(r / "lisa"), "--out", str(o)],
    "predict": lambda r, o: ["predict", str(r / "images" / "0.png"), "--model", str(r / "model"), "--detect", "circle", "--out", str(o)],
}  # fmt: skip
DIR_OUT = {
    "convert-coop": lambda r, o: ["data", "convert", "coop", str(r / "split.json"), "--images", str(r / "images"), "--out-dir", str(o)],
    "convert-reference": lambda r, o: ["data", "convert", "reference", str(r / "reference"), "--out", str(o)],
    "fewshot": lambda r, o: ["data", "fewshot", str(r / "records.jsonl"), "--shots", "1", "--out", str(o)],
    "split": lambda r, o: ["data", "split", str(r / "records.jsonl"), "--test-fraction", "0.5", "--out", str(o)],
    "synth": lambda r, o: ["data", "synth", "--out", str(o), "--images", "2", "--size", "32"],
    "synth-counting-ocr": lambda r, o: ["data", "synth", "--out", str(o), "--images", "1", "--size", "32", "--counting", "1", "--ocr", "1"],
    "eval-predictions": lambda r, o: ["eval", "--predictions", str(r / "preds.jsonl"), "--data", str(r / "records.jsonl"), "--out", str(o)],
    "eval-model": lambda r, o: ["eval", "--model", str(r / "model"), "--data", str(r / "records.jsonl"), "--out", str(o)],
    "tiny": lambda r, o: ["tiny", "--arch", "qwen2_5_vl", "--vocab-text", str(r / "vocab.txt"), "--out", str(o)],
    "demo": lambda r, o: ["demo", "--quick", "--config", str(r / "demo.yaml"), "--cache-dir", str(r / "cache"), "--out", str(o)],
    "train": lambda r, o: ["train", str(_train_config(r)), f"output.dir={o}"],
    "sft": lambda r, o: ["sft", str(_train_config(r)), f"output.sft_dir={o}"],
}  # fmt: skip

# the output that IS (or would replace / hold) one of the command's inputs
IS_INPUT = {
    "convert-coco": lambda r: r / "instances.json",
    "convert-lvis": lambda r: r / "instances.json",
    "convert-refcoco": lambda r: r / "refs.json",
    "convert-counting": lambda r: r / "count.json",
    "convert-ocr": lambda r: r / "ocr.jsonl",
    "predict": lambda r: r / "images" / "0.png",
    "convert-coop": lambda r: r / "images",  # the input image folder itself
    "convert-reference": lambda r: r / "reference",  # the input folder itself
    "eval-model": lambda r: r / "model",
    "demo": lambda r: r / "cache",
    "train": lambda r: Path(str(_model_dir())),  # output.dir = model.path
    "sft": lambda r: Path(str(_model_dir())),
}
# inputs named like an output the command writes in --out (the input would be replaced)
INPUT_NAMED_LIKE_OUTPUT = {
    "split": ("records.jsonl", "train.jsonl"),
    "fewshot": ("records.jsonl", "1shot.jsonl"),
    "eval-predictions": ("preds.jsonl", "predictions.jsonl"),
}
# a file vrft did not write, at a name the command writes
FOREIGN = {
    "convert-coop": "train.jsonl",
    "convert-reference": "records.jsonl",
    "fewshot": "1shot.jsonl",
    "split": "test.jsonl",
    "synth": "instances.json",
    "synth-counting-ocr": "ocr.jsonl",
    "eval-predictions": "metrics.json",
    "eval-model": "report.html",
    "demo": "results.json",
    "train": "metrics.jsonl",
    "sft": "metrics.jsonl",
}


def _model_dir():
    from vrft.models.tiny import cached_tiny

    return cached_tiny("qwen2_5_vl")


def _snapshot(*roots: Path) -> dict[str, str]:
    out = {}
    for root in roots:
        for dirpath, _, files in os.walk(root):
            for f in files:
                p = Path(dirpath) / f
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _run_refused(argv: list[str], capsys, *roots: Path) -> str:
    before = _snapshot(*roots)
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, f"exit {rc} for {argv}\n{err}"
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("vrft ")]
    assert len(lines) == 1, err
    command = argv[0]
    assert lines[0].startswith(f"vrft {command}: error: "), err
    assert _snapshot(*roots) == before, "a file was changed, added or removed"
    return lines[0]


# -------------------------------------------------------------------------------------------- cases
@pytest.mark.parametrize("name", sorted(FILE_OUT))
def test_file_output_that_is_a_directory(name, world, tmp_path, capsys):
    out = tmp_path / "out_dir"
    (out / "keep").mkdir(parents=True)
    (out / "keep" / "mine.txt").write_text("mine")
    line = _run_refused(FILE_OUT[name](world, out), capsys, world, out)
    assert "is a directory" in line


@pytest.mark.parametrize("name", sorted(DIR_OUT))
def test_directory_output_that_is_a_file(name, world, tmp_path, capsys):
    out = tmp_path / "results.csv"
    out.write_text("a,b\n1,2\n")
    line = _run_refused(DIR_OUT[name](world, out), capsys, world, tmp_path)
    assert "is a file" in line


@pytest.mark.parametrize("name", sorted(FILE_OUT) + sorted(DIR_OUT))
def test_output_below_a_file(name, world, tmp_path, capsys):
    build = FILE_OUT.get(name) or DIR_OUT[name]
    out = (
        world
        / "afile"
        / "sub"
        / ("x.png" if name == "predict" else "out.jsonl" if name in FILE_OUT else "out")
    )
    line = _run_refused(build(world, out), capsys, world)
    assert "afile" in line and "not a directory" in line


@pytest.mark.skipif(not UNWRITABLE.parent.is_dir(), reason="needs /sys (Linux)")
@pytest.mark.parametrize("name", sorted(FILE_OUT) + sorted(DIR_OUT))
def test_unwritable_output(name, world, capsys):
    build = FILE_OUT.get(name) or DIR_OUT[name]
    out = UNWRITABLE / ("x.png" if name == "predict" else "out")
    line = _run_refused(build(world, out), capsys, world)
    assert "cannot write" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_directory(world, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        line = _run_refused(DIR_OUT["split"](world, ro / "out"), capsys, world)
    finally:
        ro.chmod(0o700)
    assert "cannot write" in line


@pytest.mark.parametrize("name", sorted(IS_INPUT))
def test_output_that_is_an_input(name, world, capsys):
    build = FILE_OUT.get(name) or DIR_OUT[name]
    target = IS_INPUT[name](world)
    roots = [world] + ([target] if not target.is_relative_to(world) else [])
    line = _run_refused(build(world, target), capsys, *roots)
    assert "input" in line


@pytest.mark.parametrize("name", sorted(INPUT_NAMED_LIKE_OUTPUT))
def test_output_directory_that_holds_the_input(name, world, tmp_path, capsys):
    """`vrft data split d/train.jsonl --out d` (the issue's case: it cut the records from 38 lines to 18)."""
    src, written = INPUT_NAMED_LIKE_OUTPUT[name]
    d = tmp_path / "d"
    d.mkdir()
    (d / written).write_bytes(
        (world / src).read_bytes().replace(b"images/", str(world / "images").encode() + b"/")
    )
    argv = [str(d / written) if a == str(world / src) else a for a in DIR_OUT[name](world, d)]
    line = _run_refused(argv, capsys, world, d)
    assert "input" in line


def test_split_into_its_own_earlier_output_is_still_refused(world, tmp_path, capsys):
    """A file vrft wrote itself (listed in the manifest) is still never replaced while it is the input."""
    d = tmp_path / "d"
    assert (
        main(["data", "split", str(world / "records.jsonl"), "--test-fraction", "0.5", "--out", str(d)]) == 0
    )
    capsys.readouterr()
    _run_refused(
        ["data", "split", str(d / "train.jsonl"), "--test-fraction", "0.5", "--out", str(d)], capsys, d
    )


@pytest.mark.parametrize("name", sorted(FOREIGN))
def test_directory_output_holding_a_foreign_file(name, world, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / FOREIGN[name]).write_text("the user's own file")
    line = _run_refused(DIR_OUT[name](world, out), capsys, world, out)
    assert FOREIGN[name] in line and "did not write" in line


def test_eval_out_file_fails_before_generation(world, tmp_path, capsys):
    """The issue's case: generation ran, then `--out FILE` failed and all the work was lost."""
    out = tmp_path / "metrics.txt"
    out.write_text("x")
    line = _run_refused(DIR_OUT["eval-model"](world, out), capsys, world, tmp_path)
    assert "is a file" in line  # (the monkeypatched loader proves no model was loaded)


def test_predict_output_with_an_unknown_image_extension(world, tmp_path, capsys):
    line = _run_refused(FILE_OUT["predict"](world, tmp_path / "boxes.txt"), capsys, world, tmp_path)
    assert "not an image type" in line
