"""The `vrft` command line.

Each subcommand lives in its own module under `vrft.commands` and exposes
`add_arguments(parser)` and `run(args) -> int`. Modules are imported lazily so that
`vrft score` does not pay for importing torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from vrft.errors import UserError

# name -> (module under vrft.commands, one-line help). A literal dict: greppable, no side effects.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "the paper's few-shot experiment in miniature (baseline vs SFT vs Visual-RFT)"),
    "data": ("data", "convert, validate, sample few-shot sets, synthesise the shapes world"),
    "doctor": (
        "doctor",
        "sample a config's first prompts as training would and say why the reward will not move",
    ),
    "train": ("train", "run Visual-RFT (GRPO) from a config"),
    "sft": ("sft", "run the supervised fine-tuning baseline from a config"),
    "eval": ("eval", "evaluate a model (or saved completions) with the paper's metrics"),
    "predict": ("predict", "answer for one image and draw the boxes"),
    "score": ("score", "re-score completions offline with the verifiable rewards"),
    "audit": ("audit", "score exploit completions against the honest answer (reward-hacking audit)"),
    "check-config": ("check_config", "validate a training config without loading a model"),
    "tiny": ("tiny", "build a tiny random model of a real architecture (offline)"),
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    from vrft import __version__

    parser = argparse.ArgumentParser(prog="vrft", description="Visual Reinforcement Fine-Tuning.")
    parser.add_argument("--version", action="version", version=f"vrft {__version__}")
    parser.add_argument("--log-level", default="INFO", help="logging level (default: INFO)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = _chosen_command(sys.argv[1:] if argv is None else argv)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        # Only the chosen command's module is imported: `vrft score` must not pay for torch.
        if name == chosen:
            _load(module).add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def _chosen_command(argv: list[str]) -> str | None:
    """The first argument naming a command (options before it belong to `vrft` itself)."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--log-level":
            skip = True
            continue
        if not arg.startswith("-"):
            return arg
    return None


def _load(module: str):
    return importlib.import_module(f"vrft.commands.{module}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(_load(args._module).run(args) or 0)
    except UserError as err:
        print(f"vrft {args.command}: error: {err}", file=sys.stderr)
        return 2
    except (
        OSError
    ) as err:  # the file system refused (disk full, read-only, permissions): one line, no traceback
        where = f"{err.filename}: " if getattr(err, "filename", None) else ""
        print(f"vrft {args.command}: error: {where}{err.strerror or err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        _release_output_locks()
        _close_process_group()


def _release_output_locks() -> None:
    """Release the output-directory locks the command took (vrft.outputs)."""
    outputs = sys.modules.get("vrft.outputs")
    if outputs is not None:
        outputs.release_all()


def _close_process_group() -> None:
    """Under torchrun, tear the process group down before exit: left to interpreter shutdown, a gloo
    rank sometimes aborted ("terminate called without an active exception") after a finished run."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
