"""The ``visual-rft`` prompt style: the reference implementation's texts, byte for byte.

The expected strings are typed out here from the reference's scripts (its COCO / LVIS /
classification inference questions, its LISA training QUESTION_TEMPLATE and LISA inference prompt),
so a change of a newline, a space or a word in `vrft.tasks.reference` fails here.
"""

from __future__ import annotations

import pytest

from vrft.boxes import Frame
from vrft.data.records import Record
from vrft.tasks import TASKS, task_for

W, H = 640, 427
IMG = dict(image="a.jpg", width=W, height=H)

DET_QUESTION = (
    "Detect all objects belonging to the category 'hot dog' in the image, and provide the bounding boxes "
    "(between 0 and 1000, integer) and confidence (between 0 and 1, with two decimal places).\n"
    "If no object belonging to the category 'hot dog' in the image, return 'No Objects'.\n"
    "Output the thinking process in <think> </think> and final answer in <answer> </answer> tags.The output "
    "answer format should be as follows:\n"
    "<think> ... </think> <answer>[{'Position': [x1, y1, x2, y2], 'Confidence': number}, ...]</answer>\n"
    "Please strictly follow the format."
)
AIRCRAFT_QUESTION = (
    "This is an image containing an aircraft. Please identify the model of the aircraft based on the image.\n"
    "Output the thinking process in <think> </think> and final answer in <answer> </answer> tags.The output "
    "answer format should be as follows:\n"
    "<think> ... </think> <answer>species name</answer>\n"
    "Please strictly follow the format."
)
LISA_TRAIN = (
    "Output the bounding box in the image corresponding to the instruction: what can I sit on? Output the "
    'thinking process in <think> </think> and your grouding box. Following "<think> thinking process '
    '</think>\n<answer>(x1,y1),(x2,y2)</answer>)" format.'
)
LISA_EVAL = (
    "Output the bounding box in the image corresponding to the instruction: what can I sit on?. Output the "
    'thinking process in <think> </think> and your grouding box. Following "<think> thinking process '
    '</think>\n<answer>(x1,y1),(x2,y2)</answer>)" format.'
)
R1_SYSTEM = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The "
    "assistant first thinks about the reasoning process in the mind and then provides the user with the "
    "answer. The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> "
    "tags, respectively, i.e., <think> reasoning process here </think><answer> answer here </answer>"
)

DET = Record(id="d", task="detection", category="hot dog", boxes=[], **IMG)
GRD = Record(id="g", task="grounding", expression="what can I sit on?", boxes=[[1, 2, 300, 400]], **IMG)


def test_detection_question_byte_exact():
    assert task_for("detection", "visual-rft", "train").prompt(DET) == DET_QUESTION
    assert task_for("detection", "visual-rft", "eval").prompt(DET) == "<image>\n" + DET_QUESTION
    assert task_for("detection", "visual-rft", "eval").prompt(DET, Frame(W, H, "norm1000")) == (
        "<image>\n" + DET_QUESTION
    )
    # the default style is untouched
    assert task_for("detection") is TASKS["detection"]
    assert "\n" not in TASKS["detection"].prompt(DET) and "tags. The" in TASKS["detection"].prompt(DET)


def test_detection_other_convention_changes_only_the_coordinate_phrase():
    text = task_for("detection", "visual-rft").prompt(DET, Frame(W, H, "pixels"))
    assert text == DET_QUESTION.replace(
        "(between 0 and 1000, integer)", "(absolute pixel coordinates, integer)"
    )


@pytest.mark.parametrize(
    "domain, head",
    [
        (
            {"object": "aircraft", "attribute": "model"},
            "an aircraft. Please identify the model of the aircraft",
        ),
        ({"object": "plant", "attribute": "species"}, "a plant. Please identify the species of the plant"),
        ({"object": "car", "attribute": "model"}, "a car. Please identify the model of the car"),
        ({"object": "pet", "attribute": "breed"}, "a pet. Please identify the breed of the pet"),
    ],
)
def test_classification_species_name_for_every_dataset(domain, head):
    rec = Record(id="c", task="classification", label="737-200", domain=domain, **IMG)
    text = task_for("classification", "visual-rft", "eval").prompt(rec)
    expected = "<image>\n" + AIRCRAFT_QUESTION.replace(
        "an aircraft. Please identify the model of the aircraft", head
    )
    assert text == expected
    assert text.count("<answer>species name</answer>") == 1
    assert task_for("classification", "visual-rft", "train").prompt(rec) == expected[len("<image>\n") :]
    # vrft's own template names the attribute ("model name", "breed name")
    assert f"<answer>{domain['attribute']} name</answer>" in TASKS["classification"].prompt(rec)


def test_lisa_training_and_inference_prompts_system_and_budget():
    train = task_for("grounding", "visual-rft", "train")
    assert train.prompt(GRD) == LISA_TRAIN
    assert getattr(train, "system_prompt", None) is None  # training: no system prompt
    ev = task_for("grounding", "visual-rft", "eval")
    assert ev.prompt(GRD) == LISA_EVAL
    assert ev.system_prompt == R1_SYSTEM and ev.max_new_tokens == 128
    assert (
        TASKS["grounding"].max_new_tokens == 512
        and getattr(TASKS["grounding"], "system_prompt", None) is None
    )


def test_record_prompt_still_wins_and_bad_style_or_phase_raise():
    rec = Record(id="d2", task="detection", category="cat", prompt="Find {category}.", **IMG)
    assert task_for("detection", "visual-rft", "eval").prompt(rec) == "Find cat."
    with pytest.raises(ValueError, match="style"):
        task_for("detection", "paper")
    with pytest.raises(ValueError, match="phase"):
        task_for("detection", "visual-rft", "test")
    from vrft.errors import UserError

    only = Record(id="d3", task="detection", category="cat", answer_format="answer_only", **IMG)
    with pytest.raises(UserError, match="answer-only record"):
        task_for("detection", "visual-rft", "eval").prompt(only)
    assert task_for("counting", "visual-rft") is TASKS["counting"]  # no reference text: vrft's own


def test_training_under_the_visual_rft_preset_uses_the_reference_text():
    """The GRPO dataset built for `rewards.preset: visual-rft` carries the reference's training text."""
    from vrft.data.hf import build_grpo_dataset
    from vrft.train.builder import get_task

    def frame_fn(r):
        return Frame(r.width, r.height, "norm1000")

    recs = [
        Record(id="d", task="detection", category="hot dog", boxes=[], image_path=__file__, **IMG),
    ]
    paper = build_grpo_dataset(recs, get_task("detection", "visual-rft"), frame_fn)
    texts = paper.data.column("prompt").to_pylist()[0][0]["content"]
    assert texts[1]["text"] == DET_QUESTION
    default = build_grpo_dataset(recs, get_task("detection", "default"), frame_fn)
    assert default.data.column("prompt").to_pylist()[0][0]["content"][1]["text"] == TASKS["detection"].prompt(
        recs[0], Frame(W, H, "norm1000")
    )
    lisa = build_grpo_dataset(
        [Record(id="g", task="grounding", expression="what can I sit on?", boxes=[[1, 2, 300, 400]],
                image_path=__file__, **IMG)],
        get_task("grounding", "visual-rft"),
        frame_fn,
    )  # fmt: skip
    assert lisa.data.column("prompt").to_pylist()[0][0]["content"][1]["text"] == LISA_TRAIN


def test_a_visual_rft_model_is_asked_at_evaluation_with_its_training_text():
    """vrft.json gets the training text as its prompt template (placeholders for the record's fields),
    which `vrft eval` / `vrft predict` then apply to records without a prompt."""
    import dataclasses

    from vrft.models.contract import ModelContract
    from vrft.tasks.base import custom_prompt
    from vrft.train.builder import get_task, with_task_prompt

    base = ModelContract("detection", None, "think", "norm1000", 3136, 401408)
    det = with_task_prompt(base, get_task("detection", "visual-rft"), [DET], "norm1000")
    assert custom_prompt(dataclasses.replace(DET, prompt=det.prompt)) == DET_QUESTION
    grd = with_task_prompt(
        dataclasses.replace(base, task="grounding"), get_task("grounding", "visual-rft"), [GRD], "norm1000"
    )
    assert custom_prompt(dataclasses.replace(GRD, prompt=grd.prompt)) == LISA_TRAIN
    cls = [
        Record(
            id=f"c{i}",
            task="classification",
            label="x",
            domain={"object": "car", "attribute": "model"},
            **IMG,
        )
        for i in range(2)
    ]
    got = with_task_prompt(
        dataclasses.replace(base, task="classification"),
        get_task("classification", "visual-rft"),
        cls,
        "norm1000",
    )
    assert got.prompt == task_for("classification", "visual-rft").prompt(cls[0])
    mixed = [*cls, dataclasses.replace(cls[0], domain={"object": "pet", "attribute": "breed"})]
    assert with_task_prompt(base, get_task("classification", "visual-rft"), mixed, "norm1000").prompt is None
    # vrft's own templates (default preset) leave the contract's prompt null, and a records' prompt stays
    assert with_task_prompt(base, get_task("detection", "default"), [DET], "norm1000") is base
    own = dataclasses.replace(base, prompt="Find {category}.")
    assert with_task_prompt(own, get_task("detection", "visual-rft"), [DET], "norm1000") is own
