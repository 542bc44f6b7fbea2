"""The demo's miniature "pretrained VLM": built once by `vrft demo build-base`, shipped with the package.

It stands in for Qwen2-VL-2B before Visual-RFT: it knows the names and looks of ALL shapes, and it
detects BASE shapes in the paper's answer format. Three stages, from nothing:

1. a tiny Qwen2.5-VL (`vrft.models.tiny`: real architecture, byte-level BPE with single digits; every
   shape name is one token) built from a config;
2. its vision tower pretrained ALONE (`vision_objective`): by default as a tiny one-stage detector
   (every visual token predicts the class, box and coordinate digits of the shape centred in its cell,
   on scenes of 1-3 of all 8 shapes, the novel ones only as outlines); `classify` is the earlier
   mean-pooled single-shape classifier. Real VLMs start from a pretrained encoder, and through the
   text loss alone a miniature learns names and boxes very slowly (docs/demo.md);
3. the whole model taught by `run_sft` (the SFT baseline's own code) on a mix: classification of every
   shape (the NOVEL shapes only as black outlines, never in the filled, coloured look of the few-shot
   and test images), and detection in the paper's answer format of the BASE shapes in scenes of 1-3
   shapes (the asked name picks the box; absent names are answered 'No Objects').

The result is a normal Hugging Face directory (weights, tokenizer, processor) plus `card.json` (build
command, settings, sha256 of the weights, build metrics) and a README; `vrft demo` loads it from the
package (`SHIPPED_BASE`) unless told to rebuild.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from vrft.data.synthetic import ALL_CLASSES, BASE_CLASSES, NOVEL_CLASSES
from vrft.demo.settings import BaseBuildSettings
from vrft.demo.tower import BASE_LOOKS, pretrain_vision

logger = logging.getLogger(__name__)

SHIPPED_BASE = Path(__file__).with_name("base_model")
"""The shipped base model directory (package data)."""
SHIPPED_TOOLS_BASE = Path(__file__).with_name("tools_base_model")
"""The tools experiment's shipped base (`vrft.demo.tools_demo`): `vrft demo build-base arch=qwen3_vl
image_size=128` (Qwen3-VL: the family TRL's tool loop serves)."""
CARD = "card.json"
WEIGHTS = "model.safetensors"
BUILD_COMMAND = "vrft demo build-base"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_card(model_dir: Path = SHIPPED_BASE) -> dict[str, Any]:
    """The base model's card (raises `UserError` naming the rebuild command when it is missing)."""
    from vrft.errors import UserError

    path = Path(model_dir) / CARD
    if not path.is_file():
        raise UserError(f"no demo base model at {model_dir} (missing {CARD}); build one: {BUILD_COMMAND}")
    return json.loads(path.read_text(encoding="utf-8"))


def verify_base(model_dir: Path = SHIPPED_BASE) -> dict[str, Any]:
    """The card, after checking that the weights match its sha256 (`UserError` if not)."""
    from vrft.errors import UserError

    card = read_card(model_dir)
    weights = Path(model_dir) / WEIGHTS
    if not weights.is_file():
        raise UserError(f"{weights} is missing; rebuild the demo base: {BUILD_COMMAND}")
    digest = sha256_of(weights)
    if digest != card["weights_sha256"]:
        raise UserError(
            f"{weights} does not match its card (sha256 {digest[:12]}..., card {card['weights_sha256'][:12]}...);"
            f" rebuild it: {BUILD_COMMAND}"
        )
    return card


# ------------------------------------------------------------------------------------------ stage 2
def mix_records(settings: BaseBuildSettings, work: Path) -> Path:
    """The SFT mix (classification of all shapes + base-shape detection scenes) as one records file."""
    from vrft.data.coco import convert_coco
    from vrft.data.records import load_records, save_records
    from vrft.data.synthetic import synthesize
    from vrft.demo.world import SHORT_PROMPT, classification_part, with_prompts

    cls = load_records(classification_part(work / "cls", settings.cls_images, settings.seed * 100 + 21,
                                           settings.image_size, BASE_LOOKS, id_prefix="base-cls"))  # fmt: skip
    inst = synthesize(work / "det", settings.det_images, seed=settings.seed * 100 + 22, size=settings.image_size,
                      classes=BASE_CLASSES, min_objects=1, max_objects=settings.det_max_objects,
                      background="plain", min_scale=0.22, max_scale=0.45)  # fmt: skip
    det = convert_coco(inst, categories=list(BASE_CLASSES), negative_ratio=settings.det_negative_ratio,
                       seed=settings.seed)  # fmt: skip
    det = with_prompts(det, "short")
    assert SHORT_PROMPT
    mixed = [*cls, *det]
    logger.info("base SFT mix: %d classification + %d detection prompts (%d 'No Objects')",
                len(cls), len(det), sum(1 for r in det if not r.boxes))  # fmt: skip
    return save_records(mixed, work / "mix.jsonl")


def detection_texts(convention: str, image_size: int) -> list[str]:
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


def vocab_texts(image_size: int, tools: bool = False) -> list[str]:
    """Texts the tokenizer's merges come from: the detection prompts/answers of every shape
    (`detection_texts`), the classification prompt and answers, each shape name often; with `tools`
    (the Qwen3-VL base of the tools experiment) also `tool_vocab_texts`."""
    from vrft.demo.world import CLASS_DOMAIN, CLASSIFY_PROMPT
    from vrft.tasks.base import think_answer

    texts = detection_texts("norm1000", image_size)
    for name in ALL_CLASSES:
        texts += [
            CLASSIFY_PROMPT,
            think_answer(f"The {CLASS_DOMAIN['attribute']} of this shape is {name}.", name),
        ] * 3
        texts += [name, f" {name}"] * 20
    return texts + (tool_vocab_texts() if tools else [])


def tool_vocab_texts() -> list[str]:
    """Zoom-in exchanges rendered by Qwen3-VL's official tool template (the tools block of the system
    turn, a `zoom_in` call, the tool's answer, a final answer), so the tokenizer's merges cover them."""
    import random

    from PIL import Image
    from transformers.utils.chat_template_utils import render_jinja_template

    from vrft.boxes import Frame
    from vrft.demo.world import CLASS_DOMAIN, CLASSIFY_PROMPT
    from vrft.tasks.base import think_answer
    from vrft.tools.env import ToolSettings, tool_environment
    from vrft.tools.support import official_template
    from vrft.tools.trace import play

    rng, texts = random.Random(0), []
    env = tool_environment(ToolSettings(("zoom_in",), 3, 2, 128 * 128, lambda w, h: Frame.for_image(w, h)))()
    for i in range(60):
        env.reset(image=Image.new("RGB", (512, 512), "white"))
        x, y, side = rng.randrange(0, 700), rng.randrange(0, 700), rng.randrange(150, 300)
        name = ALL_CLASSES[i % len(ALL_CLASSES)]
        trace = [
            {"content": "", "tool_calls": [{"name": "zoom_in", "arguments": {"bbox_2d": [x, y, x + side, y + side]}}]},
            {"content": think_answer(f"The {CLASS_DOMAIN['attribute']} of this shape is {name}.", name)},
        ]
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": CLASSIFY_PROMPT}]}]
        for m in play(trace, env):
            if m["role"] == "tool" and isinstance(m["content"], list):
                m = {**m, "content": [b if b.get("type") != "image" else {"type": "image"} for b in m["content"]]}
            messages.append(m)
        rendered, _ = render_jinja_template([messages], tools=[env.zoom_in], chat_template=official_template())
        texts.append(rendered[0])
    return texts


def build_metrics(model_dir: Path, settings: BaseBuildSettings, work: Path) -> dict[str, Any]:
    """Held-out numbers of the built model: classification accuracy per look, base detection mAP."""
    import torch

    from vrft.data.coco import convert_coco
    from vrft.data.records import load_records
    from vrft.data.synthetic import synthesize
    from vrft.demo.world import classification_part, with_prompts
    from vrft.evaluate.pipeline import evaluate_model
    from vrft.models.load import load_model_and_processor

    px = settings.image_size**2
    model, processor = load_model_and_processor(model_dir, dtype="float32", min_pixels=px, max_pixels=px)
    n, seed, out = settings.eval_images, settings.seed * 100 + 31, {}
    sets = {
        "base_shapes": {c: "any" for c in BASE_CLASSES},
        "novel_outline": {c: "outline" for c in NOVEL_CLASSES},
        "novel_filled": {c: "filled" for c in NOVEL_CLASSES},
    }
    with torch.inference_mode():
        for name, looks in sets.items():
            recs = load_records(
                classification_part(work / f"eval-{name}", n, seed, settings.image_size, looks)
            )
            m = evaluate_model(model, processor, recs, "classification", None, batch_size=32,
                               max_new_tokens=24, progress=False)  # fmt: skip
            out[f"classification_accuracy_{name}"] = m["classification"]["accuracy"]
        inst = synthesize(work / "eval-det", n, seed=seed, size=settings.image_size, classes=BASE_CLASSES,
                          min_objects=1, max_objects=settings.det_max_objects, background="plain",
                          min_scale=0.22, max_scale=0.45)  # fmt: skip
        recs = with_prompts(
            convert_coco(inst, categories=list(BASE_CLASSES), negative_ratio=float("inf")), "short"
        )
        m = evaluate_model(model, processor, recs, "detection", None, batch_size=32, max_new_tokens=64,
                           categories=list(BASE_CLASSES), progress=False, protocol="all-categories")  # fmt: skip
        out["base_detection_mAP_all_categories"] = m["detection"].get("mAP")
        out["base_detection_AP50"] = m["detection"].get("AP50")
        out["eval_images_per_metric"] = n
    return out


STAGE1_MARKER = "vrft_stage1.json"
STAGE1_FIELDS = ("seed", "arch", "image_size", "size", "vocab_size", "rope_theta", "vision_images",
                 "vision_steps", "vision_batch", "vision_lr", "vision_objective", "det_max_objects", "eval_images")  # fmt: skip


def stage1_key(settings: BaseBuildSettings) -> str:
    """Hash of what determines stage 1 (the tiny model and its pretrained tower) and the vrft version."""
    from vrft import __version__

    keyed = [__version__, {k: getattr(settings, k) for k in STAGE1_FIELDS}]
    return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:12]


def check_base_output(out_dir: str | os.PathLike) -> Path:
    """Refuse, before any work (one-line `UserError`), an output the build cannot replace: a file, a
    directory that is not a demo base (no card), a place that cannot be written. The new base is made
    beside `out_dir` and renamed in, so its parent must be writable too."""
    from vrft.errors import UserError
    from vrft.outputs import check_dir_output

    out = Path(out_dir)
    if out.is_dir() and any(out.iterdir()) and not (out / CARD).is_file():
        raise UserError(
            f"--out {out} exists and is not a demo base (no {CARD}): the build replaces its --out directory; "
            "choose a new or empty directory"
        )
    check_dir_output(out, foreign=False)
    if out.is_dir() and out.parent != out:
        check_dir_output(out.parent, foreign=False)
    return out


def build_base(
    out_dir: str | os.PathLike = SHIPPED_BASE,
    settings: BaseBuildSettings | None = None,
    *,
    work_dir: str | os.PathLike | None = None,
) -> Path:
    """Build the base model from nothing into `out_dir` (replaced safely, `replace_dir`); returns it.

    The output is checked first (`check_base_output`). `work_dir` (default: a temporary directory,
    removed whether the build succeeds or fails) keeps the intermediate files; a finished stage 1 of the
    same settings found there is reused (`stage1_key`), so an interrupted build resumes at the SFT stage
    (the card's timings then add the stage-1 times measured when it was built)."""
    settings = settings or BaseBuildSettings()
    out = check_base_output(out_dir)
    import torch

    from vrft.cpu import tune_cpu_process

    tune_cpu_process()
    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="vrft-demo-base-"))
    try:
        work.mkdir(parents=True, exist_ok=True)
        final, metrics, timings, cpu_seconds = _train(settings, work)
        _install(final, out, settings, metrics, timings, cpu_seconds)
    finally:
        if work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    logger.info("demo base built in %.0f s into %s: %s", timings["total"], out, metrics)
    return out


def _train(
    settings: BaseBuildSettings, work: Path
) -> tuple[Path, dict[str, Any], dict[str, float], dict[str, float]]:
    """Stages 1 and 2 and the held-out metrics in `work`: (final model dir, metrics, wall and CPU
    seconds per stage)."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from vrft.config import load_config
    from vrft.models.tiny import build_tiny
    from vrft.outputs import atomic_write_text
    from vrft.train.sft import run_sft

    timings: dict[str, float] = {}
    cpu_seconds: dict[
        str, float
    ] = {}  # process CPU time per stage: on a shared machine, wall time over-states
    c0 = time.process_time()

    stage1 = work / "stage1"
    key = stage1_key(settings)
    marker = stage1 / STAGE1_MARKER
    if marker.is_file() and json.loads(marker.read_text(encoding="utf-8")).get("key") == key:
        # A finished stage 1 of the same settings in this work directory (an interrupted build): reuse it.
        done = json.loads(marker.read_text(encoding="utf-8"))
        vision, timings = done["metrics"], done["timings"]
        cpu_seconds.update(done.get("cpu_seconds", {}))
        logger.info("vision tower: reusing the finished stage 1 in %s: %s", stage1, vision)
    else:
        t0 = time.perf_counter()
        tiny = build_tiny(settings.arch, work / "tiny", size=settings.size, vocab_size=settings.vocab_size,
                          rope_theta=settings.rope_theta, seed=settings.seed, image_size=settings.image_size,
                          vocab_texts=vocab_texts(settings.image_size, tools=settings.arch == "qwen3_vl"))  # fmt: skip
        model = AutoModelForImageTextToText.from_pretrained(tiny, dtype=torch.float32)
        processor = AutoProcessor.from_pretrained(tiny)
        timings["build"] = time.perf_counter() - t0
        vision = pretrain_vision(model, processor, settings)
        logger.info("vision tower: %s", vision)
        model.save_pretrained(stage1)
        processor.save_pretrained(stage1)
        timings["vision"] = vision["vision_seconds"]
        cpu_seconds["build+vision"] = time.process_time() - c0
        atomic_write_text(marker, json.dumps({"key": key, "metrics": vision, "timings": timings,
                                              "cpu_seconds": cpu_seconds}, indent=2) + "\n")  # fmt: skip

    t0 = time.perf_counter()
    c0 = time.process_time()
    mix = mix_records(settings, work / "data")
    timings["data"] = time.perf_counter() - t0
    px = settings.image_size**2
    cfg = load_config({
        "name": "demo base: classification of all shapes + base-shape detection",
        "model": {"path": str(stage1), "min_pixels": px, "max_pixels": px, "dtype": "float32"},
        "data": {"train": str(mix), "task": "detection", "shuffle": True},
        "sft": {"learning_rate": settings.sft_lr, "lr_scheduler": "cosine", "warmup": 0.03, "max_grad_norm": 1.0,
                "per_device_batch_size": settings.sft_batch, "max_steps": settings.sft_steps, "seed": settings.seed},
        "output": {"dir": str(work / "sft"), "sft_dir": str(work / "sft"), "logging_steps": 25, "overwrite": True},
    })  # fmt: skip
    t0 = time.perf_counter()
    final = run_sft(cfg, mixed_tasks=True)
    timings["sft"] = time.perf_counter() - t0
    cpu_seconds["data+sft"] = time.process_time() - c0
    c0 = time.process_time()

    t0 = time.perf_counter()
    metrics = {**vision, **build_metrics(final, settings, work / "eval")}
    timings["metrics"] = time.perf_counter() - t0
    cpu_seconds["metrics"] = time.process_time() - c0
    timings["total"] = sum(timings.values())  # the stages' sum (a reused stage 1 counts its own times)
    cpu_seconds["total"] = sum(cpu_seconds.values())
    sft_log = [json.loads(x) for x in (work / "sft" / "metrics.jsonl").read_text().splitlines() if x.strip()]
    losses = [r["loss"] for r in sft_log if "loss" in r]
    if losses:
        metrics["sft_final_loss"] = round(losses[-1], 4)
    return final, metrics, timings, cpu_seconds


def _install(final: Path, out: Path, settings: BaseBuildSettings, metrics: dict[str, Any],
             timings: dict[str, float], cpu_seconds: dict[str, float]) -> None:  # fmt: skip
    """The model files of `final`, the card and the README into a new directory beside `out`, which then
    replaces `out` (`replace_dir`)."""
    from vrft.outputs import atomic_write_text

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        keep = ("config.json", "generation_config.json", WEIGHTS, "tokenizer.json", "tokenizer_config.json",
                "chat_template.jinja", "processor_config.json", "preprocessor_config.json",
                "video_preprocessor_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
                "added_tokens.json", "vrft.json")  # fmt: skip
        for f in sorted(final.iterdir()):
            if f.is_file() and f.name in keep:
                shutil.copy2(f, tmp / f.name)
        card = {
            "name": "vrft demo base (miniature pretrained VLM)",
            "build_command": build_command(settings),
            "settings": settings.model_dump(mode="json"),
            "weights_sha256": sha256_of(tmp / WEIGHTS),
            "parameters": _parameters(tmp / WEIGHTS),
            "classes": {"base": list(BASE_CLASSES), "novel": list(NOVEL_CLASSES)},
            "metrics": metrics,
            "timings_seconds": {k: round(v, 1) for k, v in timings.items()},
            "cpu_seconds": {k: round(v, 1) for k, v in cpu_seconds.items()},
            "machine": {"cpus": os.cpu_count(), "threads": settings.threads, "platform": platform.platform(),
                        "load_average": [round(v, 2) for v in os.getloadavg()]},
            "versions": _versions(),
        }  # fmt: skip
        atomic_write_text(tmp / CARD, json.dumps(card, indent=2) + "\n")
        atomic_write_text(tmp / "README.md", _readme(card))
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def replace_dir(new: Path, out: Path) -> None:
    """Put the directory `new` at `out` (same parent) so that no moment holds neither: an existing `out`
    is first renamed aside (``.<name>.old-<pid>``), restored if `new` cannot be renamed in, and deleted
    only once `new` is in place. A crash between the two renames leaves the old base under the aside
    name, never nowhere."""
    if not out.exists():
        os.rename(new, out)
        return
    aside = out.with_name(f".{out.name}.old-{os.getpid()}")
    if aside.exists():
        shutil.rmtree(aside)
    os.rename(out, aside)
    try:
        os.rename(new, out)
    except BaseException:
        os.rename(aside, out)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _parameters(weights: Path) -> int:
    from safetensors import safe_open

    with safe_open(str(weights), "pt") as f:
        return sum(_prod(f.get_slice(k).get_shape()) for k in f.keys())


def _prod(shape: Any) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _versions() -> dict[str, str]:
    import torch
    import transformers
    import trl

    from vrft import __version__

    return {"vrft": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "trl": trl.__version__}  # fmt: skip


def build_command(settings: BaseBuildSettings) -> str:
    """The command that builds a base of `settings`: `BUILD_COMMAND` and the settings that differ from
    the defaults (the thread count changes speed, not what is built)."""
    defaults = BaseBuildSettings().model_dump(mode="json")
    changed = [f"{k}={v}" for k, v in settings.model_dump(mode="json").items() if k != "threads" and v != defaults[k]]
    return " ".join([BUILD_COMMAND, *changed])


FAMILY = {"qwen2_5_vl": "Qwen2.5-VL", "qwen3_vl": "Qwen3-VL"}


def _readme(card: dict[str, Any]) -> str:
    m = card["metrics"]
    arch = card.get("settings", {}).get("arch", "qwen2_5_vl")
    tools = (
        ["Its tokenizer's merges also cover Qwen3-VL's tool-call template (`tool_vocab_texts`): the base of",
         "the demo's tools experiment (docs/demo.md, experiments.run=[tools]).", ""]
        if arch == "qwen3_vl" else []
    )  # fmt: skip
    lines = [
        "# vrft demo base: a miniature pretrained VLM",
        "",
        f"A tiny {FAMILY.get(arch, arch)} (loads with `AutoModelForImageTextToText` / `AutoProcessor`) that knows the",
        "names of all 8 shapes and detects the 5 base shapes in Visual-RFT's answer format; the novel",
        "shapes (star, heart, diamond) it has only seen named as black outlines. See docs/demo.md.",
        "",
        *tools,
        f"Rebuild: `{card['build_command']}` (settings and timings below; the card is `card.json`).",
        "",
        f"- weights sha256: `{card['weights_sha256']}`",
        f"- parameters: {card['parameters']:,}",
        f"- build time: {card['timings_seconds']['total']:.0f} s on {card['machine']['cpus']} CPUs",
        "",
        "| held-out metric | value |",
        "|---|---:|",
        *[f"| {k} | {v} |" for k, v in m.items()],
        "",
    ]
    return "\n".join(lines)
