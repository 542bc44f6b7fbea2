"""`run_demo`: the paper's experiments in miniature, top to bottom.

1. base: the shipped miniature pretrained VLM (`vrft.demo.base`; checked against its card's hash), or
   one rebuilt from nothing (`base.rebuild`), or any directory (`base.path`);
2. world: the parts the chosen experiments need (`vrft.demo.world`);
3. the baseline (the base model itself) on the evaluation split;
4. per experiment and seed (seed = few-shot draw + training seed), SFT and Visual-RFT from the base
   with the same budget ((c): each at its own learning rate and steps, `experiments.classification`),
   each evaluated on the same split:
   (a) open_vocab: trained on the BASE shapes' detection scenes, evaluated on the NOVEL shapes;
   (b) fewshot_detection: trained on k images per novel shape (with their 'No Objects' prompts);
   (c) fewshot_classification: trained on k images per novel shape, accuracy;
   (d) tools (only when `experiments.run` names it): scenes too large for the model's pixel budget,
   the base with and without tools, SFT on tool traces, Visual-RFT with and without tools
   (`vrft.demo.tools_demo`, from its own Qwen3-VL base);
5. results.json (mean and sd over seeds per row, every run in `runs`), results.md, plots, report.html
   (one test image per row, the methods' answers side by side).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

from vrft.demo.settings import TASK_OF, TOOLS_EXPERIMENT, DemoSettings, caveat

logger = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``<vrft cache root>/demo`` ($VRFT_CACHE or ~/.cache/vrft)."""
    from vrft.models.tiny import cache_root

    return cache_root() / "demo"


def positives_only(records: Path, out: Path) -> Path:
    """The detection records of `records` that hold at least one box (no 'No Objects' prompts), saved at `out`."""
    from vrft.data.records import load_records, save_records

    return save_records([r for r in load_records(records) if r.boxes], out)


def resolve_base(settings: DemoSettings, cache_dir: str | os.PathLike | None) -> tuple[Path, dict[str, Any]]:
    """(base model directory, its card): `base.path`, else the shipped base (hash-checked), else (no
    shipped base, or `base.rebuild`) one built from nothing with `base.build`, cached by those settings."""
    from vrft.demo.base import CARD, SHIPPED_BASE, build_base, read_card, verify_base

    if settings.base.path:
        path = Path(settings.base.path)
        return path, (read_card(path) if (path / CARD).is_file() else {})
    if (SHIPPED_BASE / CARD).is_file() and not settings.base.rebuild:
        return SHIPPED_BASE, verify_base(SHIPPED_BASE)
    from vrft import __version__

    build = settings.base.build
    key = hashlib.sha256(json.dumps([__version__, build.model_dump(mode="json")]).encode()).hexdigest()[:12]
    target = Path(cache_dir or default_cache_dir()) / f"base-{key}"
    if not (target / CARD).is_file():
        logger.info("building the demo base from nothing into %s (vrft demo build-base)", target)
        build_base(target, build)
    return target, verify_base(target)


def run_demo(
    out_dir: str | os.PathLike,
    settings: DemoSettings | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
) -> list[dict[str, Any]]:
    """Run the demo into `out_dir`; returns the rows of results.json (one per experiment, method, k).

    Args:
        out_dir: output directory (created; earlier demo outputs in it are replaced).
        settings: demo settings (default: the full demo, `DemoSettings()`).
        cache_dir: where a rebuilt base is cached (default: ``$VRFT_CACHE/demo`` or ``~/.cache/vrft/demo``).
    """
    import torch

    import vrft.demo.experiment as experiment
    import vrft.demo.results as results
    from vrft.data.fewshot import sample_fewshot
    from vrft.data.records import load_records, save_records
    from vrft.data.synthetic import NOVEL_CLASSES
    from vrft.demo.base import SHIPPED_BASE
    from vrft.demo.world import build_world
    from vrft.outputs import atomic_write_text

    settings = settings or DemoSettings()
    experiment.check_settings(settings)  # a bad setting fails here, before any work
    torch.set_num_threads(settings.threads)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "settings.json", json.dumps(settings.to_dict(), indent=2) + "\n")
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    ex, split = settings.experiments, settings.eval.split

    t0 = time.perf_counter()
    paper = [e for e in ex.run if e != TOOLS_EXPERIMENT]  # (a)-(c); the tools experiment has its own base
    base, card = resolve_base(settings, cache_dir) if paper else (None, {})
    timings["base"] = time.perf_counter() - t0
    shipped = base == SHIPPED_BASE

    t0 = time.perf_counter()
    tasks = {TASK_OF[e] for e in paper}
    parts: list[str] = []
    if "open_vocab" in ex.run:
        parts.append("base_train")
    if "detection" in tasks:
        parts += ["det_pool", f"det_{split}"] if "fewshot_detection" in ex.run else [f"det_{split}"]
    if "classification" in tasks:
        parts += ["cls_pool", f"cls_{split}"]
    world = build_world(settings.world, out / "world", tuple(parts)) if parts else None  # () would draw all
    eval_records = {
        "detection": load_records(world[f"det_{split}"]) if "detection" in tasks else [],
        "classification": load_records(world[f"cls_{split}"]) if "classification" in tasks else [],
    }
    timings["world"] = time.perf_counter() - t0

    runs: list[dict[str, Any]] = []
    evals: dict[tuple[str, str, int | None, int | None], Path] = {}
    timings["eval"] = 0.0
    baseline: dict[str, dict[str, Any]] = {}
    for task in sorted(tasks):
        t0 = time.perf_counter()
        d = out / "eval" / f"baseline-{task}"
        baseline[task] = experiment.score(
            task, experiment.evaluate(settings, base, task, eval_records[task], d, f"baseline ({task})")
        )
        timings["eval"] += time.perf_counter() - t0
        for e in paper:
            if TASK_OF[e] == task:
                evals[(e, "baseline", None, None)] = d
                runs.append({"experiment": e, "method": "baseline", "shots": 0 if e != "open_vocab" else None,
                             "task": task, "seed": None, **baseline[task]})  # fmt: skip

    rft_runs: dict[str, Path] = {}
    manifests: dict[str, Any] = {}
    for e in paper:
        task = TASK_OF[e]
        for seed in ex.seeds:
            negatives = task == "detection" and ex.train_negatives
            if e == "open_vocab":
                train = world["base_train"]
                if task == "detection" and not negatives:
                    train = positives_only(train, out / "fewshot" / e / "positives.jsonl")
                train_sets = {None: train}
            else:
                pool = load_records(world["det_pool" if task == "detection" else "cls_pool"])
                subsets, manifest = sample_fewshot(pool, ex.shots, seed, classes=list(NOVEL_CLASSES),
                                                   keep_negatives=negatives)  # fmt: skip
                manifests[f"{e}/seed{seed}"] = manifest.get("counts")
                train_sets = {
                    k: save_records(recs, out / "fewshot" / e / f"seed{seed}" / f"{k}shot.jsonl")
                    for k, recs in subsets.items()
                }
            for k, records in sorted(train_sets.items(), key=lambda kv: kv[0] or 0):
                tag = f"{e}-{'' if k is None else f'{k}shot-'}seed{seed}"
                for method in ("sft", "rft"):
                    run = experiment.make_run(settings, e, method, records, seed, f"demo {e} {method} {tag}")
                    t0 = time.perf_counter()
                    final = experiment.train(method, settings, base, run, out / "runs" / f"{method}-{tag}")
                    seconds = time.perf_counter() - t0
                    timings[f"train_{method}_{tag}"] = seconds
                    if method == "rft" and seed == ex.seeds[0]:
                        rft_runs[f"{e}-{k}" if k is not None else e] = out / "runs" / f"{method}-{tag}"
                    t0 = time.perf_counter()
                    d = out / "eval" / f"{method}-{tag}"
                    evals[(e, method, k, seed)] = d
                    m = experiment.evaluate(settings, final, task, eval_records[task], d, f"{method} {tag}")
                    timings["eval"] += time.perf_counter() - t0
                    runs.append({"experiment": e, "method": method, "shots": k, "task": task, "seed": seed,
                                 **experiment.score(task, m), "train_seconds": round(seconds, 1), "steps": run.steps,
                                 "prompts_per_step": ex.prompts_per_step})  # fmt: skip
                    logger.info("%s %s: %s", method, tag, experiment.score(task, m))

    tools_info: dict[str, Any] = {}
    if TOOLS_EXPERIMENT in ex.run:
        from vrft.demo.tools_demo import run_tools

        tool_runs, tool_evals, tools_info = run_tools(settings, out, timings)
        runs += tool_runs
        evals.update(tool_evals)
        first = out / "runs" / f"tools-rft_tools-seed{ex.seeds[0]}"
        if (first / "metrics.jsonl").is_file():
            rft_runs[TOOLS_EXPERIMENT] = first

    rows = results.aggregate(runs)
    results.write_results_json(rows, runs, out, split)
    results.write_plots(rows, rft_runs, out)
    note = caveat(settings)
    results.write_report(rows, evals, out, settings.eval.report_samples, ex.seeds[0], min(ex.shots), note)
    timings["total"] = time.perf_counter() - t_start
    run_info = {
        "timings_seconds": {k: round(v, 1) for k, v in timings.items()},
        "base_dir": str(base) if base else None,
        "base_shipped": shipped,
        "base_weights_sha256": card.get("weights_sha256"),
        "split": split,
        "fewshot_counts": manifests,
        **tools_info,
        "machine": {"cpus": os.cpu_count(), "threads": settings.threads, "platform": platform.platform(),
                    "load_average": _load()},
    }  # fmt: skip
    atomic_write_text(out / "run.json", json.dumps(run_info, indent=2) + "\n")
    own = {m: getattr(ex.classification, m) for m in ("sft", "rft")}
    cls_budget = "; in fewshot_classification each its own: " + ", ".join(
        f"{name} {own[m].steps or ex.steps} steps at learning rate {own[m].learning_rate or getattr(settings, m).learning_rate:g}"
        for m, name in (("sft", "SFT"), ("rft", "Visual-RFT"))
    )
    notes = [
        *([f"**{note}**"] if note else []),
        "",
        f"Evaluated on the **{split}** split. Seeds {ex.seeds} (each: few-shot draw and training seed); "
        "mean ± sample sd over them. The baseline is the base model itself (greedy, one value).",
        *([f"Budget of both methods: {ex.steps} optimizer steps x {ex.prompts_per_step} prompts per step "
           f"({ex.open_vocab_steps} steps in open_vocab"
           f"{cls_budget if 'fewshot_classification' in ex.run else ''}"
           f"; Visual-RFT samples {settings.rft.num_generations} completions per prompt)."] if paper else []),
        *([tools_budget(settings)] if TOOLS_EXPERIMENT in ex.run else []),
        *(["Detection: every novel shape asked on every image, absent ones to be answered 'No Objects' (the "
           "all-categories protocol)."] if "detection" in tasks else []),
        f"Wall time: {timings['total']:.0f} s.",
    ]
    results.write_results_md(rows, out, notes)
    return rows


def tools_budget(settings: DemoSettings) -> str:
    """The tools experiment's budget, one sentence for results.md."""
    t = settings.tools
    return (
        f"Tools experiment: {t.shots} scenes per shape ({t.scene_size} px, seen at {t.view_size} px); SFT on "
        f"tool traces {t.sft.steps} steps at {t.sft.learning_rate:g}; Visual-RFT {t.rft.steps} steps at "
        f"{t.rft.learning_rate:g} with G = {t.rft.num_generations}, with tools from the SFT model and without "
        f"tools from the base; at most {t.max_calls} calls per answer. Zoom IoU: the first zoom's region "
        "against the shape's box; 'zoom holds the shape': the share of first zooms that contain all of it."
    )


def _load() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None
