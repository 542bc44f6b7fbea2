"""`vrft train CONFIG [key=value ...]`: Visual-RFT (GRPO) from a config.

Multi-GPU / multi-node: launch the same command through accelerate or torchrun
(`accelerate launch --config_file configs/accelerate/zero3.yaml -m vrft.cli train CONFIG`); see docs/training.md.
"""

from __future__ import annotations

import argparse

from vrft.commands._run_config import add_config_arguments, run_from_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(
        parser,
        override_example="grpo.max_steps=10",
        resume_help="resume from the last checkpoint in output.dir (= output.resume=true)",
    )


def run(args: argparse.Namespace) -> int:
    from vrft.train.grpo import run_grpo

    return run_from_config(args, run_grpo)
