"""The tools experiment of `vrft demo` (``experiments.run=[tools]``): a task where acting on the image is
necessary.

World (`tools_part`): white scenes of ``tools.scene_size`` pixels (512) holding ONE small filled base shape
(``tools.min_scale``..``max_scale`` of the side, 6-9 %: 31-46 px), which the model sees at
``tools.view_size`` (128: its whole pixel budget), where the shape is a blob of 8-12 px, smaller than one
visual token. A `zoom_in` on the shape shows it at the scale the base model learned to name shapes at.
Task: name the shape (classification; every shape name is a valid answer). Each record keeps the shape's
box in ``meta["target"]`` (pixels of the scene) for the zoom metrics.

Arms, all from the same base (the shipped Qwen3-VL tools base, `vrft/demo/tools_base_model`: TRL's tool
loop serves Qwen3-VL only, docs/tools.md), per seed (one k-shot draw and one training seed):

- ``baseline``: the base without tools;
- ``baseline_tools``: the base with tools, prompted only by the tools block of its chat template;
- ``sft_traces``: `vrft sft` on tool traces of the k-shot set (`trace_of_record`: a `zoom_in` on the
  shape's box enlarged ``tools.zoom_margin`` times with a jittered centre, then the answer), the tool
  results made by the real tools;
- ``rft_tools``: Visual-RFT with tools, from ``sft_traces`` (the cold start);
- ``rft``: Visual-RFT without tools, from the base.

Each arm is evaluated greedily on the same split (the tool arms answer through `vrft.tools.generate`'s
loop, the loop of `vrft eval --tools`): accuracy, the tool-call rate, and where the zooms landed
(`zoom_scores`: the IoU of each sample's first zoom region with the shape's box, and the share of first
zooms that hold the whole shape).
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from vrft.data.records import Record, load_records, save_records
from vrft.data.synthetic import ALL_CLASSES, BASE_CLASSES
from vrft.demo.settings import DemoSettings
from vrft.outputs import atomic_open

logger = logging.getLogger(__name__)

EXPERIMENT = "tools"
CLASSES = tuple(BASE_CLASSES)
"""The shapes of the scenes: the base shapes, which the base model saw filled (every name is a valid answer)."""
PARTS: dict[str, int] = {"tools_pool": 7, "tools_val": 8, "tools_test": 9}
"""Seed offsets of the tools parts, next to `vrft.demo.world.SEED_OFFSETS` (0-6): no part shares an image."""
TOOL_NAMES = ("zoom_in",)
ARMS: dict[str, str] = {
    "baseline": "base model, no tools",
    "baseline_tools": "base model with tools (prompted)",
    "sft_traces": "SFT on tool traces",
    "rft_tools": "Visual-RFT with tools (from the SFT cold start)",
    "rft": "Visual-RFT without tools",
}
"""The arms, in table order, with their names in results.md and report.html."""
WITH_TOOLS = frozenset({"baseline_tools", "sft_traces", "rft_tools"})


# ------------------------------------------------------------------------------------------------ world
def part_seed(settings: DemoSettings, part: str) -> int:
    return 1000 + settings.world.seed * 10 + PARTS[part]


def tools_part(settings: DemoSettings, part: str, out_dir: Path) -> Path:
    """Draw one tools part (`PARTS`) under `out_dir` and write its records; returns the JSONL path."""
    from vrft.demo.world import CLASS_DOMAIN, CLASSIFY_PROMPT, draw_single

    t, seed = settings.tools, part_seed(settings, part)
    n = {"tools_pool": t.pool_images, "tools_val": t.val_images, "tools_test": t.test_images}[part]
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(n):
        shape = CLASSES[i % len(CLASSES)]
        img, box = draw_single(i, seed, t.scene_size, shape, "filled", scale=(t.min_scale, t.max_scale))
        rel = f"images/{i:06d}.png"
        with atomic_open(out_dir / rel, "wb", encoding=None) as fh:
            img.save(fh, format="PNG", compress_level=1)
        records.append(
            Record(id=f"{part}-{seed}-{i}", task="classification", image=rel, width=t.scene_size,
                   height=t.scene_size, image_id=i + 1, label=shape, classes=list(ALL_CLASSES),
                   domain=dict(CLASS_DOMAIN), prompt=CLASSIFY_PROMPT, meta={"target": box})
        )  # fmt: skip
    logger.info("world part %s: %d scenes of %d px", part, n, t.scene_size)
    return save_records(records, out_dir / "records.jsonl")


def zoom_region(box: list[float], side: int, margin: float, jitter: float, rng: random.Random) -> list[float]:
    """The region a trace zooms on: a square `margin` times the box's longer side around its centre,
    moved by up to `jitter` of that side, kept inside the ``side`` x ``side`` scene."""
    x1, y1, x2, y2 = box
    size = min(side, max(x2 - x1, y2 - y1) * margin)
    cx = (x1 + x2) / 2 + rng.uniform(-jitter, jitter) * size
    cy = (y1 + y2) / 2 + rng.uniform(-jitter, jitter) * size
    left = min(max(cx - size / 2, 0.0), side - size)
    top = min(max(cy - size / 2, 0.0), side - size)
    return [left, top, left + size, top + size]


ZOOM_THOUGHT = "<think> The shape is too small to see here: zoom in on it. </think>"
"""The text of a trace's call turn. Not empty: with an empty turn the chat template writes
``assistant\n\n<tool_call>``, whose ``\n\n`` is ONE token across the generation prompt's boundary
(``assistant\n``), so the model would be trained on a token sequence it can never generate."""


def trace_of_record(record: Record, settings: DemoSettings, frame: Any, rng: random.Random) -> list[dict]:
    """A tool trace (`Record.trace`): `ZOOM_THOUGHT` and one `zoom_in` on the shape (`zoom_region`, in
    the model's coordinates `frame`), then the answer in the base model's classification words."""
    from vrft.demo.world import CLASS_DOMAIN
    from vrft.tasks.base import think_answer

    t = settings.tools
    region = zoom_region(record.meta["target"], t.scene_size, t.zoom_margin, t.zoom_jitter, rng)
    box = [int(v) for v in frame.encode(region)]
    answer = think_answer(f"The {CLASS_DOMAIN['attribute']} of this shape is {record.label}.", record.label)
    return [
        {"content": ZOOM_THOUGHT, "tool_calls": [{"name": "zoom_in", "arguments": {"bbox_2d": box}}]},
        {"content": answer},
    ]


def fewshot_sets(
    settings: DemoSettings, pool: Path, seed: int, convention: str, out: Path
) -> dict[str, Path]:
    """The k-shot set of `seed` twice: with traces (``traces``, for SFT) and without (``plain``)."""
    from vrft.boxes import Frame
    from vrft.data.fewshot import sample_fewshot

    k = settings.tools.shots
    subsets, _ = sample_fewshot(load_records(pool), [k], seed, classes=list(CLASSES))
    rng = random.Random(seed)
    side = settings.tools.scene_size
    frame = Frame.for_image(side, side, convention)
    traced = [replace(r, trace=trace_of_record(r, settings, frame, rng)) for r in subsets[k]]
    return {
        "plain": save_records(subsets[k], out / f"seed{seed}" / f"{k}shot.jsonl"),
        "traces": save_records(traced, out / f"seed{seed}" / f"{k}shot-traces.jsonl"),
    }


# ---------------------------------------------------------------------------------------------- configs
def _tools_section(settings: DemoSettings) -> dict[str, Any]:
    t = settings.tools
    return {"enabled": True, "names": list(TOOL_NAMES), "max_calls": t.max_calls, "max_images": t.max_images,
            "max_pixels": t.view_size**2}  # fmt: skip


def _common(settings: DemoSettings, model_dir: Path, records: Path, out: Path, name: str) -> dict[str, Any]:
    pixels = settings.tools.view_size**2
    return {
        "name": name,
        "model": {"path": str(model_dir), "min_pixels": pixels, "max_pixels": pixels, "dtype": "float32"},
        "data": {"train": str(records), "task": "classification", "shuffle": True},
        "output": {"dir": str(out), "sft_dir": str(out), "logging_steps": 1, "overwrite": True,
                   "sample_every": 5, "num_samples": 8},
    }  # fmt: skip


def sft_config(settings: DemoSettings, base: Path, records: Path, seed: int, out: Path):
    """The `vrft sft` config of ``sft_traces`` (tools on: the traces' results are made by the tools)."""
    from vrft.config import load_config

    s = settings.tools.sft
    data = _common(settings, base, records, out, f"demo tools sft_traces seed{seed}")
    data["tools"] = _tools_section(settings)
    data["sft"] = {"learning_rate": s.learning_rate, "lr_scheduler": "constant", "warmup": 0.0,
                   "per_device_batch_size": settings.experiments.prompts_per_step, "max_steps": s.steps,
                   "seed": seed}  # fmt: skip
    return load_config(data)


def rft_config(settings: DemoSettings, start: Path, records: Path, seed: int, out: Path, tools: bool):
    """The `vrft train` config of ``rft_tools`` (`tools` true, from the SFT model) or ``rft``."""
    from vrft.config import load_config

    r, pps = settings.tools.rft, settings.experiments.prompts_per_step
    arm = "rft_tools" if tools else "rft"
    data = _common(settings, start, records, out, f"demo tools {arm} seed{seed}")
    data["rewards"] = {"preset": "default", "weights": dict(r.reward_weights)}
    data["grpo"] = {
        "num_generations": r.num_generations, "prompts_per_step": pps, "per_device_prompts": pps,
        "beta": settings.rft.beta, "learning_rate": r.learning_rate, "lr_scheduler": "constant", "warmup": 0.0,
        "temperature": settings.rft.temperature, "max_completion_length": r.max_completion_length,
        "max_steps": r.steps, "loss_type": settings.rft.loss_type, "seed": seed,
    }  # fmt: skip
    if tools:
        data["tools"] = _tools_section(settings)
    return load_config(data)


def check_tools_settings(settings: DemoSettings) -> None:
    """The three training configs of the experiment (files aside) and its base, checked before any work.

    Raises:
        ConfigError: naming the failing run; UserError: a missing base, or one TRL's tool loop cannot serve.
    """
    from vrft.errors import ConfigError
    from vrft.train.preflight import preflight

    base, recs, out = Path("base"), Path("records.jsonl"), Path("out")
    builds = {
        "sft_traces": lambda: sft_config(settings, base, recs, 0, out),
        "rft_tools": lambda: rft_config(settings, base, recs, 0, out, tools=True),
        "rft": lambda: rft_config(settings, base, recs, 0, out, tools=False),
    }
    for arm, build in builds.items():
        try:
            preflight(build(), check_paths=False)
        except ConfigError as err:
            msg = (
                str(err).removeprefix("<dict>: ").replace("grpo.", "tools.rft.").replace("sft.", "tools.sft.")
            )
            raise ConfigError(f"{msg} (the {arm} run of the tools experiment)") from None
    resolve_tools_base(settings)  # a missing or refused base fails here too, before any work


# ------------------------------------------------------------------------------------------- evaluation
def evaluate(settings: DemoSettings, model_dir: Path, records: list[Record], out: Path, title: str,
             tools: bool) -> dict[str, Any]:  # fmt: skip
    """metrics.json of `model_dir` on `records` (greedy; with `tools`, through the tool loop of
    `vrft eval --tools`), plus ``zoom`` (`zoom_scores`) and ``seconds``."""
    import torch

    from vrft.evaluate.pipeline import evaluate_model
    from vrft.models.load import convention_for, frame_for, load_model_and_processor

    pixels = settings.tools.view_size**2
    model, processor = load_model_and_processor(
        model_dir, dtype="float32", min_pixels=pixels, max_pixels=pixels
    )
    generator = None
    if tools:
        from vrft.tools.env import ToolSettings
        from vrft.tools.generate import ToolGenerator
        from vrft.tools.support import prepare_processor

        prepare_processor(processor, getattr(model.config, "model_type", None))
        convention = convention_for(model.config)
        t = settings.tools
        tool_settings = ToolSettings(TOOL_NAMES, t.max_calls, t.max_images, pixels,
                                     lambda w, h: frame_for(w, h, convention, processor))  # fmt: skip
        generator = ToolGenerator(
            model, processor, tool_settings, batch_size=settings.eval.batch_size, progress=False
        )
    t0 = time.perf_counter()
    with torch.inference_mode():
        metrics = evaluate_model(
            model, processor, records, "classification", out, batch_size=settings.eval.batch_size,
            max_new_tokens=settings.eval.max_new_tokens, progress=False, title=title, generator=generator,
        )  # fmt: skip
    metrics["seconds"] = round(time.perf_counter() - t0, 1)
    metrics["zoom"] = zoom_scores(out / "predictions.jsonl", records)
    return metrics


def box_iou(a: list[float], b: list[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def zoom_scores(predictions: Path, records: list[Record]) -> dict[str, Any]:
    """Where the first zoom of each sample landed: ``iou`` (mean IoU of the zoom region with the shape's
    box, over the samples that zoomed), ``hit`` (share of those whose region holds the whole shape),
    both 0..100 (None without a zoom), and ``zoomed`` (how many samples zoomed)."""
    import json

    target = {r.id: r.meta.get("target") for r in records}
    ious, hits = [], []
    lines = predictions.read_text(encoding="utf-8").splitlines() if predictions.is_file() else []
    for row in (json.loads(line) for line in lines if line.strip()):
        regions, box = row.get("zoom_regions") or [], target.get(row.get("id"))
        if not regions or not box:
            continue
        first = regions[0]
        ious.append(box_iou(first, box))
        inside = first[0] <= box[0] + 0.5 and first[1] <= box[1] + 0.5
        hits.append(inside and first[2] >= box[2] - 0.5 and first[3] >= box[3] - 0.5)
    n = len(ious)
    return {
        "zoomed": n,
        "iou": round(100 * sum(ious) / n, 2) if n else None,
        "hit": round(100 * sum(hits) / n, 2) if n else None,
    }


def score(metrics: dict[str, Any]) -> dict[str, Any]:
    """The row fields of one evaluation: accuracy, parse failures, tool use and the zoom scores."""
    c, tools, zoom = metrics["classification"], metrics.get("tools") or {}, metrics.get("zoom") or {}
    return {
        "accuracy": _num(c.get("accuracy")),
        "parse_fail": _num(c.get("parse_fail")),
        "call_rate": _num(100 * tools["call_rate"]) if tools.get("call_rate") is not None else None,
        "mean_calls": _num(tools.get("mean_calls")),
        "zoom_iou": _num(zoom.get("iou")),
        "zoom_hit": _num(zoom.get("hit")),
        "eval_seconds": metrics.get("seconds"),
    }


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return round(f, 2) if math.isfinite(f) else None


# ------------------------------------------------------------------------------------------------- run
def resolve_tools_base(settings: DemoSettings) -> tuple[Path, dict[str, Any]]:
    """(the tools base directory, its card): `tools.base_path`, else the shipped one (hash-checked)."""
    from vrft.demo.base import CARD, SHIPPED_TOOLS_BASE, read_card, verify_base
    from vrft.errors import UserError

    if settings.tools.base_path:
        import json

        from vrft.tools.support import tool_problem

        path = Path(settings.tools.base_path)
        if not (path / "config.json").is_file():
            raise UserError(
                f"tools.base_path: {path} is not a model directory (no config.json); give a Qwen3-VL model "
                "directory, or leave it unset for the shipped tools base"
            )
        try:
            model_type = json.loads((path / "config.json").read_text(encoding="utf-8")).get("model_type")
        except (OSError, ValueError, AttributeError) as err:
            raise UserError(f"tools.base_path: {path / 'config.json'} cannot be read: {err}") from None
        problem = tool_problem(model_type)
        if problem:
            raise UserError(f"tools.base_path: {path}: {problem}")
        return path, (read_card(path) if (path / CARD).is_file() else {})
    if not (SHIPPED_TOOLS_BASE / CARD).is_file():
        raise UserError(
            f"the tools experiment needs its Qwen3-VL base: {SHIPPED_TOOLS_BASE} is missing; build one with "
            "`vrft demo build-base arch=qwen3_vl image_size=128 --out DIR` and set tools.base_path=DIR"
        )
    return SHIPPED_TOOLS_BASE, verify_base(SHIPPED_TOOLS_BASE)


def run_tools(settings: DemoSettings, out: Path, timings: dict[str, float]) -> tuple[list[dict], dict, dict]:
    """The tools experiment into `out` (world/, fewshot/tools/, runs/, eval/): (its runs for results.json,
    the evaluation directories by (experiment, method, k, seed) for the report, the base it used for
    run.json)."""
    from vrft.models.load import convention_for
    from vrft.train.grpo import run_grpo
    from vrft.train.sft import run_sft

    ex, split = settings.experiments, settings.eval.split
    t0 = time.perf_counter()
    base, card = resolve_tools_base(settings)
    parts = {p: tools_part(settings, p, out / "world" / p) for p in ("tools_pool", f"tools_{split}")}
    records = load_records(parts[f"tools_{split}"])
    timings["tools_world"] = time.perf_counter() - t0
    from transformers import AutoConfig

    convention = convention_for(AutoConfig.from_pretrained(base))
    k = settings.tools.shots
    runs: list[dict[str, Any]] = []
    evals: dict[tuple[str, str, int | None, int | None], Path] = {}

    def record(arm: str, model_dir: Path, seed: int | None, seconds: float | None = None) -> None:
        tag = arm if seed is None else f"{arm}-seed{seed}"
        d = out / "eval" / f"tools-{tag}"
        t0 = time.perf_counter()
        m = evaluate(settings, model_dir, records, d, f"tools: {ARMS[arm]}", tools=arm in WITH_TOOLS)
        timings["eval"] = timings.get("eval", 0.0) + time.perf_counter() - t0
        row = {"experiment": EXPERIMENT, "method": arm, "shots": 0 if seed is None else k,
               "task": "classification", "seed": seed, **score(m)}  # fmt: skip
        if seconds is not None:
            row["train_seconds"] = round(seconds, 1)
        runs.append(row)
        evals[(EXPERIMENT, arm, None if seed is None else k, seed)] = d
        logger.info("tools %s: %s", tag, score(m))

    for arm in ("baseline", "baseline_tools"):
        record(arm, base, None)
    for seed in ex.seeds:
        sets = fewshot_sets(settings, parts["tools_pool"], seed, convention, out / "fewshot" / EXPERIMENT)
        t0 = time.perf_counter()
        sft_dir = run_sft(
            sft_config(settings, base, sets["traces"], seed, out / "runs" / f"tools-sft_traces-seed{seed}")
        )
        sft_seconds = time.perf_counter() - t0
        timings[f"tools_train_sft_traces_seed{seed}"] = sft_seconds
        record("sft_traces", sft_dir, seed, sft_seconds)
        for arm, start, tools in (("rft_tools", sft_dir, True), ("rft", base, False)):
            t0 = time.perf_counter()
            cfg = rft_config(
                settings, start, sets["plain"], seed, out / "runs" / f"tools-{arm}-seed{seed}", tools
            )
            final = run_grpo(cfg)
            seconds = time.perf_counter() - t0
            timings[f"tools_train_{arm}_seed{seed}"] = seconds
            record(arm, final, seed, seconds)
    info = {"tools_base_dir": str(base), "tools_base_weights_sha256": card.get("weights_sha256")}
    return runs, evals, info
