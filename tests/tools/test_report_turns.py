"""report.html shows an answer's turns and the images its tools returned, checked in a real browser."""

from __future__ import annotations

import pytest
from PIL import Image
from tests.report.test_html import _chromium, need_chromium, probe_page

from vrft.report.html import render_report
from vrft.tools.generate import tool_thumbnails


def _sample(tmp_path):
    image = tmp_path / "a.png"
    Image.new("RGB", (64, 64), "white").save(image)
    zoom = Image.new("RGB", (200, 100), (255, 0, 0))
    completion = [
        {"role": "assistant", "content": "<think>look</think>",
         "tool_calls": [{"type": "function", "function": {"name": "zoom_in", "arguments": {"bbox_2d": [0, 0, 500, 500]}}}]},
        {"role": "tool", "name": "zoom_in", "content": [{"type": "image", "image": zoom}, {"type": "text", "text": "zoomed"}]},
        {"role": "assistant", "content": "<think>red</think> <answer>square</answer>"},
    ]  # fmt: skip
    from vrft.tools.stats import transcript

    return {
        "id": "s-tools", "image": str(image), "width": 64, "height": 64, "task": "classification",
        "completion": "<think>red</think> <answer>square</answer>", "turns": transcript(completion), "tool_calls": 1,
        "tool_images": tool_thumbnails(completion), "score": 1.0,
    }  # fmt: skip


def test_thumbnails_are_small_pngs_and_nothing_else_is_embedded(tmp_path):
    sample = _sample(tmp_path)
    (uri,) = sample["tool_images"]
    assert uri.startswith("data:image/png;base64,") and len(uri) < 4000
    hostile = {**sample, "id": "s-hostile", "tool_images": ['x" onerror="alert(1)', "data:text/html,<b>"]}
    page = render_report([sample, hostile], tmp_path / "r.html", title="t", base_dir=tmp_path).read_text()
    assert page.count('alt="tool image 1"') == 1 and "onerror" not in page and "data:text/html" not in page
    assert "turns (1 tool call)" in page and "&lt;tool_call&gt;" in page


@pytest.mark.browser
def test_the_turns_and_the_tool_image_show_in_chromium(tmp_path):
    need_chromium()
    out = render_report([_sample(tmp_path)], tmp_path / "report.html", title="tools", base_dir=tmp_path)
    (natural_w, natural_h, w, h, is_open, turns_h), _ = probe_page(
        out,
        "window.addEventListener('load',function(){var i=document.querySelector('.tool-images img');"
        "var t=document.querySelector('details.turns');var r=i.getBoundingClientRect();"
        "document.body.setAttribute('data-probe',JSON.stringify([i.naturalWidth,i.naturalHeight,r.width,"
        "r.height,t.open,t.querySelector('pre').getBoundingClientRect().height]));});",
        "data-probe",
        "--window-size=900,900",
        "--virtual-time-budget=2000",
    )
    assert (natural_w, natural_h) == (128, 64) and w > 0 and h > 0  # the zoom, decoded and laid out
    assert is_open and turns_h > 0  # the turns are shown, not folded away
    shot = tmp_path / "shot.png"
    _chromium("--window-size=900,900", f"--screenshot={shot}", out.as_uri())
    pixels = Image.open(shot).convert("RGB").getdata()
    assert sum(1 for p in pixels if p[0] > 200 and p[1] < 60 and p[2] < 60) > 500  # the red zoom is on screen
