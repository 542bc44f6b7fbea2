"""`vrft predict` on several images (``--images A B ... --ground EXPR``: multi_image_grounding) or a
video (``--video CLIP --when EVENT``: temporal_grounding).

The record asked is built from the files (image sizes from their headers; the video's duration and
frame size from its header, `vrft.media.probe_video`) and asked as training showed such records
(`vrft.evaluate.runner.request_for`, under the budgets of the model's ``vrft.json`` or the
``--max-images`` / ``--video-*`` options). Every file is checked before the model loads.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vrft.errors import UserError


def _images_record(args: argparse.Namespace):
    from vrft.data.records import Record
    from vrft.evaluate.runner import load_image
    from vrft.inputs import check_file

    if args.ground is None or not args.ground.strip():
        raise UserError('--images asks which image shows an expression: add --ground "the red cup"')
    paths = [check_file(p, "image file", UserError) for p in args.images]
    images = [load_image(p) for p in paths]  # each decoded once, before the model loads
    sizes = [[im.width, im.height] for im in images]
    rec = Record(
        id="predict", task="multi_image_grounding", images=[str(p) for p in paths], image_sizes=sizes,
        expression=args.ground, target_image=1, boxes=[[0, 0, sizes[0][0], sizes[0][1]]],
        image_paths=[p.resolve() for p in paths],
    )  # fmt: skip
    return rec, images


def _video_record(args: argparse.Namespace):
    from vrft.data.records import Record
    from vrft.errors import DataError
    from vrft.media import VideoPart, probe_video, video_problem

    if args.when is None or not args.when.strip():
        raise UserError('--video asks when an event happens: add --when "a red star crosses the frame"')
    path = Path(args.video)
    if not path.exists():
        raise UserError(f"--video {path}: not found (a video file, or a folder of frames with --folder-fps)")
    if path.is_dir() and args.folder_fps is None:
        raise UserError(f"--video {path} is a folder of frames: give their frame rate with --folder-fps")
    try:
        info = probe_video(path, args.folder_fps)
    except DataError as err:
        raise UserError(str(err)) from None
    part = VideoPart(path.resolve(), info.width, info.height, info.duration, args.folder_fps)
    problem = video_problem(part)
    if problem:
        raise UserError(problem)
    rec = Record(
        id="predict", task="temporal_grounding", video=str(path), duration=info.duration, width=info.width,
        height=info.height, fps=args.folder_fps, event=args.when, window=[0.0, info.duration],
        video_path=path.resolve(),
    )  # fmt: skip
    return rec


def _check_pairing(args: argparse.Namespace) -> None:
    if args.images and args.ground is None:
        raise UserError('--images goes with --ground "EXPRESSION" (which image shows it, and where)')
    if args.video and args.when is None:
        raise UserError('--video goes with --when "EVENT" (when it happens, in seconds)')
    if args.when is not None and not args.video:
        raise UserError("--when asks about a video: give it with --video CLIP.mp4 (or a folder of frames)")
    if args.video and args.out:  # nothing would be written there: say so rather than ignore it
        raise UserError("--out names the annotated image of IMAGE or --images; --video writes no file (drop --out)")


def run_media(args: argparse.Namespace) -> int:
    """`vrft predict` with ``--images`` or ``--video`` (see the module docstring)."""
    from vrft.commands._generation import media_options
    from vrft.commands.predict import predict_settings
    from vrft.data.visual_inputs import MediaBudget, check_image_count
    from vrft.errors import DataError
    from vrft.evaluate.runner import HFGenerator, request_for
    from vrft.models.contract import apply_to_records
    from vrft.models.load import convention_for, frame_for, load_model_and_processor
    from vrft.parsing import split
    from vrft.tasks import TASKS
    from vrft.tasks.base import record_frame

    _check_pairing(args)
    out, images = None, []
    if args.images:
        rec, images = _images_record(args)
        from vrft.commands.predict import _image_format, default_out
        from vrft.outputs import check_file_output

        out = check_file_output(
            args.out or default_out(Path(args.images[0])), inputs=[*args.images, args.model]
        )
        _image_format(out)
    else:
        rec = _video_record(args)
    task = rec.task
    settings = predict_settings(args, task, **media_options(args))
    media = MediaBudget.of(settings)
    try:
        check_image_count(rec, media)
    except DataError as err:
        raise UserError(f"{err}; or pass --max-images") from None
    (rec,) = apply_to_records([rec], settings)
    model, processor = load_model_and_processor(
        args.model, dtype=args.dtype, min_pixels=settings.min_pixels, max_pixels=settings.max_pixels
    )
    if args.device != "auto" or __import__("torch").cuda.is_available():
        model.to("cuda" if args.device == "auto" else args.device)
    convention = convention_for(model.config, settings.convention)
    frame = record_frame(rec, lambda w, h: frame_for(w, h, convention, processor))
    t = TASKS[task]
    budget = args.max_new_tokens or t.max_new_tokens
    request = request_for(rec, t.prompt(rec, frame), budget, None, media)
    (text,) = HFGenerator(model, processor, batch_size=1, progress=False).generate([request])
    pred = t.parse(text, frame)
    if args.verbose:
        parts = split(text)
        print(f"prompt: {t.prompt(rec, frame)}")
        if request.visuals is not None and "times" in request.visuals:
            print(f"frames at: {', '.join(f'{x:g}' for x in request.visuals['times'])} s")
        print(f"thinking: {parts.think if parts.think is not None else '(no <think> tags)'}")
        print(f"raw: {text}")
    if not pred.ok:
        print(f"{task}: could not parse the answer ({pred.reason})")
    elif task == "temporal_grounding":
        start, end = pred.window
        print(f"window: [{start:g}, {end:g}] s (of {rec.duration:g} s)")
    else:
        box = [round(v, 1) for v in pred.boxes[0]]
        print(f"image: {pred.image} of {len(images)}, box: {box} (pixels of image {pred.image})")
    if out is not None:  # the images side by side, the box (if any) on the answered one
        side_by_side(
            images, pred.image if pred.ok else None, pred.boxes[0] if pred.ok else None, args.ground, out
        )
        print(f"wrote {out}")
    return 0


def side_by_side(
    images: list[Any], index: int | None, box: list[float] | None, label: str, out: Path
) -> Path:
    """Draw `images` side by side (top-aligned, 8 px apart) with `box` (pixels of image `index`,
    1-based; None: no box) on that image, and save to `out` (atomically)."""
    from PIL import Image

    from vrft.commands.predict import BOX_COLOURS, draw

    gap = 8
    width = sum(im.width for im in images) + gap * (len(images) - 1)
    canvas = Image.new("RGB", (width, max(im.height for im in images)), (255, 255, 255))
    x, offset = 0, 0
    for i, im in enumerate(images, start=1):
        canvas.paste(im.convert("RGB"), (x, 0))
        if i == index:
            offset = x
        x += im.width + gap
    if box is None:
        return draw(canvas, [], out)
    shifted = [box[0] + offset, box[1], box[2] + offset, box[3]]
    return draw(canvas, [(label, shifted, BOX_COLOURS[0])], out)
