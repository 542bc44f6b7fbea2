"""Each tiny config's header is a recipe a new user follows line by line: make the model, the training
data and a held-out set, then check-config, train, sft, eval, predict and score again. This runs every
`vrft ...` line of each header as written (in a temporary directory holding a copy of configs/), in
the quick form the header itself documents (grpo.max_steps=1 / sft.max_steps=1), and checks each
exits 0 and writes what the header says."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest

from vrft.cli import main

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs" / "tiny").glob("*.yaml"))
QUICK = {"train": ["grpo.max_steps=1"], "sft": ["sft.max_steps=1"]}


def header_commands(path: Path) -> list[list[str]]:
    """The `vrft ...` command lines of the comment block before the first YAML key."""
    commands = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        text = line.lstrip("#").strip()
        if text.startswith("vrft "):
            commands.append(shlex.split(text, comments=True)[1:])
    return commands


# How a header makes its model and data: a tiny random model and the synthetic world, or (a config that
# shows a reward that rises) the shipped demo base and the demo's world, the data it knows.
MAKE = {
    "tiny": ["tiny", "data synth", "data synth"],
    "demo": ["demo export-base", "demo build-world", "demo build-world"],
}
RUN = ["check-config", "train", "sft", "eval", "predict", "eval"]


def _step(argv: list[str]) -> str:
    return f"{argv[0]} {argv[1]}" if argv[0] in ("data", "demo") else argv[0]


def test_every_header_documents_the_whole_recipe_and_its_quick_form():
    for path in CONFIGS:
        steps = [_step(argv) for argv in header_commands(path)]
        assert steps in ([*make, *RUN] for make in MAKE.values()), (path, steps)
        held_out = header_commands(path)[2]
        if held_out[0] == "data":
            assert "--seed" in held_out and held_out[held_out.index("--seed") + 1] != "0", (
                f"{path.name}: not held out"
            )
        else:  # vrft demo build-world ... seed=N: another world seed
            seeds = [w.split("=", 1)[1] for w in held_out if w.startswith("seed=")]
            assert seeds and seeds[0] != "0", f"{path.name}: not held out"
        head = path.read_text(encoding="utf-8").split("\nname:")[0]
        assert "grpo.max_steps=1" in head and "sft.max_steps=1" in head, path.name


@pytest.mark.slow  # six short recipes: tiny build, synth, 1 GRPO + 1 SFT step, eval, predict (~10-20 s each)
@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_the_header_runs_as_written(path, tmp_path, monkeypatch):
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)
    written = []
    for argv in header_commands(path):
        argv = argv + QUICK.get(argv[0], [])
        assert main(argv) == 0, f"{path.name}: vrft {shlex.join(argv)} failed"
        if "--out" in argv:
            written.append(argv[argv.index("--out") + 1])
    name = path.stem
    assert (tmp_path / f"runs/tiny/{name}/final/vrft.json").is_file()
    assert (tmp_path / f"runs/tiny/{name}/summary.json").is_file()  # a run ends with a summary and curves
    assert (tmp_path / f"runs/tiny/{name}/curves.png").is_file()
    assert (tmp_path / f"runs/tiny/{name}-sft/final").is_dir()
    assert (tmp_path / f"runs/tiny/{name}-eval/metrics.json").is_file()
    assert (tmp_path / f"runs/tiny/{name}-rescored/metrics.json").is_file()
    assert all((tmp_path / out).exists() for out in written)  # incl. the drawn prediction of box tasks
