"""`vrft eval --paper` and `--presence-from`: the reference's evaluation settings reach generation,
the processor and the scores."""

from __future__ import annotations

import json
import re

import pytest

from vrft.cli import main
from vrft.data.records import Record, load_records
from vrft.evaluate.paper import PAPER_MAX_PIXELS, PAPER_MIN_PIXELS
from vrft.evaluate.pipeline import evaluate_model
from vrft.evaluate.protocols import load_presence_map
from vrft.tasks.reference import R1_SYSTEM_PROMPT

from .conftest import answers_text

_CATEGORY = re.compile(r"category '([^']+)'")


class FakeGenerator:
    """Answers from a fixed table by (image id, category); records every request it gets."""

    def __init__(self, answers: dict, records: list[Record]):
        self.answers = answers
        self.by_image = {str(r.resolved_image()): r.image_id for r in records}
        self.requests: list = []

    def generate(self, requests, desc="generate"):
        self.requests += [(desc, r) for r in requests]
        out = []
        for r in requests:
            m = _CATEGORY.search(r.text)
            key = (self.by_image.get(str(r.image)), m.group(1) if m else None)
            if desc == "presence":
                out.append("<answer>yes</answer>" if key[1] == "cat" else "<answer>no</answer>")
            else:
                out.append(self.answers.get(key, "<answer>No Objects</answer>"))
        return out


def test_paper_prompts_system_prompt_and_budget_reach_generation(tmp_path):
    img = tmp_path / "a.png"
    from PIL import Image

    Image.new("RGB", (100, 80)).save(img)
    rec = Record(
        id="g", task="grounding", image=str(img), width=100, height=80, image_path=img,
        expression="what can I sit on?", boxes=[[0, 0, 50, 40]],
    )  # fmt: skip
    gen = FakeGenerator({}, [rec])
    gen.answers = {}
    evaluate_model(None, None, [rec], "grounding", None, convention="norm1000", generator=gen,
                   prompt_style="visual-rft", report=False)  # fmt: skip
    (_, req) = gen.requests[0]
    assert req.system == R1_SYSTEM_PROMPT and req.max_new_tokens == 128
    assert req.text.startswith(
        "Output the bounding box in the image corresponding to the instruction: what can"
    )
    assert req.text.endswith('</think>\n<answer>(x1,y1),(x2,y2)</answer>)" format.')
    gen.requests.clear()
    evaluate_model(None, None, [rec], "grounding", None, convention="norm1000", generator=gen, report=False)
    (_, req) = gen.requests[0]
    assert req.system is None and req.max_new_tokens == 512  # vrft's defaults


def test_messages_carry_the_system_turn():
    from vrft.evaluate.runner import messages_for

    assert [m["role"] for m in messages_for("hi")] == ["user"]
    msgs = messages_for("hi", "SYS")
    assert msgs[0] == {"role": "system", "content": "SYS"} and msgs[1]["role"] == "user"


def _exist_map(path, mapping):
    path.write_text(json.dumps({str(k): v for k, v in mapping.items()}))
    return path


def test_presence_from_reference_exist_map_asks_only_its_pairs(det_dir):
    records = load_records(det_dir / "det.jsonl")
    answers = answers_text()
    # the baseline said: image 1 has a cat and a bird, image 2 a bird (spelled differently), no dog
    # anywhere; image 3 is not in the map (nothing asked there)
    pmap = load_presence_map(_exist_map(det_dir / "exist.json", {1: ["cat", "bird"], 2: ["Bird"]}))
    gen = FakeGenerator(answers, records)
    m = evaluate_model(None, None, records, "detection", det_dir / "paper", convention="norm1000",
                       generator=gen, protocol="paper", presence_map=pmap, report=False)  # fmt: skip
    asked = sorted((gen.by_image[str(r.image)], _CATEGORY.search(r.text).group(1)) for _, r in gen.requests)
    assert asked == [(1, "bird"), (1, "cat"), (2, "bird")]
    assert all(desc == "detect" for desc, _ in gen.requests)  # no presence pass of its own
    det = m["detection"]
    assert det["num_asked"] == 3 and det["presence"]["num_yes"] == 3
    assert m["run"]["presence_from"] == str(det_dir / "exist.json")

    # re-scoring an all-categories run with the same map gives the same numbers (greedy answers of a
    # pair do not depend on the protocol): the paper protocol without running the model again
    lines = [{"image_id": iid, "category": cat, "completion": text} for (iid, cat), text in answers.items()]
    (det_dir / "all.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    args = ["eval", "--predictions", str(det_dir / "all.jsonl"), "--data", str(det_dir / "det.jsonl"),
            "--out", str(det_dir / "rescored"), "--no-report"]  # fmt: skip
    assert main([*args, "--protocol", "paper", "--presence-from", str(det_dir / "exist.json")]) == 0
    again = json.loads((det_dir / "rescored" / "metrics.json").read_text())["detection"]
    for key in ("AP", "mAP", "per_class_AP", "num_asked", "presence"):
        assert again[key] == det[key], key
    # without the map the all-categories numbers differ (the pairs the baseline missed are asked)
    assert main([*args, "--out", str(det_dir / "plain")]) == 0
    plain = json.loads((det_dir / "plain" / "metrics.json").read_text())["detection"]
    assert plain["num_asked"] == 9 and plain["per_class_AP"]["dog"] > 0 == det["per_class_AP"]["dog"]


def test_presence_from_a_vrft_paper_run(det_dir):
    records = load_records(det_dir / "det.jsonl")
    gen = FakeGenerator(answers_text(), records)
    evaluate_model(None, None, records, "detection", det_dir / "base", convention="norm1000", generator=gen,
                   protocol="paper", report=False)  # fmt: skip  # the fake says yes only to 'cat'
    pmap = load_presence_map(det_dir / "base" / "predictions.jsonl")
    assert pmap.present == {"1": {"cat"}, "2": {"cat"}, "3": {"cat"}}
    gen2 = FakeGenerator(answers_text(), records)
    evaluate_model(None, None, records, "detection", None, convention="norm1000", generator=gen2,
                   protocol="paper", presence_map=pmap, report=False)  # fmt: skip
    assert {_CATEGORY.search(r.text).group(1) for _, r in gen2.requests} == {"cat"}
    assert len(gen2.requests) == 3


def test_presence_from_errors(det_dir, capsys):
    base = ["eval", "--predictions", str(det_dir / "x.jsonl"), "--data", str(det_dir / "det.jsonl"),
            "--out", str(det_dir / "o")]  # fmt: skip
    (det_dir / "x.jsonl").write_text(json.dumps({"image_id": 1, "category": "cat", "completion": "x"}) + "\n")
    _exist_map(det_dir / "m.json", {1: ["cat"]})
    assert main([*base, "--presence-from", str(det_dir / "m.json")]) == 2
    assert "add --protocol paper" in capsys.readouterr().err
    (det_dir / "bad.json").write_text(json.dumps({"1": "cat"}))
    assert main([*base, "--protocol", "paper", "--presence-from", str(det_dir / "bad.json")]) == 2
    assert "key '1': expected a list of category names" in capsys.readouterr().err
    assert main([*base, "--protocol", "paper", "--presence-from", str(det_dir / "x.jsonl")]) == 2
    assert "no presence answers" in capsys.readouterr().err


class _Stop(Exception):
    pass


@pytest.mark.parametrize(
    "flags, budget",
    [
        (["--paper"], (PAPER_MIN_PIXELS, PAPER_MAX_PIXELS)),  # the reference's inference: no limit
        (["--paper", "--max-pixels", "401408"], (PAPER_MIN_PIXELS, 401408)),  # explicit flags win
        ([], None),  # default: the model's own processor budget
    ],
)
def test_eval_pixel_budget_reaches_the_processor(det_dir, monkeypatch, flags, budget):
    """`vrft eval --paper` loads the processor with the Qwen2-VL default budget (12845056 max pixels),
    which is what the reference's COCO / LVIS / classification inference uses."""
    import vrft.evaluate.pipeline as pipeline
    from vrft.models.load import load_processor, pixel_budget
    from vrft.models.tiny import cached_tiny

    model_dir = cached_tiny("qwen2_vl")
    seen = {}

    def capture(model, processor, records, task, out_dir, **kwargs):
        seen["budget"] = pixel_budget(processor)
        seen["prompt_style"] = kwargs["prompt_style"]
        seen["lvis_area"] = kwargs["lvis_area"]
        raise _Stop

    monkeypatch.setattr(pipeline, "evaluate_model", capture)
    with pytest.raises(_Stop):
        main(["eval", "--model", str(model_dir), "--data", str(det_dir / "det.jsonl"), "--out",
              str(det_dir / "o"), "--device", "cpu", *flags])  # fmt: skip
    assert seen["budget"] == (budget or pixel_budget(load_processor(model_dir)))
    assert seen["prompt_style"] == ("visual-rft" if flags else "vrft")
    assert seen["lvis_area"] == ("average" if flags else "all")


def test_paper_budget_for_grounding_is_the_model_directory_processor():
    """The reference's LISA inference loads the processor saved with the evaluated checkpoint."""
    from argparse import Namespace

    from vrft.evaluate.paper import paper_options

    args = Namespace(
        paper=True, presence_from=None, protocol="all-categories", min_pixels=None, max_pixels=None
    )
    assert (paper_options(args, "grounding").min_pixels, paper_options(args, "grounding").max_pixels) == (
        None,
        None,
    )
    assert paper_options(args, "classification").max_pixels == PAPER_MAX_PIXELS
    assert paper_options(args, "grounding").prompt_style == "visual-rft"
