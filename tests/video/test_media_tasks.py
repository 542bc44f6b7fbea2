"""Issue 20: the temporal_grounding and multi_image_grounding tasks (prompt, SFT answer, reward
columns, parse with one frame per image), `vrft eval --predictions`, `vrft score` and `vrft audit`
for both, through the CLI."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from vrft.boxes import Frame
from vrft.cli import main
from vrft.data.records import Record
from vrft.rewards import REWARDS
from vrft.tasks import TASKS
from vrft.tasks.multi_image_grounding import image_frames


def video_record(**kw) -> Record:
    base = dict(
        id="tg-0", task="temporal_grounding", video="clip/", fps=2.0, duration=8.0, width=64, height=48,
        event="a red star crosses the frame.", window=[2.5, 6.0],
    )  # fmt: skip
    base.update(kw)
    return Record(**base)


def images_record(**kw) -> Record:
    base = dict(
        id="mi-0", task="multi_image_grounding", images=["a.png", "b.png", "c.png"],
        image_sizes=[[100, 100], [200, 100], [100, 50]], expression="the star", target_image=2,
        boxes=[[20, 10, 60, 50]],
    )  # fmt: skip
    base.update(kw)
    return Record(**base)


# ---------------------------------------------------------------------------------------- tasks
def test_temporal_task_prompt_answer_columns_parse():
    t, r = TASKS["temporal_grounding"], video_record()
    p = t.prompt(r)
    assert p.startswith("When does a red star crosses the frame happen in the video? ")
    assert "<answer>[start, end]</answer>" in p
    assert t.answer(r) == "[2.5, 6]"  # f"[{s:g}, {e:g}]"
    target = t.answer_text(r)
    assert target == "<think> Finding when a red star crosses the frame. </think> <answer>[2.5, 6]</answer>"
    assert t.reward_columns(r) == {"gt_window": [2.5, 6.0]}
    assert REWARDS["temporal_iou"]([target], **{k: [v] for k, v in t.reward_columns(r).items()}) == [1.0]
    pred = t.parse(target)
    assert pred.ok and pred.window == [2.5, 6.0] and pred.format_ok
    bad = t.parse("<answer>[6, 2]</answer>")
    assert not bad.ok and bad.window is None and bad.reason == "end not after start"
    assert t.parse("from 1s to 3s", require_tags=False).window == [1.0, 3.0]
    own = video_record(prompt="Find {event} and answer [start, end].")
    assert t.prompt(own) == "Find a red star crosses the frame. and answer [start, end]."


def test_multi_image_task_prompt_answer_columns_parse():
    t, r = TASKS["multi_image_grounding"], images_record()
    p = t.prompt(r)
    assert p.startswith(
        "Images 1..3 are shown. In which image is the star? Give the image number and the box. "
        "The box coordinates are integers between 0 and 1000"
    )
    assert '<answer>{"image": i, "bbox_2d": [x1, y1, x2, y2]}</answer>' in p
    assert "absolute pixel coordinates" in t.prompt(r, Frame(200, 100, "pixels"))
    # the box is encoded in the frame of image 2 (200 x 100): 20/200, 10/100, 60/200, 50/100 of 1000
    assert t.answer(r) == '{"image": 2, "bbox_2d": [100, 100, 300, 500]}'
    assert t.reward_columns(r) == {"gt_image": 2, "gt_boxes": [[100, 100, 300, 500]], "num_images": 3}
    target = t.answer_text(r)
    assert target == '<think> Locating: the star. </think> <answer>{"image": 2, "bbox_2d": [100, 100, 300, 500]}</answer>'
    cols = {k: [v] for k, v in t.reward_columns(r).items()}
    assert REWARDS["multi_image_iou"]([target], **cols) == [1.0]
    frames = image_frames(r, None)
    assert [(f.width, f.height) for f in frames] == [(100, 100), (200, 100), (100, 50)]
    pred = t.parse(target, frames)
    assert pred.ok and pred.image == 2 and pred.boxes == [[20.0, 10.0, 60.0, 50.0]]
    # a box in image 3 decodes with image 3's frame (100 x 50)
    other = t.parse('<answer>{"image": 3, "bbox_2d": [0, 0, 500, 500]}</answer>', frames)
    assert other.ok and other.boxes == [[0.0, 0.0, 50.0, 25.0]]
    out = t.parse('<answer>{"image": 4, "bbox_2d": [0, 0, 500, 500]}</answer>', frames)
    assert not out.ok and out.reason == "image 4 out of range 1..3"
    # pixels: the per-image frames follow the convention; resized_pixels needs one frame per image
    assert t.answer(r, Frame(1, 1, "pixels")) == '{"image": 2, "bbox_2d": [20, 10, 60, 50]}'
    with pytest.raises(ValueError, match="one Frame per image"):
        image_frames(r, Frame.for_image(200, 100, "resized_pixels"))
    with pytest.raises(ValueError, match="2 frames for 3 images"):
        image_frames(r, frames[:2])


# ---------------------------------------------------------------------------- vrft eval --predictions
@pytest.fixture
def media_dir(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "clip").mkdir()
    for name, (w, h) in zip("abc", [(100, 100), (200, 100), (100, 50)]):
        Image.new("RGB", (w, h), (200, 10, 10)).save(tmp_path / "img" / f"{name}.png")
    for k in range(8):
        Image.new("RGB", (64, 48), (k * 20, 0, 0)).save(tmp_path / "clip" / f"{k:03d}.png")
    return tmp_path


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_eval_predictions_temporal_metrics(media_dir, capsys):
    base = {"task": "temporal_grounding", "video": "clip/", "fps": 2.0, "duration": 4.0, "width": 64, "height": 48,
            "event": "a star moves"}  # fmt: skip
    windows = [[1.0, 3.0], [0.5, 2.0], [0.0, 2.0], [1.0, 2.0]]
    data = write_jsonl(media_dir / "tg.jsonl", [{"id": f"t{i}", "window": w, **base} for i, w in enumerate(windows)])
    answers = ["[1, 3]", "from 1s to 2s", "[3, 4]", "[2, 1]"]  # tIoU 1, 2/3, 0, unparsed (0)
    preds = write_jsonl(
        media_dir / "p.jsonl", [{"id": f"t{i}", "completion": f"<think> x </think> <answer>{a}</answer>"}
                                for i, a in enumerate(answers)]
    )  # fmt: skip
    out = media_dir / "out"
    assert main(["eval", "--predictions", preds, "--data", data, "--out", str(out), "--no-report"]) == 0
    m = json.loads((out / "metrics.json").read_text())["temporal_grounding"]
    assert m["R@0.3"] == 50.0 and m["R@0.5"] == 50.0 and m["R@0.7"] == 25.0
    assert m["mIoU"] == pytest.approx(100 * (1 + 2 / 3) / 4)
    assert m["parse_fail"] == 25.0 and m["format_ok"] == 100.0 and m["num_samples"] == 4
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert rows[1]["pred_window"] == [1.0, 2.0] and rows[1]["gt_window"] == [0.5, 2.0]
    assert rows[0]["image"] is None and rows[0]["video"].endswith("clip")
    capsys.readouterr()
    assert main(["score", "temporal_grounding", str(out / "predictions.jsonl")]) == 0
    scored = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [o["rewards"]["iou"] for o in scored] == pytest.approx([1, 2 / 3, 0, 0], abs=1e-6)


def test_eval_predictions_multi_image_metrics(media_dir, capsys):
    base = {"task": "multi_image_grounding", "images": ["img/a.png", "img/b.png", "img/c.png"],
            "image_sizes": [[100, 100], [200, 100], [100, 50]], "expression": "the star"}  # fmt: skip
    recs = [
        {"id": "m0", "target_image": 2, "boxes": [[20, 10, 60, 50]], **base},
        {"id": "m1", "target_image": 2, "boxes": [[20, 10, 60, 50]], **base},
        {"id": "m2", "target_image": 3, "boxes": [[0, 0, 50, 25]], **base},
        {"id": "m3", "target_image": 1, "boxes": [[0, 0, 50, 50]], **base},
    ]
    data = write_jsonl(media_dir / "mi.jsonl", recs)
    answers = [
        '{"image": 2, "bbox_2d": [100, 100, 300, 500]}',  # right image, exact: IoU 1
        '{"image": 2, "bbox_2d": [100, 100, 300, 300]}',  # right image, half the box: IoU 0.5
        '{"image": 1, "bbox_2d": [0, 0, 500, 500]}',  # wrong image: 0
        '{"image": 1, "bbox_2d": [0, 0, 250, 500]}',  # right image, IoU 0.5 x 1 = 0.5
    ]
    preds = write_jsonl(
        media_dir / "p.jsonl", [{"id": f"m{i}", "completion": f"<answer>{a}</answer>"} for i, a in enumerate(answers)]
    )
    out = media_dir / "out"
    assert main(["eval", "--predictions", preds, "--data", data, "--out", str(out), "--no-report"]) == 0
    m = json.loads((out / "metrics.json").read_text())["multi_image_grounding"]
    assert m["image_accuracy"] == 75.0 and m["acc@0.5"] == 75.0
    assert m["mIoU"] == pytest.approx(100 * (1 + 0.5 + 0 + 0.5) / 4)
    assert m["format_ok"] == 0.0 and m["parse_fail"] == 0.0
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert rows[0]["pred_image"] == 2 and rows[0]["pred_boxes"] == [[20.0, 10.0, 60.0, 50.0]]
    assert rows[2]["image_correct"] is False and len(rows[0]["images"]) == 3
    # vrft score reads the rows as they are (gt_image + gt_boxes in pixels + image_sizes)
    capsys.readouterr()
    assert main(["score", "multi_image_grounding", str(out / "predictions.jsonl")]) == 0
    scored = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [o["rewards"]["iou"] for o in scored] == pytest.approx([r["iou"] for r in rows], abs=1e-6)


# ------------------------------------------------------------------------------------ vrft score
def score(capsys, tmp_path, task, rows, *flags):
    path = write_jsonl(tmp_path / "c.jsonl", rows)
    rc = main(["score", task, path, *flags])
    out, err = capsys.readouterr()
    return rc, [json.loads(x) for x in out.splitlines()], err


def test_score_temporal_grounding(tmp_path, capsys):
    c = "<think> a </think> <answer>[2, 4]</answer>"
    rows = [
        {"completion": c, "solution": [2.5, 6.0]},
        {"completion": c, "solution": "<answer>[2.5, 6]</answer>"},
        {"completion": c, "window": [2.5, 6.0]},
        {"completion": c, "record": video_record().to_dict()},
        {"completion": "<answer>[2.5, 6]</answer>", "solution": "2.5 - 6"},
        {"completion": c, "solution": [6, 2]},  # a bad target: reported, no output line
    ]
    rc, out, err = score(capsys, tmp_path, "temporal_grounding", rows, "--rewards", "temporal_iou,format")
    assert rc == 1 and "c.jsonl:6: 'solution' [6, 2] needs 0 <= start < end" in err
    assert [o["rewards"]["temporal_iou"] for o in out] == [0.375] * 4 + [1.0]
    assert [o["rewards"]["format"] for o in out] == [1.0] * 4 + [0.0]
    rc, out, _ = score(capsys, tmp_path, "temporal_grounding", rows[:1])
    assert rc == 0 and out == [{"rewards": {"format": 1.0, "iou": 0.375}, "total": 1.375}]


def test_score_multi_image_grounding(tmp_path, capsys):
    c = '<think> a </think> <answer>{"image": 2, "bbox_2d": [100, 100, 300, 300]}</answer>'
    rows = [
        {"completion": c, "solution": {"image": 2, "bbox_2d": [100, 100, 300, 500]}},
        {"completion": c, "solution": "<answer>{'image': 2, 'bbox_2d': [100, 100, 300, 500]}</answer>"},
        {"completion": c, "solution": {"image": 1, "bbox_2d": [100, 100, 300, 500]}},
        {"completion": c, "record": images_record().to_dict()},  # pixels of image 2 (200 x 100)
        {"completion": c, "image_sizes": [[100, 100], [200, 100]], "target_image": 2, "boxes": [[20, 10, 60, 50]]},
        {"completion": c, "solution": {"image": 2, "bbox_2d": [100, 100, 300, 500]}, "num_images": 1},
        {"completion": c, "image_sizes": [[100, 100]], "target_image": 2, "boxes": [[20, 10, 60, 50]]},
    ]
    rc, out, err = score(capsys, tmp_path, "multi_image_grounding", rows, "--rewards", "multi_image_iou,format")
    assert rc == 1
    assert "c.jsonl:6: 'num_images' must be an integer >= the target image 2" in err
    assert "c.jsonl:7: 'target_image' 2 is out of range" in err
    assert [o["rewards"]["multi_image_iou"] for o in out] == [0.5, 0.5, 0.0, 0.5, 0.5]
    assert all(o["rewards"]["format"] == 1.0 for o in out)


# ------------------------------------------------------------------------------------ vrft audit
@pytest.mark.parametrize("task", ["temporal_grounding", "multi_image_grounding"])
@pytest.mark.parametrize("preset", ["default", "perception"])
def test_audit_no_exploit_beats_honest(capsys, task, preset):
    rc = main(["audit", task, "--preset", preset, "--images", "6", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report["flagged"] == [] and report["records"] >= 4
    rows = {r["exploit"]: r for r in report["rows"]}
    assert rows["honest"]["total"] == 2.0
    want = {
        "temporal_grounding": {"whole_video", "huge_window", "reversed_window", "many_numbers", "answer_in_think"},
        "multi_image_grounding": {"every_image", "whole_image", "image_0", "image_n_plus_1", "answer_in_think"},
    }[task]
    assert want <= set(rows)
    assert all(r["total"] < r["honest"] for name, r in rows.items() if name != "honest")


def test_frame_functions_give_one_frame_per_image():
    from vrft.evaluate.base import norm1000_frame
    from vrft.train.builder import make_frame_fn

    r = images_record()
    for frames in (norm1000_frame(r), make_frame_fn("pixels", None)(r)):
        assert [(f.width, f.height) for f in frames] == [(100, 100), (200, 100), (100, 50)]
    assert make_frame_fn("pixels", None)(r)[0].convention == "pixels"
    v = norm1000_frame(video_record())
    assert (v.width, v.height) == (64, 48)


def test_audit_reads_records_files_of_both_tasks(media_dir, capsys):
    mi = {"id": "m0", "task": "multi_image_grounding", "images": ["img/a.png", "img/b.png", "img/c.png"],
          "image_sizes": [[100, 100], [200, 100], [100, 50]], "expression": "the star", "target_image": 3,
          "boxes": [[10, 5, 60, 45]]}  # fmt: skip
    tg = {"id": "t0", "task": "temporal_grounding", "video": "clip/", "fps": 2.0, "duration": 4.0, "width": 64,
          "height": 48, "event": "a star moves", "window": [0.5, 2.5]}  # fmt: skip
    for rec in (mi, tg):
        path = write_jsonl(media_dir / f"{rec['task']}.jsonl", [rec])
        rc = main(["audit", rec["task"], "--records", path, "--json"])
        report = json.loads(capsys.readouterr().out)
        assert rc == 0 and report["records"] == 1 and report["flagged"] == []
        assert report["rows"][0]["total"] == 2.0  # the honest answer earns every reward
