"""Run a shared prompt prefix through the language model once per log-prob pass.

In each GRPO log-prob pass (policy, reference, old policy) TRL feeds the language model G rows per prompt
that are identical up to the end of the prompt: `[left padding | image + prompt tokens | completion]`.
`PrefixShare` sits on the decoder (the text model inside the VLM) through two PyTorch forward hooks (a
public API; no class or function of TRL/transformers is replaced):

- the pre-hook finds a split point `k` and the groups of rows whose first `k` input embeddings, attention
  mask and positions are IDENTICAL (a random-projection fingerprint proposes, `torch.equal` confirms), runs
  the decoder once on the `k`-token prefix of one row per group (`use_cache=True`), repeats the KV cache to
  all rows with `Cache.batch_select_indices` (a differentiable gather), and lets the real call process only
  the `L - k` suffix tokens on top of that cache;
- the post-hook puts the prefix hidden states (repeated per row) in front of the suffix's, so the caller
  gets `[N, L, D]` exactly as before. Gradients of the copies add up in the shared prefix (chain rule).

It only acts on calls without a cache and with `use_cache=False` (TRL's log-prob passes); generation and
anything else pass through. It stands aside (the call runs unchanged) under gradient checkpointing with
gradients on (checkpointed layers drop the cache), when attentions are requested, when rows share too
little, or when a check fails. Qwen3-VL's deepstack inputs are split along with the rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch

logger = logging.getLogger(__name__)

# model_type -> attribute name of the decoder inside the VLM. A literal dict: one line per family.
TEXT_MODELS: dict[str, str] = {
    "qwen2_vl": "language_model",
    "qwen2_5_vl": "language_model",
    "qwen3_vl": "language_model",
    "idefics3": "text_model",
    "smolvlm": "text_model",
}

MIN_SAVING = 0.2  # share only if at least this fraction of the rows' tokens is saved


@dataclass
class PrefixStats:
    """Counters since the last `reset()`: decoder calls shared, tokens processed, tokens without sharing."""

    shared_calls: int = 0
    tokens: int = 0
    tokens_unshared: int = 0

    def reset(self) -> None:
        self.shared_calls = self.tokens = self.tokens_unshared = 0


@dataclass
class _Plan:
    k: int
    inverse: torch.Tensor  # [N] position of each row's group in `unique`
    prefix: Any  # decoder output of the prefix (U rows)


class PrefixShare:
    """Forward hooks on a decoder that compute a shared prompt prefix once per group of identical rows.

    Args:
        decoder: the text model (e.g. `model.model.language_model`).
    Attributes:
        stats: `PrefixStats`; enabled: set False to pass every call through.
    """

    def __init__(self, decoder: torch.nn.Module):
        self.decoder = decoder
        self.stats = PrefixStats()
        self.enabled = True
        self._inside = False
        self._plans: list[_Plan | None] = []
        self._warned = False
        self._handles = [
            decoder.register_forward_pre_hook(self._pre, with_kwargs=True),
            decoder.register_forward_hook(self._post, with_kwargs=True),
        ]

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    # ----------------------------------------------------------------------------------------- hooks
    def _pre(self, module: torch.nn.Module, args: tuple, kwargs: dict[str, Any]):
        if self._inside:
            return None
        plan_kwargs = self._try(module, args, kwargs)
        if plan_kwargs is None:
            self._plans.append(None)
            return None
        plan, new_kwargs = plan_kwargs
        self._plans.append(plan)
        return args, new_kwargs

    def _post(self, module: torch.nn.Module, args: tuple, kwargs: dict[str, Any], output: Any):
        if self._inside:
            return None
        plan = self._plans.pop() if self._plans else None
        if plan is None:
            return None
        prefix = plan.prefix
        inv = plan.inverse.to(output.last_hidden_state.device)
        output["last_hidden_state"] = torch.cat(
            [prefix.last_hidden_state.index_select(0, inv), output.last_hidden_state], dim=1
        )
        if getattr(output, "hidden_states", None) is not None and getattr(prefix, "hidden_states", None):
            output["hidden_states"] = tuple(
                torch.cat([p.index_select(0, inv), s], dim=1)
                for p, s in zip(prefix.hidden_states, output.hidden_states)
            )
        for key in ("cache", "past_key_values"):
            if key in output.keys():
                output[key] = None
        return output

    # ----------------------------------------------------------------------------------------- plan
    def _try(self, module: torch.nn.Module, args: tuple, kwargs: dict[str, Any]):
        if not self.enabled or args:
            return None
        embeds = kwargs.get("inputs_embeds")
        if not isinstance(embeds, torch.Tensor) or embeds.dim() != 3 or embeds.shape[0] < 2:
            return None
        if kwargs.get("use_cache") is not False or kwargs.get("cache") is not None:
            return None
        if kwargs.get("past_key_values") is not None or kwargs.get("output_attentions"):
            return None
        if torch.is_grad_enabled() and module.training and _checkpointing(module):
            if not self._warned:
                logger.info("speed: prompt-prefix sharing stands aside under gradient checkpointing")
                self._warned = True
            return None
        n, length = embeds.shape[:2]
        mask = kwargs.get("attention_mask")
        if mask is not None and (not isinstance(mask, torch.Tensor) or mask.dim() != 2):
            return None
        known = {
            "inputs_embeds",
            "attention_mask",
            "position_ids",
            "visual_pos_masks",
            "cache",
            "past_key_values",
        }
        for key, value in kwargs.items():  # another per-token input we would not know how to split
            if key not in known and isinstance(value, torch.Tensor) and value.shape[:2] == (n, length):
                return None
        pos = kwargs.get("position_ids")
        vis = kwargs.get("visual_pos_masks")
        deep = kwargs.get("deepstack_visual_embeds")
        found = _split(embeds, mask, pos, vis)
        if found is None:
            return None
        k, unique, inverse = found
        if (n - len(unique)) * k < MIN_SAVING * n * length:
            return None
        # Qwen3-VL deepstack: visual tokens must all lie in the prefix; select the unique rows' features
        prefix_vis = suffix_vis = None
        prefix_deep = suffix_deep = None
        if vis is not None:
            if vis[:, k:].any():
                return None
            prefix_vis, suffix_vis = vis[unique, :k], vis[:, k:]
            if deep is not None:
                counts = vis.sum(1).tolist()
                starts = [0]
                for c in counts[:-1]:
                    starts.append(starts[-1] + c)
                rows = torch.cat(
                    [torch.arange(starts[u], starts[u] + counts[u]) for u in unique]
                    or [torch.zeros(0, dtype=torch.long)]
                )
                for i, u in enumerate(inverse):  # the copies' features must be the representative's
                    a, b = starts[i], starts[unique[u]]
                    if any(not torch.equal(d[a : a + counts[i]], d[b : b + counts[i]]) for d in deep):
                        return None
                prefix_deep = [d.index_select(0, rows.to(d.device)) for d in deep]
                suffix_deep = None
        idx = torch.tensor(unique, device=embeds.device)
        inv = torch.tensor(inverse, dtype=torch.long, device=embeds.device)
        prefix_kwargs = dict(kwargs)
        prefix_kwargs.update(inputs_embeds=embeds.index_select(0, idx)[:, :k], use_cache=True, cache=None)
        prefix_kwargs.pop("past_key_values", None)
        if mask is not None:
            prefix_kwargs["attention_mask"] = mask.index_select(0, idx.to(mask.device))[:, :k]
        if pos is not None:
            prefix_kwargs["position_ids"] = pos.index_select(-2, idx.to(pos.device))[..., :k]
        if vis is not None:
            prefix_kwargs["visual_pos_masks"] = prefix_vis
            prefix_kwargs["deepstack_visual_embeds"] = prefix_deep
        self._inside = True
        try:
            prefix = module(**prefix_kwargs)
        finally:
            self._inside = False
        cache = getattr(prefix, "cache", None)
        if cache is None:
            cache = getattr(prefix, "past_key_values", None)
        if cache is None:
            return None
        cache.batch_select_indices(inv)
        suffix = dict(kwargs)
        suffix.update(inputs_embeds=embeds[:, k:], cache=cache, use_cache=True)
        suffix.pop("past_key_values", None)
        if pos is not None:
            suffix["position_ids"] = pos[..., k:]
        if vis is not None:
            suffix["visual_pos_masks"] = suffix_vis
            suffix["deepstack_visual_embeds"] = suffix_deep
        self.stats.shared_calls += 1
        self.stats.tokens += len(unique) * k + n * (length - k)
        self.stats.tokens_unshared += n * length
        return _Plan(k, inv, prefix), suffix


def _checkpointing(module: torch.nn.Module) -> bool:
    return any(getattr(m, "gradient_checkpointing", False) for m in module.modules())


def _split(
    embeds: torch.Tensor, mask: torch.Tensor | None, pos: torch.Tensor | None, vis: torch.Tensor | None
) -> tuple[int, list[int], list[int]] | None:
    """(k, first row of each group, group of every row) maximising the tokens saved, or None."""
    n, length, dim = embeds.shape
    with torch.no_grad():
        gen = torch.Generator(device="cpu").manual_seed(0)
        proj = torch.randn(dim, 2, generator=gen).to(embeds.device, embeds.dtype)
        h = embeds.detach() @ proj  # [N, L, 2] fingerprints per token (same rows -> same values)
        eq = (h[:, None] == h[None, :]).all(-1)  # [N, N, L]
        if mask is not None:
            eq &= mask[:, None, :] == mask[None, :, :]
        if pos is not None:
            p = pos.reshape(-1, n, length)  # [R, N, L]
            eq &= (p[:, :, None, :] == p[:, None, :, :]).all(0)
        if vis is not None:
            eq &= vis[:, None, :] == vis[None, :, :]
        lcp = eq.to(torch.int32).cumprod(-1).sum(-1).tolist()  # longest common prefix of each pair
    best = None
    # candidate split points: each row's longest common prefix with an earlier row
    candidates = {max(lcp[i][:i]) for i in range(1, n)}
    for k in sorted(v for v in candidates if v > 0):
        k = min(k, length - 1)
        if k <= 0:
            continue
        unique, inverse = [], []
        for i in range(n):
            rep = next((u for u, r in enumerate(unique) if lcp[i][r] >= k), None)
            if rep is None:
                rep = len(unique)
                unique.append(i)
            inverse.append(rep)
        saving = (n - len(unique)) * k
        if best is None or saving > best[0]:
            best = (saving, k, unique, inverse)
    if best is None or best[0] == 0:
        return None
    _, k, unique, inverse = best
    for i, u in enumerate(inverse):  # confirm exactly (the fingerprint only proposes)
        j = unique[u]
        if i != j and not torch.equal(embeds[i, :k], embeds[j, :k]):
            return None
    return k, unique, inverse


# ------------------------------------------------------------------------------------------ install
# keyword arguments the hooks pass to (or read from) the decoder's forward, by family
DECODER_KEYWORDS = ("inputs_embeds", "attention_mask", "position_ids", "cache", "use_cache")
DEEPSTACK_KEYWORDS = ("visual_pos_masks", "deepstack_visual_embeds")  # Qwen3-VL


def find_decoder(model: torch.nn.Module) -> torch.nn.Module | None:
    """The decoder (text model) of a supported VLM (PEFT / DDP wrappers looked through), or None."""
    from vrft.train.vision_dedup import unwrap_model

    inner = unwrap_model(model)
    model_type = getattr(getattr(inner, "config", None), "model_type", None)
    if model_type not in TEXT_MODELS:
        return None
    attr = TEXT_MODELS[model_type]
    best = None
    for name, module in inner.named_modules():
        if name.rsplit(".", 1)[-1] == attr and (best is None or name.count(".") < best[0]):
            best = (name.count("."), module)
    return None if best is None else best[1]


def prefix_share_problem(model: torch.nn.Module) -> str | None:
    """Why `PrefixShare` cannot sit on this model's decoder (keyword names differ), or None."""
    from vrft.train.vision_dedup import signature_problem, unwrap_model

    decoder = find_decoder(model)
    if decoder is None:
        return None
    model_type = getattr(getattr(unwrap_model(model), "config", None), "model_type", None)
    needed = DECODER_KEYWORDS + (DEEPSTACK_KEYWORDS if model_type == "qwen3_vl" else ())
    return signature_problem(decoder, needed, "prompt-prefix sharing")


def install_prefix_share(model: torch.nn.Module) -> PrefixShare | None:
    """Put `PrefixShare` on the model's decoder; None (nothing installed) for unsupported families."""
    decoder = find_decoder(model)
    return None if decoder is None else PrefixShare(decoder)
