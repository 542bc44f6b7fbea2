"""vrft.outputs: the manifest (only vrft's files are ever deleted), locks, atomic writes (issue 14)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from vrft.cli import main
from vrft.errors import UserError
from vrft.outputs import (
    LOCK_NAME,
    MANIFEST_NAME,
    OutputDir,
    atomic_write_text,
    check_file_output,
    read_manifest,
)

SRC = Path(__file__).resolve().parents[2] / "src"


def _files(d: Path) -> set[str]:
    return {p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file()}


def test_atomic_write_leaves_no_temporary_file(tmp_path):
    p = atomic_write_text(tmp_path / "a" / "x.json", "{}\n")
    assert p.read_text() == "{}\n" and os.listdir(p.parent) == ["x.json"]
    # the file gets the usual permissions (0666 less the umask), not mkstemp's 0600
    mask = os.umask(0)
    os.umask(mask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~mask


def test_atomic_write_failure_keeps_the_old_file(tmp_path):
    p = atomic_write_text(tmp_path / "x.txt", "old")

    class Boom(Exception):
        pass

    from vrft.outputs import atomic_open

    with pytest.raises(Boom), atomic_open(p) as fh:
        fh.write("half of the new")
        raise Boom
    assert p.read_text() == "old" and os.listdir(tmp_path) == ["x.txt"]


def test_claim_refuses_foreign_files_and_clean_removes_only_the_owners(tmp_path):
    d = tmp_path / "out"
    d.mkdir()
    (d / "mine.csv").write_text("user")
    with OutputDir(d, "a") as out:
        with pytest.raises(UserError, match="mine.csv"):
            out.claim(["mine.csv"])
        out.claim(["x.json", "sub/y.json"])
        atomic_write_text(d / "x.json", "1")
        atomic_write_text(d / "sub" / "y.json", "2")
    (d / "sub" / "user.txt").write_text("user's file in vrft's folder")
    with OutputDir(d, "b") as out:
        out.claim(["z.json"])
        atomic_write_text(d / "z.json", "3")
    with OutputDir(d, "a") as out:
        removed = out.clean("a")
    assert sorted(p.name for p in removed) == ["x.json", "y.json"]
    assert _files(d) == {"mine.csv", "sub/user.txt", "z.json", MANIFEST_NAME}
    assert read_manifest(d) == {"z.json": "b"}


def test_a_tampered_manifest_never_deletes_outside_the_directory(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    d = tmp_path / "out"
    d.mkdir()
    (d / MANIFEST_NAME).write_text(
        json.dumps({"entries": {"../victim.txt": "a", str(victim): "a", "ok": "a"}})
    )
    assert read_manifest(d) == {"ok": "a"}
    with OutputDir(d, "a") as out:
        out.clean()
    assert victim.read_text() == "keep me"


def test_a_symlinked_output_file_writes_its_target(tmp_path):
    target = tmp_path / "real.jsonl"
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    assert check_file_output(link) == target
    target.write_text("")  # now a file vrft did not write: refused through the link too
    with pytest.raises(UserError, match="vrft did not write it"):
        check_file_output(link)


def _hold_lock(directory: Path) -> subprocess.Popen:
    code = (
        "import sys, time; from vrft.outputs import OutputDir; "
        "OutputDir(sys.argv[1], 'data synth').open(); print('locked', flush=True); time.sleep(60)"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(directory)], stdout=subprocess.PIPE, env=env, text=True
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_writer_is_refused_and_a_killed_one_blocks_nothing(tmp_path, capsys):
    """Two `vrft data synth` into one --out must not both succeed with mixed content; SIGKILL frees the lock."""
    out = tmp_path / "shapes"
    holder = _hold_lock(out)
    try:
        assert main(["data", "synth", "--out", str(out), "--images", "2", "--size", "32"]) == 2
        err = capsys.readouterr().err
        assert "being written by another vrft process" in err and f"pid {holder.pid}" in err
        assert not (out / "instances.json").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (out / LOCK_NAME).exists()  # the killed holder left its lock file: it blocks nothing
    assert main(["data", "synth", "--out", str(out), "--images", "2", "--size", "32"]) == 0
    assert not (out / LOCK_NAME).exists()


def test_synth_into_a_used_directory_leaves_no_old_image_behind(tmp_path):
    out = tmp_path / "shapes"
    assert main(["data", "synth", "--out", str(out), "--images", "4", "--size", "32", "--classification", "2",
                 "--records"]) == 0  # fmt: skip
    (out / "images" / "mine.png").write_bytes(b"user's")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = out / "images" / f".vrft-tmp-{int(dead.stdout)}-000003.png.x1y2"  # a killed writer's temporary
    stale.write_bytes(b"half a png")
    assert main(["data", "synth", "--out", str(out), "--images", "2", "--size", "32", "--seed", "1"]) == 0
    # the detection part is drawn again: its earlier images and records go; the classification part stays
    assert _files(out) == {
        "instances.json", "images/000000.png", "images/000001.png", "images/mine.png", MANIFEST_NAME,
        "classification.jsonl", "classification/000000.png", "classification/000001.png",
    }  # fmt: skip
    instances = json.loads((out / "instances.json").read_text())
    assert instances["info"]["seed"] == 1 and len(instances["images"]) == 2
    assert (out / "images" / "mine.png").read_bytes() == b"user's"


def test_eval_again_replaces_its_own_files_only(tmp_path):
    from vrft.data.records import Record, save_records

    recs = [Record(id="a", task="classification", image="x.png", width=8, height=8, label="cat")]
    data = save_records(recs, tmp_path / "recs.jsonl")
    preds = tmp_path / "preds.jsonl"
    preds.write_text(json.dumps({"id": "a", "completion": "<answer>cat</answer>"}) + "\n")
    out = tmp_path / "eval"
    assert main(["eval", "--predictions", str(preds), "--data", str(data), "--out", str(out)]) == 0
    assert (out / "report.html").is_file()
    (out / "notes.md").write_text("mine")
    assert (
        main(["eval", "--predictions", str(preds), "--data", str(data), "--out", str(out), "--no-report"])
        == 0
    )
    assert _files(out) == {
        "metrics.json",
        "predictions.jsonl",
        "notes.md",
        MANIFEST_NAME,
    }  # stale report gone


def test_tiny_replaces_an_earlier_tiny_model_and_keeps_other_files(tmp_path, capsys):
    out = tmp_path / "tiny"
    out.mkdir()
    (out / "README.txt").write_text("mine")
    assert main(["tiny", "--arch", "qwen2_5_vl", "--out", str(out)]) == 0
    first = _files(out)
    assert "config.json" in first and "README.txt" in first and not any(".vrft-tmp" in f for f in first)
    assert main(["tiny", "--arch", "qwen2_5_vl", "--out", str(out), "--seed", "1"]) == 0
    assert _files(out) == first
    other = tmp_path / "model"
    other.mkdir()
    (other / "config.json").write_text("{}")  # a file vrft did not write: never overwritten
    capsys.readouterr()
    assert main(["tiny", "--arch", "qwen2_5_vl", "--out", str(other)]) == 2
    assert "config.json" in capsys.readouterr().err and (other / "config.json").read_text() == "{}"
    assert sorted(os.listdir(other)) == ["config.json"]  # the staged build was removed


# ------------------------------------------------------------------ issue 19: single files, system folders
def _coco(tmp_path):
    from PIL import Image

    (tmp_path / "D").mkdir()
    Image.new("RGB", (20, 10)).save(tmp_path / "D" / "a.png")
    inst = {"images": [{"id": 1, "file_name": "a.png", "width": 20, "height": 10}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]}],
            "categories": [{"id": 1, "name": "cat"}]}  # fmt: skip
    (tmp_path / "I.json").write_text(json.dumps(inst))
    return ["data", "convert", "coco", str(tmp_path / "I.json"), "--images", str(tmp_path / "D")]


def test_single_file_out_never_replaces_a_file_vrft_did_not_write(tmp_path, capsys):
    argv = _coco(tmp_path)
    mine = tmp_path / "mine.jsonl"
    mine.write_text('{"my":1}\n')
    assert main([*argv, "--out", str(mine)]) == 2
    err = capsys.readouterr().err
    assert "vrft did not write it" in err and err.count("\n") == 1
    assert mine.read_text() == '{"my":1}\n'
    # its own earlier output is replaced (the manifest beside it lists it); a new name is written
    out = tmp_path / "records.jsonl"
    assert main([*argv, "--out", str(out)]) == 0
    assert json.loads((tmp_path / MANIFEST_NAME).read_text())["entries"] == {"records.jsonl": "data convert coco"}
    assert main([*argv, "--out", str(out)]) == 0
    out.write_text("edited\n")  # still listed: a file vrft wrote, even if edited since
    assert main([*argv, "--out", str(out)]) == 0 and out.read_text() != "edited\n"
    assert mine.read_text() == '{"my":1}\n'


def test_single_file_out_never_replaces_another_commands_output(tmp_path, capsys):
    """Was data loss: `data convert --out` replaced any file a manifest listed, an eval's metrics.json or
    a trained model's config.json included; now only a converter's own earlier records."""
    from vrft.outputs import OutputDir

    argv = _coco(tmp_path)
    written = {}
    for folder, owner, name in [("ev", "eval", "metrics.json"), ("run", "train", "final"),
                                ("conv", "data convert lvis", "records.jsonl")]:  # fmt: skip
        with OutputDir(tmp_path / folder, owner) as d:
            d.claim([name])
        path = tmp_path / folder / (name if name != "final" else "final/config.json")
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"{owner}\n")
        written[owner] = path
    shapes = tmp_path / "shapes"
    assert main(["data", "synth", "--out", str(shapes), "--images", "1", "--size", "32", "--records"]) == 0
    written["data synth"] = shapes / "detection.jsonl"
    before = {p: p.read_bytes() for p in written.values()}
    capsys.readouterr()
    for owner in ("eval", "train", "data synth"):
        assert main([*argv, "--out", str(written[owner])]) == 2
        err = capsys.readouterr().err
        assert err == (
            f"vrft data: error: --out {written[owner]} already exists and another vrft command wrote it "
            f"('{owner}' in {MANIFEST_NAME}); 'data convert coco' replaces only its own earlier output: "
            "choose another path (or delete that file first)\n"
        )
    assert {p: p.read_bytes() for p in written.values()} == before
    # another converter's records (and then its own) are replaced: the same kind of file
    assert main([*argv, "--out", str(written["data convert lvis"])]) == 0
    assert main([*argv, "--out", str(written["data convert lvis"])]) == 0
    assert json.loads(written["data convert lvis"].read_text().splitlines()[0])["task"] == "detection"
    # predict's annotated image (another single-file writer) cannot replace them either
    from vrft.outputs import check_file_output

    with pytest.raises(UserError, match="'file output' replaces only its own earlier output"):
        check_file_output(written["data convert lvis"])


def test_single_file_out_into_a_folder_vrft_owns(tmp_path):
    from vrft.outputs import file_is_vrfts

    argv = _coco(tmp_path)
    shapes = tmp_path / "shapes"
    assert main(["data", "synth", "--out", str(shapes), "--images", "1", "--size", "32"]) == 0
    assert file_is_vrfts(shapes / "images" / "000000.png") and file_is_vrfts(shapes / "instances.json")
    (shapes / "notes.jsonl").write_text("mine\n")
    assert not file_is_vrfts(shapes / "notes.jsonl")
    assert main([*argv, "--out", str(shapes / "notes.jsonl")]) == 2
    assert (shapes / "notes.jsonl").read_text() == "mine\n"


@pytest.mark.parametrize("where", ["/", "/usr", "/tmp", "~"])
def test_dir_out_refuses_the_root_and_system_folders(where, capsys):
    out = os.path.expanduser(where)
    assert main(["data", "synth", "--out", out, "--images", "1", "--size", "32"]) == 2
    err = capsys.readouterr().err
    assert "a folder of its own" in err and err.count("\n") == 1


def test_a_later_synth_of_another_part_keeps_the_earlier_parts(tmp_path, capsys):
    """Issue 19 §2c: configs/tiny/counting.yaml's `--images 0 --counting N` into the shared folder
    deleted the detection, classification and grounding records other configs need."""
    out = tmp_path / "shapes"
    assert main(["data", "synth", "--out", str(out), "--images", "3", "--size", "32", "--classification", "2",
                 "--grounding", "--records"]) == 0  # fmt: skip
    before = {f: (out / f).read_bytes() for f in _files(out) if f != MANIFEST_NAME}
    capsys.readouterr()
    assert main(["data", "synth", "--out", str(out), "--images", "0", "--size", "32", "--counting", "4"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 4 counting images" in printed and "wrote 0" not in printed
    assert "kept the earlier detection, classification files" in printed
    assert {f: (out / f).read_bytes() for f in before} == before  # every earlier file, byte for byte
    assert {f for f in _files(out) if f.startswith("counting")} == {
        "counting.jsonl", *(f"counting/{i:06d}.png" for i in range(4))
    }
    # drawing counting again replaces only the counting part (no stale counting image either)
    assert main(["data", "synth", "--out", str(out), "--images", "0", "--size", "32", "--counting", "2"]) == 0
    assert {f for f in _files(out) if f.startswith("counting")} == {"counting.jsonl", "counting/000000.png",
                                                                     "counting/000001.png"}  # fmt: skip
    assert {f: (out / f).read_bytes() for f in before} == before
    entries = json.loads((out / MANIFEST_NAME).read_text())["entries"]
    assert set(entries) == set(_files(out)) - {MANIFEST_NAME}


def test_synth_with_nothing_to_draw_is_refused(tmp_path, capsys):
    out = tmp_path / "shapes"
    assert main(["data", "synth", "--out", str(out), "--images", "0"]) == 2
    assert "nothing to draw" in capsys.readouterr().err
    assert main(["data", "synth", "--out", str(out), "--images", "0", "--ocr", "1", "--records"]) == 2
    assert "give --images N" in capsys.readouterr().err


def test_check_dir_output_can_refuse_a_folder_holding_an_input(tmp_path):
    from vrft.outputs import check_dir_output

    (tmp_path / "shapes").mkdir()
    data = tmp_path / "shapes" / "detection.jsonl"
    data.write_text("")
    assert check_dir_output(tmp_path / "shapes", inputs=[data], writes=["metrics.json"]) == tmp_path / "shapes"
    with pytest.raises(UserError, match="holds the input"):
        check_dir_output(tmp_path / "shapes", inputs=[data], writes=["metrics.json"], holding_inputs=True)
    assert check_dir_output(tmp_path / "out", inputs=[data], holding_inputs=True) == tmp_path / "out"
