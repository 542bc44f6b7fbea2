"""`vrft eval --backend vllm` with a stand-in `vllm` module (vLLM itself needs a CUDA GPU): the pixel
budget reaches vLLM as `mm_processor_kwargs` and equals the one answers are decoded with, `--batch-size`
becomes `max_num_seqs`, and a `--device` vLLM cannot honour is refused with a message."""

from __future__ import annotations

import json
import re
import sys
from types import ModuleType, SimpleNamespace

import pytest

from vrft.boxes import Frame
from vrft.cli import main
from vrft.data.records import save_records

from .conftest import CATEGORIES, GT, detection_records

MIN_PIXELS, MAX_PIXELS = 200_704, 401_408  # not the tiny model's saved budget


class FakeLLM:
    """Answers every detection prompt with the GT boxes, written in the resized-pixel frame of the budget
    vLLM was given (the model's saved budget when none), as a real Qwen2.5-VL would see the image."""

    instances: list[FakeLLM] = []

    def __init__(self, model, **kwargs):
        self.model, self.kwargs = model, kwargs
        FakeLLM.instances.append(self)
        from vrft.models.load import load_processor, pixel_budget

        saved = pixel_budget(load_processor(model))  # what vLLM reads from the model directory
        budget = kwargs.get("mm_processor_kwargs") or {}
        self.budget = (budget.get("min_pixels", saved[0]), budget.get("max_pixels", saved[1]))

    def generate(self, prompts, params):
        outs = []
        for p in prompts:
            image = p["multi_modal_data"]["image"]
            cat = next(c for c in CATEGORIES if re.search(rf"\b{c}\b", p["prompt"]))
            iid = {(200, 100): 1, (300, 300): 2, (640, 480): 3}[image.size]
            frame = Frame.for_image(*image.size, "resized_pixels", factor=28, min_pixels=self.budget[0],
                                    max_pixels=self.budget[1])  # fmt: skip
            boxes = [frame.encode(b) for b in GT.get((iid, cat), [])]
            items = ", ".join(f"{{'Position': {b}, 'Confidence': 0.9}}" for b in boxes)
            text = f"<answer>[{items}]</answer>" if boxes else "<answer>No Objects</answer>"
            outs.append(SimpleNamespace(outputs=[SimpleNamespace(text=text)]))
        return outs


@pytest.fixture
def fake_vllm(monkeypatch):
    module = ModuleType("vllm")
    module.LLM = FakeLLM
    module.SamplingParams = lambda **kw: SimpleNamespace(**kw)
    monkeypatch.setitem(sys.modules, "vllm", module)
    FakeLLM.instances = []
    return FakeLLM


def _run(tmp_path, *extra):
    from vrft.models.tiny import cached_tiny

    save_records(detection_records(tmp_path), tmp_path / "det.jsonl")
    out = tmp_path / "out"
    argv = ["eval", "--backend", "vllm", "--model", str(cached_tiny("qwen2_5_vl")), "--data",
            str(tmp_path / "det.jsonl"), "--out", str(out), "--no-report", *extra]  # fmt: skip
    return main(argv), out


def test_vllm_gets_the_decoding_pixel_budget_and_batch_size(tmp_path, fake_vllm):
    rc, out = _run(
        tmp_path, "--min-pixels", str(MIN_PIXELS), "--max-pixels", str(MAX_PIXELS), "--batch-size", "3"
    )
    assert rc == 0
    (llm,) = fake_vllm.instances
    assert llm.kwargs["mm_processor_kwargs"] == {"min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS}
    assert llm.kwargs["max_num_seqs"] == 3
    assert llm.kwargs["limit_mm_per_prompt"] == {"image": 1}
    metrics = json.loads((out / "metrics.json").read_text())
    # answers written in vLLM's frame are read back in the same frame: every GT box found exactly
    assert metrics["detection"]["AP50"] == pytest.approx(100.0)  # 0.0 when vLLM resized with another budget


def test_default_budget_is_the_processors(tmp_path, fake_vllm):
    from vrft.models.load import load_processor, pixel_budget
    from vrft.models.tiny import cached_tiny

    rc, _ = _run(tmp_path)
    assert rc == 0
    lo, hi = pixel_budget(load_processor(cached_tiny("qwen2_5_vl")))
    assert fake_vllm.instances[0].kwargs["mm_processor_kwargs"] == {"min_pixels": lo, "max_pixels": hi}


@pytest.mark.parametrize(
    "device, message", [("cpu", "runs on CUDA GPUs only"), ("cuda:1", "CUDA_VISIBLE_DEVICES=1")]
)
def test_device_vllm_cannot_honour_is_refused(tmp_path, fake_vllm, capsys, device, message):
    rc, _ = _run(tmp_path, "--device", device)
    assert rc == 2
    assert message in capsys.readouterr().err
    assert fake_vllm.instances == []  # refused before vLLM loads anything
