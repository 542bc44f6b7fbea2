"""Per-family facts of vision-language models that vrft needs: coordinates, image grid, pixel budget.

`FAMILIES` is keyed by `config.model_type` (what `config.json` says). A family missing here still trains
and evaluates: the user states its coordinate convention (`model.coordinate_convention`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    """Facts of one model family.

    convention: how the family writes boxes: "norm1000" (integers 0..1000 of the original image) or
        "resized_pixels" (absolute pixels of the processor-resized image); None: no established convention.
    patch_factor: image side granularity in pixels of the processor (patch size * spatial merge), i.e. the
        `factor` of smart_resize; None where the processor does not resize to a free grid.
    pixel_budget: whether `min_pixels` / `max_pixels` (the processor's dynamic-resolution budget) apply.
    """

    convention: str | None
    patch_factor: int | None
    pixel_budget: bool
    note: str = ""


# model_type -> facts. A literal dict: add one line to support a family.
FAMILIES: dict[str, Family] = {
    "qwen2_vl": Family("norm1000", 28, True, "Qwen2-VL: boxes as integers 0..1000 (the paper's setting)"),
    "qwen2_5_vl": Family("resized_pixels", 28, True, "Qwen2.5-VL: absolute pixels of the resized image"),
    "qwen3_vl": Family("norm1000", 32, True, "Qwen3-VL: relative 0..1000 coordinates; patch 16 x merge 2"),
    "qwen3_vl_moe": Family("norm1000", 32, True, "Qwen3-VL MoE: as Qwen3-VL"),
    "smolvlm": Family(
        None, None, False, "SmolVLM: no trained box convention; set model.coordinate_convention"
    ),
    "idefics3": Family(
        None, None, False, "Idefics3: no trained box convention; set model.coordinate_convention"
    ),
}
