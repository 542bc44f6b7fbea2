"""A healthy doctor set-up: the shipped demo base with shapes-world detection records (the demo's own
drawing, plain background, its short prompt), 4 prompts x G=4, short completions."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vrft.demo.base import SHIPPED_BASE


@pytest.fixture(scope="session")
def world_records(tmp_path_factory) -> Path:
    from vrft.demo.settings import WorldSettings
    from vrft.demo.world import build_world

    root = tmp_path_factory.mktemp("doctor-world")
    world = build_world(WorldSettings(base_train_images=4), root, parts=("base_train",))
    return Path(world.parts["base_train"])


def write_config(tmp_path: Path, records: Path, **grpo) -> Path:
    cfg = {
        "name": "doctor-test",
        "model": {"path": str(SHIPPED_BASE), "min_pixels": 112 * 112, "max_pixels": 112 * 112},
        "data": {"train": str(records), "task": "detection"},
        "grpo": {
            "num_generations": 4,
            "prompts_per_step": 4,
            "temperature": 1.0,
            "max_completion_length": 64,
            "seed": 0,
            **grpo,
        },  # fmt: skip
        "output": {"dir": str(tmp_path / "run")},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def healthy_config(tmp_path, world_records) -> Path:
    return write_config(tmp_path, world_records)
