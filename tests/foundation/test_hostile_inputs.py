"""Hostile input, class by class, through every command that reads that kind of input.

Each case runs `vrft.cli.main([...])` in-process and asserts what a user sees: exit 2, a
`vrft CMD: error: ...` line naming the file (and line / field) and no traceback. The classes: bytes
that are not UTF-8, decompression-bomb images, negative seeds, huge synth sizes, non-finite config
numbers, YAML alias bombs and duplicate keys, directories given as files, invalid COCO ground truth
for `vrft eval`, huge ground truth for `vrft score`, missing / unreadable training images, and
non-ASCII digits in answers. The readers behind them are shared (`vrft.inputs`,
`vrft.data.coco.read_instances`), so these cases stand for the whole class.
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vrft.cli import main

LATIN1 = "chat noir café".encode("latin-1")  # é = 0xe9: not UTF-8


# ------------------------------------------------------------------------------------------ helpers
def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def error_of(capsys, cmd: str, *argv, one_line: bool = True) -> str:
    """Run; assert exit 2, a `vrft CMD: error:` message (on one line) and no traceback; return it."""
    rc, out, err = run(capsys, *argv)
    assert "Traceback" not in out + err
    assert rc == 2, (rc, out, err)
    marker = f"vrft {cmd}: error: "
    assert marker in err, err
    message = err.split(marker, 1)[1].rstrip("\n")
    if one_line:
        assert "\n" not in message, message
    return message


def image(path: Path, size=(40, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200, 40, 40)).save(path)
    return path


def png_header(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height (a decompression bomb: a few bytes on disk)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return path


BOMBS = {"100000x100000": (100_000, 100_000), "12000x12000": (12_000, 12_000)}  # Pillow error / our limit


def det_record(rid: str, img: str, size=(40, 30), **kw) -> dict:
    return {"id": rid, "task": "detection", "image": img, "width": size[0], "height": size[1],
            "category": "cat", "boxes": [[1, 1, 20, 20]], **kw}  # fmt: skip


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def records_file(root: Path, n: int = 4) -> Path:
    """Detection records of n images (40x30), one per image, in root/recs.jsonl."""
    rows = []
    for i in range(n):
        image(root / "images" / f"{i}.png")
        rows.append(det_record(f"r{i}", f"images/{i}.png", image_id=i + 1))
    return write_jsonl(root / "recs.jsonl", rows)


def coco_dict() -> dict:
    return {
        "images": [{"id": 1, "file_name": "1.png", "width": 40, "height": 30},
                   {"id": 2, "file_name": "2.png", "width": 40, "height": 30}],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
        "annotations": [{"id": 10, "image_id": 1, "category_id": 1, "bbox": [2, 2, 10, 10], "area": 100, "iscrowd": 0},
                        {"id": 11, "image_id": 2, "category_id": 2, "bbox": [5, 5, 20, 15], "area": 300, "iscrowd": 0}],
    }  # fmt: skip


def coco_file(root: Path, data: dict | None = None, name: str = "instances.json") -> Path:
    for i in (1, 2):
        image(root / "images" / f"{i}.png")
    path = root / name
    path.write_text(json.dumps(coco_dict() if data is None else data), encoding="utf-8")
    return path


def predictions_file(root: Path) -> Path:
    """A wrong prediction for (image 1, cat): its box misses the GT box entirely."""
    line = {"image_id": 1, "category": "cat",
            "completion": "<think>x</think><answer>[{'Position': [800, 800, 990, 990], 'Confidence': 0.9}]</answer>"}  # fmt: skip
    return write_jsonl(root / "preds.jsonl", [line])


def config_file(root: Path, train: Path, extra: str = "") -> Path:
    from vrft.models.tiny import cached_tiny

    path = root / "cfg.yaml"
    path.write_text(
        f"model:\n  path: {cached_tiny('qwen2_5_vl')}\ndata:\n  train: {train}\n"
        f"output:\n  dir: {root / 'run'}\n{extra}",
        encoding="utf-8",
    )
    return path


def bad_bytes(path: Path, line: int) -> Path:
    """Put a latin-1 byte into `line` (1-based) of an existing text file."""
    lines = path.read_bytes().split(b"\n")
    lines[line - 1] = lines[line - 1].replace(b"cat", b"caf\xe9", 1) if b"cat" in lines[line - 1] else (
        lines[line - 1] + b" # " + LATIN1 if path.suffix == ".yaml" else lines[line - 1].replace(b"}", b', "x": "\xe9"}', 1)
    )  # fmt: skip
    path.write_bytes(b"\n".join(lines))
    return path


@pytest.fixture(scope="module")
def tiny_model():
    from vrft.models.tiny import cached_tiny

    return cached_tiny("qwen2_5_vl")


# ---------------------------------------------------------------------------------- 1. not UTF-8
def test_not_utf8_records_in_every_command_reading_records(tmp_path, capsys):
    recs = bad_bytes(records_file(tmp_path), 3)
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": "r0", "completion": "x"}])
    want = f"{recs}:3: not UTF-8 (byte 0xe9"
    for cmd, argv in [
        ("data", ["data", "validate", recs]),
        ("data", ["data", "fewshot", recs, "--shots", "1", "--out", tmp_path / "fs"]),
        ("data", ["data", "split", recs, "--test-fraction", "0.5", "--out", tmp_path / "sp"]),
        ("eval", ["eval", "--predictions", preds, "--data", recs, "--out", tmp_path / "ev"]),
    ]:
        msg = error_of(capsys, cmd, *argv)
        assert want in msg and "UTF-8" in msg and "iconv" in msg, (argv, msg)
    cfg = config_file(tmp_path, recs)
    for cmd in ("check-config", "train", "sft"):
        rc, _, err = run(capsys, cmd, cfg)
        assert rc == 2 and f"vrft {cmd}: error: " in err and want in err and "Traceback" not in err


def test_not_utf8_json_inputs(tmp_path, capsys):
    coco = coco_file(tmp_path)
    raw = coco.read_bytes().replace(b'"cat"', b'"caf\xe9"')
    coco.write_bytes(raw.replace(b"{", b"\n{", 3))  # the bad byte on line 4
    want = f"{coco}:4: not UTF-8"
    preds = predictions_file(tmp_path)
    for cmd, argv in [
        ("data", ["data", "convert", "coco", coco, "--out", tmp_path / "o.jsonl"]),
        ("data", ["data", "convert", "lvis", coco, "--out", tmp_path / "o.jsonl"]),
        ("data", ["data", "validate", coco]),
        ("data", ["data", "convert", "refcoco", coco, "--out", tmp_path / "o.jsonl"]),
        ("data", ["data", "convert", "coop", coco, "--images", tmp_path, "--out-dir", tmp_path / "coop"]),
        ("eval", ["eval", "--predictions", preds, "--coco-gt", coco, "--out", tmp_path / "ev"]),
        ("eval", ["eval", "--predictions", preds, "--lvis-gt", coco, "--out", tmp_path / "ev"]),
    ]:
        assert want in error_of(capsys, cmd, *argv), argv
    lisa = tmp_path / "lisa"
    image(lisa / "a.jpg")
    (lisa / "a.json").write_bytes(b'{"text": ["the caf\xe9"], "shapes": []}')
    msg = error_of(
        capsys, "data", "data", "convert", "lisa", lisa, "--out", tmp_path / "l.jsonl", one_line=False
    )
    assert f"{lisa / 'a.json'}:1: not UTF-8" in msg  # LISA lists every bad file, one per line


def test_not_utf8_predictions_score_lines_and_vocab_text(tmp_path, capsys, monkeypatch):
    recs = records_file(tmp_path)
    preds = write_jsonl(
        tmp_path / "p.jsonl", [{"id": "r0", "completion": "a"}, {"id": "r1", "completion": "cat"}]
    )
    bad_bytes(preds, 2)
    msg = error_of(capsys, "eval", "eval", "--predictions", preds, "--data", recs, "--out", tmp_path / "ev")
    assert f"{preds}:2: not UTF-8" in msg
    lines = write_jsonl(tmp_path / "s.jsonl", [{"completion": "<answer>cat</answer>", "label": "cat"}] * 3)
    bad_bytes(lines, 3)
    assert f"{lines}:3: not UTF-8" in error_of(capsys, "score", "score", "classification", lines)

    import io
    import sys

    class Stdin:
        buffer = io.BytesIO(b'{"completion": "x", "label": "cat"}\n{"completion": "caf\xe9"}\n')

    monkeypatch.setattr(sys, "stdin", Stdin())
    assert "<stdin>:2: not UTF-8" in error_of(capsys, "score", "score", "classification", "-")
    vocab = tmp_path / "vocab.txt"
    vocab.write_bytes(b"hello\n" + LATIN1)
    msg = error_of(
        capsys, "tiny", "tiny", "--arch", "qwen2_5_vl", "--out", tmp_path / "t", "--vocab-text", vocab
    )
    assert f"{vocab}:2: not UTF-8" in msg


def test_not_utf8_yaml_configs(tmp_path, capsys):
    recs = records_file(tmp_path)
    cfg = bad_bytes(config_file(tmp_path, recs), 2)
    for cmd in ("check-config", "train", "sft"):
        assert f"{cfg}:2: not UTF-8" in error_of(capsys, cmd, cmd, cfg)
    demo = tmp_path / "demo.yaml"
    demo.write_bytes(b"world:\n  seed: 1 # " + LATIN1 + b"\n")
    assert f"{demo}:2: not UTF-8" in error_of(
        capsys, "demo", "demo", "--config", demo, "--out", tmp_path / "d"
    )


def test_a_utf8_byte_order_mark_is_accepted(tmp_path, capsys):
    recs = records_file(tmp_path)
    recs.write_bytes(b"\xef\xbb\xbf" + recs.read_bytes())
    rc, _, err = run(capsys, "data", "validate", recs, "--no-check-images")
    assert rc == 0, err


# --------------------------------------------------------------------------- 2. decompression bombs
@pytest.mark.parametrize("claim", list(BOMBS))
def test_decompression_bomb_images(tmp_path, capsys, claim, tiny_model):
    w, h = BOMBS[claim]
    bomb = png_header(tmp_path / "images" / "bomb.png", w, h)
    # records (validate: a problem line naming the file, exit 1; never decoded)
    recs = write_jsonl(
        tmp_path / "recs.jsonl", [det_record("b", "images/bomb.png", size=(w, h), boxes=[[1, 1, 9, 9]])]
    )
    rc, out, err = run(capsys, "data", "validate", recs)
    assert rc == 1 and "Traceback" not in err and str(bomb) in out and "pixels" in out, (out, err)
    # a COCO file pointing at it
    coco = tmp_path / "c.json"
    coco.write_text(json.dumps({"images": [{"id": 1, "file_name": "bomb.png", "width": w, "height": h}],
                                "categories": [{"id": 1, "name": "cat"}], "annotations": []}))  # fmt: skip
    rc, out, err = run(capsys, "data", "validate", coco, "--images", tmp_path / "images")
    assert rc == 1 and "Traceback" not in err and "bomb.png" in out and "pixels" in out
    # imagefolder / coop conversions read the header
    folder = tmp_path / "folder"
    png_header(folder / "tulip" / "bomb.png", w, h)
    msg = error_of(
        capsys,
        "data",
        "data",
        "convert",
        "imagefolder",
        folder,
        "--out",
        tmp_path / "f.jsonl",
        one_line=False,
    )
    assert "bomb.png" in msg and "pixels" in msg
    # predict: before the model is loaded
    msg = error_of(capsys, "predict", "predict", "--model", tmp_path / "no-model", bomb, "--detect", "cat")
    assert str(bomb) in msg and "pixels" in msg
    # train / sft / check-config: the header check of the training images
    cfg = config_file(tmp_path, recs)
    for cmd in ("check-config", "train", "sft"):
        msg = error_of(capsys, cmd, cmd, cfg, one_line=False)
        assert f"{recs}:1: image: {bomb}" in msg and "pixels" in msg
    # eval with a model: the images' headers are checked before the model loads
    msg = error_of(
        capsys,
        "eval",
        "eval",
        "--model",
        tiny_model,
        "--data",
        recs,
        "--out",
        tmp_path / "ev",
        "--device",
        "cpu",
        one_line=False,
    )
    assert f"{recs}:1: image: {bomb}" in msg and "pixels" in msg


def test_report_skips_a_bomb_image_with_a_warning(tmp_path, capsys, caplog):
    coco = coco_file(tmp_path)
    png_header(tmp_path / "images" / "1.png", *BOMBS["100000x100000"])
    rc, out, err = run(capsys, "eval", "--predictions", predictions_file(tmp_path), "--coco-gt", coco,
                       "--images", tmp_path / "images", "--out", tmp_path / "ev")  # fmt: skip
    assert rc == 0 and "Traceback" not in err
    assert (tmp_path / "ev" / "report.html").is_file()
    assert any("1.png" in r.getMessage() and "pixels" in r.getMessage() for r in caplog.records)


def test_reference_conversion_refuses_a_bomb_row(tmp_path, capsys):
    datasets = pytest.importorskip("datasets")
    bomb = png_header(tmp_path / "bomb.png", *BOMBS["100000x100000"]).read_bytes()
    ds = datasets.Dataset.from_dict(
        {
            "image": [{"bytes": bomb, "path": None}],
            "problem": ["Detect category 'cat'."],
            "solution": ["<answer>No Objects</answer>"],
        }  # fmt: skip
    )
    ds = ds.cast_column("image", datasets.Image())
    ds.to_parquet(str(tmp_path / "ref.parquet"))
    msg = error_of(capsys, "data", "data", "convert", "reference", tmp_path / "ref.parquet", "--out", tmp_path / "o",
                   one_line=False)  # fmt: skip
    assert "row 0" in msg and "pixels" in msg


# ----------------------------------------------------------------------------------- 3. seeds
def test_negative_seeds_map_to_seed_mod_2_32(tmp_path, capsys):
    from vrft.inputs import normalize_seed

    assert normalize_seed(-1) == 2**32 - 1 and normalize_seed(2**32 + 5) == 5
    recs = records_file(tmp_path, n=6)
    for seed in ("-1", str(2**32 - 1)):
        assert (
            run(
                capsys,
                "data",
                "split",
                recs,
                "--test-fraction",
                "0.5",
                "--seed",
                seed,
                "--out",
                tmp_path / seed,
            )[0]
            == 0
        )
        assert (
            run(
                capsys,
                "data",
                "fewshot",
                recs,
                "--shots",
                "1",
                "--seed",
                seed,
                "--out",
                tmp_path / f"f{seed}",
            )[0]
            == 0
        )
    # the same run: -1 is 2**32 - 1
    assert (tmp_path / "-1" / "test.jsonl").read_text() == (
        tmp_path / str(2**32 - 1) / "test.jsonl"
    ).read_text()
    rc, _, err = run(
        capsys, "data", "synth", "--out", tmp_path / "syn", "--images", "2", "--size", "32", "--seed", "-7"
    )
    assert rc == 0, err
    coco = coco_file(tmp_path / "c")
    rc, _, err = run(capsys, "data", "convert", "coco", coco, "--out", tmp_path / "c.jsonl", "--seed", "-3",
                     "--negative-ratio", "1", "--max-images", "1")  # fmt: skip
    assert rc == 0, err
    # config seeds (data.seed, grpo.seed, sft.seed) and the demo's
    rc, out, err = run(
        capsys, "check-config", config_file(tmp_path, recs), "grpo.seed=-1", "sft.seed=-2", "data.seed=-3"
    )
    assert rc == 0, err
    assert "seed: 4294967295" in out and "seed: 4294967294" in out and "seed: 4294967293" in out
    from vrft.demo.settings import load_settings

    assert load_settings(None, overrides=["world.seed=-1"]).world.seed == 2**32 - 1
    np.random.seed(2**32 - 1)  # what transformers' set_seed does with the mapped value: accepted
    with pytest.raises(SystemExit) as exit_info:  # not an integer: argparse's usage error
        main(
            [
                "data",
                "split",
                str(recs),
                "--test-fraction",
                "0.5",
                "--seed",
                "x",
                "--out",
                str(tmp_path / "z"),
            ]
        )
    assert exit_info.value.code == 2 and "'x' is not an integer seed" in capsys.readouterr().err


# ----------------------------------------------------------------------------------- 4. synth bounds
@pytest.mark.parametrize(
    "argv, flag",
    [(["--size", "100000"], "--size"), (["--images", "100000000"], "--images"), (["--max-objects", "100000"], "--max-objects"),
     (["--workers", "100000"], "--workers"), (["--start-index", "-1"], "--start-index"), (["--classification", "-5"], "--classification")],
)  # fmt: skip
def test_synth_refuses_huge_sizes_and_counts(tmp_path, capsys, argv, flag):
    start = time.perf_counter()
    msg = error_of(capsys, "data", "data", "synth", "--out", tmp_path / "s", "--images", "2", *argv)
    assert flag in msg and time.perf_counter() - start < 5
    assert not (tmp_path / "s" / "images").exists() or not any((tmp_path / "s" / "images").iterdir())


# ------------------------------------------------------------------------------ 5. non-finite config
def _float_keys() -> list[str]:
    from typing import get_args, get_origin

    from pydantic import BaseModel

    from vrft.config import VrftConfig

    keys = []

    def walk(cls, prefix):
        for name, f in cls.model_fields.items():
            ann = f.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann, f"{prefix}{name}.")
            elif ann is float or float in get_args(ann) and get_origin(ann) is not dict:
                keys.append(f"{prefix}{name}")

    walk(VrftConfig, "")
    return keys


def test_every_float_config_key_refuses_inf_and_nan(tmp_path, capsys):
    from vrft.config import load_config
    from vrft.errors import ConfigError

    keys = _float_keys()
    assert {"grpo.learning_rate", "grpo.beta", "grpo.max_grad_norm", "sft.learning_rate"} <= set(keys)
    base = {"model": {"path": "m"}, "data": {"train": "t.jsonl"}}
    for key in keys + ["rewards.weights.format"]:
        for value in (".inf", "-.inf", ".nan", "1e999"):
            with pytest.raises(ConfigError, match=key.replace(".", r"\.") + ".*finite"):
                load_config(base, [f"{key}={value}"], check=False)
    recs = records_file(tmp_path)
    cfg = config_file(tmp_path, recs, extra="grpo:\n  learning_rate: .inf\n  beta: .nan\n")
    msg = error_of(capsys, "check-config", "check-config", cfg, "grpo.max_grad_norm=.inf", one_line=False)
    assert f"{cfg}:8: grpo.learning_rate" in msg and f"{cfg}:9: grpo.beta" in msg
    assert "override 'grpo.max_grad_norm=.inf'" in msg
    from vrft.demo.settings import load_settings

    with pytest.raises(ConfigError, match="finite"):
        load_settings(None, overrides=["rft.learning_rate=.inf"])


# ---------------------------------------------------------------------------- 6. YAML bombs, dup keys
def test_yaml_alias_bomb_is_refused_fast(tmp_path, capsys):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\nmodel:\n  path: m\ndata:\n  train: t\nname: *a9\n")
    start = time.perf_counter()
    msg = error_of(capsys, "check-config", "check-config", bomb)
    assert time.perf_counter() - start < 5 and "alias" in msg and str(bomb) in msg
    demo = tmp_path / "demo.yaml"
    demo.write_text("\n".join(lines) + "\n")
    assert "alias" in error_of(capsys, "demo", "demo", "--config", demo, "--out", tmp_path / "d")
    selfref = tmp_path / "self.yaml"
    selfref.write_text("model: &m\n  path: *m\n")
    assert "alias" in error_of(capsys, "check-config", "check-config", selfref)


def test_a_few_aliases_still_work(tmp_path, capsys):
    recs = records_file(tmp_path)
    cfg = config_file(tmp_path, recs, extra="grpo:\n  learning_rate: &lr 0.001\nsft:\n  learning_rate: *lr\n")
    rc, out, err = run(capsys, "check-config", cfg)
    assert rc == 0, err
    assert out.count("learning_rate: 0.001") == 2


def test_duplicate_yaml_keys_name_both_lines(tmp_path, capsys):
    recs = records_file(tmp_path)
    cfg = config_file(tmp_path, recs, extra="grpo:\n  beta: 0.1\n  seed: 3\n  beta: 0.2\n")
    for cmd in ("check-config", "train", "sft"):
        msg = error_of(capsys, cmd, cmd, cfg)
        assert f"{cfg}:10: duplicate key 'beta' (first at line 8)" in msg
    top = tmp_path / "top.yaml"
    top.write_text("model:\n  path: m\ndata:\n  train: t\nmodel:\n  path: n\n")
    assert f"{top}:5: duplicate key 'model' (first at line 1)" in error_of(
        capsys, "check-config", "check-config", top
    )
    demo = tmp_path / "demo.yaml"
    demo.write_text("world:\n  seed: 1\n  seed: 2\n")
    assert f"{demo}:3: duplicate key 'seed' (first at line 2)" in error_of(
        capsys, "demo", "demo", "--config", demo, "--out", tmp_path / "d"
    )


# ------------------------------------------------------------------------ 7. a directory for a file
def test_a_directory_where_a_file_is_expected(tmp_path, capsys):
    d = tmp_path / "somedir"
    d.mkdir()
    recs = records_file(tmp_path)
    preds = predictions_file(tmp_path)
    cases = [
        ("data", ["data", "validate", d]),
        ("predict", ["predict", "--model", tmp_path / "no-model", d, "--detect", "cat"]),
        ("data", ["data", "fewshot", d, "--out", tmp_path / "fs"]),
        ("data", ["data", "split", d, "--test-fraction", "0.5", "--out", tmp_path / "sp"]),
        ("data", ["data", "convert", "coco", d, "--out", tmp_path / "o.jsonl"]),
        ("data", ["data", "convert", "coop", d, "--images", tmp_path, "--out-dir", tmp_path / "co"]),
        ("eval", ["eval", "--predictions", d, "--data", recs, "--out", tmp_path / "ev"]),
        ("eval", ["eval", "--predictions", preds, "--data", d, "--out", tmp_path / "ev"]),
        ("eval", ["eval", "--predictions", preds, "--coco-gt", d, "--out", tmp_path / "ev"]),
        ("score", ["score", "detection", d]),
        ("check-config", ["check-config", d]),
        ("demo", ["demo", "--config", d, "--out", tmp_path / "dm"]),
    ]
    for cmd, argv in cases:
        msg = error_of(capsys, cmd, *argv)
        assert f"{d}: is a directory" in msg and "not found" not in msg, (argv, msg)
    msg = error_of(capsys, "check-config", "check-config", config_file(tmp_path, d))
    assert f"{d} is a directory" in msg


# ---------------------------------------------------------------------- 8. COCO GT for vrft eval
def _set_ann(field: str, value):
    def edit(data):
        data["annotations"][0][field] = value

    return edit


GT_DEFECTS = {
    "nan coordinate": (_set_ann("bbox", [float("nan"), 2, 10, 10]), "annotation id=10: bbox="),
    "inf size": (_set_ann("bbox", [2, 2, float("inf"), 10]), "annotation id=10: bbox="),
    "negative size": (_set_ann("bbox", [2, 2, -10, 10]), "negative width or height"),
    "string bbox": (_set_ann("bbox", "2,2,10,10"), "annotation id=10: bbox='2,2,10,10'"),
    "string coordinate": (_set_ann("bbox", ["2", 2, 10, 10]), "annotation id=10: bbox="),
    "bool coordinate": (_set_ann("bbox", [True, 2, 10, 10]), "annotation id=10: bbox="),
    "three numbers": (_set_ann("bbox", [2, 2, 10]), "annotation id=10: bbox="),
    "unknown category": (_set_ann("category_id", 99), "annotation id=10: unknown category_id=99"),
    "unknown image": (_set_ann("image_id", 7), "annotation id=10: unknown image_id=7"),
    "list image id": (_set_ann("image_id", [1]), "annotation id=10: unknown image_id=[1]"),
    "iscrowd 2": (_set_ann("iscrowd", 2), "annotation id=10: iscrowd=2"),
    "string area": (_set_ann("area", "big"), "annotation id=10: area='big'"),
    "duplicate image id": (lambda d: d["images"].append(dict(d["images"][0])), "image id=1: duplicate image id"),
    "duplicate annotation id": (lambda d: d["annotations"].append(dict(d["annotations"][0])), "annotation id=10: duplicate"),
    "string category id": (lambda d: d["categories"][0].update(id="one"), "categories[0]: id='one'"),
    "no annotations list": (lambda d: d.pop("annotations"), "'annotations' missing"),
    "annotation without id": (lambda d: d["annotations"][0].pop("id") and d["annotations"][0].update(bbox=None), "annotations[0]: bbox=None"),
}  # fmt: skip


@pytest.mark.parametrize("defect", list(GT_DEFECTS))
def test_eval_coco_gt_is_validated_like_convert_and_validate(tmp_path, capsys, defect):
    edit, want = GT_DEFECTS[defect]
    data = coco_dict()
    edit(data)
    gt = coco_file(tmp_path, data)
    preds = predictions_file(tmp_path)
    msg = error_of(
        capsys,
        "eval",
        "eval",
        "--predictions",
        preds,
        "--coco-gt",
        gt,
        "--out",
        tmp_path / "ev",
        one_line=False,
    )
    assert str(gt) in msg and want in msg, msg
    assert not (tmp_path / "ev" / "metrics.json").exists()  # never an AP (one NaN gave AP50 = 100)
    # convert refuses the same file, validate reports it
    msg = error_of(
        capsys, "data", "data", "convert", "coco", gt, "--out", tmp_path / "o.jsonl", one_line=False
    )
    assert want in msg
    rc, out, err = run(capsys, "data", "validate", gt)
    assert rc in (1, 2) and "Traceback" not in err and want in out + err


def test_eval_lvis_gt_checks_the_category_lists(tmp_path, capsys):
    data = coco_dict()
    data["images"][0]["neg_category_ids"] = [1, "x"]
    gt = coco_file(tmp_path, data)
    msg = error_of(capsys, "eval", "eval", "--predictions", predictions_file(tmp_path), "--lvis-gt", gt,
                   "--out", tmp_path / "ev", one_line=False)  # fmt: skip
    assert "image id=1: neg_category_ids has unknown category ids ['x']" in msg


def test_a_valid_gt_still_evaluates_and_crowd_boxes_are_not_targets(tmp_path, capsys):
    data = coco_dict()
    data["annotations"].append(
        {"id": 12, "image_id": 1, "category_id": 1, "bbox": [20, 10, 10, 10], "area": 100, "iscrowd": 1}
    )
    gt = coco_file(tmp_path, data)
    rc, _, err = run(
        capsys, "eval", "--predictions", predictions_file(tmp_path), "--coco-gt", gt, "--out", tmp_path / "ev"
    )
    assert rc == 0, err
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())["detection"]
    assert metrics["AP50"] == 0.0
    from vrft.data.coco import gt_boxes

    boxes, crowd, dropped = gt_boxes(data)
    assert (
        boxes[(1, 1)] == [[2.0, 2.0, 12.0, 12.0]]
        and crowd[(1, 1)] == [[20.0, 10.0, 30.0, 20.0]]
        and not dropped
    )


# ------------------------------------------------------------------------------ 9. score GT cap
def test_score_caps_ground_truth_boxes(tmp_path, capsys):
    lines = write_jsonl(
        tmp_path / "s.jsonl",
        [{"completion": "<answer>[]</answer>", "boxes": [[1, 1, 5, 5]] * 1001, "width": 10, "height": 10},
         {"completion": "<answer>[]</answer>", "boxes": [[1, 1, 5, 5]] * 1000, "width": 10, "height": 10}],
    )  # fmt: skip
    start = time.perf_counter()
    rc, out, err = run(capsys, "score", "detection", lines)
    assert rc == 1 and "Traceback" not in err and time.perf_counter() - start < 10
    assert f"{lines}:1: 'boxes' holds 1001 ground-truth boxes, more than the cap of 1000" in err
    assert len(out.splitlines()) == 1  # the line at the cap is scored


# ---------------------------------------------------------------- 10. training images before the model
def test_training_images_are_checked_before_the_model_loads(tmp_path, capsys, monkeypatch):
    recs = records_file(tmp_path)
    (tmp_path / "images" / "1.png").unlink()
    (tmp_path / "images" / "3.png").write_bytes(b"not a png")
    cfg = config_file(tmp_path, recs)
    import vrft.train.builder as builder

    def no_model(*a, **k):
        raise AssertionError("the model must not load before the images are checked")

    monkeypatch.setattr(builder, "load_policy", no_model)
    for cmd in ("check-config", "train", "sft"):
        msg = error_of(capsys, cmd, cmd, cfg, one_line=False)
        assert f"{recs}:2: image: {tmp_path / 'images' / '1.png'}: file not found" in msg
        assert f"{recs}:4: image: {tmp_path / 'images' / '3.png'}: unreadable image" in msg
    import vrft.models.load as load

    monkeypatch.setattr(load, "load_model_and_processor", no_model)
    msg = error_of(
        capsys, "eval", "eval", "--model", tmp_path, "--data", recs, "--out", tmp_path / "ev", one_line=False
    )
    assert f"{recs}:2: image: {tmp_path / 'images' / '1.png'}: file not found" in msg
    # only the images the run reads: records of another task are not checked
    rows = [json.loads(x) for x in recs.read_text().splitlines()]
    ok = [r for r in rows if r["id"] in ("r0", "r2")]
    other = {
        "id": "c",
        "task": "classification",
        "image": "images/1.png",
        "width": 40,
        "height": 30,
        "label": "cat",
    }
    write_jsonl(recs, ok + [other])
    rc, _, err = run(capsys, "check-config", cfg, "data.task=detection")
    assert rc == 0, err


# ----------------------------------------------------------------------- 11. non-ASCII digits
@pytest.mark.parametrize("digits", ["１０", "١٠", "۱۰", "१०"])
def test_non_ascii_digits_are_not_numbers(digits):
    from vrft.parsing import parse_box, parse_detections

    det = parse_detections(f"[{{'Position': [{digits}, 2, 30, 40], 'Confidence': 0.9}}]")
    assert det.detections == () and det.n_invalid == 1
    det = parse_detections(f"[{{'Position': ['{digits}', 2, 30, 40], 'Confidence': 0.9}}]")
    assert det.detections == () and det.n_invalid == 1
    assert not parse_box(f"({digits},2),(30,40)").ok
    assert parse_box("(10,2),(30,40)").box == (10.0, 2.0, 30.0, 40.0)


@pytest.mark.parametrize(
    "field, value",
    [("image_id", [1]), ("category", ["cat"]), ("presence", [1]), ("id", {"a": 1}), ("image_id", True)],
)
def test_prediction_lines_with_wrong_types(tmp_path, capsys, field, value):
    gt = coco_file(tmp_path)
    line = {"image_id": 1, "category": "cat", "completion": "<answer>[]</answer>", field: value}
    preds = write_jsonl(tmp_path / "p.jsonl", [line])
    msg = error_of(
        capsys,
        "eval",
        "eval",
        "--predictions",
        preds,
        "--coco-gt",
        gt,
        "--out",
        tmp_path / "ev",
        one_line=False,
    )
    assert f"{preds}:1: {field}: {value!r} must be" in msg


def test_gt_without_iscrowd_and_area_evaluates(tmp_path, capsys):
    data = coco_dict()
    for ann in data["annotations"]:
        del ann["iscrowd"], ann["area"]
    gt = coco_file(tmp_path, data)
    rc, _, err = run(
        capsys, "eval", "--predictions", predictions_file(tmp_path), "--coco-gt", gt, "--out", tmp_path / "ev"
    )
    assert rc == 0, err
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["detection"]["AP50"] == 0.0


def test_file_names_that_are_not_utf8(tmp_path, capsys):
    import os

    root = tmp_path / "flowers"
    image(root / "tulip" / "a.png")
    bad = os.fsencode(root) + b"/caf\xe9"
    os.makedirs(bad)
    Image.new("RGB", (8, 8)).save(bad + b"/b.png")
    msg = error_of(
        capsys, "data", "data", "convert", "imagefolder", root, "--out", tmp_path / "o.jsonl", one_line=False
    )
    assert "caf\\xe9: the file name is not UTF-8" in msg
    lisa = tmp_path / "lisa"
    image(lisa / "a.jpg")
    (lisa / "a.json").write_text('{"text": ["x"], "shapes": []}')
    Image.new("RGB", (8, 8)).save(os.fsencode(lisa) + b"/\xe9.jpg")
    msg = error_of(
        capsys, "data", "data", "convert", "lisa", lisa, "--out", tmp_path / "l.jsonl", one_line=False
    )
    assert "\\xe9.jpg: the file name is not UTF-8" in msg


def test_counting_and_ocr_inputs(tmp_path, capsys):
    """The perception converters (counting JSON/JSONL, OCR JSONL, ICDAR folders) and synth passes."""
    image(tmp_path / "a.png")
    rows = [{"image": "a.png", "category": "cat", "points": [[1, 1]]}, {"image": "a.png", "category": "cat"}]
    counting = bad_bytes(write_jsonl(tmp_path / "count.jsonl", rows), 2)
    msg = error_of(capsys, "data", "data", "convert", "counting", counting, "--out", tmp_path / "c.jsonl")
    assert f"{counting}:2: not UTF-8" in msg
    counting_json = tmp_path / "count.json"
    counting_json.write_bytes(b'[\n{"image": "a.png", "category": "caf\xe9"}]')
    msg = error_of(
        capsys, "data", "data", "convert", "counting", counting_json, "--out", tmp_path / "c.jsonl"
    )
    assert f"{counting_json}:2: not UTF-8" in msg
    ocr = bad_bytes(write_jsonl(tmp_path / "ocr.jsonl", [{"image": "a.png", "text": "cat"}] * 3), 3)
    assert f"{ocr}:3: not UTF-8" in error_of(
        capsys, "data", "data", "convert", "ocr", ocr, "--out", tmp_path / "o.jsonl"
    )
    deep = tmp_path / "deep.jsonl"  # a line nested past Python's recursion limit: a problem, not a crash
    deep.write_text('{"image": "a.png", "text": "cat"}\n' + "[" * 100_000 + "]" * 100_000 + "\n")
    msg = error_of(capsys, "data", "data", "convert", "ocr", deep, "--out", tmp_path / "o.jsonl", one_line=False)
    assert f"{deep}:2: JSON nested too deeply; one object per line" in msg
    icdar = tmp_path / "icdar"
    image(icdar / "img_1.png")
    (icdar / "gt.txt").write_bytes(b'img_1.png, "ok"\nimg_1.png, "caf\xe9"\n')
    msg = error_of(capsys, "data", "data", "convert", "icdar", icdar, "--out", tmp_path / "i.jsonl")
    assert f"{icdar / 'gt.txt'}:2: not UTF-8" in msg
    d = tmp_path / "dir.jsonl"
    d.mkdir()
    for kind in ("counting", "ocr"):
        msg = error_of(capsys, "data", "data", "convert", kind, d, "--out", tmp_path / "x.jsonl")
        assert f"{d}: is a directory" in msg
    for flag in ("--counting", "--ocr"):
        msg = error_of(
            capsys, "data", "data", "synth", "--out", tmp_path / "s", "--images", "1", flag, "100000000"
        )
        assert flag in msg and not (tmp_path / "s").exists()


def test_score_caps_ground_truth_text(tmp_path, capsys):
    lines = write_jsonl(
        tmp_path / "s.jsonl",
        [{"completion": "<answer>ab</answer>", "text": "x" * 200_001},
         {"completion": "<answer>ab</answer>", "solution": "<answer>" + "y" * 200_001 + "</answer>"},
         {"completion": "<answer>ab</answer>", "text": "ab"}],
    )  # fmt: skip
    rc, out, err = run(capsys, "score", "ocr", lines)
    assert rc == 1 and "Traceback" not in err and len(out.splitlines()) == 1
    assert f"{lines}:1: the ground-truth text has 200001 characters, more than the cap of 200000" in err
    assert f"{lines}:2: the ground-truth text has 200001 characters" in err


def test_presence_map_inputs(tmp_path, capsys):
    gt = coco_file(tmp_path)
    preds = predictions_file(tmp_path)
    exist = tmp_path / "exist_map.json"
    exist.write_bytes(b'{"1": ["cat"],\n "2": ["caf\xe9"]}')
    d = tmp_path / "mapdir"
    d.mkdir()
    for path, want in ((exist, f"{exist}:2: not UTF-8"), (d, f"{d}: is a directory")):
        msg = error_of(capsys, "eval", "eval", "--predictions", preds, "--coco-gt", gt, "--protocol", "paper",
                       "--presence-from", path, "--out", tmp_path / "ev")  # fmt: skip
        assert want in msg
