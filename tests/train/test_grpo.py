"""Visual-RFT end to end on tiny models: 2 GRPO steps per architecture, outputs, LoRA / frozen vision, resume."""

from __future__ import annotations

import math

import pytest
import torch
import yaml

from vrft.config import load_config
from vrft.errors import UserError

from .conftest import RecordSteps, StopAfter, read_jsonl, state_dict_of

# (arch, task, extra overrides): every tiny architecture, every task, and the model options between them
CASES = [
    ("qwen2_vl", "detection", ["model.lora.enabled=true", "model.lora.r=4"]),
    ("qwen2_5_vl", "grounding", ["grpo.per_device_prompts=2"]),  # 2 prompts (different image sizes) per pass
    ("qwen3_vl", "classification", ["model.freeze_vision=true"]),
    ("smolvlm", "detection", ["model.coordinate_convention=norm1000"]),  # no box convention of its own
]


def _changed(before: dict, after: dict, keys) -> list[str]:
    return [k for k in keys if not torch.equal(before[k].float(), after[k].float())]


@pytest.mark.slow  # GRPO steps on 4 tiny architectures (~4 s)
@pytest.mark.parametrize("arch,task,overrides", CASES, ids=[c[0] for c in CASES])
def test_two_grpo_steps(make_config, arch, task, overrides):
    from vrft.train import run_grpo

    cfg = make_config(arch=arch, task=task, overrides=overrides)
    before = state_dict_of(cfg.model.path)
    final = run_grpo(cfg)
    run = final.parent

    # the weights changed, as the options say
    after = state_dict_of(final)
    assert set(after) == set(before)
    vision = [k for k in before if k.startswith("visual.") or ".visual." in k or "vision_model" in k]
    language = [k for k in before if k not in vision]
    assert vision and language
    assert _changed(before, after, language), "no language-model weight changed"
    if cfg.model.freeze_vision or cfg.model.lora.enabled:  # frozen, or adapters on the language model only
        assert not _changed(before, after, vision)
    else:
        assert _changed(before, after, vision)
    if cfg.model.lora.enabled:
        assert (run / "adapter" / "adapter_config.json").is_file()
        assert any(k in after for k in language)  # merged back into plain weights

    # metrics.jsonl: one row per step, every reward component finite, parse-fail rate, lengths, KL, timings
    rows = [r for r in read_jsonl(run / "metrics.jsonl") if "train/reward" in r]
    assert [r["step"] for r in rows] == [1, 2]
    names = list(yaml.safe_load((run / "config.resolved.yaml").read_text())["rewards"]["extra"])
    assert names == ["vrft_test_rewards:varied"]
    for r in rows:
        for key in ("train/reward/format", "train/reward/varied", f"train/reward/parse_fail_{task}", "train/reward",
                    "train/kl", "train/completion_length", "train/parse_fail_rate", "train/step_time",
                    "train/time/generation", "train/time/reward", "train/time/logprob", "train/time/update"):  # fmt: skip
            assert key in r and r[key] is not None and math.isfinite(r[key]), key
        assert 0 <= r["train/parse_fail_rate"] <= 1
        assert r["train/time/generation"] > 0 and r["train/time/update"] > 0

    # samples.jsonl: completions with their record, image, parsed answer and every reward
    samples = read_jsonl(run / "samples.jsonl")
    assert {s["step"] for s in samples} == {1, 2} and len(samples) == 4
    for s in samples:
        assert s["id"].startswith(task) and s["task"] == task
        assert s["image"].endswith(".png") and s["width"] > 0
        assert {"format", "varied", f"parse_fail_{task}"} <= set(s["rewards"])
        assert all(v is not None and math.isfinite(v) for v in s["rewards"].values())
        assert isinstance(s["completion"], str) and "parse_ok" in s and "score" in s
    assert (run / "samples.html").stat().st_size > 1000

    # the resolved config reloads to the same config
    assert load_config(run / "config.resolved.yaml").to_dict() == cfg.to_dict()


@pytest.mark.slow  # three GRPO runs (~4 s)
def test_resume_reaches_the_same_weights(make_config, tmp_path):
    """4 steps straight == 2 steps, stop, resume from the checkpoint, 2 more (2 passes over the data)."""
    from vrft.train import run_grpo

    common = ["grpo.max_steps=4", "output.save_steps=2", "output.sample_every=1"]
    straight = run_grpo(make_config(overrides=common + [f"output.dir={tmp_path / 'a'}"]))

    cfg = make_config(overrides=common + [f"output.dir={tmp_path / 'b'}"])
    run_grpo(cfg, extra_callbacks=[StopAfter(2)])
    assert (tmp_path / "b" / "checkpoint-2").is_dir() and not (tmp_path / "b" / "checkpoint-4").exists()
    with pytest.raises(UserError, match="already holds an earlier run"):
        run_grpo(cfg)  # neither resume nor overwrite: refused
    seen = []
    resumed = run_grpo(
        make_config(overrides=common + [f"output.dir={tmp_path / 'b'}", "output.resume=true"]),
        extra_callbacks=[RecordSteps(seen)],
    )
    assert seen[0] == 3, "the resumed run must continue at step 3"

    a, b = state_dict_of(straight), state_dict_of(resumed)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)
    # same data order and completions: the samples of steps 3-4 are identical
    sa = [s for s in read_jsonl(tmp_path / "a" / "samples.jsonl")]
    sb = [s for s in read_jsonl(tmp_path / "b" / "samples.jsonl")]
    key = [(s["step"], s["record_id"], s["completion"]) for s in sa]
    assert [(s["step"], s["record_id"], s["completion"]) for s in sb] == key
    steps = [r["step"] for r in read_jsonl(tmp_path / "b" / "metrics.jsonl") if "train/reward" in r]
    assert steps == [1, 2, 3, 4]


def test_overwrite_replaces_an_earlier_run(make_config, tmp_path):
    """overwrite removes the earlier run's files (its manifest) and nothing else (issue 14)."""
    from vrft.train.run_dir import prepare_output_dir, release_output_dir

    out = tmp_path / "run"
    prepare_output_dir(out, resume=False)  # an earlier run: claims its outputs in the manifest
    release_output_dir(out)
    (out / "final").mkdir()
    (out / "final" / "model.safetensors").write_bytes(b"weights")
    (out / "metrics.jsonl").write_text('{"step": 1}\n')
    (out / "mydata").mkdir()
    (out / "mydata" / "results.csv").write_text("a,b\n1,2\n")  # the user's, not vrft's
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="output.overwrite=true"):
        prepare_output_dir(out, resume=False)
    assert prepare_output_dir(out, resume=False, overwrite=True) == (out, None)
    release_output_dir(out)
    assert not (out / "final").exists() and not (out / "metrics.jsonl").exists()
    assert (out / "mydata" / "results.csv").read_text() == "a,b\n1,2\n"
    assert (out / "notes.txt").read_text() == "mine"
