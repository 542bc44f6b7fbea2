"""The demo base model: its files match the card's hash (a changed file is refused), it loads through the
Auto classes like a real checkpoint, and (the shipped one) answers both of its tasks in the paper's format.

Without a shipped base (`vrft/demo/base_model`), the card and hash checks run on a base built here from
nothing with the smallest settings (`vrft demo build-base` with overrides)."""

from __future__ import annotations

import shutil

import pytest

from vrft.demo.base import (
    CARD,
    SHIPPED_BASE,
    WEIGHTS,
    BaseBuildSettings,
    build_base,
    build_command,
    read_card,
    sha256_of,
    verify_base,
)
from vrft.errors import UserError

SHIPPED = (SHIPPED_BASE / CARD).is_file()
TINY_BUILD = BaseBuildSettings(vision_images=16, vision_steps=2, cls_images=8, det_images=4, sft_steps=2,
                               sft_batch=4, eval_images=2)  # fmt: skip


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    if SHIPPED:
        return SHIPPED_BASE
    return build_base(tmp_path_factory.mktemp("base") / "model", TINY_BUILD)


def test_files_match_the_card(base_dir):
    card = verify_base(base_dir)
    assert sha256_of(base_dir / WEIGHTS) == card["weights_sha256"]
    assert card["build_command"] == build_command(BaseBuildSettings(**card["settings"]))
    expected = (BaseBuildSettings() if SHIPPED else TINY_BUILD).model_dump(mode="json")
    # the shipped card = the command's defaults (the thread count changes speed, not what is built)
    assert {k: v for k, v in card["settings"].items() if k != "threads"} == {
        k: v for k, v in expected.items() if k != "threads"
    }
    vision = {"dense": "vision_val_cell_accuracy", "classify": "vision_val_accuracy"}[card["settings"]["vision_objective"]]
    assert set(card["metrics"]) >= {vision, "classification_accuracy_novel_filled",
                                    "base_detection_mAP_all_categories"}  # fmt: skip
    assert sum(f.stat().st_size for f in base_dir.iterdir()) <= 25 * 2**20
    if SHIPPED:
        assert card["metrics"][vision] > 12.5  # better than chance (8 classes)


def test_build_refuses_to_replace_a_directory_that_is_not_a_base(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(UserError, match="not a demo base"):
        build_base(tmp_path, TINY_BUILD)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_a_changed_or_missing_base_is_refused(base_dir, tmp_path):
    copy = tmp_path / "base"
    shutil.copytree(base_dir, copy)
    with open(copy / WEIGHTS, "r+b") as fh:
        fh.seek(-4, 2)
        fh.write(b"\0\0\0\1")
    with pytest.raises(UserError, match="does not match its card.*vrft demo build-base"):
        verify_base(copy)
    (copy / CARD).unlink()
    with pytest.raises(UserError, match="vrft demo build-base"):
        read_card(copy)


@pytest.mark.slow  # loads the model and generates (about 10 s alone, 40 s on a shared machine)
@pytest.mark.skipif(
    not SHIPPED, reason="no base shipped in vrft/demo/base_model (build one: vrft demo build-base)"
)
def test_the_shipped_base_answers_in_format():
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from vrft.boxes import Frame
    from vrft.demo.world import CLASSIFY_PROMPT, SHORT_PROMPT, draw_single
    from vrft.tasks import TASKS

    model = AutoModelForImageTextToText.from_pretrained(SHIPPED_BASE, dtype=torch.float32)
    processor = AutoProcessor.from_pretrained(SHIPPED_BASE)
    img, _ = draw_single(0, 12345, 112, "square", "filled")
    frame = Frame.for_image(112, 112, "norm1000", min_pixels=112 * 112, max_pixels=112 * 112)
    for task, text in (
        ("classification", CLASSIFY_PROMPT),
        ("detection", SHORT_PROMPT.format(category="square")),
    ):
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
        prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
        batch = processor(text=[prompt], images=[img], return_tensors="pt")
        with torch.inference_mode():
            ids = model.generate(**batch, max_new_tokens=48, do_sample=False)
        answer = processor.batch_decode(ids[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)[0]
        parsed = TASKS[task].parse(answer, frame)
        assert parsed.format_ok and parsed.ok, (task, answer)


def test_dense_targets_put_each_shape_in_the_cell_of_its_centre():
    import torch

    from vrft.boxes import Frame
    from vrft.data.synthetic import ALL_CLASSES
    from vrft.demo.tower import coordinate_digits, dense_targets

    # 112 px, 4 x 4 cells of 28 px: a small shape centred in cell (row 0, col 3), and in cell (2, 1) a
    # large shape and a smaller one sharing it (the larger wins)
    objects = [(1, [90.0, 5.0, 106.0, 20.0]), (2, [20.0, 60.0, 60.0, 80.0]), (4, [40.0, 65.0, 50.0, 75.0])]
    cls, box = dense_targets(objects, 112, 4)
    none = len(ALL_CLASSES)
    assert cls[3] == 1 and cls[2 * 4 + 1] == 2
    assert int((cls != none).sum()) == 2
    assert torch.allclose(box[3], torch.tensor([90.0, 5.0, 106.0, 20.0]) / 112)
    assert torch.equal(box[0], torch.zeros(4))
    pixels = Frame.for_image(112, 112, "resized_pixels", min_pixels=112 * 112, max_pixels=112 * 112)
    digits = coordinate_digits(torch.tensor([[7.4, 59.6, 105.0, 111.0]]), pixels)
    assert digits.tolist() == [[0, 0, 7, 0, 6, 0, 1, 0, 5, 1, 1, 1]]


def test_stage1_coordinate_digits_follow_the_architecture_convention():
    """Qwen3-VL answers in 0..1000 of the image, Qwen2.5-VL in (resized) pixels: the tower's digit
    targets are the integers each architecture writes, through vrft.boxes.Frame (issue 19)."""
    import torch

    from vrft.demo.tower import answer_frame, coordinate_digits

    box = torch.tensor([[28.0, 56.0, 84.0, 112.0]])
    qwen3, qwen25 = answer_frame("qwen3_vl", 112), answer_frame("qwen2_5_vl", 112)
    assert qwen3.convention == "norm1000" and qwen25.convention == "resized_pixels"
    # 0..1000: 250, 500, 750, 1000 (capped at 999: three digits per coordinate)
    assert coordinate_digits(box, qwen3).tolist() == [[2, 5, 0, 5, 0, 0, 7, 5, 0, 9, 9, 9]]
    assert coordinate_digits(box, qwen25).tolist() == [[0, 2, 8, 0, 5, 6, 0, 8, 4, 1, 1, 2]]


def _no_build(*a, **k):
    raise RuntimeError("the build started")


def test_build_base_checks_its_output_before_any_work_and_cleans_its_temp_dir(tmp_path, monkeypatch):
    """Issue 19: `build-base --out /proc/x` ran the whole build (29 min) before failing and left its
    temporary work directory behind. The output is checked first; a failed build removes its work dir."""
    import os
    import sys
    import tempfile

    monkeypatch.setattr("vrft.models.tiny.build_tiny", _no_build)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    if sys.platform.startswith("linux"):
        with pytest.raises(UserError, match="cannot write"):
            build_base("/proc/vrft-x", TINY_BUILD)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        build_base(tmp_path / "file" / "base", TINY_BUILD)
    with pytest.raises(RuntimeError, match="the build started"):
        build_base(tmp_path / "base", TINY_BUILD)
    assert not [n for n in os.listdir(tmp_path / "tmp") if n.startswith("vrft-demo-base-")]  # work dir removed
    assert not (tmp_path / "base").exists()


def test_build_base_command_accepts_overrides_after_out(tmp_path, monkeypatch, capsys):
    """Issue 19: the documented `vrft demo build-base --out DIR key=value` was rejected with
    "unrecognized arguments"."""
    from vrft.cli import main as cli_main

    seen = {}

    def fake_build(out, settings):
        seen.update(out=out, settings=settings)
        return out

    monkeypatch.setattr("vrft.demo.base.build_base", fake_build)
    out = tmp_path / "b"
    assert cli_main(["demo", "build-base", "--out", str(out), "vision_steps=3", "sft_steps=4"]) == 0
    assert seen["out"] == out and seen["settings"].vision_steps == 3 and seen["settings"].sft_steps == 4
    assert cli_main(["demo", "build-base", "vision_steps=5", "--out", str(out), "seed=2"]) == 0
    assert seen["settings"].vision_steps == 5 and seen["settings"].seed == 2
    assert cli_main(["demo", "build-base", "--out", str(out), "vision_stepz=3"]) == 2
    assert "vision_steps" in capsys.readouterr().err  # the suggestion of the shared loader
    assert cli_main(["demo", "build-base", "--out", "/proc/vrft-x"]) == 2  # checked before the build


def test_replace_dir_never_leaves_no_base(tmp_path, monkeypatch):
    import os

    from vrft.demo.base import replace_dir

    out, new = tmp_path / "base", tmp_path / ".new"
    out.mkdir()
    (out / CARD).write_text("old")
    new.mkdir()
    (new / CARD).write_text("new")
    real = os.rename

    def failing(src, dst):
        if str(src) == str(new):
            raise OSError(5, "Input/output error")
        real(src, dst)

    monkeypatch.setattr(os, "rename", failing)
    with pytest.raises(OSError):
        replace_dir(new, out)
    assert (out / CARD).read_text() == "old" and sorted(os.listdir(tmp_path)) == [".new", "base"]
    monkeypatch.setattr(os, "rename", real)
    replace_dir(new, out)
    assert (out / CARD).read_text() == "new" and os.listdir(tmp_path) == ["base"]


@pytest.mark.slow  # a tiny build from nothing (about 15 s)
def test_a_build_that_cannot_install_keeps_the_old_base(base_dir, tmp_path, monkeypatch):
    """Issue 19: the base was replaced by deleting it and then renaming the new one in, so a failure
    (or a crash) between the two lost it. The old base stays until the new one is in place."""
    import os

    out = tmp_path / "model"
    shutil.copytree(base_dir, out)
    before = (out / WEIGHTS).read_bytes()
    real = os.rename

    def failing(src, dst):
        if os.path.basename(str(src)).startswith(".model.") and ".old-" not in str(src) and str(dst) == str(out):
            raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(os, "rename", failing)
    with pytest.raises(OSError):
        build_base(out, TINY_BUILD)
    assert (out / WEIGHTS).read_bytes() == before and verify_base(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # nothing left beside it


def test_the_shipped_tools_base_is_the_qwen3_vl_build_its_card_names():
    """The tools experiment's base (`vrft/demo/tools_base_model`): hash-checked like the main one, built
    by the command on its card (the defaults but arch and image side), small, and its tokenizer's merges
    cover the tool-call template (`tool_vocab_texts`)."""
    from transformers import AutoTokenizer

    from vrft.demo.base import SHIPPED_TOOLS_BASE, build_command

    card = verify_base(SHIPPED_TOOLS_BASE)
    settings = BaseBuildSettings(**card["settings"])
    assert (settings.arch, settings.image_size) == ("qwen3_vl", 128)
    assert card["build_command"] == build_command(settings) == "vrft demo build-base arch=qwen3_vl image_size=128"
    assert sum(f.stat().st_size for f in SHIPPED_TOOLS_BASE.iterdir()) <= 25 * 2**20
    assert card["metrics"]["classification_accuracy_base_shapes"] > 20.0  # above chance (5 base shapes)
    tokenizer = AutoTokenizer.from_pretrained(SHIPPED_TOOLS_BASE)
    call = '<tool_call>\n{"name": "zoom_in", "arguments": {"bbox_2d": [120, 340, 380, 600]}}\n</tool_call>'
    plain = AutoTokenizer.from_pretrained(SHIPPED_BASE)  # the same build without the tool texts
    assert len(tokenizer(call)["input_ids"]) < 0.7 * len(plain(call)["input_ids"])  # 43 vs 79 tokens
    assert "vrft demo build-base arch=qwen3_vl image_size=128" in (SHIPPED_TOOLS_BASE / "README.md").read_text()


def test_build_command_names_only_the_settings_that_differ():
    from vrft.demo.base import build_command

    assert build_command(BaseBuildSettings()) == "vrft demo build-base"
    assert build_command(BaseBuildSettings(threads=1, sft_steps=10)) == "vrft demo build-base sft_steps=10"
