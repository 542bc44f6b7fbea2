"""GRPO variants (grpo.loss_type, grpo.importance_sampling_level and their knobs) reach TRL and change the loss.

Every variant trains the same tiny model on the same prompt with the same seed, so the first step sees
the same rollouts (checked). On that step the policy is the sampling policy (importance ratio 1), so each
loss has a closed form in the advantages A_i and the completion lengths L_i, computed here independently:

    grpo                  -mean_i A_i                       (= 0: the group advantages sum to 0)
    dr_grpo               -sum_i A_i L_i / (B * max_completion_length)
    dapo, bnpo            -sum_i A_i L_i / sum_i L_i        (one process, one micro-batch: the same)
    luspo                 -mean_i A_i L_i
    sapo                  -mean_i A_i * 4 sigmoid(0) / tau_i
    cispo (eps_high > 1), vespo: -sum_i A_i logp_i / sum_i L_i (the same: both weights are 1 at ratio 1)

The second step reuses the rollouts (num_iterations 2) after one update, and the test lowers their old
log-probs by STALE for the clipped losses (as if a staler policy had sampled them), so the ratios differ
from 1 and exceed 1 + epsilon also where A < 0: there GSPO's one ratio per sequence, the two-sided clip `delta` and VESPO's Gamma
parameters change the loss.
The EOS logit of the tiny model is raised (a forward hook in this test) so completion lengths differ.
"""

from __future__ import annotations

import re
import sys
import typing

import pytest
import torch

from vrft.config import GRPOSection, LossType, LRScheduler, validate
from vrft.errors import ConfigError

from .conftest import reward_module, tiny_config

MAX_LEN = 16
STALE = (
    0.5  # the second step's old log-probs are lowered by this: ratios above 1 + epsilon for every sign of A
)
STALE_FOR = {"grpo", "gspo", "delta"}  # (VESPO's weight of a sequence ratio that large would be 0 for any k)
COMMON = [
    "grpo.beta=0", "grpo.num_generations=4", f"grpo.max_completion_length={MAX_LEN}", "grpo.prompts_per_step=1",
    "grpo.max_steps=2", "grpo.num_iterations=2", "output.sample_every=100",
]  # fmt: skip

# the image inputs TRL's own loss pass gives the model (GRPOTrainer._compute_loss)
VISION_KEYS = ("pixel_values", "image_grid_thw", "num_images", "pixel_attention_mask", "spatial_shapes", "num_tiles",
               "image_sizes", "token_type_ids", "mm_token_type_ids", "image_position_ids")  # fmt: skip

VARIANTS: dict[str, list[str]] = {
    "grpo": [],
    "gspo": ["grpo.importance_sampling_level=sequence"],
    "delta": ["grpo.delta=1.5"],
    "dr_grpo": ["grpo.loss_type=dr_grpo"],
    "dapo": ["grpo.loss_type=dapo"],
    "bnpo": ["grpo.loss_type=bnpo"],
    "cispo": ["grpo.loss_type=cispo", "grpo.epsilon_high=5"],
    "sapo": ["grpo.loss_type=sapo", "grpo.sapo_temperature_pos=0.5", "grpo.sapo_temperature_neg=2.0"],
    "luspo": ["grpo.loss_type=luspo", "grpo.importance_sampling_level=sequence"],
    "vespo": ["grpo.loss_type=vespo"],
    "vespo_k": [
        "grpo.loss_type=vespo",
        "grpo.vespo_k_pos=0.5",
        "grpo.vespo_k_neg=0.5",
        "grpo.vespo_lambda_neg=5",
    ],
}


def test_loss_types_are_the_installed_trls():
    from trl import GRPOConfig

    help_text = GRPOConfig.__dataclass_fields__["loss_type"].metadata["help"]
    offered = re.search(r"Supported values are (.*?)\.", help_text).group(1)
    assert set(typing.get_args(LossType)) == set(re.findall(r"'(\w+)'", offered))
    assert (
        GRPOSection().loss_type == "grpo" and GRPOSection().importance_sampling_level == "token"
    )  # the paper


def test_scheduler_names_are_transformers_own_and_checked_by_the_schema():
    from transformers.trainer_utils import SchedulerType

    from vrft.config import load_config

    assert set(typing.get_args(LRScheduler)) == {e.value for e in SchedulerType}
    base = {"model": {"path": "m"}, "data": {"train": "t.jsonl"}}
    for key in ("grpo.lr_scheduler", "sft.lr_scheduler"):  # issue 19 §3: refused before any work
        with pytest.raises(ConfigError, match=re.escape(key) + ".*'bogus'"):
            load_config(base, [f"{key}=bogus"])
        assert getattr(load_config(base, [f"{key}=cosine"]), key.split(".")[0]).lr_scheduler == "cosine"


def test_every_knob_reaches_grpo_config(make_config, tmp_path):
    from vrft.train.grpo import grpo_args
    from vrft.train.processes import Precision

    cfg = make_config(overrides=[
        "grpo.loss_type=sapo", "grpo.importance_sampling_level=sequence", "grpo.delta=1.5",
        "grpo.sapo_temperature_pos=0.7", "grpo.sapo_temperature_neg=1.3", "grpo.vespo_k_pos=1.5",
        "grpo.vespo_lambda_pos=2.5", "grpo.vespo_k_neg=3.5", "grpo.vespo_lambda_neg=4.5",
    ])  # fmt: skip
    args = grpo_args(cfg, tmp_path / "out", 1, Precision("float32", False, False, True), [1.0])
    for key in ("loss_type", "importance_sampling_level", "delta", "sapo_temperature_pos", "sapo_temperature_neg",
                "vespo_k_pos", "vespo_lambda_pos", "vespo_k_neg", "vespo_lambda_neg"):  # fmt: skip
        assert getattr(args, key) == getattr(cfg.grpo, key), key


@pytest.mark.parametrize(
    "overrides,key",
    [
        (["grpo.loss_type=cispo"], "grpo.epsilon_high"),  # the ratio cap would be 0.2
        (["grpo.loss_type=luspo"], "grpo.importance_sampling_level"),
        (
            ["grpo.loss_type=vespo", "grpo.importance_sampling_level=sequence"],
            "grpo.importance_sampling_level",
        ),
    ],
)
def test_inconsistent_variant_settings_are_refused(make_config, overrides, key):
    with pytest.raises(ConfigError, match=re.escape(key)):
        make_config(overrides=overrides)
    cfg = make_config()
    for override in overrides:  # the same through validate() on a loaded config
        k, _, v = override.partition("=")
        setattr(cfg.grpo, k.split(".")[1], v)
    with pytest.raises(ConfigError, match=re.escape(key)):
        validate(cfg)


def test_unknown_loss_type_is_refused(make_config):
    with pytest.raises(ConfigError, match="loss_type"):
        make_config(overrides=["grpo.loss_type=ppo"])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """variant -> [(loss, lengths, advantages, completion-token log-probs sum per row)] for the 2 steps."""
    from vrft.train import run_grpo
    from vrft.train.grpo import _innermost

    root = tmp_path_factory.mktemp("variants")
    lib = str(reward_module(root))
    sys.path.insert(0, lib)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out: dict[str, list] = {}
    try:
        for name, overrides in VARIANTS.items():
            steps: list = []

            def hook(trainer, steps=steps, stale=name in STALE_FOR):
                eos = trainer.processing_class.tokenizer.eos_token_id
                lm_head = _innermost(trainer.model).lm_head

                def more_eos(module, inputs, logits):
                    logits = logits.clone()
                    logits[..., eos] += 4.0
                    return logits

                lm_head.register_forward_hook(more_eos)
                compute_loss = trainer.compute_loss

                def recorded(model, inputs, *args, **kwargs):
                    if steps and stale:  # the second step: a staler sampler
                        inputs = {**inputs, "old_per_token_logps": inputs["old_per_token_logps"] - STALE}
                    loss = compute_loss(model, inputs, *args, **kwargs)
                    with torch.no_grad():
                        logps = trainer._get_per_token_logps_and_entropies(
                            model, torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1),
                            torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], 1),
                            inputs["completion_ids"].size(1), **{k: inputs.get(k) for k in VISION_KEYS},
                        )[0]  # fmt: skip
                    mask = inputs["completion_mask"].float()
                    steps.append((
                        float(loss.detach()), mask.sum(-1).tolist(), inputs["advantages"].tolist(),
                        (logps * mask).sum(-1).tolist(),
                    ))  # fmt: skip
                    return loss

                trainer.compute_loss = recorded

            run_grpo(tiny_config(root / name, overrides=COMMON + overrides), trainer_hook=hook)
            out[name] = steps
    finally:
        sys.path.remove(lib)
        torch.set_num_threads(threads)
    return out


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-5 + 1e-4 * abs(b)


@pytest.mark.slow  # its module fixture trains every variant (~10 s)
def test_variants_change_the_loss_as_they_should(runs):
    assert all(len(steps) == 2 for steps in runs.values())
    _, lengths, adv, _ = runs["grpo"][0]
    for steps in runs.values():  # the same rollouts for every variant on the first step
        assert steps[0][1] == lengths and steps[0][2] == pytest.approx(adv, abs=1e-6)
    assert len(set(lengths)) > 1, f"completion lengths all equal ({lengths}): the loss forms would coincide"
    n = len(adv)
    first = {name: steps[0][0] for name, steps in runs.items()}
    second = {name: steps[1][0] for name, steps in runs.items()}

    # ratio 1: the closed forms
    assert _close(first["grpo"], -sum(adv) / n) and abs(first["grpo"]) < 1e-5
    token_weighted = -sum(a * length for a, length in zip(adv, lengths))
    assert abs(token_weighted) > 1e-2  # lengths and advantages make the normalisations differ
    assert _close(first["dr_grpo"], token_weighted / (n * MAX_LEN))
    assert _close(first["dapo"], token_weighted / sum(lengths))
    assert _close(first["bnpo"], first["dapo"])
    assert _close(first["luspo"], token_weighted / n)
    tau = [0.5 if a > 0 else 2.0 for a in adv]
    assert _close(first["sapo"], -sum(a * 2.0 / t for a, t in zip(adv, tau)) / n)
    logp = runs["cispo"][0][3]
    logp_weighted = -sum(a * lp for a, lp in zip(adv, logp)) / sum(lengths)
    assert _close(first["cispo"], logp_weighted) and _close(first["vespo"], logp_weighted)
    assert _close(first["vespo_k"], first["vespo"])  # the Gamma weight is 1 at ratio 1, whatever k and lambda
    for name in ("gspo", "delta"):  # one ratio per sequence, or a cap on the ratio: the same at ratio 1
        assert _close(first[name], first["grpo"]), name
    for name in ("dr_grpo", "dapo", "luspo", "sapo", "cispo"):
        assert not _close(first[name], first["grpo"]), name

    # after one update (ratio != 1): GSPO, the ratio cap and VESPO's parameters change the loss
    assert not _close(second["grpo"], 0.0)
    assert not _close(second["gspo"], second["grpo"])
    assert not _close(second["delta"], second["grpo"])
    assert not _close(second["vespo_k"], second["vespo"])
