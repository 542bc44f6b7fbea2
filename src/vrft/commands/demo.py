"""`vrft demo [--out DIR] [--quick] [--config YAML] [--rebuild-base] [key=value ...]`: the paper's
experiments in miniature (baseline vs SFT vs Visual-RFT on novel shapes), run offline from the shipped
miniature base model; `vrft demo build-base [--out DIR] [key=value ...]` rebuilds that base from nothing;
`vrft demo build-world --out DIR [parts=a,b] [key=value ...]` draws parts of the demo's shapes world (the
data the base knows: white background, 112 px, the demo's prompts), e.g. for configs/tiny/;
`vrft demo export-base --out DIR` copies the shipped base there (hash-checked), a model that answers in
format to start small runs from."""

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
        help="dotted key=value settings, e.g. rft.learning_rate=5e-4 (first word 'build-base': rebuild the base; "
        "'build-world': draw parts of the world, parts=a,b; 'export-base': copy the shipped base to --out)",
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
    if overrides and overrides[0] == "build-world":
        return _build_world(args, overrides[1:])
    if overrides and overrides[0] == "export-base":
        return _export_base(args, overrides[1:])
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


def _build_world(args: argparse.Namespace, overrides: list[str]) -> int:
    """Draw parts of the demo world (`vrft.demo.world.build_world`; `parts=` picks them, default base_train)
    under --out, each with its records.jsonl; `negatives=false` drops the 'No Objects' prompts of the
    detection parts (as the demo's training sets); the other words are `world.*` settings without the prefix."""
    from vrft.demo.settings import WorldSettings, load_schema
    from vrft.demo.world import SEED_OFFSETS, build_world
    from vrft.errors import UserError
    from vrft.outputs import OutputDir, check_dir_output

    if not args.out:
        raise UserError("demo build-world: --out DIR is required (where the parts are drawn)")
    parts_words = [w for w in overrides if w.startswith(("parts=", "negatives="))]
    negatives = "negatives=false" not in parts_words
    parts = tuple(
        p for w in parts_words if w.startswith("parts=") for p in w.removeprefix("parts=").split(",") if p
    ) or ("base_train",)
    if any(w.startswith("negatives=") and w not in ("negatives=true", "negatives=false") for w in parts_words):
        raise UserError("demo build-world: negatives= takes true or false")
    unknown = [p for p in parts if p not in SEED_OFFSETS]
    if unknown:
        raise UserError(f"demo build-world: unknown part(s) {', '.join(unknown)}; known: {', '.join(SEED_OFFSETS)}")
    settings = load_schema(WorldSettings, args.config, overrides=[w for w in overrides if w not in parts_words],
                           what="demo world setting")  # fmt: skip
    out = check_dir_output(args.out, writes=parts)
    with OutputDir(out, "demo-world") as d:
        d.claim(parts, clean=True)
        world = build_world(settings, out, parts)
        if not negatives:  # detection parts without the 'No Objects' prompts of absent shapes
            from vrft.data.records import load_records, save_records

            for part in parts:
                recs = load_records(world[part])
                if all(r.task == "detection" for r in recs):
                    save_records([r for r in recs if r.boxes], world[part])
    for part in parts:
        print(f"{part}: {world[part]}")
    return 0


def _export_base(args: argparse.Namespace, overrides: list[str]) -> int:
    """Copy the shipped base (checked against its card) to --out: a model that answers in format."""
    import shutil
    from pathlib import Path

    from vrft.demo.base import SHIPPED_BASE, check_base_output, replace_dir, verify_base
    from vrft.errors import UserError

    if overrides:
        raise UserError(f"demo export-base: takes no settings (got {' '.join(overrides)})")
    if not args.out:
        raise UserError("demo export-base: --out DIR is required (where the base is copied)")
    card = verify_base(SHIPPED_BASE)
    out = check_base_output(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.new-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(SHIPPED_BASE, tmp, ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
    replace_dir(tmp, Path(out))
    print(f"copied the demo base ({card['weights_sha256'][:12]}...) into {out}")
    return 0
