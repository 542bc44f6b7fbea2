"""``vrft eval --paper`` / ``--presence-from``: the reference implementation's evaluation settings.

What the reference's inference scripts and scoring notebooks do, where vrft's defaults differ
(docs/evaluation.md, "Paper reproduction mode", has the whole table):

- prompts: its texts byte for byte (`vrft.tasks.reference`, prompt style ``visual-rft``): ``<image>\\n``
  before the COCO / LVIS / classification question; LISA with the R1 system prompt and 128 tokens;
- pixel budget: its COCO, LVIS and classification inference pass no limit with the BASE model's
  processor, so the Qwen2-VL default applies: min 3136, max 12845056 pixels (`PAPER_MIN_PIXELS`,
  `PAPER_MAX_PIXELS`); its LISA inference loads the processor saved with the evaluated checkpoint
  (its trainer saves the training budget, 401408, into it), so for grounding ``--paper`` keeps the
  model directory's own processor budget; vrft's default is also the model directory's budget, and
  docs recommend passing the training budget (401408);
- LVIS: per-class AP averaged over the four area ranges (its notebook), not area "all";
- presence: the detection prompt only for the categories a presence map lists (its
  ``exist_map_*_baseline.json``: the BASELINE model's answers, reused for every model) — given with
  ``--presence-from`` and ``--protocol paper``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vrft.errors import UserError

PAPER_MIN_PIXELS = 3136
PAPER_MAX_PIXELS = 12845056
"""The Qwen2-VL processor's default budget (``min_pixels`` 56*56, ``max_pixels`` 28*28*16384), which
the reference's COCO / LVIS / classification inference uses (it sets no limit)."""


@dataclass
class PaperOptions:
    """The evaluation settings `vrft eval` derives from ``--paper`` / ``--presence-from``."""

    prompt_style: str = "vrft"
    min_pixels: int | None = None
    max_pixels: int | None = None
    lvis_area: str = "all"
    presence_map: Any = None


def paper_options(args: Any, task: str | None = None) -> PaperOptions:
    """`PaperOptions` from parsed `vrft eval` arguments (``paper``, ``presence_from``, ``protocol``,
    ``min_pixels``, ``max_pixels``) for `task`; explicit ``--min-pixels`` / ``--max-pixels`` win over
    ``--paper``, which sets the processor default budget except for grounding (see the module doc).

    Raises:
        UserError: ``--presence-from`` without ``--protocol paper``.
        DataError: an unreadable presence map.
    """
    paper = bool(getattr(args, "paper", False))
    budget = paper and task != "grounding"
    presence_from = getattr(args, "presence_from", None)
    min_pixels = getattr(args, "min_pixels", None)
    max_pixels = getattr(args, "max_pixels", None)
    options = PaperOptions(
        prompt_style="visual-rft" if paper else "vrft",
        min_pixels=min_pixels if min_pixels is not None or not budget else PAPER_MIN_PIXELS,
        max_pixels=max_pixels if max_pixels is not None or not budget else PAPER_MAX_PIXELS,
        lvis_area="average" if paper else "all",
    )
    if presence_from:
        if getattr(args, "protocol", None) != "paper":
            raise UserError(
                "--presence-from replaces the presence pass of the paper protocol: add --protocol paper"
            )
        from vrft.evaluate.protocols import load_presence_map

        options.presence_map = load_presence_map(presence_from)
    return options
