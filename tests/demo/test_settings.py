"""Demo settings: defaults = configs/demo/demo.yaml, --quick = configs/demo/quick.yaml, errors, cache key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vrft.demo.results import table_markdown
from vrft.demo.settings import QUICK, DemoSettings, load_settings, warm_start_key
from vrft.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "demo"


def test_demo_yaml_is_the_defaults():
    assert load_settings(CONFIGS / "demo.yaml") == DemoSettings()
    assert yaml.safe_load((CONFIGS / "demo.yaml").read_text()) == DemoSettings().to_dict()


def test_quick_yaml_is_the_quick_overrides():
    assert yaml.safe_load((CONFIGS / "quick.yaml").read_text()) == QUICK
    assert load_settings(CONFIGS / "quick.yaml") == load_settings(quick=True)
    quick = load_settings(quick=True)
    assert quick.fewshot.steps < DemoSettings().fewshot.steps
    assert quick.rft == DemoSettings().rft  # the same method, only smaller


def test_overrides_and_errors(tmp_path):
    s = load_settings(quick=True, overrides=["rft.beta=0.1", "fewshot.shots=[1,2,8]"])
    assert s.rft.beta == 0.1 and s.fewshot.shots == [1, 2, 8]
    with pytest.raises(ConfigError, match=r"did you mean 'rft\.beta'"):
        load_settings(overrides=["rft.betta=0.1"])
    with pytest.raises(ConfigError, match="fewshot.steps"):
        load_settings(overrides=["fewshot.steps=zero"])
    with pytest.raises(ConfigError, match="expected key=value"):
        load_settings(overrides=["rft.beta"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("world:\n  imagesize: 64\n")
    with pytest.raises(ConfigError, match=rf"{bad}.*world.image_size"):
        load_settings(bad)
    with pytest.raises(ConfigError, match="min_objects"):
        load_settings(overrides=["world.min_objects=4", "world.max_objects=2"])


def test_warm_start_key_depends_only_on_what_the_warm_start_sees():
    base = DemoSettings()
    assert warm_start_key(base) == warm_start_key(load_settings(overrides=["rft.learning_rate=0.1"]))
    assert warm_start_key(base) == warm_start_key(load_settings(overrides=["fewshot.shots=[2]"]))
    assert warm_start_key(base) == warm_start_key(load_settings(overrides=["world.test_images=7"]))
    assert warm_start_key(base) == warm_start_key(load_settings(overrides=["world.novel_prompts=all"]))
    assert warm_start_key(base) != warm_start_key(load_settings(overrides=["world.base_images=7"]))
    assert warm_start_key(base) != warm_start_key(load_settings(overrides=["warm_start.steps=7"]))
    assert warm_start_key(base) != warm_start_key(load_settings(overrides=["world.seed=3"]))
    assert warm_start_key(base) != warm_start_key(load_settings(overrides=["model.seed=3"]))


def test_table_has_one_column_per_k_and_the_baseline_in_each():
    rows = [
        {"method": "baseline", "shots": 0, "novel_mAP": 10.0},
        {"method": "sft", "shots": 1, "novel_mAP": 12.25},
        {"method": "rft", "shots": 1, "novel_mAP": 30.0},
        {"method": "sft", "shots": 4, "novel_mAP": None},
        {"method": "rft", "shots": 4, "novel_mAP": 33.0},
    ]
    lines = table_markdown(rows).splitlines()
    assert lines[0] == "| method | 1-shot | 4-shot |"
    assert lines[2] == "| baseline (warm start) | 10.0 | 10.0 |"
    assert lines[3] == "| SFT | 12.2 | - |"
    assert lines[4] == "| Visual-RFT | 30.0 | 33.0 |"
