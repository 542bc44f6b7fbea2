"""The doctor's findings: each one line naming what is wrong and the config key that fixes it.

`findings(report, cfg)` reads the figures of a report dict (`vrft.doctor.report.build_report`) and
returns `Finding`s, blocking ones first. A finding is blocking when the run would waste its compute
(no learning signal, answers cut, boxes read in the wrong convention, image tokens cut); the command
exits 1 when there is one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

#: A share of flat groups at or above this blocks the run (GRPO learns from the others only).
FLAT_BLOCKING = 0.75
#: ... and at or above this is a warning.
FLAT_WARNING = 0.5
#: Truncated completions: blocking at or above, warning at or above.
TRUNCATION_BLOCKING = 0.5
TRUNCATION_WARNING = 0.1
#: Parse failures: warning at or above.
PARSE_WARNING = 0.5
#: A convention fits "clearly better" when its mean IoU beats the configured one's by this much, and by
#: this factor, over at least `MIN_BOX_ANSWERS` answers with boxes.
CONVENTION_MARGIN = 0.15
CONVENTION_FACTOR = 1.5
MIN_BOX_ANSWERS = 3
#: Rewards named so are logged diagnostics (weight 0 by design, e.g. parse_fail_detection), never a fix.
DIAGNOSTIC_PREFIX = "parse_fail"
#: Sampling temperature below which flat groups are blamed on it first.
LOW_TEMPERATURE = 0.3


@dataclass(frozen=True)
class Finding:
    """`code`: stable identifier; `key`: the config key to change; `message`: the line with its fix."""

    code: str
    key: str
    blocking: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        return f"{'BLOCKING' if self.blocking else 'warning '} [{self.key}] {self.message}"


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def findings(report: dict[str, Any], cfg: Any) -> list[Finding]:
    """Every finding of the report, blocking ones first (in the order of the checks)."""
    out: list[Finding] = []
    g = cfg.grpo
    out += _prompt_findings(report, cfg)
    out += _reward_error_findings(report)
    out += _convention_findings(report, cfg)

    trunc = report["truncation"]["share"]
    if trunc >= TRUNCATION_WARNING:
        out.append(Finding(
            "truncated", "grpo.max_completion_length", trunc >= TRUNCATION_BLOCKING,
            f"{_pct(trunc)} of completions hit grpo.max_completion_length={g.max_completion_length} before ending "
            f"their answer (cut answers do not parse and score 0): raise `grpo.max_completion_length` "
            f"(e.g. grpo.max_completion_length={2 * g.max_completion_length})",
        ))  # fmt: skip

    signal = report["learning_signal"]
    flat = signal["zero_sd_share"]
    zero_weighted = [
        name for name, r in report["rewards"].items()
        if r["weight"] == 0 and r["zero_sd_share"] < flat - 1e-9 and not name.startswith(DIAGNOSTIC_PREFIX)
    ]  # fmt: skip
    if zero_weighted and flat >= FLAT_WARNING:
        name = min(zero_weighted, key=lambda n: report["rewards"][n]["zero_sd_share"])  # the most informative
        r = report["rewards"][name]
        others = [n for n in zero_weighted if n != name]
        also = f" (also weight 0 and varying: {', '.join(others)})" if others else ""
        out.append(Finding(
            "zero_weight", f"rewards.weights.{name}", True,
            f"reward '{name}' varies within {_pct(1 - r['zero_sd_share'])} of the groups but has weight 0{also}, and "
            f"the weighted total is flat in {_pct(flat)} of them: set `rewards.weights.{name}` above 0 "
            f"(e.g. rewards.weights.{name}=1.0)",
        ))  # fmt: skip
    elif flat >= FLAT_WARNING:
        fix = flat_groups_fix(g.temperature)
        explained = any(f.blocking for f in out)
        if explained:  # cut answers or misread boxes flatten the groups: that finding is the fix
            fix = f"most likely from the blocking finding above; if it stays after that fix, {fix}"
        out.append(Finding(
            "flat_groups", "grpo.temperature", flat >= FLAT_BLOCKING and not explained,
            f"{_pct(flat)} of groups have identical rewards (GRPO advantage 0, no gradient): {fix}",
        ))  # fmt: skip

    parse = report["parse"]
    if parse["rate"] >= PARSE_WARNING:
        top = parse["top_reasons"][0]["reason"] if parse["top_reasons"] else "?"
        out.append(Finding(
            "parse_failures", "data.answer_format", False,
            f"{_pct(parse['rate'])} of completions do not parse (mostly: {top}): check that the prompt asks for "
            "the answer format the rewards read (`data.answer_format`, the records' `prompt`), or start from a "
            "model that answers in format (`model.path`)",
        ))  # fmt: skip
    return sorted(out, key=lambda f: not f.blocking)


def flat_groups_fix(temperature: float) -> str:
    """The fix for flat groups (all G rewards equal), shared by the doctor's verdict and the warning of a
    training run (`vrft.train.step_signals.FlatWatch`)."""
    if temperature < LOW_TEMPERATURE:
        return f"raise `grpo.temperature` (now {temperature}; e.g. grpo.temperature=1.0) so that the G completions differ"
    return (
        "raise `grpo.temperature` or `grpo.num_generations`, or use the `perception` preset's partial "
        "credit (`rewards.preset`)"
    )


def _prompt_findings(report: dict[str, Any], cfg: Any) -> list[Finding]:
    prompt = report["prompt"]
    out = []
    limit = prompt["max_prompt_length"]
    if limit is not None:
        cut = [r for r in prompt["records"] if r["prompt_tokens"] > limit]
        into_image = [r for r in cut if r["first_image_token"] is not None
                      and r["first_image_token"] < r["prompt_tokens"] - limit]  # fmt: skip
        if into_image:
            r = max(into_image, key=lambda r: r["prompt_tokens"])
            out.append(Finding(
                "prompt_cuts_image", "grpo.max_prompt_length", True,
                f"{len(into_image)} of {len(prompt['records'])} prompts are longer than grpo.max_prompt_length="
                f"{limit} (longest: {r['id']}, {r['prompt_tokens']} tokens, {r['image_tokens']} of them image "
                "tokens): cutting them would cut image tokens ('image features and image tokens do not match'); "
                f"raise `grpo.max_prompt_length` to at least {prompt['max_tokens']} or lower `model.max_pixels`",
            ))  # fmt: skip
        elif cut:
            out.append(Finding(
                "prompt_cut", "grpo.max_prompt_length", False,
                f"{len(cut)} prompts are longer than grpo.max_prompt_length={limit} (text only would be cut, the "
                f"image tokens survive): raise `grpo.max_prompt_length` to at least {prompt['max_tokens']}",
            ))  # fmt: skip
    context = prompt["model_context"]
    need = prompt["max_tokens"] + cfg.grpo.max_completion_length
    if context and need > context:
        out.append(Finding(
            "context", "grpo.max_completion_length", True,
            f"the longest prompt ({prompt['max_tokens']} tokens) plus grpo.max_completion_length="
            f"{cfg.grpo.max_completion_length} is {need} tokens, beyond the model's {context} positions: lower "
            "`grpo.max_completion_length` or `model.max_pixels`",
        ))  # fmt: skip
    return out


def _reward_error_findings(report: dict[str, Any]) -> list[Finding]:
    return [
        Finding(
            "reward_error",
            "rewards.extra",
            True,
            f"reward '{name}' raised or returned no value on {_pct(r['nan_share'])} of the completions: "
            "fix the function (or drop it from `rewards.extra`)",
        )  # fmt: skip
        for name, r in report["rewards"].items()
        if r["nan_share"] > 0
    ]


def _convention_findings(report: dict[str, Any], cfg: Any) -> list[Finding]:
    conv = report.get("convention")
    if not conv or conv["answers_with_boxes"] < MIN_BOX_ANSWERS:
        return []
    configured = conv["configured"]
    scores = conv["mean_iou"]
    if configured not in scores:
        return []
    best = max(scores, key=lambda k: scores[k])
    mine, top = scores[configured], scores[best]
    if best == configured or top < mine + CONVENTION_MARGIN or top < CONVENTION_FACTOR * mine:
        return []
    if best == "norm1":
        fix = (
            "vrft has no 0..1 convention: ask for integer boxes in the configured convention (the records' "
            "`prompt`) or start from a model that writes them (`model.path`)"
        )
    else:
        fix = f"set `model.coordinate_convention={best}`"
    return [Finding(
        "convention", "model.coordinate_convention", True,
        f"the model's boxes fit the ground truth far better read as {best} (mean IoU {top:.2f}) than as the "
        f"configured {configured} ({mine:.2f}): {fix}",
    )]  # fmt: skip
