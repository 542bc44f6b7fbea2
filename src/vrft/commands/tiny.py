"""`vrft tiny --arch ARCH --out DIR`: build a tiny random model of a real architecture, offline.

The directory loads like any checkpoint (AutoModelForImageTextToText / AutoProcessor), so every vrft command
can be tried end to end without downloading a model: `vrft train model.path=DIR ...`.
"""

from __future__ import annotations

import argparse

_SIZE_OPTIONS = ("hidden_size", "layers", "heads", "kv_heads", "intermediate_size", "vision_hidden",
                 "vision_depth", "vision_heads", "vision_intermediate", "vocab_size")  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from vrft.inputs import seed_arg
    from vrft.models.tiny import SIZES, TINY_ARCHS

    parser.add_argument("--arch", required=True, choices=list(TINY_ARCHS), help="architecture to build")
    parser.add_argument(
        "--out",
        required=True,
        help="output directory (created; an earlier tiny model there is replaced, other files are kept)",
    )
    parser.add_argument(
        "--size", default="tiny", choices=list(SIZES),
        help="preset: 'tiny' (fast tests) or 'demo' (the ~1.5M-parameter miniature); options below override it",
    )  # fmt: skip
    parser.add_argument(
        "--seed", type=seed_arg, default=0, help="weights are identical for the same seed (default 0)"
    )
    parser.add_argument(
        "--image-size", type=int, default=112,
        help="image side in pixels the processor resizes to (pixel budget side**2; rounded to the patch grid)",
    )  # fmt: skip
    parser.add_argument(
        "--vocab-text", action="append", default=[], metavar="FILE",
        help="extra text file whose content the tokenizer learns merges from (repeatable)",
    )  # fmt: skip
    for name in _SIZE_OPTIONS:
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=None, help=f"override {name}")


def run(args: argparse.Namespace) -> int:
    from vrft.errors import UserError
    from vrft.inputs import read_text
    from vrft.models.tiny import build_tiny
    from vrft.outputs import OutputDir, check_dir_output

    out = check_dir_output(args.out, inputs=args.vocab_text, foreign=False)
    texts = [read_text(name, "--vocab-text file", UserError) for name in args.vocab_text]
    sizes = {name: getattr(args, name) for name in _SIZE_OPTIONS if getattr(args, name) is not None}
    # built in a private folder inside --out (locked), then moved into place: the files of an earlier
    # tiny model there are replaced, a file vrft did not write is never overwritten (vrft.outputs)
    with OutputDir(out, "tiny") as d, d.staged(clean=True) as tmp:
        build_tiny(
            args.arch,
            tmp,
            size=args.size,
            image_size=args.image_size,
            seed=args.seed,
            vocab_texts=texts,
            **sizes,
        )
    print(out)
    return 0
