"""The shapes world in time and across images (`vrft data synth --video N` / `--multi-image N`)."""

import hashlib
import json

import numpy as np
import pytest

from vrft.cli import main
from vrft.data.records import load_records
from vrft.data.validate import validate_path
from vrft.data.video_world import draw_multi_image, draw_video

pytest.importorskip("av")


def _tree_hashes(root):
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _synth(out, *extra):
    return main(["data", "synth", "--out", str(out), "--images", "0", "--size", "56", *extra])


def test_video_window_is_frame_exact():
    """The shape shows in frames first..last only (not at the start nor the end), and the window is
    [first / fps, (last + 1) / fps]."""
    for index in range(6):
        scene = draw_video(index, seed=3, size=56, fps=4.0, min_seconds=1.0, max_seconds=3.0)
        base = np.asarray(scene.frames[0], dtype=np.int16)
        changed = [
            i for i, f in enumerate(scene.frames) if np.abs(np.asarray(f, dtype=np.int16) - base).max() > 0
        ]
        assert changed == list(range(scene.first, scene.last + 1))
        assert scene.first >= 1 and scene.last <= len(scene.frames) - 2
        assert scene.window == [scene.first / 4.0, (scene.last + 1) / 4.0]
        assert scene.event == f"the {scene.colour} {scene.shape} crosses the frame"
        assert 4 <= len(scene.frames) <= 12


def test_synth_video_writes_valid_deterministic_mp4(tmp_path):
    assert _synth(tmp_path / "a", "--video", "3", "--video-seconds", "1,2") == 0
    assert _synth(tmp_path / "b", "--video", "3", "--video-seconds", "1,2") == 0
    assert _tree_hashes(tmp_path / "a") == _tree_hashes(tmp_path / "b")  # same seed, same bytes
    path = tmp_path / "a" / "temporal_grounding.jsonl"
    assert validate_path(path).problems == []
    records = load_records(path)
    assert [r.task for r in records] == ["temporal_grounding"] * 3
    from vrft.media import probe_video, sample_frames

    for r in records:
        (part,) = r.visual_parts()
        info = probe_video(part.path)
        assert (info.width, info.height, info.fps) == (56, 56, 4.0)
        assert info.num_frames == r.meta["num_frames"] and r.duration == info.num_frames / 4.0
        start, end = r.window
        # every decoded frame: the shape shows (the frame differs from the first) iff start <= t < end
        frames = sample_frames(part, fps=4.0, max_frames=100, max_pixels=56 * 56)
        first = np.asarray(frames[0][1], dtype=np.int16)
        for t, img in frames:
            changed = int((np.abs(np.asarray(img, dtype=np.int16) - first).max(axis=2) > 30).sum())
            assert (changed > 20) == (start <= t < end), (r.id, t, changed, r.window)
    seeded = tmp_path / "c"
    assert main(["data", "synth", "--out", str(seeded), "--images", "0", "--size", "56", "--video", "3",
                 "--video-seconds", "1,2", "--seed", "1"]) == 0  # fmt: skip
    assert _tree_hashes(seeded) != _tree_hashes(tmp_path / "a")


def test_synth_video_frame_folders(tmp_path):
    assert _synth(tmp_path / "f", "--video", "2", "--video-seconds", "1,2", "--video-format", "frames") == 0
    path = tmp_path / "f" / "temporal_grounding.jsonl"
    assert validate_path(path).problems == []
    for r in load_records(path):
        assert r.video.endswith("/") and r.fps == 4.0
        frames = sorted(r.video_path.glob("frame_*.png"))
        assert len(frames) == r.meta["num_frames"] == round(r.duration * 4)
    obj = json.loads(path.read_text().splitlines()[0])
    assert set(obj) >= {"video", "fps", "duration", "width", "height", "event", "window"}


def test_multi_image_asked_shape_in_exactly_one_image(monkeypatch):
    for index in range(20):
        scene = draw_multi_image(index, seed=0, size=56)
        assert 2 <= len(scene.images) <= 4 and 1 <= scene.target_image <= len(scene.images)
        x1, y1, x2, y2 = scene.box
        assert 0 <= x1 < x2 <= 56 and 0 <= y1 < y2 <= 56
        assert scene.expression == f"the {scene.colour} {scene.shape}"
    from vrft.data import video_world

    placed = []  # (image number, shape) of every shape placed
    orig = video_world._place

    def spy(rng, shape, size, obj_size, others, *a, **k):
        if not others:
            placed.append([])  # the first shape of a new image
        placed[-1].append(shape)
        return orig(rng, shape, size, obj_size, others, *a, **k)

    monkeypatch.setattr(video_world, "_place", spy)
    for index in range(20):
        placed.clear()
        scene = draw_multi_image(index, seed=0, size=56)
        holding = [k + 1 for k, shapes in enumerate(placed) if scene.shape in shapes]
        assert holding == [scene.target_image] and placed[scene.target_image - 1].count(scene.shape) == 1


def test_synth_multi_image_valid_and_deterministic(tmp_path):
    assert _synth(tmp_path / "a", "--multi-image", "4") == 0
    assert _synth(tmp_path / "b", "--multi-image", "4") == 0
    assert _tree_hashes(tmp_path / "a") == _tree_hashes(tmp_path / "b")
    path = tmp_path / "a" / "multi_image_grounding.jsonl"
    assert validate_path(path).problems == []
    records = load_records(path)
    for r in records:
        assert r.task == "multi_image_grounding" and 2 <= len(r.images) <= 4
        assert r.image_sizes == [[56, 56]] * len(r.images)
        assert 1 <= r.target_image <= len(r.images) and len(r.boxes) == 1


def test_synth_video_bad_options_are_one_line_errors(tmp_path, capsys):
    assert _synth(tmp_path / "x", "--video", "1", "--size", "57") == 2  # odd side: yuv420p
    assert _synth(tmp_path / "x", "--video", "1", "--video-fps", "0") == 2
    assert _synth(tmp_path / "x", "--video", "1", "--video-seconds", "5,2") == 2
    assert _synth(tmp_path / "x", "--multi-image", "2", "--classes", "star") == 2
    err = capsys.readouterr().err
    assert "--size 57" in err and "--video-fps 0" in err and "5.0..2.0" in err and "two shape classes" in err
    assert "Traceback" not in err


def test_video_i_does_not_depend_on_n_and_a_rerun_replaces_the_part(tmp_path, capsys):
    assert _synth(tmp_path / "a", "--video", "3", "--video-seconds", "1,2", "--multi-image", "2") == 0
    assert _synth(tmp_path / "b", "--video", "1", "--video-seconds", "1,2") == 0
    a, b = _tree_hashes(tmp_path / "a"), _tree_hashes(tmp_path / "b")
    assert a["video/000000.mp4"] == b["video/000000.mp4"]
    # drawing fewer videos into the same folder removes the earlier ones and keeps the image sets
    assert _synth(tmp_path / "a", "--video", "1", "--video-seconds", "1,2") == 0
    assert "kept the earlier multi_image files" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "a" / "video").iterdir()) == ["000000.mp4"]
    assert len(load_records(tmp_path / "a" / "temporal_grounding.jsonl")) == 1
    assert len(load_records(tmp_path / "a" / "multi_image_grounding.jsonl")) == 2


def test_moving_shape_keeps_its_class_outline(monkeypatch):
    """The moving shape is drawn with its class's aspect and rotation limits (a diamond stays a tall,
    unrotated rhombus, not a rotated square)."""
    from vrft.data import video_world
    from vrft.data.shapes import _SHAPE_PARAMS

    calls = []
    orig = video_world._shape_polygon

    def spy(shape, size, cx, cy, aspect, angle):
        calls.append((shape, aspect, angle))
        return orig(shape, size, cx, cy, aspect, angle)

    monkeypatch.setattr(video_world, "_shape_polygon", spy)
    for index in range(8):
        draw_video(index, seed=0, size=56, min_seconds=1.0, max_seconds=1.0, classes=("diamond", "circle"))
    assert calls
    for shape, aspect, angle in calls:
        (a_lo, a_hi), max_rot = _SHAPE_PARAMS[shape]
        assert a_lo <= aspect <= a_hi and abs(angle) <= max_rot, (shape, aspect, angle)
