"""What `vrft train` and `vrft sft` share: CONFIG + key=value overrides (+ --resume), then one runner."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def add_config_arguments(parser: argparse.ArgumentParser, *, override_example: str, resume_help: str) -> None:
    """CONFIG, dotted overrides (options may follow them) and --resume."""
    parser.add_argument("config", help="YAML config (configs/paper/*.yaml, configs/tiny/*.yaml, ...)")
    parser.add_argument(
        "overrides",
        nargs=argparse.REMAINDER,
        help=f"dotted key=value overrides, e.g. {override_example} (options may follow them)",
    )
    parser.add_argument("--resume", action="store_true", help=resume_help)


def run_from_config(args: argparse.Namespace, runner: Callable[..., Path]) -> int:
    """Load the config with the overrides (`--resume` -> output.resume=true) and call `runner(cfg)`."""
    from vrft.config import load_config
    from vrft.train.processes import quiet_other_ranks

    main = quiet_other_ranks()
    overrides = [o for o in args.overrides if o != "--resume"]  # '--resume' may come after the overrides
    if args.resume or "--resume" in args.overrides:
        overrides.append("output.resume=true")
    final = runner(load_config(args.config, overrides))
    if main:
        print(f"trained model: {final}")
    return 0
