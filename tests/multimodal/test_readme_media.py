"""The README's video and multi-image example runs as written (every `vrft ...` line of the block after
"Several images and video work the same way", in a temporary directory holding a copy of configs/)."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest

from vrft.cli import main

ROOT = Path(__file__).resolve().parents[2]


def readme_media_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = (
        text.split("Several images and video work the same way", 1)[1]
        .split("```bash", 1)[1]
        .split("```", 1)[0]
    )
    return [shlex.split(line, comments=True)[1:] for line in block.splitlines() if line.startswith("vrft ")]


def test_the_block_is_synth_train_eval_predict_for_both_tasks():
    steps = [argv[0] if argv[0] != "data" else "data synth" for argv in readme_media_commands()]
    assert steps == ["tiny", "data synth", "data synth", "train", "eval", "predict"] * 2
    trained = [argv[1] for argv in readme_media_commands() if argv[0] == "train"]
    assert trained == ["configs/tiny/temporal_grounding.yaml", "configs/tiny/multi_image_grounding.yaml"]


@pytest.mark.slow  # two tiny builds, 2 GRPO steps each, eval of 2 records, predict (~1 min)
def test_the_readme_media_example_runs(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)
    for argv in readme_media_commands():
        assert main(argv) == 0, f"vrft {shlex.join(argv)} failed"
    for task in ("temporal_grounding", "multi_image_grounding"):
        assert (tmp_path / f"runs/tiny/{task}/final/vrft.json").is_file()
        assert (tmp_path / f"runs/tiny/{task}-eval/metrics.json").is_file()
