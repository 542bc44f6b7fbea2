"""`grpo.speedups: auto | on | off`: each speed-up runs only where a test proves it (auto), is forced (on)
or left out (off), with one logged line each; checks that stand a speed-up aside even when forced
(FSDP v1 without a parameter gather, other transformers keyword names); nn.DataParallel refused."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from vrft.errors import UserError
from vrft.train import speed
from vrft.train.speed import PROVEN, Setting, decide

ROOT = Path(__file__).resolve().parents[2]


def test_config_default_is_auto_and_switches_override():
    from pydantic import ValidationError

    from vrft.config import GRPOSection

    g = GRPOSection()
    assert g.speedups == "auto" and g.shared_prefill is None
    assert speed.mode_of("auto", None) == "auto"
    assert speed.mode_of("auto", False) == "off" and speed.mode_of("off", True) == "on"
    with pytest.raises(ValidationError, match="speedups"):
        GRPOSection(speedups="fast")


@pytest.mark.parametrize("speedup", speed.SPEEDUPS)
def test_auto_on_only_where_proven(speedup):
    proven = Setting("fp32", "single", "qwen2_5_vl")
    assert decide(speedup, "auto", proven).on
    assert "proven by tests/speed/test_train_step.py" in decide(speedup, "auto", proven).line
    for setting in (
        Setting("fp16", "single", "qwen2_5_vl"),
        Setting("bf16", "zero3", "qwen2_5_vl"),
        Setting("bf16", "fsdp1", "qwen2_vl"),
        Setting("fp32", "ddp", "qwen3_vl"),
    ):
        d = decide(speedup, "auto", setting)
        assert not d.on and "stands aside (grpo.speedups=auto): not proven for" in d.line
        assert setting.describe() in d.line and f"grpo.{speedup}=true" in d.line
        forced = decide(speedup, "on", setting)
        assert forced.on and "NOT proven" in forced.line
    assert not decide(speedup, "off", proven).on
    # a reason it cannot run at all wins over "on"
    d = decide(speedup, "on", proven, problem="something differs")
    assert not d.on and "stands aside: something differs" in d.line
    # a family without support: never on
    assert not decide(speedup, "on", Setting("fp32", "single", "llava_next")).on


def test_under_zero3_everything_stands_aside_in_auto():
    for speedup in speed.SPEEDUPS:
        assert not decide(speedup, "auto", Setting("bf16", "zero3", "qwen2_5_vl")).on
        assert not decide(speedup, "auto", Setting("fp32", "zero3", "qwen2_5_vl")).on


def test_docs_table_matches_the_proofs_and_the_tests_exist():
    docs = (ROOT / "docs" / "speed.md").read_text(encoding="utf-8")
    assert speed.proven_table() in docs, "docs/speed.md: paste vrft.train.speed.proven_table()"
    for proof in PROVEN:
        path, _, name = proof.test.partition("::")
        source = (ROOT / path).read_text(encoding="utf-8")
        assert re.search(rf"^def {re.escape(name)}\(", source, re.M), proof.test


def test_apply_stands_aside_by_rule_on_a_real_trainer(tmp_path, monkeypatch, caplog):
    from tests.speed.conftest import make_trainer

    trainer = make_trainer(tmp_path, "qwen2_5_vl", speed=False)
    rollout = speed.rollout_candidate(trainer.model, "auto")
    trainer.rollout_func = rollout  # as if GRPOTrainer had been built with it
    modes = dict.fromkeys(speed.SPEEDUPS, "auto")
    monkeypatch.setattr(speed, "distribution_of", lambda accelerator: "zero3")
    # Only the speed-up policy's own lines count: an earlier test may have left the `vrft` logger at
    # INFO, so the model loader's "loaded ..." line can also reach caplog.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="vrft.train.speed"):
        applied = speed.apply(trainer, rollout, modes)
    lines = [r.getMessage() for r in caplog.records if r.name == "vrft.train.speed"]
    assert len(lines) == 3 and all("stands aside" in m and "DeepSpeed ZeRO-3" in m for m in lines)
    assert trainer.rollout_func is None and applied.rollout is None  # TRL's own generation runs
    assert applied.dedup == [] and applied.prefix == []

    monkeypatch.setattr(speed, "distribution_of", lambda accelerator: "single")
    caplog.clear()
    trainer.rollout_func = rollout
    with caplog.at_level(logging.INFO, logger="vrft.train.speed"):
        applied = speed.apply(trainer, rollout, modes)
    assert trainer.rollout_func is rollout and len(applied.dedup) == 1 and len(applied.prefix) == 1
    assert sum("on (qwen2_5_vl, fp32, one process; proven by" in r.getMessage() for r in caplog.records) == 3


def test_real_setting_of_a_trainer(tmp_path):
    from tests.speed.conftest import make_trainer

    trainer = make_trainer(tmp_path, "qwen2_vl", speed=False, dtype="bfloat16")
    assert speed.setting_of(trainer) == Setting("bf16", "single", "qwen2_vl")


# ------------------------------------------------------------------------------ private API checks
class _OldDecoder(torch.nn.Module):
    def forward(self, inputs_embeds=None, attention_mask=None, position_ids=None, past_key_values=None,
                use_cache=None):  # fmt: skip
        return inputs_embeds


class _OldTower(torch.nn.Module):
    def forward(self, pixels, grid):
        return pixels


def _vlm(model_type: str) -> torch.nn.Module:
    model = torch.nn.Module()
    model.config = SimpleNamespace(model_type=model_type)
    model.language_model = _OldDecoder()
    model.visual = _OldTower()
    return model


def test_other_keyword_names_stand_aside_even_when_forced():
    from vrft.train.prefix_share import prefix_share_problem
    from vrft.train.rollout import rollout_problem
    from vrft.train.vision_dedup import vision_dedup_problem

    model = _vlm("qwen3_vl")
    problem = prefix_share_problem(model)
    assert "'cache'" in problem and "'visual_pos_masks'" in problem and "'deepstack_visual_embeds'" in problem
    assert "'hidden_states'" in vision_dedup_problem(model) and "'grid_thw'" in vision_dedup_problem(model)
    trainer = SimpleNamespace(
        model=model, accelerator=SimpleNamespace(state=SimpleNamespace(fsdp_plugin=None))
    )
    assert "'cache'" in rollout_problem(trainer, "single")
    d = decide("share_prompt_prefix", "on", Setting("fp32", "single", "qwen3_vl"), problem)
    assert not d.on and "takes no 'cache'" in d.line
    # the real tiny models pass the check
    from vrft.models.load import load_model_and_processor
    from vrft.models.tiny import cached_tiny

    real, _ = load_model_and_processor(cached_tiny("qwen3_vl"), dtype="float32")
    assert prefix_share_problem(real) is None and vision_dedup_problem(real) is None


def test_fsdp1_without_a_parameter_gather(monkeypatch):
    from vrft.train.rollout import _gather_backend, rollout_problem

    state = SimpleNamespace(fsdp_plugin=SimpleNamespace(fsdp_version=1), deepspeed_plugin=None)
    trainer = SimpleNamespace(model=torch.nn.Linear(1, 1), accelerator=SimpleNamespace(state=state))
    # TRL's private `_dist` absent: vrft builds TRL's public DistributedBackend itself
    backend = _gather_backend(trainer)
    assert backend is not None and backend.fsdp_version == 1
    assert rollout_problem(trainer, "fsdp1") is None
    # neither: generation would run on parameter shards, so the rollout stands aside
    monkeypatch.setitem(sys.modules, "trl.distributed", None)
    assert _gather_backend(trainer) is None
    assert "FSDP v1" in rollout_problem(trainer, "fsdp1")
    # the trainer's own `_dist`, when TRL sets it, is used as it is
    trainer._dist = SimpleNamespace(summon_full_params=lambda *a, **k: None)
    assert _gather_backend(trainer) is trainer._dist


def test_data_parallel_is_refused(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="accelerate launch"):
        speed.refuse_data_parallel(2)
    speed.refuse_data_parallel(1)

    from tests.train.conftest import reward_module, tiny_config
    from trl import GRPOConfig

    from vrft.train import run_grpo

    monkeypatch.syspath_prepend(str(reward_module(tmp_path)))
    cfg = tiny_config(tmp_path)
    monkeypatch.setattr(GRPOConfig, "n_gpu", property(lambda self: 4))
    with pytest.raises(UserError, match=r"4 GPUs are visible to one process.*nn.DataParallel"):
        run_grpo(cfg)
    assert not (tmp_path / "run" / "final").exists()


# ------------------------------------------------------------------------- several images and video
def test_media_of_reads_the_raw_columns():
    from datasets import Dataset
    from PIL import Image

    pic = Image.new("RGB", (8, 8))
    text = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "q"}]}]
    one = Dataset.from_dict({"prompt": [text], "image": [pic]})
    assert speed.media_of(one) == "image"
    assert speed.media_of(Dataset.from_dict({"prompt": [text] * 2, "images": [[pic], [pic]]})) == "image"
    lazy = Dataset.from_dict({"prompt": [text] * 2, "images": [["a.png"], ["b.png", "c.png"]]})
    lazy = lazy.with_transform(lambda batch: 1 / 0)  # never decoded: only the Arrow list lengths are read
    assert speed.media_of(lazy) == "images"
    video = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "when?"}]}]
    assert speed.media_of(Dataset.from_dict({"prompt": [text, video]})) == "video"
    assert speed.media_of(Dataset.from_dict({"prompt": [text], "video": ["v.mp4"]})) == "video"
    assert speed.media_of(Dataset.from_dict({"prompt": ["plain text"]})) == "image"
    assert speed.media_of(None) == "image"


def test_auto_for_several_images_and_video():
    for speedup in speed.SPEEDUPS:
        for family in ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "smolvlm"):
            for precision in ("fp32", "bf16"):
                d = decide(speedup, "auto", Setting(precision, "single", family, "images"))
                assert d.on and "tests/speed/test_media.py::" in d.line, d.line
        for family in ("qwen2_vl", "qwen2_5_vl", "qwen3_vl"):
            assert decide(speedup, "auto", Setting("bf16", "single", family, "video")).on
        assert decide(speedup, "auto", Setting("fp32", "ddp", "qwen2_vl", "images")).on
        # SmolVLM takes no video input; video under DDP and media under FSDP2 in bf16 are not proven
        for setting in (
            Setting("fp32", "single", "smolvlm", "video"),
            Setting("fp32", "ddp", "qwen2_vl", "video"),
            Setting("bf16", "fsdp2", "qwen2_5_vl", "images"),
        ):
            d = decide(speedup, "auto", setting)
            assert not d.on and speed.MEDIA[setting.media] in d.line, d.line
    assert decide("dedup_images", "auto", Setting("fp32", "ddp", "qwen2_vl", "image")).on
    for media in ("images", "video"):  # FSDP2 (qwen2_5_vl): the hooks, not the shared prefill
        assert decide("dedup_images", "auto", Setting("fp32", "fsdp2", "qwen2_5_vl", media)).on
        assert decide("share_prompt_prefix", "auto", Setting("fp32", "fsdp2", "qwen2_5_vl", media)).on
        d = decide("shared_prefill", "auto", Setting("fp32", "fsdp2", "qwen2_5_vl", media))
        assert not d.on and speed.MEDIA[media] in d.line


def test_setting_of_a_trainer_with_several_images(tmp_path):
    from tests.speed.conftest import make_trainer

    trainer = make_trainer(tmp_path, "smolvlm", speed=False, several=True)
    assert speed.setting_of(trainer) == Setting("fp32", "single", "smolvlm", "images")
    rollout = speed.rollout_candidate(trainer.model, "auto")
    trainer.rollout_func = rollout
    applied = speed.apply(trainer, rollout, dict.fromkeys(speed.SPEEDUPS, "auto"))
    assert applied.rollout is rollout and len(applied.dedup) == 1 and len(applied.prefix) == 1
    assert all(
        "(smolvlm, fp32, one process, several images per prompt; proven by tests/speed/test_media.py::" in line
        for line in applied.lines
    ), applied.lines
