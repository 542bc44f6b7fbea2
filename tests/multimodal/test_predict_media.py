"""`vrft predict --images A B --ground EXPR` and `vrft predict --video CLIP --when EVENT`: the options
are checked before any model loads, the budgets can be overridden, the picture shows the images side
by side with the box on the answered one."""

from __future__ import annotations

import pytest
from PIL import Image

from vrft.cli import main


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--images", "A", "B", "--detect", "x"], "--images goes with --ground"),
        (["--video", "V", "--ground", "x"], "--video goes with --when"),
        (["--when", "x"], "give exactly one of IMAGE, --images A B ... or --video CLIP (got none)"),
        (
            ["IMG", "--video", "V", "--when", "x"],
            "give exactly one of IMAGE, --images A B ... or --video CLIP",
        ),
        (["--video", "V", "--when", "x", "--video-fps", "0"], "--video-fps must be"),
        (["--images", "A", "B", "--ground", "x", "--max-images", "17"], "--max-images must be an integer in 1..16, got 17"),
        (
            ["--video", "V", "--when", "x", "--video-min-pixels", "9", "--video-max-pixels", "4"],
            "is larger than",
        ),
    ],
)
def test_bad_options_are_refused_before_the_model_loads(tmp_path, capsys, argv, message):
    argv = [str(tmp_path / a) if a in ("A", "B", "V", "IMG") else a for a in argv]
    rc = main(["predict", "--model", str(tmp_path / "no-model"), *argv])
    err = capsys.readouterr().err
    assert rc != 0 and message in err and "Traceback" not in err, err


def test_a_missing_video_or_too_many_images_is_refused(tmp_path, capsys, media_world):
    from vrft.models.tiny import cached_tiny

    model = str(cached_tiny("qwen2_5_vl"))
    rc = main(["predict", "--model", model, "--video", str(tmp_path / "none.mp4"), "--when", "x"])
    assert rc != 0 and "none.mp4: not found" in capsys.readouterr().err
    images = sorted(str(p) for p in (media_world / "multi_image").rglob("*.png"))[:3]
    rc = main(["predict", "--model", model, "--images", *images, "--ground", "x", "--max-images", "2"])
    err = capsys.readouterr().err
    assert rc != 0 and "more than model.max_images=2" in err and "--max-images" in err, err


def test_side_by_side_puts_the_box_on_the_answered_image(tmp_path):
    from vrft.commands.predict_media import side_by_side

    images = [Image.new("RGB", (40, 30), (0, 0, 0)), Image.new("RGB", (50, 30), (0, 0, 0))]
    out = side_by_side(images, 2, [10, 5, 30, 25], "x", tmp_path / "p.png")
    pic = Image.open(out).convert("RGB")
    assert pic.size == (40 + 8 + 50, 30)
    assert pic.getpixel((48 + 20, 25)) != (0, 0, 0)  # the bottom edge of the box, on image 2
    assert pic.getpixel((20, 25)) == (0, 0, 0)  # nothing drawn on image 1


@pytest.mark.slow  # two generations with a tiny model (~10 s)
def test_predict_on_images_and_on_a_video(tmp_path, capsys, media_world):
    from vrft.models.tiny import cached_tiny

    model = str(cached_tiny("qwen2_5_vl"))
    images = sorted(str(p) for p in (media_world / "multi_image" / "000000").glob("*.png"))
    out = tmp_path / "pic.png"
    argv = ["predict", "--model", model, "--images", *images, "--ground", "the red circle", "--max-new-tokens", "4",
            "--out", str(out), "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0 and out.is_file()
    assert Image.open(out).width > Image.open(images[0]).width * len(images)
    video = str(media_world / "video" / "000000.mp4")
    argv = ["predict", "--model", model, "--video", video, "--when", "a shape crosses", "--max-new-tokens", "4",
            "-v", "--video-max-frames", "2", "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "frames at: " in printed and printed.count(",") >= 1


def test_eval_refuses_records_over_max_images_before_the_model_loads(tmp_path, capsys, media_world):
    from vrft.models.tiny import cached_tiny

    argv = ["eval", "--model", str(cached_tiny("qwen2_5_vl")), "--data", str(media_world / "multi_image_grounding.jsonl"),
            "--out", str(tmp_path / "ev"), "--max-images", "1"]  # fmt: skip
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc != 0 and "more than model.max_images=1" in err and "Traceback" not in err, err
    assert not (tmp_path / "ev" / "metrics.json").exists()
    rc = main([*argv[:-2], "--video-fps", "-1"])
    assert rc != 0 and "--video-fps must be" in capsys.readouterr().err
