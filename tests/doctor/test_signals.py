import math

import pytest

from vrft.doctor.signals import (
    GroupSignals,
    group_signals,
    parse_failure_reasons,
    top_reasons,
    truncation_share,
)


def test_group_signals_counts_flat_groups_and_within_sd():
    # two groups of 4: the first flat, the second [0, 0, 1, 1] (population sd 0.5)
    s = group_signals([0.3, 0.3, 0.3, 0.3, 0.0, 0.0, 1.0, 1.0], 4)
    assert s == GroupSignals(zero_sd_share=0.5, mean_within_sd=0.25, n_groups=2)


def test_group_signals_uses_consecutive_order_not_interleaved():
    # TRL order: G consecutive completions per prompt. Interleaved reading would find no flat group.
    s = group_signals([1.0, 1.0, 0.0, 0.0], 2)
    assert s.zero_sd_share == 1.0 and s.mean_within_sd == 0.0


def test_group_signals_tolerance():
    assert group_signals([0.5, 0.5 + 1e-12], 2).zero_sd_share == 1.0
    assert group_signals([0.5, 0.5 + 1e-6], 2).zero_sd_share == 0.0


def test_group_signals_group_of_one_is_always_flat():
    s = group_signals([0.0, 1.0, 0.5], 1)
    assert s == GroupSignals(zero_sd_share=1.0, mean_within_sd=0.0, n_groups=3)


def test_group_signals_empty_and_partial():
    assert group_signals([], 4) == GroupSignals(0.0, 0.0, 0)
    assert group_signals([1.0, 0.0, 1.0], 4) == GroupSignals(0.0, 0.0, 0)
    # trailing partial group ignored
    assert group_signals([1.0, 1.0, 0.0], 2).n_groups == 1


def test_group_signals_nan_free():
    s = group_signals([float("nan"), 0.0, float("inf"), 1.0], 2)
    assert math.isfinite(s.zero_sd_share) and math.isfinite(s.mean_within_sd)
    assert s.zero_sd_share == 0.5  # [nan->0, 0] flat, [inf->0, 1] not


def test_group_signals_rejects_bad_group_size():
    with pytest.raises(ValueError):
        group_signals([1.0], 0)


def test_truncation_share():
    assert truncation_share([10, 32, 40, 5], 32) == 0.5
    assert truncation_share([], 32) == 0.0
    assert truncation_share([31], 32) == 0.0


def test_parse_failure_reasons_excludes_ok_and_orders():
    counts = parse_failure_reasons(["ok", "no answer", "no box", "no answer", "", "ok"])
    assert counts == {"no answer": 2, "no box": 1}
    assert list(counts) == ["no answer", "no box"]
    assert parse_failure_reasons([]) == {}
    assert parse_failure_reasons(iter(["ok"])) == {}


def test_top_reasons():
    counts = {"b": 2, "a": 2, "c": 5}
    assert top_reasons(counts, 2) == [("c", 5), ("a", 2)]
    assert top_reasons(counts, 0) == []
    assert top_reasons({}, 3) == []


def test_parse_failure_reasons_takes_predictions():
    from vrft.tasks.base import Prediction

    preds = [
        Prediction(task="detection", ok=True),
        Prediction(task="detection", ok=False, reason="no answer"),
    ]
    assert parse_failure_reasons(preds) == {"no answer": 1}
