"""`vrft doctor CONFIG [key=value ...]`: sample before training and say why the reward will not move.

Loads the config, its records and its model exactly as `vrft train` does, samples G completions for
each of the first N prompts of the run, scores them with the run's rewards, prints a table with a
verdict and writes doctor.json and doctor.html (`vrft.doctor`). Exit 0: nothing blocks training;
1: a finding would waste the run; 2: bad input (config, records, model directory, N or G).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML config of the run to diagnose (the one `vrft train` would take)")
    parser.add_argument(
        "overrides",
        nargs=argparse.REMAINDER,
        help="dotted key=value overrides, as for `vrft train`, e.g. grpo.temperature=1.0 (options may follow them)",
    )
    parser.add_argument("--records", type=int, default=16, help="training prompts to sample (default 16)")
    parser.add_argument(
        "--out", default=None, help="where doctor.json and doctor.html go (default <output.dir>/doctor)"
    )
    parser.add_argument(
        "--gpus",
        type=int,
        default=1,
        help="processes the memory estimate divides ZeRO/FSDP state over (default 1)",
    )


def _split_options(args: argparse.Namespace) -> list[str]:
    """Options given after the overrides land in REMAINDER: take them back out."""
    overrides, rest = [], list(args.overrides)
    while rest:
        item = rest.pop(0)
        if item in ("--records", "--out", "--gpus") and rest:
            value = rest.pop(0)
            setattr(args, item[2:], int(_int(item, value)) if item != "--out" else value)
        elif item.startswith(("--records=", "--out=", "--gpus=")):
            name, value = item[2:].split("=", 1)
            setattr(args, name, value if name == "out" else _int(f"--{name}", value))
        else:
            overrides.append(item)
    return overrides


def _int(flag: str, value: str) -> int:
    from vrft.errors import UserError

    try:
        return int(value)
    except ValueError:
        raise UserError(f"{flag} must be an integer, got {value!r}") from None


def run(args: argparse.Namespace) -> int:
    from vrft.config import load_config
    from vrft.doctor import report as doctor_report
    from vrft.doctor.run import check_counts, diagnose
    from vrft.errors import UserError
    from vrft.outputs import check_dir_output
    from vrft.train.preflight import run_inputs

    overrides = _split_options(args)
    cfg = load_config(args.config, overrides)
    check_counts(args.records, cfg.grpo.num_generations)
    if args.gpus < 1:
        raise UserError(f"--gpus must be a positive integer, got {args.gpus}")
    out = Path(args.out) if args.out else Path(cfg.output.dir) / "doctor"
    check_dir_output(out, option="--out", inputs=run_inputs(cfg), writes=["doctor.json", "doctor.html"])
    report = diagnose(cfg, records=args.records, processes=args.gpus)
    print(doctor_report.table(report))
    json_path, html_path = doctor_report.write(report, out)
    print(f"wrote {json_path} and {html_path}")
    return 1 if report["blocking"] else 0
