"""Typed configuration for `vrft train` (Visual-RFT / GRPO) and `vrft sft` (the SFT baseline): the schema.

One YAML file describes one experiment: the model, the data, the rewards, the GRPO and SFT
hyperparameters and where to write. This module reads it in three stages, each reporting *every*
problem it finds at once (as a `vrft.errors.ConfigError`), and touches no other file:

1. YAML syntax (file:line of the error);
2. the schema: unknown keys (with a "did you mean" suggestion) and wrong types, each with the file
   and line of the key, or the `key=value` override that introduced it;
3. `validate()`: rules across fields that need nothing but the config.

What needs the world (the model directory, the records and their images, the registered tasks and
rewards, installed trackers, the output directory) is checked once per run by
`vrft.train.preflight`, which `vrft train`, `vrft sft` and `vrft check-config` run.

Overrides are dotted `key=value` strings whose values are parsed as YAML scalars
(`grpo.beta=0.0`, `model.lora.enabled=true`, `model.lora.target_modules=[q_proj,v_proj]`).
Relative paths in a config are relative to the current working directory. The reading, override
and error-message machinery is `vrft.schema` (shared with the demo's settings).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    PrivateAttr,
)

from vrft.errors import ConfigError
from vrft.inputs import MAX_IMAGE_PIXELS
from vrft.media import MAX_IMAGES_PER_RECORD, MAX_VIDEO_FPS, MAX_VIDEO_FRAMES
from vrft.schema import (
    Section,
    apply_overrides,
    join_problems,
    read_source,
    source_of,
    suggest,
    type_name,
    validate_schema,
)

__all__ = ["VrftConfig", "apply_overrides", "join_problems", "load_config", "read_source", "suggest",
           "validate", "validate_schema"]  # fmt: skip

Convention = Literal["auto", "norm1000", "resized_pixels", "pixels"]


def _seed(value: int) -> int:
    from vrft.inputs import normalize_seed

    return normalize_seed(value)


Seed = Annotated[int, AfterValidator(_seed)]
"""Any integer; negative (and >= 2**32) seeds are taken mod 2**32 (`vrft.inputs.normalize_seed`)."""


Tracker = Literal["wandb", "tensorboard", "trackio"]


def _as_list(value: Any) -> Any:
    """`report_to: tensorboard` means `[tensorboard]`; 'none' (transformers' word for no tracker) means []."""
    if isinstance(value, str):
        return [] if value == "none" else [value]
    return value


class _Section(Section):
    """Base of every config section: unknown keys are errors, assignments are validated, a number key
    refuses inf / nan and true / false (`vrft.schema.Section`)."""


# --------------------------------------------------------------------------------------------- model
class LoraSection(_Section):
    """Low-rank adapters (peft). Off by default: the paper fine-tunes every weight."""

    enabled: bool = Field(False, description="Train LoRA adapters instead of every weight.")
    r: int = Field(16, gt=0, description="Adapter rank.")
    alpha: int = Field(32, gt=0, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the adapter input.")
    target_modules: str | list[str] = Field(
        "all-linear",
        description="Module names (or peft's 'all-linear') that receive adapters.",
    )
    include_vision: bool = Field(
        False, description="Also put adapters on the vision tower (default: language model only)."
    )


class ModelSection(_Section):
    """The policy model: a LOCAL Hugging Face directory (nothing is downloaded)."""

    path: str = Field(..., description="Local directory of a Hugging Face vision-language model.")
    coordinate_convention: Convention = Field(
        "auto",
        description="How boxes are written for this model: 'auto' (from the model family), 'norm1000' "
        "(integers 0..1000, Qwen2-VL / Qwen3-VL), 'resized_pixels' (pixels of the resized image, "
        "Qwen2.5-VL) or 'pixels' (original pixels).",
    )
    min_pixels: int = Field(3136, gt=0, description="Smallest image area the processor resizes to.")
    max_pixels: int = Field(401408, gt=0, description="Largest image area the processor resizes to.")
    max_images: int = Field(
        4,
        ge=1,
        le=MAX_IMAGES_PER_RECORD,
        description="Most images one record may show (records with 'images'); a training run refuses "
        "records with more. 1..16 (vrft.media.MAX_IMAGES_PER_RECORD).",
    )
    video_fps: float = Field(
        2.0,
        gt=0.0,
        le=MAX_VIDEO_FPS,
        description="Frames sampled per second of video (then capped at video_max_frames, evenly spread); "
        "> 0, at most 60.",
    )
    video_max_frames: int = Field(
        8,
        ge=1,
        le=MAX_VIDEO_FRAMES,
        description="Most frames sampled from one video (each becomes one image input); 1..256.",
    )
    video_max_pixels: int = Field(
        12544,
        gt=0,
        le=MAX_IMAGE_PIXELS,
        description="Largest area of one sampled video frame (12544 = 112 x 112); frames are resized "
        "to fit, keeping their aspect ratio; at most 100,000,000 (vrft.inputs.MAX_IMAGE_PIXELS).",
    )
    video_min_pixels: int = Field(
        3136,
        gt=0,
        le=MAX_IMAGE_PIXELS,
        description="Smallest area of one sampled video frame (3136 = 56 x 56); at most video_max_pixels.",
    )
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto",
        description="Dtype of the loaded weights. 'auto': float32 for full fine-tuning (master weights, "
        "computed in bf16 autocast where the hardware has it) and on CPU; bfloat16 for a frozen LoRA "
        "base on a GPU with bf16.",
    )
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", description="Compute precision (autocast). 'auto': bf16 where the GPU supports it, else fp32."
    )
    attn_implementation: str | None = Field(
        None, description="'sdpa', 'eager', 'flash_attention_2', ... (None: the transformers default)."
    )
    freeze_vision: bool = Field(False, description="Freeze the vision tower (the paper trains it).")
    gradient_checkpointing: bool = Field(False, description="Trade compute for activation memory.")
    lora: LoraSection = Field(default_factory=LoraSection, description="LoRA adapters.")


# ---------------------------------------------------------------------------------------------- data
class DataSection(_Section):
    """Records (JSONL, see docs/DESIGN.md) to train on."""

    train: str = Field(..., description="Training records (JSONL).")
    eval: str | None = Field(
        None,
        description="Held-out records of this experiment, a note for people: give them to `vrft eval --data`. "
        "Training never reads them, so they are not checked.",
    )
    task: str | None = Field(
        None,
        description="detection | classification | grounding | counting | ocr | temporal_grounding | "
        "multi_image_grounding (None: read from the records).",
    )
    answer_format: Literal["think", "answer_only"] = Field(
        "think",
        description="'think': <think>..</think> <answer>..</answer> (the paper); 'answer_only': prompt for "
        "<answer>..</answer> alone and score format_answer_only instead of the think format (Perception-R1). "
        "Records may set answer_format too; they must agree with this.",
    )
    max_samples: int | None = Field(None, gt=0, description="Use at most this many training records.")
    seed: Seed = Field(
        0, description="Seed that picks the `max_samples` subset (any integer; taken mod 2**32)."
    )
    shuffle: bool = Field(
        True, description="Shuffle the prompts each epoch (seeded by grpo.seed / sft.seed)."
    )


# ------------------------------------------------------------------------------------------- rewards
class RewardsSection(_Section):
    """Which verifiable rewards train the policy, and their weights."""

    preset: str = Field(
        "default", description="Reward preset of vrft.rewards.PRESETS ('default', 'visual-rft')."
    )
    weights: dict[str, float] = Field(
        default_factory=dict,
        description="Override weights {reward name: weight}; a name not in the preset is added; "
        "weight 0 logs a reward without training on it.",
    )
    extra: list[str] = Field(
        default_factory=list,
        description="Extra reward functions 'package.module:function' (TRL convention), weight 1 unless "
        "`weights` names them (by function name or by the full string).",
    )


# ---------------------------------------------------------------------------------------------- grpo
# TRL 1.16 GRPOTrainer's loss types (trl.GRPOConfig.loss_type); tests/train/test_variants.py checks the
# list against the installed TRL.
LossType = Literal["grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo"]


# transformers 5's scheduler names (transformers.SchedulerType); tests/train/test_variants.py checks the
# list against the installed transformers. A name outside it is a schema error, not a crash at step 0.
LRScheduler = Literal["linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
                      "inverse_sqrt", "reduce_lr_on_plateau", "cosine_with_min_lr", "cosine_warmup_with_min_lr",
                      "warmup_stable_decay", "greedy"]  # fmt: skip


class GRPOSection(_Section):
    """Visual-RFT: TRL's GRPOTrainer hyperparameters (paper values in configs/paper/)."""

    num_generations: int = Field(8, description="G: completions sampled per prompt (>= 2).")
    prompts_per_step: int = Field(
        16, gt=0, description="Distinct prompts per optimizer step, all devices together (paper: 16)."
    )
    per_device_prompts: int = Field(
        1, gt=0, description="Prompts per device per forward/backward pass (x G completions)."
    )
    beta: float = Field(0.04, ge=0.0, description="KL coefficient to the frozen reference (k3 estimator).")
    learning_rate: float = Field(1e-6, gt=0.0, description="Peak learning rate (AdamW).")
    lr_scheduler: LRScheduler = Field(
        "linear", description="transformers scheduler name (linear, cosine, constant...)."
    )
    warmup: float = Field(0.0, ge=0.0, description="Warmup: a ratio of the steps if < 1, else a step count.")
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, gt=0.0, description="Gradient clipping norm.")
    temperature: float = Field(1.0, gt=0.0, description="Sampling temperature of the rollouts.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling of the rollouts.")
    top_k: int = Field(0, ge=0, description="Top-k sampling of the rollouts (0: off).")
    max_completion_length: int = Field(256, gt=0, description="Max new tokens per completion.")
    max_prompt_length: int | None = Field(
        None,
        gt=0,
        description="Prompt-token budget (image tokens included) that `vrft doctor` checks the prompts against; "
        "None: none. TRL 1.16 never truncates prompts, so training does not read it: set it to the limit of "
        "whatever serves the rollouts (e.g. vLLM's max_model_len minus grpo.max_completion_length).",
    )
    max_steps: int | None = Field(None, gt=0, description="Optimizer steps (None: run `epochs`).")
    epochs: float = Field(1.0, gt=0.0, description="Passes over the prompts when max_steps is None.")
    num_iterations: int = Field(1, gt=0, description="Policy updates per batch of rollouts (mu).")
    epsilon: float = Field(0.2, gt=0.0, description="PPO clip range (no effect when num_iterations == 1).")
    epsilon_high: float | None = Field(None, gt=0.0, description="Upper clip range (DAPO); None: epsilon.")
    loss_type: LossType = Field(
        "grpo",
        description="TRL's GRPO loss (docs/training.md 'GRPO variants'): 'grpo' = mean over the tokens of "
        "each sequence, then over sequences (paper); dr_grpo, dapo, bnpo, cispo, sapo, luspo, vespo.",
    )
    importance_sampling_level: Literal["token", "sequence"] = Field(
        "token",
        description="Importance ratio per token (paper) or one per sequence, the mean log-ratio (GSPO).",
    )
    delta: float | None = Field(
        None, gt=1.0, description="Two-sided clipping: cap the ratio at delta (INTELLECT-2); None: off."
    )
    sapo_temperature_pos: float = Field(
        1.0, gt=0.0, description="SAPO gate temperature for positive advantages (loss_type: sapo)."
    )
    sapo_temperature_neg: float = Field(
        1.05, gt=0.0, description="SAPO gate temperature for non-positive advantages (loss_type: sapo)."
    )
    vespo_k_pos: float = Field(2.0, ge=0.0, description="VESPO Gamma power for positive advantages.")
    vespo_lambda_pos: float = Field(3.0, gt=0.0, description="VESPO Gamma decay for positive advantages.")
    vespo_k_neg: float = Field(3.0, ge=0.0, description="VESPO Gamma power for negative advantages.")
    vespo_lambda_neg: float = Field(2.0, gt=0.0, description="VESPO Gamma decay for negative advantages.")
    scale_rewards: Literal["group", "batch", "none"] = Field(
        "group", description="Divide advantages by the reward std of the group (paper), the batch, or not."
    )
    mask_truncated_completions: bool = Field(
        False, description="Drop completions cut at max length from the loss."
    )
    seed: Seed = Field(
        42, description="Seed of the run (sampling, data order, adapter init); any integer, taken mod 2**32."
    )
    use_vllm: bool = Field(False, description="Generate rollouts with vLLM (needs `pip install vrft[vllm]`).")
    vllm_mode: Literal["colocate", "server"] = Field(
        "colocate", description="vLLM inside the training processes, or a separate `trl vllm-serve` server."
    )
    vllm_server_host: str = Field("0.0.0.0", description="Host of the vLLM server (server mode).")
    vllm_server_port: int = Field(8000, description="Port of the vLLM server (server mode).")
    vllm_gpu_memory_utilization: float = Field(
        0.3, gt=0.0, le=1.0, description="GPU memory share vLLM may take (colocate mode)."
    )
    speedups: Literal["auto", "on", "off"] = Field(
        "auto",
        description="vrft's three GRPO speed-ups (docs/speed.md). auto: each is on only where tests prove it "
        "(precision x distribution x model family, the table in docs/speed.md) and otherwise stands aside with "
        "one logged line saying why; on: forced on wherever the family is supported; off: TRL as-is.",
    )
    shared_prefill: bool | None = Field(
        None,
        description="Rollouts: one processor call and one prefill per distinct prompt, KV cache repeated G "
        "times. None: follow grpo.speedups; true/false: force this one on/off (overrides grpo.speedups).",
    )
    dedup_images: bool | None = Field(
        None,
        description="Vision tower: encode each distinct image once per pass and repeat its features. None: "
        "follow grpo.speedups; true/false: force this one on/off (overrides grpo.speedups).",
    )
    share_prompt_prefix: bool | None = Field(
        None,
        description="Log-prob passes: each prompt prefix once per group of identical rows, KV cache repeated "
        "(stands aside under gradient checkpointing). None: follow grpo.speedups; true/false: force on/off.",
    )


# ----------------------------------------------------------------------------------------------- sft
class SFTSection(_Section):
    """The supervised baseline: TRL's SFTTrainer on the tasks' answer texts."""

    learning_rate: float = Field(1e-5, gt=0.0, description="Peak learning rate (AdamW).")
    lr_scheduler: LRScheduler = Field("linear", description="transformers scheduler name.")
    warmup: float = Field(0.0, ge=0.0, description="Warmup: a ratio of the steps if < 1, else a step count.")
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, gt=0.0, description="Gradient clipping norm.")
    per_device_batch_size: int = Field(1, gt=0, description="Examples per device per forward/backward pass.")
    gradient_accumulation_steps: int = Field(1, gt=0, description="Passes accumulated per optimizer step.")
    max_steps: int | None = Field(None, gt=0, description="Optimizer steps (None: run `epochs`).")
    epochs: float = Field(2.0, gt=0.0, description="Passes over the data when max_steps is None.")
    max_length: int | None = Field(
        None, gt=0, description="Truncate examples to this many tokens (None: no)."
    )
    seed: Seed = Field(42, description="Seed of the run (any integer; taken mod 2**32).")


# -------------------------------------------------------------------------------------------- output
class OutputSection(_Section):
    """Where and how often a run writes."""

    dir: str = Field("runs/vrft", description="Output directory of `vrft train`.")
    sft_dir: str | None = Field(None, description="Output directory of `vrft sft` (None: '<dir>-sft').")
    save_steps: int | None = Field(
        None, gt=0, description="Checkpoint every N steps (None: only at the end)."
    )
    save_total_limit: int | None = Field(None, gt=0, description="Keep at most this many checkpoints.")
    logging_steps: int = Field(1, gt=0, description="Write metrics every N steps.")
    sample_every: int = Field(10, gt=0, description="Write a sample of completions every N steps.")
    num_samples: int = Field(8, ge=0, description="Completions per written sample (0: none).")
    flat_warning_share: float = Field(
        0.75,
        ge=0.0,
        le=1.0,
        description="`vrft train` warns when the share of groups with identical rewards (zero-sd share: GRPO "
        "advantage 0) is at or above this for `output.flat_warning_steps` steps in a row (1.0: only all-flat).",
    )
    flat_warning_steps: int = Field(
        5, gt=0, description="Steps in a row above `output.flat_warning_share` before a warning (once per window)."
    )
    resume: bool | str = Field(
        False, description="true: resume from the last checkpoint in the output dir; or a checkpoint path."
    )
    report_to: Annotated[list[Tracker], BeforeValidator(_as_list)] = Field(
        default_factory=list,
        description="Extra trackers: wandb, tensorboard, trackio (a name or a list; each needs its extra, "
        'e.g. `pip install "vrft[wandb]"`).',
    )
    overwrite: bool = Field(
        False,
        description="Replace an earlier run in the output directory (default: refuse, unless resuming).",
    )


# --------------------------------------------------------------------------------------------- tools
class ToolsSection(_Section):
    """Tools the policy may call during a GRPO rollout (docs/tools.md); off by default."""

    enabled: bool = Field(False, description="Let the model call tools in its rollouts (TRL's tool loop).")
    names: list[str] = Field(
        default_factory=lambda: ["zoom_in"],
        description="The tools offered: built-in zoom_in, rotate, adjust, flip (vrft.tools.BUILTIN_TOOLS), or "
        "'package.module:function' (type hints + docstring; trusted code, like rewards.extra).",
    )
    max_calls: int = Field(
        3, ge=1, le=32, description="Most tool calls in one rollout; later calls get an error text. 1..32."
    )
    max_images: int = Field(
        2,
        ge=0,
        le=16,
        description="Most images the tools return in one rollout; later ones get an error text. 0..16.",
    )
    max_pixels: int | None = Field(
        None,
        gt=0,
        le=MAX_IMAGE_PIXELS,
        description="Pixel budget of one tool image: a zoom is scaled to fill it, no tool image exceeds it "
        "(None: model.max_pixels).",
    )


# ---------------------------------------------------------------------------------------------- root
class VrftConfig(_Section):
    """One experiment: `vrft train` reads model, data, rewards, grpo, output; `vrft sft` reads sft."""

    name: str | None = Field(None, description="Experiment name (reports, model card).")
    model: ModelSection = Field(..., description="The policy model.")
    data: DataSection = Field(..., description="Training data.")
    rewards: RewardsSection = Field(default_factory=RewardsSection, description="Verifiable rewards.")
    grpo: GRPOSection = Field(default_factory=GRPOSection, description="Visual-RFT (GRPO) hyperparameters.")
    sft: SFTSection = Field(default_factory=SFTSection, description="SFT baseline hyperparameters.")
    output: OutputSection = Field(default_factory=OutputSection, description="Outputs.")
    tools: ToolsSection = Field(default_factory=ToolsSection, description="Tools the model may call (GRPO).")

    # Where each key came from ("file.yaml:12" or "override 'grpo.beta=0'"), keyed by dotted path.
    _sources: dict[str, str] = PrivateAttr(default_factory=dict)
    _origin: str | None = PrivateAttr(default=None)

    def where(self, dotted: str) -> str:
        """'file:line' (or the override) that set `dotted` (`vrft.schema.source_of`), else the config file,
        else ''."""
        return source_of(self._sources, dotted) or self._origin or ""

    def to_dict(self) -> dict[str, Any]:
        """Plain, YAML-serialisable dict of every value (defaults included)."""
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        """The resolved config as YAML (the file `config.resolved.yaml` of a run)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    @property
    def sft_output_dir(self) -> str:
        """Output directory of `vrft sft`."""
        return self.output.sft_dir or f"{self.output.dir.rstrip('/')}-sft"


# ------------------------------------------------------------------------------------------- loading
def load_config(
    source: str | Path | Mapping[str, Any],
    overrides: Sequence[str] = (),
    *,
    check: bool = True,
) -> VrftConfig:
    """Load a config from a YAML file (or a dict), apply `key=value` overrides, check it.

    Args:
        source: path of a YAML file, or an already parsed mapping (e.g. built by the demo).
        overrides: dotted `key=value` strings; values are parsed as YAML scalars.
        check: run `validate()` (the rules across fields) after the schema. Nothing here reads the
            model, the records or any other file but `source`: `vrft.train.preflight` does.

    Raises:
        ConfigError: listing every problem, each with its file:line / override and a fix.
    """
    data, sources, origin = read_source(source)
    cfg = validate_schema(VrftConfig, apply_overrides(data, overrides, sources), sources, origin)
    cfg._sources = sources
    cfg._origin = origin
    if check:
        validate(cfg)
    return cfg


# ---------------------------------------------------------------------------------------- validation
def validate(cfg: VrftConfig) -> None:
    """Check the rules across fields that need nothing but the config; raise ConfigError with all.

    Rules: G >= 2; prompts per step a whole number of per-device batches; min_pixels <= max_pixels
    (and video_min_pixels <= video_max_pixels);
    LoRA on the vision tower not with a frozen vision tower; the GRPO loss variants' own settings.
    Checks that need files, registries or installed packages (the model directory, the records and
    their images, the task, the rewards, the trackers) run once per run in `vrft.train.preflight`.
    """
    problems = problems_of(cfg)
    if problems:
        raise ConfigError(join_problems(problems))


def problems_of(cfg: VrftConfig) -> list[str]:
    """Every problem `validate()` would report, as messages (empty list: the config is fine)."""
    problems: list[str] = []

    def add(key: str, message: str) -> None:
        at = cfg.where(key)
        problems.append(f"{at + ': ' if at else ''}{key}: {message}")

    g = cfg.grpo
    if g.num_generations < 2:
        add(
            "grpo.num_generations",
            f"must be at least 2 (got {g.num_generations}): GRPO normalises each reward within the "
            "group of completions of one prompt; the paper uses 8 (2B) and 4 (7B)",
        )
    if g.prompts_per_step % g.per_device_prompts:
        add(
            "grpo.prompts_per_step",
            f"the generation batch ({g.prompts_per_step} prompts x G={g.num_generations} = "
            f"{g.prompts_per_step * g.num_generations} completions) must split into per-device batches of "
            f"{g.per_device_prompts} prompts ({g.per_device_prompts * g.num_generations} completions); "
            f"set grpo.prompts_per_step to a multiple of grpo.per_device_prompts",
        )
    if cfg.model.min_pixels > cfg.model.max_pixels:
        add(
            "model.min_pixels",
            f"({cfg.model.min_pixels}) is larger than model.max_pixels ({cfg.model.max_pixels})",
        )
    if cfg.model.video_min_pixels > cfg.model.video_max_pixels:
        add(
            "model.video_min_pixels",
            f"({cfg.model.video_min_pixels}) is larger than model.video_max_pixels "
            f"({cfg.model.video_max_pixels}); lower video_min_pixels or raise video_max_pixels",
        )
    if cfg.tools.max_pixels is not None and cfg.tools.max_pixels < cfg.model.min_pixels:
        add(
            "tools.max_pixels",
            f"({cfg.tools.max_pixels}) is below model.min_pixels ({cfg.model.min_pixels}): the processor would "
            "scale every tool image back up to min_pixels; raise tools.max_pixels or leave it unset "
            "(model.max_pixels)",
        )
    if cfg.model.lora.enabled and cfg.model.lora.include_vision and cfg.model.freeze_vision:
        add(
            "model.lora.include_vision",
            "adapters on a frozen vision tower: unset one of include_vision / freeze_vision",
        )
    problems += _tool_problems(cfg)
    if g.loss_type == "cispo" and (g.epsilon_high is None or g.epsilon_high <= 1.0):
        add(
            "grpo.epsilon_high",
            f"loss_type 'cispo' caps the importance ratio itself at epsilon_high (got {g.epsilon_high}, "
            "so every token weight would be cut below 1); set grpo.epsilon_high above 1 (ScaleRL: 5.0)",
        )
    if g.loss_type == "luspo" and g.importance_sampling_level != "sequence":
        add(
            "grpo.importance_sampling_level",
            "loss_type 'luspo' is GSPO's sequence-level loss scaled by length: set it to 'sequence'",
        )
    if g.loss_type == "vespo" and g.importance_sampling_level != "token":
        add(
            "grpo.importance_sampling_level",
            "loss_type 'vespo' computes its own sequence-level weights: leave it at 'token'",
        )
    return problems


def _tool_problems(cfg: VrftConfig) -> list[str]:
    from vrft.tools import name_problem

    t = cfg.tools
    out = []
    at = cfg.where("tools.names")
    prefix = f"{at}: " if at else ""
    for name in t.names:
        problem = name_problem(name)
        if problem:
            out.append(f"{prefix}tools.names: {problem}")
    if len(set(t.names)) != len(t.names):
        out.append(f"{prefix}tools.names: a tool is listed twice ({t.names}); list each once")
    if t.enabled and not t.names:
        out.append(
            f"{prefix}tools.names: tools.enabled is true but no tool is listed; list one (e.g. [zoom_in])"
        )
    return out


def schema_help() -> str:
    """Every key with its type, default and description (for `vrft check-config --keys`)."""
    lines: list[str] = []

    def walk(cls: type[BaseModel], prefix: str) -> None:
        for name, field in cls.model_fields.items():
            ann = field.annotation
            dotted = f"{prefix}{name}"
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                lines.append(f"{dotted}:  {field.description or ''}")
                walk(ann, dotted + ".")
                continue
            default = (
                "(required)" if field.is_required() else repr(field.get_default(call_default_factory=True))
            )
            lines.append(f"  {dotted} = {default}  [{type_name(ann)}]  {field.description or ''}")

    walk(VrftConfig, "")
    return "\n".join(lines)
