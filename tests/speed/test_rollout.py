"""The shared-prefill rollout: grouping of prompts, ids, completions and log-probs against TRL's path."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from tests.speed.conftest import TEXTS, images, make_trainer, prompt

from vrft.train.rollout import SharedPrefillRollout, _generation_config, group_prompts
from vrft.train.vision_dedup import count_vision


def _messages(text: str, image: Image.Image) -> list[dict]:
    from trl.data_utils import prepare_multimodal_messages

    return prepare_multimodal_messages(prompt(text), images=[image])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=1, max_size=12))
def test_group_prompts_by_text_and_pixels(pairs):
    base = [Image.new("RGB", (8, 6), (10 * i, 20, 30)) for i in range(3)]
    prompts = [_messages(TEXTS[t % 2] + str(t), base[i].copy()) for t, i in pairs]  # fresh objects each time
    unique, inverse = group_prompts(prompts)
    assert len(inverse) == len(pairs)
    assert [pairs[u] for u in unique] == list(dict.fromkeys(pairs))  # first copies, in order of appearance
    for k, pair in enumerate(pairs):
        assert pairs[unique[inverse[k]]] == pair


def test_one_changed_pixel_is_another_prompt():
    a = Image.new("RGB", (8, 6), (1, 2, 3))
    b = a.copy()
    b.putpixel((7, 5), (1, 2, 4))
    _, inverse = group_prompts([_messages("x", a), _messages("x", a.copy()), _messages("x", b)])
    assert inverse == [0, 0, 1]


def _trl_generate(trainer, prompts):
    """What TRL's own transformers path does: processor on every row, generate on every row."""
    from trl.models.utils import unwrap_model_for_generation

    proc = trainer.processing_class
    batch = proc.apply_chat_template(conversation=prompts, add_generation_prompt=True, tokenize=True,
                                     return_dict=True, padding=True, return_tensors="pt")  # fmt: skip
    with unwrap_model_for_generation(trainer.model_wrapped, trainer.accelerator,
                                     generation_kwargs=trainer.generation_kwargs) as model, torch.no_grad():  # fmt: skip
        out = model.generate(**batch, generation_config=trainer.generation_config)
    return batch, out[:, batch["input_ids"].shape[1] :]


def _forward_logprobs(trainer, prompt_ids, completion_ids, imgs, texts_rows):
    """log p(completion token) from one plain forward over prompt + completion (TRL's log-prob pass)."""
    proc = trainer.processing_class
    pad = proc.tokenizer.pad_token_id
    n, width = len(prompt_ids), max(map(len, prompt_ids))
    cw = max(map(len, completion_ids))
    ids = torch.full((n, width + cw), pad)
    mask = torch.zeros((n, width + cw), dtype=torch.long)
    for i, (p, c) in enumerate(zip(prompt_ids, completion_ids)):
        ids[i, width - len(p) : width] = torch.tensor(p)
        mask[i, width - len(p) : width] = 1
        ids[i, width : width + len(c)] = torch.tensor(c)
        mask[i, width : width + len(c)] = 1
    extra = proc(images=[[im] for im in imgs], text=texts_rows, padding=True, return_tensors="pt")
    fields = {k: v for k, v in extra.items() if k not in ("input_ids", "attention_mask")}
    if "mm_token_type_ids" in fields:
        fields["mm_token_type_ids"] = torch.cat(
            [fields["mm_token_type_ids"], torch.zeros(n, cw, dtype=torch.long)], 1
        )
    with torch.no_grad():
        logits = trainer.model(input_ids=ids, attention_mask=mask, **fields).logits[:, width - 1 : -1]
    logps = torch.log_softmax(logits.float() / trainer.temperature, -1).gather(-1, ids[:, width:, None])[
        ..., 0
    ]
    return logps, mask[:, width:]


@pytest.mark.parametrize("arch", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl", "smolvlm"])
def test_rollout_equals_trl_generation(tmp_path, arch):
    trainer = make_trainer(tmp_path, arch, speed=True, max_completion_length=10)
    imgs = images()
    # a group split across processes: 3 copies of the first prompt and 1 of the second on this rank
    rows = [0, 0, 0, 1]
    prompts = [_messages(TEXTS[r], imgs[r].copy()) for r in rows]
    rollout = SharedPrefillRollout(return_logprobs=True)

    torch.manual_seed(11)
    with count_vision(trainer.model) as seen:
        out = rollout(copy.deepcopy(prompts), trainer)
    assert seen.per_call == [2]  # one prefill over the 2 distinct prompts, their 2 images
    assert rollout.stats.prefilled == 2 and rollout.stats.rows == 4

    torch.manual_seed(11)
    batch, trl_completions = _trl_generate(trainer, prompts)
    eos = set(trainer.eos_token_ids)
    expected = []
    for row in trl_completions.tolist():
        end = next((t + 1 for t, tok in enumerate(row) if tok in eos), len(row))
        expected.append(row[:end])
    assert out["completion_ids"] == expected  # same seed, same samples
    # prompt ids are the processor's expanded ids (image tokens included), unpadded
    for ids, m, got in zip(batch["input_ids"], batch["attention_mask"], out["prompt_ids"]):
        assert got == ids[m.bool()].tolist()
    image_token = trainer.model.config.image_token_id
    assert image_token in _generation_config(trainer, trainer.model, False).suppress_tokens
    assert all(image_token not in c for c in out["completion_ids"])

    # the returned log-probs are those of TRL's log-prob forward (rows without left padding: Idefics3 /
    # SmolVLM number padded rows differently in forward and generate, with or without vrft)
    logps, cmask = _forward_logprobs(trainer, out["prompt_ids"], out["completion_ids"], [imgs[r] for r in rows],
                                     [trainer.processing_class.apply_chat_template(prompt(TEXTS[r]), add_generation_prompt=True) for r in rows])  # fmt: skip
    width = max(map(len, out["prompt_ids"]))
    for i, lp in enumerate(out["logprobs"]):
        if arch == "smolvlm" and len(out["prompt_ids"][i]) < width:
            continue
        diff = (logps[i, : len(lp)] - torch.tensor(lp)).abs().max().item()
        assert diff < 1e-5, (i, diff)
    assert cmask.sum() == sum(map(len, out["completion_ids"]))


def test_text_only_prompts(tmp_path):
    trainer = make_trainer(tmp_path, "qwen2_5_vl", speed=True, max_completion_length=6)
    prompts = [
        [{"role": "user", "content": [{"type": "text", "text": t}]}] for t in ["a b", "a b", "c d e f"]
    ]
    out = SharedPrefillRollout()(prompts, trainer)
    assert len(out["completion_ids"]) == 3 and out["logprobs"] is None
    assert out["prompt_ids"][0] == out["prompt_ids"][1] != out["prompt_ids"][2]
    assert all(1 <= len(c) <= 6 for c in out["completion_ids"])
