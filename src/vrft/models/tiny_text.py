"""The tokenizer and chat templates of the tiny models (see `vrft.models.tiny`).

A byte-level BPE trained on the spot with the `tokenizers` library on vrft's own text (`corpus.py`), wrapped
in transformers' `Qwen2Tokenizer` (the real Qwen-VL and SmolVLM tokenizers are byte-level BPE too), so a
saved directory reloads the identical pipeline. `<think>`/`</think>`/`<answer>`/`</answer>` are single
non-special tokens: decode(skip_special_tokens=True) keeps them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from vrft.models.corpus import default_corpus

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


def train_bpe(vocab_size: int, special_tokens: Sequence[str], extra_texts: Sequence[str] = ()):
    """Train a byte-level BPE (Qwen2 pre-tokenisation: every digit is its own piece) on the vrft corpus.

    Returns (vocab, merges) such that vocab + special + tag tokens come to about `vocab_size` entries.
    """
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
        vocab_size=max(vocab_size - n_fixed, 256 + 1),
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator([*default_corpus(), *extra_texts], trainer=trainer)
    state = json.loads(tok.to_str())
    vocab: dict[str, int] = state["model"]["vocab"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["model"]["merges"]]
    return vocab, merges


def make_tokenizer(
    vocab_size: int,
    special_tokens: Sequence[str],
    eos_token: str,
    pad_token: str,
    chat_template: str | None,
    extra_texts: Sequence[str] = (),
):
    """A transformers tokenizer (Qwen2Tokenizer class: same as the real Qwen-VL and SmolVLM byte-level BPE)."""
    from tokenizers import AddedToken
    from transformers import Qwen2Tokenizer

    vocab, merges = train_bpe(vocab_size, special_tokens, extra_texts)
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        eos_token=eos_token,
        pad_token=pad_token,
        padding_side="left",
    )
    tokenizer.add_special_tokens(
        {"additional_special_tokens": [AddedToken(t, special=True, normalized=False) for t in special_tokens]}
    )
    # The reasoning/answer tags are ordinary (non-special) tokens: decode(skip_special_tokens=True) keeps them.
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in THINK_TOKENS])
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    tokenizer.padding_side = "left"
    return tokenizer
