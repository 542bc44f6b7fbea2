"""Hostile input to the newer surfaces: user tool / reward modules, video and image-set records, outputs.

Each case runs `vrft.cli.main([...])` in-process (or the shared function behind it) and asserts what a
user sees: exit 2, one `vrft CMD: error: ...` line naming the file and the fix, no traceback, and no
input or foreign file replaced. Found by a probe of hostile calls against the video / many-image,
doctor and tool surfaces; each case stands for the shared mechanism it fixed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from vrft.cli import main
from vrft.errors import ConfigError


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def error_of(capsys, cmd: str, *argv) -> str:
    """Run; assert exit 2, a `vrft CMD: error:` message and no traceback; return the message."""
    rc, out, err = run(capsys, *argv)
    assert "Traceback" not in out + err
    assert rc == 2, (rc, out, err)
    marker = f"vrft {cmd}: error: "
    assert marker in err, err
    return err.split(marker, 1)[1].rstrip("\n")


# ----------------------------------------------------------------------- user code that fails to import
BAD_MODULES = {
    "syntax": ("def fn(:\n", "does not compile"),
    "raises": ("raise RuntimeError('boom at import')\n", "raised RuntimeError: boom at import"),
    "exits": ("import sys\nsys.exit(3)\n", "raised SystemExit"),
}


@pytest.mark.parametrize("kind", BAD_MODULES)
def test_user_tool_module_that_does_not_import_is_one_config_error(tmp_path, monkeypatch, kind):
    from vrft.tools import load_user_tool

    source, expected = BAD_MODULES[kind]
    (tmp_path / f"badtool_{kind}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=expected) as info:
        load_user_tool(f"badtool_{kind}:fn")
    assert f"tool 'badtool_{kind}:fn'" in str(info.value)


@pytest.mark.parametrize("kind", BAD_MODULES)
def test_user_reward_module_that_does_not_import_is_one_config_error(tmp_path, monkeypatch, kind):
    from vrft.rewards import get_reward
    from vrft.train.preflight import resolve_reward

    source, expected = BAD_MODULES[kind]
    (tmp_path / f"badreward_{kind}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=expected):
        get_reward(f"badreward_{kind}:fn")
    with pytest.raises(ConfigError, match=expected):
        resolve_reward(f"badreward_{kind}:fn")


def test_check_config_with_a_tool_module_that_raises_is_one_line(tmp_path, monkeypatch, capsys):
    """Was a traceback: only ImportError was caught around the import of a user tool."""
    (tmp_path / "raising_tool.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "model:\n  path: /nonexistent/model\ndata:\n  train: /nonexistent/g.jsonl\n  task: grounding\n"
        "tools:\n  enabled: true\n  names: ['raising_tool:fn']\n"
    )
    msg = error_of(capsys, "check-config", "check-config", cfg)
    assert "tools.names: tool 'raising_tool:fn': importing module 'raising_tool' raised RuntimeError" in msg


# ------------------------------------------------------------------- converters writing over their media
def _synth(tmp_path: Path, *args) -> Path:
    out = tmp_path / "shapes"
    assert main(["data", "synth", "--out", str(out), "--images", "0", "--size", "56", *args]) == 0
    return out


def test_convert_charades_out_onto_one_of_its_videos_is_refused(tmp_path, capsys):
    """Was data loss: the video (written by `vrft data synth`, so listed in a manifest) was replaced by JSONL;
    now a converter replaces only its own earlier records (`vrft.outputs.check_file_output`)."""
    shapes = _synth(tmp_path, "--video", "1", "--video-seconds", "2,2")
    capsys.readouterr()
    video = shapes / "video" / "000000.mp4"
    before = video.read_bytes()
    src = tmp_path / "sta.txt"
    src.write_text("000000 0.5 1.0##a shape\n")
    msg = error_of(capsys, "data", "data", "convert", "charades", src, "--videos", shapes / "video", "--out", video)
    assert f"--out {video} already exists and another vrft command wrote it ('data synth'" in msg
    assert video.read_bytes() == before


def test_convert_charades_out_into_a_frame_folder_is_refused(tmp_path, capsys):
    shapes = _synth(tmp_path, "--video", "1", "--video-seconds", "2,2", "--video-format", "frames")
    capsys.readouterr()
    folder = shapes / "video" / "000000"
    frames = sorted(p.name for p in folder.iterdir())
    src = tmp_path / "sta.txt"
    src.write_text("000000 0.5 1.0##a shape\n")
    argv = ["data", "convert", "charades", src, "--videos", shapes / "video", "--fps", "4"]
    msg = error_of(capsys, "data", *argv, "--out", folder / frames[-1])
    assert "another vrft command wrote it ('data synth'" in msg  # a frame: data synth's
    assert "frame folder" in error_of(capsys, "data", *argv, "--out", folder / "records.jsonl")
    assert sorted(p.name for p in folder.iterdir()) == frames


def test_convert_multi_image_out_onto_one_of_its_images_is_refused(tmp_path, capsys):
    shapes = _synth(tmp_path, "--multi-image", "1")
    capsys.readouterr()
    a, b = shapes / "multi_image" / "000000" / "1.png", shapes / "multi_image" / "000000" / "2.png"
    before = b.read_bytes()
    src = tmp_path / "sets.jsonl"
    src.write_text(json.dumps({"images": [str(a), str(b)], "expression": "x", "target": 1, "bbox": [1, 1, 5, 5]}) + "\n")
    msg = error_of(capsys, "data", "data", "convert", "multi-image", src, "--out", b)
    assert "another vrft command wrote it ('data synth'" in msg
    assert b.read_bytes() == before
    Image.open(b).verify()


# ------------------------------------------------------------------- a record's timeline past its video
def _rewrite(path: Path, **fields) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps({**r, **fields}) + "\n" for r in rows))


@pytest.mark.parametrize("fmt", ["mp4", "frames"])
def test_validate_refuses_a_duration_longer_than_the_video(tmp_path, capsys, fmt):
    """Was silently wrong: a 2 s video recorded as 3000 s passed, and every frame sampled past its end
    was its last frame, captioned with times the video never reaches."""
    from vrft.media import VideoPart, sample_frames, video_problem

    shapes = _synth(tmp_path, "--video", "1", "--video-seconds", "2,2", "--video-format", fmt)
    records = shapes / "temporal_grounding.jsonl"
    rec = json.loads(records.read_text())
    assert rec["duration"] == 2.0
    _rewrite(records, duration=2.8)  # within the tolerance (annotation rounding): accepted
    capsys.readouterr()
    assert run(capsys, "data", "validate", records)[0] == 0
    _rewrite(records, duration=3000.0, window=[2000.0, 2500.0])
    rc, out, err = run(capsys, "data", "validate", records)
    assert rc == 1 and "Traceback" not in out + err
    assert "duration 3000 s recorded but the video lasts 2 s" in out + err
    part = VideoPart(shapes / rec["video"], 56, 56, 3000.0, rec.get("fps"))
    assert "duration 3000 s recorded" in video_problem(part)
    times = [t for t, _ in sample_frames(part, fps=2.0, max_frames=4, max_pixels=None)]
    assert min(times) > 2.0  # what the check prevents: every timestamp lies past the video's end


def test_validate_refuses_a_frame_folder_whose_fps_makes_it_shorter_than_its_duration(tmp_path, capsys):
    shapes = _synth(tmp_path, "--video", "1", "--video-seconds", "2,2", "--video-format", "frames")
    records = shapes / "temporal_grounding.jsonl"
    _rewrite(records, fps=40.0)  # 8 frames at 40 fps: 0.2 s, not the 2 s recorded
    capsys.readouterr()
    rc, out, err = run(capsys, "data", "validate", records)
    assert rc == 1 and "duration 2 s recorded but the video lasts 0.2 s" in out + err


def test_validate_names_image_sizes_for_a_wrong_size_of_an_images_record(tmp_path, capsys):
    """The fix named width/height, fields an `images` record must not have."""
    shapes = _synth(tmp_path, "--multi-image", "1")
    records = shapes / "multi_image_grounding.jsonl"
    rec = json.loads(records.read_text())
    _rewrite(records, image_sizes=[[56, 56]] + [[640, 480]] * (len(rec["images"]) - 1))
    capsys.readouterr()
    rc, out, err = run(capsys, "data", "validate", records)
    assert rc == 1
    assert "images[1]:" in out + err and "size 640x480 recorded but the file is 56x56 (fix image_sizes[1])" in out + err


# ------------------------------------------------------------------------------ doctor on media records
@pytest.mark.slow
@pytest.mark.parametrize(("arch", "task", "field"), [
    ("qwen3_vl", "multi_image_grounding", "images"),  # Qwen3-VL: generate's num_return_sequences failed
    ("qwen2_5_vl", "temporal_grounding", "video"),
])  # fmt: skip
def test_doctor_samples_records_with_several_images_or_a_video(tmp_path, capsys, arch, task, field):
    """Was a traceback: the doctor read the dataset's ``image`` column, which such records do not have
    (and tiny Qwen3-VL could not expand its image features for G return sequences)."""
    import yaml

    from vrft.models.tiny import cached_tiny

    world = _synth(tmp_path, "--video", "2", "--video-seconds", "2,2", "--multi-image", "2")
    cfg = {
        "model": {"path": str(cached_tiny(arch)), "min_pixels": 32 * 32, "max_pixels": 64 * 64,
                  "video_fps": 2.0, "video_max_frames": 3, "video_max_pixels": 56 * 56, "video_min_pixels": 28 * 28},
        "data": {"train": str(world / f"{task}.jsonl"), "task": task},
        "grpo": {"num_generations": 2, "prompts_per_step": 2, "max_completion_length": 8, "seed": 0},
        "output": {"dir": str(tmp_path / "run")},
    }  # fmt: skip
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    capsys.readouterr()
    rc, out, err = run(capsys, "doctor", path, "--records", "2", "--out", tmp_path / "doc")
    assert "Traceback" not in out + err
    assert rc in (0, 1), err  # 1: a blocking finding (8 tokens cut every answer)
    report = json.loads((tmp_path / "doc" / "doctor.json").read_text())
    assert report["records"] == 2 and len(report["samples"]) == 4
    assert all(s[field] and s["query"] for s in report["samples"])
    html = (tmp_path / "doc" / "doctor.html").read_text()
    assert "<svg" in html  # the media figure (images side by side / the video's timeline)


# ------------------------------------------------------------------------------ training-run outputs
@pytest.mark.parametrize("name", ["summary.json", "curves.png"])
def test_run_outputs_of_the_user_are_never_overwritten(tmp_path, name):
    """Was data loss: summary.json / curves.png were not among the run's outputs, so a user's file of
    that name in output.dir passed the check and was replaced at the end of the run."""
    from vrft.errors import UserError
    from vrft.train.run_dir import prepare_output_dir

    out = tmp_path / "plain"
    out.mkdir()
    (out / name).write_bytes(b"mine")
    with pytest.raises(UserError, match=f"{name}, which vrft did not write"):
        prepare_output_dir(out, resume=False)
    assert (out / name).read_bytes() == b"mine"


def test_overwrite_removes_the_earlier_runs_summary_and_curves(tmp_path):
    """An earlier run's summary.json / curves.png go with its other files (no stale summary survives)."""
    from vrft.train.run_dir import prepare_output_dir, release_output_dir

    out = tmp_path / "run"
    prepare_output_dir(out, resume=False)
    for name in ("metrics.jsonl", "summary.json", "curves.png"):
        (out / name).write_text("{}\n")
    release_output_dir(out)
    prepare_output_dir(out, resume=False, overwrite=True)
    release_output_dir(out)
    assert not any((out / n).exists() for n in ("metrics.jsonl", "summary.json", "curves.png"))


# ------------------------------------------------------------------------------ tools on media tasks
@pytest.mark.parametrize(("task", "args"), [
    ("multi_image_grounding", ["--multi-image", "1"]),
    ("temporal_grounding", ["--video", "1", "--video-seconds", "2,2"]),
])  # fmt: skip
def test_tools_on_a_task_with_several_images_or_a_video_are_refused(tmp_path, capsys, task, args):
    """Was silently wrong: the tool environment starts on the row's first image, so every zoom of a
    multi-image (or video) rollout was cut from image 1 (frame 1), whatever image the model meant."""
    world = _synth(tmp_path, *args)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"model:\n  path: {tmp_path / 'no-model'}\ndata:\n  train: {world / (task + '.jsonl')}\n  task: {task}\n"
        "tools:\n  enabled: true\n  names: [zoom_in]\n"
    )
    capsys.readouterr()
    msg = error_of(capsys, "check-config", "check-config", cfg)
    assert f"tools.enabled: tools act on the record's one image, but a {task} record shows" in msg


# ------------------------------------------------------------------------------ media budgets
@pytest.mark.parametrize(("option", "value", "want"), [
    ("--video-max-frames", "100000", "an integer in 1..256"),
    ("--video-max-pixels", "10000000000", "an integer in 1..100000000"),
    ("--video-min-pixels", "10000000000", "an integer in 1..100000000"),
    ("--video-fps", "61", "a number of frames per second in (0, 60]"),
])  # fmt: skip
def test_predict_media_budgets_have_the_configs_bounds(tmp_path, capsys, option, value, want):
    """Were accepted: the options checked only > 0, so `--video-min-pixels 10000000000` would scale every
    frame up to 10 gigapixels (config and vrft.json refuse it)."""
    msg = error_of(capsys, "predict", "predict", "--model", tmp_path / "no-model", "--video", tmp_path / "v.mp4",
                   "--when", "x", option, value)  # fmt: skip
    assert msg.startswith(f"{option} must be {want}, got ")


def test_a_model_contract_with_an_out_of_range_budget_is_refused(tmp_path):
    from vrft.errors import UserError
    from vrft.models.contract import read_contract

    model = tmp_path / "model"
    model.mkdir()
    (model / "vrft.json").write_text(json.dumps({"task": "temporal_grounding", "coordinate_convention": "norm1000",
                                                       "video_min_pixels": 10**10}))
    with pytest.raises(UserError, match=r"video_min_pixels: 10000000000 is not null or an integer in 1\.\.100000000"):
        read_contract(model)


def test_a_frame_folder_with_a_repeated_frame_number_is_refused(tmp_path, capsys):
    """Was silently wrong: frame_3.png beside frame_0003.png passed, showing frame 3 twice and shifting
    every later frame's time by 1/fps."""
    import shutil

    shapes = _synth(tmp_path, "--video", "1", "--video-seconds", "2,2", "--video-format", "frames")
    folder = shapes / "video" / "000000"
    shutil.copy(folder / "frame_0003.png", folder / "frame_3.png")
    capsys.readouterr()
    rc, out, err = run(capsys, "data", "validate", shapes / "temporal_grounding.jsonl")
    assert rc == 1 and "frame number 3 appears twice" in out + err


def test_predict_video_with_out_is_refused_not_ignored(tmp_path, capsys):
    """Was silently ignored: `--out` with `--video` wrote nothing and said nothing."""
    msg = error_of(capsys, "predict", "predict", "--model", tmp_path / "no-model", "--video", tmp_path / "v.mp4",
                   "--when", "x", "--out", tmp_path / "answer.png")  # fmt: skip
    assert "--video writes no file (drop --out)" in msg


@pytest.mark.parametrize("task", ["multi_image_grounding", "temporal_grounding"])
def test_audit_tools_on_a_media_task_is_refused(capsys, task):
    """Was a tool audit on the records' first image, for a task training refuses tools on."""
    msg = error_of(capsys, "audit", "audit", task, "--tools")
    assert "tools serve the one-image tasks" in msg


def test_run_summary_of_hostile_metrics_rows_is_finite_and_never_raises():
    """A hand-edited or foreign metrics.jsonl (read again on resume) raised at the end of a run: a
    reason share written as a string, a step that is not a number; and two rewards of 1e308 gave an
    infinite mean, written to summary.json as Infinity."""
    import math

    from vrft.train.run_log import summarize, summary_line

    rows = [{"step": 1, "train/reward": 1e308, "train/parse_fail/no_answer": "0.5"},
            {"step": "abc", "train/reward": 1.0}, {"step": float("inf"), "train/reward": 1.0},
            {"step": 2, "train/reward": 1e308, "train/parse_fail/no_answer": 0.25}]  # fmt: skip
    s = summarize(rows, flat_threshold=0.5)
    assert s["steps"] == 2 and s["logged_steps"] == 2
    assert math.isfinite(s["reward_first"]) and math.isfinite(s["reward_last"])
    assert s["parse_fail_reasons"] == {"no_answer": 0.375}
    json.dumps(s, allow_nan=False)
    assert summary_line(s).startswith("summary: 2 steps")


def test_a_video_cut_short_is_refused_by_validate_not_mid_training(tmp_path, capsys):
    """Was validated OK (header and first frame fine), then every sampling of its later frames raised
    during training / eval: a faststart mp4 (index first) cut to a third of its bytes."""
    import av
    import numpy as np

    full, cut = tmp_path / "full.mp4", tmp_path / "cut.mp4"
    with av.open(str(full), "w", options={"movflags": "faststart"}) as c:
        st = c.add_stream("mpeg4", rate=4)
        st.width = st.height = 56
        st.pix_fmt = "yuv420p"
        for i in range(40):
            frame = av.VideoFrame.from_ndarray(np.full((56, 56, 3), i * 6, np.uint8), format="rgb24")
            for pkt in st.encode(frame):
                c.mux(pkt)
        for pkt in st.encode(None):
            c.mux(pkt)
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 3])
    rows = [{"id": f"t{i}", "task": "temporal_grounding", "video": name, "duration": 10.0, "width": 56, "height": 56,
             "event": "x", "window": [1.0, 2.0]} for i, name in enumerate(["full.mp4", "cut.mp4"])]  # fmt: skip
    records = tmp_path / "tg.jsonl"
    records.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rc, out, err = run(capsys, "data", "validate", records)
    assert rc == 1 and "Traceback" not in out + err
    assert "tg.jsonl:2: video:" in out + err and "does not decode to its end" in out + err
    assert "tg.jsonl:1:" not in out + err


# ------------------------------------------------------------------------------ model directories
@pytest.mark.parametrize("damage", ["config", "weights"])
def test_a_model_dir_with_a_corrupt_config_or_cut_weights_is_one_config_error(tmp_path, damage):
    """Were tracebacks (`vrft doctor`, and every command that loads a model): a config.json whose
    text_config is not an object raises huggingface_hub's StrictDataclassFieldValidationError, a cut
    safetensors file SafetensorError; only OSError / ValueError / KeyError were caught."""
    import shutil

    from vrft.models.load import load_model_and_processor
    from vrft.models.tiny import cached_tiny

    model = tmp_path / "model"
    shutil.copytree(cached_tiny("qwen2_5_vl"), model)
    if damage == "config":
        config = json.loads((model / "config.json").read_text())
        (model / "config.json").write_text(json.dumps({**config, "text_config": 5}))
    else:
        weights = model / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ConfigError, match=r"cannot load an? (processor|image-text model) from") as info:
        load_model_and_processor(model)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------------------ doctor outputs
def test_doctor_out_holding_a_foreign_doctor_html_is_refused_before_work(tmp_path, capsys):
    """Was data loss: the doctor checked --out with foreign=False and replaced the user's doctor.html."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "doctor.html").write_text("<p>my page</p>")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"model:\n  path: {tmp_path / 'no-model'}\ndata:\n  train: {tmp_path / 'x.jsonl'}\n  task: grounding\n")
    msg = error_of(capsys, "doctor", "doctor", cfg, "--records", "2", "--out", out)
    assert "doctor.html" in msg and "did not write" in msg
    assert (out / "doctor.html").read_text() == "<p>my page</p>"


def test_doctor_write_replaces_its_own_earlier_report(tmp_path):
    from vrft.doctor.report import write
    from vrft.outputs import file_is_vrfts

    report = {
        "config": "c.yaml", "task": "grounding", "findings": [], "learning_signal": {}, "format_rate": 0.0,
        "parse": {"rate": 0.0, "top_reasons": []}, "truncation": {"share": 0.0}, "prompt": {"max_tokens": 1},
        "convention": None, "memory": {"per_device_gib": {}}, "_samples": [],
    }  # fmt: skip
    out = tmp_path / "doc"
    for _ in range(2):  # the second run replaces the first run's files (listed in the manifest)
        json_path, html_path = write(report, out)
    assert file_is_vrfts(json_path) and file_is_vrfts(html_path)


def test_convert_refuses_an_annotated_duration_longer_than_the_video(tmp_path, capsys):
    """Was converted, then refused by validate: ActivityNet's duration (or a frame folder read at a
    wrong --fps) outlasting the video is now refused where it is read."""
    shapes = _synth(tmp_path, "--video", "1", "--video-seconds", "2,2", "--video-format", "frames")
    src = tmp_path / "anet.json"
    src.write_text(json.dumps({"000000": {"duration": 2.0, "timestamps": [[0.5, 1.0]], "sentences": ["a shape."]}}))
    argv = ["data", "convert", "activitynet", src, "--videos", shapes / "video"]
    assert run(capsys, *argv, "--fps", "4", "--out", tmp_path / "ok.jsonl")[0] == 0
    msg = error_of(capsys, "data", *argv, "--fps", "40", "--out", tmp_path / "bad.jsonl")
    assert "duration 2 s recorded but the video lasts 0.2 s" in msg
    assert not (tmp_path / "bad.jsonl").exists()


# ------------------------------------------------------------------------------ grouped training samples
def test_grouped_training_samples_draw_their_images_or_video(tmp_path):
    """Was silently wrong: a GRPO group of a multi-image or video run was drawn as one blank grey box
    (the one-image figure with no image), a video group saying "0 true boxes"."""
    from vrft.report.html import render_report

    shapes = _synth(tmp_path, "--video", "1", "--video-seconds", "2,2", "--multi-image", "1")
    video = json.loads((shapes / "temporal_grounding.jsonl").read_text())
    sets = json.loads((shapes / "multi_image_grounding.jsonl").read_text())
    common = {"step": 1, "image": None, "completion": "<answer>x</answer>", "rewards": {"format": 0.0},
              "score": 0.0, "advantage": 0.0, "parse_ok": False, "reason": "no answer"}  # fmt: skip
    rows = [
        {**common, "id": "v", "group": 0, "task": "temporal_grounding", "video": str(shapes / video["video"]),
         "duration": video["duration"], "gt_window": video["window"], "gt_boxes": [], "width": 56, "height": 56},
        {**common, "id": "m", "group": 1, "task": "multi_image_grounding", "gt_boxes": sets["boxes"],
         "images": [str(shapes / p) for p in sets["images"]], "target_image": sets["target_image"]},
    ]  # fmt: skip
    rows = [dict(r, group=r["group"]) for r in rows for _ in range(2)]  # two completions per group
    page = render_report(rows, tmp_path / "samples.html", title="t").read_text()
    assert 'data-image="1"' in page and "gt-img" in page  # the image set, the truth on its image
    assert "gt-window" in page  # the video's timeline with the true window
    assert "0 true boxes" not in page


# ------------------------------------------------------------------------------ score: a file with no rows
@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_score_on_a_file_with_no_rows_is_an_error(tmp_path, capsys, monkeypatch, content):
    """Was exit 0 with no output: an empty predictions file (a run that wrote nothing) looked scored."""
    empty = tmp_path / "predictions.jsonl"
    empty.write_text(content)
    msg = error_of(capsys, "score", "score", "classification", empty)
    assert msg.startswith(f"{empty}: no rows to score: the file is empty or holds only blank lines (give ")
    assert "\n" not in msg

    import io
    import sys

    class Stdin:
        buffer = io.BytesIO(content.encode())

    monkeypatch.setattr(sys, "stdin", Stdin())
    assert error_of(capsys, "score", "score", "detection", "-").startswith("<stdin>: no rows to score")
    one = tmp_path / "one.jsonl"
    one.write_text('\n{"completion": "<answer>cat</answer>", "label": "cat"}\n\n')
    rc, out, _ = run(capsys, "score", "classification", one)
    assert rc == 0 and len(out.splitlines()) == 1  # blank lines around one row: still scored


# ------------------------------------------------------------------- true / false where a number is expected
def test_a_boolean_for_a_number_key_is_refused_in_configs_and_demo_settings(tmp_path):
    """Was silently taken as 1 / 0 by pydantic: `grpo.num_generations: true` trained with G = 1."""
    from vrft.config import load_config
    from vrft.demo.settings import load_settings

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "model:\n  path: m\n  lora:\n    enabled: true\ndata:\n  train: t.jsonl\n  task: detection\n"
        "grpo:\n  num_generations: true\n  learning_rate: false\n"
        "rewards:\n  weights: {format: 1, iou: true}\noutput:\n  resume: true\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    problems = str(info.value).splitlines()
    assert problems[0] == "3 problems in the config:"
    expected = [
        f"{cfg}:9: grpo.num_generations: true/false is not a number here (write the number itself, e.g. 1 or 0.5) (got True)",
        f"{cfg}:10: grpo.learning_rate: true/false is not a number here (write the number itself, e.g. 1 or 0.5) (got False)",
        f"{cfg}:12: rewards.weights: true/false at iou is not a number here (write the number itself, e.g. 1 or 0.5) (got dict)",
    ]  # fmt: skip
    assert sorted(p.removeprefix("  - ") for p in problems[1:]) == sorted(expected)
    fixed = load_config(cfg, ["grpo.num_generations=2", "grpo.learning_rate=1e-6", "rewards.weights.iou=1"])
    assert fixed.grpo.num_generations == 2 and fixed.model.lora.enabled is True and fixed.output.resume is True
    with pytest.raises(ConfigError, match=r"override 'grpo\.seed=false': grpo\.seed: true/false is not a number"):
        load_config(cfg, ["grpo.num_generations=2", "grpo.learning_rate=1e-6", "rewards.weights.iou=1", "grpo.seed=false"])  # fmt: skip
    # the demo's settings share the rule (the same base section)
    with pytest.raises(ConfigError, match=r"experiments\.shots: true/false at \[1\] is not a number"):
        load_settings(overrides=["experiments.shots=[1, true]"])
    with pytest.raises(ConfigError, match=r"rft\.beta: true/false is not a number"):
        load_settings(overrides=["rft.beta=true"])
