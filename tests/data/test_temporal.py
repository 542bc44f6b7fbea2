"""Temporal grounding converters: Charades-STA lines and ActivityNet Captions JSON (tiny videos written here)."""

import json

import pytest
from PIL import Image

from vrft.cli import main
from vrft.data.records import load_records
from vrft.data.temporal import convert_activitynet, convert_charades
from vrft.errors import DataError

pytest.importorskip("av")


def _video(path, n=8, fps=4.0, size=32):
    from vrft.data.video_world import write_mp4

    return write_mp4([Image.new("RGB", (size, size), (10 * i, 0, 0)) for i in range(n)], fps, path)


@pytest.fixture
def videos(tmp_path):
    d = tmp_path / "videos"
    d.mkdir()
    _video(d / "AAA.mp4", n=8)  # 2 s
    _video(d / "BBB.mp4", n=12)  # 3 s
    return d


def test_charades_lines_to_records(tmp_path, videos):
    ann = tmp_path / "sta.txt"
    ann.write_text("AAA 0.5 1.5##person opens a door.\nBBB 0 2.75##a person sits down\r\n\n")
    out = tmp_path / "out" / "sta.jsonl"
    assert main(["data", "convert", "charades", str(ann), "--videos", str(videos), "--out", str(out)]) == 0
    recs = load_records(out)
    assert [(r.event, r.window, r.duration, r.width) for r in recs] == [
        ("person opens a door", [0.5, 1.5], 2.0, 32),
        ("a person sits down", [0.0, 2.75], 3.0, 32),
    ]
    assert recs[0].task == "temporal_grounding" and recs[0].video == "../videos/AAA.mp4"
    assert recs[0].id == "charades-AAA-1"
    from vrft.data.validate import validate_path

    assert validate_path(out).problems == []


def test_charades_durations_csv(tmp_path, videos):
    ann = tmp_path / "sta.txt"
    ann.write_text("AAA 0.5 2.4##x\n")
    csv = tmp_path / "Charades_v1_test.csv"
    csv.write_text("id,subject,length\nAAA,s1,2.40\n")
    (rec,) = convert_charades(ann, videos, durations=csv)
    assert rec.duration == 2.4 and rec.window == [0.5, 2.4]
    csv.write_text("id,subject,length\nZZZ,s1,2.40\n")
    with pytest.raises(DataError, match=r"sta.txt:1: duration: video AAA is not in"):
        convert_charades(ann, videos, durations=csv)
    csv.write_text("id,subject,length\nAAA,s1,-3\n")
    with pytest.raises(DataError, match=r"Charades_v1_test.csv:2: duration: -3 s is negative"):
        convert_charades(ann, videos, durations=csv)


@pytest.mark.parametrize(
    "line, message",
    [
        ("CCC 0.5 1##x", r"sta.txt:1: video: .*CCC\{.mp4\|.*\} not found"),
        ("AAA 1.5 1.5##x", r"sta.txt:1: window: start 1.5 >= end 1.5"),
        ("AAA 1.5 0.5##x", r"sta.txt:1: window: start 1.5 >= end 0.5"),
        ("AAA nan 1##x", r"sta.txt:1: start: 'nan' is not a finite number"),
        ("AAA -1 1##x", r"sta.txt:1: start: -1 s is negative"),
        ("AAA 0.5 abc##x", r"sta.txt:1: end: 'abc' is not a number"),
        ("AAA 0.5 1 person", r"sta.txt:1: line: .* is not 'VIDEO_ID START END##SENTENCE'"),
        ("AAA 0.5 9##x", r"sta.txt:1: end: 9 s is after the video's end \(2 s\): use --clip"),
    ],
)
def test_charades_refusals(tmp_path, videos, line, message):
    ann = tmp_path / "sta.txt"
    ann.write_text(line + "\n")
    with pytest.raises(DataError, match=message):
        convert_charades(ann, videos)


def test_charades_clip_and_skip_missing(tmp_path, videos):
    ann = tmp_path / "sta.txt"
    ann.write_text("AAA 0.5 9##x\nCCC 0 1##y\n")
    (rec,) = convert_charades(ann, videos, clip=True, skip_missing=True)
    assert rec.window == [0.5, 2.0]


def test_charades_frame_folder_needs_fps(tmp_path, videos):
    folder = videos / "FFF"
    folder.mkdir()
    for i in range(6):
        Image.new("RGB", (32, 24)).save(folder / f"FFF-{i + 1:06d}.jpg")
    ann = tmp_path / "sta.txt"
    ann.write_text("FFF 0 1##x\n")
    with pytest.raises(DataError, match="frame folder: give its frame rate with --fps"):
        convert_charades(ann, videos)
    (rec,) = convert_charades(ann, videos, fps=3.0)
    assert rec.video.endswith("FFF/") and rec.fps == 3.0 and rec.duration == 2.0 and rec.height == 24


def test_charades_cli_error_is_one_line_no_traceback(tmp_path, videos, capsys):
    ann = tmp_path / "sta.txt"
    ann.write_text("AAA 2 1##x\n")
    assert (
        main(
            [
                "data",
                "convert",
                "charades",
                str(ann),
                "--videos",
                str(videos),
                "--out",
                str(tmp_path / "o.jsonl"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "sta.txt:1: window: start 2 >= end 1" in err and "Traceback" not in err
    assert not (tmp_path / "o.jsonl").exists()


def test_activitynet_json_to_records(tmp_path, videos):
    src = tmp_path / "val_1.json"
    data = {
        "AAA": {
            "duration": 2.0,
            "timestamps": [[0, 1.0], [0.5, 2.3]],
            "sentences": ["A man walks. ", "He sits."],
        },
        "BBB": {"duration": 3.0, "timestamps": [[1, 2]], "sentences": ["x"]},
    }
    src.write_text(json.dumps(data, indent=1))
    out = tmp_path / "anet.jsonl"
    assert main(["data", "convert", "activitynet", str(src), "--videos", str(videos), "--out", str(out)]) == 0
    recs = load_records(out)
    assert [(r.id, r.event, r.window) for r in recs] == [
        ("anet-AAA-0", "A man walks", [0.0, 1.0]),
        ("anet-AAA-1", "He sits", [0.5, 2.3]),  # 0.3 s after the end: within the 0.5 s tolerance
        ("anet-BBB-0", "x", [1.0, 2.0]),
    ]


@pytest.mark.parametrize(
    "entry, message",
    [
        (
            {"duration": 2.0, "timestamps": [[1, 0.5]], "sentences": ["x"]},
            r"val.json:2: AAA timestamps\[0\]: window: start 1 >= end 0.5",
        ),
        (
            {"duration": 2.0, "timestamps": [[-1, 0.5]], "sentences": ["x"]},
            r"val.json:2: AAA timestamps\[0\]: start: -1 s is negative",
        ),
        (
            {"duration": 0, "timestamps": [[0, 0.5]], "sentences": ["x"]},
            r"val.json:2: duration: 0 s \(must be > 0",
        ),
        (
            {"duration": 2.0, "timestamps": [[0, 1]], "sentences": []},
            r"val.json:2: timestamps: AAA needs the lists",
        ),
        ({"duration": 2.0, "timestamps": [[0, 9]], "sentences": ["x"]}, r"end: 9 s is after the video's end"),
    ],
)
def test_activitynet_refusals(tmp_path, videos, entry, message):
    src = tmp_path / "val.json"
    src.write_text('{\n"AAA": ' + json.dumps(entry) + "\n}")
    with pytest.raises(DataError, match=message):
        convert_activitynet(src, videos)


def test_activitynet_missing_video_and_nan(tmp_path, videos):
    src = tmp_path / "val.json"
    src.write_text('{"AAA": {"duration": 2, "timestamps": [[NaN, 1]], "sentences": ["x"]},\n'
                   ' "v_gone": {"duration": 2, "timestamps": [[0, 1]], "sentences": ["y"]}}')  # fmt: skip
    with pytest.raises(DataError) as err:
        convert_activitynet(src, videos)
    text = str(err.value)
    assert "val.json:1: AAA timestamps[0]: start: nan is not a finite number" in text
    assert "val.json:2: video:" in text and "v_gone" in text and "not found" in text


@pytest.mark.parametrize("kind", ["charades", "activitynet", "multi-image"])
def test_out_may_not_be_the_input_nor_a_directory(tmp_path, videos, kind, capsys):
    src = tmp_path / "src.jsonl"
    src.write_text("AAA 0 1##x\n")
    before = src.read_bytes()
    extra = [] if kind == "multi-image" else ["--videos", str(videos)]
    assert main(["data", "convert", kind, str(src), *extra, "--out", str(src)]) == 2
    assert main(["data", "convert", kind, str(src), *extra, "--out", str(videos)]) == 2
    err = capsys.readouterr().err
    assert src.read_bytes() == before and "Traceback" not in err
    assert err.count("vrft data: error:") == 2
