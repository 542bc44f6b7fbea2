"""Load any local Hugging Face vision-language model + processor, and the facts vrft needs about it.

- `load_model_and_processor(path, ...)`: `AutoModelForImageTextToText` + `AutoProcessor` from a LOCAL
  directory (nothing is downloaded), the processor padding on the LEFT (persisted if it is saved again),
  the image processor's pixel budget optionally overridden.
- `check_processor(processor)`: refuse a processor that pads on the right (Qwen-VL log-prob passes crash).
- `convention_for(config)`: the family's coordinate convention (FAMILIES), or a ConfigError.
- `frame_for(width, height, convention, processor)`: the `vrft.boxes.Frame` of one image for this model.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

from vrft.errors import ConfigError
from vrft.models.families import FAMILIES

logger = logging.getLogger(__name__)

DTYPES = ("auto", "float32", "bfloat16", "float16")


def _model_type(config: Any) -> str | None:
    """`model_type` of a transformers config, a config.json dict, a SimpleNamespace, or a plain string."""
    if config is None or isinstance(config, str):
        return config
    if isinstance(config, dict):
        return config.get("model_type")
    return getattr(config, "model_type", None)


def convention_for(config: Any, override: str | None = None) -> str:
    """Coordinate convention of a model family: "norm1000" | "resized_pixels" (| "pixels" if overridden).

    Args:
        config: the model's config (object with `.model_type`, a config.json dict, or the model_type string).
        override: a user-set convention (`model.coordinate_convention`); None or "auto" = from the family.
    Raises:
        ConfigError: unknown family (or a family without a box convention) and no override.
    """
    from vrft.boxes import CONVENTIONS

    if override not in (None, "auto"):
        if override not in CONVENTIONS:
            raise ConfigError(
                f"model.coordinate_convention: unknown convention {override!r}; use one of {', '.join(CONVENTIONS)}"
            )
        return override
    model_type = _model_type(config)
    family = FAMILIES.get(model_type or "")
    if family is None or family.convention is None:
        known = ", ".join(f"{k} -> {v.convention}" for k, v in FAMILIES.items() if v.convention)
        why = "is not a known family" if family is None else "has no established box convention"
        raise ConfigError(
            f"model family {model_type!r} {why}, so vrft cannot tell how it writes boxes; set "
            f"model.coordinate_convention to one of {', '.join(CONVENTIONS)} (known families: {known})"
        )
    return family.convention


def patch_factor(processor: Any) -> int | None:
    """Side granularity in pixels of the processor's resize grid (patch_size * merge_size), read from the
    image processor itself (28 for Qwen2/2.5-VL, 32 for Qwen3-VL); None if it has no such grid."""
    ip = getattr(processor, "image_processor", processor)
    patch, merge = getattr(ip, "patch_size", None), getattr(ip, "merge_size", None)
    if isinstance(patch, dict):
        patch = patch.get("height")
    if not patch or not merge:
        return None
    return int(patch) * int(merge)


def pixel_budget(processor: Any) -> tuple[int, int] | None:
    """(min_pixels, max_pixels) of a Qwen-style image processor, or None if it has no pixel budget."""
    ip = getattr(processor, "image_processor", processor)
    size = getattr(ip, "size", None)
    if size is None:
        return None
    get = size.get if isinstance(size, dict) else (lambda k, d=None: getattr(size, k, d))
    # transformers 5 resizes by size["shortest_edge"/"longest_edge"] (pixel counts); older attributes are fallbacks
    lo = get("shortest_edge") or getattr(ip, "min_pixels", None)
    hi = get("longest_edge") or getattr(ip, "max_pixels", None)
    if lo is None or hi is None or patch_factor(ip) is None:
        return None
    return int(lo), int(hi)


def frame_for(width: float, height: float, convention: str, processor: Any = None):
    """The `vrft.boxes.Frame` of one image (original `width` x `height` pixels) for this model.

    For "resized_pixels" the resized size is what the processor will feed the model: smart_resize with
    the processor's patch factor and min/max pixels (so `processor` is required then).
    """
    from vrft.boxes import Frame

    if convention != "resized_pixels":
        return Frame(width, height, convention)
    factor, budget = patch_factor(processor), pixel_budget(processor)
    if factor is None or budget is None:
        raise ConfigError(
            "the 'resized_pixels' coordinate convention needs a Qwen-style processor with patch_size, "
            "merge_size and a min/max pixel budget; set model.coordinate_convention to 'norm1000' or 'pixels'"
        )
    return Frame.for_image(
        width, height, convention, factor=factor, min_pixels=budget[0], max_pixels=budget[1]
    )


def check_processor(processor: Any) -> None:
    """Raise ConfigError unless the processor (or tokenizer) pads on the LEFT and has a pad token.

    Generation and log-prob passes over a batch need left padding; Qwen-VL's rope-index computation
    crashes on right-padded batches.
    """
    tokenizer = getattr(processor, "tokenizer", processor)
    side = getattr(tokenizer, "padding_side", None)
    if side != "left":
        raise ConfigError(
            f"the processor pads on the {side!r} side; vrft needs LEFT padding for batched generation and "
            "log-probs (Qwen-VL crashes on right padding). Fix: `processor.tokenizer.padding_side = 'left'`, "
            "or load it with vrft.models.load_model_and_processor (which does this), or re-save it with "
            "AutoProcessor.from_pretrained(path, padding_side='left').save_pretrained(path)"
        )
    if getattr(tokenizer, "pad_token_id", None) is None:
        raise ConfigError(
            "the processor's tokenizer has no pad token; set `processor.tokenizer.pad_token` (e.g. to its "
            "eos token) before batching"
        )


def _read_model_dir(path: str | os.PathLike) -> tuple[Path, dict]:
    p = Path(path).expanduser()
    hint = (
        "vrft loads LOCAL Hugging Face model directories only; download one first, e.g. "
        "`hf download Qwen/Qwen2-VL-2B-Instruct --local-dir models/qwen2-vl-2b`, or build a tiny one "
        "with `vrft tiny --arch qwen2_5_vl --out DIR`"
    )
    if not p.exists():
        raise ConfigError(f"model directory not found: {p}; {hint}")
    if not p.is_dir():
        raise ConfigError(f"model path {p} is a file, not a directory; {hint}")
    cfg = p / "config.json"
    if not cfg.is_file():
        raise ConfigError(f"{p} has no config.json, so it is not a Hugging Face model directory; {hint}")
    try:
        return p, json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read {cfg}: {err}") from err


def _load_problem(err: Exception) -> str:
    """One line saying why transformers could not load a model directory's files; out-of-memory errors
    are re-raised (they are not a problem of the files). A corrupt config.json raises huggingface_hub's
    StrictDataclassFieldValidationError, a cut weights file safetensors' SafetensorError, so every type
    is caught, not only OSError / ValueError."""
    if isinstance(err, MemoryError) or "OutOfMemoryError" in type(err).__name__:
        raise err
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def load_processor(path: str | os.PathLike, *, min_pixels: int | None = None, max_pixels: int | None = None):
    """`AutoProcessor` from a local directory, padding LEFT, with an optional pixel budget override."""
    from transformers import AutoProcessor

    p, config = _read_model_dir(path)
    try:
        processor = AutoProcessor.from_pretrained(p, local_files_only=True, padding_side="left")
    except Exception as err:  # noqa: BLE001 (any failure on the user's files; memory errors re-raised)
        raise ConfigError(f"cannot load a processor from {p}: {_load_problem(err)}") from err
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is None:
        raise ConfigError(f"{p}: the processor has no tokenizer; vrft needs an image-text processor")
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    set_pixel_budget(processor, config.get("model_type"), min_pixels, max_pixels)
    check_processor(processor)
    return processor


def set_pixel_budget(
    processor: Any, model_type: str | None, min_pixels: int | None, max_pixels: int | None
) -> None:
    """Override the image processor's min/max pixels (Qwen families); ignored with a warning elsewhere."""
    if min_pixels is None and max_pixels is None:
        return
    family = FAMILIES.get(model_type or "")
    ip = getattr(processor, "image_processor", None)
    if (family is not None and not family.pixel_budget) or ip is None or pixel_budget(ip) is None:
        logger.warning("min_pixels/max_pixels do not apply to model family %r; ignored", model_type)
        return
    lo, hi = pixel_budget(ip)
    lo = int(min_pixels) if min_pixels is not None else lo
    hi = int(max_pixels) if max_pixels is not None else hi
    if lo > hi:
        raise ConfigError(f"min_pixels ({lo}) is larger than max_pixels ({hi})")
    if dataclasses.is_dataclass(ip.size):  # transformers' SizeDict: keep its type
        ip.size = dataclasses.replace(ip.size, shortest_edge=lo, longest_edge=hi)
    else:
        ip.size = {**dict(ip.size), "shortest_edge": lo, "longest_edge": hi}
    for name, value in (("min_pixels", lo), ("max_pixels", hi)):
        if hasattr(ip, name):
            setattr(ip, name, value)


def _torch_dtype(dtype: str):
    import torch

    if dtype not in DTYPES:
        raise ConfigError(f"model.dtype: unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")
    return "auto" if dtype == "auto" else getattr(torch, dtype)


def load_model_and_processor(
    path: str | os.PathLike,
    *,
    dtype: str = "auto",
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    attn_implementation: str | None = None,
    device_map: Any = None,
) -> tuple[Any, Any]:
    """Load `(model, processor)` from a local Hugging Face directory through the Auto classes.

    Args:
        path: local directory with config.json, weights and processor files (real checkpoint or tiny).
        dtype: "auto" (the checkpoint's dtype), "float32", "bfloat16" or "float16".
        min_pixels / max_pixels: override the image processor's pixel budget (Qwen families); None keeps
            the saved one (e.g. a tiny model's fixed 112x112).
        attn_implementation: "sdpa", "eager", "flash_attention_2", ... (None: transformers' default).
        device_map: passed to from_pretrained (None: load on CPU; move the model yourself).
    Returns:
        (model, processor): an `AutoModelForImageTextToText` model in eval mode and a processor padding LEFT.
    Raises:
        ConfigError: missing directory, not a model directory, unloadable files, bad dtype.
    """
    from transformers import AutoModelForImageTextToText

    p, _ = _read_model_dir(path)
    torch_dtype = _torch_dtype(dtype)
    processor = load_processor(p, min_pixels=min_pixels, max_pixels=max_pixels)
    kwargs: dict[str, Any] = {"dtype": torch_dtype, "local_files_only": True}
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    if device_map is not None:
        kwargs["device_map"] = device_map
    try:
        model = AutoModelForImageTextToText.from_pretrained(p, **kwargs)
    except Exception as err:  # noqa: BLE001 (a corrupt config.json or weights file raises many types)
        raise ConfigError(f"cannot load an image-text model from {p}: {_load_problem(err)}") from err
    model.eval()
    logger.info(
        "loaded %s from %s (%s, %.1fM parameters)",
        type(model).__name__, p, model.dtype, sum(t.numel() for t in model.parameters()) / 1e6,
    )  # fmt: skip
    return model, processor
