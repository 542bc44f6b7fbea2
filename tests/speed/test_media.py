"""The speed-ups with several images per prompt and with video (issue 20): on vs off give the same
log-probs, loss and gradients; each distinct image and each distinct video is encoded once per pass.

- Several images: every family with a tiny model (Qwen2-VL, Qwen2.5-VL, Qwen3-VL: one `image_grid_thw`
  row per image; SmolVLM: the tiles of every image), at the log-prob pass and in a full GRPO step
  through TRL (its ``images`` column, one placeholder per image).
- Video (Qwen families: `pixel_values_videos` + `video_grid_thw`, built by the processor's video path):
  the log-prob pass (image and video in one prompt, so the tower runs twice per forward) and the
  shared-prefill rollout against plain generation. TRL 1.16's GRPO log-prob passes do not carry
  `pixel_values_videos` (only image fields), so there is no full TRL step with a real video input to
  compare; a video fed as its frames (an image list) is the several-images case above.

Model inputs are built with the processor directly (not vrft's dataset code).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from PIL import Image
from tests.speed.conftest import IMAGE_SETS, TEXTS, make_trainer, several_images, with_completion

from vrft.train.prefix_share import install_prefix_share
from vrft.train.vision_dedup import count_vision, install_vision_dedup

pytestmark = pytest.mark.slow  # tiny models, forward/backward passes and train steps (~2-4 s per case)

ARCHS = ["qwen2_vl", "qwen2_5_vl", "qwen3_vl", "smolvlm"]
QWEN = ARCHS[:3]
G = 3
COMPLETION = 6


def _model(arch: str):
    from vrft.models.load import load_model_and_processor
    from vrft.models.tiny import cached_tiny

    model, processor = load_model_and_processor(cached_tiny(arch), dtype="float32")
    model.train()
    for m in model.modules():  # TRL's disable_dropout
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    if getattr(processor, "video_processor", None) is not None and arch in QWEN:
        # tiny clips: frames as given (no fps resampling), a few patches each
        processor.video_processor.do_sample_frames = False
        processor.video_processor.size = {"shortest_edge": 56 * 56, "longest_edge": 112 * 112}
    return model, processor


def clips() -> list[np.ndarray]:
    """Two different 4-frame clips of 56 x 56 px (frames, height, width, channels)."""
    rng = np.random.default_rng(5)
    return [rng.integers(0, 256, (4, 56, 56, 3), dtype=np.uint8) for _ in range(2)]


def _content(n_images: int, video: bool, text: str) -> list[dict]:
    return [
        *[{"type": "image"}] * n_images,
        *([{"type": "video"}] if video else []),
        {"type": "text", "text": text},
    ]


def _batch(processor, rows: list[tuple[tuple[int, ...], int | None, str]]):
    """TRL's log-prob layout for rows (image picks, video pick or None, text): left-padded prompts, then
    right-padded random completions; per-token fields extended over the completion."""
    pics, vids = several_images(), clips()
    msgs = [[{"role": "user", "content": _content(len(p), v is not None, t)}] for p, v, t in rows]
    chat = [processor.apply_chat_template(m, add_generation_prompt=True) for m in msgs]
    kw = {}
    if any(p for p, _, _ in rows):
        kw["images"] = [[pics[i] for i in p] for p, _, _ in rows]
    if any(v is not None for _, v, _ in rows):
        kw["videos"] = [vids[v] for _, v, _ in rows]
    inp = processor(text=chat, padding=True, return_tensors="pt", **kw)
    return with_completion(inp, COMPLETION)


def _pass(model, batch, comp, cmask):
    """Per-token log-probs of the completions, a GRPO-style loss, the gradients, encodes per tower call."""
    model.zero_grad(set_to_none=True)
    with count_vision(model) as seen:
        logits = model(**batch).logits[:, -COMPLETION - 1 : -1].float()
    logps = torch.log_softmax(logits, -1).gather(-1, comp[..., None])[..., 0]
    adv = torch.linspace(-1, 1, logps.shape[0])[:, None]
    loss = -((adv * logps) * cmask).sum() / cmask.sum()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return logps.detach(), loss.item(), grads, seen.per_call


def _rel(a: dict, b: dict) -> float:
    """Largest |a - b| over all gradients, relative to the largest |b| (0 = identical)."""
    assert a.keys() == b.keys()
    scale = max(v.abs().max().item() for v in b.values())
    return max((a[k] - b[k]).abs().max().item() for k in b) / scale


def _on_vs_off(model, batch, comp, cmask):
    """off; image de-duplication alone; both hooks. Returns the three passes and the hooks' stats."""
    off = _pass(model, batch, comp, cmask)
    dedup = install_vision_dedup(model)
    try:
        only_dedup = _pass(model, batch, comp, cmask)
        prefix = install_prefix_share(model)
        try:
            both = _pass(model, batch, comp, cmask)
        finally:
            prefix.remove()
    finally:
        dedup.remove()
    return off, only_dedup, both, dedup.stats, prefix.stats


def _assert_same(off, only_dedup, both):
    lp0, loss0, g0, _ = off
    # de-duplication alone: the same features repeated by index_select; the tower's matmuls run over fewer
    # rows, which may round differently (Qwen3-VL video: 5e-7 on log-probs of ~6; a feature of the wrong
    # image or clip moves them by whole units)
    assert torch.allclose(only_dedup[0], lp0, atol=2e-6, rtol=0)
    assert _rel(only_dedup[2], g0) < 1e-5
    # with prefix sharing: the attention is split into prefix + suffix (another summation order)
    lp2, loss2, g2, _ = both
    assert torch.allclose(lp2, lp0, atol=1e-5, rtol=0)
    assert loss2 == pytest.approx(loss0, rel=1e-5, abs=1e-7)
    assert any(("visual" in k or "vision" in k) and v.abs().max() > 0 for k, v in g2.items())
    assert _rel(g2, g0) < 1e-4


@pytest.mark.parametrize("arch", ARCHS)
def test_several_images_per_prompt_same_pass(arch):
    """2 prompts x G copies, 2 images each, picture 1 in both prompts: 3 distinct pictures of 4 G shown."""
    model, processor = _model(arch)
    rows = [(IMAGE_SETS[p], None, TEXTS[p]) for p in (0, 1) for _ in range(G)]
    batch, comp, cmask = _batch(processor, rows)
    off, only_dedup, both, dedup, prefix = _on_vs_off(model, batch, comp, cmask)
    (calls,) = off[3]
    tiles = calls // (2 * len(rows))  # SmolVLM feeds an image as tiles; Qwen-VL as one grid row
    assert only_dedup[3] == both[3] == [3 * tiles]
    assert dedup.images_in == 2 * calls and dedup.images_encoded == 2 * 3 * tiles
    assert prefix.shared_calls == 1 and prefix.tokens < 0.6 * prefix.tokens_unshared
    _assert_same(off, only_dedup, both)


@pytest.mark.parametrize("arch", QWEN)
def test_video_and_image_in_one_prompt_same_pass(arch):
    """Each prompt: the same image, then its own clip (`pixel_values_videos`): the tower runs once for the
    images (1 distinct of 2 G) and once for the videos (2 distinct of 2 G)."""
    model, processor = _model(arch)
    rows = [((0,), p, TEXTS[p]) for p in (0, 1) for _ in range(G)]
    batch, comp, cmask = _batch(processor, rows)
    assert "pixel_values_videos" in batch and batch["video_grid_thw"][0, 0] > 1  # a real temporal grid
    off, only_dedup, both, dedup, prefix = _on_vs_off(model, batch, comp, cmask)
    assert off[3] == [2 * G, 2 * G]  # images call, videos call
    assert only_dedup[3] == both[3] == [1, 2]
    assert prefix.shared_calls == 1
    _assert_same(off, only_dedup, both)


@pytest.mark.parametrize("arch", QWEN)
def test_video_only_prompts_same_pass(arch):
    """Video without any image (one tower call), 3 + 1 copies of two clips (a group split over ranks)."""
    model, processor = _model(arch)
    rows = [((), v, "When does it move?") for v in (0, 0, 0, 1)]
    batch, comp, cmask = _batch(processor, rows)
    assert "pixel_values" not in batch
    off, only_dedup, both, _, prefix = _on_vs_off(model, batch, comp, cmask)
    assert off[3] == [4] and only_dedup[3] == both[3] == [2]
    assert prefix.shared_calls == 1
    _assert_same(off, only_dedup, both)


# ------------------------------------------------------------------------------------------ rollout
# SmolVLM / Idefics3 take several images, not video (issue 20)
ROLLOUT_CASES = [(a, "several images") for a in ARCHS] + [(a, "video") for a in QWEN]


def _video_messages(text: str, clip: np.ndarray) -> list[dict]:
    frames = [Image.fromarray(f) for f in clip]
    return [{"role": "user", "content": [{"type": "video", "video": frames}, {"type": "text", "text": text}]}]


def _image_messages(text: str, pics: list[Image.Image]) -> list[dict]:
    from trl.data_utils import prepare_multimodal_messages

    return prepare_multimodal_messages(
        [{"role": "user", "content": _content(len(pics), False, text)}], images=[p.copy() for p in pics]
    )


def _rollout_vs_generate(tmp_path, arch: str, media: str, dtype: str) -> None:
    """The rollout on 3 + 1 copies of two prompts samples what plain generation on all rows samples for the
    same seed, with one prefill (one encode per distinct image / clip) and the processor's prompt ids."""
    from tests.speed.test_rollout import _trl_generate

    from vrft.train.rollout import SharedPrefillRollout

    trainer = make_trainer(tmp_path, arch, speed=True, max_completion_length=8, dtype=dtype)
    processor = trainer.processing_class
    if media == "video":
        processor.video_processor.do_sample_frames = False
        processor.video_processor.size = {"shortest_edge": 56 * 56, "longest_edge": 112 * 112}
        vids = clips()
        prompts = [_video_messages(TEXTS[r], vids[r].copy()) for r in (0, 0, 0, 1)]
    else:
        pics = several_images()
        prompts = [_image_messages(TEXTS[r], [pics[i] for i in IMAGE_SETS[r]]) for r in (0, 0, 0, 1)]
    for hook in trainer.vrft_test["hooks"]:
        hook.enabled = False  # count what the prefill itself saves (de-duplication has its own tests)
    rollout = SharedPrefillRollout()
    torch.manual_seed(3)
    with count_vision(trainer.model) as seen:
        out = rollout(copy.deepcopy(prompts), trainer)
    assert rollout.stats.prefilled == 2
    torch.manual_seed(3)
    with count_vision(trainer.model) as plain:
        batch, trl = _trl_generate(trainer, prompts)
    assert 2 * seen.images == plain.images  # 2 distinct prompts prefilled, 4 rows generated from
    if arch in QWEN:
        assert seen.per_call == [2 if media == "video" else 4]  # one encode per clip / picture per prompt
    eos = set(trainer.eos_token_ids)
    expected = []
    for row in trl.tolist():
        end = next((t + 1 for t, tok in enumerate(row) if tok in eos), len(row))
        expected.append(row[:end])
    assert out["completion_ids"] == expected
    for ids, m, got in zip(batch["input_ids"], batch["attention_mask"], out["prompt_ids"]):
        assert got == ids[m.bool()].tolist()


@pytest.mark.parametrize("arch, media", ROLLOUT_CASES)
def test_shared_prefill_rollout_equals_generate(tmp_path, arch, media):
    _rollout_vs_generate(tmp_path, arch, media, "float32")


@pytest.mark.parametrize("arch, media", ROLLOUT_CASES)
def test_shared_prefill_rollout_in_bf16(tmp_path, arch, media):
    """bf16 weights: the same samples as plain generation for the same seed on this CPU."""
    _rollout_vs_generate(tmp_path, arch, media, "bfloat16")


@pytest.mark.parametrize("mode", ["bf16 weights", "autocast"])
@pytest.mark.parametrize("arch, media", [(a, "several images") for a in ARCHS] + [(a, "video") for a in QWEN])
def test_several_images_and_video_in_bf16(arch, media, mode):
    """bf16 (weights, or autocast over fp32 weights): image / clip de-duplication and prefix sharing on vs
    off differ by at most twice what bf16 itself costs on the same pass (tests/speed/test_bf16.py explains
    the bound), for log-probs, the loss and the gradients."""
    from tests.speed.test_bf16 import _pass as bf16_pass

    model, processor = _model(arch)
    if media == "video":
        rows = [((0,), p, TEXTS[p]) for p in (0, 1) for _ in range(G)]
    else:
        rows = [(IMAGE_SETS[p], None, TEXTS[p]) for p in (0, 1) for _ in range(G)]
    batch, comp, cmask = _batch(processor, rows)
    ref_lp, _, ref_g = bf16_pass(model, batch, comp, cmask, torch.float32)
    if mode == "bf16 weights":
        model.to(torch.bfloat16)
        dtype = torch.bfloat16
    else:
        dtype = "autocast"
    off_lp, off_loss, off_g = bf16_pass(model, batch, comp, cmask, dtype)
    hooks = [install_vision_dedup(model), install_prefix_share(model)]
    try:
        on_lp, on_loss, on_g = bf16_pass(model, batch, comp, cmask, dtype)
    finally:
        for h in hooks:
            h.remove()
    distinct = 1 + 2 if media == "video" else 3  # one picture + two clips, or three pictures
    assert hooks[0].stats.images_encoded < hooks[0].stats.images_in
    assert hooks[0].stats.calls == (2 if media == "video" else 1)
    if arch in QWEN:
        assert hooks[0].stats.images_encoded == distinct
    assert hooks[1].stats.shared_calls == 1
    m = cmask.bool()
    noise = (off_lp - ref_lp)[m].abs().max().item()
    diff = (on_lp - off_lp)[m].abs().max().item()
    assert noise > 0
    print(
        f"{arch} {media} {mode}: log-probs {diff:.3g} / {noise:.3g}, gradients {_rel(on_g, off_g):.3g} / {_rel(off_g, ref_g):.3g}"
    )
    assert diff <= 2 * noise, (diff, noise)
    assert abs(on_loss - off_loss) <= 2 * noise
    assert _rel(on_g, off_g) <= 2 * _rel(off_g, ref_g)


def test_group_prompts_keys_video_arrays_by_content():
    """A video given as an array (or tensor) groups by its bytes; repr() would elide a large array."""
    from vrft.train.rollout import group_prompts

    a = np.zeros((4, 40, 40, 3), dtype=np.uint8)
    b = a.copy()
    b[2, 20, 20, 1] = 1  # one value in the middle of the clip: the same repr() as `a`
    assert repr(a) == repr(b)
    msgs = [[{"role": "user", "content": [{"type": "video", "video": v}, {"type": "text", "text": "q"}]}]
            for v in (a, a.copy(), b, torch.from_numpy(b), torch.from_numpy(a.copy()))]  # fmt: skip
    assert group_prompts(msgs)[1] == [0, 0, 1, 1, 0]  # same bytes, same dtype and shape: same clip
    assert group_prompts([[{"role": "user", "content": [{"video": object()}]}]] * 2)[1] == [0, 0]


# ---------------------------------------------------------------------------------- full GRPO step
@pytest.mark.parametrize(
    "arch, beta", [("qwen2_vl", 0.0), ("qwen2_5_vl", 0.04), ("qwen3_vl", 0.04), ("smolvlm", 0.0)]
)
def test_speedups_give_the_same_step_with_several_images(tmp_path, arch, beta):
    """A TRL GRPO step on prompts of two images each (TRL's ``images`` column): all three speed-ups on give
    the same completions, rewards, loss and gradients as TRL alone, and the tower encodes 3 distinct
    pictures per pass where TRL encodes all 2 x 2 x G."""
    from tests.speed.test_train_step import _close

    runs = {}
    for speed in (False, True):
        trainer = make_trainer(tmp_path, arch, speed=speed, g=G, beta=beta, several=True)
        ref = trainer.ref_model
        with count_vision(trainer.model) as policy:
            if ref is not None:
                with count_vision(ref) as reference:
                    trainer.train()
                ref_calls = reference.per_call
            else:
                trainer.train()
                ref_calls = []
        runs[speed] = (trainer, policy.per_call, ref_calls)
    (off, off_policy, off_ref), (on, on_policy, on_ref) = runs[False], runs[True]
    tiles = off_policy[0] // (2 * 2 * G)  # SmolVLM: tiles per image; Qwen-VL: 1
    assert off_policy == [2 * 2 * G * tiles] * 2  # generation + policy pass, every copy encoded
    assert on_policy == [3 * tiles] * 2
    assert off_ref == ([2 * 2 * G * tiles] if beta else []) and on_ref == ([3 * tiles] if beta else [])
    assert on.vrft_test["rollout"].stats.prefilled == 2
    assert on.vrft_test["prefix"][0].stats.shared_calls == 1

    r_off, r_on = off.vrft_test["reward"], on.vrft_test["reward"]
    assert r_on.completions == r_off.completions and r_on.rewards == r_off.rewards
    assert len(set(r_on.rewards)) > 1  # a real learning signal
    (g_off,), (g_on,) = off.vrft_test["grads"].grads, on.vrft_test["grads"].grads
    assert any(("visual" in k or "vision" in k) and v.abs().max() > 0 for k, v in g_off.items())
    assert _close(g_off, g_on) < 1e-4
    assert on.state.log_history[0]["loss"] == pytest.approx(
        off.state.log_history[0]["loss"], rel=1e-4, abs=1e-7
    )
