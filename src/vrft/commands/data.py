"""`vrft data ...`: convert datasets to records, validate, sample few-shot sets, split, synthesise.

    vrft data convert coco instances_train2017.json --images train2017 --preset coco-ov-base65 --out base65.jsonl
    vrft data convert lvis lvis_v1_val.json --images coco --preset lvis-rare13 --negative-ratio all --out rare.jsonl
    vrft data convert imagefolder flowers/ --domain flowers102 --out flowers.jsonl
    vrft data convert coop split_zhou_OxfordFlowers.json --images jpg --domain flowers102 --out-dir flowers/
    vrft data convert refcoco refs.json --instances instances.json --split train --out refcoco.jsonl
    vrft data convert lisa lisa/train --out lisa_train.jsonl
    vrft data convert reference ViRFT_COCO_base65/ --out ref_base65/
    vrft data convert counting pixmo_count.json --images imgs --coords percent --out count.jsonl
    vrft data convert ocr words.jsonl --out ocr.jsonl
    vrft data convert icdar icdar2015_words/ --out ocr.jsonl
    vrft data convert charades charades_sta_test.txt --videos Charades_v1_480 --durations Charades_v1_test.csv --out sta.jsonl
    vrft data convert activitynet val_1.json --videos anet_videos --skip-missing --out anet.jsonl
    vrft data convert multi-image sets.jsonl --images imgs --target-base 1 --out mi.jsonl
    vrft data validate FILE [FILE ...]
    vrft data fewshot records.jsonl --shots 1,2,4,8,16 --seed 0 --out fewshot/
    vrft data split records.jsonl --test-fraction 0.2 --seed 0 --out split/
    vrft data synth --out shapes/ --images 1000 --seed 0 --size 112 --split base [--counting N] [--ocr N]
    vrft data synth --out shapes/ --images 0 --size 112 --video 32 --multi-image 32

See docs/data.md.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from vrft.commands._data_args import csv_list as _csv
from vrft.commands._data_args import report_written as _report
from vrft.errors import UserError
from vrft.inputs import seed_arg


def _ratio(text: str) -> float:
    if text.strip().lower() in ("all", "inf"):
        return math.inf
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: a number >= 0 or 'all'") from None
    if value < 0 or math.isnan(value):
        raise argparse.ArgumentTypeError(f"{text!r}: must be >= 0 (or 'all')")
    return value


def _classes(args: argparse.Namespace) -> list[str] | None:
    from vrft.data.presets import preset_classes

    if getattr(args, "preset", None) and getattr(args, "categories", None):
        raise UserError("give either --categories or --preset, not both")
    if getattr(args, "preset", None):
        return preset_classes(args.preset)
    return _csv(getattr(args, "categories", None))


def _detection_options(p: argparse.ArgumentParser) -> None:
    from vrft.data.presets import PRESETS

    p.add_argument("json", type=Path, help="instances JSON")
    p.add_argument("--out", type=Path, required=True, help="records JSONL to write")
    p.add_argument(
        "--images", type=Path, help="image folder (default: <json dir>/images or the JSON's folder)"
    )
    p.add_argument("--categories", help="comma-separated category names to ask about (default: all)")
    p.add_argument("--preset", choices=list(PRESETS), help="a named class list of the paper's splits")
    p.add_argument(
        "--negative-ratio",
        type=_ratio,
        default=0.0,
        help="'No Objects' records per positive record (seeded sample of absent categories), or 'all' "
        "(every absent category of every image: the evaluation protocol). Default 0",
    )
    p.add_argument(
        "--seed",
        type=seed_arg,
        default=0,
        help="seed of negative sampling / --max-images (default 0; any integer)",
    )
    p.add_argument("--max-images", type=int, help="use a seeded random subset of this many images")
    p.add_argument("--no-check-images", action="store_true", help="do not require the image files to exist")
    p.add_argument("--id-prefix", help="prefix of record ids (default: coco / lvis)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")

    convert = sub.add_parser("convert", help="convert a dataset to records").add_subparsers(
        dest="kind", metavar="KIND"
    )
    p = convert.add_parser("coco", help="COCO instances JSON -> detection records")
    _detection_options(p)
    p = convert.add_parser("lvis", help="LVIS JSON -> detection records (federated negatives)")
    _detection_options(p)
    p.add_argument(
        "--skip-not-exhaustive", action="store_true", help="drop positives of not-exhaustive classes"
    )
    p.add_argument("--keep-underscores", action="store_true", help="write 'egg_roll', not 'egg roll'")

    p = convert.add_parser("imagefolder", help="one folder per class -> classification records")
    p.add_argument("root", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--domain", help="OBJECT,ATTRIBUTE for the prompt (e.g. flower,species) or a preset name")
    p.add_argument("--id-prefix")

    p = convert.add_parser("coop", help="CoOp-style split JSON -> classification records per split")
    p.add_argument("split_json", type=Path)
    p.add_argument("--images", type=Path, required=True, help="folder the split's paths are relative to")
    p.add_argument("--out-dir", type=Path, required=True, help="writes <split>.jsonl there")
    p.add_argument("--splits", default="train,val,test")
    p.add_argument("--domain", help="OBJECT,ATTRIBUTE or a preset (flowers102, pets37, aircraft, cars196)")
    p.add_argument("--id-prefix")

    p = convert.add_parser("refcoco", help="RefCOCO refs (+ COCO instances) or a simple list -> grounding")
    p.add_argument("refs", type=Path, help="refs JSON list, or [{image, expression, bbox(xywh)}]")
    p.add_argument("--instances", type=Path, help="COCO instances JSON with the refs' boxes")
    p.add_argument("--images", type=Path)
    p.add_argument("--split", help="keep refs of these splits (comma-separated, e.g. train or testA)")
    p.add_argument("--first-sentence", action="store_true", help="one record per ref, not per sentence")
    p.add_argument("--no-check-images", action="store_true")
    p.add_argument("--out", type=Path, required=True)

    p = convert.add_parser("lisa", help="LISA-style folder (image + JSON with polygons) -> grounding")
    p.add_argument("folder", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument(
        "--first-shape",
        action="store_true",
        help="the reference's box: the first shape's only (default: all shapes not labelled ignore)",
    )
    p.add_argument(
        "--first-instruction",
        action="store_true",
        help="one record per image, its first instruction (the reference's LISA test items)",
    )

    p = convert.add_parser(
        "counting", help="Pixmo-Count / CLEVR-count style JSON (points or boxes) -> counting"
    )
    p.add_argument("json", type=Path, help="JSON list (or JSONL) of {image, category, points | boxes}")
    p.add_argument("--out", type=Path, required=True, help="records JSONL to write")
    p.add_argument("--images", type=Path, help="folder the image paths are relative to (default: the JSON's)")
    p.add_argument("--category", help="category of entries that name none (e.g. 'object')")
    p.add_argument(
        "--coords", choices=["pixels", "percent", "unit"], default="pixels",
        help="point / box coordinates: pixels, percent of the image side (Pixmo, 0..100) or unit (0..1)",
    )  # fmt: skip
    p.add_argument("--box-format", choices=["xyxy", "xywh"], default="xyxy")
    p.add_argument(
        "--point-radius", type=float, default=0.04,
        help="a GT point becomes a box of this half-side x the shorter image side (default 0.04)",
    )  # fmt: skip
    p.add_argument(
        "--no-check-images", action="store_true", help="do not open images (entries need width/height)"
    )
    p.add_argument("--id-prefix", default="count")

    p = convert.add_parser("ocr", help="generic OCR JSONL ({image, text} per line) -> OCR records")
    p.add_argument("jsonl", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--images", type=Path, help="folder the image paths are relative to (default: the file's)")
    p.add_argument("--id-prefix", default="ocr")

    p = convert.add_parser(
        "icdar", help="ICDAR-style folder (images + gt.txt or a text file per image) -> OCR"
    )
    p.add_argument("folder", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--id-prefix", default="icdar")

    for kind, what in (
        ("charades", "Charades-STA lines 'VIDEO_ID START END##SENTENCE'"),
        ("activitynet", "ActivityNet Captions JSON {video_id: {duration, timestamps, sentences}}"),
    ):
        p = convert.add_parser(kind, help=f"{what} -> temporal_grounding records")
        p.add_argument("annotations", type=Path, help="the annotation file")
        p.add_argument(
            "--videos",
            type=Path,
            required=True,
            help="folder of VIDEO_ID.mp4 (or --ext) files / frame folders",
        )
        p.add_argument("--out", type=Path, required=True, help="records JSONL to write")
        if kind == "charades":
            p.add_argument(
                "--durations", type=Path, metavar="CSV",
                help="Charades CSV with columns id and length (e.g. Charades_v1_test.csv); default: each video's header",
            )  # fmt: skip
        p.add_argument(
            "--ext", help="video file extension, e.g. .mp4 (default: the first of .mp4 .webm .mkv .avi .mov)"
        )
        p.add_argument(
            "--fps", type=float, help="frame rate of videos given as frame folders VIDEOS/VIDEO_ID/"
        )
        p.add_argument("--clip", action="store_true", help="cut an END after the video's end to its duration")
        p.add_argument(
            "--skip-missing", action="store_true", help="drop queries whose video is absent (counted)"
        )
        p.add_argument("--id-prefix", default="charades" if kind == "charades" else "anet")

    p = convert.add_parser(
        "multi-image", help="JSONL {images, expression, target, bbox} -> multi_image_grounding"
    )
    p.add_argument("jsonl", type=Path)
    p.add_argument("--out", type=Path, required=True, help="records JSONL to write")
    p.add_argument("--images", type=Path, help="folder the image paths are relative to (default: the file's)")
    p.add_argument(
        "--target-base", type=int, choices=[0, 1], default=1,
        help="target index convention: 1 (the first image is 1; default) or 0 (the first image is 0)",
    )  # fmt: skip
    p.add_argument(
        "--box-format", choices=["xyxy", "xywh"], default="xyxy", help="bbox, pixels of the target image"
    )
    p.add_argument("--id-prefix", default="mi")

    p = convert.add_parser("reference", help="the reference implementation's parquet / arrow sets -> records")
    p.add_argument("path", type=Path, help="parquet file or folder, save_to_disk folder, or .arrow file")
    p.add_argument("--out", type=Path, required=True, help="output folder (records.jsonl + images/)")
    p.add_argument("--split", help="split of a dataset dict")
    p.add_argument("--task", choices=["detection", "classification", "grounding"], help="force the task")
    p.add_argument("--skip-invalid", action="store_true", help="drop unconvertible rows (logged)")
    p.add_argument(
        "--convention",
        choices=["norm1000", "pixels", "resized_pixels"],
        default="norm1000",
        help="coordinates of the solutions: norm1000 (0..1000, the reference's sets; default), pixels of the "
        "image, or resized_pixels (Qwen2.5-VL resized image; needs --min-pixels and --max-pixels)",
    )
    p.add_argument("--min-pixels", type=int, help="--convention resized_pixels: processor min_pixels")
    p.add_argument("--max-pixels", type=int, help="--convention resized_pixels: processor max_pixels")
    p.add_argument(
        "--keep-prompts",
        action="store_true",
        help="train on each row's published problem text, byte for byte",
    )
    p.add_argument(
        "--drop-no-objects",
        action="store_true",
        help="drop 'No Objects' detection rows (the paper's training set had none, reference issue #8)",
    )

    p = sub.add_parser("validate", help="report every defect of records JSONL / COCO / LVIS JSON files")
    p.add_argument("files", type=Path, nargs="+")
    p.add_argument("--images", type=Path, help="image folder of a COCO / LVIS file")
    p.add_argument("--no-check-images", action="store_true", help="skip opening the images")

    p = sub.add_parser("fewshot", help="nested k-shot sets (k images per class), seeded")
    p.add_argument("records", type=Path)
    p.add_argument("--shots", default="1,2,4,8,16", help="comma-separated k values (default 1,2,4,8,16)")
    p.add_argument("--seed", type=seed_arg, default=0, help="any integer; taken mod 2**32 (default 0)")
    p.add_argument("--out", type=Path, required=True, help="writes {k}shot.jsonl and manifest.json there")
    p.add_argument("--categories", help="restrict to these classes (comma-separated)")
    from vrft.data.presets import PRESETS

    p.add_argument("--preset", choices=list(PRESETS), help="restrict to a named class list")
    p.add_argument(
        "--keep-negatives", action="store_true", help="detection: keep the chosen images' negatives"
    )

    p = sub.add_parser("split", help="train/test split by image (no image in both)")
    p.add_argument("records", type=Path)
    p.add_argument("--test-fraction", type=float, required=True)
    p.add_argument("--seed", type=seed_arg, default=0, help="any integer; taken mod 2**32 (default 0)")
    p.add_argument("--out", type=Path, required=True, help="writes train.jsonl and test.jsonl there")

    from vrft.commands.data_synth import add_synth_arguments

    add_synth_arguments(sub)


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "data_command", None)
    if action is None:
        raise UserError("give an action: convert, validate, fewshot, split or synth (vrft data --help)")
    return {
        "convert": _convert,
        "validate": _validate,
        "fewshot": _fewshot,
        "split": _split,
        "synth": _run_synth,
    }[action](args)


def _convert(args: argparse.Namespace) -> int:
    from vrft.outputs import OutputDir, check_dir_output, check_file_output

    kind = getattr(args, "kind", None)
    # outputs are checked before any conversion: kind, writability, and never one of the inputs
    inputs = [
        getattr(args, a, None)
        for a in ("json", "jsonl", "root", "split_json", "refs", "instances", "folder", "path", "annotations",
                  "durations")
    ]  # fmt: skip
    if kind in ("coco", "lvis", "imagefolder", "refcoco", "lisa", "counting", "ocr", "icdar", "charades",
                "activitynet", "multi-image"):  # fmt: skip
        args.out = check_file_output(
            args.out, inputs=inputs, owner=f"data convert {kind}", replaces="data convert"
        )
    if kind in ("coco", "lvis"):
        common = dict(
            images_dir=args.images,
            categories=_classes(args),
            negative_ratio=args.negative_ratio,
            seed=args.seed,
            max_images=args.max_images,
            check_images=not args.no_check_images,
            id_prefix=args.id_prefix or kind,
            out=args.out,
        )
        if kind == "coco":
            from vrft.data.coco import convert_coco

            records = convert_coco(args.json, **common)
        else:
            from vrft.data.lvis import convert_lvis

            records = convert_lvis(
                args.json,
                skip_not_exhaustive=args.skip_not_exhaustive,
                clean_names=not args.keep_underscores,
                **common,
            )
        pos = sum(1 for r in records if r.boxes)
        _report(
            len(records), f"detection records ({pos} positive, {len(records) - pos} 'No Objects')", args.out
        )
    elif kind == "imagefolder":
        from vrft.data.classification import convert_imagefolder

        records = convert_imagefolder(args.root, domain=args.domain, id_prefix=args.id_prefix, out=args.out)
        _report(len(records), f"classification records ({len(records[0].classes or [])} classes)", args.out)
    elif kind == "coop":
        from vrft.data.classification import convert_coop

        splits = _csv(args.splits)
        names = [f"{s}.jsonl" for s in splits]
        check_dir_output(args.out_dir, option="--out-dir", inputs=[*inputs, args.images], writes=names)
        with OutputDir(args.out_dir, "data convert coop", option="--out-dir") as d:
            d.claim(names)
            result = convert_coop(
                args.split_json,
                args.images,
                splits=splits,
                domain=args.domain,
                id_prefix=args.id_prefix,
                out_dir=args.out_dir,
            )
        for split, recs in result.items():
            _report(len(recs), f"{split} records", args.out_dir / f"{split}.jsonl")
    elif kind == "refcoco":
        from vrft.data.grounding import convert_refcoco

        records = convert_refcoco(
            args.refs,
            args.instances,
            images_dir=args.images,
            splits=_csv(args.split),
            first_sentence_only=args.first_sentence,
            check_images=not args.no_check_images,
            out=args.out,
        )
        _report(len(records), "grounding records", args.out)
    elif kind == "lisa":
        from vrft.data.grounding import convert_lisa

        records = convert_lisa(
            args.folder, first_shape=args.first_shape, first_instruction=args.first_instruction, out=args.out
        )
        _report(len(records), "grounding records", args.out)
    elif kind == "counting":
        from vrft.data.counting import convert_counting

        records = convert_counting(
            args.json, images_dir=args.images, category=args.category, coords=args.coords,
            box_format=args.box_format, point_radius=args.point_radius, id_prefix=args.id_prefix,
            check_images=not args.no_check_images, out=args.out,
        )  # fmt: skip
        total = sum(len(r.boxes) for r in records)
        _report(len(records), f"counting records ({total} objects)", args.out)
    elif kind == "ocr":
        from vrft.data.ocr import convert_ocr_jsonl

        records = convert_ocr_jsonl(
            args.jsonl, images_dir=args.images, id_prefix=args.id_prefix, out=args.out
        )
        _report(len(records), "OCR records", args.out)
    elif kind == "icdar":
        from vrft.data.ocr import convert_icdar

        records = convert_icdar(args.folder, id_prefix=args.id_prefix, out=args.out)
        _report(len(records), "OCR records", args.out)
    elif kind in ("charades", "activitynet"):
        from vrft.data import temporal

        common = dict(
            ext=args.ext, fps=args.fps, clip=args.clip, skip_missing=args.skip_missing, id_prefix=args.id_prefix,
            out=args.out,
        )  # fmt: skip
        if kind == "charades":
            records = temporal.convert_charades(
                args.annotations, args.videos, durations=args.durations, **common
            )
        else:
            records = temporal.convert_activitynet(args.annotations, args.videos, **common)
        videos = len({r.video for r in records})
        _report(len(records), f"temporal_grounding records ({videos} videos)", args.out)
    elif kind == "multi-image":
        from vrft.data.multi_image import convert_multi_image

        records = convert_multi_image(
            args.jsonl, images_dir=args.images, target_base=args.target_base, box_format=args.box_format,
            id_prefix=args.id_prefix, out=args.out,
        )  # fmt: skip
        _report(len(records), "multi_image_grounding records", args.out)
    elif kind == "reference":
        from vrft.data.records import load_records
        from vrft.data.reference import convert_reference

        names = ["records.jsonl", "images"]
        check_dir_output(args.out, inputs=inputs, writes=names)
        with OutputDir(args.out, "data convert reference") as d:
            d.claim(names, clean=True)  # an earlier conversion's images are removed, none is left behind
            path = convert_reference(
                args.path, args.out, split=args.split, task=args.task, skip_invalid=args.skip_invalid,
                convention=args.convention, min_pixels=args.min_pixels, max_pixels=args.max_pixels,
                keep_prompts=args.keep_prompts, drop_no_objects=args.drop_no_objects,
            )  # fmt: skip
        _report(len(load_records(path)), "records", path)
    else:
        raise UserError(
            "give a KIND: coco, lvis, imagefolder, coop, refcoco, lisa, counting, ocr, icdar, reference, charades, "
            "activitynet or multi-image"
        )
    return 0


def _validate(args: argparse.Namespace) -> int:
    from vrft.data.validate import validate_path

    total = 0
    for f in args.files:
        report = validate_path(f, images_dir=args.images, check_images=not args.no_check_images)
        for line in report.problems:
            print(line)
        print(report.summary(), file=sys.stderr)
        total += len(report.problems)
    if len(args.files) > 1:
        print(f"{len(args.files)} files: {total} problem(s) in all", file=sys.stderr)
    return 1 if total else 0


def _fewshot(args: argparse.Namespace) -> int:
    import json

    from vrft.data.fewshot import write_fewshot

    try:
        shots = [int(k) for k in _csv(args.shots)]
    except ValueError:
        raise UserError(f"--shots {args.shots!r}: comma-separated integers, e.g. 1,2,4,8,16") from None
    # write_fewshot checks and locks --out (vrft.outputs) before reading anything
    manifest = write_fewshot(
        args.records, args.out, shots, args.seed, classes=_classes(args), keep_negatives=args.keep_negatives
    )
    counts = json.loads(manifest.read_text())["counts"]
    for k, c in counts.items():
        print(f"{k}-shot: {c['records']} records, {c['images']} images -> {args.out / f'{k}shot.jsonl'}")
    print(f"manifest: {manifest}")
    return 0


def _split(args: argparse.Namespace) -> int:
    from vrft.data.fewshot import write_split
    from vrft.data.records import load_records

    train, test = write_split(args.records, args.out, args.test_fraction, args.seed)
    _report(len(load_records(train)), "train records", train)
    _report(len(load_records(test)), "test records", test)
    return 0


def _run_synth(args: argparse.Namespace) -> int:
    from vrft.commands.data_synth import run_synth

    return run_synth(args)
