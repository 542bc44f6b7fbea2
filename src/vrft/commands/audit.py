"""`vrft audit TASK [--preset P | --rewards a,b,...] [--records FILE] [--tools]`: a reward-hacking audit.

Scores the honest answer and a battery of exploit completions (vrft.audit.EXPLOITS) with the task's
rewards, prints a table of the mean rewards, and exits 1 when an exploit earns at least as much as the
honest answer (0 when none does; 2 for usage errors). Without --records the records are the shapes world,
drawn in memory. `--tools` audits tool use (vrft.audit.tools). This module must not import torch.
"""

from __future__ import annotations

import argparse
import json

from vrft.audit import EXPLOITS, audit, format_table, make_cases, shapes_records
from vrft.errors import UserError
from vrft.rewards import PRESETS, REWARDS, THINK_FORMAT_REWARDS, get_reward, rewards_for


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", choices=list(EXPLOITS), help="the task whose rewards and exploits to audit")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--preset", choices=list(PRESETS), help="reward preset (default: default)")
    which.add_argument(
        "--rewards", help="comma-separated reward names instead of a preset (registry names, weight 1 each)"
    )
    parser.add_argument(
        "--records", help="records JSONL file to audit on (default: the shapes world in memory)"
    )
    parser.add_argument("--images", type=int, default=8, help="shapes-world images to draw (default: 8)")
    parser.add_argument("--seed", type=int, default=0, help="shapes-world seed (default: 0)")
    parser.add_argument(
        "--max-records", type=int, default=200, help="audit at most this many records (default: 200)"
    )
    parser.add_argument(
        "--allow",
        default="",
        help="comma-separated exploits whose flag is accepted (shown, exit status unaffected)",
    )
    parser.add_argument(
        "--tools",
        action="store_true",
        help="audit tool use instead: multi-turn exploits (no answer, whole-image zoom, max calls, the answer "
        "inside a call) against an honest zoom-then-answer trace, with tool_format and tool_bonus added",
    )
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")


def selected_rewards(task: str, preset: str, names: str | None) -> dict:
    """name -> (function, weight): the preset's rewards with a non-zero weight, or the named ones (weight 1)."""
    if names is not None:
        chosen = [n.strip() for n in names.split(",") if n.strip()]
        if not chosen:
            raise UserError("--rewards: give at least one reward name, e.g. --rewards format,detection_iou")
        return {n: (get_reward(n), 1.0) for n in dict.fromkeys(chosen)}
    fns, weights = rewards_for(task, preset)
    by_fn = {id(fn): name for name, fn in REWARDS.items()}
    return {by_fn.get(id(fn), fn.__name__): (fn, w) for fn, w in zip(fns, weights) if w != 0}


def answer_format_of(rewards) -> str | None:
    """The answer format the rewards score: "answer_only" with `format_answer_only`, "think" with a think
    format reward, None (the records' own) without a format reward."""
    if "format_answer_only" in rewards:
        return "answer_only"
    return "think" if any(n in THINK_FORMAT_REWARDS for n in rewards) else None


def run(args: argparse.Namespace) -> int:
    if args.max_records < 1:
        raise UserError(f"--max-records must be at least 1 (got {args.max_records})")
    if args.tools:
        from vrft.data.record_checks import MULTI_IMAGE_TASKS, VIDEO_TASKS

        if args.task in MULTI_IMAGE_TASKS + VIDEO_TASKS:  # as training: tools act on a record's one image
            raise UserError(
                f"--tools: tools serve the one-image tasks; {args.task} records show several images or a video "
                "(training refuses tools.enabled for them): audit it without --tools"
            )
    preset = args.preset or "default"
    rewards = selected_rewards(args.task, preset, args.rewards)
    if args.records:
        from vrft.data.records import load_records

        records = [r for r in load_records(args.records) if r.task == args.task]
        if not records:
            raise UserError(f"{args.records}: no {args.task!r} records")
        source = args.records
    else:
        records = shapes_records(args.task, args.images, args.seed)
        source = f"shapes world (seed {args.seed}, {args.images} images)"
    records = records[: args.max_records]
    cases = make_cases(args.task, records, answer_format=answer_format_of(rewards))
    allow = [a.strip() for a in args.allow.split(",") if a.strip()]
    if args.tools:
        from vrft.audit.tools import TOOL_EXPLOITS, honest, tool_rewards

        rewards = tool_rewards(rewards)
        report = audit(
            args.task, cases, rewards, source=source, allow=allow, exploits=TOOL_EXPLOITS, honest=honest
        )
    else:
        report = audit(args.task, cases, rewards, source=source, allow=allow)
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        what = f"--rewards {args.rewards}" if args.rewards is not None else f"preset {preset}"
        what += ", tool use (--tools)" if args.tools else ""
        print(
            f"vrft audit {args.task}, {what}: {len(cases)} records of {'the ' if not args.records else ''}{source}"
        )
        print()
        print(format_table(report))
        print()
        accepted = [r.exploit for r in report.rows if r.flagged and r.allowed]
        note = f" (accepted with --allow: {', '.join(accepted)})" if accepted else ""
        if report.flagged:
            print(
                f"FLAGGED: {', '.join(report.flagged)} (each earns at least the honest answer's total){note}"
            )
        else:
            print(f"no {'other ' if accepted else ''}exploit earns as much as the honest answer{note}")
    return 1 if report.flagged else 0
