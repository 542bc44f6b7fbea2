"""Typed configuration for `vrft train` (Visual-RFT / GRPO) and `vrft sft` (the SFT baseline).

One YAML file describes one experiment: the model, the data, the rewards, the GRPO and SFT
hyperparameters and where to write. It is loaded in three stages, each reporting *every* problem
it finds at once (as a `vrft.errors.ConfigError`):

1. YAML syntax (file:line of the error);
2. the schema: unknown keys (with a "did you mean" suggestion) and wrong types, each with the file
   and line of the key, or the `key=value` override that introduced it;
3. `validate()`: rules across fields and against the world (registered rewards, tasks and presets,
   the model directory, the records file, the model family's coordinate convention). Nothing here
   loads a model: the model family is read from `config.json`.

Overrides are dotted `key=value` strings whose values are parsed as YAML scalars
(`grpo.beta=0.0`, `model.lora.enabled=true`, `model.lora.target_modules=[q_proj,v_proj]`).
Relative paths in a config are relative to the current working directory.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from vrft.errors import ConfigError, UserError

_M = TypeVar("_M", bound=BaseModel)

logger = logging.getLogger(__name__)

Convention = Literal["auto", "norm1000", "resized_pixels", "pixels"]


def _seed(value: int) -> int:
    from vrft.inputs import normalize_seed

    return normalize_seed(value)


Seed = Annotated[int, AfterValidator(_seed)]
"""Any integer; negative (and >= 2**32) seeds are taken mod 2**32 (`vrft.inputs.normalize_seed`)."""


class _Section(BaseModel):
    """Base of every config section: unknown keys are errors, assignments are validated."""

    # allow_inf_nan=False: a float key (grpo.learning_rate, grpo.beta, rewards.weights, ...) set to
    # .inf / .nan is a schema error at check-config time, not a crash at training step 2.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


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
        None, description="Evaluation records for this experiment (used by `vrft eval`)."
    )
    task: str | None = Field(
        None,
        description="detection | classification | grounding | counting | ocr (None: read from the records).",
    )
    answer_format: Literal["think", "answer_only"] = Field(
        "think",
        description="'think': <think>..</think> <answer>..</answer> (the paper); 'answer_only': prompt for "
        "<answer>..</answer> alone and score format_answer_only instead of the think format (Perception-R1). "
        "Records may set answer_format too; they must agree with this.",
    )
    max_samples: int | None = Field(None, gt=0, description="Use at most this many training records.")
    seed: Seed = Field(0, description="Seed that picks the `max_samples` subset (any integer; taken mod 2**32).")
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
    lr_scheduler: str = Field(
        "linear", description="transformers scheduler name (linear, cosine, constant...)."
    )
    warmup: float = Field(0.0, ge=0.0, description="Warmup: a ratio of the steps if < 1, else a step count.")
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, gt=0.0, description="Gradient clipping norm.")
    temperature: float = Field(1.0, gt=0.0, description="Sampling temperature of the rollouts.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling of the rollouts.")
    top_k: int = Field(0, ge=0, description="Top-k sampling of the rollouts (0: off).")
    max_completion_length: int = Field(256, gt=0, description="Max new tokens per completion.")
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
    seed: Seed = Field(42, description="Seed of the run (sampling, data order, adapter init); any integer, taken mod 2**32.")
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
    lr_scheduler: str = Field("linear", description="transformers scheduler name.")
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
    resume: bool | str = Field(
        False, description="true: resume from the last checkpoint in the output dir; or a checkpoint path."
    )
    report_to: list[str] = Field(
        default_factory=list, description="Extra trackers: wandb, tensorboard, trackio."
    )
    overwrite: bool = Field(
        False,
        description="Replace an earlier run in the output directory (default: refuse, unless resuming).",
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

    # Where each key came from ("file.yaml:12" or "override 'grpo.beta=0'"), keyed by dotted path.
    _sources: dict[str, str] = PrivateAttr(default_factory=dict)
    _origin: str | None = PrivateAttr(default=None)

    def where(self, dotted: str) -> str:
        """'file:line' (or the override) that set `dotted`, else the config file, else ''."""
        while dotted:
            if dotted in self._sources:
                return self._sources[dotted]
            dotted = dotted.rpartition(".")[0]
        return self._origin or ""

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
    check_paths: bool = True,
) -> VrftConfig:
    """Load a config from a YAML file (or a dict), apply `key=value` overrides, check it.

    Args:
        source: path of a YAML file, or an already parsed mapping (e.g. built by the demo).
        overrides: dotted `key=value` strings; values are parsed as YAML scalars.
        check: run `validate()` (cross-field and world checks) after the schema.
        check_paths: with `check`, also require the model directory and records files to exist
            (and read the model family); False for shipped presets whose paths are placeholders.

    Raises:
        ConfigError: listing every problem, each with its file:line / override and a fix.
    """
    data, sources, origin = read_source(source)
    cfg = validate_schema(VrftConfig, apply_overrides(data, overrides, sources), sources, origin)
    cfg._sources = sources
    cfg._origin = origin
    if check:
        validate(cfg, check_paths=check_paths)
    return cfg


def read_source(
    source: str | Path | Mapping[str, Any], what: str = "config file"
) -> tuple[dict[str, Any], dict[str, str], str]:
    """(data, sources, origin) of a YAML file (read by `vrft.inputs.read_yaml`: not UTF-8, duplicate
    keys, alias bombs refused) or of a mapping; `sources` maps each dotted key to its ``file:line``."""
    if isinstance(source, Mapping):
        return _deep_copy(source), {}, "<dict>"
    from vrft.inputs import read_yaml

    path = Path(source)
    data, lines = read_yaml(path, what)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections (model:, data:, ...)")
    return data, {key: f"{path}:{line}" for key, line in lines.items()}, str(path)


def apply_overrides(
    data: dict[str, Any], overrides: Sequence[str], sources: dict[str, str]
) -> dict[str, Any]:
    """Set dotted `key=value` overrides (values parsed as YAML scalars) into `data`, recording each
    one's origin in `sources`; ConfigError lists every malformed one."""
    problems = []
    for item in overrides:
        try:
            key, value = _parse_override(item)
        except ConfigError as err:
            problems.append(str(err))
            continue
        _set_dotted(data, key, value)
        sources[key] = f"override '{item}'"
    if problems:
        raise ConfigError(_join(problems))
    return data


def validate_schema(schema: type[_M], data: Mapping[str, Any], sources: dict[str, str], origin: str) -> _M:
    """`schema.model_validate(data)`; ConfigError lists every problem with its file:line or override
    and, for an unknown key, the closest known one. Any pydantic schema (the `vrft train` config, the
    demo's settings) gets the same messages."""
    try:
        return schema.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_join(_schema_problems(err, sources, origin, schema))) from None


def _deep_copy(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _deep_copy(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_deep_copy(v) for v in obj]
    return obj


def _parse_override(item: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override '{item}': expected key=value, e.g. grpo.beta=0.04")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw  # an unparsable scalar stays a string; the schema decides if that is fine
    return key, value


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def _join(problems: list[str]) -> str:
    if len(problems) == 1:
        return problems[0]
    return f"{len(problems)} problems in the config:\n" + "\n".join(f"  - {p}" for p in problems)


def _section_at(loc: Sequence[Any], schema: type[BaseModel]) -> type[BaseModel] | None:
    """The schema class that holds the field at `loc` (a pydantic error location) under `schema`."""
    cls: type[BaseModel] | None = schema
    for part in loc[:-1]:
        if cls is None or not isinstance(part, str) or part not in cls.model_fields:
            return None
        ann = cls.model_fields[part].annotation
        cls = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return cls


def _schema_problems(
    err: ValidationError, sources: dict[str, str], origin: str, schema: type[BaseModel] = VrftConfig
) -> list[str]:
    problems = []
    for e in err.errors():
        loc = [str(p) for p in e["loc"]]
        dotted = ".".join(loc)
        at = _where(sources, dotted) or origin
        if e["type"] == "extra_forbidden":
            section = _section_at(e["loc"], schema)
            names = list(section.model_fields) if section else []
            close = difflib.get_close_matches(loc[-1], names, n=1, cutoff=0.6)
            prefix = ".".join(loc[:-1])
            if close:
                hint = f" — did you mean '{prefix + '.' if prefix else ''}{close[0]}'?"
            else:
                hint = f" — known keys here: {', '.join(names)}" if names else ""
            problems.append(f"{at}: unknown key '{dotted}'{hint}")
        elif e["type"] == "missing":
            problems.append(f"{at}: missing required key '{dotted}'")
        else:
            got = e.get("input")
            shown = repr(got) if not isinstance(got, dict | list) else type(got).__name__
            problems.append(f"{at}: {dotted}: {e['msg']} (got {shown})")
    return problems


def _where(sources: dict[str, str], dotted: str) -> str:
    while dotted:
        if dotted in sources:
            return sources[dotted]
        dotted = dotted.rpartition(".")[0]
    return ""


# ---------------------------------------------------------------------------------------- validation
def validate(cfg: VrftConfig, *, check_paths: bool = True) -> None:
    """Check every rule across fields and against the installed registries; raise ConfigError with all.

    Rules: G >= 2; prompts per step a whole number of per-device batches; known task, preset and
    rewards (a reward may be 'package.module:function'); with `check_paths`: the model directory and
    records files exist, the training records load and hold the task, and the model family has a
    known coordinate convention (read from config.json, no model loaded).
    """
    problems = problems_of(cfg, check_paths=check_paths)
    if problems:
        raise ConfigError(_join(problems))


def problems_of(cfg: VrftConfig, *, check_paths: bool = True) -> list[str]:
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
    if cfg.model.lora.enabled and cfg.model.lora.include_vision and cfg.model.freeze_vision:
        add(
            "model.lora.include_vision",
            "adapters on a frozen vision tower: unset one of include_vision / freeze_vision",
        )
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
    if g.use_vllm and importlib.util.find_spec("vllm") is None:
        add(
            "grpo.use_vllm",
            "vLLM is not installed: `pip install 'vrft[vllm]'` (needs a CUDA GPU) or set it false",
        )

    task_name = _check_task(cfg, add)
    if check_paths:
        _check_model_dir(cfg, add)
        task_name = _check_records(cfg, task_name, add)
    _check_rewards(cfg, task_name, add)
    return problems


def _check_task(cfg: VrftConfig, add) -> str | None:
    if cfg.data.task is None:
        return None
    try:
        from vrft.tasks import TASKS
    except ImportError as err:  # the tasks package is part of vrft; a broken install is not a config error
        raise UserError(f"cannot import vrft.tasks: {err}") from err
    if cfg.data.task not in TASKS:
        add(
            "data.task",
            f"unknown task '{cfg.data.task}'{_suggest(cfg.data.task, TASKS)}; known: {', '.join(TASKS)}",
        )
        return None
    return cfg.data.task


def _check_rewards(cfg: VrftConfig, task_name: str | None, add) -> None:
    from vrft.rewards import PRESETS, REWARDS

    r = cfg.rewards
    if r.preset not in PRESETS:
        add(
            "rewards.preset",
            f"unknown preset '{r.preset}'{_suggest(r.preset, PRESETS)}; known: {', '.join(PRESETS)}",
        )
    extra_names = set()
    for i, spec in enumerate(r.extra):
        try:
            fn = resolve_reward(spec)
        except ConfigError as err:
            add(f"rewards.extra.{i}", str(err))
            continue
        extra_names.update({spec, getattr(fn, "__name__", spec)})
    if task_name is not None and r.preset in PRESETS:
        from vrft.rewards import rewards_for

        try:
            rewards_for(
                task_name,
                r.preset,
                {k: v for k, v in r.weights.items() if k in REWARDS},
                answer_format=cfg.data.answer_format,
            )
        except ConfigError as err:
            add("rewards.preset", str(err))
    for name in r.weights:
        if name not in REWARDS and name not in extra_names:
            if ":" in name:
                add(
                    f"rewards.weights.{name}",
                    f"'{name}' is weighted but not listed in rewards.extra; add it there",
                )
            else:
                add(
                    f"rewards.weights.{name}",
                    f"unknown reward '{name}'{_suggest(name, REWARDS)}; known: {', '.join(REWARDS)} "
                    "(or add an external one to rewards.extra as 'package.module:function')",
                )


def resolve_reward(spec: str):
    """Import an external reward 'package.module:function' (TRL convention); ConfigError if it fails."""
    module_name, sep, func_name = spec.partition(":")
    if not sep or not module_name or not func_name:
        raise ConfigError(f"'{spec}': name an external reward as 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(f"'{spec}': cannot import module '{module_name}' ({err})") from None
    fn = getattr(module, func_name, None)
    if not callable(fn):
        raise ConfigError(f"'{spec}': module '{module_name}' has no function '{func_name}'")
    return fn


def _check_model_dir(cfg: VrftConfig, add) -> None:
    path = Path(cfg.model.path).expanduser()
    if not path.is_dir():
        add(
            "model.path",
            f"model directory not found: {path} (set model.path to a local Hugging Face model directory, "
            "e.g. one made by `hf download Qwen/Qwen2-VL-2B-Instruct --local-dir DIR`)",
        )
        return
    config_json = path / "config.json"
    if not config_json.is_file():
        add("model.path", f"{path} has no config.json: not a Hugging Face model directory")
        return
    if cfg.model.coordinate_convention != "auto":
        return
    try:
        model_type = json.loads(config_json.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError) as err:
        add("model.path", f"cannot read {config_json}: {err}")
        return
    try:
        model_convention(model_type, "auto")
    except ConfigError as err:
        add("model.coordinate_convention", str(err))


def model_convention(model_type: str | None, configured: str) -> str:
    """The coordinate convention for a model family (`configured` wins unless it is 'auto')."""
    from vrft.models.load import convention_for

    return convention_for(model_type, configured)


def _check_records(cfg: VrftConfig, task_name: str | None, add) -> str | None:
    from vrft.data.records import image_problems, load_records, sample_records

    for key in ("data.train", "data.eval"):
        value = getattr(cfg.data, key.split(".")[1])
        if value is None:
            continue
        path = Path(value).expanduser()
        if path.is_dir():
            add(key, f"{path} is a directory, not a records file (give the .jsonl file inside it)")
            continue
        if not path.is_file():
            add(key, f"records file not found: {path} (make one with `vrft data ...`, see docs/data.md)")
            continue
        if key != "data.train":
            continue
        try:
            records = load_records(path)
        except UserError as err:
            add(key, str(err))
            continue
        tasks = sorted({r.task for r in records})
        if cfg.data.task is None and len(tasks) > 1:
            add(
                "data.task", f"the records of {path} mix tasks {tasks}; set data.task to train on one of them"
            )
        elif cfg.data.task is None and tasks:
            task_name = tasks[0]
            _check_task_name(task_name, key, add)
        if task_name is not None and not any(r.task == task_name for r in records):
            add(key, f"{path} has no '{task_name}' records")
        elif task_name is not None or len(tasks) == 1:
            # every image the run will read, header only (a bad image must not surface at step 1)
            used = sample_records(
                [r for r in records if r.task == (task_name or tasks[0])], cfg.data.max_samples, cfg.data.seed
            )
            bad = image_problems(used)
            if bad:
                from vrft.data.records import format_problems

                add(key, format_problems(bad, f"{len(bad)} record(s) with a missing or unreadable image:"))
    return task_name


def _check_task_name(name: str, key: str, add) -> None:
    from vrft.tasks import TASKS

    if name not in TASKS:
        add(key, f"records have task '{name}', which no registered task handles (known: {', '.join(TASKS)})")


def _suggest(name: str, known: Mapping[str, Any] | Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" — did you mean '{close[0]}'?" if close else ""


def _type_name(ann: Any) -> str:
    from typing import get_args, get_origin

    if get_origin(ann) is Literal:
        return "|".join(str(a) for a in get_args(ann))
    if isinstance(ann, type):
        return ann.__name__
    return str(ann).replace("typing.", "")


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
            type_name = _type_name(ann)
            lines.append(f"  {dotted} = {default}  [{type_name}]  {field.description or ''}")

    walk(VrftConfig, "")
    return "\n".join(lines)
