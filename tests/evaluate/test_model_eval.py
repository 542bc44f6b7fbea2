"""End to end with a real tiny Qwen2.5-VL (random weights, built offline): `vrft eval --model`,
the Python API on grounding / classification, and `vrft predict`."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from vrft.cli import main
from vrft.data.records import Record

from .conftest import IMAGES


@pytest.fixture(scope="module")
def tiny_model_dir():
    from vrft.models.tiny import cached_tiny

    return cached_tiny("qwen2_5_vl")


def test_vrft_eval_with_a_tiny_model(det_dir, tiny_model_dir, capsys):
    out = det_dir / "eval"
    rc = main(
        ["eval", "--model", str(tiny_model_dir), "--data", str(det_dir / "det.jsonl"), "--out", str(out),
         "--max-new-tokens", "6", "--batch-size", "4", "--limit", "2", "--categories", "cat,dog", "--device", "cpu"]
    )  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    det = metrics["detection"]
    assert det["num_images"] == 2 and det["num_queries"] == 4 and det["num_asked"] == 4
    assert set(det["per_class_AP"]) == {"cat", "dog"}
    assert metrics["run"]["convention"] == "resized_pixels" and metrics["run"]["num_generations"] == 4
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(isinstance(r["completion"], str) for r in rows)
    assert all({"id", "image_id", "category", "completion", "parsed", "score"} <= set(r) for r in rows)
    assert isinstance(json.loads((out / "coco_results.json").read_text()), list)
    assert (out / "report.html").read_text().count('class="sample"') == 4


class _Recording:
    """A generator wrapping the real one: the same completions, kept for the expected metrics."""

    def __init__(self, inner):
        self.inner, self.texts = inner, []

    def generate(self, requests, desc="generate"):
        out = self.inner.generate(requests, desc)
        self.texts += out
        return out


class _Scripted:
    """A controlled generator: fixed answers, in the order of the requests."""

    def __init__(self, answers):
        self.answers, self.prompts = list(answers), []

    def generate(self, requests, desc="generate"):
        self.prompts += [r.text for r in requests]
        return self.answers[: len(requests)]


def test_api_grounding_and_classification(tmp_path, tiny_model_dir):
    from vrft.evaluate.pipeline import evaluate_model
    from vrft.evaluate.runner import HFGenerator
    from vrft.models.load import load_model_and_processor
    from vrft.rewards.classification import exact_match
    from vrft.tasks import TASKS

    model, processor = load_model_and_processor(tiny_model_dir)
    img = tmp_path / "a.png"
    Image.new("RGB", (120, 80), (10, 200, 30)).save(img)
    common = dict(image=str(img), width=120, height=80, image_path=img)
    recs = [
        Record(id="g", task="grounding", expression="the green field", boxes=[[0, 0, 60, 40]], **common),
        Record(id="c", task="classification", label="field", **common),
    ]
    g = evaluate_model(model, processor, recs, "grounding", tmp_path / "g", max_new_tokens=5, progress=False)
    assert g["grounding"]["num_samples"] == 1 and 0.0 <= g["grounding"]["mIoU"] <= 100.0
    # the real model's (random) answer, scored exactly as the metric must score it
    real = _Recording(HFGenerator(model, processor, progress=False))
    c = evaluate_model(model, processor, recs, "classification", None, max_new_tokens=5, report=False,
                       generator=real)  # fmt: skip
    (text,) = real.texts
    pred = TASKS["classification"].parse(text)
    expected = 100.0 if pred.ok and exact_match(pred.label, "field") else 0.0
    assert c["classification"]["num_samples"] == 1 and c["classification"]["accuracy"] == expected
    assert not (tmp_path / "c").exists()

    # a controlled generator: exact accuracy, substring accuracy and per-class values
    labels = ["field", "meadow", "forest"]
    cls = [Record(id=f"c{i}", task="classification", label=lab, **common) for i, lab in enumerate(labels)]
    scripted = _Scripted([
        "<think>green</think> <answer>Field</answer>",  # exact (case-folded)
        "<think>green</think> <answer>lawn</answer>",  # wrong
        "<think>trees</think> <answer>pine forest</answer>",  # substring only
    ])  # fmt: skip
    m = evaluate_model(None, processor, cls, "classification", tmp_path / "s", generator=scripted,
                       convention="norm1000", report=False)["classification"]  # fmt: skip
    assert m["accuracy"] == pytest.approx(100 / 3) and m["substring_accuracy"] == pytest.approx(200 / 3)
    assert m["per_class_accuracy"] == {"field": 100.0, "forest": 0.0, "meadow": 0.0}
    assert m["parse_fail"] == 0.0 and m["num_samples"] == 3
    assert len(scripted.prompts) == 3 and all(
        "identify the category of the object" in p for p in scripted.prompts
    )


def test_vrft_predict_draws_boxes(tmp_path, tiny_model_dir, capsys, monkeypatch):
    from vrft.evaluate import runner

    img = tmp_path / "pic.png"
    w, h = IMAGES[3]
    Image.new("RGB", (w, h), (255, 255, 255)).save(img)
    # 1. the real model runs end to end (its random output does not parse; that is reported, not raised)
    assert main(["predict", "--model", str(tiny_model_dir), str(img), "--detect", "cat", "--max-new-tokens", "4",
                 "--out", str(tmp_path / "real.png"), "--device", "cpu"]) == 0  # fmt: skip
    assert Image.open(tmp_path / "real.png").size == (w, h)
    capsys.readouterr()

    # 2. a scripted answer: boxes are printed in pixels of the image and drawn there
    def scripted(self, requests, desc="generate"):
        return ["<think>I see a cat on the left.</think> <answer>[{'Position': [10, 20, 110, 220], "
                "'Confidence': 0.87}]</answer>"] * len(requests)  # fmt: skip

    monkeypatch.setattr(runner.HFGenerator, "generate", scripted)
    out = tmp_path / "scripted.png"
    assert main(["predict", "--model", str(tiny_model_dir), str(img), "--detect", "cat", "-v", "--out", str(out),
                 "--convention", "pixels", "--device", "cpu"]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "cat: [10.0, 20.0, 110.0, 220.0] confidence 0.87 (pixels)" in text
    assert "thinking: I see a cat on the left." in text
    drawn = Image.open(out).convert("RGB")
    assert drawn.getpixel((10, 120)) != (255, 255, 255)  # left edge of the box
    assert drawn.getpixel((60, 120)) == (255, 255, 255)  # inside the box
    assert main(["predict", "--model", str(tiny_model_dir), str(img), "--detect", " , "]) == 2
