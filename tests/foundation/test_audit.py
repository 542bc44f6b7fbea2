"""`vrft audit`: the exploit battery against every shipped preset, and the command's behaviour."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from vrft.audit import EXPLOITS, audit, make_cases, shapes_records
from vrft.cli import main
from vrft.data.records import Record, save_records
from vrft.rewards import PRESETS, REWARDS
from vrft.tasks import TASKS

# (preset, task) -> the exploits that earn at least as much as the honest answer. Every shipped preset and
# task is listed: a new preset or task must state (and docs/rewards.md explain) its flags.
EXPECTED_FLAGS: dict[tuple[str, str], set[str]] = {
    # the rewards drop exact duplicate boxes (parser rule), the COCO metrics count them as false positives
    ("default", "detection"): {"duplicate_boxes"},
    ("default", "classification"): set(),
    ("default", "grounding"): set(),
    ("visual-rft", "detection"): {"duplicate_boxes"},
    # the reference's substring rule pays any answer that contains the label, or is contained in it
    ("visual-rft", "classification"): {
        "or_list",
        "label_then_list",
        "all_labels",
        "partial_label",
        "huge_output",
    },
    ("visual-rft", "grounding"): set(),
    ("default", "counting"): set(),
    ("default", "ocr"): set(),
    ("perception", "detection"): {"duplicate_boxes"},  # the Hungarian rewards drop exact duplicates too
    ("perception", "classification"): set(),
    ("perception", "grounding"): set(),
    ("perception", "counting"): set(),
    ("perception", "ocr"): set(),
    ("default", "temporal_grounding"): set(),
    ("default", "multi_image_grounding"): set(),
    ("perception", "temporal_grounding"): set(),
    ("perception", "multi_image_grounding"): set(),
}

CASES = [(p, t) for p in PRESETS for t in PRESETS[p]]


def run(capsys, *argv):
    rc = main(["audit", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_every_preset_and_task_is_audited():
    assert set(CASES) == set(EXPECTED_FLAGS), "list the expected flags of every (preset, task)"
    assert set(EXPLOITS) == set(TASKS), "every task has an exploit battery"


@pytest.mark.parametrize("preset,task", CASES, ids=[f"{p}-{t}" for p, t in CASES])
def test_audit_flags_what_is_expected(capsys, preset, task):
    rc, out, _ = run(capsys, task, "--preset", preset, "--images", "2", "--json")
    report = json.loads(out)
    expected = EXPECTED_FLAGS[(preset, task)]
    assert set(report["flagged"]) == expected
    assert rc == (1 if expected else 0)
    rows = {r["exploit"]: r for r in report["rows"]}
    honest = rows.pop("honest")
    names = [n for n, w in PRESETS[preset][task].items() if w != 0]
    assert list(report["rewards"]) == names
    for name in names:  # the honest answer is the ground truth: every reward at its maximum
        assert honest["rewards"][name] == (2.0 if name == "grounding_giou_plus1" else 1.0)
    assert set(rows) == set(EXPLOITS[task])  # every exploit applies to some record
    for r in rows.values():
        assert all(math.isfinite(v) for v in r["rewards"].values())
        assert r["flagged"] == (r["total"] >= r["honest"] - 1e-9)


def test_table_and_exit_status(capsys):
    rc, out, _ = run(capsys, "classification", "--preset", "visual-rft", "--images", "2")
    assert rc == 1
    lines = out.splitlines()
    assert lines[2].startswith("| exploit | n | format_strict | classification_substring | total | honest |")
    assert any(
        line.startswith("| partial_label | 2 |") and line.endswith("| 2/2 | FLAGGED |") for line in lines
    )
    assert "FLAGGED: or_list, label_then_list, all_labels, partial_label, huge_output" in out

    # accepting the known flags gives a clean exit (CI before a long run)
    allow = "or_list,label_then_list,all_labels,partial_label,huge_output"
    rc, out, _ = run(capsys, "classification", "--preset", "visual-rft", "--images", "2", "--allow", allow)
    assert rc == 0 and "| allowed |" in out


def test_detection_values_are_the_formulas(capsys):
    rc, out, _ = run(capsys, "detection", "--images", "3", "--json")
    rows = {r["exploit"]: r for r in json.loads(out)["rows"]}
    # every GT box and a copy shifted by one unit: the copies match nothing (their GT box is taken)
    near = rows["near_duplicate_boxes"]["rewards"]
    assert near["detection_iou"] == 0.5 and near["detection_confidence"] == 0.5
    # a grid of confidence-0 boxes: almost all unmatched, so 1 - c pays the confidence reward
    assert rows["box_spam_confidence_0"]["rewards"]["detection_confidence"] > 0.9
    assert rows["box_spam"]["rewards"]["detection_confidence"] < 0.1
    # the answer inside <think> is still read (the last answer pair) but fails the format
    think = rows["answer_in_think"]["rewards"]
    assert think["format"] == 0 and think["detection_iou"] == 1
    # exploits that need GT boxes skip the records without any
    records = shapes_records("detection", 3)
    assert rows["duplicate_boxes"]["n"] == sum(1 for r in records if r.boxes) < len(records)


def test_rewards_option_and_a_records_file(tmp_path, capsys):
    records = shapes_records("grounding", 2, seed=5)
    path = save_records(records, tmp_path / "g.jsonl")
    rc, out, _ = run(capsys, "grounding", "--rewards", "format", "--records", str(path), "--json")
    report = json.loads(out)
    assert report["records"] == 2 and report["source"] == str(path)
    assert report["rewards"] == {"format": 1.0}
    # format alone pays every well-formed answer as much as the truth
    assert set(report["flagged"]) == {"whole_image", "box_list", "huge_output", "format_only"}
    assert rc == 1


@pytest.mark.parametrize(
    "argv,message",
    [
        (["detection", "--rewards", "detection_iuo"], "unknown reward 'detection_iuo'"),
        (["detection", "--allow", "spam"], "--allow: unknown exploit(s) spam"),
        (["classification", "--records", "missing.jsonl"], "missing.jsonl"),
        (["detection", "--images", "0"], "at least one image"),
    ],
)
def test_usage_errors_exit_2(capsys, argv, message):
    rc, _, err = run(capsys, *argv)
    assert rc == 2 and message in err and err.startswith("vrft audit: error:")


def test_preset_and_rewards_are_exclusive(capsys):
    with pytest.raises(SystemExit) as e:
        main(["audit", "detection", "--preset", "default", "--rewards", "format"])
    assert e.value.code == 2


def test_records_file_without_the_task(tmp_path, capsys):
    path = save_records([Record(id="a", task="classification", image="x.png", width=8, height=8, label="cat")],
                        tmp_path / "c.jsonl")  # fmt: skip
    rc, _, err = run(capsys, "detection", "--records", str(path))
    assert rc == 2 and "no 'detection' records" in err


def test_answer_only_honest_and_exploits():
    cases = make_cases("classification", shapes_records("classification", 2), answer_format="answer_only")
    assert cases[0].honest == f"<answer>{cases[0].record.label}</answer>"
    assert "without any thinking" in cases[0].prompt
    assert EXPLOITS["classification"]["or_list"](cases[0]).startswith("<answer>")


def test_non_finite_reward_is_flagged():
    def nan_on_lists(completions, **_):
        return [math.nan if "," in c else 1.0 for c in completions]

    cases = make_cases("classification", shapes_records("classification", 2))
    report = audit(
        "classification",
        cases,
        {"nan_on_lists": (nan_on_lists, 1.0), "exact": (REWARDS["classification_exact"], 1.0)},
    )
    flagged = set(report.flagged)
    assert {"label_then_list", "all_labels"} <= flagged  # NaN on a completion with a comma
    assert "partial_label" not in flagged


def test_counting_and_ocr_values(capsys):
    _, out, _ = run(capsys, "counting", "--images", "6", "--json")
    rows = {r["exploit"]: r["rewards"] for r in json.loads(out)["rows"]}
    assert rows["duplicate_points"]["count_points"] == pytest.approx(2 / 3)  # 2M / (2n + n), M = n
    assert rows["duplicate_points"]["count_exact"] == 0
    assert rows["integer_count"] == {"format": 1.0, "count_points": 0.0, "count_exact": 1.0}
    assert rows["points_outside_boxes"] == {"format": 1.0, "count_points": 0.0, "count_exact": 1.0}
    assert rows["no_objects"]["count_exact"] == 0 and rows["or_count"]["count_exact"] == 0

    rc, out, _ = run(capsys, "ocr", "--preset", "perception", "--images", "3", "--json")
    report = json.loads(out)
    rows = {r["exploit"]: r for r in report["rows"]}
    assert rc == 0 and report["rewards"] == {"format_answer_only": 1.0, "ocr_similarity": 1.0}
    cases = make_cases("ocr", shapes_records("ocr", 3), answer_format="answer_only")
    # one character changed in a text of L characters: similarity 1 - 1/L
    expected = sum(1 - 1 / len(c.answer) for c in cases) / len(cases)
    assert rows["near_miss"]["rewards"]["ocr_similarity"] == pytest.approx(expected, abs=1e-6)
    assert rows["answer_in_think"]["rewards"]["format_answer_only"] == 0


def test_audit_does_not_import_torch():
    code = (
        "import sys; from vrft.cli import main; rc = main(['audit', 'grounding', '--images', '1', '--json']); "
        "print('torch' in sys.modules, rc, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stderr.strip().splitlines()[-1] == "False 0"
