"""What a run checks before it loads a model (`vrft.train.preflight`, issue 19 §2/§2c/§3): each case is
one line from `vrft check-config` (exit 2, no traceback), the same check a run does."""

from __future__ import annotations

import json
import os
import shutil
import types
from pathlib import Path

import pytest
import yaml

from vrft.cli import main as cli_main

from .conftest import StopAfter, read_jsonl, write_records


def _config(root: Path, text: str = "", task: str = "detection") -> Path:
    from vrft.models.tiny import cached_tiny

    records = write_records(root / "data", task)
    path = root / "cfg.yaml"
    path.write_text(
        f"model:\n  path: {cached_tiny('qwen2_5_vl')}\n  min_pixels: 1024\n  max_pixels: 4096\n"
        f"data:\n  train: {records}\n  task: {task}\noutput:\n  dir: {root / 'run'}\n{text}",
        encoding="utf-8",
    )
    return path


def _check(capsys, *argv) -> tuple[int, str]:
    code = cli_main(["check-config", *map(str, argv)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, err


def _error(capsys, *argv) -> str:
    code, err = _check(capsys, *argv)
    assert code == 2, err
    message = err.split("vrft check-config: error: ", 1)[1].rstrip("\n")
    assert "\n" not in message, message
    return message


def test_report_to_names_the_missing_extra_and_takes_a_plain_string(tmp_path, capsys, monkeypatch):
    import importlib.util

    cfg = _config(tmp_path)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a)
    )
    msg = _error(capsys, cfg, "output.report_to=[wandb]")
    assert "output.report_to" in msg and 'pip install "vrft[wandb]"' in msg
    if real("tensorboard") is not None:  # a plain name is a list of one
        code, err = _check(capsys, cfg, "output.report_to=tensorboard")
        assert code == 0, err
    from vrft.config import load_config

    assert load_config(cfg, ["output.report_to=tensorboard"]).output.report_to == ["tensorboard"]
    assert load_config(cfg, ["output.report_to=none"]).output.report_to == []


def test_an_unknown_override_key_is_blamed_on_the_override(tmp_path, capsys):
    cfg = _config(tmp_path, "grpo:\n  beta: 0.0\n")
    msg = _error(capsys, cfg, "grpo.nonexistent.deep=1")
    assert msg.startswith("override 'grpo.nonexistent.deep=1': unknown key 'grpo.nonexistent'"), msg


def test_a_file_as_model_and_a_fifo_as_records_say_what_they_are(tmp_path, capsys):
    cfg = _config(tmp_path)
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    msg = _error(capsys, cfg, f"model.path={text}")
    assert "model.path" in msg and "is a file, not a model directory" in msg and "not found" not in msg
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    msg = _error(capsys, cfg, f"data.train={fifo}")
    assert (
        "data.train" in msg and "is a FIFO (named pipe), not a records file" in msg and "not found" not in msg
    )


@pytest.mark.parametrize("out", ["/", "/usr", "/etc/vrft-run"])
def test_system_directories_are_refused_as_output(tmp_path, capsys, out):
    msg = _error(capsys, _config(tmp_path), f"output.dir={out}")
    assert msg.count("output.dir") >= 1 and ("filesystem root" in msg or "system directory" in msg)


def test_an_output_dir_holding_an_input_is_refused(tmp_path, capsys, monkeypatch):
    cfg = _config(tmp_path)
    data = tmp_path / "data"
    msg = _error(capsys, cfg, f"output.dir={data}")  # holds data.train
    assert "output.dir" in msg and "holds the input" in msg and "detection.jsonl" in msg
    # an external reward's module file is an input too
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "my_reward_mod.py").write_text("def r(completions, **kw):\n    return [0.0] * len(completions)\n")
    monkeypatch.syspath_prepend(str(lib))
    msg = _error(capsys, cfg, "rewards.extra=['my_reward_mod:r']", f"output.dir={lib}")
    assert "holds the input" in msg and "my_reward_mod.py" in msg
    code, err = _check(capsys, cfg, "rewards.extra=['my_reward_mod:r']")
    assert code == 0, err


def test_lora_targets_that_match_nothing_are_found_before_the_model_loads(tmp_path, capsys):
    cfg = _config(tmp_path)
    msg = _error(capsys, cfg, "model.lora.enabled=true", "model.lora.target_modules=[q_projj]")
    assert "model.lora.target_modules" in msg and "q_projj" in msg and "match no module" in msg
    code, err = _check(capsys, cfg, "model.lora.enabled=true", "model.lora.target_modules=[q_proj,nothing]")
    assert code == 0, err  # peft needs one match, not all
    # the vision tower is excluded unless include_vision: a name only it has matches nothing
    msg = _error(capsys, cfg, "model.lora.enabled=true", "model.lora.target_modules=[patch_embed]")
    assert "outside the vision tower" in msg


def test_lora_targets_are_checked_again_when_the_model_is_built():
    from vrft.config import load_config
    from vrft.errors import ConfigError
    from vrft.models.tiny import cached_tiny
    from vrft.train.builder import lora_config
    from vrft.train.preflight import skeleton

    path = cached_tiny("qwen2_5_vl")
    cfg = load_config({"model": {"path": str(path), "lora": {"enabled": True, "target_modules": ["nope"]}},
                       "data": {"train": "t.jsonl"}})  # fmt: skip
    with pytest.raises(ConfigError, match="model.lora.target_modules: .*'nope'"):
        lora_config(cfg, skeleton(str(path)))


def test_sft_max_length_below_the_image_tokens_is_refused(tmp_path, capsys):
    cfg = _config(tmp_path)
    msg = _error(capsys, cfg, "sft.max_length=8")
    assert "sft.max_length" in msg and "image tokens" in msg
    from vrft.config import load_config
    from vrft.train.preflight import preflight, prompt_tokens_needed

    loaded = load_config(cfg)
    need, _ = prompt_tokens_needed(loaded, preflight(loaded).records)
    assert need is not None and need > 8
    code, err = _check(capsys, cfg, f"sft.max_length={need}")
    assert code == 0, err


def test_data_eval_is_not_checked_by_training(tmp_path, capsys):
    code, err = _check(capsys, _config(tmp_path), f"data.eval={tmp_path / 'absent.jsonl'}")
    assert code == 0, err


# --------------------------------------------------------------------------------------- SFT data
def _mixed_records(root: Path) -> Path:
    det = write_records(root / "data", "detection", n=4).read_text().splitlines()
    cls = write_records(root / "data", "classification", n=4).read_text().splitlines()
    path = root / "data" / "mix.jsonl"
    path.write_text("\n".join(det + cls) + "\n")
    return path


def test_mixed_task_sft_keeps_max_samples_seed_and_answer_format(make_config, tmp_path):
    """`run_sft(mixed_tasks=True)` trains on the same selection as one task would: data.max_samples (seeded
    by data.seed), data.answer_format; it used to reload data.train unfiltered."""
    from vrft.train import run_sft

    mix = _mixed_records(tmp_path / "m")
    seen = {}

    def hook(trainer):
        seen["ids"] = list(trainer.train_dataset["record_id"])
        seen["prompts"] = [p[0]["content"][-1]["text"] for p in trainer.train_dataset["prompt"]]
        raise KeyboardInterrupt  # stop before training: the dataset is what is checked

    cfg = make_config(overrides=[f"data.train={mix}", "data.max_samples=3", "data.seed=5",
                                 "data.answer_format=answer_only", "sft.max_steps=1"])  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        run_sft(cfg, mixed_tasks=True, trainer_hook=hook)
    from vrft.data.records import load_records, sample_records

    expected = [r.id for r in sample_records(load_records(mix), 3, 5)]
    assert seen["ids"] == expected
    assert all("<think>" not in p for p in seen["prompts"])  # answer-only prompts


def test_data_shuffle_applies_to_sft(make_config):
    from vrft.train.processes import Precision
    from vrft.train.sft import sft_args

    precision = Precision("float32", False, False, True)
    off = sft_args(make_config(overrides=["data.shuffle=false"]), Path("o"), precision)
    on = sft_args(make_config(), Path("o"), precision)
    assert off.train_sampling_strategy == "sequential" and on.train_sampling_strategy == "random"


# ------------------------------------------------------------------------------------- run directory
def test_a_failed_run_releases_its_output_dir(make_config, monkeypatch):
    """Inside a longer process (demo, benchmarks), a run that fails must not keep its lock."""
    from vrft import locks, outputs
    from vrft.train import builder, run_grpo, run_sft

    def boom(*args, **kwargs):
        raise RuntimeError("failed while loading")

    monkeypatch.setattr(builder, "load_policy", boom)
    for run in (run_grpo, run_sft):
        cfg = make_config()
        with pytest.raises(RuntimeError, match="failed while loading"):
            run(cfg)
        out = cfg.output.dir if run is run_grpo else cfg.sft_output_dir
        assert os.path.realpath(out) not in locks._HELD
        assert not (Path(out) / outputs.LOCK_NAME).exists()


def _checkpoint(out: Path, step: int, max_steps: int) -> Path:
    ckpt = out / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": step, "max_steps": max_steps}))
    (ckpt / "adapter_model.bin").write_bytes(b"x")
    return ckpt


def test_resuming_a_finished_run_is_refused_with_how_to_go_on(tmp_path):
    from vrft.errors import UserError
    from vrft.train.run_dir import prepare_output_dir, release_output_dir

    out = tmp_path / "run"
    prepare_output_dir(out, resume=False)
    release_output_dir(out)
    _checkpoint(out, 10, 10)
    (out / "final").mkdir()
    with pytest.raises(UserError, match=r"is finished .*step 10 of 10.*model.path=.*final.*overwrite"):
        prepare_output_dir(out, resume=True)
    assert not (out / ".vrft.lock").exists()
    # finished without checkpoints (output.save_steps unset): refused too, instead of training from scratch
    shutil.rmtree(out / "checkpoint-10")
    with pytest.raises(UserError, match=r"finished run .*no checkpoint.*model.path="):
        prepare_output_dir(out, resume=True)


def test_resuming_with_another_length_is_refused(tmp_path):
    from vrft.errors import UserError
    from vrft.train.run_dir import prepare_output_dir, release_output_dir

    out = tmp_path / "run"
    prepare_output_dir(out, resume=False)
    release_output_dir(out)
    (out / "config.resolved.yaml").write_text(yaml.safe_dump({"grpo": {"max_steps": 10, "epochs": 1.0}}))
    _checkpoint(out, 5, 10)
    with pytest.raises(UserError, match=r"grpo.max_steps 10 -> 15"):
        prepare_output_dir(out, resume=True, schedule={"grpo.max_steps": 15, "grpo.epochs": 1.0})
    _, ckpt = prepare_output_dir(out, resume=True, schedule={"grpo.max_steps": 10, "grpo.epochs": 1.0})
    release_output_dir(out)
    assert ckpt == str(out / "checkpoint-5")


def test_metrics_never_repeat_a_step(tmp_path):
    from vrft.train.callbacks import MetricsWriter

    path = tmp_path / "metrics.jsonl"
    writer = MetricsWriter(path)
    state = types.SimpleNamespace(is_world_process_zero=True, global_step=1)
    writer.on_log(None, state, None, logs={"loss": 1.0})
    state.global_step = 2
    writer.on_log(None, state, None, logs={"loss": 0.5})
    writer.on_log(None, state, None, logs={"train_runtime": 3.0})  # the Trainer's summary at the last step
    rows = read_jsonl(path)
    assert [r["step"] for r in rows] == [1, 2]
    assert rows[1]["train/loss"] == 0.5 and rows[1]["train/train_runtime"] == 3.0
    # a writer of a resumed run (new object, same file) merges too
    MetricsWriter(path).on_log(None, state, None, logs={"loss": 0.25})
    assert [r["step"] for r in read_jsonl(path)] == [1, 2]


def test_a_resumed_run_logs_each_step_once(make_config, tmp_path):
    """Stopped after step 2 of 4, resumed: metrics.jsonl has steps 1..4 once each (the summary merged)."""
    from vrft.train import run_grpo

    common = ["grpo.max_steps=4", "output.save_steps=2"]
    run_grpo(make_config(overrides=common), extra_callbacks=[StopAfter(2)])
    run_grpo(make_config(overrides=[*common, "output.resume=true"]))
    steps = [r["step"] for r in read_jsonl(tmp_path / "run" / "metrics.jsonl")]
    assert steps == sorted(set(steps)) and steps[-1] == 4


# ------------------------------------------------------------------------------------ rank checksums
def test_stale_rank_files_of_a_larger_run_do_not_fail_the_comparison(tmp_path, caplog):
    import torch

    from vrft.train.finalize import weights_checksum, write_rank_checksum

    model = torch.nn.Linear(2, 2)
    sums = weights_checksum(model)
    folder = tmp_path / "rank_checksums"
    folder.mkdir()
    (folder / "rank1.json").write_text(json.dumps(sums))
    (folder / "rank2.json").write_text(
        json.dumps({"weight": "stale", "bias": "stale"})
    )  # an earlier 3-process run
    acc = types.SimpleNamespace(
        num_processes=2, distributed_type=types.SimpleNamespace(value="MULTI_CPU"), process_index=0,
        is_main_process=True, unwrap_model=lambda m: m, wait_for_everyone=lambda: None,
    )  # fmt: skip
    with caplog.at_level("INFO", logger="vrft.train.finalize"):
        write_rank_checksum(types.SimpleNamespace(accelerator=acc, model=model), tmp_path)
    assert "DIFFERENT" not in caplog.text and "all 2 processes ended with identical weights" in caplog.text
    assert sorted(p.name for p in folder.iterdir()) == ["rank0.json", "rank1.json"]


def test_a_run_reads_its_records_and_image_headers_once(make_config, monkeypatch):
    """The checks and the run share one read of data.train and of each image header (issue 23 §1)."""
    from vrft.data import records as records_module
    from vrft.train import run_grpo, run_sft

    calls = {"load_records": 0, "image_problems": 0}
    for name in calls:
        real = getattr(records_module, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            calls[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(records_module, name, counted)

    def stop(trainer):
        raise KeyboardInterrupt

    for run in (run_grpo, run_sft):
        for name in calls:
            calls[name] = 0
        with pytest.raises(KeyboardInterrupt):
            run(make_config(), trainer_hook=stop)
        assert calls == {"load_records": 1, "image_problems": 1}, (run.__name__, calls)


def test_system_directory_rule():
    from vrft.train.preflight import system_dir_problem

    assert system_dir_problem("/") == "is the filesystem root"
    assert "system directory /proc" in system_dir_problem("/proc/x")
    assert system_dir_problem("/var") and system_dir_problem("/tmp")
    assert system_dir_problem("/var/tmp/my-run") is None and system_dir_problem("/tmp/run") is None
    assert system_dir_problem(os.path.expanduser("~")) is not None
