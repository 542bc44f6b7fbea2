"""`vrft predict --model DIR IMAGE (--detect "cat,dog" | --classify "a flower" | --ground "the red cup" |
--count "apple" | --read)`, `vrft predict --model DIR --images A B [C ...] --ground "the red cup"`
(multi-image grounding: which image, and the box in it) and `vrft predict --model DIR --video CLIP.mp4
--when "the red star crosses the frame"` (temporal grounding: the window in seconds).

Asks the model as it was trained (the model directory's ``vrft.json``: prompt template, coordinates,
pixel budget; else the task's default prompt), prints the parsed answer (pixels of IMAGE; the
thinking too with -v) and writes a copy of the image with the boxes drawn (``--out``, default
``<image stem>.vrft.png`` beside the image, so two inputs of the same name in different folders never
share it; a file there that vrft did not write is never replaced, `vrft.outputs.check_file_output`).
With ``--images`` the images are drawn side by side, the box on the answered one (default ``--out``:
beside the first image); with ``--video`` nothing is drawn. Several images and a video are shown to
the model as training showed them (`vrft.data.visual_inputs`, under the budgets of ``vrft.json`` or
``--max-images`` / ``--video-fps`` / ``--video-max-frames`` / ``--video-max-pixels`` /
``--video-min-pixels``).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from vrft.errors import UserError

logger = logging.getLogger(__name__)

BOX_COLOURS = ("#ff1744", "#2979ff", "#00c853", "#ff9100", "#d500f9", "#00b8d4")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from vrft.commands._generation import add_media_arguments

    parser.add_argument("image", nargs="?", help="image file (or give --images / --video instead)")
    parser.add_argument("--model", required=True, help="local Hugging Face model directory")
    parser.add_argument(
        "--images",
        nargs="+",
        metavar="IMAGE",
        help="several images, in order: with --ground, which one shows it",
    )
    parser.add_argument("--video", help="a video file or a folder of frames: with --when, when it happens")
    parser.add_argument("--folder-fps", type=float, help="--video FOLDER: the frame rate of its frames")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--detect", metavar="CATEGORIES", help='comma-separated categories, e.g. "cat,dog"')
    what.add_argument("--classify", metavar="OBJECT", help='what the image contains, e.g. "a flower"')
    what.add_argument("--ground", metavar="EXPRESSION", help='a referring expression, e.g. "the red cup"')
    what.add_argument("--count", metavar="CATEGORY", help="count (and point to) the objects of a category")
    what.add_argument("--read", action="store_true", help="read the text in the image (OCR)")
    what.add_argument(
        "--when", metavar="EVENT", help='--video: when does the event happen, e.g. "a red star appears"'
    )
    parser.add_argument("--attribute", default="category", help='--classify: what to name, e.g. "species"')
    parser.add_argument(
        "--out", help="annotated image to write (default: <image stem>.vrft.png beside the image)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="also print the thinking and raw text")
    parser.add_argument("--max-new-tokens", type=int, help="token budget (default: the task's)")
    parser.add_argument(
        "--convention",
        default="auto",
        help="coordinate convention (default: the model's vrft.json, else from the family)",
    )
    parser.add_argument(
        "--prompt",
        help="user text template, e.g. 'Detect every {category}.' ({category}, {expression}, {label} are "
        "filled in); 'default': the task's own template (default: the model's vrft.json, else the task's)",
    )
    parser.add_argument(
        "--answer-only",
        action="store_true",
        help="ask for <answer>..</answer> alone, no thinking (default: the model's vrft.json, else think)",
    )
    parser.add_argument("--dtype", default="auto", help="model dtype (auto, float32, bfloat16, float16)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, ... (default: cuda if available)")
    parser.add_argument(
        "--tools",
        help="answer with tools, e.g. zoom_in,rotate (docs/tools.md; Qwen3-VL); 'none': without; default: the "
        "tools in the model's vrft.json. -v prints every turn",
    )
    parser.add_argument(
        "--min-pixels", type=int, help="image processor min_pixels (Qwen; default: vrft.json)"
    )
    parser.add_argument(
        "--max-pixels", type=int, help="image processor max_pixels (Qwen; default: vrft.json)"
    )
    add_media_arguments(parser)


def _strip_article(text: str) -> str:
    words = text.strip().split()
    if len(words) > 1 and words[0].lower() in ("a", "an", "the"):
        words = words[1:]
    return " ".join(words)


def draw(image, items: list[tuple[str, list[float], str]], out: Path) -> Path:
    """Draw ``(label, box in pixels, colour)`` items on a copy of `image` and save it to `out`."""
    from PIL import ImageDraw

    im = image.convert("RGB").copy()
    pen = ImageDraw.Draw(im)
    width = max(2, round(max(im.size) / 200))
    for label, box, colour in items:
        x1, y1, x2, y2 = box
        pen.rectangle([x1, y1, x2, y2], outline=colour, width=width)
        if label:
            tx, ty = x1 + width, max(0, y1 - 12)
            pen.rectangle(pen.textbbox((tx, ty), label), fill=colour)
            pen.text((tx, ty), label, fill="white")
    from vrft.outputs import atomic_open

    with atomic_open(out, "wb", encoding=None) as fh:  # a temporary name, renamed into place
        im.save(fh, format=_image_format(out))
    return out


def default_out(image: Path) -> Path:
    """Where the annotated copy of `image` goes without --out: ``<stem>.vrft.png`` beside the image
    (not in the working directory, where two inputs of the same name would collide)."""
    return image.parent / f"{image.stem}.vrft.png"


def _image_format(out: Path) -> str:
    """PIL's format name for the extension of `out` (UserError if it is not an image extension)."""
    from PIL import Image

    fmt = Image.registered_extensions().get(out.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise UserError(
            f"--out {out}: '{out.suffix or '(no extension)'}' is not an image type PIL can write; use .png or .jpg"
        )
    return fmt


def run(args: argparse.Namespace) -> int:
    from vrft.commands._generation import check_device, check_media, check_positive

    check_positive(args, ("max_new_tokens", "min_pixels", "max_pixels"))
    check_media(args)
    check_device(args.device)
    given = [name for name, value in (("IMAGE", args.image), ("--images", args.images), ("--video", args.video))
             if value]  # fmt: skip
    if len(given) != 1:
        raise UserError(
            f"give exactly one of IMAGE, --images A B ... or --video CLIP (got {', '.join(given) or 'none'})"
        )
    if args.images or args.video or args.when is not None:
        from vrft.commands.predict_media import run_media

        return run_media(args)
    return _run_image(args)


def _run_image(args: argparse.Namespace) -> int:
    from vrft.data.records import Record
    from vrft.evaluate.runner import HFGenerator, Request, load_image
    from vrft.inputs import check_file
    from vrft.models.contract import apply_to_records
    from vrft.models.load import convention_for, frame_for, load_model_and_processor
    from vrft.parsing import split
    from vrft.tasks import TASKS

    path = check_file(args.image, "image file", UserError)
    out = None
    if args.classify is None and not args.read:  # the annotated image: checked before the model loads
        from vrft.outputs import check_file_output

        out = check_file_output(args.out or default_out(path), inputs=[path, args.model])
        _image_format(out)
    image = load_image(path)
    w, h = image.size
    base = dict(image=str(path), width=w, height=h, image_path=path.resolve())
    if args.detect is not None:
        task = "detection"
        cats = [c.strip() for c in args.detect.split(",") if c.strip()]
        if not cats:
            raise UserError('--detect needs at least one category, e.g. --detect "cat,dog"')
        records = [Record(id=f"predict-{c}", task=task, category=c, **base) for c in cats]
    elif args.classify is not None:
        task = "classification"
        obj = _strip_article(args.classify)
        if not obj:
            raise UserError('--classify needs what the image contains, e.g. --classify "a flower"')
        domain = {"object": obj, "attribute": args.attribute}
        records = [Record(id="predict", task=task, label="?", domain=domain, **base)]
    elif args.count is not None:
        task = "counting"
        if not args.count.strip():
            raise UserError('--count needs a category, e.g. --count "apple"')
        records = [Record(id="predict", task=task, category=args.count.strip(), **base)]
    elif args.read:
        task = "ocr"
        records = [Record(id="predict", task=task, text="", **base)]
    else:
        task = "grounding"
        if not args.ground.strip():
            raise UserError('--ground needs an expression, e.g. --ground "the red cup"')
        records = [Record(id="predict", task=task, expression=args.ground, boxes=[[0, 0, w, h]], **base)]

    settings = predict_settings(args, task)
    records = apply_to_records(records, settings)
    model, processor = load_model_and_processor(
        args.model, dtype=args.dtype, min_pixels=settings.min_pixels, max_pixels=settings.max_pixels
    )
    if args.device != "auto" or __import__("torch").cuda.is_available():
        model.to("cuda" if args.device == "auto" else args.device)
    convention = convention_for(model.config, settings.convention)
    frame = frame_for(w, h, convention, processor)
    t = TASKS[task]
    budget = args.max_new_tokens or t.max_new_tokens
    from vrft.tools.generate import tool_generator

    contract_tools = settings.contract.tools if settings.contract is not None else None
    generator = tool_generator(args.tools, contract_tools, model, processor, convention, command="vrft predict",
                               batch_size=max(1, len(records)), progress=False)  # fmt: skip
    if generator is None:
        generator = HFGenerator(model, processor, batch_size=len(records), progress=False)
    texts = generator.generate([Request(image, t.prompt(r, frame), budget) for r in records])
    items: list[tuple[str, list[float], str]] = []
    for k, (rec, text) in enumerate(zip(records, texts)):
        pred = t.parse(text, frame)
        colour = BOX_COLOURS[k % len(BOX_COLOURS)]
        if args.verbose:
            parts = split(text)
            print(f"--- {rec.category or rec.expression or args.classify}")
            print(f"prompt: {t.prompt(rec, frame)}")
            print(f"thinking: {parts.think if parts.think is not None else '(no <think> tags)'}")
            print(f"raw: {text}")
            if getattr(generator, "transcripts", None):
                print(f"turns: {generator.transcripts[k]}")
        if not pred.ok:
            print(f"{rec.category or task}: could not parse the answer ({pred.reason})")
            continue
        if task == "classification":
            print(f"label: {pred.label}")
        elif task == "ocr":
            print(f"text: {pred.text}")
        elif task == "counting":
            points = pred.points or []
            shown = f", points {[[round(v, 1) for v in p] for p in points]} (pixels)" if points else ""
            print(f"{rec.category}: {pred.count}{shown}")
            r = max(2.0, max(w, h) / 100)
            items += [("", [x - r, y - r, x + r, y + r], colour) for x, y in points]
        elif task == "grounding":
            box = [round(v, 1) for v in pred.boxes[0]]
            print(f"box: {box} (pixels)")
            items.append((args.ground, pred.boxes[0], colour))
        else:
            if not pred.boxes:
                print(f"{rec.category}: No Objects")
            for box, score in zip(pred.boxes, pred.scores):
                print(f"{rec.category}: {[round(v, 1) for v in box]} confidence {score:.2f} (pixels)")
                items.append((f"{rec.category} {score:.2f}", box, colour))
    if out is not None:
        draw(image, items, out)
        print(f"wrote {out}")
    return 0


def predict_settings(args: argparse.Namespace, task: str, **media: object):
    """How to ask the model for `task`: its `vrft.json` with the command line's prompt, answer format,
    convention and pixel budgets over it (`media`: the many-image / video budget options)."""
    from vrft.models.contract import for_task, resolve_settings

    settings = resolve_settings(
        args.model,
        prompt=args.prompt,
        answer_format="answer_only" if getattr(args, "answer_only", False) else None,
        convention=None if args.convention == "auto" else args.convention,
        min_pixels=args.min_pixels,
        max_pixels=args.max_pixels,
        command="vrft predict",
        **media,
    )
    return for_task(settings, task, command="vrft predict")
