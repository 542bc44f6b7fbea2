"""The trained model remembers how it must be asked: training writes vrft.json, predict and eval use it."""

from __future__ import annotations

import json
import logging

import pytest

from vrft.cli import main

pytestmark = pytest.mark.slow  # train runs then evaluation (~2 s)

PROMPT = "Point at each {category} please. <answer>[...]</answer>"


def _with_prompt(path, prompt):
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    for obj in lines:
        obj["prompt"] = prompt
    path.write_text("".join(json.dumps(o) + "\n" for o in lines))


@pytest.fixture
def sent(monkeypatch):
    """The user texts the generator hands to the processor's chat template (the real model still runs)."""
    from vrft.evaluate import runner

    texts: list[str] = []
    chat = runner.HFGenerator._chat

    def spy(self, text, *rest):
        texts.append(text)
        return chat(self, text, *rest)

    monkeypatch.setattr(runner.HFGenerator, "_chat", spy)
    return texts


def test_grpo_model_is_asked_with_its_training_prompt(make_config, tmp_path, sent, caplog, capsys):
    from vrft.train import run_grpo

    cfg = make_config(task="detection", overrides=["grpo.max_steps=1", "output.save_steps=1"])
    _with_prompt(tmp_path / "data" / "detection.jsonl", PROMPT)
    final = run_grpo(cfg)

    expected = {
        "task": "detection",
        "prompt": PROMPT,
        "answer_format": "think",
        "coordinate_convention": "resized_pixels",  # qwen2_5_vl's own, resolved from 'auto'
        "min_pixels": 32 * 32,
        "max_pixels": 64 * 64,
        # the many-image / video budgets of the config (issue 20), defaults here
        "max_images": 4,
        "video_fps": 2.0,
        "video_max_frames": 8,
        "video_max_pixels": 12544,
        "video_min_pixels": 3136,
        "tools": None,  # no tools offered (issue 21; docs/tools.md)
    }
    assert json.loads((final / "vrft.json").read_text()) == expected
    assert json.loads((final.parent / "checkpoint-1" / "vrft.json").read_text()) == expected
    card = (final.parent / "README.md").read_text()  # TRL's model card of the run
    assert "vrft.json" in card and PROMPT in card

    # predict: exactly the training template, filled in; one log line names vrft.json
    image = tmp_path / "data" / "img" / "0.png"
    caplog.set_level(logging.INFO)
    args = ["predict", "--model", str(final), str(image), "--detect", "square,circle", "--max-new-tokens", "2",
            "--device", "cpu", "--out", str(tmp_path / "p.png"), "-v"]  # fmt: skip
    assert main(args) == 0
    assert sorted(sent) == sorted(PROMPT.replace("{category}", c) for c in ("square", "circle"))
    assert "prompt: Point at each square please." in capsys.readouterr().out
    used = [r for r in caplog.records if "asking the model as it was trained" in r.getMessage()]
    assert len(used) == 1 and "vrft.json" in used[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "overrides" in r.getMessage()]

    # an explicit option overrides the training setting, with a warning
    sent.clear()
    caplog.clear()
    assert main([*args, "--prompt", "default", "--max-pixels", str(48 * 48)]) == 0
    assert len(sent) == 2 and all(
        t.startswith("Detect all objects belonging to the category '") for t in sent
    )
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "--prompt" in warned and "--max-pixels 2304 overrides" in warned

    # eval on records WITHOUT a prompt asks every query with the training template
    data = tmp_path / "data" / "detection.jsonl"
    plain = tmp_path / "plain.jsonl"
    plain.write_text(
        "".join(
            json.dumps({k: v for k, v in json.loads(x).items() if k != "prompt"}) + "\n"
            for x in data.read_text().splitlines()
        )
    )
    (tmp_path / "plain_img").symlink_to(tmp_path / "data" / "img")
    plain.write_text(plain.read_text().replace('"img/', '"plain_img/'))
    sent.clear()
    assert main(["eval", "--model", str(final), "--data", str(plain), "--out", str(tmp_path / "ev"),
                 "--max-new-tokens", "2", "--device", "cpu", "--no-report"]) == 0  # fmt: skip
    records = [json.loads(x) for x in plain.read_text().splitlines()]
    cats = sorted({r["category"] for r in records})
    n_images = len({r["image_id"] for r in records})
    assert len(sent) == n_images * len(cats)  # all-categories protocol
    assert set(sent) == {PROMPT.replace("{category}", c) for c in cats}
    run = json.loads((tmp_path / "ev" / "metrics.json").read_text())["run"]
    assert run["convention"] == "resized_pixels" and run["prompt"] == PROMPT and run["model_contract"] is True


def test_sft_writes_the_contract_with_the_default_prompt(make_config):
    from vrft.models.contract import read_contract
    from vrft.train import run_sft

    cfg = make_config(task="classification", overrides=["sft.max_steps=1"])
    final = run_sft(cfg)
    contract = read_contract(final)
    assert contract is not None
    assert contract.task == "classification" and contract.prompt is None  # records carry no prompt
    assert contract.coordinate_convention == "resized_pixels"
    assert (contract.min_pixels, contract.max_pixels) == (32 * 32, 64 * 64)
