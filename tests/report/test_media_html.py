"""The report for several images (side by side, true and predicted box on their image) and for video (a
strip of sampled frames over a timeline with the true and predicted windows): structure, rows written by
the evaluators, and rendering in a real headless chromium (marked `browser`; VRFT_REQUIRE_BROWSER=1 makes
a missing chromium fail, as in tests/report/test_html.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image
from tests.report.test_html import _chromium, _close, need_chromium, probe_page

from vrft.report.html import GT_COLOR, PRED_COLOR, render_report
from vrft.report.media_html import STRIP_FRAMES, TIMELINE_UNITS

BLUE = (0, 0, 255)


def _images(tmp_path: Path) -> list[str]:
    paths = []
    for i, size in enumerate([(100, 80), (100, 80), (120, 80)]):
        path = tmp_path / f"img{i + 1}.png"
        Image.new("RGB", size, BLUE).save(path)
        paths.append(str(path))
    return paths


def _clip(tmp_path: Path, n: int = 10) -> Path:
    """A frame folder: n frames of 64 x 48 at 2 fps (5 s), grey levels rising frame by frame."""
    folder = tmp_path / "clip"
    folder.mkdir()
    for i in range(n):
        Image.new("RGB", (64, 48), (20 * i, 20 * i, 20 * i)).save(folder / f"frame_{i:03d}.png")
    return folder


def _multi(tmp_path: Path) -> list[dict]:
    paths = _images(tmp_path)
    base = {"task": "multi_image_grounding", "images": paths, "image_sizes": [[100, 80], [100, 80], [120, 80]],
            "gt_image": 2, "gt_boxes": [[20, 20, 80, 60]], "query": "the star"}  # fmt: skip
    return [
        {**base, "id": "mi-right", "pred_image": 2, "pred_boxes": [[30, 10, 90, 70]], "score": 0.5},
        {**base, "id": "mi-wrong", "pred_image": 3, "pred_boxes": [[0, 0, 50, 40]], "score": 0.0},
    ]


def _video(tmp_path: Path) -> list[dict]:
    folder = _clip(tmp_path)
    base = {"task": "temporal_grounding", "video": str(folder), "fps": 2.0, "duration": 5.0, "width": 64,
            "height": 48, "gt_window": [1.0, 2.5], "query": "the circle appears"}  # fmt: skip
    return [
        {**base, "id": "tg-off", "pred_window": [3.0, 4.5], "score": 0.0},
        {**base, "id": "tg-long", "pred_window": [4.0, 7.0], "score": 0.1},  # past the end: cut at 5 s
        {**base, "id": "tg-missing", "video": str(tmp_path / "nope.mp4"), "pred_window": None, "score": 0.0},
    ]


def _in_sample(html: str, sid: str) -> str:
    start = html.index(f'data-id="{sid}"')
    end = html.find('<div class="sample"', start)
    return html[start : end if end > 0 else len(html)]


def test_several_images_side_by_side_with_boxes_on_their_image(tmp_path):
    out = render_report(_multi(tmp_path), tmp_path / "r.html")
    text = out.read_text()
    right, wrong = _in_sample(text, "mi-right"), _in_sample(text, "mi-wrong")
    for part in (right, wrong):
        assert re.findall(r'data-image="(\d)"', part) == ["1", "2", "3"]
        assert part.count("data:image/jpeg;base64,") == 3
        assert len(re.findall(r'<rect class="gt"', part)) == 1
    # the boxes sit inside the svg of their image
    svg2 = re.search(r'data-image="2".*?</svg>', right).group(0)
    assert '<rect class="gt" x="20.00" y="20.00" width="60.00" height="40.00"' in svg2
    assert '<rect class="pred" x="30.00"' in svg2 and 'viewBox="0 0 100 80"' in svg2
    svg3 = re.search(r'data-image="3".*?</svg>', wrong).group(0)
    assert (
        '<rect class="pred" x="0.00"' in svg3 and 'class="gt"' not in svg3 and 'viewBox="0 0 120 80"' in svg3
    )
    assert "truth 2, predicted 3" in wrong and "truth 2, predicted 2" in right
    assert (
        text.count("data:image/jpeg;base64,") == 6
    )  # an image shown twice is one cached thumbnail each time


def test_video_strip_and_timeline_windows(tmp_path, caplog):
    from vrft.media import video_timestamps

    out = render_report(_video(tmp_path), tmp_path / "r.html")
    text = out.read_text()
    off, long, missing = (_in_sample(text, s) for s in ("tg-off", "tg-long", "tg-missing"))
    times = [float(t) for t in re.findall(r'<img class="frame" data-t="([^"]+)"', off)]
    assert times == video_timestamps(5.0, STRIP_FRAMES / 5.0, STRIP_FRAMES) and len(times) == STRIP_FRAMES
    assert off.count('<line class="tick"') == STRIP_FRAMES
    scale = TIMELINE_UNITS / 5.0
    assert (
        f'class="gt-window" data-start="1" data-end="2.5" x="{1 * scale:.2f}" y="2" width="{1.5 * scale:.2f}"'
        in off
    )
    assert f'class="pred-window" data-start="3" data-end="4.5" x="{3 * scale:.2f}"' in off
    assert (
        f'class="pred-window" data-start="4" data-end="7" x="{4 * scale:.2f}" y="14" width="{1 * scale:.2f}"'
        in long
    )
    assert "1 – 2.5 s" in off and "3 – 4.5 s" in off
    # an unreadable video: the timeline without frames, a warning, no traceback
    assert (
        '<img class="frame"' not in missing and 'class="blank"' in missing and 'class="gt-window"' in missing
    )
    assert 'class="pred-window"' not in missing and "cannot read video" in caplog.text


def test_rows_written_by_the_evaluators_render(tmp_path):
    from vrft.data.records import Record
    from vrft.evaluate.base import norm1000_frame
    from vrft.evaluate.multi_image import MultiImageGroundingEvaluator
    from vrft.evaluate.temporal import TemporalGroundingEvaluator

    folder = _clip(tmp_path)
    video = Record(id="tg", task="temporal_grounding", video=str(folder), fps=2.0, duration=5.0, width=64,
                   height=48, event="it moves", window=[1.0, 2.5])  # fmt: skip
    ev = TemporalGroundingEvaluator(norm1000_frame)
    ev.process([video], ["<think>x</think> <answer>[2, 4]</answer>"])
    paths = _images(tmp_path)
    multi = Record(id="mi", task="multi_image_grounding", images=paths, image_sizes=[[100, 80], [100, 80], [120, 80]],
                   expression="the star", target_image=2, boxes=[[20, 20, 80, 60]])  # fmt: skip
    mv = MultiImageGroundingEvaluator(norm1000_frame)
    mv.process([multi], ['<think>x</think> <answer>{"image": 2, "bbox_2d": [200, 250, 800, 750]}</answer>'])
    rows = json.loads(json.dumps(ev.rows + mv.rows))  # as predictions.jsonl holds them
    text = render_report(rows, tmp_path / "r.html").read_text()
    assert text.count('<img class="frame"') == STRIP_FRAMES
    assert (
        'class="gt-window" data-start="1" data-end="2.5"' in text
        and 'class="pred-window" data-start="2" data-end="4"' in text
    )
    svg2 = re.search(r'data-image="2".*?</svg>', _in_sample(text, "mi")).group(0)
    assert 'class="gt"' in svg2 and 'class="pred"' in svg2


@pytest.mark.browser
def test_browser_renders_images_side_by_side_and_the_timeline(tmp_path):
    need_chromium()
    samples = _multi(tmp_path)[:1] + _video(tmp_path)[:1]
    out = render_report(samples, tmp_path / "report.html", title="media")
    size = "--window-size=1000,1200"
    got, _ = probe_page(
        out,
        "function box(e){var r=e.getBoundingClientRect();return [r.left,r.top,r.width,r.height];}"
        "var out={imgs:[].map.call(document.querySelectorAll('svg[data-image]'),box),"
        "line:box(document.querySelector('svg.timeline')),"
        "frames:[].map.call(document.querySelectorAll('img.frame'),function(i){return i.naturalWidth>0"
        "&&i.getBoundingClientRect().width>0;})};"
        "document.body.setAttribute('data-probe',JSON.stringify(out));",
        "data-probe",
        size,
        "--virtual-time-budget=2000",
    )
    imgs = got["imgs"]
    assert len(imgs) == 3
    assert all(abs(r[1] - imgs[0][1]) < 1 for r in imgs)  # side by side: one row
    assert imgs[0][0] < imgs[1][0] < imgs[2][0] and all(r[2] > 100 for r in imgs)
    assert got["frames"] == [True] * STRIP_FRAMES  # every frame decoded and laid out
    shot = tmp_path / "shot.png"
    _chromium(size, f"--screenshot={shot}", out.as_uri())
    im = Image.open(shot).convert("RGB")

    left, top, width, _ = imgs[1]
    scale = width / 100  # image 2 is 100 x 80 px

    def on_image2(x, y):
        return im.getpixel((round(left + x * scale), round(top + y * scale)))

    assert _close(on_image2(20, 40), GT_COLOR), on_image2(20, 40)  # gt box [20, 20, 80, 60]: left edge
    assert _close(on_image2(60, 10), PRED_COLOR), on_image2(60, 10)  # pred box [30, 10, 90, 70]: top edge
    assert _close(on_image2(50, 40), "#0000ff"), on_image2(50, 40)  # inside: the image
    l1, t1, w1, _ = imgs[0]
    assert _close(
        im.getpixel((round(l1 + 20 * w1 / 100), round(t1 + 40 * w1 / 100))), "#0000ff"
    )  # no box on 1

    tl, tt, tw, th = got["line"]

    def on_line(seconds, row_y):
        return im.getpixel((round(tl + seconds / 5.0 * tw), round(tt + row_y / 28 * th)))

    assert _close(on_line(1.75, 8), GT_COLOR), on_line(1.75, 8)  # true window 1 - 2.5 s, upper row
    assert _close(on_line(3.75, 20), PRED_COLOR), on_line(3.75, 20)  # predicted 3 - 4.5 s, lower row
    assert not _close(on_line(0.5, 8), GT_COLOR) and not _close(on_line(3.75, 8), GT_COLOR)
    assert not _close(on_line(1.75, 20), PRED_COLOR)


def test_video_file_strip_decodes_only_the_sampled_frames(tmp_path):
    """A video FILE (PyAV): 8 frames of a 40-frame clip, at the times the strip names; without a duration
    in the row it is read from the header."""
    pytest.importorskip("av")
    import numpy as np
    from tests.data.test_media import encode_video, frame_index

    from vrft.report.media_html import _frames

    path = encode_video(tmp_path / "v.mp4", n=40, fps=4)  # 10 s; frame i is grey 10 * (i % 25)
    row = {"id": "v", "video": str(path), "gt_window": [2.0, 4.0], "pred_window": [1.0, 3.0]}
    duration, strip = _frames(row, {}, None)
    assert duration == pytest.approx(10.0)
    assert [t for t, _ in strip] == [0.625 + 1.25 * i for i in range(STRIP_FRAMES)]
    import base64
    import io

    for t, uri in strip:  # the frame shown at t is frame floor(t * 4) (grey level names it)
        img = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
        assert img.size[0] * img.size[1] <= 160 * 90
        assert abs(frame_index(img) - int(t * 4) % 25) <= 1, (t, np.asarray(img).mean())
    text = render_report([row], tmp_path / "r.html").read_text()
    assert 'data-duration="10"' in text and text.count('<img class="frame"') == STRIP_FRAMES


def test_vrft_eval_writes_both_figures_into_report_html(tmp_path):
    """`vrft eval --predictions` on temporal_grounding and multi_image_grounding data: report.html holds
    the frame strip with both windows, and the images side by side with both boxes."""
    from vrft.cli import main

    _clip(tmp_path)
    _images(tmp_path)

    def write(name, rows):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
        return str(tmp_path / name)

    video = {"id": "t0", "task": "temporal_grounding", "video": "clip/", "fps": 2.0, "duration": 5.0, "width": 64,
             "height": 48, "event": "it moves", "window": [1.0, 2.5]}  # fmt: skip
    multi = {"id": "m0", "task": "multi_image_grounding", "images": ["img1.png", "img2.png", "img3.png"],
             "image_sizes": [[100, 80], [100, 80], [120, 80]], "expression": "the star", "target_image": 2,
             "boxes": [[20, 20, 80, 60]]}  # fmt: skip
    cases = [
        ("tg", video, "<think>x</think> <answer>[2, 4]</answer>"),
        ("mi", multi, '<think>x</think> <answer>{"image": 3, "bbox_2d": [0, 0, 500, 500]}</answer>'),
    ]
    for name, record, completion in cases:
        data = write(f"{name}.jsonl", [record])
        preds = write(f"{name}-p.jsonl", [{"id": record["id"], "completion": completion}])
        out = tmp_path / f"out-{name}"
        assert main(["eval", "--predictions", preds, "--data", data, "--out", str(out)]) == 0
        text = (out / "report.html").read_text()
        if name == "tg":
            assert text.count('<img class="frame"') == STRIP_FRAMES
            assert 'class="gt-window" data-start="1" data-end="2.5"' in text
            assert 'class="pred-window" data-start="2" data-end="4"' in text
        else:
            assert re.findall(r'data-image="(\d)"', text) == ["1", "2", "3"]
            assert re.search(r'data-image="2".*?<rect class="gt"', text)
            assert re.search(r'data-image="3"[^>]*>(?:(?!</svg>).)*<rect class="pred"', text)


def test_grouped_training_samples_show_the_images_or_the_strip_once(tmp_path):
    """samples.html of a GRPO run on several images / video: one media figure per group, with the truth
    (each completion's answer is in its row), not an empty one-image figure."""
    multi = [{**row, "id": "mi", "record_id": "mi", "step": 1, "group": 0, "advantage": a}
             for row, a in zip(_multi(tmp_path), (0.7, -0.7))]  # fmt: skip
    video = [{**row, "id": "tg", "record_id": "tg", "step": 1, "group": 1, "advantage": 0.0}
             for row in _video(tmp_path)[:2]]  # fmt: skip
    text = render_report(multi + video, tmp_path / "samples.html").read_text()
    first, second = _in_sample(text, "mi"), _in_sample(text, "tg")
    figure = first.split('<div class="info">')[0]
    assert figure.count("<image ") == 3 and GT_COLOR in figure and PRED_COLOR not in figure
    strip = second.split('<div class="info">')[0]
    assert 'class="strip"' in strip and strip.count("<img ") >= 2
    assert "gt-window" in strip and "pred-window" not in strip
    assert "0.700" in first and "-0.700" in first  # one row per completion, with its advantage
