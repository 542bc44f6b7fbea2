"""Training samples grouped by prompt (one image per GRPO group), and box labels that do not overlap."""

from __future__ import annotations

import re

from PIL import Image

from vrft.report.html import _rects, render_report


def _row(step, group, i, score, adv, box=None, ok=True):
    return {
        "step": step, "record_id": f"r{group}", "id": f"r{group}", "group": group, "image": "img.png",
        "width": 100, "height": 80, "task": "detection", "query": "circle", "gt_boxes": [[10, 10, 40, 40]],
        "completion": f"<think>t{i}</think><answer>a{i}</answer>", "pred_boxes": [box] if box else [],
        "parse_ok": ok, "reason": "" if ok else "no answer",
        "rewards": {"format": 1.0, "detection_iou": score - 1.0}, "score": score, "advantage": adv,
    }  # fmt: skip


def test_samples_html_shows_one_image_per_group_with_rewards_and_advantages(tmp_path):
    Image.new("RGB", (100, 80), "white").save(tmp_path / "img.png")
    rows = [
        _row(1, 0, 0, 1.5, 0.87, [12, 12, 40, 40]), _row(1, 0, 1, 1.0, -0.87, [50, 50, 90, 70]),
        _row(1, 1, 0, 1.0, 0.0), _row(1, 1, 1, 1.0, 0.0),
        _row(5, 0, 0, 0.0, 0.0, ok=False), _row(5, 0, 1, 0.0, 0.0, ok=False),
    ]  # fmt: skip
    text = render_report(rows, tmp_path / "samples.html", base_dir=tmp_path).read_text()
    assert text.count('<svg class="fig"') == 3  # 6 completions, 3 groups: one image each
    blocks = text.split('<div class="sample"')[1:]
    assert len(blocks) == 3
    first = blocks[0]
    assert "0.870" in first and "-0.870" in first and "advantage" in first  # each completion's advantage
    assert first.count("<tr><td") == 2 and "detection_iou" in first and "<th>label</th>" not in first
    assert re.search(r"<text [^>]*>#1</text>", first) and re.search(r"<text [^>]*>#2</text>", first)
    assert "flat group" not in first and "flat group" in blocks[1] and "flat group" in blocks[2]
    assert 'data-fail="1"' in blocks[2] and "failed (no answer)" in blocks[2]


def test_box_labels_do_not_overlap():
    boxes = [[10, 10, 50, 50], [11, 11, 50, 50], [12, 10, 60, 40]]
    svg = "".join(_rects(boxes, "#f00", "pred", ["0.90", "0.85", "0.80"], font=10.0))
    spots = [(float(x), float(y)) for x, y in re.findall(r'<text x="([\d.]+)" y="([\d.]+)"', svg)]
    assert len(spots) == 3
    for i in range(3):
        for j in range(i + 1, 3):
            (xa, ya), (xb, yb) = spots[i], spots[j]
            assert abs(ya - yb) >= 10.0 or abs(xa - xb) >= 0.62 * 10 * 4, (spots[i], spots[j])
