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
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

from vrft.errors import ConfigError
from vrft.models.tiny_archs import TINY_ARCHS, TinySettings
from vrft.models.tiny_text import make_tokenizer

logger = logging.getLogger(__name__)

# Build settings per size preset. "tiny": fast unit tests. "demo": the probe's 1.5M-parameter miniature.
# Vision sizes are plain parameters, so a "real-proportions" benchmark model can be built the same way.
SIZES: dict[str, dict[str, int]] = {
    "tiny": {
        "hidden_size": 64, "layers": 2, "heads": 4, "kv_heads": 2, "intermediate_size": 128,
        "vision_hidden": 32, "vision_depth": 1, "vision_heads": 2, "vision_intermediate": 64, "vocab_size": 512,
        "rope_theta": 10000,
    },
    "demo": {
        "hidden_size": 128, "layers": 4, "heads": 4, "kv_heads": 2, "intermediate_size": 256,
        "vision_hidden": 128, "vision_depth": 2, "vision_heads": 4, "vision_intermediate": 256, "vocab_size": 512,
        "rope_theta": 10000,
    },
}  # fmt: skip

__all__ = ["SIZES", "TINY_ARCHS", "TinySettings", "build_tiny", "cached_tiny", "cache_root", "tiny_settings"]


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
    if s.rope_theta < 1:
        problems.append(f"rope_theta {s.rope_theta} must be >= 1")
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
            `vision_intermediate`, `vocab_size`, `rope_theta` via `more_sizes`).
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
    tokenizer = make_tokenizer(
        settings.vocab_size, spec.special_tokens, spec.eos_token, spec.pad_token, spec.chat_template,
        settings.vocab_texts,
    )  # fmt: skip
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
    for module in ("tiny.py", "tiny_archs.py", "tiny_text.py", "corpus.py"):
        h.update(
            Path(__file__).with_name(module).read_bytes()
        )  # a change of the builder invalidates the cache
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
