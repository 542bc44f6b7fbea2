"""coco_metrics must equal pycocotools run directly on the same detections (to 1e-6)."""

from __future__ import annotations

import contextlib
import copy
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from vrft.data.records import Record
from vrft.errors import DataError
from vrft.evaluate.coco import coco_metrics, gt_from_records, to_result


def _gt(images, anns, cats):
    return {
        "images": [{"id": i, "width": w, "height": h} for i, (w, h) in images.items()],
        "annotations": [
            {
                "id": k + 1,
                "image_id": i,
                "category_id": c,
                "bbox": [x, y, w, h],
                "area": w * h,
                "iscrowd": 0,
            }
            for k, (i, c, (x, y, w, h)) in enumerate(anns)
        ],
        "categories": [{"id": c, "name": n} for c, n in cats.items()],
    }


def _direct(gt, results, cat_ids=None, img_ids=None):
    """pycocotools exactly as its README uses it: stats[0..2] as fractions."""
    with contextlib.redirect_stdout(io.StringIO()):
        api = COCO()
        api.dataset = copy.deepcopy(gt)
        api.createIndex()
        dt = api.loadRes(copy.deepcopy(results))
        ev = COCOeval(api, dt, "bbox")
        if cat_ids is not None:
            ev.params.catIds = cat_ids
        if img_ids is not None:
            ev.params.imgIds = img_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return list(ev.stats[:3])


CATS = {1: "cat", 2: "dog", 3: "toaster"}
IMAGES = {10: (640, 480), 11: (320, 240), 12: (500, 500), 13: (400, 300)}
ANNS = [
    (10, 1, (10, 10, 100, 80)),
    (10, 1, (200, 150, 50, 60)),
    (10, 2, (300, 200, 120, 100)),
    (11, 2, (5, 5, 60, 60)),
    (11, 2, (100, 100, 80, 90)),
    (12, 1, (50, 60, 200, 150)),
    (12, 3, (0, 0, 40, 40)),
    # image 13 has no ground truth at all
]
RESULTS = [
    {"image_id": 10, "category_id": 1, "bbox": [12, 11, 98, 80], "score": 0.9},
    {"image_id": 10, "category_id": 1, "bbox": [400, 400, 30, 30], "score": 0.8},
    {"image_id": 10, "category_id": 1, "bbox": [205, 150, 40, 62], "score": 0.3},
    {"image_id": 10, "category_id": 2, "bbox": [290, 190, 130, 110], "score": 0.7},
    {"image_id": 11, "category_id": 2, "bbox": [6, 4, 58, 62], "score": 0.6},
    {"image_id": 12, "category_id": 1, "bbox": [60, 70, 150, 120], "score": 0.95},
    {"image_id": 13, "category_id": 1, "bbox": [10, 10, 50, 50], "score": 0.99},
    # no detection of 'toaster' at all, nothing for image 11's second dog
]


def test_equals_pycocotools_several_classes_and_boxes():
    gt = _gt(IMAGES, ANNS, CATS)
    ours = coco_metrics(gt, RESULTS)
    direct = _direct(gt, RESULTS)
    for key, value in zip(("AP", "AP50", "AP75"), direct):
        assert ours[key] == pytest.approx(100 * value, abs=1e-6)
    per_class = []
    for cid, name in CATS.items():
        ap = _direct(gt, RESULTS, cat_ids=[cid])[0]
        assert ours["per_class_AP"][name] == pytest.approx(100 * ap, abs=1e-6)
        per_class.append(100 * ap)
    assert ours["per_class_AP"]["toaster"] == 0.0
    assert ours["mAP"] == pytest.approx(sum(per_class) / 3, abs=1e-6)
    assert ours["mAP"] == pytest.approx(ours["AP"], abs=1e-6)
    assert ours["num_detections"] == len(RESULTS)


def test_selected_classes_and_images_equal_pycocotools_restricted():
    gt = _gt(IMAGES, ANNS, CATS)
    ours = coco_metrics(gt, RESULTS, img_ids=[10, 11, 13], cat_ids=[1, 2])
    direct = _direct(gt, RESULTS, cat_ids=[1, 2], img_ids=[10, 11, 13])
    assert ours["AP"] == pytest.approx(100 * direct[0], abs=1e-6)
    assert set(ours["per_class_AP"]) == {"cat", "dog"}
    assert ours["num_classes_with_gt"] == 2


def test_empty_predictions_give_zero_ap_and_no_gt_gives_none():
    gt = _gt(IMAGES, ANNS, CATS)
    ours = coco_metrics(gt, [])
    assert ours["AP"] == 0.0 and ours["mAP"] == 0.0 and ours["AP50"] == 0.0
    assert ours["per_class_AP"] == {"cat": 0.0, "dog": 0.0, "toaster": 0.0}
    # Only image 13 (no GT) selected: every AP is undefined, detections there or not.
    only_neg = coco_metrics(gt, RESULTS, img_ids=[13])
    assert only_neg["AP"] is None and only_neg["mAP"] is None
    assert only_neg["per_class_AP"] == {"cat": None, "dog": None, "toaster": None}


def test_class_without_gt_is_excluded_from_map():
    gt = _gt(IMAGES, [a for a in ANNS if a[1] != 3], CATS)
    ours = coco_metrics(gt, RESULTS)
    assert ours["per_class_AP"]["toaster"] is None
    assert ours["mAP"] == pytest.approx((ours["per_class_AP"]["cat"] + ours["per_class_AP"]["dog"]) / 2)
    assert ours["num_classes_with_gt"] == 2


def _rec(rid, image_id, category, boxes, w=640, h=480):
    return Record(
        id=rid,
        task="detection",
        image=f"{image_id}.jpg",
        width=w,
        height=h,
        image_id=image_id,
        category=category,
        boxes=boxes,
    )


def test_gt_from_records_merges_images_and_keeps_negatives():
    recs = [
        _rec("a", 5, "cat", [[10, 10, 50, 40]]),
        _rec("b", 5, "dog", [[0, 0, 10, 10], [20, 20, 30, 35]]),
        _rec("c", 7, "cat", []),
        _rec("d", 5, "cat", [[10, 10, 50, 40]]),  # duplicate of "a": ignored
    ]
    gt, ids = gt_from_records(recs)
    assert ids == {5: 5, 7: 7}
    assert [c["name"] for c in gt["categories"]] == ["cat", "dog"]
    assert len(gt["images"]) == 2 and len(gt["annotations"]) == 3
    assert gt["annotations"][0]["bbox"] == [10.0, 10.0, 40.0, 30.0]
    res = [
        to_result(5, 1, [10, 10, 50, 40], 0.5),
        to_result(5, 2, [0, 0, 10, 10], 0.5),
        to_result(5, 2, [20, 20, 30, 35], 0.4),
    ]
    assert coco_metrics(gt, res)["AP"] == pytest.approx(100.0)


def test_gt_from_records_rejects_conflicting_duplicates_and_sizes():
    with pytest.raises(DataError, match="different boxes"):
        gt_from_records([_rec("a", 5, "cat", [[1, 1, 5, 5]]), _rec("b", 5, "cat", [])])
    with pytest.raises(DataError, match="must agree"):
        gt_from_records([_rec("a", 5, "cat", []), _rec("b", 5, "dog", [], w=100)])


def test_string_image_ids_are_numbered():
    recs = [_rec("a", "img-x", "cat", [[1, 1, 5, 5]]), _rec("b", "img-y", "cat", [])]
    gt, ids = gt_from_records(recs)
    assert ids == {"img-x": 1, "img-y": 2}


box = st.tuples(
    st.floats(0, 200, allow_nan=False),
    st.floats(0, 200, allow_nan=False),
    st.floats(1, 100, allow_nan=False),
    st.floats(1, 100, allow_nan=False),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    gts=st.lists(st.tuples(st.sampled_from([1, 2]), st.sampled_from([1, 2]), box), min_size=1, max_size=8),
    dts=st.lists(
        st.tuples(st.sampled_from([1, 2]), st.sampled_from([1, 2]), box, st.floats(0, 1, allow_nan=False)),
        min_size=1,
        max_size=10,
    ),
)
def test_property_equals_pycocotools(gts, dts):
    gt = _gt({1: (300, 300), 2: (300, 300)}, [(i, c, b) for i, c, b in gts], {1: "a", 2: "b"})
    results = [{"image_id": i, "category_id": c, "bbox": list(b), "score": s} for i, c, b, s in dts]
    ours = coco_metrics(gt, results)
    direct = _direct(gt, results)
    for key, value in zip(("AP", "AP50", "AP75"), direct):
        expected = None if value < 0 else 100 * value
        assert ours[key] == pytest.approx(expected, abs=1e-6)


def test_coco_box_conversions_go_through_vrft_boxes(monkeypatch):
    """Issue 23: vrft.boxes is 'the only module that converts'; evaluate/coco.py used its own xyxy->xywh."""
    import vrft.boxes
    import vrft.evaluate.coco as coco
    from vrft.data.records import Record

    calls = []
    monkeypatch.setattr(coco, "xyxy_to_xywh", lambda b: calls.append(list(b)) or vrft.boxes.xyxy_to_xywh(b))
    assert coco.to_result(1, 2, [1, 2, 4, 6], 0.5)["bbox"] == [1.0, 2.0, 3.0, 4.0]
    rec = Record(id="r", task="detection", image="a.png", width=10, height=10, image_id=1, category="c",
                 boxes=[[1, 1, 3, 5]])  # fmt: skip
    gt, _ = coco.gt_from_records([rec])
    assert gt["annotations"][0]["bbox"] == [1.0, 1.0, 2.0, 4.0] and gt["annotations"][0]["area"] == 8.0
    assert calls == [[1, 2, 4, 6], [1.0, 1.0, 3.0, 5.0]]
