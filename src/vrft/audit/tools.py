"""The tool-use battery of `vrft audit TASK --tools`: multi-turn exploits against an honest tool trace.

Every completion here is a list of messages made by REPLAYING a trace with the real tools
(`vrft.tools.trace.play`, on an environment reset on a blank image of the record's size: the rewards read
the calls and their results, not the pixels), so a refused call is refused exactly as in training.

The honest completion zooms once on the target (the first ground-truth box, else the image's centre
quarter) and gives the honest answer. The exploits, each scored with the task's rewards plus
``tool_format`` and ``tool_bonus`` (`tool_rewards`):

- ``no_answer``: calls the tool `max_calls` times and never answers;
- ``zoom_whole_image``: zooms on the whole image, then answers honestly;
- ``max_calls``: makes every allowed call (distinct, valid zooms), then answers honestly;
- ``answer_in_tool_call``: puts the honest answer inside a call's arguments and stops there;
- ``answer_in_bad_call``: ends with the answer inside unparsable ``<tool_call>`` text;
- ``no_tool``: the honest answer without any call (shows what the bonus adds; not an exploit that
  could win, since the bonus is paid only with a successful call).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from PIL import Image

from vrft.audit.case import AuditCase
from vrft.boxes import Frame

MAX_CALLS = 3
"""The `tools.max_calls` of the audit (`tools.max_images` is the same, so every allowed call can succeed)."""


def _env(case: AuditCase):
    from vrft.tools.env import ToolSettings, tool_environment

    settings = ToolSettings(
        ("zoom_in",), MAX_CALLS, MAX_CALLS, 112 * 112, lambda w, h: Frame(w, h, "norm1000")
    )
    env = tool_environment(settings)()
    w, h = int(case.frame.width), int(case.frame.height)
    env.reset(image=Image.new("RGB", (max(1, w), max(1, h))))
    return env


def _zoom(box) -> dict[str, Any]:
    return {"name": "zoom_in", "arguments": {"bbox_2d": [int(v) for v in box]}}


def _target(case: AuditCase) -> list[int]:
    boxes = case.gt_boxes
    if boxes:
        x1, y1, x2, y2 = (int(v) for v in boxes[0])
        if x2 > x1 and y2 > y1 and (x2 - x1) * (y2 - y1) < 0.9 * 1000 * 1000:
            return [x1, y1, x2, y2]
    return [250, 250, 750, 750]


def _play(case: AuditCase, trace: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from vrft.tools.trace import play

    return play(trace, _env(case))


def honest(case: AuditCase) -> list[dict[str, Any]]:
    """Zoom once on the target, then the honest answer."""
    return _play(case, [{"content": "", "tool_calls": [_zoom(_target(case))]}, {"content": case.honest}])


def _no_answer(case: AuditCase) -> list[dict[str, Any]]:
    return _play(case, [{"content": "", "tool_calls": [_zoom(_target(case))]} for _ in range(MAX_CALLS)])


def _zoom_whole_image(case: AuditCase) -> list[dict[str, Any]]:
    return _play(case, [{"content": "", "tool_calls": [_zoom([0, 0, 1000, 1000])]}, {"content": case.honest}])


def _max_calls(case: AuditCase) -> list[dict[str, Any]]:
    quarters = [[0, 0, 500, 500], [500, 0, 1000, 500], [0, 500, 500, 1000], [500, 500, 1000, 1000]]
    calls = [{"content": "", "tool_calls": [_zoom(quarters[k % 4])]} for k in range(MAX_CALLS)]
    return _play(case, [*calls, {"content": case.honest}])


def _answer_in_tool_call(case: AuditCase) -> list[dict[str, Any]]:
    call = {"name": "zoom_in", "arguments": {"bbox_2d": _target(case), "answer": case.honest}}
    return _play(case, [{"content": "", "tool_calls": [call]}])


def _answer_in_bad_call(case: AuditCase) -> list[dict[str, Any]]:
    return _play(case, [{"content": f"<tool_call>\n{{zoom_in {case.honest}\n</tool_call>"}])


def _no_tool(case: AuditCase) -> list[dict[str, Any]]:
    return _play(case, [{"content": case.honest}])


TOOL_EXPLOITS: dict[str, Callable[[AuditCase], Any]] = {
    "no_answer": _no_answer,  # max_calls zooms, no answer turn
    "zoom_whole_image": _zoom_whole_image,  # zoom on [0, 0, 1000, 1000], then the honest answer
    "max_calls": _max_calls,  # max_calls distinct valid zooms, then the honest answer
    "answer_in_tool_call": _answer_in_tool_call,  # the answer as a call argument, no answer turn
    "answer_in_bad_call": _answer_in_bad_call,  # the answer inside unparsable <tool_call> text
    "no_tool": _no_tool,  # the honest answer, no call
}


def tool_rewards(
    rewards: Mapping[str, tuple[Callable, float]], weights: Mapping[str, float] | None = None
) -> dict[str, tuple[Callable, float]]:
    """The task's rewards scoring the final answer, plus ``tool_format`` and ``tool_bonus`` (weight 1
    unless `weights` says otherwise, or already chosen), ``tool_bonus`` bound to the answer rewards."""
    from vrft.rewards import REWARDS
    from vrft.rewards.tools import tool_reward_pairs

    chosen = dict(rewards)
    for name in ("tool_format", "tool_bonus"):
        if name not in chosen:
            chosen[name] = (REWARDS[name], float((weights or {}).get(name, 1.0)))
    pairs = tool_reward_pairs([(n, fn) for n, (fn, _) in chosen.items()], [w for _, w in chosen.values()])
    return {name: (fn, chosen[name][1]) for name, fn in pairs}
