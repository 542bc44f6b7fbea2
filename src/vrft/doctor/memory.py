"""Memory estimate of a GRPO run, per device, for each way of distributing it.

The formula (stated in docs/training.md, "Memory estimate"), in bytes, with P the model's parameters,
T the trainable ones (all of them, or the LoRA adapters), `w` the bytes per stored weight (4 for
float32, 2 for bfloat16) and n the processes:

- weights         P * w
- gradients       T * 4                     (float32: full fine-tuning keeps float32 master weights;
                                             LoRA adapters are float32)
- optimizer       T * 8                     (AdamW: two float32 moments)
- reference       P * w when grpo.beta > 0 and the run is not LoRA (LoRA's reference is the base
                  with the adapters switched off: no copy); 0 otherwise
- activations     rows x tokens x [layers x (12 h + 5 f + S x heads) x a  +  3 V x 4]  +  rows x
                  patches x [vision layers x (12 hv + 5 fv + S' x vision heads) x a]
                  rows = grpo.per_device_prompts x G completions in one forward/backward pass,
                  tokens = prompt tokens + grpo.max_completion_length, h / f the decoder's hidden and
                  MLP sizes, V the vocabulary (the float32 logits, their log-softmax and its gradient),
                  a the bytes per activation (2 under bf16/fp16 autocast, 4 in float32). 12 h + 5 f
                  counts what a pre-norm SwiGLU layer saves for backward per token (two RMSNorms ~3 h
                  each, q/k/v and their rotary copies, attention output and o_proj input; gate, up,
                  SiLU and product in the MLP). S x heads: the attention probabilities (S = tokens in
                  the decoder, S' = patches per image in the vision tower), kept only where attention
                  materialises them (`attention_scores`: eager attention, or SDPA's math kernel on a
                  CPU; not flash / memory-efficient kernels). With model.gradient_checkpointing the
                  decoder keeps only each layer's input (h values) plus one layer's full set.

Per device: DDP holds everything; ZeRO-2 divides gradients and optimizer state by n; ZeRO-3 and
FSDP2 divide weights, gradients, optimizer state and the reference by n. Activations are never
divided. Not counted: the CUDA context and allocator slack (~0.5-1 GiB on a GPU), temporary buffers
of generation (the KV cache: rows x tokens x layers x 2 x kv_heads x head_dim x a), vLLM's reserve
(grpo.vllm_gpu_memory_utilization of the GPU when it is on).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

GIB = 1024**3

#: Distributions the estimate is given for (rows of the table).
DISTRIBUTIONS = ("ddp", "zero2", "zero3", "fsdp2")


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs from a model: parameter counts and the sizes activations scale with."""

    params: int
    trainable: int
    layers: int
    hidden: int
    intermediate: int
    vocab: int
    heads: int = 0
    vision_layers: int = 0
    vision_hidden: int = 0
    vision_intermediate: int = 0
    vision_heads: int = 0


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes of each part (per device without distribution) and the per-device total per distribution."""

    weights: int
    gradients: int
    optimizer: int
    reference: int
    activations: int
    rows: int
    tokens_per_row: int
    processes: int
    per_device: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["per_device_gib"] = {k: round(v / GIB, 3) for k, v in self.per_device.items()}
        return d


def _get(config: Any, *names: str, default: int = 0) -> int:
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return default


def model_shape(model: Any, *, trainable: int | None = None) -> ModelShape:
    """The sizes of a loaded transformers VLM (decoder under `text_config`, vision under `vision_config`).
    `trainable`: override the trainable count (LoRA adapters: `lora_trainable`)."""
    config = model.config
    text = getattr(config, "text_config", None) or config
    vision = getattr(config, "vision_config", None)
    params = sum(p.numel() for p in model.parameters())
    if trainable is None:
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    hidden = _get(text, "hidden_size")
    return ModelShape(
        params=params,
        trainable=trainable,
        layers=_get(text, "num_hidden_layers"),
        hidden=hidden,
        intermediate=_get(text, "intermediate_size", default=4 * hidden),
        vocab=_get(text, "vocab_size"),
        heads=_get(text, "num_attention_heads"),
        vision_layers=_get(vision, "depth", "num_hidden_layers") if vision is not None else 0,
        vision_hidden=_get(vision, "hidden_size", "embed_dim") if vision is not None else 0,
        vision_intermediate=_get(vision, "intermediate_size") if vision is not None else 0,
        vision_heads=_get(vision, "num_heads", "num_attention_heads") if vision is not None else 0,
    )


def lora_trainable(model: Any, target_modules: str | list[str], r: int, *, include_vision: bool,
                   vision_prefixes: list[str]) -> int:  # fmt: skip
    """Parameters LoRA adds: r x (in + out) for every targeted Linear (peft's 'all-linear': every
    Linear but the output head), the vision tower left out unless `include_vision`."""
    import torch

    total = 0
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        if not include_vision and any(name == v or name.startswith(v + ".") for v in vision_prefixes):
            continue
        last = name.rsplit(".", 1)[-1]
        if target_modules == "all-linear":
            hit = last not in ("lm_head", "output", "embed_out")
        elif isinstance(target_modules, str):
            hit = re.fullmatch(target_modules, name) is not None
        else:
            hit = last in target_modules
        if hit:
            total += r * (module.in_features + module.out_features)
    return total


def estimate(
    shape: ModelShape,
    *,
    rows: int,
    tokens_per_row: int,
    patches_per_row: int = 0,
    weight_bytes: int = 4,
    activation_bytes: int = 4,
    beta: float = 0.0,
    lora: bool = False,
    gradient_checkpointing: bool = False,
    attention_scores: bool = False,
    processes: int = 1,
) -> MemoryEstimate:
    """Apply the module's formula. `rows`: completions in one forward/backward pass on a device;
    `tokens_per_row`: prompt + completion tokens; `patches_per_row`: vision-tower patches per image;
    `attention_scores`: the attention probabilities are materialised (eager attention, SDPA on a CPU)."""
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    weights = shape.params * weight_bytes
    gradients = shape.trainable * 4
    optimizer = shape.trainable * 8
    reference = weights if beta > 0 and not lora else 0
    scores = shape.heads * tokens_per_row if attention_scores else 0
    per_layer = 12 * shape.hidden + 5 * shape.intermediate + scores
    if gradient_checkpointing:
        decoder = (shape.layers * shape.hidden + per_layer) * activation_bytes
    else:
        decoder = shape.layers * per_layer * activation_bytes
    logits = 3 * shape.vocab * 4
    vision_scores = shape.vision_heads * patches_per_row if attention_scores else 0
    vision_layer = 12 * shape.vision_hidden + 5 * shape.vision_intermediate + vision_scores
    vision = shape.vision_layers * vision_layer * activation_bytes
    activations = rows * (tokens_per_row * (decoder + logits) + patches_per_row * vision)
    sharded = weights + gradients + optimizer + reference
    per_device = {
        "ddp": sharded + activations,
        "zero2": weights + reference + (gradients + optimizer) // processes + activations,
        "zero3": sharded // processes + activations,
        "fsdp2": sharded // processes + activations,
    }
    return MemoryEstimate(weights, gradients, optimizer, reference, activations, rows, tokens_per_row,
                          processes, per_device)  # fmt: skip
