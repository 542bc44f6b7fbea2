"""Scoring an audit: the honest answer and every exploit, the flags, and the table."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vrft.audit.case import AuditCase, ExploitFn
from vrft.audit.exploits import EXPLOITS
from vrft.errors import UserError

TIE = 1e-9
"""An exploit whose mean total is within this of the honest one counts as earning as much."""


@dataclass
class Row:
    """One line of the audit table: means over the ``n`` records the exploit applies to."""

    exploit: str
    n: int
    rewards: dict[str, float]
    total: float
    honest: float
    at_least_honest: int = 0
    flagged: bool = False
    allowed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "exploit": self.exploit,
            "n": self.n,
            "rewards": {k: round(v, 6) for k, v in self.rewards.items()},
            "total": round(self.total, 6),
            "honest": round(self.honest, 6),
            "records_at_least_honest": self.at_least_honest,
            "flagged": self.flagged,
            "allowed": self.allowed,
        }


@dataclass
class AuditReport:
    """The audit of one task under one set of weighted rewards."""

    task: str
    rewards: dict[str, float]
    source: str
    n_records: int
    rows: list[Row] = field(default_factory=list)

    @property
    def flagged(self) -> list[str]:
        """Exploits that earn at least as much as the honest answer and are not allowed."""
        return [r.exploit for r in self.rows if r.flagged and not r.allowed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "rewards": self.rewards,
            "source": self.source,
            "records": self.n_records,
            "rows": [r.to_dict() for r in self.rows],
            "flagged": self.flagged,
        }


def _score(
    completions: list, cases: Sequence[AuditCase], rewards: Mapping[str, tuple[Callable, float]]
) -> dict[str, list[float]]:
    columns = {k: [c.columns.get(k) for c in cases] for k in {k for c in cases for k in c.columns}}
    out = {}
    for name, (fn, _) in rewards.items():
        try:
            values = [
                float(v) if v is not None else math.nan
                for v in fn(completions, prompts=[c.prompt for c in cases], **columns)
            ]
        except Exception as err:  # a reward must never raise on model output: report which one did
            raise UserError(f"reward {name!r} raised {type(err).__name__}: {err}") from err
        if len(values) != len(completions):
            raise UserError(
                f"reward {name!r} returned {len(values)} values for {len(completions)} completions"
            )
        out[name] = values
    return out


def audit(
    task: str,
    cases: Sequence[AuditCase],
    rewards: Mapping[str, tuple[Callable, float]],
    *,
    source: str = "",
    exploits: Mapping[str, ExploitFn] | None = None,
    allow: Sequence[str] = (),
    honest: ExploitFn | None = None,
) -> AuditReport:
    """Score the honest answer and every exploit of ``task`` on ``cases``.

    ``rewards``: name -> (function, weight); the total is the weighted sum (what GRPO trains on). A
    non-finite reward value makes its exploit flagged. ``allow``: exploits whose flag is accepted (shown,
    but not in :attr:`AuditReport.flagged`). ``honest``: the honest completion of a case (default: its
    `AuditCase.honest`; `vrft audit --tools` passes the honest tool trace).
    """
    if not cases:
        raise UserError(f"no {task} records to audit")
    battery = EXPLOITS.get(task) if exploits is None else dict(exploits)
    if battery is None:
        raise UserError(f"no exploit battery for task {task!r}; tasks with one: {', '.join(EXPLOITS)}")
    unknown = [a for a in allow if a not in battery]
    if unknown:
        raise UserError(f"--allow: unknown exploit(s) {', '.join(unknown)}; {task} has: {', '.join(battery)}")
    weights = {name: w for name, (_, w) in rewards.items()}
    report = AuditReport(task, weights, source, len(cases))

    def totals(scores: dict[str, list[float]], i: int) -> float:
        return sum(weights[name] * scores[name][i] for name in scores)

    honest_scores = _score([c.honest if honest is None else honest(c) for c in cases], cases, rewards)
    honest_totals = [totals(honest_scores, i) for i in range(len(cases))]
    report.rows.append(
        Row(
            "honest",
            len(cases),
            _means(honest_scores, range(len(cases))),
            _mean(honest_totals),
            _mean(honest_totals),
        )
    )
    for name, gen in battery.items():
        picked = [(i, gen(c)) for i, c in enumerate(cases)]
        picked = [(i, text) for i, text in picked if text is not None]
        if not picked:
            continue
        idx = [i for i, _ in picked]
        scores = _score([text for _, text in picked], [cases[i] for i in idx], rewards)
        tot = [totals(scores, k) for k in range(len(idx))]
        honest = _mean([honest_totals[i] for i in idx])
        mean_total = _mean(tot)
        finite = all(math.isfinite(v) for vs in scores.values() for v in vs)
        report.rows.append(
            Row(
                exploit=name,
                n=len(idx),
                rewards=_means(scores, range(len(idx))),
                total=mean_total,
                honest=honest,
                at_least_honest=sum(t >= honest_totals[i] - TIE for t, i in zip(tot, idx)),
                flagged=not finite or mean_total >= honest - TIE,
                allowed=name in allow,
            )
        )
    return report


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _means(scores: dict[str, list[float]], idx) -> dict[str, float]:
    idx = list(idx)
    return {name: _mean([vals[i] for i in idx]) for name, vals in scores.items()}


def format_table(report: AuditReport) -> str:
    """The report as a Markdown table (exploits below the honest answer, flags in the last column)."""
    names = list(report.rewards)
    head = ["exploit", "n", *names, "total", "honest", ">= honest", "flag"]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(head) - 2) + ["---"]) + "|",
    ]
    for r in report.rows:
        flag = ("allowed" if r.allowed else "FLAGGED") if r.flagged else ""
        at_least = "" if r.exploit == "honest" else f"{r.at_least_honest}/{r.n}"
        cells = [
            r.exploit,
            str(r.n),
            *(f"{r.rewards[n]:.3f}" for n in names),
            f"{r.total:.3f}",
            f"{r.honest:.3f}",
        ]
        lines.append("| " + " | ".join([*cells, at_least, flag]) + " |")
    return "\n".join(lines)
