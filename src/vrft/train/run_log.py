"""What a person reads of a GRPO run: one line per logging step, a summary and curves at the end.

- `StepLine`: the line printed per logging step (reward, zero-sd share, KL, parse failures, step time);
  the full dict goes to `metrics.jsonl` only. TRL's own dict printer is taken out with transformers'
  public API (`disable_tqdm=True` makes the Trainer log through `PrinterCallback`, which
  `quiet_trainer` removes with `Trainer.remove_callback`).
- `summarize(rows)`: the run's summary from its `metrics.jsonl` rows (first vs last window of the
  reward, flat-group share, truncation, parse failures by reason, KL), written to `summary.json`
  (`write_summary`) and logged as one line (`summary_line`).
- `quiet_run`: transformers' per-step deprecation warning filtered by its exact message, and the
  Trainer's key lists on a resume shortened to counts and a few names, for the run only;
- `curves.png` (`vrft.report.plots.plot_training_curves`): reward, KL, zero-sd share and parse-fail
  curves, drawn from the same rows.

A resumed run reads its whole `metrics.jsonl` (truncated at the checkpoint, then continued), so the
summary and the curves cover every step.
"""

from __future__ import annotations

import ast
import contextlib
import json
import logging
import math
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: transformers 5 warns at every step that TRL reads the deprecated `is_gradient_checkpointing`;
#: vrft sets `activation_checkpointing` itself, so the warning is not the user's to act on.
QUIET_WARNINGS = (
    (FutureWarning, r"`is_gradient_checkpointing` is deprecated and will be removed in v6\. "
                    r"Use `is_activation_checkpointing` instead\."),
    (FutureWarning, r"`gradient_checkpointing` is deprecated and will be removed in v6\. "
                    r"Use `activation_checkpointing` instead\."),
)  # fmt: skip


#: Loggers whose key-list warnings `ShortKeyLists` shortens (the Trainer's reload of a checkpoint).
KEY_LIST_LOGGERS = ("transformers.trainer",)
#: How many names of a key list are kept.
KEY_LIST_NAMES = 3


class ShortKeyLists(logging.Filter):
    """Shorten "There were missing/unexpected keys in the checkpoint model loaded: [...]" (every key of
    the model on a resume, ~2,000 characters) to a count and the first `KEY_LIST_NAMES` names. A
    `logging.Filter` on transformers' logger: public logging API, nothing of transformers is patched."""

    PATTERN = re.compile(r"^(There were \w+ keys in the checkpoint model loaded): \[(.*)\]\.?$", re.DOTALL)

    def filter(self, record: logging.LogRecord) -> bool:
        m = self.PATTERN.match(str(record.msg)) if not record.args else None
        if m is None:
            return True
        try:
            keys = ast.literal_eval(f"[{m.group(2)}]")
        except (ValueError, SyntaxError):
            return True
        names = ", ".join(map(str, keys[:KEY_LIST_NAMES])) + (", ..." if len(keys) > KEY_LIST_NAMES else "")
        record.msg = f"{m.group(1)}: {len(keys)} keys ({names})"
        return True


@contextlib.contextmanager
def quiet_run() -> Iterator[None]:
    """For the duration of a vrft run only: silence `QUIET_WARNINGS` (exact messages) and shorten the
    Trainer's key lists on a resume (`ShortKeyLists`)."""
    short = ShortKeyLists()
    loggers = [logging.getLogger(name) for name in KEY_LIST_LOGGERS]
    for lg in loggers:
        lg.addFilter(short)
    try:
        with warnings.catch_warnings():
            for category, message in QUIET_WARNINGS:
                warnings.filterwarnings("ignore", message=message, category=category)
            yield
    finally:
        for lg in loggers:
            lg.removeFilter(short)


def quiet_trainer(trainer: Any) -> None:
    """Take out the Trainer's printer of the raw log dict (the run logs `StepLine` instead)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    if getattr(trainer.args, "disable_tqdm", False):
        trainer.remove_callback(ProgressCallback)


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.0f} %"


def _num(x: Any) -> float | None:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


class StepLine:
    """Log one line per logging step from a `metrics.jsonl` row (`MetricsWriter(on_row=...)`)."""

    def __init__(self, max_steps: int | None, log: logging.Logger | None = None):
        self.max_steps = max_steps
        self.log = log or logger

    def __call__(self, row: Mapping[str, Any]) -> None:
        if _num(row.get("train/reward")) is None and _num(row.get("train/loss")) is None:
            return  # e.g. the Trainer's end-of-training figures, merged into the last step
        self.log.info(self.line(row))

    def line(self, row: Mapping[str, Any]) -> str:
        """GRPO: reward, zero-sd share, KL, parse failures, truncation, step time; SFT: loss, learning rate."""
        step = row.get("step")
        of = f"/{self.max_steps}" if self.max_steps else ""
        parts = [f"step {step}{of}"]
        reward = _num(row.get("train/reward"))
        if reward is not None:
            parts.append(f"reward {reward:.3f}")
        else:
            parts.append(f"loss {_num(row.get('train/loss')):.4f}")
            lr = _num(row.get("train/learning_rate"))
            if lr is not None:
                parts.append(f"lr {lr:.3g}")
        if _num(row.get("train/zero_sd_share")) is not None:
            parts.append(f"zero-sd {_pct(row['train/zero_sd_share'])}")
        kl = _num(row.get("train/kl"))
        if kl is not None:
            parts.append(f"KL {kl:.4g}")
        fail = parse_fail_rate(row)
        if fail is not None:
            parts.append(f"parse-fail {_pct(fail)}")
        trunc = _num(row.get("train/truncated_share"))
        if trunc:
            parts.append(f"truncated {_pct(trunc)}")
        seconds = _num(row.get("train/step_time")) or _num(row.get("train/time/total"))
        if seconds is not None:
            parts.append(f"{seconds:.2f} s/step")
        return "  ".join(parts)


def parse_fail_rate(row: Mapping[str, Any]) -> float | None:
    """The row's parse-failure rate: `train/parse_fail_rate` (the task's diagnostic reward), else the sum
    of `train/parse_fail/<reason>`."""
    rate = _num(row.get("train/parse_fail_rate"))
    if rate is not None:
        return rate
    reasons = [_num(v) for k, v in row.items() if k.startswith("train/parse_fail/")]
    return sum(v for v in reasons if v is not None) if reasons else None


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a `metrics.jsonl` (unreadable lines skipped)."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and "step" in row:
            rows.append(row)
    return rows


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    total = sum(vals)
    return total / len(vals) if math.isfinite(total) else sum(v / len(vals) for v in vals)  # 1e308 + 1e308


def summarize(
    rows: Sequence[Mapping[str, Any]], *, flat_threshold: float, warnings_fired: Sequence[int] = ()
) -> dict[str, Any]:
    """The summary of a run from its `metrics.jsonl` rows.

    `reward_first` / `reward_last`: mean total reward over the first and the last `window` logged
    steps (`window` = a third of the logged steps, 1 to 10); `zero_sd_share`: mean over the steps, and
    `flat_steps` the steps at or above `flat_threshold`; `parse_fail_reasons`: mean share of completions
    per reason (largest first)."""
    logged = [r for r in rows if _num(r.get("train/reward")) is not None and _num(r.get("step")) is not None]
    if not logged:
        return {"steps": 0}
    window = max(1, min(10, len(logged) // 3))
    rewards = [_num(r.get("train/reward")) for r in logged]
    shares = [_num(r.get("train/zero_sd_share")) for r in logged]
    reasons: dict[str, float] = {}
    for r in logged:
        for k, v in r.items():
            if k.startswith("train/parse_fail/") and _num(v) is not None:
                reasons[k.removeprefix("train/parse_fail/")] = (
                    reasons.get(k.removeprefix("train/parse_fail/"), 0) + _num(v)
                )
    reasons = {k: v / len(logged) for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])}
    first, last = _mean(rewards[:window]), _mean(rewards[-window:])
    return {
        "steps": int(_num(logged[-1]["step"])),
        "logged_steps": len(logged),
        "window": window,
        "reward_first": first,
        "reward_last": last,
        "reward_change": None if first is None or last is None else last - first,
        "zero_sd_share": _mean(shares),
        "zero_sd_share_last": _mean(shares[-window:]),
        "flat_threshold": flat_threshold,
        "flat_steps": sum(1 for s in shares if s is not None and s >= flat_threshold),
        "flat_warnings": list(warnings_fired),
        "truncated_share": _mean([_num(r.get("train/truncated_share")) for r in logged]),
        "parse_fail_rate": _mean([parse_fail_rate(r) for r in logged]),
        "parse_fail_reasons": reasons,
        "kl_last": _num(logged[-1].get("train/kl")),
        "step_time": _mean(
            [_num(r.get("train/step_time")) or _num(r.get("train/time/total")) for r in logged]
        ),
    }


def summary_line(s: Mapping[str, Any]) -> str:
    """The summary as one log line."""
    if not s.get("steps"):
        return "summary: no step was logged"
    w = s["window"]
    parts = [f"summary: {s['steps']} steps", f"reward {s['reward_first']:.3f} -> {s['reward_last']:.3f} "
             f"(mean of the first / last {w} logged step{'s' if w > 1 else ''})"]  # fmt: skip
    if s.get("zero_sd_share") is not None:
        flat = (
            f"zero-sd share {_pct(s['zero_sd_share'])} (at or above {_pct(s['flat_threshold'])} in "
            f"{s['flat_steps']} of {s['logged_steps']} steps"
        )
        n = len(s.get("flat_warnings") or [])
        parts.append(flat + (f", {n} warning{'s' if n > 1 else ''})" if n else ")"))
    if s.get("truncated_share") is not None:
        parts.append(f"truncated {_pct(s['truncated_share'])}")
    if s.get("parse_fail_rate") is not None:
        top = next(iter(s.get("parse_fail_reasons") or {}), None)
        parts.append(f"parse-fail {_pct(s['parse_fail_rate'])}" + (f" (mostly {top})" if top else ""))
    if s.get("kl_last") is not None:
        parts.append(f"final KL {s['kl_last']:.4g}")
    return ", ".join(parts)


def write_summary(out: Path, summary: Mapping[str, Any]) -> Path:
    """`<out>/summary.json` (atomic)."""
    from vrft.outputs import atomic_write_text

    path = out / "summary.json"
    atomic_write_text(path, json.dumps(summary, indent=1) + "\n")
    return path


def curve_series(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """panel -> series name -> (step, value) points: the panels of `curves.png`."""
    panels: dict[str, dict[str, list[tuple[float, float]]]] = {
        "reward": {}, "KL": {}, "groups and truncation": {}, "parse failures": {},
    }  # fmt: skip
    for r in rows:
        step = _num(r.get("step"))
        if step is None:
            continue
        for key, value in r.items():
            v = _num(value)
            if v is None:
                continue
            if key == "train/reward":
                panel, name = "reward", "total (weighted)"
            elif re.fullmatch(r"train/reward/(?!parse_fail)[^/]+", key):
                panel, name = "reward", key.removeprefix("train/reward/")
            elif key == "train/kl":
                panel, name = "KL", "KL to the reference"
            elif key == "train/zero_sd_share":
                panel, name = "groups and truncation", "zero-sd share (flat groups)"
            elif key == "train/truncated_share":
                panel, name = "groups and truncation", "truncated share"
            elif key == "train/parse_fail_rate":
                panel, name = "parse failures", "parse-fail rate"
            elif key.startswith("train/parse_fail/"):
                panel, name = "parse failures", key.removeprefix("train/parse_fail/")
            else:
                continue
            panels[panel].setdefault(name, []).append((step, v))
    return panels


def finish_run(
    out: Path, *, title: str, flat_threshold: float, warnings_fired: Sequence[int] = ()
) -> dict[str, Any]:
    """At the end of a run (main process): `summary.json`, `curves.png` and the summary line."""
    rows = read_rows(out / "metrics.jsonl")
    summary = summarize(rows, flat_threshold=flat_threshold, warnings_fired=warnings_fired)
    write_summary(out, summary)
    try:
        from vrft.report.plots import plot_training_curves

        plot_training_curves(curve_series(rows), out / "curves.png", title=title)
    except Exception as err:  # the curves must never fail a finished run
        logger.warning("could not draw %s (%s: %s)", out / "curves.png", type(err).__name__, err)
    logger.info(summary_line(summary))
    return summary
