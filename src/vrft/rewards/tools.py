"""Tool-use rewards (optional terms for `tools.enabled` runs; docs/rewards.md and docs/tools.md).

Both read a completion with `vrft.tools.stats.trace_of` (calls, refused calls, whether the rollout ended
in an answer turn). With ``c`` calls of which ``e`` were refused or malformed:

- ``tool_format`` in [0, 1]: 0 when the rollout does not end in an answer turn (a turn without a call);
  else ``(c - e) / c``, and 1 without any call. It pays for well-formed, accepted calls and never for
  calling more.
- ``tool_bonus`` in [0, 1]: ``1 / c`` when the task's answer reward is positive AND at least one call
  succeeded (``c - e >= 1``), else 0 (DeepEyes' conditional tool bonus, shared by the calls made so that
  an extra call never earns more). The answer reward is the weighted sum of the task's answer rewards on
  the final answer (registered rewards only: a ``rewards.extra`` function is not an answer reward), handed in
  as the ``answer_reward`` keyword by `bind_answer_reward` (the trainer
  builder and `vrft audit` do it); called without it, it raises.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from vrft.tools.stats import final_answers, trace_of


def tool_format(completions: Sequence[Any], **_: Any) -> list[float]:
    """Range [0, 1]: accepted calls / calls (1 without calls); 0 without a final answer turn."""
    out = []
    for c in completions:
        t = trace_of(c)
        out.append(0.0 if not t.answered else 1.0 if t.calls == 0 else t.succeeded / t.calls)
    return out


def tool_bonus(
    completions: Sequence[Any], answer_reward: Sequence[float] | None = None, **_: Any
) -> list[float]:
    """Range [0, 1]: 1 / calls when ``answer_reward > 0`` and at least one call succeeded, else 0."""
    if answer_reward is None:
        raise ValueError(
            "tool_bonus is paid on the task's answer reward, which only a tools run binds: weight it in a training "
            "config (rewards.weights) or audit it with `vrft audit TASK --tools` (Python: "
            "vrft.rewards.tools.bind_answer_reward)"
        )
    out = []
    for c, a in zip(completions, answer_reward, strict=True):
        t = trace_of(c)
        out.append(1.0 / t.calls if a is not None and a > 0 and t.succeeded >= 1 else 0.0)
    return out


TOOL_REWARDS = ("tool_format", "tool_bonus")


def is_answer_reward(name: str) -> bool:
    """A registered answer reward of a task (not a format reward, a parse-failure diagnostic, a tool reward
    or a user's ``package.module:function`` reward)."""
    from vrft.rewards import REWARDS

    return name in REWARDS and not (name.startswith(("format", "parse_fail_")) or name in TOOL_REWARDS)


def bind_answer_reward(
    bonus: Callable[..., list], answer: Sequence[tuple[Callable[..., list], float]]
) -> Callable[..., list]:
    """`bonus` (``tool_bonus``) with ``answer_reward`` = the weighted sum of the `answer` rewards
    [(fn, weight)], each scored on the final answers; same ``__name__``."""

    def bound(completions, **kwargs):
        finals = final_answers(completions)
        total = [0.0] * len(finals)
        for fn, weight in answer:
            for i, v in enumerate(fn(completions=finals, **kwargs)):
                total[i] += weight * float(v or 0.0)
        return bonus(completions=completions, answer_reward=total, **kwargs)

    bound.__name__ = bound.__qualname__ = getattr(bonus, "__name__", "tool_bonus")
    return bound


def tool_reward_pairs(
    pairs: Sequence[tuple[str, Callable[..., list]]], weights: Sequence[float]
) -> list[tuple[str, Callable[..., list]]]:
    """The rewards of a tools run: the task's rewards score the final answer only, tool rewards read the
    whole completion, and ``tool_bonus`` is bound to the weighted answer rewards."""
    from vrft.tools.stats import on_final_answer

    answer = [(fn, w) for (name, fn), w in zip(pairs, weights) if is_answer_reward(name) and w != 0]
    out = []
    for name, fn in pairs:
        if name == "tool_bonus":
            fn = bind_answer_reward(fn, answer)
        elif name not in TOOL_REWARDS:
            fn = on_final_answer(fn)
        out.append((name, fn))
    return out
