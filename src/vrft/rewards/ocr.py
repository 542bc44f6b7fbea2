"""OCR rewards: the answer text against the record's ``text`` (column ``gt_text``).

Both strings are normalised (`vrft.parsing.normalize_text`: stripped, every whitespace run collapsed
to one space; case kept). Distances are in Unicode code points.

- ``ocr_similarity`` = 1 - Levenshtein(a, b) / max(len(a), len(b)); 1 when both are empty.
- ``ocr_exact`` = 1 if a == b.
A completion without a complete ``<answer>`` pair scores 0 in both; ``<answer></answer>`` is the
empty answer (1 and 1 for an image without text).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vrft.parsing import normalize_text, parse_text
from vrft.rewards._columns import answers, column


def levenshtein(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions, each cost 1) in code points.

    Bit-parallel (Myers 1999 / Hyyrö 2003) with Python integers as bit vectors: one pass over the
    longer string, each step a few operations on ``min(len(a), len(b))``-bit integers, so a 200,000
    character answer against a page of text takes well under a second.
    """
    if len(a) < len(b):
        a, b = b, a
    m = len(b)
    if m == 0:
        return len(a)
    full = (1 << m) - 1
    top = 1 << (m - 1)
    peq: dict[str, int] = {}
    for i, ch in enumerate(b):
        peq[ch] = peq.get(ch, 0) | (1 << i)
    pv, mv, score = full, 0, m
    for ch in a:
        eq = peq.get(ch, 0)
        xv = eq | mv
        xh = ((((eq & pv) + pv) & full) ^ pv) | eq
        ph = (mv | ~(xh | pv)) & full
        mh = pv & xh
        if ph & top:
            score += 1
        elif mh & top:
            score -= 1
        ph = ((ph << 1) | 1) & full
        mh = (mh << 1) & full
        pv = (mh | ~(xv | ph)) & full
        mv = ph & xv
    return score


def text_similarity(answer: str, target: str) -> float:
    """1 - Levenshtein / max length of the NORMALISED strings, in [0, 1]; 1 when both are empty."""
    a, b = normalize_text(answer), normalize_text(target)
    longest = max(len(a), len(b))
    if longest == 0:
        return 1.0
    return 1.0 - levenshtein(a, b) / longest


def _targets(gt_text: Any, n: int, name: str) -> list[str]:
    return ["" if t is None else str(t) for t in column("gt_text", gt_text, n, name)]


def ocr_similarity(completions: Sequence[Any], gt_text: Any = None, **_: Any) -> list[float]:
    """Range [0, 1]: normalised edit similarity of the answer and ``gt_text`` (see the module)."""
    targets = _targets(gt_text, len(completions), "ocr_similarity")
    out = []
    for a, t in zip(answers(completions), targets):
        p = parse_text(a)
        out.append(text_similarity(p.text, t) if p.ok else 0.0)
    return out


def ocr_exact(completions: Sequence[Any], gt_text: Any = None, **_: Any) -> list[float]:
    """{0, 1}: the normalised answer equals the normalised ``gt_text`` (case-sensitive)."""
    targets = _targets(gt_text, len(completions), "ocr_exact")
    out = []
    for a, t in zip(answers(completions), targets):
        p = parse_text(a)
        out.append(1.0 if p.ok and p.text == normalize_text(t) else 0.0)
    return out


def parse_fail_ocr(completions: Sequence[Any], **_: Any) -> list[float]:
    """Diagnostic (weight 0), {0, 1}: 1 when the completion has no complete answer pair."""
    return [0.0 if parse_text(a).ok else 1.0 for a in answers(completions)]
