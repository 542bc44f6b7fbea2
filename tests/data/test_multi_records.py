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
