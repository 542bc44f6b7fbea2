"""Per-step learning signals of a GRPO run, from the completions and rewards TRL already computed.

No second generation and no patch: every reward function is wrapped in `NamedReward`
(`vrft.train.callbacks`), which hands each scored batch to `StepSignals.add`. At the end of each
optimizer step (`on_step_end`, a `TrainerCallback`) the batch of that step becomes a `StepBatch`
and every counter of `COUNTERS` turns it into metrics; the figures are the doctor's
(`vrft.doctor.signals`), so `vrft doctor` and a run's `metrics.jsonl` agree:

- `train/zero_sd_share`: share of groups whose G weighted total rewards are all equal (GRPO advantage 0,
  no gradient from that prompt); `train/reward_sd_within`: mean within-group sd of the total reward;
- `train/truncated_share`: share of completions whose length reached `grpo.max_completion_length`;
- `train/parse_fail/<reason>`: share of completions the task's parser refused, by reason
  (`reason_key`: lower case, digits as `n`, e.g. `no_answer`, `syntax_error_at_offset_n`).

A counter is a plain function `StepBatch -> {metric name: float}`; more counters (e.g. tool calls)
are one more entry in `COUNTERS` or in the `counters` argument. `FlatWatch` warns (once per window
of `steps` steps) when the zero-sd share stays above a threshold.

Under several processes each process sees its own completions (whole groups: vrft's per-device batch
is `grpo.per_device_prompts` x G); the main process logs its own share.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from transformers import TrainerCallback

from vrft.doctor.signals import group_signals, parse_failure_reasons, truncation_share

logger = logging.getLogger(__name__)

#: TRL's epsilon in the advantage (rewards - mean) / (std + eps).
ADVANTAGE_EPS = 1e-4


@dataclass
class StepBatch:
    """The completions one optimizer step trained on (this process), in TRL order: G per prompt.

    `rewards`: reward name -> one value per completion (None: not applicable); `totals`: the weighted
    sum per completion (TRL: nansum over the rewards; NaN where no reward applies, advantage 0); `lengths`: completion tokens; `reasons`: the
    parser's reason per completion ("ok" when it parsed; empty without a parser); `columns`: the other
    keyword arguments TRL passed the reward functions (dataset columns, `completion_ids`, ...)."""

    step: int
    group_size: int
    max_completion_length: int
    texts: list[str]
    record_ids: list[Any]
    lengths: list[int]
    rewards: dict[str, list[float | None]]
    totals: list[float]
    reasons: list[str] = field(default_factory=list)
    columns: Mapping[str, Any] = field(default_factory=dict)


def group_counter(batch: StepBatch) -> dict[str, float]:
    """`train/zero_sd_share` and `train/reward_sd_within` of the weighted total reward."""
    sig = group_signals(batch.totals, batch.group_size)
    if sig.n_groups == 0:
        return {}
    return {"train/zero_sd_share": sig.zero_sd_share, "train/reward_sd_within": sig.mean_within_sd}


def truncation_counter(batch: StepBatch) -> dict[str, float]:
    """`train/truncated_share`: completions that reached `grpo.max_completion_length` tokens."""
    if not batch.lengths:
        return {}
    return {"train/truncated_share": truncation_share(batch.lengths, batch.max_completion_length)}


def parse_counter(batch: StepBatch) -> dict[str, float]:
    """`train/parse_fail/<reason>`: share of completions that failed to parse for that reason."""
    if not batch.reasons:
        return {}
    n = len(batch.reasons)
    out: dict[str, float] = {}
    for reason, count in parse_failure_reasons(batch.reasons).items():
        key = f"train/parse_fail/{reason_key(reason)}"
        out[key] = out.get(key, 0.0) + count / n
    return out


#: The counters every GRPO run logs (in this order).
COUNTERS: tuple[Callable[[StepBatch], Mapping[str, float]], ...] = (
    group_counter,
    truncation_counter,
    parse_counter,
)


def reason_key(reason: str) -> str:
    """A parser reason as a metric-name part: 'syntax error at offset 12' -> 'syntax_error_at_offset_n'."""
    key = re.sub(r"\d+", "n", str(reason).lower())
    key = re.sub(r"[^a-z0-9]+", "_", key).strip("_")
    return key[:48] or "unknown"


def advantages(totals: Sequence[float], group_size: int, scale_rewards: str) -> list[float]:
    """GRPO advantages as TRL 1.16 computes them (`multi_objective_aggregation='sum_then_normalize'`):
    total reward minus its group's mean, divided by (std + 1e-4) where std is the group's
    (`scale_rewards='group'`) or the batch's (`'batch'`) sample standard deviation (Bessel-corrected,
    TRL's `nanstd`); `'none'` divides by nothing. NaN totals (no reward applied) give advantage 0.
    `'batch'` uses this process's batch (TRL gathers every process's)."""
    vals = [float(t) for t in totals]
    n_groups = len(vals) // group_size if group_size > 0 else 0
    out = [0.0] * len(vals)
    batch_sd = _sd([v for v in vals if math.isfinite(v)])
    for g in range(n_groups):
        group = vals[g * group_size : (g + 1) * group_size]
        finite = [v for v in group if math.isfinite(v)]
        if not finite:
            continue
        mean = sum(finite) / len(finite)
        sd = _sd(finite) if scale_rewards == "group" else batch_sd
        for j, v in enumerate(group):
            if not math.isfinite(v):
                continue
            a = v - mean
            out[g * group_size + j] = a if scale_rewards == "none" else a / (sd + ADVANTAGE_EPS)
    return out


def _sd(values: Sequence[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


class StepSignals(TrainerCallback):
    """Collect each step's scored completions (`add`, from `NamedReward`) and compute its metrics.

    Args:
        weights: reward name -> weight (the weighted total is what GRPO's advantage reads).
        group_size: G.
        max_completion_length: `grpo.max_completion_length`.
        scale_rewards: TRL's `scale_rewards` ('group', 'batch', 'none'), for `advantages`.
        reason: (completion text, record id) -> the parser's reason ("ok" when it parsed), or None.
        counters: the counters to run (default `COUNTERS`).
        completion_text: a TRL completion -> its text.
        watch: a `FlatWatch` fed the zero-sd share of every step (None: no warning).
        is_main: only the main process keeps the window (`pop_window`, read by its `MetricsWriter`).
    """

    def __init__(
        self,
        weights: Mapping[str, float],
        group_size: int,
        max_completion_length: int,
        *,
        scale_rewards: str = "group",
        reason: Callable[[str, Any], str] | None = None,
        counters: Sequence[Callable[[StepBatch], Mapping[str, float]]] = COUNTERS,
        completion_text: Callable[[Any], str] = str,
        watch: FlatWatch | None = None,
        is_main: bool = True,
    ):
        self.weights = dict(weights)
        self.group_size = group_size
        self.max_completion_length = max_completion_length
        self.scale_rewards = scale_rewards
        self.reason = reason
        self.counters = list(counters)
        self.completion_text = completion_text
        self.watch = watch
        self.is_main = is_main
        self._pending: dict[
            int, list[dict[str, Any]]
        ] = {}  # step -> chunks {"completions", "columns", "rewards"}
        self._window: list[dict[str, float]] = []
        self.last: tuple[StepBatch, list[float]] | None = None  # the last finished batch and its advantages

    # from NamedReward ---------------------------------------------------------------------------
    def add(self, name: str, global_step: int, completions: Sequence[Any], rewards: Sequence[Any], columns):
        """Rewards of function `name` for the batch generated at `global_step` (it trains step + 1)."""
        chunks = self._pending.setdefault(global_step + 1, [])
        if not chunks or name in chunks[-1]["rewards"] or len(completions) != len(chunks[-1]["completions"]):
            # a new generation batch (one per optimizer step in vrft's layout; more are appended)
            chunks.append({"completions": list(completions), "columns": columns, "rewards": {}})
        chunks[-1]["rewards"][name] = [None if v is None else float(v) for v in rewards]

    # the step's batch -----------------------------------------------------------------------------
    def batch(self, step: int) -> StepBatch | None:
        """The batch that trained `step` (None when this process scored nothing for it, e.g. a step that
        reuses the completions of an earlier one under `grpo.num_iterations` > 1)."""
        chunks = self._pending.get(step)
        if not chunks:
            return None
        texts: list[str] = []
        record_ids: list[Any] = []
        lengths: list[int] = []
        names = list(dict.fromkeys(k for c in chunks for k in c["rewards"]))
        rewards: dict[str, list[float | None]] = {k: [] for k in names}
        columns: dict[str, Any] = {}
        for c in chunks:
            n = len(c["completions"])
            texts += [self.completion_text(x) for x in c["completions"]]
            record_ids += list(c["columns"].get("record_id") or [None] * n)
            ids = c["columns"].get("completion_ids")
            lengths += [len(x) for x in ids] if isinstance(ids, list | tuple) and len(ids) == n else []
            for k in names:
                rewards[k] += c["rewards"].get(k, [None] * n)
            for k, v in c["columns"].items():
                if isinstance(v, list):
                    columns.setdefault(k, []).extend(v)
        if len(lengths) != len(texts):
            lengths = []
        totals = []
        for i in range(len(texts)):
            values = [self.weights.get(k, 1.0) * v[i] for k, v in rewards.items() if v[i] is not None]
            totals.append(sum(values) if values else math.nan)  # TRL: nansum; NaN when no reward applies
        reasons: list[str] = []
        if self.reason is not None:
            for text, rid in zip(texts, record_ids, strict=True):
                try:
                    reasons.append(self.reason(text, rid) or "ok")
                except Exception as err:  # a diagnostic must never stop training
                    reasons.append(f"parser error {type(err).__name__}")
        return StepBatch(step=step, group_size=self.group_size, max_completion_length=self.max_completion_length,
                         texts=texts, record_ids=record_ids, lengths=lengths, rewards=rewards, totals=totals,
                         reasons=reasons, columns=columns)  # fmt: skip

    def finish(self, step: int) -> tuple[StepBatch, list[float]] | None:
        """Close `step` (idempotent): its batch and GRPO advantages, its metrics into the window."""
        if self.last is not None and self.last[0].step == step:
            return self.last
        batch = self.batch(step)
        for old in [s for s in self._pending if s <= step]:
            del self._pending[old]
        if batch is None:
            return None
        adv = advantages(batch.totals, self.group_size, self.scale_rewards)
        metrics: dict[str, float] = {}
        for counter in self.counters:
            try:
                metrics.update(counter(batch))
            except Exception as err:  # a diagnostic must never stop training
                logger.warning(
                    "step signals: counter %s failed (%s)", getattr(counter, "__name__", counter), err
                )
        if self.is_main:
            self._window.append(metrics)
        self.last = (batch, adv)
        if self.watch is not None and "train/zero_sd_share" in metrics:
            self.watch.update(step, metrics["train/zero_sd_share"], metrics)
        return self.last

    def on_step_end(self, args, state, control, **kwargs):
        self.finish(state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        if self.watch is not None:
            self.watch.end()

    def pop_window(self) -> dict[str, float]:
        """Mean of each metric over the steps since the last call (a reason absent in a step counts 0)."""
        if not self._window:
            return {}
        keys = {k for row in self._window for k in row}
        n = len(self._window)
        out = {}
        for k in sorted(keys):
            if k.startswith("train/parse_fail/"):
                out[k] = sum(row.get(k, 0.0) for row in self._window) / n
            else:
                vals = [row[k] for row in self._window if k in row]
                out[k] = sum(vals) / len(vals)
        self._window = []
        return out


class FlatWatch:
    """Warn when the zero-sd share is above `threshold` for `steps` consecutive steps, at most once per
    window: after a warning the count starts again, so a run that stays flat warns every `steps` steps.
    A run shorter than `steps` whose every step was flat warns once at its end (`end`).

    `temperature` picks the fix (the doctor's: `vrft.doctor.verdict.flat_groups_fix`)."""

    def __init__(self, threshold: float, steps: int, temperature: float, log: logging.Logger | None = None):
        self.threshold = threshold
        self.steps = steps
        self.temperature = temperature
        self.log = log or logger
        self.run = 0
        self.warnings: list[int] = []  # steps at which a warning fired
        self.steps_above = 0
        self.seen = 0
        self.last_step = 0
        self._recent: list[dict[str, float]] = []

    def update(self, step: int, share: float, metrics: Mapping[str, float]) -> None:
        self.seen += 1
        self.last_step = step
        self._recent = (self._recent + [dict(metrics)])[-self.steps :]
        if share >= self.threshold:
            self.run += 1
            self.steps_above += 1
        else:
            self.run = 0
        if self.run >= self.steps:
            self.run = 0
            self.warnings.append(step)
            self.log.warning(self.message(step))

    def end(self) -> None:
        """At the end of training: a run shorter than `steps` whose every step was flat still warns once."""
        if not self.warnings and self.seen and self.run == self.seen:
            self.warnings.append(self.last_step)
            self.log.warning(self.message(self.last_step))

    def message(self, step: int) -> str:
        from vrft.doctor.verdict import flat_groups_fix

        recent = self._recent
        share = sum(r.get("train/zero_sd_share", 0.0) for r in recent) / max(len(recent), 1)
        parse = sum(v for r in recent for k, v in r.items() if k.startswith("train/parse_fail/")) / max(
            len(recent), 1
        )
        trunc = sum(r.get("train/truncated_share", 0.0) for r in recent) / max(len(recent), 1)
        fix = flat_groups_fix(self.temperature)
        if parse >= 0.5:
            fix = (
                f"most likely because {_pct(parse)} of completions do not parse (they all score the same): start "
                "from a model that answers in format (`model.path`) or check `data.answer_format`; if it stays "
                f"after that, {fix}"
            )
        elif trunc >= 0.5:
            fix = (
                f"most likely because {_pct(trunc)} of completions hit grpo.max_completion_length: raise "
                f"`grpo.max_completion_length`; if it stays after that, {fix}"
            )
        return (
            f"step {step}: {_pct(share)} of groups had identical rewards over the last {len(recent)} steps (zero-sd "
            f"share >= {_pct(self.threshold)}, `output.flat_warning_share`): GRPO advantage 0, no gradient from "
            f"those prompts; {fix}. `vrft doctor CONFIG` diagnoses this before a run"
        )


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"
