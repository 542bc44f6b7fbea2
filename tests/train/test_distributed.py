"""Two processes (torchrun, gloo on CPU) run 2 GRPO steps of data-parallel training and end identical.

`torchrun --nproc_per_node 2` really starts two processes (unlike `accelerate launch --cpu
--num_processes 2`, which silently runs one). Each rank writes a checksum of its final weights.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from .conftest import read_jsonl, reward_module, state_dict_of, tiny_config

pytestmark = pytest.mark.slow  # two `accelerate launch` processes (~28 s)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_end_with_identical_weights(tmp_path):
    lib = reward_module(tmp_path)
    sys.path.insert(0, str(lib))
    try:
        cfg = tiny_config(tmp_path)  # 2 prompts per step over 2 processes: 1 prompt (x G=2) per rank
    finally:
        sys.path.remove(str(lib))
    config = tmp_path / "cfg.yaml"
    config.write_text(cfg.to_yaml())
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(lib), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")  # fmt: skip
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
           str(_free_port()), "-m", "vrft.cli", "train", str(config)]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "2 processes x 1 x accumulation 1" in proc.stderr

    run = tmp_path / "run"
    sums = [json.loads((run / "rank_checksums" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert sums[0] and sums[0] == sums[1], "the two ranks ended with different weights"
    before, after = state_dict_of(cfg.model.path), state_dict_of(run / "final")
    assert any((before[k] - after[k]).abs().max() > 0 for k in before), "training did not change the weights"
    rows = [r for r in read_jsonl(run / "metrics.jsonl") if "train/reward" in r]
    assert [r["step"] for r in rows] == [1, 2]  # written once (rank 0), not once per rank
