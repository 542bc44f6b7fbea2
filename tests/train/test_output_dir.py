"""The run directory (issue 14): resume skips a half-written checkpoint, metrics.jsonl is never lost."""

from __future__ import annotations

import json
import logging
import shutil
import struct

import pytest
import torch

from vrft.errors import ConfigError, UserError
from vrft.train.checkpoints import checkpoint_problem
from vrft.train.run_dir import prepare_output_dir, release_output_dir

from .conftest import RecordSteps, StopAfter, read_jsonl, state_dict_of


def _safetensors(path, n_bytes=16, truncate=0):
    header = json.dumps(
        {"w": {"dtype": "F32", "shape": [n_bytes // 4], "data_offsets": [0, n_bytes]}}
    ).encode()
    data = struct.pack("<Q", len(header)) + header + b"\0" * n_bytes
    path.write_bytes(data[: len(data) - truncate])


def _checkpoint(root, step=2, *, state=True, weights="full"):
    ckpt = root / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    if state:
        (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    if weights == "full":
        _safetensors(ckpt / "model.safetensors")
    elif weights == "truncated":
        _safetensors(ckpt / "model.safetensors", truncate=5)
    elif weights == "shards":
        (ckpt / "model.safetensors.index.json").write_text(
            json.dumps({"weight_map": {"a": "model-1.safetensors", "b": "model-2.safetensors"}})
        )
        _safetensors(ckpt / "model-1.safetensors")
    elif weights == "adapter":
        _safetensors(ckpt / "adapter_model.safetensors")
    return ckpt


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({}, None),
        ({"weights": "adapter"}, None),
        ({"state": False}, "no trainer_state.json"),
        ({"weights": "truncated"}, "truncated"),
        ({"weights": "shards"}, "model-2.safetensors is missing"),
        ({"weights": None}, "no model weights"),
    ],
)
def test_checkpoint_completeness(tmp_path, kwargs, problem):
    found = checkpoint_problem(_checkpoint(tmp_path, **kwargs))
    assert (found is None) if problem is None else (problem in found)


def test_resume_takes_the_last_complete_checkpoint(tmp_path, caplog):
    out = tmp_path / "run"
    prepare_output_dir(out, resume=False)
    release_output_dir(out)
    _checkpoint(out, 2)
    _checkpoint(out, 4, state=False)  # killed while saving: trainer_state.json is written last
    with caplog.at_level(logging.WARNING):
        _, ckpt = prepare_output_dir(out, resume=True)
    release_output_dir(out)
    assert ckpt == str(out / "checkpoint-2")
    assert "skipping" in caplog.text and "checkpoint-4" in caplog.text and "trainer_state.json" in caplog.text
    assert not (out / "checkpoint-4").exists()  # vrft's own half save: removed, not mixed into the next one
    with pytest.raises(ConfigError, match="not a complete checkpoint"):
        prepare_output_dir(out, resume=str(_checkpoint(out, 6, weights="truncated")))


@pytest.mark.parametrize("name", ["metrics.jsonl", "README.md"])
def test_files_of_a_plain_directory_are_never_overwritten(tmp_path, name):
    """A plain directory's metrics.jsonl (or README.md, where TRL writes its model card) refuses the run."""
    out = tmp_path / "plain"
    out.mkdir()
    (out / name).write_text('{"mine": 1}\n')
    for resume, overwrite in ((False, False), (True, False), (False, True)):
        with pytest.raises(UserError, match=f"{name}, which vrft did not write"):
            prepare_output_dir(out, resume=resume, overwrite=overwrite)
    assert (out / name).read_text() == '{"mine": 1}\n'
    assert sorted(p.name for p in out.iterdir()) == [name]


def test_metrics_of_an_earlier_run_need_resume_or_overwrite(tmp_path):
    out = tmp_path / "run"
    prepare_output_dir(out, resume=False)
    release_output_dir(out)
    (out / "metrics.jsonl").write_text('{"step": 1}\n')  # killed before its first checkpoint
    with pytest.raises(UserError, match="already holds an earlier run"):
        prepare_output_dir(out, resume=False)
    assert prepare_output_dir(out, resume=True) == (out, None)  # resume: starts over (no checkpoint)
    release_output_dir(out)


@pytest.mark.slow  # resumed GRPO runs (~3 s)
def test_resume_past_a_half_written_checkpoint_is_exact(make_config, tmp_path):
    """Killed while writing checkpoint-4: --resume continues from checkpoint-2 and ends bit-identical."""
    from vrft.train import run_grpo

    common = ["grpo.max_steps=4", "output.save_steps=2"]
    straight = run_grpo(make_config(overrides=common + [f"output.dir={tmp_path / 'a'}"]))
    b = tmp_path / "b"
    run_grpo(make_config(overrides=common + [f"output.dir={b}"]), extra_callbacks=[StopAfter(2)])
    half = b / "checkpoint-4"
    shutil.copytree(b / "checkpoint-2", half)
    (half / "trainer_state.json").unlink()
    seen = []
    resumed = run_grpo(
        make_config(overrides=common + [f"output.dir={b}", "output.resume=true"]),
        extra_callbacks=[RecordSteps(seen)],
    )
    assert seen[0] == 3
    sa, sb = state_dict_of(straight), state_dict_of(resumed)
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=0, msg=k)
    assert [r["step"] for r in read_jsonl(b / "metrics.jsonl") if "train/reward" in r] == [1, 2, 3, 4]
