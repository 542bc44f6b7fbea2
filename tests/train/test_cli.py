"""`vrft train` / `vrft sft` on a shipped tiny config; bad configs fail before any model is loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from vrft.cli import main as cli_main
from vrft.errors import ConfigError

from .conftest import read_jsonl, write_records

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # a GRPO run through the CLI (~3 s)
def test_shipped_tiny_config_trains_through_the_cli(tmp_path, capsys):
    from vrft.models.tiny import cached_tiny

    records = write_records(tmp_path / "data", "detection", n=4)
    common = [f"model.path={cached_tiny('qwen2_5_vl')}", f"data.train={records}", f"output.dir={tmp_path / 'run'}",
              "grpo.max_completion_length=8", "grpo.num_generations=2"]  # fmt: skip
    config = str(ROOT / "configs" / "tiny" / "detection.yaml")
    assert cli_main(["train", config, *common, "grpo.max_steps=1"]) == 0
    assert "trained model:" in capsys.readouterr().out
    assert [r["step"] for r in read_jsonl(tmp_path / "run" / "metrics.jsonl") if "train/reward" in r] == [1]
    # the same config gives the SFT baseline, in its own directory
    assert cli_main(["sft", config, *common, "sft.max_steps=1"]) == 0
    assert (tmp_path / "run-sft" / "final" / "config.json").is_file()
    # running again into a finished run is refused with a way out (exit 2, no traceback)
    assert cli_main(["train", config, *common, "grpo.max_steps=1"]) == 2
    assert "output.overwrite=true" in capsys.readouterr().err
    # ... and a finished run is not "resumed" into a longer one: refused, saying how to go on (issue 19
    # §2c: it used to log lr 0.0 and repeat steps); --resume may come after the overrides
    assert cli_main(["train", config, *common, "grpo.max_steps=2", "output.save_steps=1", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "is finished" in err and "model.path=" in err and "Traceback" not in err


def test_bad_config_fails_before_any_model_is_loaded(tmp_path, monkeypatch):
    import vrft.models.load

    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded for a bad config")

    monkeypatch.setattr(vrft.models.load, "load_model_and_processor", no_loading)
    from vrft.config import load_config
    from vrft.train import run_grpo, run_sft

    cfg = load_config(
        {"model": {"path": str(tmp_path / "no-model")}, "data": {"train": str(tmp_path / "no.jsonl")},
         "grpo": {"num_generations": 1}, "rewards": {"weights": {"fromat": 1.0}}},
        check=False,
    )  # fmt: skip
    for run in (run_grpo, run_sft):
        with pytest.raises(ConfigError) as err:
            run(cfg)
        msg = str(err.value)
        assert "4 problems" in msg
        for needle in ("grpo.num_generations", "model.path", "data.train", "'fromat'"):
            assert needle in msg
    assert not (tmp_path / "runs").exists()
