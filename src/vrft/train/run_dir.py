"""A run's output directory: checked, locked, prepared for a fresh start or a resume, released.

`prepare_output_dir` refuses what would lose data (files vrft did not write, an earlier run without
`output.overwrite`), locks the directory for the run and resolves the checkpoint to resume from
(`vrft.train.checkpoints`). Resuming continues the SAME run: a finished run (its last checkpoint is at
its last step) and a run whose schedule changed (`SCHEDULE_KEYS`, compared with its
`config.resolved.yaml`) are refused with how to go on instead (`resume_problem`). `release_output_dir` unlocks it; `grpo.run_grpo` / `sft.run_sft` call it
in a `finally`, so a failed run inside a longer process does not keep the lock.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vrft.errors import UserError
from vrft.train.checkpoints import checkpoints, resolve_checkpoint
from vrft.train.processes import is_main_process

logger = logging.getLogger(__name__)

TRAINING_OUTPUTS = ("final", "adapter", "checkpoint-*", "metrics.jsonl", "samples.jsonl", "samples.html",
                    "summary.json", "curves.png", "config.resolved.yaml", "rank_checksums", "README.md")  # fmt: skip
"""What a training run writes into its output directory (README.md: TRL's model card, beside the
checkpoints, which vrft's contract section is added to; summary.json and curves.png at the end of a GRPO
run, `vrft.train.run_log.finish_run`; also runs/ with TensorBoard): the run directory's manifest lists
these, so a file of that name the user put there is refused, never overwritten."""


def prepare_output_dir(
    out: str | Path,
    resume: bool | str,
    overwrite: bool = False,
    *,
    inputs: Sequence[Any] = (),
    owner: str = "train",
    report_to: Sequence[str] = (),
    schedule: Mapping[str, Any] | None = None,
) -> tuple[Path, str | None]:
    """Check, lock and prepare the output directory; resolve what to resume from.

    Returns (directory, checkpoint path or None). The directory is checked first (a file, an unwritable
    place, or one that is or holds an input (`inputs`: model, data) is refused), then locked for this
    run (released by `release_output_dir` or when the process ends) and its manifest records what the
    run writes (`TRAINING_OUTPUTS`). A directory holding an earlier run (checkpoints, a final model or
    its metrics.jsonl) is only reused to resume it, or emptied of THAT RUN's files with `overwrite`:
    files vrft did not write are never deleted, and never overwritten (the run is refused). Resume
    picks the last COMPLETE checkpoint (`checkpoint_problem`), skipping (and removing) half-written ones.
    Resuming a finished run, or with `schedule` (dotted key -> value, `SCHEDULE_KEYS`) different from
    the run's `config.resolved.yaml`, is refused (`resume_problem`); the lock is released then.
    """
    from vrft import outputs

    out = Path(out)
    names = list(TRAINING_OUTPUTS)
    if "tensorboard" in (report_to or ()):
        names.append("runs")
    existing_ckpts = [str(p.name) for p in checkpoints(out)]
    outputs.check_dir_output(
        out, option="output.dir", inputs=inputs,
        writes=[n for n in names if "*" not in n] + existing_ckpts, foreign=False,
    )  # fmt: skip
    main = is_main_process()
    d = outputs.OutputDir(out, owner, option="output.dir", lock=main).open()
    try:
        if not d.entries and (out / "config.resolved.yaml").is_file():
            # a run directory of a vrft version without manifests: its training files are vrft's
            d.entries.update({n: owner for n in names})
        foreign = d.foreign(names)
        if foreign:
            raise UserError(
                f"output.dir {out} holds {', '.join(foreign[:5])}, which vrft did not write; a run writes "
                f"{', '.join(names)} there and never overwrites files that are not its own: move them or "
                "choose another output.dir"
            )
        checkpoint = resolve_checkpoint(out, resume, clean=main)
        if checkpoint is not None:
            problem = resume_problem(out, checkpoint, schedule or {})
            if problem:
                raise UserError(problem)
        elif resume and (out / "final").exists():  # finished without checkpoints: nothing to resume from
            raise UserError(
                f"output.resume: {out} holds a finished run ({out / 'final'}) and no checkpoint: nothing to "
                f"resume; {_HOW.format(final=out / 'final')}"
            )
        if checkpoint is None and not resume:
            earlier = [n for n in ("final", "metrics.jsonl") if (out / n).exists()] + existing_ckpts
            if earlier and overwrite:
                if main:
                    removed = d.clean("train", "sft")
                    logger.warning(
                        "output.overwrite: removed the earlier run's files in %s (%s); nothing else",
                        out, ", ".join(sorted(p.name for p in removed)) or "none",
                    )  # fmt: skip
            elif earlier:
                raise UserError(
                    f"{out} already holds an earlier run ({', '.join(earlier[:3])}); resume it with "
                    "output.resume=true (or --resume), replace it with output.overwrite=true (removes only "
                    "that run's files), or choose another output.dir"
                )
        if main:
            d.claim(names)
    except BaseException:
        d.close()
        raise
    return out, checkpoint


def release_output_dir(out: str | Path) -> None:
    """Release the lock `prepare_output_dir` took (the end of a run)."""
    from vrft import outputs

    outputs.release_lock(out)


_HOW = ("to train further, start a new run from its model (model.path={final} output.dir=NEW_DIR), "
        "or train again from the start with output.overwrite=true")  # fmt: skip

SCHEDULE_KEYS = ("grpo.max_steps", "grpo.epochs", "grpo.prompts_per_step", "sft.max_steps", "sft.epochs",
                 "sft.per_device_batch_size", "sft.gradient_accumulation_steps", "data.max_samples")  # fmt: skip
"""Settings that fix a run's length and learning-rate schedule: a resume must keep them."""


def schedule_of(cfg: Any) -> dict[str, Any]:
    """{dotted key: value} of `SCHEDULE_KEYS` in a config (`VrftConfig`)."""
    values = {}
    for key in SCHEDULE_KEYS:
        section, name = key.split(".")
        values[key] = getattr(getattr(cfg, section), name)
    return values


def resume_problem(out: Path, checkpoint: str | Path, schedule: Mapping[str, Any]) -> str | None:
    """Why the run in `out` cannot be resumed from `checkpoint`, or None.

    A resume continues the SAME run: a checkpoint at the last step of its run (`trainer_state.json`:
    global_step >= max_steps) has nothing left to do, and a changed length (`SCHEDULE_KEYS`, against
    the run's `config.resolved.yaml`) would train on a learning-rate schedule laid out for another
    length (a linear schedule already at 0, steps logged twice). To train longer, start a new run
    from the trained model.
    """
    import json

    import yaml

    how = _HOW.format(final=out / "final")
    try:
        state = json.loads((Path(checkpoint) / "trainer_state.json").read_text(encoding="utf-8"))
        done, total = int(state["global_step"]), int(state["max_steps"])
    except (OSError, ValueError, KeyError, TypeError):
        done = total = None
    if done is not None and total is not None and total > 0 and done >= total:
        return (f"output.resume: the run in {out} is finished (its last checkpoint is step {done} of {total}): "
                f"nothing to resume; {how}")  # fmt: skip
    resolved = out / "config.resolved.yaml"
    if not schedule or not resolved.is_file():
        return None
    try:
        before = yaml.safe_load(resolved.read_text(encoding="utf-8")) or {}
    except (OSError, ValueError, yaml.YAMLError):
        return None  # an unreadable record of the run: nothing to compare with
    if not isinstance(before, dict):
        return None
    changed = []
    for key, now in schedule.items():
        section, name = key.split(".")
        old = (before.get(section) or {}).get(name, now)
        if old != now:
            changed.append(f"{key} {old} -> {now}")
    if changed:
        return (f"output.resume: the run in {out} was started with another schedule ({', '.join(changed)}); "
                "a resume continues the same run with the same length and learning-rate schedule: resume "
                f"without changing them; {how}")  # fmt: skip
    return None
