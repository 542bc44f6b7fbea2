"""`vrft demo [--out DIR] [--quick] [--config YAML] [key=value ...]`: the paper's few-shot experiment in
miniature (baseline vs SFT vs Visual-RFT on novel shapes), built and run offline."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo-out", help="output directory (default: demo-out)")
    parser.add_argument(
        "--quick", action="store_true", help="a smaller run of the same pipeline (about 5 minutes on 2 cores)"
    )
    parser.add_argument("--config", help="demo settings YAML (see configs/demo/demo.yaml)")
    parser.add_argument(
        "--cache-dir", help="where warm starts are cached (default: $VRFT_CACHE/demo or ~/.cache/vrft/demo)"
    )
    parser.add_argument("overrides", nargs="*", help="dotted key=value settings, e.g. rft.learning_rate=5e-4")


def run(args: argparse.Namespace) -> int:
    from vrft.cpu import tune_cpu_process

    tune_cpu_process()  # before torch is imported (OpenMP waiting, allocator reuse)
    from vrft.demo import load_settings, run_demo
    from vrft.demo.results import table_markdown

    settings = load_settings(args.config, quick=args.quick, overrides=args.overrides)
    rows = run_demo(args.out, settings, cache_dir=args.cache_dir)
    print(table_markdown(rows))
    print(f"\nwrote {args.out}/results.json, results.md, report.html and plots")
    return 0
