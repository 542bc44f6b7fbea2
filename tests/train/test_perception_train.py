"""The issue 13 tasks train and evaluate on tiny models: one GRPO step each (counting in answer-only mode
with the perception preset, OCR in the think format), one SFT step answer-only, then `evaluate_model`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from vrft.errors import ConfigError

from .conftest import read_jsonl

pytestmark = pytest.mark.slow  # GRPO / SFT steps then evaluation (~3 s)


@pytest.mark.parametrize(
    "task,overrides,expected",
    [
        ("counting", ["data.answer_format=answer_only", "rewards.preset=perception"],
         ["format_answer_only", "count_points", "count_exact", "parse_fail_counting"]),
        ("ocr", [], ["format", "ocr_similarity", "parse_fail_ocr"]),
    ],
)  # fmt: skip
def test_one_grpo_step_then_evaluate(make_config, task, overrides, expected, tmp_path, capsys):
    from vrft.data.records import load_records
    from vrft.train import run_grpo

    cfg = make_config(task=task, overrides=["grpo.max_steps=1", *overrides])
    final = run_grpo(cfg)
    contract = json.loads((final / "vrft.json").read_text())  # the model contract records the format
    assert contract["task"] == task and contract["answer_format"] == cfg.data.answer_format
    rows = [r for r in read_jsonl(final.parent / "metrics.jsonl") if "train/reward" in r]
    assert [r["step"] for r in rows] == [1]
    for name in expected:
        value = rows[0][f"train/reward/{name}"]
        assert value is not None and math.isfinite(value), name
    assert 0 <= rows[0]["train/parse_fail_rate"] <= 1
    samples = read_jsonl(final.parent / "samples.jsonl")
    assert samples and set(expected) <= set(samples[0]["rewards"])
    from vrft.train.builder import get_task, training_records

    trained, _ = training_records(cfg)
    assert ("<think>" in get_task(task).prompt(trained[0])) == (task == "ocr")  # answer-only prompts

    # evaluate the trained tiny model (greedy, a few tokens) with `vrft eval`: without --answer-only the
    # model's vrft.json gives the answer format
    from vrft.cli import main

    records = load_records(cfg.data.train)
    argv = ["eval", "--model", str(final), "--data", str(cfg.data.train), "--out", str(tmp_path / "eval"),
            "--max-new-tokens", "4", "--batch-size", "2", "--device", "cpu", "--no-report"]  # fmt: skip
    assert main(argv) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    m = metrics[task]
    keys = {"counting": ("accuracy", "mae", "point_f1"), "ocr": ("edit_distance", "exact_match", "word_f1")}[
        task
    ]
    for key in keys + ("format_ok", "parse_fail"):
        assert m[key] is not None and math.isfinite(m[key]), key
    assert m["num_samples"] == len(records) and metrics["run"]["answer_format"] == cfg.data.answer_format

    # `vrft predict` asks one image the way the model was trained (vrft.json: answer-only for counting)
    what = ["--count", "square"] if task == "counting" else ["--read"]
    argv = ["predict", "--model", str(final), str(records[0].resolved_image()), *what, "--max-new-tokens", "4",
            "--device", "cpu", "--out", str(tmp_path / "p.png"), "-v"]  # fmt: skip
    capsys.readouterr()
    assert main(argv) == 0
    out = capsys.readouterr().out
    prompt = next(line for line in out.splitlines() if line.startswith("prompt: "))
    assert ("<think>" in prompt) == (task == "ocr")
    # the printed answer is the task's own reading of the raw completion: a parsed answer, or "could not
    # parse" with the parser's reason, and nothing else
    from vrft.boxes import Frame
    from vrft.tasks import TASKS

    rest = out.split("raw: ", 1)[1]
    ends = ["square: ", "counting: "] if task == "counting" else ["text: ", "ocr: "]
    cut = max(rest.rfind("\n" + e) for e in ends)
    assert cut >= 0, out
    raw, result = rest[:cut], rest[cut + 1 :].splitlines()[0]
    pred = TASKS[task].parse(raw, Frame(records[0].width, records[0].height, "pixels"))
    if not pred.ok:
        assert result.endswith(f"could not parse the answer ({pred.reason})"), (raw, result)
    elif task == "counting":
        assert result.startswith(f"square: {pred.count}") and "could not parse" not in out, (raw, result)
    else:
        assert result == f"text: {pred.text}" and "could not parse" not in out, (raw, result)
    assert (tmp_path / "p.png").is_file() == (task == "counting")
    assert (tmp_path / "eval" / "predictions.jsonl").is_file()


def test_answer_only_sft_step_and_format_agreement(make_config, tmp_path):
    from vrft.train import run_sft
    from vrft.train.builder import training_records

    cfg = make_config(task="counting", overrides=["data.answer_format=answer_only", "sft.max_steps=1"])
    records, task = training_records(cfg)
    assert task == "counting" and all(r.answer_format == "answer_only" for r in records)
    final = run_sft(cfg)
    assert (final / "config.json").is_file()

    # a record that asks for another format than the config is refused, naming the record
    path = Path(cfg.data.train).with_name("mixed.jsonl")  # beside it: the image paths stay valid
    lines = open(cfg.data.train).read().splitlines()
    lines[0] = lines[0][:-1] + ', "answer_format": "think"}'
    path.write_text("\n".join(lines) + "\n")
    bad = make_config(task="counting", overrides=["data.answer_format=answer_only", f"data.train={path}"])
    with pytest.raises(ConfigError, match="record\\(s\\) set another answer_format"):
        training_records(bad)
