"""`run_demo`: the paper's few-shot experiment in miniature, top to bottom.

1. world: base / pool / test parts of the synthetic shapes world, through the COCO converter;
2. warm start: tiny Qwen2.5-VL + SFT on the base classes (cached by its settings);
3. k-shot sets of the novel classes (nested), for every k: SFT and Visual-RFT from the warm start with
   the same budget (optimizer steps x prompts per step);
4. evaluation of the baseline (warm start), SFT and Visual-RFT on the held-out novel test set;
5. results.json / results.md / plots / report.html, and the table on stdout.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

from vrft.demo.settings import DemoSettings

logger = logging.getLogger(__name__)


def run_demo(
    out_dir: str | os.PathLike,
    settings: DemoSettings | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
) -> list[dict[str, Any]]:
    """Run the demo into `out_dir`; returns the rows of results.json.

    Args:
        out_dir: output directory (created; earlier demo outputs in it are replaced).
        settings: demo settings (default: the full demo, `DemoSettings()`).
        cache_dir: where warm starts are cached (default: ``$VRFT_CACHE/demo`` or ``~/.cache/vrft/demo``).
    """
    import torch

    from vrft.data.fewshot import sample_fewshot
    from vrft.data.records import load_records, save_records
    from vrft.data.synthetic import NOVEL_CLASSES
    from vrft.demo import experiment, results
    from vrft.demo.warmstart import warm_start
    from vrft.demo.world import build_world

    settings = settings or DemoSettings()
    torch.set_num_threads(settings.threads)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "settings.json").write_text(json.dumps(settings.to_dict(), indent=2) + "\n", encoding="utf-8")
    timings: dict[str, float] = {}
    t_start = time.perf_counter()

    t0 = time.perf_counter()
    world = build_world(settings.world, out / "world")
    timings["world"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    warm, warm_info = warm_start(settings, world.base, out / "work", cache_dir)
    timings["warm_start"] = time.perf_counter() - t0

    f = settings.fewshot
    subsets, manifest = sample_fewshot(
        load_records(world.pool),
        f.shots,
        f.seed,
        classes=list(NOVEL_CLASSES),
        keep_negatives=f.keep_negatives,
    )
    shot_files = {k: save_records(recs, out / "fewshot" / f"{k}shot.jsonl") for k, recs in subsets.items()}
    (out / "fewshot" / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    test = load_records(world.test)

    rows: list[dict[str, Any]] = []
    evals: dict[tuple[str, int], Path] = {}
    t0 = time.perf_counter()
    evals[("baseline", 0)] = out / "eval" / "baseline"
    metrics = experiment.evaluate(settings, warm, test, evals[("baseline", 0)], "baseline (warm start)")
    rows.append(results.result_row("baseline", 0, metrics, warm_start_seconds=warm_info.get("seconds")))
    timings["eval"] = time.perf_counter() - t0
    rft_runs: dict[int, Path] = {}
    for k, records in sorted(shot_files.items()):
        for method in ("sft", "rft"):
            run_dir = out / "runs" / f"{method}-{k}shot"
            t0 = time.perf_counter()
            final = experiment.train(method, settings, warm, records, run_dir, k)
            seconds = time.perf_counter() - t0
            timings[f"train_{method}_{k}shot"] = seconds
            if method == "rft":
                rft_runs[k] = run_dir
            t0 = time.perf_counter()
            evals[(method, k)] = out / "eval" / f"{method}-{k}shot"
            metrics = experiment.evaluate(settings, final, test, evals[(method, k)], f"{method} {k}-shot")
            timings["eval"] += time.perf_counter() - t0
            rows.append(
                results.result_row(
                    method, k, metrics, train_seconds=round(seconds, 1), steps=f.steps,
                    prompts_per_step=f.prompts_per_step, train_prompts=len(subsets[k]),
                )
            )  # fmt: skip

    results.write_results_json(rows, out)
    results.write_plots(rows, rft_runs, out)
    results.write_report(rows, evals, out, settings.eval.report_samples)
    timings["total"] = time.perf_counter() - t_start
    run_info = {
        "timings_seconds": {k: round(v, 1) for k, v in timings.items()},
        "warm_start": warm_info,
        "warm_start_dir": str(warm),
        "fewshot_counts": manifest.get("counts"),
        "machine": {"cpus": os.cpu_count(), "threads": settings.threads, "platform": platform.platform(),
                    "load_average": _load()},
    }  # fmt: skip
    (out / "run.json").write_text(json.dumps(run_info, indent=2) + "\n", encoding="utf-8")
    notes = [
        "",
        f"Budget of both methods: {f.steps} optimizer steps x {f.prompts_per_step} prompts per step "
        f"(Visual-RFT samples {settings.rft.num_generations} completions per prompt).",
        f"Test prompts: {len(test)} ({_protocol_note(settings.world.novel_prompts)}).",
        f"Wall time: {timings['total']:.0f} s (warm start {'cached' if warm_info.get('cached') else 'trained'}: "
        f"{timings['warm_start']:.0f} s).",
    ]
    results.write_results_md(rows, out, notes)
    return rows


def _protocol_note(novel_prompts: str) -> str:
    if novel_prompts == "present":
        return "each test image asked for the novel shapes it holds: the 'records' protocol, which measures localisation"
    return "every novel shape asked on every test image, absent ones answered 'No Objects': all-categories protocol"


def _load() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None
