"""`vrft predict`: where the annotated picture goes (issue 19 §2c: two different 001000.png inputs
both became ./001000.vrft.png)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image


def test_default_picture_is_beside_each_input(tmp_path):
    from vrft.commands.predict import default_out

    a, b = tmp_path / "a" / "001000.png", tmp_path / "b" / "001000.png"
    assert default_out(a) == tmp_path / "a" / "001000.vrft.png"
    assert default_out(a) != default_out(b)


@pytest.mark.slow
def test_two_inputs_of_the_same_name_get_their_own_pictures(tmp_path, monkeypatch, capsys):
    from importlib.resources import files

    from vrft.cli import main

    monkeypatch.chdir(tmp_path)
    base = str(files("vrft.demo") / "base_model")
    for folder, colour in (("a", (200, 0, 0)), ("b", (0, 0, 200))):
        (tmp_path / folder).mkdir()
        Image.new("RGB", (64, 48), colour).save(tmp_path / folder / "001000.png")
        args = ["predict", str(tmp_path / folder / "001000.png"), "--model", base, "--detect", "circle",
                "--max-new-tokens", "4", "--device", "cpu"]  # fmt: skip
        assert main(args) == 0
    assert (tmp_path / "a" / "001000.vrft.png").is_file() and (tmp_path / "b" / "001000.vrft.png").is_file()
    assert not (Path.cwd() / "001000.vrft.png").exists()
