"""LVIS federated rules, through the official LVIS API.

``lvis`` is in the ``test`` extra, so these tests run (never skip) wherever the test suite runs.
"""

from __future__ import annotations

import numpy as np
import pytest

from vrft.evaluate.lvis import _numpy_float_alias, lvis_metrics


def _lvis_gt():
    # cat 1 (rare) and 2 (common) and 3 (frequent).
    # image 1: one GT of cat 1; cat 2 verified absent (negative); cat 3 never checked.
    # image 2: one GT of cat 2, not exhaustively annotated; cat 1 negative.
    return {
        "images": [
            {
                "id": 1,
                "width": 100,
                "height": 100,
                "neg_category_ids": [2],
                "not_exhaustive_category_ids": [],
            },
            {
                "id": 2,
                "width": 100,
                "height": 100,
                "neg_category_ids": [1],
                "not_exhaustive_category_ids": [2],
            },
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 30, 30], "area": 900},
            {"id": 2, "image_id": 2, "category_id": 2, "bbox": [50, 50, 40, 40], "area": 1600},
        ],
        "categories": [
            {"id": 1, "name": "die", "frequency": "r"},
            {"id": 2, "name": "omelet", "frequency": "c"},
            {"id": 3, "name": "cup", "frequency": "f"},
        ],
    }


def _det(img, cat, bbox, score):
    return {"image_id": img, "category_id": cat, "bbox": bbox, "score": score}


def test_perfect_detections_score_100():
    res = [_det(1, 1, [10, 10, 30, 30], 0.9), _det(2, 2, [50, 50, 40, 40], 0.8)]
    m = lvis_metrics(_lvis_gt(), res)
    assert m["AP"] == pytest.approx(100.0)
    assert m["APr"] == pytest.approx(100.0) and m["APc"] == pytest.approx(100.0)
    assert m["APf"] is None  # no GT of the frequent class
    assert m["per_class_AP"] == {"die": pytest.approx(100.0), "omelet": pytest.approx(100.0), "cup": None}


def test_unverified_class_and_not_exhaustive_false_positives_are_not_penalised():
    base = [_det(1, 1, [10, 10, 30, 30], 0.5), _det(2, 2, [50, 50, 40, 40], 0.5)]
    noise = [
        _det(1, 3, [0, 0, 20, 20], 0.99),  # cat 3 never checked in image 1: dropped
        _det(2, 2, [0, 0, 20, 20], 0.99),  # cat 2 not exhaustive in image 2: unmatched, ignored
    ]
    assert lvis_metrics(_lvis_gt(), base + noise)["AP"] == pytest.approx(100.0)


def test_false_positive_on_a_negative_class_costs():
    base = [_det(1, 1, [10, 10, 30, 30], 0.5)]
    fp = [_det(2, 1, [0, 0, 20, 20], 0.99)]  # cat 1 is verified absent in image 2
    assert lvis_metrics(_lvis_gt(), base + fp)["per_class_AP"]["die"] < 100.0


def test_empty_results_and_selection():
    m = lvis_metrics(_lvis_gt(), [], cat_ids=[1])
    assert m["AP"] == 0.0 and m["APr"] == 0.0 and m["APc"] is None
    assert m["per_class_AP"] == {"die": 0.0}
    m = lvis_metrics(_lvis_gt(), [_det(1, 1, [10, 10, 30, 30], 0.9)], cat_ids=[1], img_ids=[1])
    assert m["mAP"] == pytest.approx(100.0) and m["num_images"] == 1


def test_numpy_is_left_as_found():
    import numpy as np

    lvis_metrics(_lvis_gt(), [_det(1, 1, [10, 10, 30, 30], 0.9)])
    assert "float" not in np.__dict__


def test_lvis_records_pipeline_asks_only_evaluated_pairs(tmp_path):
    from vrft.data.records import Record
    from vrft.evaluate.pipeline import score_predictions

    gt = _lvis_gt()
    gt["categories"][1]["name"] = "egg_roll"  # LVIS names use underscores, records use spaces
    common = dict(task="detection", image="x.png", width=100, height=100)
    recs = [
        Record(
            id="a", image_id=1, category="die", boxes=[[10, 10, 40, 40]], meta={"category_id": 1}, **common
        ),
        Record(
            id="b",
            image_id=2,
            category="egg roll",
            boxes=[[50, 50, 90, 90]],
            meta={"category_id": 2},
            **common,
        ),
    ]
    comps = [
        "<answer>[{'Position': [100, 100, 400, 400], 'Confidence': 0.9}]</answer>",
        "<answer>[{'Position': [500, 500, 900, 900], 'Confidence': 0.8}]</answer>",
    ]
    m = score_predictions(recs, comps, "detection", tmp_path / "o", gt=gt, lvis=True)["detection"]
    # asked: (1, die) and (2, egg roll) from the records; (1, egg roll) is a verified negative -> added;
    # (2, die) is a verified negative -> added. Nothing else exists.
    assert m["num_queries"] == 4 and m["num_asked"] == 2
    assert m["AP"] == pytest.approx(100.0) and m["APr"] == pytest.approx(100.0)
    assert set(m["per_class_AP"]) == {"die", "egg_roll"}


def test_numpy_float_shim_does_not_leak():
    import lvis  # noqa: F401  (installed by the test extra: a missing package fails here, not skips)

    before = hasattr(np, "float")
    m = lvis_metrics(_lvis_gt(), [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 30, 30], "score": 0.9}])
    assert m["per_class_AP"]["die"] == pytest.approx(
        100.0
    )  # accumulate() ran (it is the call that needs np.float)
    assert hasattr(np, "float") == before
    with pytest.raises(RuntimeError), _numpy_float_alias():  # restored also when the evaluation raises
        assert np.float is float  # type: ignore[attr-defined]
        raise RuntimeError("boom")
    assert hasattr(np, "float") == before


def _area_gt():
    # one class with a small (20x20), a medium (50x50) and a large (150x150) instance
    return {
        "images": [
            {"id": i, "width": 200, "height": 200, "neg_category_ids": [], "not_exhaustive_category_ids": []}
            for i in (1, 2, 3)
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400},
            {"id": 2, "image_id": 2, "category_id": 1, "bbox": [20, 20, 50, 50], "area": 2500},
            {"id": 3, "image_id": 3, "category_id": 1, "bbox": [10, 10, 150, 150], "area": 22500},
        ],
        "categories": [{"id": 1, "name": "egg_roll", "frequency": "r"}],
    }


def test_per_class_ap_averaged_over_the_four_areas_as_the_reference_notebook(tmp_path):
    """area='average' equals the reference's scoring notebook: np.mean of precision[:, :, k, :] over the
    values > -1 (all four area ranges pooled); area='all' (the default) is area range 0 only."""
    import copy
    import json

    import numpy as np
    from lvis import LVIS, LVISEval, LVISResults

    res = [
        _det(1, 1, [10, 10, 20, 20], 0.9),  # small: exact
        _det(2, 1, [25, 25, 50, 50], 0.3),  # medium: IoU ~0.68, low score
        _det(3, 1, [100, 100, 90, 90], 0.8),  # large: a miss (false positive, large)
        _det(3, 1, [10, 10, 140, 150], 0.2),  # large: IoU 0.93, lowest score
    ]
    gt = _area_gt()
    avg = lvis_metrics(gt, res, area="average")
    every = lvis_metrics(gt, res)
    assert every["per_class_area"] == "all" and avg["per_class_area"] == "average"

    path = tmp_path / "lvis_gt.json"
    path.write_text(json.dumps(gt))
    api = LVIS(str(path))
    ev = LVISEval(api, LVISResults(api, copy.deepcopy(res), max_dets=300), "bbox")
    added = "float" not in np.__dict__  # lvis 0.5.3 still calls np.float
    if added:
        np.float = float
    try:
        ev.run()
    finally:
        if added:
            del np.float
    precision = ev.eval["precision"][:, :, 0, :]  # the notebook: precisions[:, :, idx, :]
    assert precision.shape[-1] == 4
    notebook = float(np.mean(precision[precision > -1]) * 100)
    area_all = ev.eval["precision"][:, :, 0, 0]
    assert avg["per_class_AP"]["egg_roll"] == pytest.approx(notebook, abs=1e-9)
    assert avg["mAP"] == pytest.approx(notebook, abs=1e-9)
    assert every["per_class_AP"]["egg_roll"] == pytest.approx(float(np.mean(area_all[area_all > -1]) * 100))
    assert abs(notebook - every["per_class_AP"]["egg_roll"]) > 1.0  # the fixture tells them apart
    assert avg["AP"] == every["AP"]  # LVIS's own summary numbers do not change
    with pytest.raises(Exception, match="area"):
        lvis_metrics(gt, res, area="small")
