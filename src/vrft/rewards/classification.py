"""Classification rewards.

``classification_substring`` is the reference's rule (bidirectional substring after removing spaces and
underscores, lower-cased), exploitable by partial answers ("Audi", "737"); we only fix the empty answer
(it scores 0). ``classification_exact`` (our default) needs an exact match after :func:`normalize_label`,
against the label or one of its aliases.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vrft.parsing import parse_label
from vrft.rewards._columns import answers, column, optional_column


def normalize_label(text: str) -> str:
    """Case-folded, only letters and digits kept (drops spaces, underscores, hyphens, punctuation):
    ``"Boeing 737-800."`` -> ``"boeing737800"``."""
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def _substring_norm(text: str) -> str:
    return text.replace(" ", "").replace("_", "").lower().strip()


def substring_match(answer: str, label: str) -> bool:
    """The reference's rule: after removing spaces and underscores and lower-casing, either string
    contains the other. An empty (normalised) answer never matches (fixes the reference)."""
    a, g = _substring_norm(answer), _substring_norm(label)
    return bool(a) and (a in g or g in a)


def exact_match(answer: str, label: str, aliases: Sequence[str] | None = None) -> bool:
    """Exact equality after :func:`normalize_label` with the label or any alias; empty never matches."""
    a = normalize_label(answer)
    if not a:
        return False
    return a == normalize_label(label) or any(a == normalize_label(x) for x in (aliases or ()) if x)


def classification_substring(completions: Sequence[Any], gt_label: Any = None, **_: Any) -> list[float]:
    """The reference's accuracy reward, {0, 1}: :func:`substring_match` on the answer."""
    labels = column("gt_label", gt_label, len(completions), "classification_substring")
    out = []
    for a, g in zip(answers(completions), labels):
        p = parse_label(a)
        out.append(1.0 if p.ok and g and substring_match(p.label, str(g)) else 0.0)
    return out


def classification_exact(
    completions: Sequence[Any], gt_label: Any = None, gt_aliases: Any = None, **_: Any
) -> list[float]:
    """Our accuracy reward, {0, 1}: :func:`exact_match` with the label and its aliases (``gt_aliases``)."""
    n = len(completions)
    labels = column("gt_label", gt_label, n, "classification_exact")
    aliases = optional_column(gt_aliases, n)
    out = []
    for a, g, al in zip(answers(completions), labels, aliases):
        p = parse_label(a)
        out.append(1.0 if p.ok and g and exact_match(p.label, str(g), al) else 0.0)
    return out


def parse_fail_classification(completions: Sequence[Any], **_: Any) -> list[float]:
    """Diagnostic (weight 0), {0, 1}: 1 when the answer is missing or blank."""
    return [0.0 if parse_label(a).ok else 1.0 for a in answers(completions)]
