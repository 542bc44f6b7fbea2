"""The scanner of `vrft.parsing`: JSON-ish values read in linear time, never evaluated.

Single or double quotes, ``NaN`` / ``Infinity`` / ``true`` / ``None`` literals, missing or extra
commas; work capped at :data:`MAX_TOKENS` steps and :data:`MAX_DEPTH` nesting. A scan that stops
early raises `Stop` with what it had built (the parsers salvage complete items from it). Numbers
are ASCII only. Used by `vrft.parsing` alone (detections, boxes, counts); kept apart so that module
holds the answer rules and this one the reading of values.
"""

from __future__ import annotations

import math
import re
from typing import Any

MAX_TOKENS = 10_000
"""Scanner steps allowed for one answer (about 1,300 detection entries); beyond this the parse stops
as if the text were truncated."""
MAX_DEPTH = 32
"""Nesting depth of brackets; deeper input is a syntax error."""

_WS = re.compile(r"\s*")
# Numbers are ASCII only ([0-9], not `\d`): fullwidth (１２) and Arabic-Indic (١٢) digits are not
# numbers here, as in the reference's JSON / Python-literal parsing and in what the tokenizers write.
_NUM = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_IDENT_VALUES: dict[str, Any] = {
    "nan": math.nan,
    "infinity": math.inf,
    "inf": math.inf,
    "true": True,
    "false": False,
    "null": None,
    "none": None,
}


# ----------------------------------------------------------------------------------------------
# The scanner: JSON-ish values, linear time, never evaluates
# ----------------------------------------------------------------------------------------------


class Stop(Exception):
    """The scan stopped early. ``kind``: truncated / syntax / limit. ``partial``: the list being built
    (with salvaged complete items) or None; ``incomplete``: an item was cut off."""

    def __init__(self, kind: str, at: int, partial: list | None = None, incomplete: bool = True):
        super().__init__(kind)
        self.kind, self.at, self.partial, self.incomplete = kind, at, partial, incomplete


class Scanner:
    def __init__(self, text: str, pos: int = 0, budget: int = MAX_TOKENS):
        self.s, self.i, self.n, self.budget = text, pos, len(text), budget

    def ws(self) -> None:
        self.i = _WS.match(self.s, self.i).end()

    def value(self, depth: int = 0) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise Stop("limit", self.i)
        if depth > MAX_DEPTH:
            raise Stop("syntax", self.i)
        self.ws()
        if self.i >= self.n:
            raise Stop("truncated", self.i)
        c = self.s[self.i]
        if c == "[":
            return self.array(depth)
        if c == "{":
            return self.obj(depth)
        if c in "'\"":
            return self.string()
        if c in "0123456789+-.":
            return self.number()
        if c.isalpha() or c == "_":
            return self.ident()
        raise Stop("syntax", self.i)

    def array(self, depth: int) -> list:
        self.i += 1
        items: list = []
        while True:
            self.ws()
            if self.i >= self.n:
                raise Stop("truncated", self.i, items, incomplete=False)
            c = self.s[self.i]
            if c == "]":
                self.i += 1
                return items
            if c == ",":
                self.i += 1
                continue
            try:
                items.append(self.value(depth + 1))
            except Stop as stop:
                if stop.partial is not None:
                    items.append(stop.partial)
                raise Stop(stop.kind, stop.at, items, stop.incomplete) from None

    def obj(self, depth: int) -> dict:
        self.i += 1
        out: dict = {}
        while True:
            self.ws()
            if self.i >= self.n:
                raise Stop("truncated", self.i)
            c = self.s[self.i]
            if c == "}":
                self.i += 1
                return out
            if c == ",":
                self.i += 1
                continue
            if c in "'\"":
                key = self.string()
            else:
                m = _IDENT.match(self.s, self.i)
                if m is None:
                    raise Stop("syntax", self.i)
                key, self.i = m.group(), m.end()
            self.ws()
            if self.i >= self.n:
                raise Stop("truncated", self.i)
            if self.s[self.i] != ":":
                raise Stop("syntax", self.i)
            self.i += 1
            try:
                out[key] = self.value(depth + 1)
            except Stop as stop:
                raise Stop(stop.kind, stop.at) from None  # a cut-off entry is not salvaged

    def string(self) -> str:
        q, start = self.s[self.i], self.i + 1
        j = self.s.find(q, start)
        while j >= 0:
            k = j - 1
            while k >= start and self.s[k] == "\\":
                k -= 1
            if (j - 1 - k) % 2 == 0:
                break
            j = self.s.find(q, j + 1)
        if j < 0:
            self.i = self.n
            raise Stop("truncated", self.n)
        self.i = j + 1
        raw = self.s[start:j]
        return _ESCAPE.sub(r"\1", raw) if "\\" in raw else raw

    def number(self) -> float:
        s, i = self.s, self.i
        if s[i] in "+-" and i + 1 < self.n and s[i + 1].isalpha():
            sign = -1.0 if s[i] == "-" else 1.0
            self.i += 1
            v = self.ident()
            return sign * v if isinstance(v, float) else math.nan
        m = _NUM.match(s, i)
        if m is None:
            if i + 1 >= self.n:
                self.i = self.n
                raise Stop("truncated", self.n)
            raise Stop("syntax", i)
        self.i = m.end()
        return float(m.group())

    def ident(self) -> Any:
        m = _IDENT.match(self.s, self.i)
        if m is None:
            raise Stop("syntax", self.i)
        self.i = m.end()
        word = m.group()
        return _IDENT_VALUES.get(word.lower(), word)


def as_number(v: Any) -> float | None:
    """A finite float from a number or a numeric string; None otherwise (bools, NaN, inf, text)."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        f = float(v)
    elif isinstance(v, str):
        t = v.strip()
        if _NUM.fullmatch(t) is None:
            return None
        f = float(t)
    else:
        return None
    return f if math.isfinite(f) else None


def as_box4(v: Any) -> tuple[float, float, float, float] | None:
    """Four finite numbers -> a box with ordered corners; None otherwise."""
    if not isinstance(v, list) or len(v) != 4:
        return None
    nums = [as_number(x) for x in v]
    if any(x is None for x in nums):
        return None
    x1, y1, x2, y2 = nums
    return (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))


def norm_key(k: Any) -> str:
    return "".join(ch for ch in str(k).lower() if ch.isalnum())
