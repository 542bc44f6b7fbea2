"""`vrft eval`: evaluate a model on records, or re-score saved completions, with the paper's metrics.

    vrft eval --model DIR --data RECORDS --out DIR [--task T] [--protocol all-categories|paper|records]
              [--batch-size 16] [--max-new-tokens N] [--backend hf|vllm] [--limit N]
              [--coco-gt instances.json | --lvis-gt lvis_v1_val.json] [--categories a,b,...]
    vrft eval --predictions FILE.jsonl --coco-gt instances.json --out DIR [--images DIR]
    vrft eval --predictions FILE.jsonl --data RECORDS --out DIR
              [--convention norm1000|pixels|resized_pixels --min-pixels N --max-pixels M]
    ... [--paper] [--protocol paper --presence-from exist_map.json|predictions.jsonl]

Options are checked, and --out claimed, before any model loads. Re-scoring reads the answers'
coordinates from the run that wrote them (`recorded_coordinates`) unless --convention is given.

Writes metrics.json, predictions.jsonl, coco_results.json (detection) and report.html into --out.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

from vrft.data.record_checks import TASK_NAMES
from vrft.errors import UserError

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from vrft.commands._generation import add_media_arguments

    src = parser.add_argument_group("what to evaluate")
    src.add_argument("--model", help="local Hugging Face model directory (checkpoint or `vrft tiny` output)")
    src.add_argument(
        "--predictions", help="JSONL of saved completions to re-score instead of running a model"
    )
    src.add_argument("--data", help="records JSONL (vrft data convert / synthesize output)")
    src.add_argument("--out", required=True, help="output directory")
    src.add_argument(
        "--task",
        choices=TASK_NAMES,
        help="default: the records' task",
    )
    det = parser.add_argument_group("detection")
    det.add_argument(
        "--protocol",
        choices=("all-categories", "paper", "records"),
        default="all-categories",
        help="all-categories: ask every category for every image; paper: the model's own yes/no presence "
        "pass first, boxes only where it says yes; records: exactly the records' (image, category) pairs, "
        "nothing added (default: all-categories)",
    )
    det.add_argument(
        "--coco-gt", help="COCO instances JSON: the ground truth (default: built from the records)"
    )
    det.add_argument(
        "--lvis-gt", help="LVIS annotation JSON: evaluate with LVIS rules (needs `pip install lvis`)"
    )
    det.add_argument(
        "--categories", help="comma-separated selected categories (default: those in the records)"
    )
    det.add_argument("--images", help="--predictions with --coco-gt: directory of the images, for the report")
    det.add_argument(
        "--presence-from",
        metavar="FILE",
        help="--protocol paper with another run's presence answers instead of the model's own pass: a "
        "predictions.jsonl of a --protocol paper run, or the reference's exist_map_*.json (the paper's protocol)",
    )
    gen = parser.add_argument_group("generation")
    gen.add_argument("--batch-size", type=int, default=16, help="prompts per generate call (default 16)")
    gen.add_argument("--max-new-tokens", type=int, help="token budget per answer (default: the task's)")
    gen.add_argument(
        "--backend", choices=("hf", "vllm"), default="hf", help="generation backend (default hf)"
    )
    gen.add_argument("--limit", type=int, help="evaluate only the first N images (detection) / records")
    gen.add_argument(
        "--tools",
        help="answer with tools, e.g. zoom_in,rotate (docs/tools.md; Qwen3-VL; hf backend); 'none': without; "
        "default: the tools in the model's vrft.json",
    )
    gen.add_argument("--dtype", default="auto", help="model dtype: auto, float32, bfloat16, float16")
    gen.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    gen.add_argument(
        "--min-pixels", type=int, help="image processor min_pixels (Qwen; paper: 3136; default: vrft.json)"
    )
    gen.add_argument(
        "--max-pixels", type=int, help="image processor max_pixels (Qwen; paper: 401408; default: vrft.json)"
    )
    add_media_arguments(gen)
    gen.add_argument(
        "--convention",
        default="auto",
        help="coordinate convention of the answers: auto (the model's vrft.json, else from the model family), "
        "norm1000, resized_pixels, pixels; --predictions: auto reads the run that wrote them (its metrics.json, "
        "else its model's vrft.json), else norm1000; resized_pixels needs the pixel budget (recorded, or "
        "--min-pixels/--max-pixels)",
    )
    gen.add_argument(
        "--prompt",
        help="user text template for every record, e.g. 'Detect every {category}.'; 'default': the task's "
        "own (default: the records' own prompt, else the model's vrft.json, else the task's)",
    )
    gen.add_argument(
        "--presence-max-new-tokens",
        type=int,
        default=64,
        help="token budget of a presence answer (paper protocol)",
    )
    out = parser.add_argument_group("scoring and output")
    out.add_argument(
        "--lenient-parse",
        action="store_true",
        help="read answers without <answer> tags (text after </think>, or the whole text) for every metric "
        "(accuracy, AP, mean IoU, the report's score); default: tags required, as the rewards",
    )
    out.add_argument(
        "--answer-only",
        action="store_true",
        help="prompt for <answer>..</answer> alone (no thinking) and score that format (Perception-R1); "
        "overrides the records' answer_format (default: each record's, else the model's vrft.json, else think)",
    )
    out.add_argument("--no-report", action="store_true", help="do not write report.html")
    out.add_argument(
        "--paper",
        action="store_true",
        help="the reference implementation's evaluation: its prompt texts (LISA: its system prompt, 128 "
        "tokens), the processor's default pixel budget (max 12845056), LVIS per-class AP averaged over "
        "the four area ranges (docs/evaluation.md, paper reproduction mode)",
    )


def _categories(text: str | None) -> list[str] | None:
    if not text:
        return None
    names = [c.strip() for c in text.split(",") if c.strip()]
    if not names:
        raise UserError("--categories is empty; give comma-separated names, e.g. --categories cat,dog")
    return names


def _ground_truth(args) -> tuple[dict | None, bool]:
    from vrft.evaluate.coco import load_gt

    if args.coco_gt and args.lvis_gt:
        raise UserError("give either --coco-gt or --lvis-gt, not both")
    if args.lvis_gt:
        return load_gt(args.lvis_gt, lvis=True), True
    if args.coco_gt:
        return load_gt(args.coco_gt), False
    return None, False


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def _settings(args):
    from vrft.commands._generation import media_options
    from vrft.models.contract import resolve_settings

    # --paper asks with the reference's texts (vrft.tasks.reference), not a trained template
    paper_prompt = getattr(args, "paper", False) and args.prompt is None
    return resolve_settings(
        args.model,
        prompt="default" if paper_prompt else args.prompt,
        answer_format="answer_only" if getattr(args, "answer_only", False) else None,
        convention=None if args.convention == "auto" else args.convention,
        min_pixels=args.min_pixels,
        max_pixels=args.max_pixels,
        command="vrft eval",
        **media_options(args),
    )


def _run_model(args, settings, records, task: str, gt: dict | None, lvis: bool) -> dict:
    from vrft.data.visual_inputs import MediaBudget
    from vrft.evaluate.paper import paper_options
    from vrft.evaluate.pipeline import evaluate_model
    from vrft.models.load import convention_for, load_model_and_processor, load_processor

    media = MediaBudget.of(settings)

    override = settings.convention
    paper = paper_options(args, task)  # --paper: the processor's default budget (explicit flags win)
    pixels = {
        "min_pixels": paper.min_pixels if paper.min_pixels is not None else settings.min_pixels,
        "max_pixels": paper.max_pixels if paper.max_pixels is not None else settings.max_pixels,
    }
    extra = {"model": str(args.model), "data": str(args.data), "backend": args.backend,
             "prompt": settings.prompt, "model_contract": settings.contract is not None, **pixels}  # fmt: skip
    if args.backend == "vllm" and getattr(args, "tools", None) not in (None, "none"):
        raise UserError("--tools answers through the hf backend's multi-turn loop; drop --backend vllm")
    if args.backend == "vllm":
        from transformers import AutoConfig

        from vrft.evaluate.runner import VLLMGenerator
        from vrft.models.load import pixel_budget

        processor = load_processor(args.model, **pixels)
        config = AutoConfig.from_pretrained(args.model, local_files_only=True)
        # vLLM resizes images with the budget the answers are decoded with (the processor's), batches
        # at most --batch-size sequences, and refuses a --device it cannot honour
        generator = VLLMGenerator(args.model, processor, dtype=args.dtype, batch_size=args.batch_size,
                                  pixel_budget=pixel_budget(processor), device=args.device,
                                  max_images=_most_images(records, media))  # fmt: skip
        model = None
        convention = convention_for(config, override)
    else:
        model, processor = load_model_and_processor(args.model, dtype=args.dtype, **pixels)
        model.to(_device(args.device))
        convention = convention_for(model.config, override)
        from vrft.tools.generate import tool_generator

        contract_tools = settings.contract.tools if settings.contract is not None else None
        generator = tool_generator(args.tools, contract_tools, model, processor, convention,
                                   batch_size=args.batch_size)  # fmt: skip
    return evaluate_model(
        model,
        processor,
        records,
        task,
        args.out,
        batch_size=args.batch_size,
        protocol=args.protocol,
        max_new_tokens=args.max_new_tokens,
        convention=convention,
        gt=gt,
        lvis=lvis,
        categories=_categories(args.categories),
        generator=generator,
        presence_max_new_tokens=args.presence_max_new_tokens,
        require_tags=not args.lenient_parse,
        report=not args.no_report,
        title=f"vrft eval: {Path(args.model).name} on {Path(args.data).name} ({task})",
        extra=extra,
        answer_format="answer_only" if args.answer_only else None,
        prompt_style=paper.prompt_style,
        presence_map=paper.presence_map,
        lvis_area=paper.lvis_area,
        media=media,
    )


def _most_images(records, media) -> int:
    """The most images one prompt shows: 1, an ``images`` record's count, or a video's sampled frames."""
    from vrft.data.visual_inputs import frame_times

    counts = [
        len(r.images) if r.images is not None else len(frame_times(r, media)) if r.video else 1
        for r in records
    ]
    return max(counts, default=1)


def rescore_coordinates(args) -> dict:
    """How to read the boxes of saved answers: ``{"convention", "min_pixels", "max_pixels",
    "patch_factor"}``. Explicit options win; else the run that wrote the predictions
    (`vrft.models.contract.recorded_coordinates`); else norm1000, the paper's. Logs where they came from."""
    from vrft.models.contract import recorded_coordinates

    rec = recorded_coordinates(args.predictions)
    convention, lo, hi, source = rec["convention"], rec["min_pixels"], rec["max_pixels"], rec["source"]
    if args.convention != "auto":
        if convention is not None and args.convention != convention:
            logger.warning(
                "--convention %s overrides the convention %s recorded in %s",
                args.convention,
                convention,
                source,
            )
        convention, source = args.convention, "--convention"
    if convention is None:
        convention, source = "norm1000", "the default (0..1000, the paper's; --convention to change it)"
    out = {
        "convention": convention,
        "min_pixels": args.min_pixels if args.min_pixels is not None else lo,
        "max_pixels": args.max_pixels if args.max_pixels is not None else hi,
        "patch_factor": rec["patch_factor"],
    }
    logger.info("reading the answers' boxes as %s (from %s)", convention, source)
    return out


def _rescore(args, gt: dict | None, lvis: bool) -> dict:
    from vrft.evaluate.paper import paper_options
    from vrft.evaluate.rescore import rescore

    paper = paper_options(args)
    return rescore(
        args.predictions,
        args.out,
        data=args.data,
        task=args.task,
        gt=gt,
        lvis=lvis,
        images_dir=args.images,
        **rescore_coordinates(args),
        categories=_categories(args.categories),
        protocol=args.protocol,
        require_tags=not args.lenient_parse,
        report=not args.no_report,
        answer_format="answer_only" if args.answer_only else None,
        presence_map=paper.presence_map,
        lvis_area=paper.lvis_area,
        limit=args.limit,
    )


def _summary(metrics: dict) -> str:
    lines = []
    for task, values in metrics.items():
        if task == "run" or not isinstance(values, dict):
            continue
        shown = [
            f"{k}={v:.2f}" if isinstance(v, float) and math.isfinite(v) else f"{k}={v}"
            for k, v in values.items()
            if not isinstance(v, dict)
        ]
        lines.append(f"{task}: " + " ".join(shown))
    return "\n".join(lines)


def _claim_out(args: argparse.Namespace) -> None:
    """Check and lock --out BEFORE any work (vrft.outputs): not a file, writable, not holding an input,
    no file there that vrft did not write; the lock (released when the command ends) refuses a second
    evaluation into the same directory."""
    import os

    from vrft.evaluate.pipeline import EVAL_OUTPUTS
    from vrft.outputs import OutputDir, check_dir_output, refuse_overlap

    resolved = Path(os.path.realpath(args.out))
    if resolved == resolved.parent:
        raise UserError(
            f"--out {args.out} is the filesystem root; give a directory of its own, e.g. eval/run1"
        )
    inputs = [args.model, args.predictions, args.data, args.coco_gt, args.lvis_gt, args.images,
              getattr(args, "presence_from", None)]  # fmt: skip
    check_dir_output(args.out, inputs=inputs, writes=EVAL_OUTPUTS)
    refuse_overlap([args.out], inputs)  # an output directory that holds an input is refused (the docs)
    OutputDir(args.out, "eval").open()


def run(args: argparse.Namespace) -> int:
    from vrft.commands._generation import check_generation_args, check_images, check_media
    from vrft.data.records import load_records
    from vrft.data.visual_inputs import MediaBudget, check_image_count
    from vrft.evaluate.rescore import infer_task, limit_records
    from vrft.models.contract import apply_to_records, for_task, pick_task

    if bool(args.model) == bool(args.predictions):
        raise UserError("give exactly one of --model DIR (run the model) or --predictions FILE (re-score)")
    check_generation_args(args)
    check_media(args)
    _claim_out(args)
    gt, lvis = _ground_truth(args)
    if args.predictions and args.prompt is not None:
        raise UserError("--prompt asks a model: it applies to --model, not to re-scoring --predictions")
    if args.predictions:
        metrics = _rescore(args, gt, lvis)
    else:
        if not args.data:
            raise UserError("--model needs --data RECORDS (the evaluation records)")
        records = load_records(args.data)
        settings = _settings(args)
        task = infer_task(records, pick_task(settings, [r.task for r in records], args.task))
        settings = for_task(settings, task, command="vrft eval")
        records = limit_records([r for r in records if r.task == task], task, args.limit)
        check_images(records)  # every image decoded once, before the model loads
        media = MediaBudget.of(settings)
        for r in records:  # more images than the budget: refused before the model loads
            check_image_count(r, media)
        metrics = _run_model(args, settings, apply_to_records(records, settings), task, gt, lvis)
    print(_summary(metrics))
    print(f"wrote {Path(args.out) / 'metrics.json'}")
    return 0
