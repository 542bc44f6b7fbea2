"""score_predictions: metrics.json equals pycocotools run directly; classification and grounding."""

from __future__ import annotations

import contextlib
import copy
import io
import json

import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from vrft.data.records import Record
from vrft.evaluate.pipeline import score_predictions

from .conftest import ANSWERS, CATEGORIES, IMAGES, answers_text, coco_gt, detection_records


def _pycocotools(gt, results, cat_ids):
    with contextlib.redirect_stdout(io.StringIO()):
        api = COCO()
        api.dataset = copy.deepcopy(gt)
        api.createIndex()
        dt = api.loadRes(copy.deepcopy(results))
        ev = COCOeval(api, dt, "bbox")
        ev.params.catIds = cat_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


def _expected_results():
    """The detections written by hand from ANSWERS: 0..1000 -> pixels, xywh, confidence as score."""
    out = []
    for (iid, cat), items in ANSWERS.items():
        w, h = IMAGES[iid]
        for (x1, y1, x2, y2), conf in items:
            px = [x1 / 1000 * w, y1 / 1000 * h, x2 / 1000 * w, y2 / 1000 * h]
            out.append(
                {
                    "image_id": iid,
                    "category_id": CATEGORIES.index(cat) + 1,
                    "bbox": [px[0], px[1], px[2] - px[0], px[3] - px[1]],
                    "score": conf,
                }
            )
    return out


@pytest.mark.parametrize("use_gt_file", [False, True])
def test_detection_metrics_equal_pycocotools(tmp_path, use_gt_file):
    recs = detection_records(tmp_path)
    texts = answers_text()
    comps = [texts.get((r.image_id, r.category)) for r in recs]
    m = score_predictions(recs, comps, "detection", tmp_path / "out", gt=coco_gt() if use_gt_file else None)
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert written["detection"] == m["detection"]
    det = written["detection"]
    stats = _pycocotools(coco_gt(), _expected_results(), [1, 2, 3])
    assert det["AP"] == pytest.approx(100 * stats[0], abs=1e-6)
    assert det["AP50"] == pytest.approx(100 * stats[1], abs=1e-6)
    assert det["AP75"] == pytest.approx(100 * stats[2], abs=1e-6)
    assert det["AP50"] > det["AP75"]  # the fixture has a box with IoU 0.63
    for k, cat in enumerate(CATEGORIES):
        one = _pycocotools(coco_gt(), _expected_results(), [k + 1])
        assert det["per_class_AP"][cat] == pytest.approx(100 * one[0], abs=1e-6)
    assert det["mAP"] == pytest.approx(sum(det["per_class_AP"].values()) / 3, abs=1e-6)
    assert det["num_queries"] == 9 and det["num_asked"] == 9
    assert det["num_parse_fail"] == 1 and det["parse_fail"] == pytest.approx(100 / 9)
    results = json.loads((tmp_path / "out" / "coco_results.json").read_text())
    assert len(results) == len(_expected_results())

    def key(r):
        return (r["image_id"], r["score"])  # scores are unique per image in the fixture

    for ours, ref in zip(sorted(results, key=key), sorted(_expected_results(), key=key)):
        assert ours["bbox"] == pytest.approx(ref["bbox"]) and ours["score"] == ref["score"]
        if use_gt_file:  # records-built GT numbers categories by sorted name instead
            assert ours["category_id"] == ref["category_id"]
    rows = [json.loads(x) for x in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [r.id for r in recs]
    row = next(r for r in rows if r["id"] == "d-1-cat")
    assert row["parsed"]["scores"] == [0.9, 0.6, 0.95] and row["rewards"]["format"] == 1.0
    assert 0 < row["score"] <= 1
    assert (tmp_path / "out" / "report.html").stat().st_size > 1000


def test_missing_pairs_count_as_no_detections(tmp_path):
    """Only positive records given and some not answered: the all-categories protocol still asks
    every (image, category); unanswered pairs contribute no boxes."""
    recs = detection_records(tmp_path, exhaustive=False)
    texts = answers_text()
    comps = [texts.get((r.image_id, r.category)) for r in recs]
    # image 3 has no positive record, so it is not an evaluated image: drop its answers from the reference.
    expected = [r for r in _expected_results() if r["image_id"] in (1, 2)]
    # Unanswered pairs (1, bird) and (2, cat) add nothing; (1, bird) was a false positive in ANSWERS.
    expected = [r for r in expected if (r["image_id"], r["category_id"]) != (1, 3)]
    m = score_predictions(recs, comps, "detection", None)["detection"]
    gt = coco_gt()
    gt["images"] = [i for i in gt["images"] if i["id"] in (1, 2)]
    stats = _pycocotools(gt, expected, [1, 2, 3])
    assert m["AP"] == pytest.approx(100 * stats[0], abs=1e-6)
    assert m["num_queries"] == 6 and m["num_asked"] == len(recs)


def test_empty_predictions_and_empty_ground_truth(tmp_path):
    recs = detection_records(tmp_path)
    none = "<think>x</think> <answer>No Objects</answer>"
    m = score_predictions(recs, [none] * len(recs), "detection", None)["detection"]
    assert m["AP"] == 0.0 and m["mAP"] == 0.0 and m["num_detections"] == 0 and m["parse_fail"] == 0.0
    only3 = [r for r in recs if r.image_id == 3]
    m = score_predictions(only3, [none] * 3, "detection", None)["detection"]
    assert m["AP"] is None and m["mAP"] is None and m["num_classes_with_gt"] == 0
    assert m["mean_iou_reward"] == 100.0  # No Objects on empty GT is rewarded (reference defect 3 fixed)


def test_presence_stats_and_not_asked(tmp_path):
    recs = detection_records(tmp_path)
    texts = answers_text()
    presence = [bool(r.boxes) or r.image_id == 3 for r in recs]
    comps = [texts.get((r.image_id, r.category)) if p else None for r, p in zip(recs, presence)]
    m = score_predictions(recs, comps, "detection", None, presence=presence)["detection"]
    assert m["num_asked"] == sum(presence)
    assert m["presence"]["recall"] == 100.0
    assert m["presence"]["precision"] == pytest.approx(100 * 4 / 7)  # 4 positive pairs, 3 wrong yes


def _cls(i, label, aliases=None):
    return Record(id=f"c{i}", task="classification", image="x.png", width=10, height=10, label=label,
                  aliases=aliases, domain={"object": "car", "attribute": "model"})  # fmt: skip


def test_classification_exact_and_substring_accuracy():
    recs = [
        _cls(0, "Audi A4 2012"),
        _cls(1, "Boeing 737-800"),
        _cls(2, "rose", ["garden rose"]),
        _cls(3, "tulip"),
    ]
    comps = [
        "<think>a car</think><answer>Audi</answer>",  # substring only
        "<think>x</think><answer>boeing 737-800.</answer>",  # exact after normalisation
        "<think>x</think><answer>Garden_Rose</answer>",  # alias
        "no tags tulip",  # parse failure
    ]
    m = score_predictions(recs, comps, "classification", None)["classification"]
    assert m["accuracy"] == pytest.approx(50.0)
    assert m["substring_accuracy"] == pytest.approx(75.0)
    assert m["parse_fail"] == pytest.approx(25.0) and m["num_samples"] == 4
    assert m["per_class_accuracy"]["Audi A4 2012"] == 0.0
    lenient = score_predictions(recs, comps, "classification", None, require_tags=False)["classification"]
    assert lenient["parse_fail"] == 0.0


def test_grounding_miou_and_accuracy():
    recs = [
        Record(
            id=f"g{i}",
            task="grounding",
            image="x.png",
            width=200,
            height=100,
            expression="the thing",
            boxes=[[20, 10, 120, 60]],
        )  # fmt: skip
        for i in range(3)
    ]
    comps = [
        "<think>x</think> <answer>(100,100),(600,600)</answer>",  # exact: [20,10,120,60]
        "<think>x</think> <answer>(100,100),(350,600)</answer>",  # half the width: IoU 0.5
        "<think>x</think> <answer>none</answer>",
    ]
    m = score_predictions(recs, comps, "grounding", None)["grounding"]
    assert m["mIoU"] == pytest.approx(100 * (1 + 0.5) / 3)
    assert m["acc@0.5"] == pytest.approx(200 / 3)
    assert m["box_cIoU"] == pytest.approx(100 * (5000 + 2500) / (5000 + 5000 + 5000))
    assert m["parse_fail"] == pytest.approx(100 / 3)


def test_lenient_parse_reaches_accuracy_iou_and_the_report_score(tmp_path):
    # untagged answers: a bare label, an answer after </think>, an unclosed <answer>
    recs = [_cls(0, "tulip"), _cls(1, "rose"), _cls(2, "daisy"), _cls(3, "iris")]
    comps = ["tulip", "<think>petals</think> Rose", "<answer>daisy", "<think>x</think><answer>lily</answer>"]
    strict = score_predictions(recs, comps, "classification", None)["classification"]
    assert strict["accuracy"] == 0.0 and strict["parse_fail"] == 75.0
    out = tmp_path / "cls"
    lenient = score_predictions(recs, comps, "classification", out, require_tags=False, report=False)
    m = lenient["classification"]
    assert m["accuracy"] == 75.0 and m["substring_accuracy"] == 75.0 and m["parse_fail"] == 0.0
    assert m["per_class_accuracy"] == {"daisy": 100.0, "iris": 0.0, "rose": 100.0, "tulip": 100.0}
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["score"] for r in rows] == [1.0, 1.0, 1.0, 0.0]  # the report sorts by these
    # issue 22: the rewards are read on the score's basis (leniently); format still scores the tags as written
    assert [r["rewards"]["classification_exact"] for r in rows] == [r["score"] for r in rows]
    assert [r["rewards"]["format"] for r in rows] == [0.0, 0.0, 0.0, 1.0]

    # detection: an exact box without tags (image 1, 200x100; dog [70, 5, 120, 60] = 0..1000 [350, 50, 600, 600])
    det = [r for r in detection_records(tmp_path / "det") if r.image_id == 1 and r.category == "dog"]
    text = ["<think>a dog</think> [{'Position': [350, 50, 600, 600], 'Confidence': 0.9}]"]
    strict = score_predictions(det, text, "detection", None, report=False)["detection"]
    assert strict["mean_iou_reward"] == 0.0 and strict["parse_fail"] == 100.0 and strict["AP50"] == 0.0
    out = tmp_path / "det_out"
    lenient = score_predictions(det, text, "detection", out, require_tags=False, report=False)["detection"]
    assert lenient["mean_iou_reward"] == pytest.approx(100.0) and lenient["AP50"] == pytest.approx(100.0)
    row = json.loads((out / "predictions.jsonl").read_text())
    assert row["score"] == pytest.approx(1.0) and row["rewards"]["detection_iou"] == pytest.approx(1.0)
    assert row["rewards"]["format"] == 0.0  # no <answer> tags as written
