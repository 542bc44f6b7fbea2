"""`vrft train CONFIG [key=value ...]`: Visual-RFT (GRPO) from a config.

Multi-GPU / multi-node: launch the same command through accelerate or torchrun
(`accelerate launch --config_file configs/accelerate/zero3.yaml -m vrft.cli train CONFIG`); see docs/training.md.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML config (configs/paper/*.yaml, configs/tiny/*.yaml, ...)")
    parser.add_argument(
        "overrides",
        nargs=argparse.REMAINDER,
        help="dotted key=value overrides, e.g. grpo.max_steps=10 (options may follow them)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="resume from the last checkpoint in output.dir (= output.resume=true)",
    )


def run(args: argparse.Namespace) -> int:
    from vrft.config import load_config
    from vrft.train.builder import quiet_other_ranks
    from vrft.train.grpo import run_grpo

    main = quiet_other_ranks()
    overrides = [o for o in args.overrides if o != "--resume"]  # '--resume' may come after the overrides
    if args.resume or "--resume" in args.overrides:
        overrides.append("output.resume=true")
    cfg = load_config(args.config, overrides)
    final = run_grpo(cfg)
    if main:
        print(f"trained model: {final}")
    return 0
