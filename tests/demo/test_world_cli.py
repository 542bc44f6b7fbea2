"""`vrft demo build-world` and `vrft demo export-base`: the data and the model the tiny configs start from."""

from __future__ import annotations

import json

import pytest

from vrft.cli import main


def test_build_world_draws_the_parts_the_base_knows(tmp_path, capsys):
    out = tmp_path / "world"
    assert main(["demo", "build-world", "--out", str(out), "base_train_images=3", "seed=1"]) == 0
    lines = (out / "base_train" / "records.jsonl").read_text().splitlines()
    recs = [json.loads(x) for x in lines]
    assert recs and all(r["task"] == "detection" and r["prompt"] == "Detect every {category}." for r in recs)
    assert {r["width"] for r in recs} == {112}
    assert "base_train:" in capsys.readouterr().out
    assert any(not r["boxes"] for r in recs)  # 'No Objects' prompts of absent shapes
    # again into the same directory: replaced, not refused (its own output); negatives=false drops them
    assert main(["demo", "build-world", "--out", str(out), "base_train_images=3", "negatives=false"]) == 0
    again = [json.loads(x) for x in (out / "base_train" / "records.jsonl").read_text().splitlines()]
    assert again and all(r["boxes"] for r in again) and len(again) < len(recs)


@pytest.mark.parametrize(
    "words,needle",
    [
        (["parts=nope"], "unknown part"),
        (["base_train_imags=3"], "base_train_images"),
        ([], "--out"),
        (["negatives=no"], "negatives="),
    ],
)
def test_build_world_refuses_bad_input_in_one_line(tmp_path, capsys, words, needle):
    argv = ["demo", "build-world", *([] if needle == "--out" else ["--out", str(tmp_path / "w")]), *words]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_export_base_copies_the_checked_shipped_base(tmp_path, capsys):
    from vrft.demo.base import verify_base

    out = tmp_path / "base"
    assert main(["demo", "export-base", "--out", str(out)]) == 0
    assert verify_base(out)["weights_sha256"] and (out / "config.json").is_file()
    assert main(["demo", "export-base", "--out", str(out)]) == 0  # a base there is replaced
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "mine.txt").write_text("x")
    assert main(["demo", "export-base", "--out", str(tmp_path / "other")]) == 2  # not a demo base: refused
    assert (tmp_path / "other" / "mine.txt").is_file()
