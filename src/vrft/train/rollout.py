"""Shared-prefill rollouts: one processor call and one prefill per DISTINCT prompt, then G samples from it.

TRL's `GRPOTrainer` hands its `rollout_func` hook the per-process prompts with every prompt repeated G
times (images inside the messages, no chat template applied yet). Its own generation would run the image
processor, the vision tower and the prompt prefill on all G copies. `SharedPrefillRollout`:

1. groups identical prompts (same messages, same image pixels) — a group split across processes is simply
   a smaller group on each process;
2. applies the chat template + processor ONCE per distinct prompt, exactly as TRL does, so the prompt ids
   it returns are the processor's expanded ids TRL's log-prob passes expect;
3. prefills all but the last prompt token once per distinct prompt (`use_cache=True`), then repeats the
   KV cache rows to the original order (`Cache.batch_select_indices`);
4. continues with `model.generate` on all rows from that cache with TRL's own generation config (so the
   image token stays suppressed, temperature / top-p / top-k / EOS as configured), feeding the
   multimodal-RoPE positions of Qwen-VL families explicitly (text position + the prefill's rope delta);
5. returns `prompt_ids`, `completion_ids` (cut after the first EOS, as TRL does) and the sampled tokens'
   log-probabilities at the sampling temperature.

Sampling consumes the random generator exactly as TRL's own path does (one draw per row per step), so a
fixed seed gives the same completions up to float rounding of the logits.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import logging
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch

logger = logging.getLogger(__name__)

# model_type of the families whose generation may continue from a repeated KV cache (tested in tests/speed).
SHARED_PREFILL_FAMILIES: dict[str, str] = {
    "qwen2_vl": "multimodal RoPE (rope deltas)",
    "qwen2_5_vl": "multimodal RoPE (rope deltas)",
    "qwen3_vl": "multimodal RoPE (rope deltas)",
    "idefics3": "1-D positions",
    "smolvlm": "1-D positions",
}


@dataclass
class RolloutStats:
    """Counters since the last `reset()`: rollout calls, prompt rows, distinct prompts prefilled."""

    calls: int = 0
    rows: int = 0
    prefilled: int = 0

    def reset(self) -> None:
        self.calls = self.rows = self.prefilled = 0


class SharedPrefillRollout:
    """A TRL `rollout_func`: `rollout(prompts, trainer) -> {"prompt_ids", "completion_ids", "logprobs"}`.

    Args:
        return_logprobs: also return the sampled tokens' log-probabilities (keeps every step's logits,
            [N, V] each: tests only). Off, `logprobs` is None, which TRL's transformers path also uses.
    Call: prompts: the per-process list of conversational prompts (G copies of each, images as PIL
        in the messages); trainer: the `GRPOTrainer`. Returns lists with one entry per prompt row, in order.
    """

    def __init__(self, return_logprobs: bool = False) -> None:
        self.return_logprobs = return_logprobs
        self.stats = RolloutStats()

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, list]:
        from trl.data_utils import prepare_multimodal_messages
        from trl.models.utils import unwrap_model_for_generation

        prompts = [prepare_multimodal_messages(p) for p in prompts]
        unique, inverse = group_prompts(prompts)
        self.stats.calls += 1
        self.stats.rows += len(prompts)
        self.stats.prefilled += len(unique)

        tokenized = trainer.processing_class.apply_chat_template(
            conversation=[prompts[i] for i in unique],
            tools=getattr(trainer, "tools", None) or None,
            chat_template=getattr(trainer, "chat_template", None),
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            **(getattr(trainer, "chat_template_kwargs", None) or {}),
        )
        unique_ids = [list(map(int, ids)) for ids in tokenized["input_ids"]]
        pad_id = _pad_token_id(trainer)
        multiple = getattr(trainer, "pad_to_multiple_of", None)
        ids, mask = _left_pad([torch.tensor(x) for x in unique_ids], pad_id, multiple)
        fields, per_token = _multimodal_fields(tokenized, multiple)

        device = trainer.accelerator.device
        index = torch.tensor(inverse, dtype=torch.long, device=device)
        ids, mask = ids.to(device), mask.to(device)
        fields = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in fields.items()}

        args = trainer.args
        dist = _gather_backend(trainer)  # FSDP v1: gather the full parameters (as TRL's generation does)
        if dist is None and _fsdp_version(trainer) == 1:
            raise RuntimeError(
                "shared prefill under FSDP v1 needs TRL's DistributedBackend to gather the parameters for "
                "generation, and this TRL has none; set grpo.shared_prefill=false"
            )
        with (
            unwrap_model_for_generation(
                trainer.model_wrapped,
                trainer.accelerator,
                gather_deepspeed3_params=getattr(args, "ds3_gather_for_generation", True),
                generation_kwargs=getattr(trainer, "generation_kwargs", None),
                gradient_checkpointing_kwargs=getattr(args, "gradient_checkpointing_kwargs", None),
            ) as model,
            torch.no_grad(),
            dist.summon_full_params(trainer.model_wrapped, recurse=False)
            if dist is not None
            else nullcontext(),
        ):
            config = _generation_config(trainer, model, self.return_logprobs)
            with _root_gathered(trainer.model_wrapped):
                result = _prefill_and_generate(model, ids, mask, fields, per_token, index, config)

        completions = result.sequences[:, ids.shape[1] :]
        eos = {int(t) for t in trainer.eos_token_ids}
        completion_ids = []
        for row in completions.tolist():
            end = next((t + 1 for t, token in enumerate(row) if token in eos), len(row))
            completion_ids.append(row[:end])
        logprobs = None
        if self.return_logprobs:
            temperature = float(getattr(trainer, "temperature", 1.0) or 1.0)
            logps = _sampled_logprobs(result.logits, completions, temperature).tolist()
            logprobs = [lp[: len(c)] for lp, c in zip(logps, completion_ids)]
        prompt_ids = [list(unique_ids[u]) for u in inverse]
        return {"prompt_ids": prompt_ids, "completion_ids": completion_ids, "logprobs": logprobs}


# ------------------------------------------------------------------------------------- distribution
def _fsdp_version(trainer: Any) -> int | None:
    plugin = getattr(getattr(getattr(trainer, "accelerator", None), "state", None), "fsdp_plugin", None)
    return None if plugin is None else int(getattr(plugin, "fsdp_version", 1) or 1)


def _gather_backend(trainer: Any) -> Any | None:
    """The object whose `summon_full_params` gathers FSDP v1 parameters for generation: the trainer's own
    (TRL keeps it in the private `_dist`), else one built from TRL's `DistributedBackend`; None if neither."""
    dist = getattr(trainer, "_dist", None)
    if dist is not None and callable(getattr(dist, "summon_full_params", None)):
        return dist
    try:
        from trl.distributed import DistributedBackend
    except ImportError:
        return None
    return DistributedBackend(trainer.accelerator)


@contextmanager
def _root_gathered(module: Any) -> Iterator[None]:
    """FSDP2: gather the root module's own parameters for the block (transformers' `generate` encodes
    images outside the root's forward, where FSDP2 would gather them); the layers gather themselves."""
    from torch.distributed.fsdp import FSDPModule

    if not isinstance(module, FSDPModule):
        yield
        return
    module.unshard()
    try:
        yield
    finally:
        module.reshard()


def rollout_problem(trainer: Any, distribution: str) -> str | None:
    """Why the shared-prefill rollout cannot run with this trainer, or None.

    - FSDP v1 shards parameters outside forward calls: generation must gather them first, and without a
      way to (TRL's `DistributedBackend`) generation would run on shards, so it stands aside;
    - the decoder must take the `cache` keyword the rollout passes to `generate` (transformers 5 naming).
    """
    if distribution == "fsdp1" and _gather_backend(trainer) is None:
        return "FSDP v1 and no TRL DistributedBackend to gather the parameters for generation"
    from vrft.train.prefix_share import find_decoder
    from vrft.train.vision_dedup import signature_problem

    decoder = find_decoder(trainer.model)
    if decoder is not None:
        return signature_problem(decoder, ("cache", "use_cache"), "shared prefill")
    return None


# ------------------------------------------------------------------------------------------ grouping
def group_prompts(prompts: list[Any]) -> tuple[list[int], list[int]]:
    """(index of the first copy of each distinct prompt, position in that list of every prompt).

    Two prompts are the same when their messages are equal and their images have identical pixels.
    """
    digests: dict[int, tuple] = {}
    first: dict[Any, int] = {}
    unique: list[int] = []
    inverse: list[int] = []
    for i, prompt in enumerate(prompts):
        key = _freeze(prompt, digests)
        if key not in first:
            first[key] = len(unique)
            unique.append(i)
        inverse.append(first[key])
    return unique, inverse


def _freeze(value: Any, digests: dict[int, tuple]) -> Any:
    """A hashable key of a message structure; PIL images by (mode, size, blake2b of the pixels), arrays and
    tensors (e.g. a video's frames) by (dtype, shape, blake2b of the bytes); a video given as a path or a
    list of frames is covered by the str / list / PIL cases. Any other object is its own group (by id):
    a missed grouping costs a prefill, a wrong one would give a row another prompt's completions."""
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v, digests)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v, digests) for v in value)
    if hasattr(value, "tobytes") and hasattr(value, "mode") and hasattr(value, "size"):  # PIL image
        if id(value) not in digests:
            digest = hashlib.blake2b(value.tobytes(), digest_size=16).hexdigest()
            digests[id(value)] = ("image", value.mode, tuple(value.size), digest)
        return digests[id(value)]
    if isinstance(value, torch.Tensor):
        return _array_key(value.detach().cpu().numpy())  # a temporary array: no id cache
    if (
        hasattr(value, "tobytes") and hasattr(value, "shape") and hasattr(value, "dtype")
    ):  # numpy (video frames)
        if id(value) not in digests:
            digests[id(value)] = _array_key(value)
        return digests[id(value)]
    # repr() of other objects may elide their contents: never let two different ones share a key
    return value if isinstance(value, (str, int, float, bool, type(None))) else ("object", id(value))


def _array_key(value: Any) -> tuple:
    digest = hashlib.blake2b(value.tobytes(), digest_size=16).hexdigest()
    return ("array", str(value.dtype), tuple(value.shape), digest)


# ------------------------------------------------------------------------------------------- tensors
def _pad_token_id(trainer: Any) -> int:
    proc = trainer.processing_class
    tok = getattr(proc, "tokenizer", proc)
    return int(tok.pad_token_id)


def _left_pad(
    rows: list[torch.Tensor], value: int, multiple: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad 1-D tensors to one length (rounded up to `multiple`): (ids [U, L], mask [U, L])."""
    length = max(r.numel() for r in rows)
    if multiple:
        length = -(-length // multiple) * multiple
    ids = torch.full((len(rows), length), value, dtype=rows[0].dtype)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, r in enumerate(rows):
        if r.numel():
            ids[i, -r.numel() :] = r
            mask[i, -r.numel() :] = 1
    return ids, mask


def _multimodal_fields(tokenized: Any, multiple: int | None) -> tuple[dict[str, Any], set[str]]:
    """Processor outputs besides ids/mask, as TRL builds them: tensors as-is, per-token lists left-padded."""
    fields: dict[str, Any] = {}
    per_token: set[str] = set()
    for key, value in tokenized.items():
        if key in ("input_ids", "attention_mask"):
            continue
        if isinstance(value, torch.Tensor):
            fields[key] = value
        elif isinstance(value, list) and value and isinstance(value[0], list):
            fields[key], _ = _left_pad([torch.tensor(v) for v in value], 0, multiple)
            per_token.add(key)
        else:
            import numpy as np

            fields[key] = torch.tensor(np.array(value))
    return fields, per_token


def _generation_config(trainer: Any, model: Any, logits: bool):
    """TRL's generation config, with the image token suppressed and no cache preset (we pass our cache)."""
    config = copy.deepcopy(trainer.generation_config)
    config.cache_implementation = None
    image_token = getattr(model.config, "image_token_id", None)
    if image_token is None:
        image_token = getattr(model.config, "image_token_index", None)
    if image_token is not None:
        suppressed = list(config.suppress_tokens or [])
        if image_token not in suppressed:
            config.suppress_tokens = [*suppressed, int(image_token)]
    config.return_dict_in_generate = True
    config.output_logits = logits
    return config


def _rope_owner(model: Any) -> Any | None:
    """The submodule holding multimodal-RoPE `rope_deltas` (Qwen-VL families), or None."""
    for module in model.modules():
        if "rope_deltas" in vars(module):
            return module
    return None


def _prefill_and_generate(
    model: Any,
    ids: torch.Tensor,
    mask: torch.Tensor,
    fields: dict[str, Any],
    per_token: set[str],
    index: torch.Tensor,
    config: Any,
) -> Any:
    """Prefill ids[:, :-1] of the U distinct prompts, repeat the cache to rows `index`, generate.

    Returns generate's output: `sequences` [N, L + T] (and `logits`, T tensors [N, V], if asked).
    """
    rows_ids, rows_mask = ids.index_select(0, index), mask.index_select(0, index)
    if not any(isinstance(v, torch.Tensor) and v.is_floating_point() for v in fields.values()):
        # no image in the batch: plain generation on every row (the text-only prefill is cheap anyway)
        extra = {k: fields[k].index_select(0, index) for k in per_token}
        return model.generate(input_ids=rows_ids, attention_mask=rows_mask, generation_config=config, **extra)
    prefill = {k: (v[:, :-1] if k in per_token else v) for k, v in fields.items()}
    owner = _rope_owner(model)
    stale = None if owner is None else getattr(owner, "rope_deltas", None)
    kwargs: dict[str, Any] = {}
    base = model.get_base_model() if callable(getattr(model, "get_base_model", None)) else model  # PEFT
    if "logits_to_keep" in inspect.signature(base.forward).parameters:
        kwargs["logits_to_keep"] = 1
    out = model(input_ids=ids[:, :-1], attention_mask=mask[:, :-1], use_cache=True, **prefill, **kwargs)
    cache = getattr(out, "cache", None)
    if cache is None:
        cache = out.past_key_values
    cache.batch_select_indices(index)

    gen_kwargs: dict[str, Any] = {}
    deltas = None if owner is None else getattr(owner, "rope_deltas", None)
    if deltas is not None and deltas is not stale:  # multimodal RoPE, deltas set by this prefill
        text = (rows_mask.long().cumsum(-1) - 1).masked_fill(rows_mask == 0, 0)
        gen_kwargs["position_ids"] = text[None] + deltas.to(text.device).index_select(0, index)[None, :, :]
    for k in per_token:  # per-token fields cover the prompt rows (e.g. token types)
        gen_kwargs[k] = fields[k].index_select(0, index)
    return model.generate(
        input_ids=rows_ids, attention_mask=rows_mask, cache=cache, generation_config=config, **gen_kwargs
    )


def _sampled_logprobs(
    logits: tuple[torch.Tensor, ...], tokens: torch.Tensor, temperature: float
) -> torch.Tensor:
    """log p(token) under softmax(logits / temperature), per step: [N, T] (float32)."""
    steps = min(len(logits), tokens.shape[1])
    if steps == 0:
        return torch.zeros(tokens.shape, dtype=torch.float32)
    stacked = torch.stack([logits[t].float() for t in range(steps)], dim=1) / temperature  # [N, T, V]
    logps = torch.log_softmax(stacked, dim=-1).gather(-1, tokens[:, :steps, None].to(stacked.device))
    return logps.squeeze(-1)
