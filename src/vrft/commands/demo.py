"""`vrft demo [--out DIR] [--quick] [--config YAML] [--rebuild-base] [key=value ...]`: the paper's
experiments in miniature (baseline vs SFT vs Visual-RFT on novel shapes), run offline from the shipped
miniature base model; `vrft demo build-base [--out DIR] [key=value ...]` rebuilds that base from nothing."""

from __future__ import annotations

import argparse
import os

# what the demo writes at the top of --out (more names it creates are added to the manifest as it goes)
DEMO_OUTPUTS = ("settings.json", "run.json", "world", "fewshot", "eval", "runs", "results.json", "results.md",
                "report.html", "*_vs_shots.png", "rft_rewards_*.png")  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        default=None,
        help="output directory (default: demo-out; build-base: the package's base_model)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smaller run of the same pipeline (at most 3 minutes on 2 cores)",
    )
    parser.add_argument("--config", help="demo settings YAML (see configs/demo/demo.yaml)")
    parser.add_argument(
        "--rebuild-base",
        action="store_true",
        help="build the base model from nothing first (base.rebuild=true)",
    )
    parser.add_argument(
        "--cache-dir", help="where a rebuilt base is cached (default: $VRFT_CACHE/demo or ~/.cache/vrft/demo)"
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        help="dotted key=value settings, e.g. rft.learning_rate=5e-4 (first word 'build-base': rebuild the base)",
    )
    _take_trailing_overrides(parser)


def _take_trailing_overrides(parser: argparse.ArgumentParser) -> None:
    """`vrft demo build-base --out DIR key=value`: argparse fills the positional `overrides` once, with
    the words BEFORE the first option ('build-base'), and would call the key=value words after it
    "unrecognized arguments"; this parser adds them to `overrides` instead (options stay argparse's)."""
    plain = parser.parse_known_args

    def parse_known_args(args=None, namespace=None):
        ns, extra = plain(args, namespace)
        words = [a for a in extra if not a.startswith("-")]
        if words:
            ns.overrides = [*(ns.overrides or []), *words]
        return ns, [a for a in extra if a.startswith("-")]

    parser.parse_known_args = parse_known_args  # type: ignore[method-assign]


def run(args: argparse.Namespace) -> int:
    from vrft.cpu import tune_cpu_process

    tune_cpu_process()  # before torch is imported (OpenMP waiting, allocator reuse)
    overrides = list(args.overrides)
    if overrides and overrides[0] == "build-base":
        return _build_base(args, overrides[1:])
    from vrft.demo import load_settings, run_demo
    from vrft.demo.experiment import check_settings
    from vrft.demo.results import table_markdown
    from vrft.demo.settings import caveat
    from vrft.outputs import OutputDir, check_dir_output

    if args.rebuild_base:
        overrides.append("base.rebuild=true")
    out = args.out or "demo-out"
    check_dir_output(out, inputs=[args.config, args.cache_dir], writes=DEMO_OUTPUTS)
    settings = load_settings(args.config, quick=args.quick, overrides=overrides)
    check_settings(settings)  # every setting checked before any work
    # locked for the whole run; the manifest lists what the demo wrote (vrft.outputs)
    with OutputDir(out, "demo") as d:
        d.claim(DEMO_OUTPUTS)
        before = set(os.listdir(out))
        try:
            rows = run_demo(out, settings, cache_dir=args.cache_dir)
        finally:
            d.add(n for n in set(os.listdir(out)) - before if not n.startswith(".vrft"))
    print(table_markdown(rows))
    note = caveat(settings)
    if note:
        print(f"\n{note}")
    print(f"\nwrote {out}/results.json, results.md, report.html and plots")
    return 0


def _build_base(args: argparse.Namespace, overrides: list[str]) -> int:
    import logging

    from vrft.demo.base import SHIPPED_BASE, build_base, check_base_output
    from vrft.demo.settings import BaseBuildSettings, load_schema

    logging.getLogger("vrft").setLevel(logging.INFO)
    settings = load_schema(BaseBuildSettings, args.config, overrides=overrides, what="demo base setting")
    out = check_base_output(args.out or SHIPPED_BASE)  # before the build (29 min by default)
    out = build_base(out, settings)
    print(f"built the demo base into {out} (card: {out / 'card.json'})")
    return 0
