"""The verdict rules on hand-made report figures: each names the config key of its fix."""

from __future__ import annotations

from types import SimpleNamespace

from vrft.doctor.verdict import findings


def cfg(**grpo):
    g = {"temperature": 1.0, "max_completion_length": 64, "num_generations": 4, **grpo}
    return SimpleNamespace(grpo=SimpleNamespace(**g))


def report(flat=0.25, trunc=0.0, parse=0.0, rewards=None, convention=None, prompt=None):
    return {
        "learning_signal": {"zero_sd_share": flat, "mean_within_sd": 0.3},
        "rewards": rewards or {"iou": {"weight": 1.0, "zero_sd_share": flat, "nan_share": 0.0}},
        "truncation": {"share": trunc},
        "parse": {"rate": parse, "top_reasons": [{"reason": "no answer", "count": 3, "example": ""}]},
        "convention": convention,
        "prompt": prompt or {"max_prompt_length": None, "model_context": 4096, "max_tokens": 30,
                             "records": [{"id": "a", "prompt_tokens": 30, "image_tokens": 16, "first_image_token": 4}]},
    }  # fmt: skip


def only(found, key):
    hits = [f for f in found if f.key == key]
    assert len(hits) == 1, found
    return hits[0]


def test_healthy_figures_have_no_finding():
    assert findings(report(), cfg()) == []


def test_flat_groups_at_low_temperature_blame_the_temperature():
    f = only(findings(report(flat=1.0), cfg(temperature=0.01)), "grpo.temperature")
    assert f.blocking and "100 % of groups have identical rewards" in f.message and "now 0.01" in f.message


def test_flat_groups_warn_below_the_blocking_share():
    f = only(findings(report(flat=0.5), cfg()), "grpo.temperature")
    assert not f.blocking and "`perception` preset" in f.message


def test_flat_groups_explained_by_cut_answers_are_not_a_second_blocker():
    found = findings(report(flat=1.0, trunc=1.0), cfg())
    assert only(found, "grpo.max_completion_length").blocking
    assert not only(found, "grpo.temperature").blocking
    assert found[0].key == "grpo.max_completion_length"  # blocking first


def test_zero_weight_on_the_only_varying_reward():
    rewards = {
        "format": {"weight": 1.0, "zero_sd_share": 1.0, "nan_share": 0.0},
        "detection_iou": {"weight": 0.0, "zero_sd_share": 0.25, "nan_share": 0.0},
    }
    found = findings(report(flat=1.0, rewards=rewards), cfg())
    f = only(found, "rewards.weights.detection_iou")
    assert f.blocking and "rewards.weights.detection_iou=1.0" in f.message
    assert all(x.key != "grpo.temperature" for x in found)


def test_convention_that_fits_clearly_better():
    conv = {"configured": "norm1000", "answers_with_boxes": 8,
            "mean_iou": {"norm1000": 0.02, "resized_pixels": 0.6, "pixels": 0.5, "norm1": 0.0}}  # fmt: skip
    f = only(findings(report(convention=conv), cfg()), "model.coordinate_convention")
    assert f.blocking and "model.coordinate_convention=resized_pixels" in f.message


def test_convention_not_flagged_when_close_or_too_few_answers():
    close = {"configured": "norm1000", "answers_with_boxes": 8, "mean_iou": {"norm1000": 0.5, "pixels": 0.6}}
    few = {"configured": "norm1000", "answers_with_boxes": 2, "mean_iou": {"norm1000": 0.0, "pixels": 0.9}}
    assert findings(report(convention=close), cfg()) == []
    assert findings(report(convention=few), cfg()) == []


def test_prompt_budget_that_cuts_image_tokens_blocks():
    prompt = {"max_prompt_length": 20, "model_context": 4096, "max_tokens": 30,
              "records": [{"id": "a", "prompt_tokens": 30, "image_tokens": 16, "first_image_token": 4}]}  # fmt: skip
    f = only(findings(report(prompt=prompt), cfg()), "grpo.max_prompt_length")
    assert f.blocking and "at least 30" in f.message


def test_prompt_budget_that_cuts_text_only_warns():
    prompt = {"max_prompt_length": 28, "model_context": 4096, "max_tokens": 30,
              "records": [{"id": "a", "prompt_tokens": 30, "image_tokens": 16, "first_image_token": 4}]}  # fmt: skip
    assert not only(findings(report(prompt=prompt), cfg()), "grpo.max_prompt_length").blocking


def test_beyond_the_model_context_blocks():
    prompt = {"max_prompt_length": None, "model_context": 64, "max_tokens": 30, "records": []}
    assert only(
        findings(report(prompt=prompt), cfg(max_completion_length=64)), "grpo.max_completion_length"
    ).blocking


def test_parse_failures_warn_with_the_top_reason():
    f = only(findings(report(parse=0.9), cfg()), "data.answer_format")
    assert not f.blocking and "no answer" in f.message


def test_a_zero_weight_diagnostic_is_never_the_fix():
    rewards = {
        "format": {"weight": 1.0, "zero_sd_share": 1.0, "nan_share": 0.0},
        "parse_fail_detection": {"weight": 0.0, "zero_sd_share": 0.5, "nan_share": 0.0},
    }
    found = findings(report(flat=1.0, rewards=rewards), cfg())
    assert [f.key for f in found] == ["grpo.temperature"]
