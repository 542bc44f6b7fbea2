"""`vrft data synth`: draw the synthetic shapes world (detection, classification, grounding, counting, OCR,
video and multi-image parts) into one directory, replacing only the parts it draws.

Split from commands/data.py (the other `vrft data` actions) because the synth options alone fill a module.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vrft.commands._data_args import csv_list as _csv
from vrft.commands._data_args import report_written as _report
from vrft.errors import UserError
from vrft.inputs import seed_arg


def add_synth_arguments(sub) -> None:
    """The `synth` subparser of `vrft data`."""
    p = sub.add_parser("synth", help="draw the synthetic shapes world (COCO instances + PNGs)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--images", type=int, default=1000, help="number of detection images (default 1000)")
    p.add_argument("--seed", type=seed_arg, default=0, help="any integer; taken mod 2**32 (default 0)")
    p.add_argument(
        "--size", type=int, default=224, help="image side in pixels (default 224; the demo uses 112)"
    )
    p.add_argument(
        "--split", choices=["base", "novel", "all"], default="all", help="which shape classes to draw"
    )
    p.add_argument("--classes", help="comma-separated shape classes (overrides --split)")
    p.add_argument("--min-objects", type=int, default=1)
    p.add_argument("--max-objects", type=int, default=4)
    p.add_argument("--start-index", type=int, default=0, help="index of the first image (disjoint test sets)")
    p.add_argument(
        "--classification",
        type=int,
        nargs="?",
        const=-1,
        default=0,
        metavar="N",
        help="also write N classification images + classification.jsonl (default N = --images)",
    )
    p.add_argument(
        "--grounding", action="store_true", help="also write grounding.jsonl (referring expressions)"
    )
    p.add_argument(
        "--counting",
        type=int,
        default=0,
        metavar="N",
        help="also write N counting images + counting.jsonl (0..6 shapes of one category, distractors)",
    )
    p.add_argument(
        "--ocr", type=int, default=0, metavar="N", help="also write N OCR images (rendered words) + ocr.jsonl"
    )
    p.add_argument(
        "--video", type=int, default=0, metavar="N",
        help="also write N videos (a shape crosses the frame in a known time window) + temporal_grounding.jsonl",
    )  # fmt: skip
    p.add_argument("--video-fps", type=float, default=4.0, help="--video: frames per second (default 4)")
    p.add_argument(
        "--video-seconds", default="4,10", metavar="MIN,MAX",
        help="--video: length range in seconds (default 4,10)",
    )  # fmt: skip
    p.add_argument(
        "--video-format", choices=["mp4", "frames"], default="mp4",
        help="--video: .mp4 files (MPEG-4, PyAV) or folders of PNG frames (default mp4)",
    )  # fmt: skip
    p.add_argument(
        "--multi-image", type=int, default=0, metavar="N",
        help="also write N sets of 2-4 images (the asked shape in exactly one) + multi_image_grounding.jsonl",
    )  # fmt: skip
    p.add_argument("--workers", type=int, default=1, help="processes (output does not depend on it)")
    p.add_argument(
        "--records", action="store_true", help="also convert to detection records (detection.jsonl)"
    )


def run_synth(args: argparse.Namespace) -> int:
    """Run `vrft data synth`."""
    return _synth(args)


def _split_classes(split: str) -> list[str]:
    from vrft.data.synthetic import ALL_CLASSES, SHAPE_SPLIT

    return list(ALL_CLASSES if split == "all" else SHAPE_SPLIT[split])


def _synth(args: argparse.Namespace) -> int:
    import time

    from vrft.data.synthetic import check_bounds, classification_names, synthesize, synthesize_classification
    from vrft.outputs import OutputDir, check_dir_output

    start = time.perf_counter()
    n_cls = args.images if args.classification == -1 else args.classification
    # every bound before anything is listed or drawn
    check_bounds(
        n_images=args.images, size=args.size, min_objects=args.min_objects, max_objects=args.max_objects,
        classification=n_cls, start_index=args.start_index, workers=args.workers,
    )  # fmt: skip
    for flag in ("counting", "ocr", "multi_image"):
        flag_name = "--" + flag.replace("_", "-")
        check_bounds(n_images=getattr(args, flag) or 0, size=args.size, images_flag=flag_name)
    seconds = _video_seconds(args) if args.video else None
    if args.video:
        from vrft.data.video_world import check_video_bounds

        check_video_bounds(args.video, args.size, args.video_fps, *seconds, args.video_format)
    elif args.video < 0:
        raise UserError(f"--video {args.video}: must be >= 0")
    if not (args.images or n_cls or args.counting or args.ocr or args.video or args.multi_image):
        raise UserError(
            "nothing to draw: give --images N (detection), --classification N, --counting N, --ocr N, --video N "
            "or --multi-image N (N > 0)"
        )
    if not args.images and (args.grounding or args.records):
        raise UserError("--grounding and --records describe detection images: give --images N (N > 0) too")
    names = _synth_names(args, n_cls)
    check_dir_output(args.out, writes=names)
    # locked across every part (re-entrant); each part drawn replaces that part's earlier files, the
    # other parts of an earlier synth here are kept
    with OutputDir(args.out, "data synth") as d:
        if args.images:
            instances = synthesize(
                args.out,
                args.images,
                args.seed,
                size=args.size,
                classes=_csv(args.classes),
                split=args.split,
                min_objects=args.min_objects,
                max_objects=args.max_objects,
                classification=n_cls,
                grounding=args.grounding,
                start_index=args.start_index,
                workers=args.workers,
            )
            print(f"wrote {args.images} detection images and {instances}")
            if args.grounding:
                print(f"grounding records: {args.out / 'grounding.jsonl'}")
        elif n_cls:
            synthesize_classification(
                args.out, n_cls, args.seed, size=args.size, classes=_csv(args.classes) or _split_classes(args.split),
                start_index=args.start_index, workers=args.workers,
            )  # fmt: skip
        if n_cls:
            print(f"wrote {n_cls} classification images; records: {args.out / classification_names(0)[0]}")
        if args.counting:
            from vrft.data.synthetic import synthesize_counting

            path = synthesize_counting(
                args.out, args.counting, args.seed, size=args.size, classes=_csv(args.classes) or
                _split_classes(args.split), start_index=args.start_index,
            )  # fmt: skip
            print(f"wrote {args.counting} counting images; records: {path}")
        if args.ocr:
            from vrft.data.synthetic import synthesize_ocr

            path = synthesize_ocr(args.out, args.ocr, args.seed, width=args.size, height=max(16, args.size // 3),
                                  start_index=args.start_index)  # fmt: skip
            print(f"wrote {args.ocr} OCR images; records: {path}")
        if args.video:
            from vrft.data.video_world import synthesize_video

            path = synthesize_video(
                args.out, args.video, args.seed, size=args.size, fps=args.video_fps, min_seconds=seconds[0],
                max_seconds=seconds[1], classes=_csv(args.classes) or _split_classes(args.split),
                video_format=args.video_format, start_index=args.start_index,
            )  # fmt: skip
            print(f"wrote {args.video} videos ({args.video_format}); records: {path}")
        if args.multi_image:
            from vrft.data.video_world import synthesize_multi_image

            path = synthesize_multi_image(
                args.out, args.multi_image, args.seed, size=args.size,
                classes=_csv(args.classes) or _split_classes(args.split), start_index=args.start_index,
            )  # fmt: skip
            print(f"wrote {args.multi_image} image sets; records: {path}")
        if args.records:
            from vrft.data.coco import convert_coco

            d.claim(["detection.jsonl"])
            out = args.out / "detection.jsonl"
            records = convert_coco(instances, out=out)
            _report(len(records), "detection records (positives only; see `vrft data convert coco`)", out)
        kept = _kept_parts(d, args, n_cls)
        if kept:
            print(f"kept the earlier {', '.join(kept)} files of {args.out} (not drawn this time)")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


def _synth_names(args: argparse.Namespace, n_cls: int) -> list[str]:
    """Everything `vrft data synth` writes (the directory's manifest entries), checked before drawing."""
    from vrft.data.synthetic import classification_names, detection_names, part_names

    names = detection_names(args.images, args.start_index, n_cls, args.grounding) if args.images else []
    if not args.images and n_cls:
        names += classification_names(n_cls, args.start_index)
    if args.records:
        names.append("detection.jsonl")
    for part, n in (("counting", args.counting), ("ocr", args.ocr)):
        if n:
            names += part_names(part, n, args.start_index)
    if args.video or args.multi_image:
        from vrft.data.video_world import multi_image_names, video_names

        if args.video:
            names += video_names(args.video, args.start_index, args.video_format)
        if args.multi_image:
            names += multi_image_names(args.multi_image, args.start_index)
    return names


def _video_seconds(args: argparse.Namespace) -> tuple[float, float]:
    """``--video-seconds MIN,MAX`` as two numbers (UserError naming the option otherwise)."""
    parts = (args.video_seconds or "").split(",")
    try:
        lo, hi = (float(parts[0]), float(parts[1])) if len(parts) == 2 else (float(parts[0]),) * 2
    except ValueError:
        raise UserError(f"--video-seconds {args.video_seconds!r}: give MIN,MAX seconds, e.g. 4,10") from None
    return lo, hi


def _kept_parts(d, args: argparse.Namespace, n_cls: int) -> list[str]:
    """The parts of an earlier synth still in the directory that this run did not draw."""
    from vrft.data.synthetic import SYNTH_PARTS, synth_part

    drawn = {
        "detection": args.images, "classification": n_cls, "counting": args.counting, "ocr": args.ocr,
        "video": args.video, "multi_image": args.multi_image,
    }  # fmt: skip
    present = {synth_part(e) for e, owner in d.entries.items() if owner == "data synth"}
    return [part for part in SYNTH_PARTS if part in present and not drawn[part]]
