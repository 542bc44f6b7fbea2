"""Claims of the docs that the code can check: the vrft.json task list, the download command the
errors suggest, and the parameter counts the docs give for the demo's models."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vrft.models.contract import TASKS

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_the_vrft_json_table_names_every_task():
    row = next(
        line for line in _text(ROOT / "docs" / "models.md").splitlines() if line.startswith("| `task` |")
    )
    assert set(re.findall(r"`(\w+)`", row.split("|")[2])) >= set(TASKS)


def test_the_download_hint_is_the_current_hf_cli_everywhere():
    """`hf download` (huggingface_hub's current CLI) in the docs, the configs and every error hint."""
    files = [
        *DOCS,
        *sorted((ROOT / "configs").rglob("*.yaml")),
        *sorted((ROOT / "src" / "vrft").rglob("*.py")),
    ]
    stale = [str(f.relative_to(ROOT)) for f in files if "huggingface-cli" in _text(f)]
    assert not stale, f"`huggingface-cli download` is the old CLI; say `hf download` in: {stale}"


def test_the_missing_model_hints_say_hf_download(tmp_path):
    from vrft.config import load_config
    from vrft.errors import ConfigError
    from vrft.models.load import load_model_and_processor
    from vrft.train.preflight import preflight

    with pytest.raises(ConfigError, match="`hf download Qwen/Qwen2-VL-2B-Instruct --local-dir"):
        load_model_and_processor(tmp_path / "absent")
    cfg = {
        "model": {"path": str(tmp_path / "absent")},
        "data": {"train": str(tmp_path / "x.jsonl"), "task": "detection"},
    }
    with pytest.raises(ConfigError, match="`hf download Qwen/Qwen2-VL-2B-Instruct --local-dir") as err:
        preflight(load_config(cfg))
    assert "huggingface-cli" not in str(err.value)


def _count(path) -> int:
    from transformers import AutoModelForImageTextToText

    return sum(p.numel() for p in AutoModelForImageTextToText.from_pretrained(path).parameters())


@pytest.mark.slow  # loads the demo base and builds a demo-size tiny model (~4 s)
def test_parameter_counts_in_the_docs_are_the_models():
    """The shipped demo base is "1.6M" wherever the docs round it, and models.md's exact counts hold."""
    from vrft.models.tiny import cached_tiny

    base = _count(ROOT / "src" / "vrft" / "demo" / "base_model")
    demo_size = _count(cached_tiny("qwen2_5_vl", size="demo"))
    models_md = _text(ROOT / "docs" / "models.md")
    assert f"{base:,} parameters" in models_md and f"{demo_size:,} parameters" in models_md
    allowed = {f"{base / 1e6:.1f}M", f"{demo_size / 1e6:.2f}M"}
    for doc in DOCS:
        for said in re.findall(
            r"\b\d+\.\d+M\b", _text(doc)
        ):  # "1.6M parameters", "(1.53M)", "1.6M-parameter"
            assert said in allowed, f"{doc.name}: {said}; the models have {sorted(allowed)} parameters"


def test_visual_rft_preset_scores_untagged_and_empty_answers_zero_as_the_paper_table_says():
    """docs/evaluation.md: unlike the reference, `visual-rft` has no math_verify pass, needs `<answer>`
    tags, and an empty class answer is wrong."""
    from vrft.rewards import PRESETS, get_reward

    box = [[10, 20, 300, 400]]
    untagged = {
        "detection": ("[{'Position': [10, 20, 300, 400], 'Confidence': 0.9}]", {"gt_boxes": [box]}),
        "classification": ("Boeing 737", {"gt_label": ["Boeing 737"]}),
        "grounding": ("(10,20),(300,400)", {"gt_boxes": [box]}),
    }
    for task, (completion, columns) in untagged.items():
        for name in PRESETS["visual-rft"][task]:
            if not name.startswith("parse_fail"):
                assert get_reward(name)([completion], **columns) == [0.0], (task, name)
                tagged = get_reward(name)([f"<think>x</think> <answer>{completion}</answer>"], **columns)
                assert tagged[0] > 0, (task, name)  # the same answer in tags scores
    empty = get_reward("classification_substring")(
        ["<think>x</think> <answer></answer>"], gt_label=["Boeing 737"]
    )
    assert empty == [0.0]


def test_design_md_names_every_task_and_preset():
    from vrft.rewards import PRESETS
    from vrft.tasks import TASKS as TASK_OBJECTS

    design = _text(ROOT / "docs" / "DESIGN.md")
    tasks_line = next(line for line in design.splitlines() if line.startswith("`TASKS = {"))
    assert set(re.findall(r'"(\w+)"', tasks_line)) == set(TASK_OBJECTS)
    presets = design.split("`PRESETS = {", 1)[1].split("`", 1)[0]
    assert set(re.findall(r'"([\w-]+)":', presets)) == set(PRESETS)
