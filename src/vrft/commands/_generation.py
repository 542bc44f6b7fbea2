"""Checks of the generation options shared by `vrft eval` and `vrft predict`, made before any model
loads: numbers below 1, a device this machine lacks, images that do not decode."""

from __future__ import annotations

import argparse

from vrft.errors import DataError, UserError


def check_device(name: str) -> None:
    """UserError (before any model loads) for a --device torch cannot parse, or a CUDA device this
    machine does not have."""
    if name in ("auto", "cpu"):
        return
    import torch

    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise UserError(f"--device {name}: not a device; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UserError(f"--device {name}: no CUDA GPU is available here; use --device cpu (or auto)")
        if dev.index is not None and dev.index >= count:
            raise UserError(
                f"--device {name}: this machine has {count} CUDA GPU(s) (cuda:0..cuda:{count - 1})"
            )


def check_positive(args: argparse.Namespace, names: tuple[str, ...]) -> None:
    """UserError (before any work) for an option of `names` set below 1 (``--max-new-tokens 0`` would
    otherwise mean the task's default, ``--limit 0`` everything)."""
    for name in names:
        value = getattr(args, name, None)
        if value is not None and value < 1:
            flag = "--" + name.replace("_", "-")
            raise UserError(f"{flag} must be a positive integer, got {value}")


def check_generation_args(args: argparse.Namespace) -> None:
    """The number and device options of eval / predict, checked before anything is loaded."""
    check_positive(
        args, ("max_new_tokens", "batch_size", "limit", "presence_max_new_tokens", "min_pixels", "max_pixels")
    )
    if args.min_pixels is not None and args.max_pixels is not None and args.min_pixels > args.max_pixels:
        raise UserError(f"--min-pixels {args.min_pixels} is larger than --max-pixels {args.max_pixels}")
    if getattr(args, "backend", "hf") == "vllm":
        from vrft.evaluate.runner import vllm_device

        vllm_device(args.device)  # vLLM picks the GPU itself: auto or cuda only
        return
    check_device(args.device)


def check_images(records) -> None:
    """DataError listing every record whose image is missing, unreadable or does not decode (a truncated
    file with a valid header): each distinct image is decoded once, before the model loads."""
    from vrft.data.records import format_problems, image_problems
    from vrft.inputs import open_image
    from vrft.media import ImagePart

    bad = image_problems(records)  # headers first: cheap, and names every missing file
    if not bad:
        decoded: dict = {}
        for r in records:
            # every image a record shows (`images` too); a video's first frame was decoded above
            paths = [p.path for p in r.visual_parts() if isinstance(p, ImagePart)]
            for i, path in enumerate(paths):
                if path not in decoded:
                    try:
                        open_image(path, error=DataError)
                        decoded[path] = None
                    except DataError as err:
                        decoded[path] = str(err)
                if decoded[path]:
                    field = "image" if r.images is None else f"images[{i}]"
                    bad.append(f"{r.source or r.id}: {field}: {decoded[path]}")
    if bad:
        raise DataError(format_problems(bad, f"{len(bad)} record(s) with a missing or unreadable image:"))


def add_media_arguments(parser) -> None:
    """The five many-image / video budget options of eval and predict (default: the model's
    ``vrft.json``, else the config defaults: `vrft.data.visual_inputs.MediaBudget`)."""
    from vrft.data.visual_inputs import MediaBudget

    d = MediaBudget()
    parser.add_argument(
        "--max-images",
        type=int,
        help=f"most images one record may show (default: vrft.json, else {d.max_images})",
    )
    parser.add_argument(
        "--video-fps",
        type=float,
        help=f"video frames sampled per second (default: vrft.json, else {d.video_fps:g})",
    )
    parser.add_argument(
        "--video-max-frames",
        type=int,
        help=f"most frames per video (default: vrft.json, else {d.video_max_frames})",
    )
    parser.add_argument(
        "--video-max-pixels",
        type=int,
        help=f"largest area of one sampled frame (default: vrft.json, else {d.video_max_pixels})",
    )
    parser.add_argument(
        "--video-min-pixels",
        type=int,
        help=f"smallest area of one sampled frame (default: vrft.json, else {d.video_min_pixels})",
    )


def check_media(args: argparse.Namespace) -> None:
    """UserError (before any model loads) for a media budget option out of range."""
    from vrft.media import BUDGET_NAMES, budget_problem

    for name in BUDGET_NAMES:
        value = getattr(args, name, None)
        if value is not None and (want := budget_problem(name, value)):
            raise UserError(f"--{name.replace('_', '-')} must be {want}, got {value}")
    lo, hi = getattr(args, "video_min_pixels", None), getattr(args, "video_max_pixels", None)
    if lo is not None and hi is not None and lo > hi:
        raise UserError(f"--video-min-pixels {lo} is larger than --video-max-pixels {hi}")


def media_options(args: argparse.Namespace) -> dict:
    """The media budget options given on the command line (None where not given), as keyword
    arguments of `vrft.models.contract.resolve_settings`."""
    from vrft.media import BUDGET_NAMES

    return {name: getattr(args, name, None) for name in BUDGET_NAMES}
