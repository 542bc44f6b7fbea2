"""The warm start: a tiny Qwen2.5-VL built offline, then taught the answer format and localisation of
the BASE classes with the SFT baseline's own code (`vrft.train.sft.run_sft`).

The result is cached under ``<cache>/warm-<key>``, where the key hashes the base part of the world, model and warm-start
settings and the vrft version (`vrft.demo.settings.warm_start_key`), so a second demo run (or a run
with other few-shot settings) starts from it in seconds. The cache directory is written atomically
(build elsewhere, then rename), so concurrent runs cannot leave half a model behind.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from vrft.data.synthetic import ALL_CLASSES
from vrft.demo.settings import DemoSettings, warm_start_key

logger = logging.getLogger(__name__)

MARKER = "vrft_demo_warm.json"
"""File written last into a cached warm start: its settings, key and training time."""


def default_cache_dir() -> Path:
    """``<vrft cache root>/demo`` ($VRFT_CACHE or ~/.cache/vrft)."""
    from vrft.models.tiny import cache_root

    return cache_root() / "demo"


def vocab_texts(convention: str, image_size: int) -> list[str]:
    """Texts the tiny tokenizer's merges are learned from: the demo's exact prompts and SFT answers
    (any text still encodes; frequent words become single tokens, so sequences are shorter)."""
    from dataclasses import replace

    from vrft.boxes import Frame
    from vrft.data.records import Record
    from vrft.demo.world import SHORT_PROMPT
    from vrft.tasks import TASKS

    task = TASKS["detection"]
    frame = Frame.for_image(
        image_size, image_size, convention, min_pixels=image_size**2, max_pixels=image_size**2
    )
    texts = []
    for name in ALL_CLASSES:
        for boxes in ([], [[10, 20, 40, 50]], [[10, 20, 40, 50], [60, 62, 90, 99]]):
            r = Record(id=name, task="detection", image="x.png", width=image_size, height=image_size,
                       category=name, boxes=boxes)  # fmt: skip
            short = replace(r, prompt=SHORT_PROMPT)
            texts += [task.prompt(r, frame), task.prompt(short, frame), task.answer_text(r, frame)]
    return texts * 3  # repeated: merges need a minimum frequency


def warm_start(
    settings: DemoSettings,
    base_records: Path,
    work_dir: str | os.PathLike,
    cache_dir: str | os.PathLike | None = None,
) -> tuple[Path, dict[str, Any]]:
    """The warm-start model directory (from the cache, or trained now and cached).

    Args:
        settings: demo settings (world, model and warm_start key the cache).
        base_records: the base-class detection records (`vrft.demo.world.build_world`).
        work_dir: scratch directory of this run (the tiny model and the SFT run are written here).
        cache_dir: where warm starts are kept (default `default_cache_dir()`).

    Returns:
        (model directory, info dict with ``key``, ``cached`` and ``seconds``).
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = warm_start_key(settings)
    final = cache / f"warm-{key}"
    if (final / MARKER).is_file():
        info = json.loads((final / MARKER).read_text(encoding="utf-8"))
        info["cached"] = True
        logger.info("warm start: cached %s (trained in %.0f s)", final, info.get("seconds", float("nan")))
        return final, info

    from vrft.config import load_config
    from vrft.models.families import FAMILIES
    from vrft.models.tiny import TINY_ARCHS, build_tiny
    from vrft.train.sft import run_sft

    m, w, ws = settings.model, settings.world, settings.warm_start
    work = Path(work_dir)
    t0 = time.perf_counter()
    convention = FAMILIES[TINY_ARCHS[m.arch].model_type].convention or "norm1000"
    tiny = build_tiny(
        m.arch, work / "tiny", size=m.size, vocab_size=m.vocab_size, rope_theta=m.rope_theta, seed=m.seed,
        image_size=w.image_size,
        vocab_texts=vocab_texts(convention, w.image_size),
    )  # fmt: skip
    pixels = w.image_size * w.image_size
    cfg = load_config(
        {
            "name": "demo warm start (base classes)",
            "model": {"path": str(tiny), "min_pixels": pixels, "max_pixels": pixels, "dtype": "float32"},
            "data": {"train": str(base_records), "task": "detection", "shuffle": True},
            "sft": {
                "learning_rate": ws.learning_rate,
                "lr_scheduler": ws.lr_scheduler,
                "warmup": ws.warmup,
                "max_grad_norm": ws.max_grad_norm,
                "per_device_batch_size": ws.batch_size,
                "max_steps": ws.steps,
                "seed": m.seed,
            },
            "output": {
                "dir": str(work / "warm_start"),
                "sft_dir": str(work / "warm_start"),
                "logging_steps": 10,
                "overwrite": True,
            },
        }  # fmt: skip
    )
    trained = run_sft(cfg)
    seconds = time.perf_counter() - t0
    info = {"key": key, "seconds": round(seconds, 1), "settings": {
        "world": w.model_dump(mode="json"), "model": m.model_dump(mode="json"), "warm_start": ws.model_dump(mode="json"),
    }}  # fmt: skip
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".warm-{key}.", dir=cache))
    try:
        shutil.copytree(trained, tmp, dirs_exist_ok=True)
        metrics = work / "warm_start" / "metrics.jsonl"
        if metrics.is_file():
            shutil.copy2(metrics, tmp / "warm_start_metrics.jsonl")
        (tmp / MARKER).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        try:
            os.rename(tmp, final)
        except OSError:  # another run finished first: use its copy
            if not (final / MARKER).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("warm start: trained in %.0f s, cached in %s", seconds, final)
    info["cached"] = False
    return final, info
