"""Tiny, randomly initialised models of REAL vision-language architectures, built offline.

`build_tiny(arch, out_dir)` writes a normal Hugging Face model directory (config.json, safetensors weights,
tokenizer files, image/video processor configs, chat template, generation config) that loads back through
the same Auto classes as a real checkpoint:

    AutoModelForImageTextToText.from_pretrained(out_dir)   AutoProcessor.from_pretrained(out_dir)

Nothing is downloaded: the model is built from a config (the real architecture, a few layers wide), the
tokenizer is a byte-level BPE trained on the spot on vrft's prompts and answer syntax (any text still
encodes; digits are single tokens), and the processor is assembled from the library's classes.
The processor pads on the LEFT (Qwen-VL log-prob passes need it) and that is persisted.

`cached_tiny(arch, size)` builds once into a cache directory and reuses it (safe for parallel processes).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from vrft.errors import ConfigError
from vrft.models.corpus import default_corpus

logger = logging.getLogger(__name__)

# Build settings per size preset. "tiny": fast unit tests. "demo": the probe's 1.5M-parameter miniature.
# Vision sizes are plain parameters, so a "real-proportions" benchmark model can be built the same way.
SIZES: dict[str, dict[str, int]] = {
    "tiny": {
        "hidden_size": 64, "layers": 2, "heads": 4, "kv_heads": 2, "intermediate_size": 128,
        "vision_hidden": 32, "vision_depth": 1, "vision_heads": 2, "vision_intermediate": 64, "vocab_size": 512,
    },
    "demo": {
        "hidden_size": 128, "layers": 4, "heads": 4, "kv_heads": 2, "intermediate_size": 256,
        "vision_hidden": 128, "vision_depth": 2, "vision_heads": 4, "vision_intermediate": 256, "vocab_size": 512,
    },
}  # fmt: skip

THINK_TOKENS = ("<think>", "</think>", "<answer>", "</answer>")
QWEN_SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|image_pad|>", "<|video_pad|>")  # fmt: skip
SMOLVLM_SPECIAL = ("<|endoftext|>", "<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>", "<image>",
                   "<global-img>", *(f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)))  # fmt: skip

# A minimal Qwen-style chat template: user turns may mix {"type": "image"} and {"type": "text"} items (the
# conversational format TRL uses); assistant turns are wrapped in generation markers so SFT can mask the prompt.
QWEN_CHAT_TEMPLATE = (
    "{% macro render(content) %}"
    "{% if content is string %}{{ content }}"
    "{% else %}{% for item in content %}"
    "{% if item['type'] == 'image' or 'image' in item or 'image_url' in item %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif item['type'] == 'video' or 'video' in item %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in item %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{% endmacro %}"
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ render(message['content']) }}<|im_end|>{% endgeneration %}"
    "{% else %}{{ render(message['content']) }}<|im_end|>{% endif %}{{ '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant{{ '\\n' }}{% endif %}"
)


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


# ----------------------------------------------------------------------------------------------- tokenizer
def _train_tokenizer(settings: TinySettings, special_tokens: Sequence[str]):
    """Train a byte-level BPE (Qwen2 pre-tokenisation: every digit is its own piece) on the vrft corpus."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    n_fixed = len(special_tokens) + len(THINK_TOKENS)
    trainer = trainers.BpeTrainer(
        vocab_size=max(settings.vocab_size - n_fixed, 256 + 1),
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator([*default_corpus(), *settings.vocab_texts], trainer=trainer)
    state = json.loads(tok.to_str())
    vocab: dict[str, int] = state["model"]["vocab"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["model"]["merges"]]
    return vocab, merges


def _make_tokenizer(settings: TinySettings, arch: TinyArch, chat_template: str | None):
    """A transformers tokenizer (Qwen2Tokenizer class: same as the real Qwen-VL and SmolVLM byte-level BPE)."""
    from tokenizers import AddedToken
    from transformers import Qwen2Tokenizer

    vocab, merges = _train_tokenizer(settings, arch.special_tokens)
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        eos_token=arch.eos_token,
        pad_token=arch.pad_token,
        padding_side="left",
    )
    tokenizer.add_special_tokens(
        {
            "additional_special_tokens": [
                AddedToken(t, special=True, normalized=False) for t in arch.special_tokens
            ]
        }
    )
    # The reasoning/answer tags are ordinary (non-special) tokens: decode(skip_special_tokens=True) keeps them.
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in THINK_TOKENS])
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    tokenizer.padding_side = "left"
    return tokenizer


# ----------------------------------------------------------------------------------------------- Qwen
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
            "rope_theta": 10000.0,
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
        "rope_type": "default", "rope_theta": 10000.0, "mrope_section": _mrope_section(head_dim),
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


# ----------------------------------------------------------------------------------------------- SmolVLM
# SmolVLM's own format: "<|im_start|>User:<image>text<end_of_utterance>\nAssistant: ...<end_of_utterance>\n".
SMOLVLM_CHAT_TEMPLATE = (
    "{% macro render(content) %}"
    "{% if content is string %}{{ ': ' + content }}"
    "{% else %}{% if content[0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
    "{% for item in content %}"
    "{% if item['type'] == 'image' or 'image' in item or 'image_url' in item %}{{ '<image>' }}"
    "{% elif item['type'] == 'video' or 'video' in item %}{{ '<video>' }}"
    "{% elif 'text' in item %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{% endmacro %}"
    "<|im_start|>"
    "{% for message in messages %}"
    "{{ message['role'] | capitalize }}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ render(message['content']) }}<end_of_utterance>{% endgeneration %}"
    "{% else %}{{ render(message['content']) }}<end_of_utterance>{% endif %}{{ '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)


def _smolvlm_config(s: TinySettings, ids: dict[str, int]):
    from transformers import SmolVLMConfig

    text = {
        "model_type": "llama", "vocab_size": ids["_vocab"], "hidden_size": s.hidden_size,
        "intermediate_size": s.intermediate_size, "num_hidden_layers": s.layers, "num_attention_heads": s.heads,
        "num_key_value_heads": s.kv_heads, "max_position_embeddings": 4096, "rms_norm_eps": 1e-5,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
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


CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
HALF = (0.5, 0.5, 0.5)

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


# ----------------------------------------------------------------------------------------------- build
def tiny_settings(
    arch: str,
    *,
    size: str = "tiny",
    image_size: int = 112,
    seed: int = 0,
    vocab_texts: Sequence[str] | None = None,
    **sizes: int,
) -> TinySettings:
    """Resolve a size preset plus overrides into the full settings of a build (validated)."""
    if arch not in TINY_ARCHS:
        raise ConfigError(f"unknown tiny architecture {arch!r}; choose one of: {', '.join(TINY_ARCHS)}")
    if size not in SIZES:
        raise ConfigError(f"unknown tiny size {size!r}; choose one of: {', '.join(SIZES)}")
    base = dict(SIZES[size])
    unknown = sorted(set(sizes) - set(base))
    if unknown:
        raise ConfigError(f"unknown tiny size option(s) {unknown}; valid: {sorted(base)}")
    base.update({k: int(v) for k, v in sizes.items() if v is not None})
    factor = TINY_ARCHS[arch].patch_factor
    image_size = max(
        factor, round(image_size / factor) * factor
    )  # the processor's own grid, no resize surprise
    s = TinySettings(
        arch=arch, image_size=image_size, seed=int(seed), vocab_texts=tuple(vocab_texts or ()), **base
    )
    problems = []
    if s.hidden_size % s.heads or (s.hidden_size // s.heads) % 4:
        problems.append(f"hidden_size {s.hidden_size} / heads {s.heads} must be an integer divisible by 4")
    if s.heads % s.kv_heads:
        problems.append(f"heads {s.heads} must be a multiple of kv_heads {s.kv_heads}")
    if s.vision_hidden % s.vision_heads or (s.vision_hidden // s.vision_heads) % 4:
        problems.append(
            f"vision_hidden {s.vision_hidden} / vision_heads {s.vision_heads} must be divisible by 4"
        )
    if s.vocab_size < 320:
        problems.append(f"vocab_size {s.vocab_size} must be >= 320 (256 bytes + special tokens + merges)")
    if min(s.layers, s.vision_depth) < 1:
        problems.append("layers and vision_depth must be >= 1")
    if problems:
        raise ConfigError("invalid tiny model settings: " + "; ".join(problems))
    return s


def build_tiny(
    arch: str,
    out_dir: str | os.PathLike,
    *,
    size: str = "tiny",
    hidden_size: int | None = None,
    layers: int | None = None,
    vision_hidden: int | None = None,
    vision_depth: int | None = None,
    image_size: int = 112,
    seed: int = 0,
    vocab_texts: Sequence[str] | None = None,
    **more_sizes: int,
) -> Path:
    """Build a tiny random model of `arch` (a key of TINY_ARCHS) and save it as a HF directory `out_dir`.

    Args:
        size: preset of SIZES ("tiny" for tests, "demo" for the ~1.5M-parameter miniature); explicit
            size arguments override it (`heads`, `kv_heads`, `intermediate_size`, `vision_heads`,
            `vision_intermediate`, `vocab_size` via `more_sizes`).
        image_size: side in pixels of the square pixel budget (min_pixels = max_pixels = side**2 for Qwen),
            rounded to the family's patch factor (28 for Qwen2/2.5-VL, 32 for Qwen3-VL). 112 -> 16 visual
            tokens per image on Qwen2.5-VL.
        seed: weights and everything else are identical for the same seed and settings.
        vocab_texts: extra texts the tokenizer's merges are learned from (any text still encodes).
    Returns: the output directory.
    """
    settings = tiny_settings(
        arch, size=size, image_size=image_size, seed=seed, vocab_texts=vocab_texts, hidden_size=hidden_size,
        layers=layers, vision_hidden=vision_hidden, vision_depth=vision_depth, **more_sizes,
    )  # fmt: skip
    return _build(settings, Path(out_dir))


def _build(settings: TinySettings, out: Path) -> Path:
    import torch
    from transformers import AutoModelForImageTextToText, GenerationConfig

    spec = TINY_ARCHS[settings.arch]
    tokenizer = _make_tokenizer(settings, spec, spec.chat_template)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in spec.special_tokens}
    ids["_vocab"] = len(tokenizer)
    config = spec.make_config(settings, ids)
    config.dtype = "float32"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    model.generation_config = GenerationConfig(
        eos_token_id=[ids[spec.eos_token], ids[spec.pad_token]],
        pad_token_id=ids[spec.pad_token],
        bos_token_id=None,
    )
    processor = spec.make_processor(settings, tokenizer)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    n_params = sum(p.numel() for p in model.parameters())
    info = {"vrft_tiny": asdict(replace(settings, vocab_texts=())), "n_vocab_texts": len(settings.vocab_texts),
            "parameters": n_params}  # fmt: skip
    (out / "vrft_tiny.json").write_text(json.dumps(info, indent=2) + "\n")
    logger.info("built tiny %s (%d parameters, vocab %d) in %s", settings.arch, n_params, len(tokenizer), out)
    return out


# ----------------------------------------------------------------------------------------------- cache
def cache_root() -> Path:
    """Root of vrft's caches: $VRFT_CACHE, else ~/.cache/vrft. Tiny models live under <root>/tiny/."""
    return Path(os.environ.get("VRFT_CACHE") or Path.home() / ".cache" / "vrft")


def _settings_hash(settings: TinySettings) -> str:
    import transformers

    h = hashlib.sha256()
    h.update(json.dumps(asdict(settings), sort_keys=True).encode())
    h.update(transformers.__version__.encode())
    for module in (__file__, Path(__file__).with_name("corpus.py")):
        h.update(Path(module).read_bytes())  # a change of the builder invalidates the cache
    return h.hexdigest()[:12]


def cached_tiny(arch: str, size: str = "tiny", **kwargs) -> Path:
    """Path of a tiny model built once into the cache (<cache_root>/tiny/<arch>-<size>-<hash>) and reused.

    Keyword arguments are those of `build_tiny`. Safe for concurrent processes: each builds in a private
    temporary directory and renames it into place; the first complete rename wins.
    """
    settings = tiny_settings(arch, size=size, **kwargs)
    final = cache_root() / "tiny" / f"{arch}-{size}-{_settings_hash(settings)}"
    if (final / "vrft_tiny.json").is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        _build(settings, tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "vrft_tiny.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
