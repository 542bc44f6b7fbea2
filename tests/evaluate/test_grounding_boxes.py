"""A grounding record with several target boxes: any box counts, in the reward, the metric, `vrft score`
and validate alike (issue 19 §2: eval scored only the first)."""

from __future__ import annotations

import json

import pytest

from vrft.boxes import Frame
from vrft.data.records import Record, save_records
from vrft.evaluate.pipeline import score_predictions
from vrft.rewards import REWARDS
from vrft.tasks import TASKS

FIRST, SECOND = [10, 10, 50, 50], [100, 60, 180, 140]


def _record(tmp_path) -> Record:
    return Record(id="g0", task="grounding", image="x.png", width=200, height=150, expression="a cup",
                  boxes=[FIRST, SECOND])  # fmt: skip


def _answer(box) -> str:
    x1, y1, x2, y2 = Frame(200, 150).encode(box)
    return f"<think>t</think> <answer>({x1},{y1}),({x2},{y2})</answer>"


@pytest.mark.parametrize("box", [FIRST, SECOND])
def test_any_target_box_counts_in_reward_and_metric(tmp_path, box):
    rec, frame = _record(tmp_path), Frame(200, 150)
    columns = TASKS["grounding"].reward_columns(rec, frame)
    assert len(columns["gt_boxes"]) == 2
    completion = _answer(box)
    for name in ("grounding_iou", "grounding_giou"):
        assert REWARDS[name]([completion], gt_boxes=[columns["gt_boxes"]])[0] == pytest.approx(1.0)
    assert REWARDS["grounding_giou_plus1"]([completion], gt_boxes=[columns["gt_boxes"]])[0] == 2.0
    m = score_predictions([rec], [completion], "grounding")["grounding"]
    assert m["mIoU"] == pytest.approx(100.0, abs=1.0) and m["acc@0.5"] == 100.0


def test_validate_and_score_accept_several_boxes(tmp_path, capsys):
    from PIL import Image

    from vrft.cli import main

    Image.new("RGB", (200, 150)).save(tmp_path / "x.png")
    save_records([_record(tmp_path)], tmp_path / "g.jsonl")
    assert main(["data", "validate", str(tmp_path / "g.jsonl")]) == 0
    line = {"completion": _answer(SECOND), "gt_boxes": [FIRST, SECOND], "width": 200, "height": 150}
    (tmp_path / "s.jsonl").write_text(json.dumps(line) + "\n")
    capsys.readouterr()
    assert main(["score", "grounding", str(tmp_path / "s.jsonl")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rewards"]["iou"] == pytest.approx(1.0)
