"""Records with several images or a video (issue 20): fields, load/save, visual_parts, refusals."""

import json

import pytest

from vrft.data.records import Record, load_records, save_records, validate_record_dict
from vrft.errors import DataError
from vrft.media import MAX_IMAGES_PER_RECORD, ImagePart, VideoPart

from .conftest import write_image

MULTI = {
    "id": "mi-0",
    "task": "multi_image_grounding",
    "images": ["img/a.png", "img/b.png", "img/c.png"],
    "image_sizes": [[40, 30], [40, 20], [40, 30]],
    "boxes": [[1, 2, 10, 12]],
    "expression": "the star",
    "target_image": 2,
}  # in the serialised field order (vrft.data.records.FIELDS)
VIDEO = {
    "id": "tg-0",
    "task": "temporal_grounding",
    "video": "clips/v0.mp4",
    "duration": 8.0,
    "width": 64,
    "height": 48,
    "event": "a red star crosses the frame",
    "window": [2.5, 6.0],
}
FOLDER = {"id": "tg-1", "task": "temporal_grounding", "video": "clips/v1/", "fps": 4.0,
          **{k: v for k, v in VIDEO.items() if k not in ("id", "task", "video")}}  # fmt: skip


def write_jsonl(path, objs):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(o) + "\n" for o in objs))
    return path


def fields(obj):
    return [f for f, _ in validate_record_dict(obj)]


def problem(obj, field):
    return " | ".join(msg for f, msg in validate_record_dict(obj) if f == field)


def test_valid_multi_image_video_and_folder_records():
    for obj in (MULTI, VIDEO, FOLDER):
        assert validate_record_dict(obj) == []


def test_load_save_round_trip_and_resolved_paths(tmp_path):
    src = write_jsonl(tmp_path / "data" / "r.jsonl", [MULTI, VIDEO, FOLDER])
    recs = load_records(src)
    multi, video, folder = recs
    assert multi.image is None and multi.width is None
    assert multi.image_paths == [tmp_path / "data" / "img" / n for n in ("a.png", "b.png", "c.png")]
    assert multi.target_image == 2 and multi.image_sizes[1] == [40, 20]
    assert video.video_path == tmp_path / "data" / "clips" / "v0.mp4"
    assert video.window == [2.5, 6.0] and video.duration == 8.0 and video.event.startswith("a red")
    # saved beside the original: byte-identical lines
    same = save_records(recs, tmp_path / "data" / "copy.jsonl")
    assert same.read_text() == src.read_text()
    # saved elsewhere: paths rewritten relative to the new file; a frame folder keeps its "/"
    moved = save_records(recs, tmp_path / "out" / "r.jsonl")
    lines = [json.loads(line) for line in moved.read_text().splitlines()]
    assert lines[0]["images"] == ["../data/img/a.png", "../data/img/b.png", "../data/img/c.png"]
    assert lines[1]["video"] == "../data/clips/v0.mp4"
    assert lines[2]["video"] == "../data/clips/v1/"
    assert "image" not in lines[0] and "width" not in lines[0]
    again = load_records(moved)
    assert [r.to_dict() for r in again] != [r.to_dict() for r in recs]  # paths differ as text...
    assert [r.visual_parts() for r in again] == [r.visual_parts() for r in recs]  # ...not as files


def test_one_image_records_unchanged_on_save(tmp_path):
    write_image(tmp_path / "a.png")
    one = {"id": "g", "task": "grounding", "image": "a.png", "width": 40, "height": 30,
           "boxes": [[1, 1, 5, 5]], "expression": "x"}  # fmt: skip
    src = write_jsonl(tmp_path / "r.jsonl", [one])
    out = save_records(load_records(src), tmp_path / "o.jsonl")
    assert out.read_bytes() == src.read_bytes()
    assert "images" not in out.read_text() and "video" not in out.read_text()


def test_visual_parts(tmp_path):
    src = write_jsonl(tmp_path / "r.jsonl", [MULTI, VIDEO, FOLDER])
    multi, video, folder = load_records(src)
    assert multi.visual_parts() == [
        ImagePart(tmp_path / "img" / "a.png", 40, 30),
        ImagePart(tmp_path / "img" / "b.png", 40, 20),
        ImagePart(tmp_path / "img" / "c.png", 40, 30),
    ]
    assert video.visual_parts() == [VideoPart(tmp_path / "clips" / "v0.mp4", 64, 48, 8.0, None)]
    assert folder.visual_parts() == [VideoPart(tmp_path / "clips" / "v1", 64, 48, 8.0, 4.0)]
    one = Record("x", "grounding", "a.png", 40, 30, image_path=tmp_path / "a.png")
    assert one.visual_parts() == [ImagePart(tmp_path / "a.png", 40, 30)]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"target_image": 4}, "target_image", "out of range"),
        ({"target_image": 0}, "target_image", "use 1..3"),
        ({"target_image": True}, "target_image", "must be an integer"),
        ({"images": [f"{i}.png" for i in range(MAX_IMAGES_PER_RECORD + 1)],
          "image_sizes": [[4, 4]] * (MAX_IMAGES_PER_RECORD + 1)}, "images", "limit is 1..16"),  # fmt: skip
        ({"images": [], "image_sizes": []}, "images", "limit is 1..16"),
        ({"image_sizes": [[40, 30]]}, "image_sizes", "1 sizes for 3 images"),
        ({"image_sizes": [[40, 30], [0, 1], [4, 4]]}, "image_sizes", "positive integers"),
        ({"boxes": [[1, 2, 10, 25]]}, "boxes[0]", "outside the 40x20 image"),
        ({"boxes": [[1, 2, 10, 12], [1, 2, 3, 4]]}, "boxes", "exactly one box"),
        ({"width": 40}, "width", "image_sizes"),
        ({"image": "a.png"}, "images", "exactly one of image / images / video"),
    ],
)
def test_multi_image_refusals(change, field, words):
    assert words in problem({**MULTI, **change}, field)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"duration": 0}, "duration", "> 0"),
        ({"duration": -3.0}, "duration", "> 0"),
        ({"duration": 3601.0, "window": [1, 2]}, "duration", "longer than the limit of 3600 s"),
        ({"window": [6.0, 2.5]}, "window", "0 <= start < end"),
        ({"window": [-1, 2]}, "window", "0 <= start < end"),
        ({"window": [2, 9.0]}, "window", "ends after the video's duration"),
        ({"window": [2, "x"]}, "window", "two finite numbers"),
        ({"fps": 0}, "fps", "> 0"),
        ({"video": "clips/v1/", "fps": None}, "fps", "frames per second"),
    ],
)
def test_video_refusals(change, field, words):
    assert words in problem({**VIDEO, **change}, field)


def test_video_needs_size_duration_event_window():
    obj = {k: v for k, v in VIDEO.items() if k not in ("width", "duration", "event", "window")}
    assert {"width", "duration", "event", "window"} <= set(fields(obj))
    folder = {k: v for k, v in FOLDER.items() if k != "fps"}
    assert "frame rate" in problem(folder, "fps")
    assert "window" not in fields({**VIDEO, "window": [2, 8.4]})  # within the 0.5 s tolerance


def test_task_and_form_must_match():
    assert "reads 'video'" in problem({**MULTI, "task": "temporal_grounding", "event": "e", "window": [0, 1]},
                                      "images")  # fmt: skip
    one_image_task = {**VIDEO, "task": "classification", "label": "cat"}
    assert "reads 'image'" in problem(one_image_task, "video")
    assert "'images' or 'video'" in problem({"id": "x", "task": "grounding"}, "image")


def test_load_records_names_file_line_field(tmp_path):
    path = write_jsonl(tmp_path / "r.jsonl", [MULTI, {**VIDEO, "duration": 0}, {**MULTI, "id": "b", "target_image": 9}])
    with pytest.raises(DataError) as err:
        load_records(path)
    text = str(err.value)
    assert f"{path}:2: duration: 0 must be a number of seconds > 0" in text
    assert f"{path}:3: target_image: 9 is out of range" in text
    assert "Traceback" not in text


# ------------------------------------------------------------------------------ budgets (config)
def _cfg(tmp_path, records, **model):
    from vrft.config import load_config

    return load_config({
        "model": {"path": str(tmp_path / "no-model"), **model},
        "data": {"train": str(records)},
        "output": {"dir": str(tmp_path / "run")},
    })  # fmt: skip


def test_budget_keys_have_defaults_bounds_and_descriptions(tmp_path):
    from vrft.config import ModelSection
    from vrft.errors import ConfigError

    cfg = _cfg(tmp_path, "r.jsonl")
    m = cfg.model
    assert (m.max_images, m.video_fps, m.video_max_frames, m.video_max_pixels, m.video_min_pixels) == (
        4, 2.0, 8, 12544, 3136)  # fmt: skip
    for name in ("max_images", "video_fps", "video_max_frames", "video_max_pixels", "video_min_pixels"):
        assert ModelSection.model_fields[name].description
    for bad in ({"max_images": 0}, {"max_images": 17}, {"video_fps": 0}, {"video_max_frames": 0},
                {"video_max_pixels": -1}, {"video_max_pixels": 1000, "video_min_pixels": 2000}):  # fmt: skip
        with pytest.raises(ConfigError) as err:
            _cfg(tmp_path, "r.jsonl", **bad)
        assert "model." + next(iter(bad)) in str(err.value) or "model.video_min_pixels" in str(err.value)


def test_preflight_refuses_records_with_more_images_than_max_images(tmp_path, monkeypatch):
    from vrft.tasks import TASKS
    from vrft.train.preflight import problems

    monkeypatch.setitem(TASKS, "multi_image_grounding", TASKS.get("multi_image_grounding", TASKS["grounding"]))
    for name, (w, h) in zip(MULTI["images"], MULTI["image_sizes"]):
        write_image(tmp_path / name, size=(w, h))
    records = write_jsonl(tmp_path / "r.jsonl", [MULTI])
    found, _ = problems(_cfg(tmp_path, records, max_images=2))
    line = [p for p in found if "model.max_images" in p]
    assert len(line) == 1 and "\n" not in line[0]
    assert f"{records}:1: 3 images" in line[0] and "raise model.max_images" in line[0]
    found, _ = problems(_cfg(tmp_path, records, max_images=3))
    assert not [p for p in found if "max_images" in p or "data.train" in p], found


# ----------------------------------------------------------------------------- budgets (vrft.json)
def test_contract_keeps_the_five_budgets(tmp_path, caplog):
    from vrft.models.contract import (
        MEDIA_BUDGETS,
        ModelContract,
        read_contract,
        resolve_settings,
        write_contract,
    )

    contract = ModelContract("multi_image_grounding", None, "think", "norm1000", 3136, 12544,
                             max_images=3, video_fps=1.5, video_max_frames=6, video_max_pixels=9000,
                             video_min_pixels=1000)  # fmt: skip
    write_contract(tmp_path, contract)
    saved = json.loads((tmp_path / "vrft.json").read_text())
    assert {k: saved[k] for k in MEDIA_BUDGETS} == {
        "max_images": 3, "video_fps": 1.5, "video_max_frames": 6, "video_max_pixels": 9000, "video_min_pixels": 1000}
    assert read_contract(tmp_path) == contract
    settings = resolve_settings(tmp_path)
    assert (settings.max_images, settings.video_fps, settings.video_max_frames) == (3, 1.5, 6)
    with caplog.at_level("WARNING"):
        settings = resolve_settings(tmp_path, video_max_frames=4)
    assert settings.video_max_frames == 4 and "--video-max-frames 4 overrides" in caplog.text
    # a vrft.json written before the budgets existed still reads (None: the command's defaults)
    old = {k: v for k, v in saved.items() if k not in MEDIA_BUDGETS}
    (tmp_path / "vrft.json").write_text(json.dumps(old))
    assert read_contract(tmp_path).video_fps is None
    (tmp_path / "vrft.json").write_text(json.dumps({**saved, "video_fps": 0}))
    with pytest.raises(Exception, match="video_fps"):
        read_contract(tmp_path)


@pytest.mark.slow  # imports transformers (vrft.train)
def test_training_contract_takes_the_budgets_from_the_config(tmp_path):
    from vrft.train.contract import training_contract

    cfg = _cfg(tmp_path, "r.jsonl", max_images=5, video_fps=1.0)
    contract = training_contract("temporal_grounding", [], "norm1000", None, model_cfg=cfg.model)
    assert (contract.max_images, contract.video_fps, contract.video_max_frames) == (5, 1.0, 8)


def test_eval_and_predict_image_check_decodes_every_image_of_a_record(tmp_path):
    """`vrft eval` / `predict` decode each image before the model loads: an `images` record used to
    crash there (`resolved_image()` of a record without `image`)."""
    from vrft.commands._generation import check_images

    for name, (w, h) in zip(MULTI["images"], MULTI["image_sizes"]):
        write_image(tmp_path / name, size=(w, h))
    records = load_records(write_jsonl(tmp_path / "r.jsonl", [MULTI]))
    check_images(records)  # all good: no error
    png = (tmp_path / "img" / "c.png").read_bytes()
    (tmp_path / "img" / "c.png").write_bytes(png[: len(png) // 2])  # header intact, pixels cut
    with pytest.raises(DataError) as err:
        check_images(records)
    assert f"{tmp_path / 'r.jsonl'}:1: images[2]: " in str(err.value)


def test_resolved_image_of_a_record_without_one_image_is_a_data_error(tmp_path):
    multi, video = load_records(write_jsonl(tmp_path / "r.jsonl", [MULTI, VIDEO]))
    with pytest.raises(DataError, match=r"r\.jsonl:1: image: this record shows images, not one image"):
        multi.resolved_image()
    with pytest.raises(DataError, match="shows video"):
        video.resolved_image()
