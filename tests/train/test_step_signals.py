"""Per-step learning signals of a GRPO run: counters, TRL's advantages, the flat-group warning, and a run
whose groups are all flat (metrics.jsonl keys, the warning, summary.json, curves.png, one line per step)."""

from __future__ import annotations

import logging
import math

import pytest
import torch

from vrft.train.run_log import StepLine, curve_series, summarize, summary_line
from vrft.train.step_signals import FlatWatch, StepSignals, advantages, reason_key

from .conftest import read_jsonl


class _State:
    def __init__(self, step):
        self.global_step = step


def _signals(**kw):
    base = dict(
        weights={"format": 1.0, "iou": 2.0, "parse_fail_x": 0.0}, group_size=2, max_completion_length=4
    )
    return StepSignals(**{**base, **kw})


def _feed(sig, global_step, rewards_by_name, texts, lengths, record_ids=None):
    columns = {"completion_ids": [[7] * n for n in lengths], "record_id": record_ids or ["a"] * len(texts)}
    for name, values in rewards_by_name.items():
        sig.add(name, global_step, texts, values, columns)


def test_a_step_gives_the_doctor_figures():
    sig = _signals(
        reason=lambda text, rid: "ok" if text.startswith("<answer>") else "syntax error at offset 12"
    )
    texts = ["<answer>1</answer>", "junk", "<answer>2</answer>", "<answer>3</answer>"]
    # group 1: totals 1+2*0.5=2.0 and 0 -> varies; group 2: totals 1.0 and 1.0 -> flat
    _feed(
        sig,
        0,
        {"format": [1, 0, 1, 1], "iou": [0.5, 0, 0, 0], "parse_fail_x": [0, 1, 0, 0]},
        texts,
        [3, 4, 2, 4],
    )
    batch, adv = sig.finish(1)
    assert batch.totals == [2.0, 0.0, 1.0, 1.0]
    window = sig.pop_window()
    assert window["train/zero_sd_share"] == 0.5
    assert window["train/reward_sd_within"] == pytest.approx(0.5)  # (sd 1.0 + sd 0.0) / 2
    assert window["train/truncated_share"] == 0.5  # lengths 4 and 4 reach max_completion_length=4
    assert window == {**window, "train/parse_fail/syntax_error_at_offset_n": 0.25}
    assert adv[2] == adv[3] == 0.0 and adv[0] > 0 > adv[1]
    assert sig.finish(1) == (batch, adv)  # idempotent: SampleWriter and the callback may both ask
    assert sig.pop_window() == {}


def test_window_means_and_a_step_without_rollouts():
    sig = _signals()
    _feed(sig, 0, {"format": [1, 1, 0, 0]}, ["a"] * 4, [1] * 4)
    sig.on_step_end(None, _State(1), None)
    _feed(sig, 1, {"format": [1, 0, 0, 1]}, ["a"] * 4, [1] * 4)
    sig.on_step_end(None, _State(2), None)
    sig.on_step_end(None, _State(3), None)  # num_iterations > 1: no new completions, nothing counted
    assert sig.pop_window()["train/zero_sd_share"] == 0.5  # (1.0 + 0.0) / 2


def test_counters_are_pluggable():
    seen = []

    def tool_calls(batch):
        seen.append(batch.step)
        return {"train/tools/calls": float(sum("<tool>" in t for t in batch.texts))}

    sig = _signals(counters=[tool_calls])
    _feed(sig, 4, {"format": [1, 1]}, ["<tool>x", "y"], [1, 1])
    sig.finish(5)
    assert seen == [5] and sig.pop_window() == {"train/tools/calls": 1.0}


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_advantages_match_trl(scale):
    """The formula of TRL 1.16's _generate_and_score_completions (sum_then_normalize), with its nanstd."""
    from trl.trainer.utils import nanstd

    totals = [0.3, 1.2, 1.2, 0.0, 2.0, 2.0, 2.0, 2.0, 0.5, float("nan"), 0.1, 0.9]
    g = 4
    r = torch.tensor(totals, dtype=torch.float64)
    mean = torch.nanmean(r.view(-1, g), dim=1).repeat_interleave(g)
    std = nanstd(r.view(-1, g), dim=1).repeat_interleave(g) if scale == "group" else nanstd(r).expand_as(r)
    expected = r - mean
    if scale != "none":
        expected = expected / (std + 1e-4)
    expected = torch.nan_to_num(expected, nan=0.0)
    assert advantages(totals, g, scale) == pytest.approx(
        expected.tolist(), rel=1e-6, abs=1e-9
    )  # TRL: float32 Bessel


def test_reason_keys():
    assert reason_key("no answer") == "no_answer"
    assert reason_key("text after the point list at offset 17") == "text_after_the_point_list_at_offset_n"
    assert reason_key("") == "unknown"


def test_flat_watch_warns_once_per_window(caplog):
    watch = FlatWatch(0.75, 3, temperature=1.0)
    with caplog.at_level(logging.WARNING, logger="vrft.train.step_signals"):
        for step, share in enumerate([1.0, 1.0, 0.5, 1.0, 0.8, 1.0, 1.0, 1.0, 1.0], start=1):
            watch.update(step, share, {"train/zero_sd_share": share})
    assert watch.warnings == [6, 9]  # 3 in a row above 0.75; the count restarts after a warning
    assert len(caplog.records) == 2
    msg = caplog.records[0].getMessage()
    assert "identical rewards" in msg and "`grpo.temperature`" in msg and "`grpo.num_generations`" in msg


def test_a_short_all_flat_run_still_warns_at_its_end(caplog):
    watch = FlatWatch(0.75, 5, temperature=1.0)
    with caplog.at_level(logging.WARNING, logger="vrft.train.step_signals"):
        for step in (1, 2):
            watch.update(step, 1.0, {"train/zero_sd_share": 1.0})
        assert watch.warnings == []
        watch.end()
    assert watch.warnings == [2] and "identical rewards" in caplog.records[-1].getMessage()
    mixed = FlatWatch(0.75, 5, temperature=1.0)
    for step, share in ((1, 1.0), (2, 0.0), (3, 1.0)):
        mixed.update(step, share, {"train/zero_sd_share": share})
    mixed.end()
    assert mixed.warnings == []  # not every step was flat: no warning before a window is full


def test_flat_watch_blames_parse_failures_and_low_temperature():
    watch = FlatWatch(0.5, 1, temperature=0.05)
    watch.update(1, 1.0, {"train/zero_sd_share": 1.0, "train/parse_fail/no_answer": 0.9})
    msg = watch.message(1)
    assert "90 % of completions do not parse" in msg and "`model.path`" in msg
    assert "now 0.05" in msg  # the doctor's low-temperature fix


def test_summary_and_line():
    rows = [
        {"step": s, "train/reward": 0.1 * s, "train/zero_sd_share": 1.0 if s < 4 else 0.25, "train/kl": 0.01 * s,
         "train/parse_fail/no_answer": 0.5, "train/truncated_share": 0.0, "train/step_time": 2.0}
        for s in range(1, 7)
    ]  # fmt: skip
    rows.append({"step": 6, "train/train_runtime": 12.0})  # the Trainer's end-of-run figures: not a step
    s = summarize(rows, flat_threshold=0.75, warnings_fired=[3])
    assert s["steps"] == 6 and s["window"] == 2
    assert s["reward_first"] == pytest.approx(0.15) and s["reward_last"] == pytest.approx(0.55)
    assert (
        s["flat_steps"] == 3 and s["parse_fail_rate"] == 0.5 and s["parse_fail_reasons"] == {"no_answer": 0.5}
    )
    line = summary_line(s)
    assert "0.150 -> 0.550" in line and "1 warning" in line and "mostly no_answer" in line
    step = StepLine(6).line(rows[0])
    assert step.startswith("step 1/6") and "zero-sd 100 %" in step and "parse-fail 50 %" in step
    sft = StepLine(None).line({"step": 2, "train/loss": 1.25, "train/learning_rate": 5e-05})
    assert sft == "step 2  loss 1.2500  lr 5e-05"
    panels = curve_series(rows)
    assert set(panels["parse failures"]) == {"no_answer"} and len(panels["reward"]["total (weighted)"]) == 6


def test_a_flat_run_warns_and_ends_with_a_summary_and_curves(make_config, caplog, capsys):
    """A random tiny model never answers in format: every group is flat. The warning must fire."""
    from vrft.train import run_grpo

    cfg = make_config(overrides=["rewards.extra=[]"])  # 2 steps, fewer than output.flat_warning_steps=5
    with caplog.at_level(logging.INFO, logger="vrft"):
        run = run_grpo(cfg).parent
    rows = [r for r in read_jsonl(run / "metrics.jsonl") if "train/reward" in r]
    assert [r["step"] for r in rows] == [1, 2]
    for r in rows:
        assert r["train/zero_sd_share"] == 1.0
        assert 0.0 <= r["train/truncated_share"] <= 1.0
        fails = {k: v for k, v in r.items() if k.startswith("train/parse_fail/")}
        assert fails and math.isclose(sum(fails.values()), r["train/parse_fail_rate"])
    warned = [
        x.getMessage()
        for x in caplog.records
        if x.levelno == logging.WARNING and "identical rewards" in x.getMessage()
    ]
    assert len(warned) == 1 and warned[0].startswith("step 2:")
    lines = [x.getMessage() for x in caplog.records if x.name == "vrft.train.run_log"]
    assert [x.split("  ")[0] for x in lines if x.startswith("step ")] == ["step 1/2", "step 2/2"]
    assert any(x.startswith("summary: 2 steps") for x in lines)
    summary = (run / "summary.json").read_text()
    assert '"flat_warnings": [\n  2\n ]' in summary
    assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG"
    out = capsys.readouterr()
    assert "'rewards/format/mean'" not in out.out + out.err  # TRL's raw dict is not printed
    assert "is_gradient_checkpointing" not in out.err


def test_resume_key_lists_are_short_and_only_during_a_run():
    from vrft.train.run_log import ShortKeyLists, quiet_run

    keys = [f"model.visual.blocks.{i}.attn.qkv.weight" for i in range(200)]
    msg = f"There were missing keys in the checkpoint model loaded: {keys}."
    record = logging.LogRecord("transformers.trainer", logging.WARNING, __file__, 1, msg, None, None)
    assert ShortKeyLists().filter(record)
    short = record.getMessage()
    assert short.startswith(
        "There were missing keys in the checkpoint model loaded: 200 keys (model.visual.blocks.0"
    )
    assert short.endswith(", ...)") and len(short) < 200
    other = logging.LogRecord(
        "transformers.trainer", logging.WARNING, __file__, 1, "something else", None, None
    )
    assert ShortKeyLists().filter(other) and other.getMessage() == "something else"
    trainer_log = logging.getLogger("transformers.trainer")
    with quiet_run():
        assert any(isinstance(f, ShortKeyLists) for f in trainer_log.filters)
    assert not any(isinstance(f, ShortKeyLists) for f in trainer_log.filters)
