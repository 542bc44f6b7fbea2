"""LoRA under sharding (FSDP / DeepSpeed ZeRO-3): the final model is the gathered adapter merged into the
untouched base weights on rank 0, the same model an in-memory merge of the trained adapter gives.

(Sharding itself cannot run here: accelerate only enables FSDP on GPUs and DeepSpeed needs CUDA; the
distribution is faked so `save_final` takes its sharded path: adapter saved by the Trainer, merged on
rank 0 into the base read from disk.)"""

from __future__ import annotations

import copy

import pytest
import torch

from .conftest import state_dict_of

pytestmark = pytest.mark.slow  # a LoRA train run (~1 s)


def test_sharded_lora_save_merges_the_gathered_adapter(make_config, monkeypatch):
    from transformers import TrainerCallback

    from vrft.train import finalize, run_grpo, speed

    cfg = make_config(arch="qwen2_vl", overrides=["model.lora.enabled=true", "model.lora.r=4"])
    in_memory = {}

    class Merge(TrainerCallback):
        def on_train_end(self, args, state, control, model=None, **kwargs):
            merged = copy.deepcopy(model).merge_and_unload()
            in_memory.update({k: v.detach().clone() for k, v in merged.state_dict().items()})

    calls = []
    real_merge = finalize.merge_saved_adapter

    def merge(*args, **kwargs):
        calls.append(args)
        return real_merge(*args, **kwargs)

    monkeypatch.setattr(finalize, "merge_saved_adapter", merge)
    monkeypatch.setattr(speed, "distribution_of", lambda accelerator: "zero3")
    final = run_grpo(cfg, extra_callbacks=[Merge()])
    assert calls and str(calls[0][0]) == str(cfg.model.path)  # merged into the base read from disk
    assert (final.parent / "adapter" / "adapter_model.safetensors").is_file()

    saved, base = state_dict_of(final), state_dict_of(cfg.model.path)
    # same tensors as the in-memory merge (saved names may differ from module names: compare by value)
    assert len(saved) == len(in_memory)
    memory_values = sorted(in_memory.values(), key=lambda t: (tuple(t.shape), float(t.double().sum())))
    saved_values = sorted(saved.values(), key=lambda t: (tuple(t.shape), float(t.double().sum())))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(memory_values, saved_values))
    assert any(not torch.equal(saved[k], base[k]) for k in saved if k in base)  # the adapter was merged
