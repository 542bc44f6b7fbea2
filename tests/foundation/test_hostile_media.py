"""Hostile input to the newer surfaces: user tool / reward modules, video and image-set records, outputs.

Each case runs `vrft.cli.main([...])` in-process (or the shared function behind it) and asserts what a
user sees: exit 2, one `vrft CMD: error: ...` line naming the file and the fix, no traceback, and no
input or foreign file replaced. Found by a probe of hostile calls against the video / many-image,
doctor and tool surfaces; each case stands for the shared mechanism it fixed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from vrft.cli import main
from vrft.errors import ConfigError


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def error_of(capsys, cmd: str, *argv) -> str:
    """Run; assert exit 2, a `vrft CMD: error:` message and no traceback; return the message."""
    rc, out, err = run(capsys, *argv)
    assert "Traceback" not in out + err
    assert rc == 2, (rc, out, err)
    marker = f"vrft {cmd}: error: "
    assert marker in err, err
    return err.split(marker, 1)[1].rstrip("\n")


# ----------------------------------------------------------------------- user code that fails to import
BAD_MODULES = {
    "syntax": ("def fn(:\n", "does not compile"),
    "raises": ("raise RuntimeError('boom at import')\n", "raised RuntimeError: boom at import"),
    "exits": ("import sys\nsys.exit(3)\n", "raised SystemExit"),
}


@pytest.mark.parametrize("kind", BAD_MODULES)
def test_user_tool_module_that_does_not_import_is_one_config_error(tmp_path, monkeypatch, kind):
    from vrft.tools import load_user_tool

    source, expected = BAD_MODULES[kind]
    (tmp_path / f"badtool_{kind}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=expected) as info:
        load_user_tool(f"badtool_{kind}:fn")
    assert f"tool 'badtool_{kind}:fn'" in str(info.value)


@pytest.mark.parametrize("kind", BAD_MODULES)
def test_user_reward_module_that_does_not_import_is_one_config_error(tmp_path, monkeypatch, kind):
    from vrft.rewards import get_reward
    from vrft.train.preflight import resolve_reward

    source, expected = BAD_MODULES[kind]
    (tmp_path / f"badreward_{kind}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=expected):
        get_reward(f"badreward_{kind}:fn")
    with pytest.raises(ConfigError, match=expected):
        resolve_reward(f"badreward_{kind}:fn")


def test_check_config_with_a_tool_module_that_raises_is_one_line(tmp_path, monkeypatch, capsys):
    """Was a traceback: only ImportError was caught around the import of a user tool."""
    (tmp_path / "raising_tool.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "model:\n  path: /nonexistent/model\ndata:\n  train: /nonexistent/g.jsonl\n  task: grounding\n"
        "tools:\n  enabled: true\n  names: ['raising_tool:fn']\n"
    )
    msg = error_of(capsys, "check-config", "check-config", cfg)
    assert "tools.names: tool 'raising_tool:fn': importing module 'raising_tool' raised RuntimeError" in msg
