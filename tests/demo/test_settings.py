"""Demo settings: defaults = configs/demo/demo.yaml, --quick = configs/demo/quick.yaml, errors, tables."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vrft.demo.results import aggregate, table_html, table_markdown
from vrft.demo.settings import QUICK, DemoSettings, load_settings
from vrft.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "demo"


def test_demo_yaml_is_the_defaults():
    assert load_settings(CONFIGS / "demo.yaml") == DemoSettings()
    assert yaml.safe_load((CONFIGS / "demo.yaml").read_text()) == DemoSettings().to_dict()


def test_quick_yaml_is_the_quick_overrides():
    assert yaml.safe_load((CONFIGS / "quick.yaml").read_text()) == QUICK
    assert load_settings(CONFIGS / "quick.yaml") == load_settings(quick=True)
    quick = load_settings(quick=True)
    assert quick.experiments.steps < DemoSettings().experiments.steps
    assert quick.rft == DemoSettings().rft  # the same method, only smaller


def test_overrides_and_errors_come_from_the_shared_config_loader(tmp_path):
    s = load_settings(quick=True, overrides=["rft.beta=0.1", "experiments.shots=[1,2,8]"])
    assert s.rft.beta == 0.1 and s.experiments.shots == [1, 2, 8]
    with pytest.raises(ConfigError, match=r"did you mean 'rft\.beta'"):
        load_settings(overrides=["rft.betta=0.1"])
    with pytest.raises(ConfigError, match=r"override 'experiments.steps=zero'.*experiments.steps"):
        load_settings(overrides=["experiments.steps=zero"])
    with pytest.raises(ConfigError, match="expected key=value"):
        load_settings(overrides=["rft.beta"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("world:\n  imagesize: 64\n")
    with pytest.raises(ConfigError, match=rf"{bad}:2: unknown key 'world.imagesize'.*world.image_size"):
        load_settings(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("world:\n  seed: [1\n")
    with pytest.raises(ConfigError, match=rf"{broken}:\d+: invalid YAML"):
        load_settings(broken)
    with pytest.raises(ConfigError, match="min_scale"):
        load_settings(overrides=["world.min_scale=0.6", "world.max_scale=0.3"])
    with pytest.raises(ConfigError, match="experiments.run"):
        load_settings(overrides=["experiments.run=[detection]"])


def test_rows_are_mean_and_sd_over_seeds_and_the_table_shows_them():
    runs = [
        {"experiment": "fewshot_detection", "method": "baseline", "shots": 0, "task": "detection", "seed": None,
         "novel_mAP": 10.0},
        *({"experiment": "fewshot_detection", "method": "rft", "shots": 1, "task": "detection", "seed": s,
           "novel_mAP": v} for s, v in ((0, 20.0), (1, 30.0), (2, 40.0))),
        {"experiment": "fewshot_detection", "method": "sft", "shots": 1, "task": "detection", "seed": 0,
         "novel_mAP": 15.0},
        *({"experiment": "fewshot_classification", "method": "sft", "shots": 4, "task": "classification",
           "seed": s, "accuracy": v} for s, v in ((0, 50.0), (1, 60.0))),
    ]  # fmt: skip
    rows = {(r["experiment"], r["method"], r["shots"]): r for r in aggregate(runs)}
    rft = rows[("fewshot_detection", "rft", 1)]
    assert rft["novel_mAP"] == rft["mean"] == 30.0 and rft["sd"] == 10.0 and rft["seeds"] == [0, 1, 2]
    assert rows[("fewshot_classification", "sft", 4)]["accuracy"] == 55.0
    assert rows[("fewshot_detection", "baseline", 0)]["sd"] is None  # one run: no spread measured
    lines = table_markdown(list(rows.values())).splitlines()
    assert "| method | 1-shot |" in lines
    assert "| baseline (base model) | 10.0 |" in lines
    assert "| Visual-RFT | 30.0 ± 10.0 |" in lines
    assert "| SFT | 15.0 (1 seed) |" in lines  # one seed: no ± claimed
    assert "| SFT | 55.0 ± 7.1 |" in lines
    # report.html draws the same tables as HTML tables, not markdown in <pre>
    page = table_html(list(rows.values()))
    assert "<pre>" not in page and "|" not in page and page.count('<table class="results">') == 2
    assert "<tr><th>Visual-RFT</th><td style='text-align:right'>30.0 ± 10.0</td></tr>" in page


def test_positives_only_drops_the_no_objects_prompts(tmp_path):
    from vrft.data.records import Record, load_records, save_records
    from vrft.demo.run import positives_only

    recs = [
        Record(id=f"r{i}", task="detection", image="x.png", width=8, height=8, category=c,
               boxes=[[1, 1, 4, 4]] if c == "star" else [])
        for i, c in enumerate(["star", "heart", "diamond", "star"])
    ]  # fmt: skip
    out = positives_only(save_records(recs, tmp_path / "all.jsonl"), tmp_path / "pos.jsonl")
    assert [r.id for r in load_records(out)] == ["r0", "r3"]


def test_a_seed_without_a_metric_is_not_listed_among_the_seeds_of_its_mean():
    """Issue 19: a seed whose metric is None (a failed evaluation) dropped out of the mean but was still
    listed in `seeds`. Only the seeds that count are listed; the others are `failed_seeds`."""
    runs = [{"experiment": "fewshot_classification", "method": "rft", "shots": 1, "task": "classification",
             "seed": s, "accuracy": v} for s, v in ((0, 50.0), (1, None), (2, 70.0), (3, float("nan")))]  # fmt: skip
    (row,) = aggregate(runs)
    assert row["mean"] == 60.0 and row["seeds"] == [0, 2] and row["values"] == [50.0, 70.0]
    assert row["failed_seeds"] == [1, 3]
    table = table_markdown([row])
    assert "(seeds [0, 2, 1, 3])" in table and "| Visual-RFT | 60.0 ± 14.1 (2 of 4 seeds) |" in table
    (one,) = aggregate(runs[:2])
    assert one["seeds"] == [0] and "| Visual-RFT | 50.0 (1 of 2 seeds) |" in table_markdown([one])


@pytest.mark.slow  # imports transformers (its scheduler names)
def test_a_bad_training_setting_fails_before_any_work(tmp_path, monkeypatch, capsys):
    """Issue 19: `vrft demo sft.lr_scheduler=bogus` failed only after the world and the baseline evals.
    Every setting is checked first: one line, exit 2, nothing drawn."""
    from vrft.cli import main as cli_main

    def no_work(*a, **k):
        raise AssertionError("the demo started working before checking its settings")

    monkeypatch.setattr("vrft.demo.world.build_world", no_work)
    monkeypatch.setattr("vrft.demo.run.resolve_base", no_work)
    for bad, field in (("sft.lr_scheduler=bogus", "sft.lr_scheduler"), ("rft.lr_scheduler=cosinus", "rft.lr_scheduler"),
                       ("rft.reward_preset=nope", "rft.reward_preset"),
                       ("rft.reward_weights={nope: 1}", "rft.reward_weights.nope")):  # fmt: skip
        assert cli_main(["demo", "--quick", "--out", str(tmp_path / "d"), bad]) == 2, bad
        err = capsys.readouterr().err.strip()
        assert err.startswith("vrft demo: error:") and field in err and "\n" not in err, err
        assert not (tmp_path / "d" / "world").exists()


def test_world_scales_are_honoured_by_every_detection_part(tmp_path):
    """Issue 19: `world.min_scale`/`max_scale` were silently ignored by base_train (fixed 0.22-0.45).
    They size the novel-shape detection parts; base_train has its own (defaults: the values it always
    used, so (a) is unchanged), and each setting changes what is drawn."""
    from vrft.data.records import load_records
    from vrft.demo.settings import WorldSettings
    from vrft.demo.world import build_world

    def heights(world, part):
        recs = load_records(build_world(world, tmp_path / f"{part}-{world.min_scale}", (part,))[part])
        return [b[3] - b[1] for r in recs for b in r.boxes]

    big = dict(min_scale=0.7, max_scale=0.75, base_train_min_scale=0.7, base_train_max_scale=0.75)
    for part in ("base_train", "det_test"):
        small = WorldSettings(base_train_images=3, det_test_images=3)
        large = WorldSettings(base_train_images=3, det_test_images=3, **big)
        assert max(heights(small, part)) <= 0.5 * 112 + 1, part
        assert min(heights(large, part)) >= 0.55 * 112, part
    assert "world.base_train_min_scale" in str(
        pytest.raises(ConfigError, load_settings, overrides=["world.base_train_min_scale=0.6"]).value
    )


def test_a_smaller_run_says_under_its_tables_that_it_is_not_the_demo_result(tmp_path):
    """Issue 23: `vrft demo --quick` showed its tables with no caveat but "(1 seed)"."""
    from vrft.demo.settings import caveat

    quick = caveat(load_settings(quick=True))
    assert quick.startswith("Not the demo's result") and "smaller world" in quick and "1 seed instead of 3" in quick
    assert caveat(DemoSettings()) is None
    assert caveat(load_settings(overrides=["eval.split=val", "experiments.run=[fewshot_classification]"])) is None
    assert "2 seeds instead of 3" in caveat(load_settings(overrides=["experiments.seeds=[0,1]"]))
    from vrft.demo.results import write_report

    write_report([], {}, tmp_path, 0, 0, 1, quick)
    assert "Not the demo&#x27;s result" in (tmp_path / "report.html").read_text()


def test_results_are_written_atomically_never_through_a_link(tmp_path):
    """Issue 23: DESIGN.md says every file is written atomically, but demo/ wrote plain files: writing
    through a link changed the linked file. Now each file is a new file renamed into place."""
    from vrft.demo.results import write_report, write_results_json, write_results_md
    from vrft.demo.world import classification_part

    mine = tmp_path / "mine.txt"
    mine.write_text("keep me")
    out = tmp_path / "out"
    (out / "cls" / "images").mkdir(parents=True)
    for name in ("results.json", "results.md", "report.html", "cls/images/000000.png"):
        (out / name).symlink_to(mine)
    rows = aggregate([{"experiment": "fewshot_classification", "method": "sft", "shots": 1, "task": "classification",
                       "seed": 0, "accuracy": 50.0}])  # fmt: skip
    write_results_json(rows, [], out)
    write_results_md(rows, out, ["a note"])
    write_report(rows, {}, out, 0, 0, 1)
    classification_part(out / "cls", 1, 0, 32, {"star": "filled"})
    assert mine.read_text() == "keep me"
    assert not (out / "results.json").is_symlink() and (out / "cls/images/000000.png").stat().st_size > 0


def test_fewshot_classification_has_each_method_own_tuned_setting():
    """Issue 23 §2: (c) runs each method at its own learning rate and steps (tuned on validation);
    (a) and (b) keep the shared ones; --quick keeps (c)'s rates, with its own steps."""
    from vrft.demo.experiment import make_run, rft_config, sft_config

    s, records = DemoSettings(), Path("r.jsonl")
    runs = {(e, m): make_run(s, e, m, records, 0, "x") for e in ("open_vocab", "fewshot_detection",
                                                                  "fewshot_classification") for m in ("sft", "rft")}  # fmt: skip
    assert [(r.steps, r.learning_rate) for r in runs.values()] == [(40, None)] * 4 + [(40, 5e-5), (30, 1e-4)]
    assert rft_config(s, records, runs["fewshot_classification", "rft"], records).grpo.learning_rate == 1e-4
    assert rft_config(s, records, runs["fewshot_detection", "rft"], records).grpo.learning_rate == 5e-5
    assert sft_config(s, records, runs["fewshot_classification", "sft"], records).sft.max_steps == 40
    quick = load_settings(quick=True)
    assert (make_run(quick, "fewshot_classification", "rft", records, 0, "x").steps, quick.experiments.steps) == (8, 8)
    assert make_run(quick, "fewshot_classification", "rft", records, 0, "x").learning_rate == 1e-4
    one = load_settings(overrides=["experiments.classification.rft.steps=25"]).experiments.classification.rft
    assert (one.learning_rate, one.steps) == (1e-4, 25)  # overriding one knob keeps the other's default


def test_the_demo_modules_import_each_other_without_a_cycle():
    """Issue 23: demo/base <-> demo/settings <-> demo/world formed an import cycle (counting the imports
    inside functions too). The demo's modules now form a DAG."""
    import ast

    import vrft.demo

    root = Path(vrft.demo.__file__).parent
    names = {f.stem for f in root.glob("*.py") if f.stem != "__init__"}
    deps = {}
    for name in names:
        tree = ast.parse((root / f"{name}.py").read_text())
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vrft.demo."):
                found.add(node.module.split(".")[2])
            elif isinstance(node, ast.ImportFrom) and node.module == "vrft.demo":
                found.update(a.name for a in node.names if a.name in names)
            elif isinstance(node, ast.Import):
                found.update(a.name.split(".")[2] for a in node.names if a.name.startswith("vrft.demo."))
        deps[name] = found - {name}

    def reach(start, seen):
        for d in deps.get(start, ()):
            if d not in seen:
                seen.add(d)
                reach(d, seen)
        return seen

    cycles = sorted(n for n in names if n in reach(n, set()))
    assert not cycles, {n: deps[n] for n in cycles}
