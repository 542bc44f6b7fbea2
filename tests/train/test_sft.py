"""The SFT baseline: 2 steps on a tiny model, loss on the answer only, outputs."""

from __future__ import annotations

import math

import pytest
import torch

from .conftest import read_jsonl, state_dict_of

pytestmark = pytest.mark.slow  # SFT train steps (~1 s)


def test_two_sft_steps(make_config):
    from vrft.train import run_sft

    cfg = make_config(arch="qwen2_5_vl", task="detection")
    seen = {}
    final = run_sft(cfg, trainer_hook=lambda trainer: seen.setdefault("trainer", trainer))
    run = final.parent
    assert run.name == "run-sft"  # output.sft_dir defaults to '<output.dir>-sft'

    before, after = state_dict_of(cfg.model.path), state_dict_of(final)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    rows = [r for r in read_jsonl(run / "metrics.jsonl") if "train/loss" in r]
    assert [r["step"] for r in rows] == [1, 2]
    assert all(math.isfinite(r["train/loss"]) and r["train/loss"] > 0 for r in rows)
    assert (run / "config.resolved.yaml").is_file() and (final / "config.json").is_file()

    # the loss is on the completion (the task's answer text) only, never on the prompt or the image
    trainer = seen["trainer"]
    batch = trainer.data_collator([trainer.train_dataset[0]])
    labels, ids = batch["labels"][0], batch["input_ids"][0]
    target = ids[labels != -100]
    text = trainer.processing_class.tokenizer.decode(target)
    assert text.startswith("<think>") and "</answer>" in text
    assert 0 < len(target) < len(ids) / 2
