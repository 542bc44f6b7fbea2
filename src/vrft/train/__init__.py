"""Training: Visual-RFT (GRPO, `run_grpo`) and the SFT baseline (`run_sft`) on TRL's trainers.

from vrft.config import load_config
from vrft.train import run_grpo, run_sft
final_model_dir = run_grpo(load_config("configs/tiny/grpo_detection.yaml", ["grpo.max_steps=2"]))
"""

from __future__ import annotations


def run_grpo(cfg, **kwargs):
    """See `vrft.train.grpo.run_grpo` (imported lazily: torch / TRL load only when training)."""
    from vrft.train.grpo import run_grpo as _run

    return _run(cfg, **kwargs)


def run_sft(cfg, **kwargs):
    """See `vrft.train.sft.run_sft`."""
    from vrft.train.sft import run_sft as _run

    return _run(cfg, **kwargs)


__all__ = ["run_grpo", "run_sft"]
