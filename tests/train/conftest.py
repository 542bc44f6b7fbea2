"""Fixtures for training tests: tiny records with images of different sizes, and tiny configs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from transformers import TrainerCallback

# (width, height) of the fixture images: different sizes, so different numbers of visual tokens
SIZES = [(64, 48), (40, 56), (56, 56), (72, 40), (48, 64), (60, 44)]


def write_records(root: Path, task: str, n: int = 4) -> Path:
    """n records of `task` with small random images (each a different size); returns the JSONL path."""
    (root / "img").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        w, h = SIZES[i % len(SIZES)]
        rng = np.random.default_rng(i)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / "img" / f"{i}.png")
        rec: dict[str, Any] = {
            "id": f"{task}-{i}",
            "task": task,
            "image": f"img/{i}.png",
            "width": w,
            "height": h,
        }
        box = [2.0 + i, 3.0, w / 2 + i, h - 4.0]
        if task == "detection":
            rec.update(image_id=i, category=["square", "circle"][i % 2], boxes=[box] if i % 3 else [])
        elif task == "classification":
            rec.update(label=["circle", "square", "ring"][i % 3], classes=["circle", "square", "ring"],
                       domain={"object": "shape", "attribute": "type"})  # fmt: skip
        elif task == "counting":
            rec.update(category="square", boxes=[box] if i % 2 else [])
        elif task == "ocr":
            rec.update(text=["STOP", "Hello World", ""][i % 3])
        else:
            rec.update(expression=f"the shape number {i}", boxes=[box])
        lines.append(json.dumps(rec))
    path = root / f"{task}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


# An external reward (rewards.extra) that varies between completions, so GRPO has a learning signal
# even though a random tiny model never writes a parsable answer. crc32: identical on every process.
VARIED_REWARD = """
import zlib

from vrft.parsing import completion_text


def varied(completions, **kwargs):
    return [(zlib.crc32(completion_text(c).encode()) % 7) / 6 for c in completions]
"""


def reward_module(root: Path) -> Path:
    """Write the `vrft_test_rewards` module under root/pylib and return that directory (for sys.path)."""
    lib = root / "pylib"
    lib.mkdir(parents=True, exist_ok=True)
    (lib / "vrft_test_rewards.py").write_text(VARIED_REWARD)
    return lib


def tiny_config(
    root: Path,
    arch: str = "qwen2_5_vl",
    task: str = "detection",
    n_records: int = 4,
    overrides=(),
    **sections,
) -> Any:
    """A VrftConfig training a cached tiny model on tiny records for 2 steps (fast on a CPU).

    The `vrft_test_rewards:varied` reward is added: put `reward_module(root)` on sys.path first.
    """
    from vrft.config import load_config
    from vrft.models.tiny import cached_tiny

    data = {
        "name": f"test-{arch}-{task}",
        "model": {"path": str(cached_tiny(arch)), "min_pixels": 32 * 32, "max_pixels": 64 * 64},
        "data": {"train": str(write_records(root / "data", task, n_records)), "task": task},
        "grpo": {
            "num_generations": 2, "prompts_per_step": 2, "per_device_prompts": 1, "max_completion_length": 8,
            "max_steps": 2, "learning_rate": 1e-3, "seed": 0, "beta": 0.04,
        },
        "rewards": {"extra": ["vrft_test_rewards:varied"]},
        "sft": {"max_steps": 2, "learning_rate": 1e-3, "per_device_batch_size": 2},
        "output": {"dir": str(root / "run"), "logging_steps": 1, "sample_every": 1, "num_samples": 2},
    }  # fmt: skip
    for key, value in sections.items():
        data.setdefault(key, {}).update(value)
    return load_config(data, list(overrides))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


class StopAfter(TrainerCallback):
    """Stops training once `step` optimizer steps are done (a run killed there)."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_training_stop = True


class RecordSteps(TrainerCallback):
    """Appends every finished optimizer step's number to `seen`."""

    def __init__(self, seen: list):
        self.seen = seen

    def on_step_end(self, args, state, control, **kwargs):
        self.seen.append(state.global_step)


def state_dict_of(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    out = {}
    for f in sorted(Path(model_dir).glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: on a shared 2-core machine, spinning OpenMP threads make steps 20x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def make_config(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(reward_module(tmp_path)))

    def make(**kwargs):
        return tiny_config(tmp_path, **kwargs)

    return make
