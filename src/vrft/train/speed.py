"""vrft's three GRPO speed-ups, and the rule that decides where each one runs.

- shared prefill (`vrft.train.rollout.SharedPrefillRollout`): one processor call and one prefill per
  distinct prompt in the rollouts;
- image de-duplication (`vrft.train.vision_dedup.VisionDedup`): one vision encode per distinct image;
- prompt-prefix sharing (`vrft.train.prefix_share.PrefixShare`): one pass of each shared prompt prefix
  through the language model in the log-prob passes.

`run_grpo` builds the trainer with a rollout candidate, then `apply` decides, from the trainer's REAL
setting (precision, distribution read off the accelerator, model family):

    rollout = speed.rollout_candidate(model, mode_of_shared_prefill, use_vllm=...)
    with speed.quiet_rollout_warning():
        trainer = GRPOTrainer(..., rollout_func=rollout)
    speed.apply(trainer, rollout, modes)

Modes (`grpo.speedups`, per speed-up overridable by `grpo.shared_prefill` / `dedup_images` /
`share_prompt_prefix`): "auto" turns a speed-up on only where `PROVEN` lists a test for that precision x
distribution x family x media (one image per prompt, several images, video; read off the training data), "on" forces it wherever the family is supported, "off" leaves TRL as it is. Every
decision is ONE logged line saying what runs and why. Some checks stand a speed-up aside even when
forced: an unsupported family, vLLM rollouts (shared prefill), FSDP v1 without a way to gather the
parameters for generation, a transformers version whose module signatures differ from what the hooks
were written for, and `tools.enabled` (every speed-up: `TOOLS_PROBLEM`).

The table `PROVEN` is rendered into docs/speed.md (`proven_table`); tests/speed/test_policy.py checks
that the docs hold it and that every test it names exists.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from vrft.train.prefix_share import TEXT_MODELS, PrefixShare, install_prefix_share, prefix_share_problem
from vrft.train.rollout import SHARED_PREFILL_FAMILIES, SharedPrefillRollout, rollout_problem
from vrft.train.vision_dedup import (
    VISION_LAYOUTS,
    VisionDedup,
    install_vision_dedup,
    unwrap_model,
    vision_dedup_problem,
)

logger = logging.getLogger(__name__)

SPEEDUPS = ("shared_prefill", "dedup_images", "share_prompt_prefix")
NAMES = {
    "shared_prefill": "shared prefill",
    "dedup_images": "image de-duplication",
    "share_prompt_prefix": "prompt-prefix sharing",
}
SUPPORTED = {
    "shared_prefill": SHARED_PREFILL_FAMILIES,
    "dedup_images": VISION_LAYOUTS,
    "share_prompt_prefix": TEXT_MODELS,
}
MODES = ("auto", "on", "off")
FALLBACK = {  # what runs instead
    "shared_prefill": "TRL's generation is used",
    "dedup_images": "every copy is encoded",
    "share_prompt_prefix": "G copies per pass",
}


@dataclass(frozen=True)
class Proof:
    """One proven combination: the speed-ups, precision and distribution, the families, the test."""

    speedups: tuple[str, ...]
    precision: str  # "fp32" | "bf16"
    distribution: str  # "single" | "ddp" | "fsdp2"
    families: tuple[str, ...]
    test: str  # path::function of the test that proves it (same outputs / gradients / weights as off)
    media: tuple[str, ...] = ("image",)  # keys of MEDIA the test feeds


_ALL = SPEEDUPS
_TINY = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "smolvlm")  # the families with a tiny model to test on
_QWEN = _TINY[:3]  # the families that take video (`pixel_values_videos`)
_HOOKS = ("dedup_images", "share_prompt_prefix")

# What a prompt shows, read off the training data (`media_of`). A video fed as its sampled frames (an
# image list, the way TRL 1.16's GRPOTrainer can carry it) is "images".
MEDIA = {
    "image": "one image per prompt",
    "images": "several images per prompt",
    "video": "video input (pixel_values_videos)",
}
_MEDIA_TESTS = "tests/speed/test_media.py"

# A literal table. Add a row only with the test that proves it (on vs off: log-probs, loss, gradients or
# final weights within the tolerances the test states).
PROVEN: tuple[Proof, ...] = (
    Proof(_ALL, "fp32", "single", _TINY, "tests/speed/test_train_step.py::test_speedups_give_the_same_step"),
    Proof(_ALL, "bf16", "single", _TINY, "tests/speed/test_bf16.py::test_speedups_give_the_same_step_in_bf16"),
    Proof(_ALL, "fp32", "ddp", ("qwen2_vl",), "tests/speed/test_distributed.py::test_split_groups_over_two_processes"),
    Proof(("dedup_images", "share_prompt_prefix"), "fp32", "fsdp2", ("qwen2_5_vl",),
          "tests/speed/test_fsdp.py::test_fsdp2_two_processes_same_as_off"),
    Proof(_ALL, "fp32", "single", _TINY, f"{_MEDIA_TESTS}::test_speedups_give_the_same_step_with_several_images",
          ("images",)),
    Proof(_HOOKS, "bf16", "single", _TINY, f"{_MEDIA_TESTS}::test_several_images_and_video_in_bf16", ("images",)),
    Proof(("shared_prefill",), "bf16", "single", _TINY, f"{_MEDIA_TESTS}::test_shared_prefill_rollout_in_bf16",
          ("images",)),
    Proof(_ALL, "fp32", "ddp", ("qwen2_vl",),
          "tests/speed/test_distributed.py::test_split_groups_over_two_processes_with_several_images", ("images",)),
    Proof(_HOOKS, "fp32", "fsdp2", ("qwen2_5_vl",),
          "tests/speed/test_fsdp.py::test_fsdp2_several_images_and_video_same_as_off", ("images", "video")),
    Proof(_HOOKS, "fp32", "single", _QWEN, f"{_MEDIA_TESTS}::test_video_and_image_in_one_prompt_same_pass",
          ("video",)),
    Proof(("shared_prefill",), "fp32", "single", _QWEN, f"{_MEDIA_TESTS}::test_shared_prefill_rollout_equals_generate",
          ("video",)),
    Proof(_HOOKS, "bf16", "single", _QWEN, f"{_MEDIA_TESTS}::test_several_images_and_video_in_bf16", ("video",)),
    Proof(("shared_prefill",), "bf16", "single", _QWEN, f"{_MEDIA_TESTS}::test_shared_prefill_rollout_in_bf16",
          ("video",)),
)  # fmt: skip

DISTRIBUTIONS = {
    "single": "one process",
    "ddp": "data-parallel processes (DDP)",
    "fsdp1": "FSDP v1",
    "fsdp2": "FSDP v2 (fully_shard)",
    "zero1": "DeepSpeed ZeRO-1",
    "zero2": "DeepSpeed ZeRO-2",
    "zero3": "DeepSpeed ZeRO-3",
}


@dataclass(frozen=True)
class Setting:
    """Where a run happens: precision ("fp32" | "bf16" | "fp16"), distribution (a key of DISTRIBUTIONS or
    another accelerate type in lower case), family (`config.model_type`)."""

    precision: str
    distribution: str
    family: str | None
    media: str = "image"  # a key of MEDIA

    def describe(self) -> str:
        where = DISTRIBUTIONS.get(self.distribution, self.distribution)
        media = "" if self.media == "image" else f", {MEDIA.get(self.media, self.media)}"
        return f"{self.family}, {self.precision}, {where}{media}"


def proof_for(speedup: str, setting: Setting) -> Proof | None:
    """The `PROVEN` row covering this speed-up in this setting, or None."""
    for proof in PROVEN:
        if (
            speedup in proof.speedups
            and proof.precision == setting.precision
            and proof.distribution == setting.distribution
            and setting.family in proof.families
            and setting.media in proof.media
        ):
            return proof
    return None


def proven_table() -> str:
    """`PROVEN` as the markdown table of docs/speed.md."""
    lines = [
        "| speed-ups | precision | distribution | families | media | test |",
        "|---|---|---|---|---|---|",
    ]
    for p in PROVEN:
        names = ", ".join(f"`{s}`" for s in p.speedups) if p.speedups != _ALL else "all three"
        families = ", ".join(f"`{f}`" for f in p.families)
        media = ", ".join(MEDIA[m] for m in p.media)
        lines.append(f"| {names} | {p.precision} | {p.distribution} | {families} | {media} | `{p.test}` |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ setting
def _model_type(model: Any) -> str | None:
    return getattr(getattr(unwrap_model(model), "config", None), "model_type", None)


def distribution_of(accelerator: Any) -> str:
    """The distribution an accelerate `Accelerator` really runs (its state, not the launcher's config)."""
    state = accelerator.state
    kind = getattr(getattr(state, "distributed_type", None), "value", str(state.distributed_type))
    if kind == "DEEPSPEED":
        plugin = getattr(state, "deepspeed_plugin", None)
        return f"zero{getattr(plugin, 'zero_stage', '?')}"
    if kind == "FSDP":
        plugin = getattr(state, "fsdp_plugin", None)
        return f"fsdp{getattr(plugin, 'fsdp_version', 1)}"
    if kind in ("NO",) or int(getattr(accelerator, "num_processes", 1)) <= 1:
        return "single"
    if kind.startswith("MULTI_"):
        return "ddp"
    return kind.lower()


def media_of(dataset: Any) -> str:
    """What the prompts of a training dataset show (a key of MEDIA), read off its raw Arrow columns (no
    image or video is decoded): "video" when a ``video`` / ``videos`` column exists or a prompt holds a
    ``{"type": "video"}`` part, "images" when an ``images`` column holds a list longer than one or a
    ``visuals`` column exists (`vrft.data.hf` writes it only when some record holds several images or a
    video, which it shows as sampled frames), else "image". A column it cannot measure counts as the larger case (the policy then stands aside unless
    that case is proven too)."""
    columns = set(getattr(dataset, "column_names", None) or ())
    table = getattr(dataset, "data", None)
    if columns & {"video", "videos"} or _prompt_has_video(table):
        return "video"
    if "visuals" in columns:  # vrft's own datasets with several images or a video (shown as its frames)
        return "images"  # `vrft.data.hf`: the column exists only when some record is not one image
    if "images" in columns:
        try:
            import pyarrow.compute as pc

            lengths = pc.list_value_length(table.column("images"))
            longest = pc.max(lengths).as_py()
        except Exception:  # noqa: BLE001 - an unreadable column: assume several images
            return "images"
        return "images" if longest is None or longest > 1 else "image"
    return "image"


def _prompt_has_video(table: Any) -> bool:
    """True when a conversational ``prompt`` column has a content part of type "video"."""
    try:
        import pyarrow.compute as pc

        messages = table.column("prompt").combine_chunks().flatten()
        types = messages.field("content").flatten().field("type")
        return bool(pc.any(pc.equal(types, "video")).as_py())
    except Exception:  # noqa: BLE001 - no such column or another layout (plain text prompts): no video part
        return False


def setting_of(trainer: Any) -> Setting:
    """Precision (mixed-precision flag or weight dtype), distribution, family and media of a built trainer."""
    import torch

    args = trainer.args
    dtype = next((p.dtype for p in unwrap_model(trainer.model).parameters() if p.is_floating_point()), None)
    if getattr(args, "bf16", False) or dtype == torch.bfloat16:
        precision = "bf16"
    elif getattr(args, "fp16", False) or dtype == torch.float16:
        precision = "fp16"
    else:
        precision = "fp32"
    media = media_of(getattr(trainer, "train_dataset", None))
    return Setting(precision, distribution_of(trainer.accelerator), _model_type(trainer.model), media)


def refuse_data_parallel(n_gpu: int) -> None:
    """UserError when transformers would wrap the model in `nn.DataParallel` (several GPUs, one process).

    DataParallel runs replicas of the model in threads of one process: the speed-up hooks keep their plans
    per module instance and the replicas would share them. vrft trains one process per GPU instead.
    """
    if n_gpu > 1:
        from vrft.errors import UserError

        raise UserError(
            f"{n_gpu} GPUs are visible to one process, so transformers would train with nn.DataParallel, which "
            "vrft does not support; start one process per GPU: `accelerate launch --config_file "
            "configs/accelerate/ddp.yaml -m vrft.cli train CONFIG` (set num_processes there), or use one GPU "
            "with CUDA_VISIBLE_DEVICES=0"
        )


# ------------------------------------------------------------------------------------------ decisions
def mode_of(mode: str, override: bool | None) -> str:
    """A speed-up's mode: its own switch when set (True: "on", False: "off"), else `grpo.speedups`."""
    if override is True:
        return "on"
    if override is False:
        return "off"
    if mode not in MODES:
        raise ValueError(f"unknown speed-up mode {mode!r}; use one of {', '.join(MODES)}")
    return mode


@dataclass
class Decision:
    """Whether a speed-up runs and the one line saying why."""

    on: bool
    line: str


def decide(speedup: str, mode: str, setting: Setting | None, problem: str | None = None) -> Decision:
    """The decision for one speed-up. `setting` None: no proof check (only "on"/"off" apply).

    `problem`: a reason it cannot run here at all (signature mismatch, no FSDP gather...), which wins
    over "on".
    """
    name = NAMES[speedup]
    family = setting.family if setting is not None else None
    if mode == "off":
        return Decision(False, f"speed: {name} off (grpo.speedups / grpo.{speedup}): {FALLBACK[speedup]}")
    supported = SUPPORTED[speedup]
    if setting is not None and family not in supported:
        return Decision(
            False,
            f"speed: {name} not supported for model_type {family!r} (supported: {', '.join(supported)}): "
            f"{FALLBACK[speedup]}",
        )
    if problem:
        return Decision(False, f"speed: {name} stands aside: {problem}")
    if mode == "on" or setting is None:
        proof = proof_for(speedup, setting) if setting is not None else None
        note = "" if proof is not None or setting is None else f"; NOT proven for {setting.describe()}"
        return Decision(True, f"speed: {name} on (forced{note})")
    proof = proof_for(speedup, setting)
    if proof is None:
        return Decision(
            False,
            f"speed: {name} stands aside (grpo.speedups=auto): not proven for {setting.describe()} "
            f"(docs/speed.md lists the proven combinations); force it with grpo.{speedup}=true",
        )
    return Decision(True, f"speed: {name} on ({setting.describe()}; proven by {proof.test})")


# --------------------------------------------------------------------------------------------- apply
TOOLS_PROBLEM = "tools.enabled: TRL's tool loop generates and scores the turns (not proven with tools)"
"""Why every speed-up stands aside under `tools.enabled` (a `rollout_func` would also drop the images of
the follow-up turns: TRL clears them after a custom rollout)."""


def rollout_candidate(
    model: Any, mode: str, *, use_vllm: bool = False, tools: bool = False
) -> SharedPrefillRollout | None:
    """The `rollout_func` to build `GRPOTrainer` with (`apply` may still set it aside), or None.

    None when the mode is off, with vLLM rollouts, with tools, or for a family without support (`apply`
    logs why).
    """
    if mode == "off" or use_vllm or tools or _model_type(model) not in SHARED_PREFILL_FAMILIES:
        return None
    return SharedPrefillRollout()


@dataclass
class Applied:
    """What `apply` left running: the rollout (or None), the hooks, and the logged lines."""

    rollout: SharedPrefillRollout | None = None
    dedup: list[VisionDedup] = field(default_factory=list)
    prefix: list[PrefixShare] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def apply(
    trainer: Any,
    rollout: SharedPrefillRollout | None,
    modes: dict[str, str],
    *,
    use_vllm: bool = False,
    tools: bool = False,
) -> Applied:
    """Decide each speed-up for the trainer's real setting; install the hooks; drop the rollout if it must
    stand aside (TRL's own generation then runs). Logs one line per speed-up. `tools`: every speed-up
    stands aside (`TOOLS_PROBLEM`)."""
    refuse_data_parallel(int(getattr(trainer.args, "n_gpu", 1) or 1))
    setting = setting_of(trainer)
    out = Applied()

    # shared prefill
    mode = modes["shared_prefill"]
    if use_vllm and mode != "off":
        d = Decision(False, "speed: shared prefill not used with vLLM (vLLM shares prompt prefixes itself)")
    else:
        problem = TOOLS_PROBLEM if tools else rollout_problem(trainer, setting.distribution)
        d = decide("shared_prefill", mode, setting, problem)
    if d.on and rollout is not None:
        out.rollout = rollout
    elif getattr(trainer, "rollout_func", None) is rollout and rollout is not None:
        trainer.rollout_func = None  # TRL's own generation (the constructor argument, public attribute)
    out.lines.append(d.line)

    # image de-duplication and prompt-prefix sharing: hooks on the policy and the reference model
    for speedup, problem_of, install, sink in (
        ("dedup_images", vision_dedup_problem, install_vision_dedup, out.dedup),
        ("share_prompt_prefix", prefix_share_problem, install_prefix_share, out.prefix),
    ):
        d = decide(speedup, modes[speedup], setting, TOOLS_PROBLEM if tools else problem_of(trainer.model))
        if d.on:
            for model in (trainer.model, getattr(trainer, "ref_model", None)):
                hook = install(model) if model is not None else None
                if hook is not None:
                    sink.append(hook)
        out.lines.append(d.line)
    for line in out.lines:
        logger.info("%s", line)
    return out


@contextmanager
def quiet_rollout_warning() -> Iterator[None]:
    """Silence TRL's 'rollout_func is experimental' and 'environment_factory is experimental' (tools)
    UserWarnings for the block (vrft pins and tests TRL)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*rollout_func.*experimental.*", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*environment_factory.*experimental.*", category=UserWarning)
        yield


# ------------------------------------------------------------- direct switches (tests and benchmarks)
def shared_prefill_rollout(
    model: Any, enabled: bool, *, use_vllm: bool = False
) -> SharedPrefillRollout | None:
    """The `rollout_func` forced on (`enabled`) or off, no proof check; one log line."""
    family = _model_type(model)
    if not enabled:
        logger.info(
            "speed: shared prefill off (grpo.shared_prefill=false): TRL generates each of the G copies"
        )
        return None
    if use_vllm:
        logger.info("speed: shared prefill not used with vLLM (vLLM shares prompt prefixes itself)")
        return None
    d = decide("shared_prefill", "on", Setting("?", "?", family))
    line = f"speed: shared prefill on ({family}): one prefill per distinct prompt" if d.on else d.line
    logger.info("%s", line)
    return SharedPrefillRollout() if d.on else None


def dedup_vision(trainer: Any, enabled: bool) -> list[VisionDedup]:
    """Install `VisionDedup` on the policy's vision tower (and the reference model's), forced; the hooks."""
    return _force("dedup_images", trainer, enabled, vision_dedup_problem, install_vision_dedup)


def share_prompt_prefix(trainer: Any, enabled: bool) -> list[PrefixShare]:
    """Install `PrefixShare` on the policy's decoder (and the reference model's), forced; the hooks."""
    return _force("share_prompt_prefix", trainer, enabled, prefix_share_problem, install_prefix_share)


def _force(speedup: str, trainer: Any, enabled: bool, problem_of, install) -> list:
    family = _model_type(trainer.model)
    problem = problem_of(trainer.model) if enabled and family in SUPPORTED[speedup] else None
    d = decide(speedup, "on" if enabled else "off", Setting("?", "?", family), problem)
    installed = []
    if d.on:
        for model in (trainer.model, getattr(trainer, "ref_model", None)):
            hook = install(model) if model is not None else None
            if hook is not None:
                installed.append(hook)
        logger.info("speed: %s on (%s)", NAMES[speedup], family)
    else:
        logger.info("%s", d.line)
    return installed
