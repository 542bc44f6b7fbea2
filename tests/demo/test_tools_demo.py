"""The tools experiment of `vrft demo` (`vrft.demo.tools_demo`): its world, traces, zoom metrics,
settings and table; and `vrft demo --quick experiments.run=[tools]` end to end from the shipped tools
base (the measured table of a full run is in docs/demo.md)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from PIL import Image

from vrft.boxes import Frame
from vrft.data.records import Record, load_records
from vrft.demo import results
from vrft.demo.settings import DemoSettings, load_settings
from vrft.demo.tools_demo import (
    ARMS,
    PARTS,
    box_iou,
    check_tools_settings,
    fewshot_sets,
    tools_part,
    trace_of_record,
    zoom_region,
    zoom_scores,
)
from vrft.demo.world import SEED_OFFSETS
from vrft.errors import ConfigError
from vrft.tools.env import ToolSettings, tool_environment
from vrft.tools.trace import play


def _small(**tools) -> DemoSettings:
    settings = DemoSettings()
    settings.tools = settings.tools.model_copy(
        update={"scene_size": 256, "view_size": 64, "pool_images": 10, "val_images": 5, "test_images": 5, **tools}
    )
    return settings


def _ink(image: Image.Image) -> tuple[int, int, int, int] | None:
    """Bounding box of the non-white pixels."""
    a = np.asarray(image.convert("RGB")).astype(int)
    ys, xs = np.nonzero((a < 235).any(axis=2))
    return (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) if len(xs) else None


def test_the_tools_parts_have_their_own_seeds():
    assert not set(PARTS.values()) & set(SEED_OFFSETS.values())
    assert max(PARTS.values()) < 10  # world seed * 10 + offset: parts of different world seeds never meet


def test_a_scene_holds_one_small_shape_at_the_recorded_box(tmp_path):
    settings = _small()
    path = tools_part(settings, "tools_pool", tmp_path / "pool")
    records = load_records(path)
    assert len(records) == 10 and {r.label for r in records} == {"circle", "square", "triangle", "cross", "hexagon"}
    for r in records:
        image = Image.open(r.image_path)
        assert image.size == (256, 256) and r.width == r.height == 256
        x1, y1, x2, y2 = r.meta["target"]
        assert 0.06 * 256 * 0.9 <= max(x2 - x1, y2 - y1) <= 0.09 * 256 * 1.5  # the shape's size in the scene
        ink = _ink(image)
        assert ink is not None and abs(ink[0] - x1) <= 2 and abs(ink[2] - x2) <= 2 and abs(ink[3] - y2) <= 2
    again = load_records(tools_part(settings, "tools_pool", tmp_path / "again"))
    assert [r.meta for r in again] == [r.meta for r in records]  # the world is a function of its seed


def test_zoom_region_is_a_square_inside_the_scene_that_holds_the_shape():
    rng = random.Random(0)
    for _ in range(500):
        side = 512
        w = rng.uniform(20, 50)
        x1, y1 = rng.uniform(0, side - w), rng.uniform(0, side - w)
        box = [x1, y1, x1 + w, y1 + w * rng.uniform(0.6, 1.0)]
        r = zoom_region(box, side, 3.0, 0.2, rng)
        assert r[0] >= 0 and r[1] >= 0 and r[2] <= side + 1e-9 and r[3] <= side + 1e-9
        assert r[2] - r[0] == pytest.approx(r[3] - r[1]) == pytest.approx(3.0 * w)
        assert r[0] <= box[0] and r[1] <= box[1] and r[2] >= box[2] and r[3] >= box[3]


def test_a_trace_replayed_by_the_real_tool_shows_the_whole_shape_enlarged(tmp_path):
    settings = _small()
    records = load_records(tools_part(settings, "tools_pool", tmp_path / "pool"))
    frame = Frame.for_image(256, 256, "norm1000")
    env = tool_environment(ToolSettings(("zoom_in",), 2, 2, 64 * 64, lambda w, h: Frame.for_image(w, h)))()
    rng = random.Random(0)
    for r in records:
        trace = trace_of_record(r, settings, frame, rng)
        call = trace[0]["tool_calls"][0]
        assert call["name"] == "zoom_in" and all(isinstance(v, int) and 0 <= v <= 1000 for v in call["arguments"]["bbox_2d"])
        assert trace[1]["content"].endswith(f"<answer>{r.label}</answer>")
        env.reset(image=Image.open(r.image_path))
        messages = play(trace, env)
        assert [m["role"] for m in messages] == ["assistant", "tool", "assistant"]
        crop = next(b["image"] for b in messages[1]["content"] if b.get("type") == "image")
        ink = _ink(crop)
        # the whole shape is in the crop (not cut at its border), and it fills a nameable part of it
        assert ink is not None and ink[0] > 0 and ink[1] > 0 and ink[2] < crop.width and ink[3] < crop.height
        assert max(ink[2] - ink[0], ink[3] - ink[1]) >= 0.25 * crop.width
        region = env.regions[0]
        assert box_iou(region, r.meta["target"]) > 0.05 and region[0] <= r.meta["target"][0] + 1


def test_fewshot_sets_carry_traces_only_for_sft(tmp_path):
    settings = _small(shots=1)
    pool = tools_part(settings, "tools_pool", tmp_path / "pool")
    sets = fewshot_sets(settings, pool, 0, "norm1000", tmp_path / "fs")
    plain, traced = load_records(sets["plain"]), load_records(sets["traces"])
    assert len(plain) == len(traced) == 5 and all(r.trace is None for r in plain)
    assert [r.id for r in plain] == [r.id for r in traced] and all(r.trace for r in traced)


def test_zoom_scores_read_the_first_zoom_of_each_sample(tmp_path):
    records = [Record(id=f"r{i}", task="classification", image="x.png", width=100, height=100, label="circle",
                      meta={"target": [10, 10, 20, 20]}) for i in range(3)]  # fmt: skip
    rows = [
        {"id": "r0", "zoom_regions": [[0, 0, 30, 30], [50, 50, 60, 60]]},  # holds the shape: IoU 100/900
        {"id": "r1", "zoom_regions": [[15, 15, 45, 45]]},  # cuts it: IoU 25/(100+900-25)
        {"id": "r2", "zoom_regions": []},  # no zoom: not counted
    ]
    path = tmp_path / "predictions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = zoom_scores(path, records)
    assert got["zoomed"] == 2 and got["hit"] == 50.0
    assert got["iou"] == pytest.approx(round(100 * (100 / 900 + 25 / 975) / 2, 2))
    assert zoom_scores(tmp_path / "none.jsonl", records) == {"zoomed": 0, "iou": None, "hit": None}


def test_the_tools_table_shows_every_arm_with_mean_and_sd():
    runs = [{"experiment": "tools", "method": "baseline", "shots": 0, "task": "classification", "seed": None,
             "accuracy": 20.0, "call_rate": None, "zoom_iou": None, "zoom_hit": None},
            {"experiment": "tools", "method": "baseline_tools", "shots": 0, "task": "classification", "seed": None,
             "accuracy": 22.0, "call_rate": 0.0, "zoom_iou": None, "zoom_hit": None}]  # fmt: skip
    for arm in ("sft_traces", "rft_tools", "rft"):
        for seed, acc in ((0, 40.0), (1, 60.0)):
            tools = arm != "rft"
            runs.append({"experiment": "tools", "method": arm, "shots": 8, "task": "classification", "seed": seed,
                         "accuracy": acc, "call_rate": 90.0 + seed * 10 if tools else None,
                         "zoom_iou": 10.0 if tools else None, "zoom_hit": 80.0 if tools else None})  # fmt: skip
    runs[-3]["zoom_iou"] = runs[-3]["zoom_hit"] = None  # rft_tools seed 1 never zoomed: no zoom score
    rows = results.aggregate(runs)
    text = results.table_markdown(rows)
    assert "(d) tools" in text and "8 scenes per shape, seeds [0, 1]" in text
    lines = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines() if line.startswith("| ")}
    assert lines[ARMS["baseline"]] == f"| {ARMS['baseline']} | 20.0 | - | - | - |"
    assert lines[ARMS["baseline_tools"]] == f"| {ARMS['baseline_tools']} | 22.0 | 0.0 | - | - |"
    assert lines[ARMS["sft_traces"]] == f"| {ARMS['sft_traces']} | 50.0 ± 14.1 | 95.0 ± 7.1 | 10.0 ± 0.0 | 80.0 ± 0.0 |"
    assert lines[ARMS["rft_tools"]] == (
        f"| {ARMS['rft_tools']} | 50.0 ± 14.1 | 95.0 ± 7.1 | 10.0 (1 of 2 seeds) | 80.0 (1 of 2 seeds) |"
    )
    assert lines[ARMS["rft"]] == f"| {ARMS['rft']} | 50.0 ± 14.1 | - | - | - |"
    assert "zoom holds the shape" in results.table_html(rows)


@pytest.mark.parametrize(
    "override, message",
    [
        ("tools.view_size=1024", "tools.view_size (1024) is larger than tools.scene_size (512)"),
        ("tools.min_scale=0.2", "tools.min_scale (0.2) is larger than tools.max_scale (0.09)"),
        ("tools.zoom_margin=0.5", "tools.zoom_margin"),
        ("tools.rft.steps=0", "tools.rft.steps"),
        ("tools.shot=2", "did you mean 'tools.shots'"),
    ],
)
def test_bad_tools_settings_are_refused_by_name(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(overrides=[override])


def test_the_tools_runs_are_checked_before_any_work():
    settings = load_settings(overrides=["experiments.run=[tools]", "tools.rft.reward_weights={tool_bonsu: 1}"])
    with pytest.raises(ConfigError, match=r"tool_bonsu.*\(the rft_tools run of the tools experiment\)"):
        check_tools_settings(settings)
    check_tools_settings(load_settings(overrides=["experiments.run=[tools]"]))


def test_a_missing_or_refused_tools_base_fails_before_any_work(tmp_path):
    from vrft.demo.base import SHIPPED_BASE
    from vrft.errors import UserError

    with pytest.raises(UserError, match=r"tools.base_path: .*nowhere is not a model directory"):
        check_tools_settings(load_settings(overrides=[f"tools.base_path={tmp_path / 'nowhere'}"]))
    with pytest.raises(UserError, match=r"tools.base_path: .*needs a Qwen3-VL model: Qwen2.5-VL"):
        check_tools_settings(load_settings(overrides=[f"tools.base_path={SHIPPED_BASE}"]))


def test_the_caveat_names_a_smaller_tools_experiment_and_not_the_paper_ones():
    from vrft.demo.settings import caveat

    quick = load_settings(quick=True, overrides=["experiments.run=[tools]", "experiments.seeds=[0,1,2]"])
    text = caveat(quick)
    assert "tools.shots 1 instead of 8" in text and "classification and" not in text and "k = " not in text
    assert caveat(load_settings(overrides=["experiments.run=[tools]"])) is None


@pytest.mark.slow  # trains SFT and two GRPO runs with tools, evaluates five arms (about 40 s)
def test_quick_tools_demo_writes_every_arm_from_the_shipped_tools_base(tmp_path):
    from vrft.cli import main as cli_main
    from vrft.demo.base import SHIPPED_TOOLS_BASE, read_card

    out = tmp_path / "demo"
    small = ["experiments.run=[tools]", "tools.pool_images=10", "tools.test_images=5", "tools.sft.steps=2",
             "tools.rft.steps=1", "eval.report_samples=2", "experiments.prompts_per_step=2"]  # fmt: skip
    assert cli_main(["demo", "--quick", "--out", str(out), *small]) == 0
    data = json.loads((out / "results.json").read_text())
    rows = {r["method"]: r for r in data["rows"] if r["experiment"] == "tools"}
    assert list(rows) == list(ARMS)
    for arm, row in rows.items():
        assert row["accuracy"] is not None and 0 <= row["accuracy"] <= 100
        assert ("call_rate" in row) and ((row["call_rate"] is None) == (arm in ("baseline", "rft")))
    runs = [r for r in data["runs"] if r["experiment"] == "tools"]
    assert {r["seed"] for r in runs if r["method"] in ("sft_traces", "rft_tools", "rft")} == {0}
    info = json.loads((out / "run.json").read_text())
    assert info["tools_base_weights_sha256"] == read_card(SHIPPED_TOOLS_BASE)["weights_sha256"]
    # the tools experiment alone neither loads the paper's base nor draws the paper's world
    assert info["base_dir"] is None and sorted(p.name for p in (out / "world").iterdir()) == ["tools_pool", "tools_test"]
    md = (out / "results.md").read_text()
    assert "(d) tools" in md and "Tools experiment:" in md and "Not the demo's result" in md
    report = (out / "report.html").read_text()
    assert report.count("<h2>(d) tools") == 1 and "where the model zoomed" in report
    # the SFT on traces ran through the tools (its run says so) and the tool arms answered through the loop
    tools_metrics = json.loads((out / "eval" / "tools-sft_traces-seed0" / "metrics.json").read_text())["tools"]
    assert tools_metrics["names"] == ["zoom_in"] and tools_metrics["samples"] == 5
