"""`vrft sft CONFIG [key=value ...]`: the supervised fine-tuning baseline from the same config.

Reads model, data, sft and output (writes to output.sft_dir, default '<output.dir>-sft').
"""

from __future__ import annotations

import argparse

from vrft.commands._run_config import add_config_arguments, run_from_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(
        parser,
        override_example="sft.max_steps=10",
        resume_help="resume from the last checkpoint in the SFT output dir",
    )


def run(args: argparse.Namespace) -> int:
    from vrft.train.sft import run_sft

    return run_from_config(args, run_sft)
