"""Config and processor builders of the tiny architectures, and the `TINY_ARCHS` registry.

Each builder makes the REAL architecture's config (a few layers wide) and assembles its real processor
classes (image + video processor, tokenizer, chat template); `vrft.models.tiny` builds and saves them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vrft.models.tiny_text import QWEN_CHAT_TEMPLATE, QWEN_SPECIAL, SMOLVLM_CHAT_TEMPLATE, SMOLVLM_SPECIAL

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
HALF = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class TinySettings:
    """Every setting that determines a tiny model's files (hashed by `cached_tiny`)."""

    arch: str
    hidden_size: int
    layers: int
    heads: int
    kv_heads: int
    intermediate_size: int
    vision_hidden: int
    vision_depth: int
    vision_heads: int
    vision_intermediate: int
    vocab_size: int
    image_size: int
    seed: int
    vocab_texts: tuple[str, ...] = ()
    # Text RoPE base. Qwen's 10000 leaves a tiny model's few width/height M-RoPE frequencies nearly
    # constant over a 4x4 visual grid; a small base (the demo uses 10) lets it read positions sooner.
    rope_theta: int = 10000


@dataclass(frozen=True)
class TinyArch:
    """How to build one architecture: its model_type, special tokens, and config/processor builders."""

    model_type: str
    special_tokens: tuple[str, ...]
    eos_token: str
    pad_token: str
    patch_factor: int  # image side granularity in pixels (patch * merge)
    make_config: Callable[[TinySettings, dict[str, int]], object]
    make_processor: Callable[[TinySettings, object], object]
    chat_template: str


# --- Qwen2-VL / Qwen2.5-VL / Qwen3-VL
def _mrope_section(head_dim: int) -> list[int]:
    """Split head_dim/2 rotary frequencies over (time, height, width) like Qwen's [16, 24, 24] of 64."""
    half = head_dim // 2
    t = half // 4
    h = (half - t) // 2
    return [t, h, half - t - h]


def _qwen_text(s: TinySettings, ids: dict[str, int], **extra) -> dict:
    head_dim = s.hidden_size // s.heads
    return {
        "vocab_size": ids["_vocab"],
        "hidden_size": s.hidden_size,
        "intermediate_size": s.intermediate_size,
        "num_hidden_layers": s.layers,
        "num_attention_heads": s.heads,
        "num_key_value_heads": s.kv_heads,
        "max_position_embeddings": 4096,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": float(s.rope_theta),
            "mrope_section": _mrope_section(head_dim),
        },
        "bos_token_id": None,
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
        **extra,
    }


def _qwen_token_ids(ids: dict[str, int]) -> dict[str, int]:
    return {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
    }


def _qwen2_vl_config(s: TinySettings, ids: dict[str, int]):
    from transformers import Qwen2VLConfig

    vision = {
        "depth": s.vision_depth, "embed_dim": s.vision_hidden, "hidden_size": s.hidden_size,
        "mlp_ratio": max(1, s.vision_intermediate // s.vision_hidden), "num_heads": s.vision_heads,
        "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
    }  # fmt: skip
    return Qwen2VLConfig(text_config=_qwen_text(s, ids), vision_config=vision, **_qwen_token_ids(ids))


def _qwen2_5_vl_config(s: TinySettings, ids: dict[str, int]):
    from transformers import Qwen2_5_VLConfig

    vision = {
        "depth": s.vision_depth, "hidden_size": s.vision_hidden, "intermediate_size": s.vision_intermediate,
        "num_heads": s.vision_heads, "out_hidden_size": s.hidden_size, "patch_size": 14,
        "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112,
        "fullatt_block_indexes": list(range(s.vision_depth)),  # full attention everywhere: tiny images
    }  # fmt: skip
    return Qwen2_5_VLConfig(text_config=_qwen_text(s, ids), vision_config=vision, **_qwen_token_ids(ids))


def _qwen3_vl_config(s: TinySettings, ids: dict[str, int]):
    from transformers import Qwen3VLConfig

    head_dim = s.hidden_size // s.heads
    grid = max(4, s.image_size // 16)
    vision = {
        "depth": s.vision_depth, "hidden_size": s.vision_hidden, "intermediate_size": s.vision_intermediate,
        "num_heads": s.vision_heads, "out_hidden_size": s.hidden_size, "patch_size": 16,
        "spatial_merge_size": 2, "temporal_patch_size": 2, "num_position_embeddings": grid * grid,
        "deepstack_visual_indexes": [0] if s.vision_depth > 1 else [],
    }  # fmt: skip
    text = _qwen_text(s, ids, head_dim=head_dim)
    text.pop("bos_token_id")
    text.pop("eos_token_id")
    text["rope_parameters"] = {
        "rope_type": "default", "rope_theta": float(s.rope_theta), "mrope_section": _mrope_section(head_dim),
        "mrope_interleaved": True,
    }  # fmt: skip
    return Qwen3VLConfig(text_config=text, vision_config=vision, **_qwen_token_ids(ids))


def _qwen_processor(processor_cls: str, video_cls: str, patch: int, image_mean: tuple, image_std: tuple):
    def make(s: TinySettings, tokenizer):
        import transformers
        from transformers import Qwen2VLImageProcessor

        pixels = s.image_size * s.image_size
        kw = {"patch_size": patch, "merge_size": 2, "temporal_patch_size": 2, "image_mean": list(image_mean),
              "image_std": list(image_std)}  # fmt: skip
        image_processor = Qwen2VLImageProcessor(min_pixels=pixels, max_pixels=pixels, **kw)
        video_processor = getattr(transformers, video_cls)(**kw)
        return getattr(transformers, processor_cls)(
            image_processor=image_processor,
            tokenizer=tokenizer,
            video_processor=video_processor,
            chat_template=QWEN_CHAT_TEMPLATE,
        )

    return make


# --- SmolVLM
def _smolvlm_config(s: TinySettings, ids: dict[str, int]):
    from transformers import SmolVLMConfig

    text = {
        "model_type": "llama", "vocab_size": ids["_vocab"], "hidden_size": s.hidden_size,
        "intermediate_size": s.intermediate_size, "num_hidden_layers": s.layers, "num_attention_heads": s.heads,
        "num_key_value_heads": s.kv_heads, "max_position_embeddings": 4096, "rms_norm_eps": 1e-5,
        "rope_parameters": {"rope_type": "default", "rope_theta": float(s.rope_theta)},
        "bos_token_id": ids["<|im_start|>"], "eos_token_id": ids["<end_of_utterance>"],
        "pad_token_id": ids["<|endoftext|>"], "tie_word_embeddings": False,
    }  # fmt: skip
    vision = {
        "hidden_size": s.vision_hidden, "intermediate_size": s.vision_intermediate,
        "num_hidden_layers": s.vision_depth, "num_attention_heads": s.vision_heads, "image_size": s.image_size,
        "patch_size": 16,
    }  # fmt: skip
    return SmolVLMConfig(
        text_config=text, vision_config=vision, scale_factor=2, image_token_id=ids["<image>"],
        pad_token_id=ids["<|endoftext|>"],
    )  # fmt: skip


def _smolvlm_processor(s: TinySettings, tokenizer):
    from transformers import SmolVLMImageProcessor, SmolVLMProcessor, SmolVLMVideoProcessor

    side = {"longest_edge": s.image_size}
    common = {"size": side, "max_image_size": side, "image_mean": list(HALF), "image_std": list(HALF)}
    image_processor = SmolVLMImageProcessor(do_image_splitting=False, **common)
    video_processor = SmolVLMVideoProcessor(**common)
    return SmolVLMProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        image_seq_len=(s.image_size // 16) ** 2 // 4,  # patches per side squared / scale_factor**2
        chat_template=SMOLVLM_CHAT_TEMPLATE,
    )


# arch name -> how to build it. A literal dict: one line per supported architecture.
TINY_ARCHS: dict[str, TinyArch] = {
    "qwen2_vl": TinyArch("qwen2_vl", QWEN_SPECIAL, "<|im_end|>", "<|endoftext|>", 28, _qwen2_vl_config,
                         _qwen_processor("Qwen2VLProcessor", "Qwen2VLVideoProcessor", 14, CLIP_MEAN, CLIP_STD),
                         QWEN_CHAT_TEMPLATE),
    "qwen2_5_vl": TinyArch("qwen2_5_vl", QWEN_SPECIAL, "<|im_end|>", "<|endoftext|>", 28, _qwen2_5_vl_config,
                           _qwen_processor("Qwen2_5_VLProcessor", "Qwen2VLVideoProcessor", 14, CLIP_MEAN,
                                           CLIP_STD), QWEN_CHAT_TEMPLATE),
    "qwen3_vl": TinyArch("qwen3_vl", QWEN_SPECIAL, "<|im_end|>", "<|endoftext|>", 32, _qwen3_vl_config,
                         _qwen_processor("Qwen3VLProcessor", "Qwen3VLVideoProcessor", 16, HALF, HALF),
                         QWEN_CHAT_TEMPLATE),
    "smolvlm": TinyArch("smolvlm", SMOLVLM_SPECIAL, "<end_of_utterance>", "<|endoftext|>", 32, _smolvlm_config,
                        _smolvlm_processor, SMOLVLM_CHAT_TEMPLATE),
}  # fmt: skip
