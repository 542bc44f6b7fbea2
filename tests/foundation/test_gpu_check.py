"""`benchmarks/gpu_check.py --dry-run`: the GPU check runs end to end at tiny sizes on CPU and writes
gpu.json / gpu.md with every section filled (no section error)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(out: Path, *extra: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    cmd = [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--out", str(out), "--dry-run", *extra]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads((out / "gpu.json").read_text())


@pytest.mark.slow  # an `accelerate launch` subprocess (~15 s)
def test_gpu_check_dry_run(tmp_path):
    result = _run(tmp_path, "--skip", "fsdp2")
    sec = result["sizes"]["dry"]
    assert result["dry_run"] and sec["model"]["parameters"] > 0
    runs = [r["run"] for r in sec["grpo"]]
    assert runs == ["vrft, speed-ups off", "vrft, speed-ups on (all three)", "TRL GRPOTrainer as-is"]
    for r in sec["grpo"] + [sec["lora"]]:
        assert r["completions_per_s"] > 0 and r["tokens_per_s_per_gpu"] > 0
        assert set(r["split_s"]) == {"generation", "logprob", "update", "reward", "other"}
    off, on = sec["grpo"][0], sec["grpo"][1]
    assert on["images_encoded_per_step"] < off["images_encoded_per_step"]  # one encode per distinct image
    agree = sec["logprob_agreement"]
    assert agree["within_bf16_rule"] and agree["prefix_shared_calls"] == 1
    assert agree["images_encoded"] == 2 and agree["images_in"] == 4
    assert sec["lora"]["merged_saved"]
    assert [r["batch"] for r in sec["eval"]] == [1, 2, 4] and all(r["prompts_per_s"] > 0 for r in sec["eval"])
    assert sec["fsdp2"] == {"on": "skipped (--skip)", "auto": "skipped (--skip)"}
    md = (tmp_path / "gpu.md").read_text()
    assert "| vrft, speed-ups on (all three) |" in md and "logprob_agreement" in md


@pytest.mark.slow  # an `accelerate launch` subprocess (~1 minute on a loaded 2-core machine)
def test_gpu_check_dry_run_fsdp2_section(tmp_path):
    result = _run(tmp_path, "--skip", "grpo,logprob,lora,eval", "--fsdp-speedups", "on")
    run = result["sizes"]["dry"]["fsdp2"]["on"]
    assert run["returncode"] == 0 and run["final_saved"] and run["steps_logged"] == 2, run
    # on CPU accelerate runs it without FSDP: the speed-ups' lines still say what ran
    assert len(run["speed_lines"]) == 3 and all(" on " in line for line in run["speed_lines"])
