"""`vrft check-config FILE [key=value ...]`: check a training config as `vrft train` / `vrft sft` do, without
loading a model's weights.

Runs the schema (`vrft.config`) and the same checks against the world a run does before it starts
(`vrft.train.preflight`: model directory, records and images, rewards, trackers, output directories,
LoRA targets and `sft.max_length` from the model's config and processor files). Prints the resolved
config (every default filled in) and exits 0, or lists every problem and exits 2.
"""

from __future__ import annotations

import argparse
import sys

from vrft.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config", nargs="?", help="YAML config (configs/paper/*.yaml, configs/tiny/*.yaml, ...)"
    )
    parser.add_argument(
        "overrides",
        nargs=argparse.REMAINDER,
        help="dotted key=value overrides, e.g. grpo.beta=0.0 (options may follow them)",
    )
    parser.add_argument(
        "--no-path-checks",
        action="store_true",
        help="skip the checks that need model.path and data.train (for presets whose paths are placeholders)",
    )
    parser.add_argument(
        "--keys", action="store_true", help="list every config key with its default and meaning"
    )


def run(args: argparse.Namespace) -> int:
    from vrft.config import load_config, schema_help
    from vrft.train.preflight import preflight

    if args.keys:
        print(schema_help())
        return 0
    if not args.config:
        raise UserError("give a config file (or --keys to list the keys)")
    overrides = [o for o in args.overrides if o not in ("--no-path-checks", "--keys")]
    no_path_checks = args.no_path_checks or "--no-path-checks" in args.overrides
    cfg = load_config(args.config, overrides, check=False)
    preflight(cfg, check_paths=not no_path_checks)
    sys.stdout.write(cfg.to_yaml())
    print(f"{args.config}: OK", file=sys.stderr)
    return 0
