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


def test_sample_frames_seeks_in_a_long_video(tmp_path, monkeypatch):
    """Far apart timestamps: each frame is found by seeking, not by decoding everything before it."""
    import vrft.media

    path = encode_video(tmp_path / "long.mkv", n=240, fps=4, size=(16, 16))  # 60 s
    decoded = []
    real_open = vrft.media._open

    class Counting:  # counts the frames the sampler decodes
        def __init__(self, container):
            self.c = container

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.c.close()

        def __getattr__(self, name):
            return getattr(self.c, name)

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
