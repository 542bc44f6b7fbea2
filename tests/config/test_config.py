"""The typed config: schema errors with file:line and suggestions, overrides, validate() rules, check-config."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml

from vrft.cli import main as cli_main
from vrft.config import VrftConfig, load_config, schema_help
from vrft.errors import ConfigError
from vrft.train.preflight import preflight
from vrft.train.preflight import problems as preflight_problems

ROOT = Path(__file__).resolve().parents[2]


def _world(tmp_path: Path, model_type: str = "qwen2_vl", n_records: int = 4) -> tuple[Path, Path]:
    """A fake model directory (config.json only) and a small records file with real images."""
    from PIL import Image

    model = tmp_path / "model"
    model.mkdir(parents=True)
    (model / "config.json").write_text(json.dumps({"model_type": model_type}))
    (tmp_path / "img").mkdir()
    lines = []
    for i in range(n_records):
        Image.new("RGB", (40 + 8 * i, 32), (i * 40, 80, 120)).save(tmp_path / "img" / f"{i}.png")
        lines.append(
            json.dumps(
                {
                    "id": f"r{i}",
                    "task": "detection",
                    "image": f"img/{i}.png",
                    "width": 40 + 8 * i,
                    "height": 32,
                    "category": "square",
                    "boxes": [[2, 3, 20, 30]],
                }
            )  # fmt: skip
        )
    records = tmp_path / "train.jsonl"
    records.write_text("\n".join(lines) + "\n")
    return model, records


def _write(tmp_path: Path, text: str, name: str = "cfg.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _good(tmp_path: Path, **world) -> Path:
    model, records = _world(tmp_path, **world)
    return _write(
        tmp_path,
        f"""\
        model:
          path: {model}
        data:
          train: {records}
          task: detection
        grpo:
          num_generations: 2
          prompts_per_step: 2
        """,
    )


# ----------------------------------------------------------------------------------------- shipped
@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "paper").glob("*.yaml")), ids=lambda p: p.name)
def test_paper_configs_load_through_the_schema(path):
    cfg = load_config(path)
    assert cfg.model.max_pixels == 401408 and cfg.model.min_pixels == 3136
    g = cfg.grpo
    assert (g.num_generations, g.prompts_per_step, g.beta, g.learning_rate) == (8, 16, 0.04, 1e-6)
    assert (g.temperature, g.max_completion_length, g.lr_scheduler, g.warmup) == (1.0, 256, "linear", 0.0)
    assert g.max_steps in (200, 500) or g.epochs == 2.0
    # the model path is a placeholder: the full check names it as missing, with the fix
    with pytest.raises(ConfigError) as err:
        preflight(load_config(path))
    assert "model.path" in str(err.value) and "not found" in str(err.value)


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "paper").glob("*.yaml")), ids=lambda p: p.name)
def test_paper_configs_pass_check_config_with_model_and_train_data_only(path, tmp_path, capsys):
    """data.eval is not read by training: a paper config whose held-out file is absent still checks OK."""
    from tests.train.conftest import write_records

    task = load_config(path).data.task
    model, _ = _world(tmp_path / "w", n_records=1)
    records = write_records(tmp_path / "d", task)
    code = cli_main(["check-config", str(path), f"model.path={model}", f"data.train={records}",
                     f"output.dir={tmp_path / 'run'}"])  # fmt: skip
    assert code == 0, capsys.readouterr().err


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "tiny").glob("*.yaml")), ids=lambda p: p.name)
def test_tiny_configs_load_through_the_schema(path):
    cfg = load_config(path)
    assert cfg.grpo.max_completion_length <= 64 and cfg.grpo.num_generations >= 2


def test_paper_step_counts():
    paper = ROOT / "configs" / "paper"
    assert load_config(paper / "lisa.yaml").grpo.max_steps == 500
    assert load_config(paper / "fewshot_flowers.yaml").grpo.max_steps == 200
    assert load_config(paper / "coco_ov.yaml").grpo.epochs == 2.0


def test_accelerate_configs_parse():
    from accelerate.commands.config.config_args import load_config_from_file

    kinds = {p.name: load_config_from_file(str(p)) for p in (ROOT / "configs" / "accelerate").glob("*.yaml")}
    assert {"ddp.yaml", "zero2.yaml", "zero3.yaml", "fsdp.yaml", "multinode_zero3.yaml"} <= set(kinds)
    assert kinds["zero3.yaml"].deepspeed_config["zero_stage"] == 3
    assert kinds["zero2.yaml"].deepspeed_config["zero_stage"] == 2
    assert kinds["fsdp.yaml"].fsdp_config["fsdp_version"] == 2
    assert kinds["multinode_zero3.yaml"].num_machines == 2


# ------------------------------------------------------------------------------------------ schema
def test_good_config_resolves_with_defaults(tmp_path):
    cfg = load_config(_good(tmp_path))
    assert isinstance(cfg, VrftConfig)
    assert cfg.grpo.beta == 0.04 and cfg.rewards.preset == "default" and cfg.output.logging_steps == 1
    again = yaml.safe_load(cfg.to_yaml())
    assert again["grpo"]["num_generations"] == 2 and again["model"]["lora"]["enabled"] is False


def test_unknown_key_gets_suggestion_file_and_line(tmp_path):
    path = _write(
        tmp_path,
        """\
        model:
          path: m
        data:
          train: t.jsonl
        grpo:
          beta: 0.0
          num_generation: 4
        """,
    )
    with pytest.raises(ConfigError) as err:
        load_config(path, check=False)
    msg = str(err.value)
    assert f"{path}:7: unknown key 'grpo.num_generation' — did you mean 'grpo.num_generations'?" in msg


def test_unknown_section_and_wrong_types_reported_together(tmp_path):
    path = _write(
        tmp_path,
        """\
        model:
          path: m
          lora:
            enabeld: true
        data:
          train: t.jsonl
        gpro:
          beta: 0.1
        grpo:
          beta: lots
          max_completion_length: 1.5
        """,
    )
    with pytest.raises(ConfigError) as err:
        load_config(path, check=False)
    msg = str(err.value)
    assert "4 problems" in msg
    assert f"{path}:4: unknown key 'model.lora.enabeld' — did you mean 'model.lora.enabled'?" in msg
    assert f"{path}:7: unknown key 'gpro' — did you mean 'grpo'?" in msg
    assert f"{path}:10: grpo.beta:" in msg and "'lots'" in msg
    assert f"{path}:11: grpo.max_completion_length:" in msg


def test_missing_required_and_yaml_syntax(tmp_path):
    with pytest.raises(ConfigError, match="missing required key 'data'"):
        load_config(_write(tmp_path, "model:\n  path: m\n"), check=False)
    with pytest.raises(ConfigError, match=r"bad\.yaml:3: invalid YAML"):
        load_config(
            _write(tmp_path, "model:\n  path: m\n  x: a: b\ndata: {}\n", name="bad.yaml"), check=False
        )
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_overrides_are_yaml_scalars_and_named_in_errors(tmp_path):
    cfg = load_config(
        _good(tmp_path),
        ["grpo.beta=0", "model.lora.enabled=true", "model.lora.target_modules=[q_proj, v_proj]", "name=x y"],
    )
    assert cfg.grpo.beta == 0.0 and cfg.model.lora.enabled is True
    assert cfg.model.lora.target_modules == ["q_proj", "v_proj"] and cfg.name == "x y"
    with pytest.raises(ConfigError) as err:
        load_config(_good(tmp_path / "b"), ["grpo.temperatur=0.7"])
    assert (
        "override 'grpo.temperatur=0.7': unknown key 'grpo.temperatur' — did you mean 'grpo.temperature'?"
        in str(err.value)
    )
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(_good(tmp_path / "c"), ["grpo.beta"])


def test_load_from_dict():
    cfg = load_config({"model": {"path": "m"}, "data": {"train": "t"}}, ["grpo.seed=3"], check=False)
    assert cfg.grpo.seed == 3 and cfg.where("grpo.seed") == "override 'grpo.seed=3'"


# -------------------------------------------------------------------------------------- validate()
def test_validate_reports_every_problem_at_once(tmp_path):
    path = _write(
        tmp_path,
        """\
        model:
          path: /nonexistent/model
          min_pixels: 5000
          max_pixels: 4000
        data:
          train: /nonexistent/train.jsonl
          task: detecton
        rewards:
          preset: visual_rft
          weights: {fromat: 1.0}
          extra: ["no_such_pkg.mod:fn"]
        grpo:
          num_generations: 1
          prompts_per_step: 3
          per_device_prompts: 2
        """,
    )
    with pytest.raises(ConfigError) as err:
        preflight(load_config(path, check=False))
    msg = str(err.value)
    expected = [
        f"{path}:13: grpo.num_generations: must be at least 2",
        f"{path}:14: grpo.prompts_per_step:",
        f"{path}:3: model.min_pixels:",
        f"{path}:7: data.task: unknown task 'detecton' — did you mean 'detection'?",
        f"{path}:9: rewards.preset: unknown preset 'visual_rft' — did you mean 'visual-rft'?",
        "rewards.weights.fromat: unknown reward 'fromat' — did you mean 'format'?",
        "rewards.extra.0: 'no_such_pkg.mod:fn': cannot import module 'no_such_pkg.mod'",
        f"{path}:2: model.path: model directory not found: /nonexistent/model",
        f"{path}:6: data.train: records file not found: /nonexistent/train.jsonl",
    ]
    for line in expected:
        assert line in msg, line
    assert msg.startswith(f"{len(expected)} problems in the config")


def test_each_rule_alone(tmp_path):
    def problems(*overrides, sub="x", **world):
        found, _ = preflight_problems(load_config(_good(tmp_path / sub, **world), list(overrides), check=False))
        return found

    assert problems(sub="ok") == []
    assert any("at least 2" in p for p in problems("grpo.num_generations=1", sub="g"))
    assert any(
        "multiple of grpo.per_device_prompts" in p for p in problems("grpo.per_device_prompts=4", sub="d")
    )
    assert any("unknown task" in p for p in problems("data.task=segmentation", sub="t"))
    assert any("unknown preset" in p for p in problems("rewards.preset=fancy", sub="p"))
    assert any("unknown reward 'iou'" in p for p in problems("rewards.weights={iou: 1}", sub="r"))
    assert any("has no 'grounding' records" in p for p in problems("data.task=grounding", sub="n"))
    assert problems("data.eval=/no/eval.jsonl", sub="e") == []  # training never reads data.eval
    # an external reward that imports is fine, and can be weighted by its function name
    assert problems("rewards.extra=['os.path:join']", "rewards.weights={join: 0.5}", sub="x1") == []
    assert any("has no function" in p for p in problems("rewards.extra=['os.path:nope']", sub="x2"))


def test_unknown_model_family_asks_for_the_convention(tmp_path):
    path = _good(tmp_path / "a", model_type="fancy_vlm")
    with pytest.raises(ConfigError) as err:
        preflight(load_config(path))
    assert "model.coordinate_convention" in str(err.value) and "fancy_vlm" in str(err.value)
    cfg = load_config(path, ["model.coordinate_convention=norm1000"])
    preflight(cfg)
    assert cfg.model.coordinate_convention == "norm1000"
    assert preflight_problems(load_config(_good(tmp_path / "b", model_type="qwen2_5_vl")))[0] == []


def test_path_checks_can_be_skipped(tmp_path):
    cfg = load_config({"model": {"path": "/no/model"}, "data": {"train": "/no/t.jsonl", "task": "grounding"}})
    assert cfg.data.task == "grounding"
    assert preflight(cfg, check_paths=False).records == []


def test_schema_help_lists_every_key_with_its_description():
    text = schema_help()
    assert "grpo.num_generations = 8" in text and "G: completions sampled per prompt" in text
    assert "model.lora.include_vision" in text


# ------------------------------------------------------------------------------------ check-config
def test_check_config_cli(tmp_path, capsys):
    good = _good(tmp_path)
    assert cli_main(["check-config", str(good), "grpo.beta=0.1"]) == 0
    out = capsys.readouterr().out
    assert yaml.safe_load(out)["grpo"]["beta"] == 0.1
    assert cli_main(["check-config", str(good), "grpo.num_generations=1", "data.task=x"]) == 2
    err = capsys.readouterr().err
    assert "vrft check-config: error: 2 problems" in err and "Traceback" not in err
    paper = ROOT / "configs" / "paper" / "fewshot_coco.yaml"
    assert cli_main(["check-config", str(paper)]) == 2
    assert "model.path" in capsys.readouterr().err
    assert cli_main(["check-config", str(paper), "--no-path-checks"]) == 0


def test_the_schema_reads_no_other_file_and_imports_no_registry(tmp_path):
    """config.py is the schema (issue 23 §1): loading a config touches neither the model, the records nor
    the rewards / tasks registries; `vrft.train.preflight` does, once."""
    import subprocess
    import sys

    code = (
        "import sys, vrft.config as c\n"
        "cfg = c.load_config({'model': {'path': '/no/model'}, 'data': {'train': '/no/t.jsonl', 'task': 'x'}})\n"
        "bad = [m for m in ('vrft.rewards', 'vrft.tasks', 'vrft.data.records', 'vrft.models.load', 'torch')"
        " if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
