"""`vrft demo [--out DIR] [--quick] [--config YAML] [key=value ...]`: the paper's few-shot experiment in
miniature (baseline vs SFT vs Visual-RFT on novel shapes), built and run offline."""

from __future__ import annotations

import argparse
import os

# what the demo writes at the top of --out (more names it creates are added to the manifest as it goes)
DEMO_OUTPUTS = ("settings.json", "run.json", "world", "work", "fewshot", "eval", "runs", "results.json",
                "results.md", "report.html", "novel_map_vs_shots.png", "rft_rewards_*shot.png")  # fmt: skip


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
    from vrft.outputs import OutputDir, check_dir_output

    check_dir_output(args.out, inputs=[args.config, args.cache_dir], writes=DEMO_OUTPUTS)
    settings = load_settings(args.config, quick=args.quick, overrides=args.overrides)
    # locked for the whole run; the manifest lists what the demo wrote (vrft.outputs)
    with OutputDir(args.out, "demo") as d:
        d.claim(DEMO_OUTPUTS)
        before = set(os.listdir(args.out))
        try:
            rows = run_demo(args.out, settings, cache_dir=args.cache_dir)
        finally:
            d.add(n for n in set(os.listdir(args.out)) - before if not n.startswith(".vrft"))
    print(table_markdown(rows))
    print(f"\nwrote {args.out}/results.json, results.md, report.html and plots")
    return 0
