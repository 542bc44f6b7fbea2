"""Small argument and output helpers shared by the `vrft data` actions (commands/data.py, data_synth.py)."""

from __future__ import annotations

from pathlib import Path

from vrft.errors import UserError


def csv_list(text: str | None) -> list[str] | None:
    """``"a, b,c"`` -> ``["a", "b", "c"]``; None stays None; an empty list is a UserError."""
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise UserError(f"empty list {text!r} (give comma-separated values)")
    return items


def report_written(n: int, what: str, out: Path) -> None:
    """Print the one-line summary of what an action wrote."""
    print(f"wrote {n} {what} to {out}")
