"""tool_format, tool_bonus, the final-answer view and the tool counters; `vrft audit --tools`."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from vrft.audit import make_cases, shapes_records
from vrft.audit.score import audit
from vrft.audit.tools import MAX_CALLS, TOOL_EXPLOITS, honest, tool_rewards
from vrft.boxes import Frame
from vrft.cli import main as cli_main
from vrft.rewards import REWARDS, rewards_for
from vrft.rewards.tools import bind_answer_reward, tool_bonus, tool_format, tool_reward_pairs
from vrft.tools.env import ToolSettings, tool_environment
from vrft.tools.stats import ToolStats, final_answers, trace_of
from vrft.tools.trace import play

RIGHT = "<think>t</think> <answer>cat</answer>"
WRONG = "<think>t</think> <answer>dog</answer>"


def _env(max_calls=3):
    settings = ToolSettings(
        ("zoom_in", "rotate"), max_calls, max_calls, 56 * 56, lambda w, h: Frame(w, h, "norm1000")
    )
    env = tool_environment(settings)()
    env.reset(image=Image.new("RGB", (100, 80)))
    return env


def _zoom(box=(0, 0, 500, 500)):
    return {"name": "zoom_in", "arguments": {"bbox_2d": list(box)}}


def _run(*turns, max_calls=3):
    return play(list(turns), _env(max_calls))


def test_trace_of_reads_calls_errors_turns_and_the_final_answer():
    good = _run({"content": "", "tool_calls": [_zoom()]}, {"content": RIGHT})
    t = trace_of(good)
    assert (t.calls, t.errors, t.turns, t.answered, t.final) == (1, 0, 2, True, RIGHT)
    bad = _run({"content": "", "tool_calls": [_zoom((0, 0, 2000, 10)), {"name": "crop", "arguments": {}}]},
               {"content": f"<tool_call>{{bad {RIGHT}</tool_call>"})  # fmt: skip
    t = trace_of(bad)
    assert (t.calls, t.errors, t.answered, t.final) == (3, 3, True, "")
    assert "Tool crop not found." in bad[2]["content"] and "outside the image" in bad[1]["content"]
    ended_on_a_call = _run({"content": RIGHT, "tool_calls": [_zoom()]})
    assert trace_of(ended_on_a_call).final == "" and not trace_of(ended_on_a_call).answered
    assert trace_of(RIGHT).final == RIGHT and trace_of(RIGHT).calls == 0  # a one-turn string completion


def test_tool_format_pays_accepted_calls_and_a_final_answer():
    completions = [
        RIGHT,  # no call: nothing malformed
        _run({"content": "", "tool_calls": [_zoom()]}, {"content": RIGHT}),
        _run({"content": "", "tool_calls": [_zoom(), _zoom((0, 0, 10, 2000))]}, {"content": RIGHT}),
        _run({"content": "", "tool_calls": [_zoom()]}),  # no answer turn
    ]
    assert tool_format(completions) == [1.0, 1.0, 0.5, 0.0]


def test_tool_bonus_needs_a_positive_answer_and_a_successful_call():
    exact = REWARDS["classification_exact"]
    bonus = bind_answer_reward(tool_bonus, [(exact, 1.0)])
    completions = [
        _run({"content": "", "tool_calls": [_zoom()]}, {"content": RIGHT}),  # 1
        _run({"content": "", "tool_calls": [_zoom()]}, {"content": WRONG}),  # wrong answer: 0
        _run({"content": "", "tool_calls": [_zoom((0, 0, 1000, 1000))]}, {"content": RIGHT}),  # refused: 0
        RIGHT,  # no call: 0
        _run(*[{"content": "", "tool_calls": [_zoom()]}] * 2, {"content": RIGHT}),  # two calls: 1/2
    ]
    assert bonus(completions, gt_label=["cat"] * 5) == [1.0, 0.0, 0.0, 0.0, 0.5]
    with pytest.raises(ValueError, match="bind_answer_reward"):
        tool_bonus(completions)


def test_under_tools_the_task_rewards_score_the_final_answer_only():
    fns, weights = rewards_for("classification", "default", {"tool_bonus": 1.0})
    pairs = tool_reward_pairs([(fn.__name__, fn) for fn in fns], weights)
    scored = dict(pairs)
    # the right answer inside a tool call's text, then a wrong final answer: the task scores the final one
    sneaky = _run({"content": RIGHT, "tool_calls": [_zoom()]}, {"content": WRONG})
    assert scored["classification_exact"]([sneaky], gt_label=["cat"]) == [0.0]
    assert scored["format"]([sneaky], gt_label=["cat"]) == [1.0]
    assert [n for n, _ in pairs] == [fn.__name__ for fn in fns]
    assert final_answers([sneaky]) == [WRONG]


def test_tool_stats_count_per_rollout_and_reset_each_window():
    stats = ToolStats()
    reward = stats.wrap(REWARDS["format"])
    reward(
        [RIGHT, _run({"content": "", "tool_calls": [_zoom(), _zoom((0, 0, 2000, 1))]}, {"content": RIGHT})]
    )
    window = stats.pop_window()
    assert window == {"train/tools/calls": 1.0, "train/tools/errors": 0.5, "train/tools/turns": 1.5,
                      "train/tools/used": 0.5, "train/tools/answered": 1.0}  # fmt: skip
    assert stats.pop_window() == {}


def _task_presets() -> list[tuple[str, str]]:
    """Every (task, preset) pair the presets define, for the one-image tasks tools work on."""
    from vrft.rewards import PRESETS

    tasks = ("classification", "grounding", "detection", "counting")
    return [(t, p) for p in ("default", "visual-rft") for t in tasks if t in PRESETS[p]]


@pytest.mark.parametrize(("task", "preset"), _task_presets())
def test_no_tool_exploit_beats_the_honest_tool_trace(task, preset):
    fns, weights = rewards_for(task, preset)
    rewards = tool_rewards({fn.__name__: (fn, w) for fn, w in zip(fns, weights) if w})
    cases = make_cases(task, shapes_records(task, 6, seed=1))
    report = audit(task, cases, rewards, exploits=TOOL_EXPLOITS, honest=honest)
    assert report.flagged == []
    rows = {r.exploit: r for r in report.rows}
    assert set(rows) == {"honest", *TOOL_EXPLOITS}
    assert rows["max_calls"].rewards["tool_bonus"] == pytest.approx(1 / MAX_CALLS)
    assert rows["zoom_whole_image"].rewards["tool_bonus"] == 0.0
    assert rows["honest"].rewards["tool_bonus"] == 1.0


def test_audit_cli_tools(capsys):
    assert cli_main(["audit", "classification", "--tools", "--images", "4", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["flagged"] == [] and "tool_bonus" in report["rewards"]
    assert {r["exploit"] for r in report["rows"]} >= {
        "no_answer",
        "zoom_whole_image",
        "max_calls",
        "answer_in_tool_call",
    }
