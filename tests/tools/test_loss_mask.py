"""Only the tokens the model wrote are trained: tool results (text and image) are masked out of the loss.

A real rollout on tiny Qwen3-VL through TRL's tool loop (scripted tokens: a zoom_in call, the tool's result,
an answer) gives a completion ``A T B``: A the model's call, T the tool's result (text and the zoomed image),
B the model's answer. The proof, on the parameter gradients of TRL's own loss:

1. the tool mask is 0 exactly on T, which holds the tool's text and image tokens, and 1 on A and B;
2. with B out of the loss, changing the tool's output (its text tokens and its image pixels) leaves every
   gradient unchanged: T itself is never trained;
3. the same change DOES move the gradients when B is in the loss (through the model's later tokens, as it
   must), and when the tool mask is removed (so 2 is the mask's doing, not an accident of the setup).
"""

from __future__ import annotations

import pytest
import torch

from .conftest import ANSWER, ZOOM, first_call_then_answer, script_generation

TOOLS = {"enabled": True, "names": ["zoom_in"], "max_calls": 1, "max_images": 1, "max_pixels": 56 * 56}
GRPO = {
    "max_completion_length": 400,
    "num_generations": 2,
    "prompts_per_step": 1,
    "beta": 0.0,
    "max_steps": 1,
}


class _Done(Exception):
    pass


def _grads(trainer, inputs) -> list[torch.Tensor]:
    model = trainer.model
    model.zero_grad(set_to_none=True)
    trainer.compute_loss(model, inputs).backward()
    return [p.grad.detach().clone() for p in model.parameters() if p.grad is not None]


def _max_diff(a, b) -> float:
    assert len(a) == len(b)
    return max(float((x - y).abs().max()) for x, y in zip(a, b))


def _with(inputs, **changes):
    out = dict(inputs)
    out.update(changes)
    return out


def _tool_image_rows(inputs) -> torch.Tensor:
    """A bool mask over pixel_values rows: True on the rows of the tool images (every image after each
    sample's first: the dataset image comes first, then the images the tools returned)."""
    grid = inputs["image_grid_thw"]
    sizes = [int(t * h * w) for t, h, w in grid.tolist()]
    rows, k = [], 0
    for n in inputs["num_images"]:
        for j in range(n):
            rows += [j > 0] * sizes[k]
            k += 1
    return torch.tensor(rows)


@pytest.mark.slow  # one two-turn rollout and six backward passes on tiny Qwen3-VL (~10 s)
def test_tool_results_are_masked_out_of_the_loss(make_config):
    from vrft.train import run_grpo

    cfg = make_config(arch="qwen3_vl", task="classification", tools=TOOLS, grpo=GRPO)
    checked = []

    def hook(trainer):
        tok = trainer.processing_class.tokenizer
        script_generation(trainer.model, tok, first_call_then_answer([ZOOM]))
        trainer.model.train()
        trainer.current_gradient_accumulation_steps = 1  # set by the training loop, read by the loss
        inputs = trainer._generate_and_score_completions([trainer.train_dataset[0]] * 2)
        ids, m, tm = inputs["completion_ids"], inputs["completion_mask"], inputs["tool_mask"]

        # 1. the mask: 0 exactly on the tool's result (its text and its image tokens), 1 on what the model wrote
        for i in range(2):
            tool_text = tok.decode(ids[i][(tm[i] == 0) & (m[i] == 1)])
            model_text = tok.decode(ids[i][(tm[i] == 1) & (m[i] == 1)])
            assert model_text == f"{ZOOM}<|im_end|>{ANSWER}<|im_end|>"
            assert (
                "<tool_response>" in tool_text
                and "<|image_pad|>" in tool_text
                and "zoom_in: the region" in tool_text
            )
        pos = torch.arange(ids.shape[1])
        first_tool = int(pos[(tm[0] == 0)].min())
        last_tool = int(pos[(tm[0] == 0) & (m[0] == 1)].max())
        assert bool((tm[:, first_tool : last_tool + 1] == 0).all()) and bool((tm[:, :first_tool] == 1).all())

        # a learning signal that differs between the two rollouts (identical scripted rewards give none)
        inputs["advantages"] = torch.tensor([1.0, -0.5])

        # the change: other text tokens in the tool's result, other pixels in the tool's image
        special = set(tok.all_special_ids)
        x = tok("x", add_special_tokens=False)["input_ids"][0]
        text_slots = (tm == 0) & (m == 1) & ~torch.isin(ids, torch.tensor(sorted(special)))
        changed_ids = torch.where(text_slots, torch.full_like(ids, x), ids)
        assert int((changed_ids != ids).sum()) > 20
        pv = inputs["pixel_values"]
        tool_rows = _tool_image_rows(inputs)
        assert 0 < int(tool_rows.sum()) < pv.shape[0]
        changed_pv = torch.where(tool_rows[:, None], -pv + 0.5, pv)
        changed = {"completion_ids": changed_ids, "pixel_values": changed_pv}

        # 2. B out of the loss: the tool's output changes no gradient
        only_a = _with(inputs, completion_mask=torch.where(pos > last_tool, 0, m))
        base = _grads(trainer, only_a)
        same = _max_diff(base, _grads(trainer, _with(only_a, **changed)))
        scale = max(float(g.abs().max()) for g in base)
        assert scale > 0
        assert same <= 1e-6 * scale, (same, scale)

        # 3. ... but it does through the model's later tokens, and without the tool mask
        through_b = _max_diff(_grads(trainer, inputs), _grads(trainer, _with(inputs, **changed)))
        unmasked = _with(only_a, tool_mask=torch.ones_like(tm))
        no_mask = _max_diff(_grads(trainer, unmasked), _grads(trainer, _with(unmasked, **changed)))
        assert through_b > 1e-3 * scale and no_mask > 1e-3 * scale, (through_b, no_mask, scale)
        checked.append((same, through_b, no_mask, scale))
        raise _Done

    with pytest.raises(_Done):
        run_grpo(cfg, trainer_hook=hook)
    assert checked
