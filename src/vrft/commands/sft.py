"""`vrft sft CONFIG [key=value ...]`: the supervised fine-tuning baseline from the same config.

Reads model, data, sft and output (writes to output.sft_dir, default '<output.dir>-sft').
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML config (configs/paper/*.yaml, configs/tiny/*.yaml, ...)")
    parser.add_argument(
        "overrides",
        nargs=argparse.REMAINDER,
        help="dotted key=value overrides, e.g. sft.max_steps=10 (options may follow them)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="resume from the last checkpoint in the SFT output dir"
    )


def run(args: argparse.Namespace) -> int:
    from vrft.config import load_config
    from vrft.train.builder import quiet_other_ranks
    from vrft.train.sft import run_sft

    main = quiet_other_ranks()
    overrides = [o for o in args.overrides if o != "--resume"]  # '--resume' may come after the overrides
    if args.resume or "--resume" in args.overrides:
        overrides.append("output.resume=true")
    cfg = load_config(args.config, overrides)
    final = run_sft(cfg)
    if main:
        print(f"trained model: {final}")
    return 0
