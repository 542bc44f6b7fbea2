"""Two processes (torchrun, gloo on CPU) where each holds HALF of a group (G = 4, 2 completions per rank):
the rollout and the hooks work on each rank's part, DDP ends with identical weights on both ranks, and
those are the weights the same run gives with the speed-ups off."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = r"""
import hashlib, json, os, sys, warnings
import numpy as np, torch
from datasets import Dataset
from PIL import Image
from trl import GRPOConfig, GRPOTrainer
from vrft.models.load import load_model_and_processor
from vrft.train import speed
from vrft.train.vision_dedup import count_vision

warnings.filterwarnings("ignore")
out = sys.argv[1]
rng = np.random.default_rng(0)
images = [Image.fromarray(rng.integers(0, 256, (48, 56, 3), dtype=np.uint8)) for _ in range(3)]
several = sys.argv[3] == "several"  # two images per prompt (the prompts share image 1), else one
n = 2 if several else 1
prompt = lambda t: [{"role": "user", "content": [{"type": "image"}] * n + [{"type": "text", "text": t}]}]
prompts = [prompt("find it"), prompt("where is it")]
if several:
    data = Dataset.from_dict({"prompt": prompts, "images": [[images[0], images[1]], [images[1], images[2]]]})
else:
    data = Dataset.from_dict({"prompt": prompts, "image": images[:2]})
args = GRPOConfig(output_dir=out, use_cpu=True, bf16=False, report_to="none", seed=0, num_generations=4,
                  per_device_train_batch_size=2, max_completion_length=6, max_steps=1, save_strategy="no",
                  learning_rate=1e-3, beta=0.04, activation_checkpointing=False, logging_steps=1)
reward = lambda completions, **k: [float(len(str(c)) % 5) for c in completions]
def train(on):
    model, processor = load_model_and_processor(sys.argv[2], dtype="float32")
    rollout = speed.shared_prefill_rollout(model, on)
    with speed.quiet_rollout_warning():
        trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=data,
                              processing_class=processor, rollout_func=rollout)
    vision = speed.dedup_vision(trainer, on)
    prefix = speed.share_prompt_prefix(trainer, on)
    with count_vision(trainer.model) as seen:
        trainer.train()
    state = trainer.accelerator.unwrap_model(trainer.model).state_dict()
    return trainer, rollout, vision, prefix, seen, {k: v.detach().clone() for k, v in state.items()}

trainer, rollout, vision, prefix, seen, state = train(True)
off_state = train(False)[-1]
rank = int(os.environ["RANK"])
digest = hashlib.sha256(b"".join(state[k].contiguous().numpy().tobytes() for k in sorted(state)))
json.dump({"rows": rollout.stats.rows, "prefilled": rollout.stats.prefilled, "encoded": seen.per_call,
           "setting": list(vars(speed.setting_of(trainer)).values()),
           "images_in": vision[0].stats.images_in, "prefix_calls": prefix[0].stats.shared_calls,
           "weights": digest.hexdigest(),
           "max_diff_vs_off": max((state[k] - off_state[k]).abs().max().item() for k in state)},
          open(os.path.join(out, f"rank{rank}.json"), "w"))
# Tear the gloo group down before exit: leaving it to interpreter shutdown sometimes aborted a rank
# ("terminate called without an active exception") on a loaded machine.
torch.distributed.barrier()
torch.distributed.destroy_process_group()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_ranks(tmp_path: Path, media: str) -> list[dict]:
    from vrft.models.tiny import cached_tiny

    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="", TRL_EXPERIMENTAL_SILENCE="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
           str(_free_port()), str(script), str(tmp_path), str(cached_tiny("qwen2_vl")), media]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return [json.loads((Path(tmp_path) / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.slow  # two fresh processes (imports dominate: ~40 s on a loaded 2-core machine)
def test_split_groups_over_two_processes(tmp_path):
    ranks = _two_ranks(tmp_path, "one")
    for r in ranks:
        assert r["setting"] == ["fp32", "ddp", "qwen2_vl", "image"]
        assert r["rows"] == 2 and r["prefilled"] == 1  # 2 copies of ONE prompt on this rank
        assert r["encoded"] == [1, 1]  # generation + policy pass, one image each
        assert r["images_in"] == 1 + 2  # 1 in generation, both copies in the policy pass
        assert r["prefix_calls"] == 1  # the policy pass shared the prompt prefix
    assert ranks[0]["weights"] == ranks[1]["weights"]
    # the same training as with the speed-ups off: gradients agree to ~1e-6 (test_train_step.py), and
    # Adam turns float noise on ~zero gradients into steps of up to lr (one step, lr 1e-3)
    assert all(r["max_diff_vs_off"] <= 1e-3 * 1.01 for r in ranks), ranks


@pytest.mark.slow  # two fresh processes, as above
def test_split_groups_over_two_processes_with_several_images(tmp_path):
    """The same with two images per prompt (issue 20): each rank encodes its prompt's 2 images once per
    pass, and DDP ends with identical weights equal to the run without the speed-ups."""
    ranks = _two_ranks(tmp_path, "several")
    for r in ranks:
        assert r["setting"] == ["fp32", "ddp", "qwen2_vl", "images"]
        assert r["rows"] == 2 and r["prefilled"] == 1
        assert r["encoded"] == [2, 2]  # generation + policy pass: the 2 images of this rank's prompt
        assert r["images_in"] == 2 + 4  # generation: one prompt's 2 images; policy pass: 2 copies x 2
        assert r["prefix_calls"] == 1
    assert ranks[0]["weights"] == ranks[1]["weights"]
    assert all(r["max_diff_vs_off"] <= 1e-3 * 1.01 for r in ranks), ranks
