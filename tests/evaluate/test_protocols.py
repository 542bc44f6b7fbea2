"""Protocols: the all-categories expansion, the paper protocol's own presence pass (scripted generator)."""

from __future__ import annotations

import pytest

from vrft.errors import DataError, UserError
from vrft.evaluate.pipeline import evaluate_model
from vrft.evaluate.protocols import detection_setup, parse_presence

from .conftest import CATEGORIES, answers_text, coco_gt, detection_records


@pytest.mark.parametrize(
    "text, yes",
    [
        ("<answer>yes</answer>", True),
        ("<think>there is no dog ... yes there is</think> <answer>Yes.</answer>", True),
        ("<answer>No</answer>", False),
        ("yes, I see one", True),
        ("not sure", False),
        ("", False),
        (None, False),
        ("<answer>yesterday</answer>", False),
    ],
)
def test_parse_presence(text, yes):
    assert parse_presence(text) is yes


def test_all_categories_expands_missing_pairs_with_gt_boxes(tmp_path):
    positives = detection_records(tmp_path, exhaustive=False)
    setup = detection_setup(positives, gt=coco_gt())
    # images 1 and 2 (image 3 has no positive record), every category named in the records
    assert setup.categories == ["cat", "dog", "bird"]
    assert len(setup.queries) == 6
    added = [q for q in setup.queries if q.id not in {r.id for r in positives}]
    assert sorted((q.image_id, q.category) for q in added) == [(1, "bird"), (2, "cat")]
    assert all(q.boxes == [] and q.image_path is not None for q in added)
    # a selected class absent from the records still gets its GT boxes from the file
    setup = detection_setup(
        [r for r in positives if r.category == "cat"], gt=coco_gt(), categories=["cat", "dog"]
    )
    dog1 = next(q for q in setup.queries if q.category == "dog")
    assert dog1.boxes == [[70, 5, 120, 60]]


def test_records_protocol_adds_nothing_and_added_pairs_keep_a_category_template(tmp_path):
    from dataclasses import replace

    positives = detection_records(tmp_path, exhaustive=False)
    setup = detection_setup(positives, gt=coco_gt(), add_missing=False)
    assert [q.id for q in setup.queries] == [r.id for r in positives]
    # records with their own prompt: an added pair inherits it only when it is a {category} template
    templated = [replace(r, prompt="Find every {category}.") for r in positives]
    added = [
        q for q in detection_setup(templated, gt=coco_gt()).queries if q.id not in {r.id for r in positives}
    ]
    assert added and all(q.prompt == "Find every {category}." for q in added)
    literal = [replace(r, prompt="Find it.") for r in positives]
    added = [
        q for q in detection_setup(literal, gt=coco_gt()).queries if q.id not in {r.id for r in positives}
    ]
    assert added and all(q.prompt is None for q in added)
    gen = ScriptedGenerator(set())
    m = evaluate_model(_Model(), None, positives, "detection", None, protocol="records", generator=gen)
    assert len(gen.calls[0][1]) == len(positives) and m["run"]["protocol"] == "records"
    assert m["detection"]["num_queries"] == len(positives)  # scored on the same pairs, nothing added


def test_setup_errors(tmp_path):
    recs = detection_records(tmp_path)
    with pytest.raises(DataError, match="categories not in the ground-truth file: 'zebra'"):
        detection_setup(recs, gt=coco_gt(), categories=["cat", "zebra"])
    gt = coco_gt()
    gt["images"] = gt["images"][:1]
    with pytest.raises(DataError, match="image_id 2"):
        detection_setup(recs, gt=gt)
    with pytest.raises(UserError, match="--lvis-gt"):
        detection_setup(recs, lvis=True)


class ScriptedGenerator:
    """Answers presence questions and detection prompts from a table; records what it was asked."""

    def __init__(self, present: set[tuple[int, str]]):
        self.present = present
        self.calls: list[tuple[str, list]] = []
        self.answers = answers_text()

    def _pair(self, req):
        iid = int(str(req.image).rsplit("/", 1)[-1].split(".")[0])
        cat = next(c for c in CATEGORIES if f"'{c}'" in req.text)
        return iid, cat

    def generate(self, requests, desc="generate"):
        self.calls.append((desc, [self._pair(r) for r in requests]))
        if desc == "presence":
            return [
                "<answer>yes</answer>" if self._pair(r) in self.present else "<answer>no</answer>"
                for r in requests
            ]
        return [self.answers.get(self._pair(r), "<answer>No Objects</answer>") for r in requests]


class _Config:
    model_type = "qwen2_vl"


class _Model:
    config = _Config()


def test_paper_protocol_asks_boxes_only_where_the_model_says_yes(tmp_path):
    recs = detection_records(tmp_path)
    said_yes = {(1, "cat"), (2, "dog"), (3, "dog")}
    gen = ScriptedGenerator(said_yes)
    m = evaluate_model(_Model(), None, recs, "detection", tmp_path / "out", protocol="paper", generator=gen)
    assert [c[0] for c in gen.calls] == ["presence", "detect"]
    assert len(gen.calls[0][1]) == 9
    assert sorted(gen.calls[1][1]) == sorted(said_yes)
    det = m["detection"]
    assert det["num_asked"] == 3 and det["num_queries"] == 9
    assert det["presence"]["num_yes"] == 3 and det["presence"]["recall"] == pytest.approx(50.0)
    assert m["run"]["protocol"] == "paper" and m["run"]["num_generations"] == 12
    # all-categories on the same model asks every pair once and scores higher recall
    gen2 = ScriptedGenerator(said_yes)
    m2 = evaluate_model(_Model(), None, recs, "detection", None, generator=gen2)
    assert [c[0] for c in gen2.calls] == ["detect"] and len(gen2.calls[0][1]) == 9
    assert m2["detection"]["AP50"] >= det["AP50"]


def test_unknown_protocol_and_task(tmp_path):
    recs = detection_records(tmp_path)
    with pytest.raises(UserError, match="unknown protocol"):
        evaluate_model(
            _Model(), None, recs, "detection", None, protocol="fast", generator=ScriptedGenerator(set())
        )
    with pytest.raises(DataError, match="no 'grounding' records"):
        evaluate_model(_Model(), None, recs, "grounding", None, generator=ScriptedGenerator(set()))
