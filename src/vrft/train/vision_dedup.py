"""Encode each DISTINCT image once per forward pass of a VLM's vision tower.

GRPO repeats every prompt G times, so every log-prob pass (policy, reference, old policy) hands the vision
tower G identical copies of each image. `VisionDedup` sits on the vision tower through two PyTorch
forward hooks (a public API; no class or function of TRL/transformers is replaced): the pre-hook keeps
one copy of each distinct image (same pixel tensor, same grid / patch mask) and the post-hook repeats the
tower's outputs back to the original order with `index_select`, so the caller sees exactly the tensors it
would have seen and gradients of the copies add up in the one encode (the chain rule of a repeat).

Two input layouts cover the supported families (`VISION_LAYOUTS`, keyed by `config.model_type`):

- ``"rows"`` (Qwen2-VL, Qwen2.5-VL, Qwen3-VL): `tower(pixel_rows [sum_i t_i*h_i*w_i, C*P*P], grid_thw
  [n, 3])`; every output tensor whose first dimension counts rows, pre-merge (`last_hidden_state`) or
  after the spatial merge (`pooler_output`, Qwen3-VL's `deepstack_features`), is repeated per image block.
- ``"batch"`` (Idefics3, SmolVLM): `tower(pixel_values [n, C, H, W], patch_attention_mask [n, h, w])`;
  outputs are repeated along their first dimension.

Duplicates are found exactly: a per-image fingerprint (two sums) proposes candidates, `torch.equal` on
the pixels (and grid / patch mask) confirms them. A missed duplicate only costs time, never correctness.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

logger = logging.getLogger(__name__)

# model_type -> (attribute name of the vision tower, input layout). A literal dict: one line per family.
VISION_LAYOUTS: dict[str, tuple[str, str]] = {
    "qwen2_vl": ("visual", "rows"),
    "qwen2_5_vl": ("visual", "rows"),
    "qwen3_vl": ("visual", "rows"),
    "idefics3": ("vision_model", "batch"),
    "smolvlm": ("vision_model", "batch"),
}


@dataclass
class DedupStats:
    """Counters since the last `reset()`: tower calls, images handed to the tower, images it encoded."""

    calls: int = 0
    images_in: int = 0
    images_encoded: int = 0

    def reset(self) -> None:
        self.calls = self.images_in = self.images_encoded = 0


@dataclass
class _Plan:
    """How to expand one call's outputs: unique-image sizes (rows, or 1 per image) and the inverse map."""

    unique_sizes: list[int]  # rows of each unique image ("rows") or 1 ("batch")
    inverse: torch.Tensor  # [n] position in the unique list of each original image
    layout: str
    _index: dict[int, torch.Tensor] | None = None

    def index_for(self, length: int, device: torch.device) -> torch.Tensor | None:
        """Gather index that expands a unique-layout tensor of first dimension `length`, or None."""
        total = sum(self.unique_sizes)
        if length <= 0 or total % length:
            return None
        ratio = total // length  # 1: pre-merge rows; merge**2: merged rows
        if any(s % ratio for s in self.unique_sizes):
            return None
        self._index = self._index or {}
        if ratio not in self._index:
            sizes = [s // ratio for s in self.unique_sizes]
            starts = [0]
            for s in sizes[:-1]:
                starts.append(starts[-1] + s)
            parts = [
                torch.arange(starts[u], starts[u] + sizes[u], dtype=torch.long) for u in self.inverse.tolist()
            ]
            self._index[ratio] = torch.cat(parts)
        return self._index[ratio].to(device)


class VisionDedup:
    """Forward hooks on one vision tower that encode each distinct image once per call.

    Args:
        tower: the vision encoder module (e.g. `model.model.visual`).
        layout: "rows" or "batch" (see the module docstring).
    Attributes:
        stats: `DedupStats` (calls, images in, images encoded).
        enabled: set False to pass calls through unchanged (the hooks stay registered).
    """

    def __init__(self, tower: torch.nn.Module, layout: str):
        if layout not in ("rows", "batch"):
            raise ValueError(f"unknown vision layout {layout!r}")
        self.layout = layout
        self.stats = DedupStats()
        self.enabled = True
        self._plans: list[_Plan | None] = []
        self._handles = [
            tower.register_forward_pre_hook(self._pre, with_kwargs=True),
            tower.register_forward_hook(self._post, with_kwargs=True),
        ]

    def remove(self) -> None:
        """Unregister the hooks."""
        for h in self._handles:
            h.remove()
        self._handles = []

    # ----------------------------------------------------------------------------------------- hooks
    def _pre(self, module: torch.nn.Module, args: tuple, kwargs: dict[str, Any]):
        names = (
            ("hidden_states", "grid_thw")
            if self.layout == "rows"
            else ("pixel_values", "patch_attention_mask")
        )
        args = list(args)
        values = [args[i] if i < len(args) else kwargs.get(name) for i, name in enumerate(names)]
        pixels, meta = values
        if not self.enabled or not isinstance(pixels, torch.Tensor):
            self._plans.append(None)
            return None
        if self.layout == "rows":
            if meta is None:
                self._plans.append(None)
                return None
            sizes = meta.prod(-1).tolist()
            pieces = list(pixels.split(sizes))
            metas = [tuple(r) for r in meta.tolist()]
        else:
            sizes = [1] * pixels.shape[0]
            pieces = list(pixels.unbind(0))
            metas = [None] * len(pieces) if meta is None else list(meta.unbind(0))
        n = len(pieces)
        self.stats.calls += 1
        self.stats.images_in += n
        unique, inverse = _find_unique(pieces, metas, exact_meta=self.layout == "rows")
        self.stats.images_encoded += len(unique)
        if len(unique) == n:
            self._plans.append(None)
            return None
        if self.layout == "rows":
            new_pixels = torch.cat([pieces[u] for u in unique])
            new_meta = meta[torch.tensor(unique, device=meta.device)]
        else:
            idx = torch.tensor(unique, device=pixels.device)
            new_pixels = pixels.index_select(0, idx)
            new_meta = None if meta is None else meta.index_select(0, idx.to(meta.device))
        plan_sizes = [sizes[u] for u in unique]
        self._plans.append(_Plan(plan_sizes, torch.tensor(inverse, dtype=torch.long), self.layout))
        for i, (name, value) in enumerate(zip(names, (new_pixels, new_meta))):
            if i < len(args):
                args[i] = value
            elif name in kwargs:
                kwargs[name] = value
        return tuple(args), kwargs

    def _post(self, module: torch.nn.Module, args: tuple, kwargs: dict[str, Any], output: Any):
        plan = self._plans.pop() if self._plans else None
        if plan is None:
            return None
        return _expand(output, plan)


def _find_unique(
    pieces: list[torch.Tensor], metas: list[Any], exact_meta: bool
) -> tuple[list[int], list[int]]:
    """(indices of the first copy of each distinct piece, position in that list of every piece)."""
    with torch.no_grad():
        sums = torch.stack([p.detach().float().sum() for p in pieces])
        abs_sums = torch.stack([p.detach().float().abs().mul(0.5).sum() for p in pieces])
        prints = list(zip(sums.tolist(), abs_sums.tolist()))
    unique: list[int] = []
    inverse: list[int] = []
    candidates: dict[Any, list[int]] = {}  # (meta, shape, fingerprint) -> positions in `unique`
    for i, piece in enumerate(pieces):
        meta = metas[i]
        meta_key = meta if exact_meta else (None if meta is None else tuple(meta.shape))
        key = (meta_key, tuple(piece.shape), piece.dtype, prints[i])
        found = -1
        for pos in candidates.get(key, []):
            j = unique[pos]
            same_meta = exact_meta or meta is None or torch.equal(meta, metas[j])
            if same_meta and torch.equal(piece, pieces[j]):
                found = pos
                break
        if found < 0:
            found = len(unique)
            unique.append(i)
            candidates.setdefault(key, []).append(found)
        inverse.append(found)
    return unique, inverse


def _expand(value: Any, plan: _Plan) -> Any:
    """Repeat every tensor laid out over the unique images back to the original images (recursively)."""
    if isinstance(value, torch.Tensor):
        if value.dim() == 0:
            return value
        if plan.layout == "batch":
            if value.shape[0] != len(plan.unique_sizes):
                return value
            return value.index_select(0, plan.inverse.to(value.device))
        index = plan.index_for(value.shape[0], value.device)
        return value if index is None else value.index_select(0, index)
    if isinstance(value, (list, tuple)) and not hasattr(value, "keys"):
        return type(value)(_expand(v, plan) for v in value)
    if hasattr(value, "keys") and hasattr(value, "__setitem__"):  # transformers ModelOutput / dict
        for key in list(value.keys()):
            value[key] = _expand(value[key], plan)
        return value
    return value


# ------------------------------------------------------------------------------------------ install
def find_vision_tower(model: torch.nn.Module) -> tuple[torch.nn.Module, str] | None:
    """(vision tower module, layout) of a supported VLM (PEFT / DDP wrappers looked through), or None."""
    inner = unwrap_model(model)
    config = getattr(inner, "config", None)
    model_type = getattr(config, "model_type", None)
    if model_type not in VISION_LAYOUTS:
        return None
    attr, layout = VISION_LAYOUTS[model_type]
    best: tuple[int, torch.nn.Module] | None = None
    for name, module in inner.named_modules():
        if name.rsplit(".", 1)[-1] == attr:
            depth = name.count(".")
            if best is None or depth < best[0]:
                best = (depth, module)
    return None if best is None else (best[1], layout)


def unwrap_model(model: Any) -> Any:
    """The transformers model inside DDP / FSDP (`.module`) and PEFT (`get_base_model()`) wrappers
    (the model itself if it has none): where the speed-ups read `config.model_type` and install hooks."""
    while hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
        model = model.module
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def signature_problem(module: Any, needed: tuple[str, ...], what: str) -> str | None:
    """A reason when `module.forward` does not take the keyword arguments a hook passes, else None."""
    try:
        params = inspect.signature(module.forward).parameters
    except (TypeError, ValueError):
        return f"cannot read the signature of {type(module).__name__}.forward"
    missing = [n for n in needed if n not in params]
    if missing:
        return (
            f"{type(module).__name__}.forward takes no {', '.join(repr(m) for m in missing)} "
            f"({what} was written for transformers' keyword names; this version differs)"
        )
    return None


def vision_dedup_problem(model: torch.nn.Module) -> str | None:
    """Why `VisionDedup` cannot sit on this model's tower (its forward's argument names differ), or None."""
    found = find_vision_tower(model)
    if found is None:
        return None
    tower, layout = found
    needed = ("hidden_states", "grid_thw") if layout == "rows" else ("pixel_values", "patch_attention_mask")
    return signature_problem(tower, needed, "image de-duplication")


def install_vision_dedup(model: torch.nn.Module) -> VisionDedup | None:
    """Put `VisionDedup` on the model's vision tower; None (nothing installed) for unsupported families."""
    found = find_vision_tower(model)
    if found is None:
        return None
    tower, layout = found
    return VisionDedup(tower, layout)


class VisionCounter:
    """Counts the images the vision tower actually encodes (a forward hook; sees de-duplicated inputs).

    `per_call` lists the number of images of each tower call since the last `reset()`.
    """

    def __init__(self, model: torch.nn.Module):
        found = find_vision_tower(model)
        if found is None:
            raise ValueError(f"no supported vision tower in {type(unwrap_model(model)).__name__}")
        self.tower, self.layout = found
        self.per_call: list[int] = []
        self._handle = self.tower.register_forward_hook(self._post, with_kwargs=True)

    def _post(self, module, args, kwargs, output) -> None:
        name, pos = ("grid_thw", 1) if self.layout == "rows" else ("pixel_values", 0)
        value = args[pos] if len(args) > pos else kwargs.get(name)
        if value is not None:
            self.per_call.append(int(value.shape[0]))

    @property
    def images(self) -> int:
        return sum(self.per_call)

    def reset(self) -> None:
        self.per_call = []

    def remove(self) -> None:
        self._handle.remove()


@contextmanager
def count_vision(model: torch.nn.Module) -> Iterator[VisionCounter]:
    """`with count_vision(model) as c: ...` then `c.per_call` / `c.images` (images encoded per tower call)."""
    counter = VisionCounter(model)
    try:
        yield counter
    finally:
        counter.remove()
