"""vrft.json: reading and checking it, resolving options against it, applying it to records."""

from __future__ import annotations

import json
import logging

import pytest

from vrft.data.records import Record
from vrft.errors import UserError
from vrft.models.contract import (
    ModelContract,
    apply_to_records,
    for_task,
    mention_in_card,
    read_contract,
    resolve_settings,
    shared_prompt,
    write_contract,
)

CONTRACT = ModelContract("detection", "Find {category}.", "think", "norm1000", 3136, 401408)


def _rec(i, task="detection", prompt=None):
    return Record(id=str(i), task=task, image="x.png", width=8, height=8, category="cat", label="cat",
                  prompt=prompt)  # fmt: skip


def test_round_trip_and_card(tmp_path):
    (tmp_path / "README.md").write_text("# my model\n")
    write_contract(tmp_path, CONTRACT)
    assert read_contract(tmp_path) == CONTRACT
    write_contract(tmp_path, CONTRACT)  # the card paragraph is replaced, not repeated
    card = (tmp_path / "README.md").read_text()
    assert card.startswith("# my model") and card.count("vrft.json`") == 1 and "Find {category}." in card
    assert not mention_in_card(tmp_path / "nothing" / "README.md", CONTRACT)
    assert read_contract(tmp_path / "nothing") is None


@pytest.mark.parametrize(
    "change,field",
    [({"task": "counting!"}, "task"), ({"coordinate_convention": "auto"}, "coordinate_convention"),
     ({"min_pixels": -1}, "min_pixels"), ({"prompt": ""}, "prompt"), ({"answer_format": "yaml"}, "answer_format"),
     ({"colour": "red"}, "colour")],
)  # fmt: skip
def test_bad_contract_names_file_and_field(tmp_path, change, field):
    (tmp_path / "vrft.json").write_text(json.dumps({**CONTRACT.to_dict(), **change}))
    with pytest.raises(UserError, match=rf"vrft\.json: .*{field}"):
        read_contract(tmp_path)


def test_bad_contract_is_a_clean_cli_error(tmp_path, capsys):
    from vrft.cli import main

    (tmp_path / "vrft.json").write_bytes(b"\xff\xfe{")
    (tmp_path / "a.png").write_bytes(b"")
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    assert main(["predict", "--model", str(tmp_path), str(tmp_path / "a.png"), "--detect", "cat"]) == 2
    assert "vrft.json: not valid UTF-8 JSON" in capsys.readouterr().err


def test_shared_prompt():
    assert shared_prompt([_rec(0, prompt="a"), _rec(1, prompt="a")]) == "a"
    assert shared_prompt([_rec(0, prompt="a"), _rec(1, prompt="b")]) is None
    assert shared_prompt([_rec(0, prompt="a"), _rec(1)]) is None
    assert shared_prompt([_rec(0), _rec(1)]) is None


def test_resolve_and_apply(tmp_path, caplog):
    write_contract(tmp_path, CONTRACT)
    caplog.set_level(logging.INFO)
    s = for_task(resolve_settings(tmp_path), "detection")
    assert (s.prompt, s.convention, s.min_pixels, s.max_pixels) == (
        "Find {category}.",
        "norm1000",
        3136,
        401408,
    )
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    # records without a prompt get the trained one; a record's own prompt is kept (with a warning)
    out = apply_to_records([_rec(0), _rec(1, prompt="Own {category}.")], s)
    assert [r.prompt for r in out] == ["Find {category}.", "Own {category}."]
    assert "carry their own prompt" in caplog.text
    # explicit options win, with a warning only where they differ
    caplog.clear()
    s = for_task(resolve_settings(tmp_path, prompt="New {category}.", convention="norm1000", max_pixels=9999),
                 "detection")  # fmt: skip
    assert (s.prompt, s.convention, s.max_pixels, s.min_pixels) == ("New {category}.", "norm1000", 9999, 3136)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert (
        len(warned) == 2 and any("--prompt" in w for w in warned) and any("--max-pixels" in w for w in warned)
    )
    assert [r.prompt for r in apply_to_records([_rec(0), _rec(1, prompt="Own")], s)] == [
        "New {category}."
    ] * 2
    # another task: its own default prompt, but the model's coordinates and pixels
    s = for_task(resolve_settings(tmp_path), "classification")
    assert s.prompt is None and s.convention == "norm1000" and s.min_pixels == 3136
    assert "trained for detection" in caplog.text
    # no vrft.json: the options as given, no log line
    caplog.clear()
    s = resolve_settings(tmp_path / "plain")
    assert (s.prompt, s.convention, s.min_pixels, s.contract) == (None, None, None, None)
    assert "vrft.json" not in caplog.text


def test_a_multi_task_contract_is_usable(tmp_path):
    """The shipped demo base (and a mixed-task SFT) says task 'classification+detection' (issue 19 §3)."""
    from importlib.resources import files

    from vrft.models.contract import pick_task

    base = files("vrft.demo") / "base_model"
    contract = read_contract(base)
    assert contract is not None and contract.tasks == ("classification", "detection")
    settings = resolve_settings(base)
    assert settings.task is None  # no single trained task: the command picks one
    assert pick_task(settings, ["detection", "detection"], None) == "detection"  # the records' task
    assert pick_task(settings, ["classification", "detection"], None) is None  # records of both: ask --task
    assert pick_task(settings, ["classification", "detection"], "classification") == "classification"
    picked = for_task(settings, "detection")
    assert picked.task == "detection" and picked.convention == "resized_pixels" and picked.max_pixels == 12544
    (tmp_path / "vrft.json").write_text(json.dumps({**CONTRACT.to_dict(), "task": "detection+nonsense"}))
    with pytest.raises(UserError, match=r"vrft\.json: task"):
        read_contract(tmp_path)


@pytest.mark.slow
def test_the_demo_base_can_be_evaluated(tmp_path):
    from importlib.resources import files

    from tests.evaluate.conftest import detection_records

    from vrft.cli import main
    from vrft.data.records import save_records

    save_records(detection_records(tmp_path), tmp_path / "det.jsonl")
    base = str(files("vrft.demo") / "base_model")
    args = ["eval", "--model", base, "--data", str(tmp_path / "det.jsonl"), "--out", str(tmp_path / "o"),
            "--limit", "1", "--max-new-tokens", "4", "--device", "cpu", "--no-report"]  # fmt: skip
    assert main(args) == 0
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["run"]["task"] == "detection"
