"""vrft.media: probing and sampling videos (files encoded here with PyAV, and frame folders)."""

import numpy as np
import pytest
from PIL import Image

from vrft.errors import DataError
from vrft.media import (
    VideoInfo,
    VideoPart,
    fit_pixels,
    list_frames,
    probe_video,
    sample_frames,
    video_problem,
    video_timestamps,
)

av = pytest.importorskip("av")


def encode_video(path, n=12, fps=4, size=(64, 48), codec="mpeg4"):
    """A tiny video whose frame i is a flat grey of value 10 * (i % 25) (a decoded frame names its index)."""
    w, h = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), 10 * (i % 25), np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def frame_index(img):
    return round(float(np.asarray(img.convert("L")).mean()) / 10)


def write_frames(folder, n=6, size=(32, 24), names="frame_{:04d}.png"):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", size, (10 * i,) * 3).save(folder / names.format(i))
    return folder


def test_probe_video_reads_the_header(tmp_path):
    path = encode_video(tmp_path / "v.mp4", n=12, fps=4)
    assert probe_video(path) == VideoInfo(64, 48, 3.0, 12, 4.0)


def test_probe_frame_folder_needs_fps(tmp_path):
    folder = write_frames(tmp_path / "f", n=6)
    assert probe_video(folder, fps=2.0) == VideoInfo(32, 24, 3.0, 6, 2.0)
    with pytest.raises(DataError, match="needs its frame rate"):
        probe_video(folder)


def test_timestamps_uniform_capped_and_deterministic():
    assert video_timestamps(8.0, 1.0, 100) == [0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5]
    assert video_timestamps(8.0, 2.0, 4) == [1.0, 3.0, 5.0, 7.0]  # capped, evenly spread
    assert video_timestamps(0.2, 2.0, 8) == [0.1]  # shorter than one slot: one frame
    assert video_timestamps(3600.0, 2.0, 8) == video_timestamps(3600.0, 2.0, 8)
    with pytest.raises(DataError):
        video_timestamps(0.0, 2.0, 8)


def test_sample_frames_decodes_the_frame_shown_at_each_timestamp(tmp_path):
    path = encode_video(tmp_path / "v.mp4", n=20, fps=4)  # 5 s, frame i at i/4 s
    part = VideoPart(path, 64, 48, 5.0)
    frames = sample_frames(part, fps=1.0, max_frames=8, max_pixels=64 * 48)
    assert [t for t, _ in frames] == [0.5, 1.5, 2.5, 3.5, 4.5]
    assert [frame_index(im) for _, im in frames] == [2, 6, 10, 14, 18]  # floor(t * 4)
    assert all(im.mode == "RGB" and im.size == (64, 48) for _, im in frames)


def test_sample_frames_resizes_to_the_pixel_budget(tmp_path):
    path = encode_video(tmp_path / "v.mp4", n=8, fps=4, size=(64, 48))
    frames = sample_frames(VideoPart(path, 64, 48, 2.0), fps=2.0, max_frames=2, max_pixels=768)
    for _, im in frames:
        assert im.width * im.height <= 768
        assert abs(im.width / im.height - 64 / 48) < 0.1
    small = sample_frames(VideoPart(path, 64, 48, 2.0), 2.0, 1, max_pixels=10**6, min_pixels=12288)
    assert small[0][1].width * small[0][1].height >= 12000
    assert fit_pixels(64, 48, 10**6) == (64, 48)


class _Container:
    """A stand-in for an opened PyAV container that passes everything through (tests override one
    method: `decode` to count frames, `seek` to refuse)."""

    def __init__(self, container):
        self.c = container

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.c.close()

    def __getattr__(self, name):
        return getattr(self.c, name)


def test_sample_frames_seeks_in_a_long_video(tmp_path, monkeypatch):
    """Far apart timestamps: each frame is found by seeking, not by decoding everything before it."""
    import vrft.media

    path = encode_video(tmp_path / "long.mkv", n=240, fps=4, size=(16, 16))  # 60 s
    decoded = []
    real_open = vrft.media._open

    class Counting(_Container):  # counts the frames the sampler decodes
        def decode(self, *args, **kwargs):
            for frame in self.c.decode(*args, **kwargs):
                decoded.append(frame.time)
                yield frame

    monkeypatch.setattr(vrft.media, "_open", lambda p: Counting(real_open(p)))
    frames = sample_frames(VideoPart(path, 16, 16, 60.0), fps=2.0, max_frames=3, max_pixels=256)
    assert [t for t, _ in frames] == [10.0, 30.0, 50.0]
    assert [frame_index(im) for _, im in frames] == [40 % 25, 120 % 25, 200 % 25]
    assert len(decoded) < 60, f"decoded {len(decoded)} of 240 frames: not seeking"
    assert min(decoded) > 5.0  # nothing near the start was decoded for t = 10 s


def test_sample_frames_from_a_frame_folder_opens_only_sampled_frames(tmp_path, monkeypatch):
    folder = write_frames(tmp_path / "f", n=8)  # 2 fps -> 4 s
    opened = []
    import vrft.inputs

    real = vrft.inputs.open_image
    monkeypatch.setattr(vrft.inputs, "open_image", lambda p, *a, **k: opened.append(p.name) or real(p, *a, **k))
    frames = sample_frames(VideoPart(folder, 32, 24, 4.0, 2.0), fps=0.5, max_frames=8, max_pixels=10**6)
    assert [t for t, _ in frames] == [1.0, 3.0]
    assert [frame_index(im) for _, im in frames] == [2, 6]
    assert opened == ["frame_0002.png", "frame_0006.png"]


def test_list_frames_sorts_numbers_as_numbers(tmp_path):
    folder = write_frames(tmp_path / "f", n=12, names="f{}.png")
    (folder / "notes.txt").write_text("not a frame")
    assert [p.name for p in list_frames(folder)][:3] == ["f0.png", "f1.png", "f2.png"]
    assert list_frames(folder)[-1].name == "f11.png"


# ---------------------------------------------------------------------------------- bad videos
def test_good_video_and_folder_have_no_problem(tmp_path):
    path = encode_video(tmp_path / "v.mp4")
    assert video_problem(VideoPart(path, 64, 48, 3.0)) is None
    assert video_problem(VideoPart(write_frames(tmp_path / "f"), 32, 24, 3.0, 2.0)) is None


def test_truncated_video_is_refused(tmp_path):
    path = encode_video(tmp_path / "v.mp4")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    problem = video_problem(VideoPart(path, 64, 48, 3.0))
    assert problem and str(path) in problem and "truncated" in problem
    with pytest.raises(DataError, match="truncated"):
        sample_frames(VideoPart(path, 64, 48, 3.0), 2.0, 4, 4096)


def test_zero_frame_video_is_refused(tmp_path):
    path = tmp_path / "empty.avi"
    with av.open(str(path), "w") as out:  # a header and no frame
        stream = out.add_stream("mpeg4", rate=4)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        out.start_encoding()
    assert "zero frames" in video_problem(VideoPart(path, 64, 48, 3.0))


def test_not_a_video_and_missing_file(tmp_path):
    (tmp_path / "x.mp4").write_bytes(b"hello, not a video")
    assert "not a readable video" in video_problem(VideoPart(tmp_path / "x.mp4", 64, 48, 3.0))
    assert "not found" in video_problem(VideoPart(tmp_path / "nope.mp4", 64, 48, 3.0))
    with pytest.raises(DataError, match="not found"):
        probe_video(tmp_path / "nope.mp4")


def test_video_longer_than_the_limit_is_refused(tmp_path, monkeypatch):
    import vrft.media

    path = encode_video(tmp_path / "v.mp4", n=12, fps=4)  # 3 s
    monkeypatch.setattr(vrft.media, "MAX_VIDEO_SECONDS", 2.0)
    assert "more than the limit of 2 s" in video_problem(VideoPart(path, 64, 48, 3.0))


def test_wrong_frame_size_is_refused(tmp_path):
    path = encode_video(tmp_path / "v.mp4")
    assert "frame size 60x48 recorded but the video is 64x48" in video_problem(VideoPart(path, 60, 48, 3.0))


def test_frame_folder_problems(tmp_path):
    gap = write_frames(tmp_path / "gap", n=5)
    (gap / "frame_0002.png").unlink()
    assert "frame number 2 is missing" in video_problem(VideoPart(gap, 32, 24, 2.0, 2.0))
    broken = write_frames(tmp_path / "broken", n=3)
    (broken / "frame_0001.png").write_bytes(b"not a png")
    assert "frame_0001.png: frame unreadable" in video_problem(VideoPart(broken, 32, 24, 1.5, 2.0))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no frames" in video_problem(VideoPart(empty, 32, 24, 1.0, 2.0))
    assert "frame rate" in video_problem(VideoPart(gap, 32, 24, 2.0, None))


# ------------------------------------------------------------------- records: validate and load
def _video_record(rid, video, duration=3.0, size=(64, 48), **extra):
    return {"id": rid, "task": "temporal_grounding", "video": video, "duration": duration, "width": size[0],
            "height": size[1], "event": "the grey fades", "window": [0.5, 1.5], **extra}  # fmt: skip


def _multi_record(rid, images, target=1, sizes=None):
    return {"id": rid, "task": "multi_image_grounding", "images": images,
            "image_sizes": sizes or [[32, 24]] * len(images), "boxes": [[1, 1, 8, 8]],
            "expression": "the square", "target_image": target}  # fmt: skip


def _bad_media(tmp_path):
    """A records file with one good and one bad record of each kind; returns (path, lines)."""
    import json

    from .conftest import write_image

    for name in ("a", "b", "c"):
        write_image(tmp_path / "img" / f"{name}.png", size=(32, 24))
    encode_video(tmp_path / "v.mp4")  # 12 frames at 4 fps: 3 s
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes((tmp_path / "v.mp4").read_bytes()[:700])
    with av.open(str(tmp_path / "empty.avi"), "w") as out:
        stream = out.add_stream("mpeg4", rate=4)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        out.start_encoding()
    write_frames(tmp_path / "frames")
    (write_frames(tmp_path / "gap") / "frame_0003.png").unlink()
    lines = [
        _multi_record("m-ok", ["img/a.png", "img/b.png", "img/c.png"], target=2),  # 1
        _multi_record("m-index", ["img/a.png", "img/b.png"], target=3),  # 2
        _multi_record("m-missing", ["img/a.png", "img/nope.png"]),  # 3
        _multi_record("m-many", ["img/a.png"] * 17),  # 4
        _video_record("v-ok", "v.mp4"),  # 5
        _video_record("v-cut", "cut.mp4"),  # 6
        _video_record("v-empty", "empty.avi"),  # 7
        _video_record("v-zero", "v.mp4", duration=0),  # 8
        _video_record("v-long", "v.mp4", duration=4000.0),  # 9
        _video_record("f-ok", "frames/", size=(32, 24), fps=2.0),  # 10
        _video_record("f-gap", "gap/", size=(32, 24), fps=2.0),  # 11
    ]
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


EXPECTED = {
    2: "target_image: 3 is out of range: the record has 2 image(s), so use 1..2",
    3: "images[1]: ",  # ... img/nope.png: file not found
    4: "images: 17 images, the limit is 1..16 per record",
    6: "video: ",  # ... cut.mp4: ... truncated
    7: "video: ",  # ... zero frames
    8: "duration: 0 must be a number of seconds > 0",
    9: "duration: 4000 s is longer than the limit of 3600 s",
    11: "video: ",  # ... frame number 3 is missing
}


def test_vrft_data_validate_names_every_bad_image_list_and_video(tmp_path, capsys):
    from vrft.cli import main

    path = _bad_media(tmp_path)
    assert main(["data", "validate", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    for line in (1, 5, 10):
        assert f"{path}:{line}:" not in out
    for line, words in EXPECTED.items():
        assert f"{path}:{line}: {words}" in out, (line, out)
    assert "nope.png: file not found" in out
    assert "cut.mp4: " in out and "truncated" in out
    assert "empty.avi: the video holds zero frames" in out
    assert "frame number 3 is missing" in out
    assert "11 records, 4 images, 5 videos checked: 8 problem(s)" in err


def test_load_records_and_image_problems_refuse_the_same_records(tmp_path):
    import json

    from vrft.data.records import image_problems, load_records

    path = _bad_media(tmp_path)
    with pytest.raises(DataError) as err:
        load_records(path)
    text = str(err.value)
    for line in (2, 4, 8, 9):  # what the fields alone show
        assert f"{path}:{line}: {EXPECTED[line]}" in text
    good = [json.loads(x) for i, x in enumerate(path.read_text().splitlines(), 1) if i not in (2, 4, 8, 9)]
    path.write_text("".join(json.dumps(x) + "\n" for x in good))
    records = load_records(path)  # the files are checked by image_problems (preflight, predict, eval)
    problems = image_problems(records)
    assert [p.split(": ")[0:2] for p in problems] == [
        [f"{path}:2", "images[1]"], [f"{path}:4", "video"], [f"{path}:5", "video"], [f"{path}:7", "video"]
    ]


def test_cli_error_is_one_line_per_problem_without_traceback(tmp_path, capsys):
    from vrft.cli import main

    path = tmp_path / "r.jsonl"
    path.write_text('{"id": "v", "task": "temporal_grounding", "video": "v.mp4", "duration": -1, "width": 8, '
                    '"height": 8, "event": "e", "window": [0, 1]}\n')  # fmt: skip
    assert main(["data", "validate", str(path)]) == 1
    out, err = capsys.readouterr()
    assert f"{path}:1: duration: -1 must be a number of seconds > 0 (the video's length)" in out
    assert "Traceback" not in out + err


def test_frames_above_the_pixel_limit_are_refused_before_decoding(tmp_path, monkeypatch):
    import vrft.inputs

    path = encode_video(tmp_path / "v.mp4")  # 64x48 = 3072 pixels
    monkeypatch.setattr(vrft.inputs, "MAX_IMAGE_PIXELS", 3000)
    assert "frames of 64x48 exceed the limit of 3000 pixels" in video_problem(VideoPart(path, 64, 48, 3.0))
    with pytest.raises(DataError, match="exceed the limit of 3000 pixels"):
        sample_frames(VideoPart(path, 64, 48, 3.0), 2.0, 4, 4096)


def test_a_stream_that_cannot_seek_is_decoded_forward(tmp_path, monkeypatch):
    import vrft.media

    path = encode_video(tmp_path / "v.mkv", n=40, fps=4)  # 10 s
    real_open = vrft.media._open

    class NoSeek(_Container):
        def seek(self, *args, **kwargs):
            raise OSError("not seekable")

    monkeypatch.setattr(vrft.media, "_open", lambda p: NoSeek(real_open(p)))
    frames = sample_frames(VideoPart(path, 64, 48, 10.0), fps=0.5, max_frames=8, max_pixels=4096)
    assert [t for t, _ in frames] == [1.0, 3.0, 5.0, 7.0, 9.0]
    assert [frame_index(im) for _, im in frames] == [4, 12, 20, 3, 11]  # frame i shows i % 25


def test_sample_frames_names_the_video_when_its_duration_is_unusable(tmp_path):
    path = encode_video(tmp_path / "v.mp4")
    with pytest.raises(DataError, match=r"v\.mp4: video duration 0\.0 must be a positive number"):
        sample_frames(VideoPart(path, 64, 48, 0.0), 2.0, 4, 4096)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_corrupt_videos_never_raise_anything_but_data_error(tmp_path, suffix):
    """Seeded corruptions of a good video (bytes flipped, cut anywhere, noise): `video_problem`
    returns a problem or None, `sample_frames` returns frames or raises DataError; nothing else."""
    import random

    good = encode_video(tmp_path / f"good{suffix}", n=40, fps=4).read_bytes()
    rng = random.Random(0)
    bad = tmp_path / f"bad{suffix}"
    for i in range(120):
        data = bytearray(good)
        if i % 3 == 0:
            for _ in range(rng.randint(1, 20)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif i % 3 == 1:
            data = data[: rng.randrange(len(data))]
        else:
            data = bytearray(rng.randrange(256) for _ in range(rng.randint(0, 3000)))
        bad.write_bytes(bytes(data))
        part = VideoPart(bad, 64, 48, 10.0)
        problem = video_problem(part)
        assert problem is None or isinstance(problem, str)
        try:
            sample_frames(part, 1.0, 4, 4096)
        except DataError as err:
            assert str(bad) in str(err)


def test_frame_numbers_are_compared_only_within_one_name_pattern(tmp_path):
    folder = tmp_path / "two"
    folder.mkdir()
    for name in ("a_1.png", "a_2.png", "b_1.png", "b_2.png"):  # two prefixes: no "missing frame"
        Image.new("RGB", (32, 24)).save(folder / name)
    assert video_problem(VideoPart(folder, 32, 24, 2.0, 2.0)) is None
