"""Tiny models: real architectures, normal HF directories, Auto-class loading, generation, determinism."""

from __future__ import annotations

import json
import unicodedata

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import load_file

from vrft.errors import ConfigError
from vrft.models import load_model_and_processor, load_processor
from vrft.models.corpus import DETECTION_PROMPT
from vrft.models.tiny import SIZES, build_tiny, cached_tiny, tiny_settings


def _conversation(text: str, answer: str | None = None) -> list[dict]:
    conv = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
    if answer is not None:
        conv.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return conv


def _inputs(processor, texts: list[str], size=(160, 120)):
    images = [[Image.new("RGB", size, (200, 30 + 40 * i, 60))] for i in range(len(texts))]
    prompts = [processor.apply_chat_template(_conversation(t), add_generation_prompt=True) for t in texts]
    return processor(text=prompts, images=images, return_tensors="pt", padding=True)


def test_directory_is_a_normal_hf_model_dir(tiny_dirs, arch):
    path = tiny_dirs(arch)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "generation_config.json", "chat_template.jinja"):  # fmt: skip
        assert (path / name).is_file(), name
    config = json.loads((path / "config.json").read_text())
    assert config["model_type"] == arch
    assert any(p.name.startswith(("processor_config", "preprocessor_config")) for p in path.iterdir())


def test_loads_through_auto_classes_and_pads_left(tiny_dirs, arch):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = tiny_dirs(arch)
    model = AutoModelForImageTextToText.from_pretrained(path, local_files_only=True)
    processor = AutoProcessor.from_pretrained(path, local_files_only=True)  # no padding_side given: persisted
    assert model.config.model_type == arch
    assert processor.tokenizer.padding_side == "left"
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
    # the saved processor reloads with left padding after another save/load round trip
    processor.save_pretrained(path.parent / f"{arch}-resaved")
    again = AutoProcessor.from_pretrained(path.parent / f"{arch}-resaved", local_files_only=True)
    assert again.tokenizer.padding_side == "left"


def test_generate_on_image_and_prompt(tiny_dirs, arch):
    model, processor = load_model_and_processor(tiny_dirs(arch), dtype="float32")
    inputs = _inputs(
        processor, ["Detect the red circle.", "Detect all objects belonging to the category 'star'."]
    )
    assert (inputs["attention_mask"][:, -1] == 1).all(), "left padding: last position is real in every row"
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape[:2] == inputs["input_ids"].shape
    assert torch.isfinite(logits).all()
    out = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    new = out[:, inputs["input_ids"].shape[1] :]
    assert new.shape[0] == 2 and 1 <= new.shape[1] <= 5
    assert all(isinstance(t, str) for t in processor.batch_decode(new, skip_special_tokens=True))


def test_visual_token_count_qwen25(tiny_dirs):
    _, processor = load_model_and_processor(tiny_dirs("qwen2_5_vl"))
    inputs = _inputs(processor, ["a"], size=(112, 112))
    image_id = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert int((inputs["input_ids"] == image_id).sum()) == 16  # 112x112 / 14^2 patches / merge 2x2


def test_same_seed_same_weights(tmp_path, tiny_dirs):
    a = load_file(tiny_dirs("qwen2_5_vl") / "model.safetensors")
    b = load_file(build_tiny("qwen2_5_vl", tmp_path / "again", seed=0) / "model.safetensors")
    torch.manual_seed(5)
    c = load_file(build_tiny("qwen2_5_vl", tmp_path / "other", seed=1) / "model.safetensors")
    after_build = torch.rand(3)
    torch.manual_seed(5)
    assert torch.equal(after_build, torch.rand(3)), "building must not consume the caller's RNG"
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    tok_a = (tiny_dirs("qwen2_5_vl") / "tokenizer.json").read_text()
    assert tok_a == (tmp_path / "again" / "tokenizer.json").read_text()


def test_tokenizer_fits_vrft_text(tiny_dirs):
    tok = load_processor(tiny_dirs("qwen2_5_vl")).tokenizer
    assert 300 <= len(tok) <= 600
    prompt = DETECTION_PROMPT.format(category="red circle")
    assert len(tok(prompt)["input_ids"]) < len(prompt) / 2.5  # merges learned from the task prompts
    pieces = tok.tokenize("[120, 3004]")
    assert [p for p in pieces if p.isdigit()] == list("1203004")  # every digit its own token
    for tag in ("<think>", "</think>", "<answer>", "</answer>"):
        assert len(tok(tag)["input_ids"]) == 1
    text = "<think> a red star </think> <answer>[{'Position': [1, 2, 30, 400], 'Confidence': 0.95}]</answer>"
    ids = tok(text)["input_ids"]
    assert tok.decode(ids, skip_special_tokens=True) == text  # tags survive skip_special_tokens


@pytest.mark.slow  # a hypothesis search over texts (~2 s)
@settings(max_examples=60, deadline=None)
@given(st.text(max_size=40))
def test_any_text_round_trips(tiny_dirs, text):
    tok = _tokenizer(tiny_dirs)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    decoded = tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    assert decoded == unicodedata.normalize("NFC", text)


_TOK = {}


def _tokenizer(tiny_dirs):
    if "tok" not in _TOK:
        from transformers import AutoTokenizer

        _TOK["tok"] = AutoTokenizer.from_pretrained(tiny_dirs("qwen2_5_vl"), local_files_only=True)
    return _TOK["tok"]


def test_qwen_chat_template_and_assistant_mask(tiny_dirs):
    tok = _tokenizer(tiny_dirs)
    conv = _conversation("Detect the star.", "<think> ok </think> <answer>[1, 2, 3, 4]</answer>")
    text = tok.apply_chat_template(conv, tokenize=False)
    assert text == (
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Detect the star.<|im_end|>\n"
        "<|im_start|>assistant\n<think> ok </think> <answer>[1, 2, 3, 4]</answer><|im_end|>\n"
    )
    prompt = tok.apply_chat_template(conv[:1], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_end|>\n<|im_start|>assistant\n")
    out = tok.apply_chat_template(conv, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    mask = out["assistant_masks"]
    masked = [i for i, m in zip(out["input_ids"], mask) if m]
    assert tok.decode(masked) == "<think> ok </think> <answer>[1, 2, 3, 4]</answer><|im_end|>"


def test_smolvlm_chat_format(tiny_dirs):
    _, processor = load_model_and_processor(tiny_dirs("smolvlm"))
    text = processor.apply_chat_template(_conversation("Detect the star.", "<answer>x</answer>"))
    assert (
        text
        == "<|im_start|>User:<image>Detect the star.<end_of_utterance>\nAssistant: <answer>x</answer><end_of_utterance>\n"
    )
    prompt = processor.apply_chat_template(_conversation("hi"), add_generation_prompt=True)
    assert prompt.endswith("<end_of_utterance>\nAssistant:")


def test_demo_size_matches_the_probe():
    s = tiny_settings("qwen2_5_vl", size="demo")
    assert (s.hidden_size, s.layers, s.heads, s.kv_heads, s.intermediate_size) == (128, 4, 4, 2, 256)
    assert (s.vision_hidden, s.vision_depth, s.image_size) == (128, 2, 112)
    assert set(SIZES) >= {"tiny", "demo"}


def test_bad_settings_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown tiny architecture"):
        build_tiny("llava", tmp_path)
    with pytest.raises(ConfigError, match="hidden_size"):
        build_tiny("qwen2_5_vl", tmp_path, hidden_size=30)
    with pytest.raises(ConfigError, match="unknown tiny size option"):
        build_tiny("qwen2_5_vl", tmp_path, depth=3)
    with pytest.raises(ConfigError, match="unknown tiny size"):
        tiny_settings("qwen2_5_vl", size="huge")
    assert tiny_settings("qwen3_vl", image_size=112).image_size == 128  # rounded to the 32-pixel grid


def test_cached_tiny_builds_once_and_is_safe_in_parallel(tmp_path, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setenv("VRFT_CACHE", str(tmp_path))
    with ThreadPoolExecutor(2) as pool:
        paths = list(pool.map(lambda _: cached_tiny("qwen2_5_vl", layers=1), range(2)))
    assert paths[0] == paths[1] and paths[0].parent == tmp_path / "tiny"
    assert (paths[0] / "model.safetensors").is_file()
    assert [p.name for p in (tmp_path / "tiny").iterdir()] == [paths[0].name]  # no temp dirs left behind
    stamp = (paths[0] / "model.safetensors").stat().st_mtime_ns
    assert cached_tiny("qwen2_5_vl", layers=1) == paths[0]
    assert (paths[0] / "model.safetensors").stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert cached_tiny("qwen2_5_vl", layers=1, seed=3) != paths[0]
