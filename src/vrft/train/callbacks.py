"""What a training run writes besides checkpoints: metrics.jsonl and samples.jsonl.

Built on TRL / transformers' documented extension points only:

- `MetricsWriter` is a `TrainerCallback`; `on_log` receives TRL's logs (rewards per function, KL,
  completion lengths, step time, ...) and appends them to `metrics.jsonl` under vrft's names
  (`train/reward/<name>`, `train/kl`, `train/completion_length`, ...).
- `SampleRecorder` sees every scored completion through `NamedReward`, a thin wrapper around each
  reward function (TRL passes the dataset columns and the trainer state to reward functions). Every
  `every` steps it keeps the first completions of the batch with their record / image ids, parsed
  answers and rewards, and `SampleWriter` (a callback) appends them to `samples.jsonl` at step end.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------- metric names
_RENAMES = {
    "loss": "train/loss",
    "grad_norm": "train/grad_norm",
    "learning_rate": "train/learning_rate",
    "reward": "train/reward",
    "reward_std": "train/reward_std",
    "kl": "train/kl",
    "entropy": "train/entropy",
    "completions/mean_length": "train/completion_length",
    "step_time": "train/step_time",
    "epoch": "epoch",
}


def metric_name(key: str) -> str:
    """vrft's name of a TRL / transformers log key ('rewards/iou/mean' -> 'train/reward/iou')."""
    mode = "train"
    if key.startswith("eval_"):
        mode, key = "eval", key[len("eval_") :]
    if key in _RENAMES:
        name = _RENAMES[key]
        return name if mode == "train" else name.replace("train/", "eval/", 1)
    if key.startswith("rewards/"):
        parts = key.split("/")
        stat = parts[-1] if len(parts) > 2 else "mean"
        reward = "/".join(parts[1:-1]) if len(parts) > 2 else parts[1]
        return f"{mode}/reward/{reward}" if stat == "mean" else f"{mode}/reward_{stat}/{reward}"
    if key.startswith(("train/", "eval/")):
        return key
    return f"{mode}/{key}"


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsWriter(TrainerCallback):
    """Append every log of the trainer to `path` (JSON lines, one per logging step; rank 0 only).

    Each line: {"step": int, "time": unix seconds, "<metric name>": float, ...}, one line per step and
    steps increasing: a log of a step already written (the Trainer's end-of-training summary, logged at
    the last step) is merged into that step's line. `extra()` (if given) adds metrics measured outside
    TRL (e.g. the step-time split of `StepTimer`, the learning signals of `StepSignals`); `on_row(row)`
    (if given) is called with each row written.
    """

    def __init__(
        self,
        path: str | Path,
        extra: Callable[[], Mapping[str, float]] | None = None,
        on_row: Callable[[dict[str, Any]], None] | None = None,
    ):
        self.path = Path(path)
        self.extra = extra
        self.on_row = on_row  # sees every row written (e.g. `vrft.train.run_log.StepLine`)
        self.last_step: int | None = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        row: dict[str, Any] = {"step": state.global_step, "time": round(time.time(), 3)}
        for key, value in logs.items():
            if isinstance(value, int | float):
                row[metric_name(key)] = _finite_or_none(float(value))
                if key.startswith("rewards/parse_fail") and key.endswith("/mean"):
                    # the task's zero-weight parse-failure diagnostic is the parse-fail rate
                    row["train/parse_fail_rate"] = row[metric_name(key)]
        if self.extra is not None:
            row.update({k: _finite_or_none(float(v)) for k, v in self.extra().items()})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.last_step is None:
            self.last_step = _last_step(self.path)
        if self.last_step is not None and row["step"] <= self.last_step:
            _merge_into_step(self.path, row)  # e.g. the Trainer's end-of-training summary of the last step
        else:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
            self.last_step = row["step"]
        if self.on_row is not None:
            self.on_row(row)


def _last_step(path: Path) -> int | None:
    """The step of the last line of a metrics file (None: no file, or no line with a step)."""
    if not path.is_file():
        return None
    for line in reversed(path.read_text(encoding="utf-8").splitlines()):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            continue
    return None


def _merge_into_step(path: Path, row: dict[str, Any]) -> None:
    """Add `row`'s metrics to the line of its step (appended if there is none): one line per step."""
    from vrft.outputs import atomic_write_text

    lines = path.read_text(encoding="utf-8").splitlines()
    for i in range(len(lines) - 1, -1, -1):
        try:
            old = json.loads(lines[i])
        except ValueError:
            continue
        if isinstance(old, dict) and old.get("step") == row["step"]:
            lines[i] = json.dumps({**old, **row, "time": old.get("time", row["time"])})
            break
    else:
        lines.append(json.dumps(row))
    atomic_write_text(path, "".join(f"{line}\n" for line in lines))


def truncate_jsonl(path: str | Path, max_step: int) -> None:
    """Drop the lines of a metrics / samples file written after `max_step` (before a resume)."""
    path = Path(path)
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= max_step:
                kept.append(line)
        except ValueError:
            continue
    from vrft.outputs import atomic_write_text

    atomic_write_text(path, "".join(f"{line}\n" for line in kept))


# --------------------------------------------------------------------------------------------- samples
class SampleRecorder:
    """Collects scored completions of one batch every `every` optimizer steps (see `NamedReward`).

    Args:
        every: record the batches that train optimizer steps 1, every, 2*every, ...
        num: completions kept per recorded batch (the first ones: whole groups of G come first).
        describe: record_id -> dict of fixed facts for the sample (image path, size, ground truth).
        parse: (completion text, record_id) -> fields of the parsed answer to add to the row (pixels).
        is_main: only the main process writes.
    """

    def __init__(
        self,
        *,
        every: int,
        num: int,
        describe: Callable[[str], dict[str, Any]],
        parse: Callable[[str, str], Any] | None = None,
        completion_text: Callable[[Any], str] = str,
        is_main: bool = True,
    ):
        self.every = every
        self.num = num
        self.describe = describe
        self.parse = parse
        self.completion_text = completion_text
        self.is_main = is_main
        self._step: int | None = None
        self._rows: list[dict[str, Any]] = []

    def wants(self, global_step: int) -> bool:
        """Whether the batch generated at `global_step` (it trains step global_step + 1) is recorded."""
        step = global_step + 1
        return self.is_main and self.num > 0 and (step == 1 or step % self.every == 0)

    def add(self, name: str, global_step: int, completions: Sequence[Any], rewards: Sequence[Any], columns):
        """Record the rewards of reward function `name` for the first completions of a batch."""
        if not self.wants(global_step):
            return
        if self._step != global_step + 1:
            self._step, self._rows = global_step + 1, []
        n = min(self.num, len(completions))
        record_ids = columns.get("record_id") or [None] * len(completions)
        while len(self._rows) < n:
            i = len(self._rows)
            text = self.completion_text(completions[i])
            rid = record_ids[i]
            row: dict[str, Any] = {"step": global_step + 1, "record_id": rid}
            if rid is not None:
                row.update(self.describe(rid))
            row["completion"] = text
            if self.parse is not None and rid is not None:
                try:
                    row.update(self.parse(text, rid) or {})
                except Exception as err:  # a sample must never stop training
                    row.update(parse_ok=False, reason=f"{type(err).__name__}: {err}")
            row["rewards"] = {}
            self._rows.append(row)
        for i in range(n):
            value = rewards[i]
            self._rows[i]["rewards"][name] = None if value is None else float(value)

    def pop(self) -> list[dict[str, Any]]:
        """The rows collected since the last pop."""
        rows, self._rows, self._step = self._rows, [], None
        return rows


class SampleWriter(TrainerCallback):
    """Append the rows of a `SampleRecorder` to `samples.jsonl` at the end of each step.

    Each row gets `score` (the weighted total reward) and, given `group_size` G, `group` (the index of
    its prompt's group in the batch: rows i // G); given `signals` (a `vrft.train.step_signals.StepSignals`,
    added to the trainer before this callback), `advantage`: the GRPO advantage of the completion as the
    configured TRL run computes it (`vrft.train.step_signals.advantages`)."""

    def __init__(
        self,
        recorder: SampleRecorder,
        path: str | Path,
        weights: Mapping[str, float],
        *,
        group_size: int | None = None,
        signals: Any = None,
    ):
        self.recorder = recorder
        self.path = Path(path)
        self.weights = dict(weights)
        self.group_size = group_size
        self.signals = signals

    def on_step_end(self, args, state, control, **kwargs):
        rows = self.recorder.pop()
        if not rows or not state.is_world_process_zero:
            return
        finished = self.signals.finish(state.global_step) if self.signals is not None else None
        adv = finished[1] if finished is not None else []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            for i, row in enumerate(rows):
                rewards = row["rewards"]
                row["score"] = sum(self.weights.get(k, 1.0) * v for k, v in rewards.items() if v is not None)
                if self.group_size:
                    row["group"] = i // self.group_size
                if i < len(adv):
                    row["advantage"] = adv[i]
                f.write(json.dumps(row, default=str) + "\n")


class NamedReward:
    """A reward function under a stable name that also feeds a `SampleRecorder`.

    TRL names the logged reward after the callable's `__name__` (`rewards/<name>/mean`), calls it as
    `fn(prompts=..., completions=..., completion_ids=..., **dataset_columns, trainer_state=...)` and
    treats `None` as "not applicable". Non-finite values become `None` (and are counted) so a broken
    reward can never turn the advantages into NaN.
    """

    def __init__(
        self,
        fn: Callable[..., Sequence[float | None]],
        name: str,
        recorder: SampleRecorder | None = None,
        signals: Any = None,
    ):
        self.fn = fn
        self.__name__ = name
        self.recorder = recorder
        self.signals = signals  # a vrft.train.step_signals.StepSignals: the step's learning signals
        self.seconds = 0.0  # time spent in this reward (for the step-time split)
        self.nonfinite = 0

    def __call__(self, completions, **kwargs):
        start = time.perf_counter()
        values = list(self.fn(completions=completions, **kwargs))
        out: list[float | None] = []
        for v in values:
            if v is not None and not math.isfinite(float(v)):
                self.nonfinite += 1
                if self.nonfinite == 1:
                    logger.warning("reward %s returned a non-finite value; treated as missing", self.__name__)
                v = None
            out.append(None if v is None else float(v))
        self.seconds += time.perf_counter() - start
        state = kwargs.get("trainer_state")
        if state is not None:
            for sink in (self.recorder, self.signals):
                if sink is not None:
                    sink.add(self.__name__, state.global_step, completions, out, kwargs)
        return out
