"""`vrft sft CONFIG [key=value ...]`: the supervised fine-tuning baseline from the same config.

Reads model, data, sft and output (writes to output.sft_dir, default '<output.dir>-sft').
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML config (configs/paper/*.yaml, configs/tiny/*.yaml, ...)")
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. sft.max_steps=10")
    parser.add_argument(
        "--resume", action="store_true", help="resume from the last checkpoint in the SFT output dir"
    )


def run(args: argparse.Namespace) -> int:
    from vrft.config import load_config
    from vrft.train.builder import quiet_other_ranks
    from vrft.train.sft import run_sft

    main = quiet_other_ranks()
    overrides = list(args.overrides) + (["output.resume=true"] if args.resume else [])
    cfg = load_config(args.config, overrides)
    final = run_sft(cfg)
    if main:
        print(f"trained model: {final}")
    return 0
