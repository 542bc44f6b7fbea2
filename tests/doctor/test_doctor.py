"""`vrft doctor` end to end on the shipped demo base: the five broken set-ups of issue 22 are each
diagnosed with the config key that fixes them (exit 1), the healthy one passes (exit 0), and bad input
is refused in one line (exit 2)."""

from __future__ import annotations

import json
import re

import pytest
from tests.doctor.conftest import write_config

from vrft.cli import main


def doctor(config, *extra, records=4):
    return main(["--log-level", "WARNING", "doctor", str(config), "--records", str(records), *extra])


def report_of(config):
    return json.loads((config.parent / "run" / "doctor" / "doctor.json").read_text())


def keys(report, blocking=True):
    return [f["key"] for f in report["findings"] if f["blocking"] or not blocking]


def test_answers_cut_by_max_completion_length(healthy_config, capsys):
    # the fast end-to-end test (8 new tokens: ~5 s): 4 prompts x G=4, every answer cut
    assert doctor(healthy_config, "grpo.max_completion_length=8") == 1
    report = report_of(healthy_config)
    assert report["truncation"]["share"] == 1.0
    assert keys(report) == ["grpo.max_completion_length"]  # the flat groups point to it, not a second blocker
    printed = capsys.readouterr().out
    assert (
        "BLOCKING [grpo.max_completion_length] 100 % of completions hit grpo.max_completion_length=8"
        in printed
    )
    assert "raise `grpo.max_completion_length`" in printed
    html = (healthy_config.parent / "run" / "doctor" / "doctor.html").read_text()
    assert html.count("<svg") >= 16 and "grpo.max_completion_length" in html


@pytest.mark.slow
def test_temperature_near_zero_flattens_every_group(tmp_path, world_records, capsys):
    # 2 prompts x G=2: near-greedy sampling gives identical completions
    config = write_config(tmp_path, world_records, num_generations=2, prompts_per_step=2,
                          max_completion_length=48, temperature=0.01)  # fmt: skip
    assert doctor(config, records=2) == 1
    report = report_of(config)
    assert report["learning_signal"]["zero_sd_share"] >= 0.75
    assert "grpo.temperature" in keys(report)
    printed = capsys.readouterr().out
    assert re.search(r"BLOCKING \[grpo.temperature\] \d+ % of groups have identical rewards .*: raise `grpo.temperature` "
                     r"\(now 0.01", printed)  # fmt: skip


@pytest.mark.slow
def test_healthy_setup_passes(healthy_config):
    assert doctor(healthy_config) == 0
    report = report_of(healthy_config)
    assert not report["blocking"], report["findings"]
    assert report["learning_signal"]["zero_sd_share"] < 0.75
    assert report["convention"]["configured"] == "resized_pixels"
    assert report["images"][0] == {
        "id": report["images"][0]["id"],
        "original": [112, 112],
        "resized": [112, 112],
    }
    assert report["prompt"]["records"][0]["image_tokens"] == 16
    assert set(report["memory"]["per_device"]) == {"ddp", "zero2", "zero3", "fsdp2"}
    assert len(report["samples"]) == 16


@pytest.mark.slow
@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("model.coordinate_convention=norm1000", "model.coordinate_convention"),
        ("grpo.max_prompt_length=20", "grpo.max_prompt_length"),
        (
            "rewards.weights.detection_iou=0 rewards.weights.detection_confidence=0",
            "rewards.weights.detection_iou",
        ),
    ],
    ids=["wrong-convention", "prompt-cuts-image", "zero-weight"],
)
def test_broken_setup_is_diagnosed(healthy_config, override, key, capsys):
    assert doctor(healthy_config, *override.split()) == 1
    report = report_of(healthy_config)
    assert key in keys(report), report["findings"]
    line = next(f["message"] for f in report["findings"] if f["key"] == key)
    assert f"`{key}" in line  # the fix names the key
    if key == "model.coordinate_convention":
        assert "model.coordinate_convention=resized_pixels" in line
    assert f"[{key}]" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------- bad input
def test_bad_record_count_is_one_line(healthy_config, capsys):
    assert doctor(healthy_config, records=0) == 2
    err = capsys.readouterr().err.strip()
    assert err == "vrft doctor: error: --records must be between 1 and 1024, got 0"


def test_group_size_out_of_range(healthy_config, capsys):
    assert doctor(healthy_config, "grpo.num_generations=1") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "grpo.num_generations" in err[0]
    assert doctor(healthy_config, "grpo.num_generations=65", "grpo.prompts_per_step=4") == 2
    assert "grpo.num_generations" in capsys.readouterr().err


def test_more_records_than_the_run_has(tmp_path, world_records, capsys):
    config = write_config(tmp_path, world_records)
    n = sum(1 for _ in world_records.open())
    assert doctor(config, records=n + 1) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"only {n} training record(s)" in err[0]


def test_config_that_fails_its_checks(healthy_config, capsys):
    assert doctor(healthy_config, "grpo.temperature=0") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "grpo.temperature" in err[0]


def test_records_that_fail_validation(tmp_path, world_records, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"id": "x", "task": "detection", "image": "nope.png", "width": 10, "height": 10, "boxes": [[1]]}\n'
    )
    config = write_config(tmp_path, bad)
    assert doctor(config) == 2
    err = capsys.readouterr().err
    assert err.startswith("vrft doctor: error:") and "Traceback" not in err


def test_model_dir_that_does_not_load(tmp_path, world_records, capsys):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "qwen2_5_vl"}')
    config = write_config(tmp_path, world_records)
    text = config.read_text().replace(str(__import__("vrft.demo.base").demo.base.SHIPPED_BASE), str(model))
    config.write_text(text)
    assert doctor(config) == 2
    err = capsys.readouterr().err
    assert err.startswith("vrft doctor: error:") and "model" in err and "Traceback" not in err


def test_options_may_follow_the_overrides():
    import argparse

    from vrft.commands.doctor import _split_options

    args = argparse.Namespace(overrides=["grpo.temperature=0.5", "--records", "3", "--out=x", "--gpus=8"], records=16,
                              out=None, gpus=1)  # fmt: skip
    assert _split_options(args) == ["grpo.temperature=0.5"]
    assert (args.records, args.out, args.gpus) == (3, "x", 8)


def test_bad_gpus_is_one_line(healthy_config, capsys):
    assert doctor(healthy_config, "--gpus", "0") == 2
    assert capsys.readouterr().err.strip() == "vrft doctor: error: --gpus must be a positive integer, got 0"


def test_samples_a_qwen3_vl_without_deepstack_layers(tmp_path, world_records, capsys):
    """The G samples of a prompt come from the prompt repeated G times, as TRL does: transformers'
    `num_return_sequences` expansion of the encoded image failed (IndexError) for a Qwen3-VL without
    deepstack layers (the tiny one)."""
    import yaml

    from vrft.models.tiny import cached_tiny

    config = write_config(tmp_path, world_records, num_generations=2, max_completion_length=4)
    cfg = yaml.safe_load(config.read_text())
    cfg["model"]["path"] = str(cached_tiny("qwen3_vl"))
    config.write_text(yaml.safe_dump(cfg))
    assert doctor(config, records=2) == 1  # a random model: answers cut and unparsed, but sampled
    report = report_of(config)
    assert report["truncation"]["share"] == 1.0 and "Traceback" not in capsys.readouterr().err
