"""Tasks (vrft.tasks): prompts per convention, SFT targets that the rewards score as perfect, parse."""

from __future__ import annotations

import pytest

from vrft.boxes import Frame, iou
from vrft.data.records import Record
from vrft.errors import DataError
from vrft.rewards import REWARDS, rewards_for
from vrft.tasks import TASKS, Prediction

W, H = 640, 427
FRAMES = {
    "norm1000": Frame(W, H, "norm1000"),
    "resized_pixels": Frame.for_image(W, H, "resized_pixels", min_pixels=3136, max_pixels=401408),
    "pixels": Frame(W, H, "pixels"),
}


def det_record(boxes):
    return Record(id="d1", task="detection", image="a.jpg", width=W, height=H, category="cat", boxes=boxes)


CLS = Record(
    id="c1",
    task="classification",
    image="a.jpg",
    width=W,
    height=H,
    label="Wild Rose",
    domain={"object": "flower", "attribute": "species"},
    aliases=["dog rose"],
)
GRD = Record(
    id="g1",
    task="grounding",
    image="a.jpg",
    width=W,
    height=H,
    expression="the cat on the left",
    boxes=[[10, 20, 300, 400]],
)


def test_registry():
    assert set(TASKS) == {
        "detection", "classification", "grounding", "counting", "ocr", "temporal_grounding", "multi_image_grounding",
    }
    for name, task in TASKS.items():
        assert task.name == name and task.max_new_tokens >= 256
    # the one list of task names every record check, command choice and contract reads, in registry order
    from vrft.commands.score import TASK_NAMES as score_tasks
    from vrft.data.record_checks import TASK_NAMES
    from vrft.evaluate.pipeline import TASK_NAMES as eval_tasks
    from vrft.models.contract import TASKS as contract_tasks

    assert TASK_NAMES == tuple(TASKS) and score_tasks is eval_tasks is contract_tasks is TASK_NAMES


def test_detection_prompt_depends_on_convention():
    r = det_record([])
    p = TASKS["detection"].prompt(r)
    assert "'cat'" in p and "(between 0 and 1000, integer)" in p and "No Objects" in p
    assert "<answer>[{'Position': [x1, y1, x2, y2], 'Confidence': number}, ...]</answer>" in p
    assert p == TASKS["detection"].prompt(r, FRAMES["norm1000"])
    for conv in ("resized_pixels", "pixels"):
        q = TASKS["detection"].prompt(r, FRAMES[conv])
        assert "1000" not in q and "absolute pixel coordinates" in q


def test_classification_prompt_domain_and_defaults():
    assert (
        TASKS["classification"]
        .prompt(CLS)
        .startswith(
            "This is an image containing a flower. Please identify the species of the flower based on the image."
        )
    )
    plain = Record(id="c2", task="classification", image="a.jpg", width=W, height=H, label="x")
    p = TASKS["classification"].prompt(plain)
    assert p.startswith("This is an image containing an object. Please identify the category of the object")
    assert "<answer>category name</answer>" in p


def test_grounding_prompt():
    p = TASKS["grounding"].prompt(GRD)
    assert "instruction: the cat on the left." in p and "(x1,y1),(x2,y2)" in p and "1000" in p
    q = TASKS["grounding"].prompt(GRD, FRAMES["resized_pixels"])
    assert "[x1, y1, x2, y2]" in q and "1000" not in q


@pytest.mark.parametrize("conv", list(FRAMES))
@pytest.mark.parametrize("boxes", [[], [[10, 20, 300, 400]], [[10, 20, 300, 400], [320, 10.5, 640, 427]]])
def test_detection_target_scores_perfectly_and_parses_back(conv, boxes):
    frame, task, r = FRAMES[conv], TASKS["detection"], det_record(boxes)
    text = task.answer_text(r, frame)
    cols = task.reward_columns(r, frame)
    assert cols == {"gt_boxes": [frame.encode(b) for b in boxes]}
    for preset in ("default", "visual-rft"):
        fns, weights = rewards_for("detection", preset)
        scores = {f.__name__: f([text], **{k: [v] for k, v in cols.items()})[0] for f in fns}
        assert scores == {f.__name__: (0.0 if f.__name__.startswith("parse_fail") else 1.0) for f in fns}
    pred = task.parse(text, frame)
    assert isinstance(pred, Prediction) and pred.ok and pred.format_strict
    assert pred.no_objects == (not boxes) and pred.scores == [1.0] * len(boxes)
    for got, want in zip(pred.boxes, boxes):
        assert iou(got, want) > 0.98


def test_detection_answer_text_shape():
    text = TASKS["detection"].answer_text(det_record([[10, 20, 300, 400]]), FRAMES["norm1000"])
    assert (
        text
        == "<think> The image shows 1 cat. </think> <answer>[{'Position': [15, 46, 468, 936], 'Confidence': 1}]</answer>"
    )
    empty = TASKS["detection"].answer_text(det_record([]), FRAMES["norm1000"])
    assert empty.endswith("<answer>No Objects</answer>")


@pytest.mark.parametrize("conv", list(FRAMES))
def test_grounding_target(conv):
    frame, task = FRAMES[conv], TASKS["grounding"]
    text = task.answer_text(GRD, frame)
    enc = frame.encode(GRD.boxes[0])
    if conv == "norm1000":
        assert text.endswith(f"<answer>({enc[0]},{enc[1]}),({enc[2]},{enc[3]})</answer>")
    else:
        assert text.endswith(f"<answer>{enc}</answer>")
    cols = task.reward_columns(GRD, frame)
    assert cols == {"gt_boxes": [enc]}
    assert REWARDS["grounding_iou"]([text], **{k: [v] for k, v in cols.items()}) == [1.0]
    assert REWARDS["grounding_giou_plus1"]([text], **{k: [v] for k, v in cols.items()}) == [2.0]
    pred = task.parse(text, frame)
    assert pred.ok and len(pred.boxes) == 1 and iou(pred.boxes[0], GRD.boxes[0]) > 0.98


def test_classification_target_and_columns():
    task = TASKS["classification"]
    text = task.answer_text(CLS, None)
    assert text == "<think> The species of this flower is Wild Rose. </think> <answer>Wild Rose</answer>"
    cols = task.reward_columns(CLS, None)
    assert cols == {"gt_label": "Wild Rose", "gt_aliases": ["dog rose"]}
    batch = {k: [v, v] for k, v in cols.items()}
    assert REWARDS["classification_exact"]([text, "<think>x</think><answer>Dog-Rose</answer>"], **batch) == [
        1,
        1,
    ]
    pred = task.parse(text)
    assert pred.ok and pred.label == "Wild Rose"


def test_parse_never_raises_and_reports_failure():
    for name, task in TASKS.items():
        for text in [
            "",
            "garbage",
            None,
            [{"role": "assistant", "content": "<answer></answer>"}],
            "<answer>[1",
        ]:
            pred = task.parse(text, FRAMES["norm1000"])
            if name == "ocr" and isinstance(text, list):  # an empty answer: the image has no text
                assert pred.ok and pred.text == ""
                continue
            assert pred.task == name and not pred.ok and pred.reason != "ok"


def test_parse_lenient_mode_for_untagged_models():
    frame = FRAMES["norm1000"]
    text = "[{'Position': [0, 0, 500, 500], 'Confidence': 0.8}]"
    assert not TASKS["detection"].parse(text, frame).ok
    pred = TASKS["detection"].parse(text, frame, require_tags=False)
    assert pred.ok and pred.boxes == [[0.0, 0.0, 320.0, 213.5]] and not pred.format_ok
    assert TASKS["classification"].parse("<think>hm</think> tulip", require_tags=False).label == "tulip"
    assert TASKS["grounding"].parse("(0,0),(1000,1000)", frame, require_tags=False).boxes == [[0, 0, W, H]]


def test_missing_fields_are_data_errors():
    bad = Record(id="x", task="detection", image="a.jpg", width=W, height=H, boxes=[])
    with pytest.raises(DataError, match="category"):
        TASKS["detection"].prompt(bad)
    with pytest.raises(DataError, match="label"):
        TASKS["classification"].reward_columns(
            Record(id="y", task="classification", image="a", width=1, height=1)
        )
    with pytest.raises(DataError, match="expression"):
        TASKS["grounding"].prompt(
            Record(id="z", task="grounding", image="a", width=1, height=1, boxes=[[0, 0, 1, 1]])
        )
    with pytest.raises(DataError, match="boxes"):
        TASKS["grounding"].reward_columns(
            Record(id="z", task="grounding", image="a", width=1, height=1, expression="e"), FRAMES["norm1000"]
        )


@pytest.mark.parametrize("record", [det_record([[10, 20, 30, 40]]), CLS, GRD], ids=lambda r: r.task)
def test_record_prompt_replaces_the_template_not_the_answer(record):
    from dataclasses import replace

    task = TASKS[record.task]
    frame = FRAMES["norm1000"]
    own = replace(record, prompt="Find it.")
    assert task.prompt(own, frame) == "Find it."
    assert task.prompt(record, frame) != "Find it."
    assert task.answer_text(own, frame) == task.answer_text(record, frame)
    assert task.reward_columns(own, frame) == task.reward_columns(record, frame)


def test_record_prompt_placeholders():
    from dataclasses import replace

    r = replace(det_record([]), prompt="Find every {category}; answer like {'Position': [..]}.")
    assert (
        TASKS["detection"].prompt(r, FRAMES["norm1000"]) == "Find every cat; answer like {'Position': [..]}."
    )
    g = replace(GRD, prompt="Box {expression}.")
    assert TASKS["grounding"].prompt(g, FRAMES["norm1000"]) == f"Box {GRD.expression}."
