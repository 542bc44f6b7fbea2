"""Fixtures for many-image and video model inputs: a tiny shapes world (56 px images, 2-3 s videos
at 4 fps) written once per session by `vrft data synth --video / --multi-image`."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def media_world(tmp_path_factory) -> Path:
    """A folder with ``temporal_grounding.jsonl`` (4 mp4 videos) and ``multi_image_grounding.jsonl``
    (4 sets of 2-4 images of 56 px)."""
    from vrft.cli import main

    root = tmp_path_factory.mktemp("media-world")
    argv = ["data", "synth", "--out", str(root), "--images", "0", "--size", "56", "--seed", "3",
            "--video", "4", "--video-seconds", "2,3", "--multi-image", "4"]  # fmt: skip
    assert main(argv) == 0
    return root


def media_config(root: Path, arch: str, task: str, world: Path, overrides=(), **sections):
    """A config training a cached tiny `arch` on the `world`'s `task` records: 1 step, G=2, 8 new tokens,
    at most 3 frames of 56x56 per video."""
    from vrft.config import load_config
    from vrft.models.tiny import cached_tiny

    model = {"path": str(cached_tiny(arch)), "min_pixels": 32 * 32, "max_pixels": 64 * 64,
             "video_fps": 2.0, "video_max_frames": 3, "video_max_pixels": 56 * 56, "video_min_pixels": 28 * 28}  # fmt: skip
    if arch == "smolvlm":
        model["coordinate_convention"] = "norm1000"  # no box convention of its own
    data = {
        "name": f"test-{arch}-{task}",
        "model": model,
        "data": {"train": str(world / f"{task}.jsonl"), "task": task},
        "grpo": {"num_generations": 2, "prompts_per_step": 2, "per_device_prompts": 1, "max_completion_length": 8,
                 "max_steps": 1, "learning_rate": 1e-3, "seed": 0},
        "sft": {"max_steps": 1, "learning_rate": 1e-3, "per_device_batch_size": 2},
        "output": {"dir": str(root / "run"), "logging_steps": 1, "sample_every": 1, "num_samples": 2},
    }  # fmt: skip
    for key, value in sections.items():
        data.setdefault(key, {}).update(value)
    return load_config(data, list(overrides))
