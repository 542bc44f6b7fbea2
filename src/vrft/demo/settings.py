"""Settings of the demo: a typed schema whose defaults ARE the full demo, plus the `--quick` overrides.

`configs/demo/demo.yaml` and `configs/demo/quick.yaml` are the same values written out (a test keeps
them equal), so a user can copy one, change a knob and run `vrft demo --config my.yaml`. Any field can
also be set on the command line as a dotted ``key=value`` (``vrft demo rft.learning_rate=5e-4``).

Only the settings under `world`, `model` and `warm_start` (and the vrft version) determine the
warm-start model, so only they key its cache (`warm_start_key`).
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vrft.config import Seed
from vrft.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class WorldSettings(_Section):
    """The synthetic shapes world (`vrft.data.synthetic`): base classes for the warm start, novel
    classes for the few-shot sets and the test."""

    seed: Seed = Field(0, description="World seed (every image depends only on it and its index).")
    image_size: int = Field(112, ge=32, description="Square image side in pixels (112: 16 visual tokens).")
    base_images: int = Field(3000, ge=1, description="Warm-start images (base shapes only).")
    pool_images: int = Field(200, ge=1, description="Images the novel k-shot sets are drawn from.")
    test_images: int = Field(200, ge=1, description="Held-out novel test images.")
    min_objects: int = Field(1, ge=1, description="Objects per image, at least.")
    max_objects: int = Field(1, ge=1, description="Objects per image, at most.")
    background: Literal["plain", "textured"] = Field(
        "plain", description="'plain' (white) or 'textured' (noisy gradients: too hard for a 1.5M model)."
    )
    min_scale: float = Field(0.25, gt=0.0, le=0.9, description="Smallest object height / image side.")
    max_scale: float = Field(0.5, gt=0.0, le=0.9, description="Largest object height / image side.")
    colours: Literal["random", "by_class"] = Field(
        "random",
        description="'random': any colour per object; 'by_class': each class its own colour "
        "(vrft.data.synthetic.CLASS_COLOURS).",
    )
    novel_prompts: Literal["present", "all"] = Field(
        "present",
        description="Prompts of the pool and test images: 'present' asks each image for the novel "
        "categories it holds; 'all' asks every novel category (absent ones must be answered 'No Objects': "
        "the all-categories protocol, which needs a warm start that tells the classes apart).",
    )
    prompt: Literal["short", "paper"] = Field(
        "short",
        description="Records' user text: 'short' (\"Detect every star.\": the tiny model pays for every "
        "prompt token) or 'paper' (the paper's full detection prompt). The answer format is the paper's.",
    )
    novel_scenes: Literal["novel", "all"] = Field(
        "novel",
        description="Shapes in the few-shot and test images: 'novel' only, or 'all' (novel and base "
        "shapes mixed, like COCO images; images without a novel shape are dropped).",
    )
    base_negative_ratio: float = Field(
        0.25, ge=0.0, description="'No Objects' warm-start prompts per positive (absent base categories)."
    )


class ModelSettings(_Section):
    """The tiny Qwen2.5-VL built offline (`vrft.models.tiny`)."""

    arch: str = Field("qwen2_5_vl", description="Tiny architecture (a key of vrft.models.tiny.TINY_ARCHS).")
    size: str = Field("demo", description="Size preset of vrft.models.tiny.SIZES ('demo': ~1.5M parameters).")
    vocab_size: int = Field(768, ge=320, description="BPE vocabulary (merges learned on the demo's prompts).")
    rope_theta: int = Field(
        10,
        ge=1,
        description="Text RoPE base (10: the tiny model reads visual positions sooner than with 10000).",
    )
    seed: Seed = Field(0, description="Initial weights seed.")


class WarmStartSettings(_Section):
    """Supervised warm start on the BASE classes (`vrft sft`, i.e. `run_sft`)."""

    steps: int = Field(1200, ge=1, description="Optimizer steps (localisation needs ~1000 at batch 32).")
    batch_size: int = Field(32, ge=1, description="Examples per step.")
    learning_rate: float = Field(2e-3, gt=0.0, description="Peak AdamW learning rate.")
    lr_scheduler: str = Field("cosine", description="transformers scheduler name.")
    warmup: float = Field(0.03, ge=0.0, description="Warmup ratio (< 1) or steps.")
    max_grad_norm: float = Field(1.0, gt=0.0, description="Gradient clipping.")


class FewShotSettings(_Section):
    """The k-shot sets of the NOVEL classes and the shared budget of SFT and Visual-RFT."""

    shots: list[int] = Field([1, 4], min_length=1, description="k values (images per novel class).")
    seed: Seed = Field(
        0, description="Sampling seed (the sets are nested: the 1-shot images are in the 4-shot set)."
    )
    keep_negatives: bool = Field(
        True, description="Also train on the chosen images' 'No Objects' prompts for absent novel classes."
    )
    steps: int = Field(40, ge=1, description="Optimizer steps of BOTH methods (the shared budget).")
    prompts_per_step: int = Field(4, ge=1, description="Prompts per optimizer step of BOTH methods.")


class SFTSettings(_Section):
    """The supervised baseline on the k-shot set (`run_sft`)."""

    learning_rate: float = Field(5e-5, gt=0.0, description="Peak AdamW learning rate (= Visual-RFT's).")
    lr_scheduler: str = Field("constant", description="transformers scheduler name.")
    warmup: float = Field(0.0, ge=0.0, description="Warmup ratio (< 1) or steps.")


class RFTSettings(_Section):
    """Visual-RFT on the k-shot set (`run_grpo`)."""

    learning_rate: float = Field(5e-5, gt=0.0, description="Peak AdamW learning rate (= the SFT baseline's).")
    lr_scheduler: str = Field("constant", description="transformers scheduler name.")
    warmup: float = Field(0.0, ge=0.0, description="Warmup ratio (< 1) or steps.")
    num_generations: int = Field(8, ge=2, description="G: completions per prompt.")
    temperature: float = Field(1.0, gt=0.0, description="Sampling temperature of the rollouts.")
    beta: float = Field(0.04, ge=0.0, description="KL coefficient to the warm start.")
    max_completion_length: int = Field(64, ge=8, description="Max new tokens per rollout.")
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo"] = Field(
        "grpo", description="TRL loss normalisation."
    )
    reward_preset: str = Field("default", description="Reward preset of vrft.rewards.PRESETS.")
    reward_weights: dict[str, float] = Field(default_factory=dict, description="Reward weight overrides.")


class EvalSettings(_Section):
    """Evaluation on the held-out novel test set (`evaluate_model`, COCO mAP, all-categories protocol)."""

    batch_size: int = Field(32, ge=1, description="Prompts per generate call (greedy decoding).")
    max_new_tokens: int = Field(64, ge=8, description="Generation budget per answer.")
    report_samples: int = Field(24, ge=0, description="Predictions drawn per model in report.html.")


class DemoSettings(_Section):
    """The whole miniature experiment (`vrft demo`)."""

    threads: int = Field(2, ge=1, description="torch CPU threads.")
    world: WorldSettings = Field(default_factory=WorldSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    warm_start: WarmStartSettings = Field(default_factory=WarmStartSettings)
    fewshot: FewShotSettings = Field(default_factory=FewShotSettings)
    sft: SFTSettings = Field(default_factory=SFTSettings)
    rft: RFTSettings = Field(default_factory=RFTSettings)
    eval: EvalSettings = Field(default_factory=EvalSettings)

    def to_dict(self) -> dict[str, Any]:
        """Plain, YAML-serialisable values."""
        return self.model_dump(mode="json")


# `--quick`: the same pipeline, smaller (budget: 5 minutes on 2 cores, warm start included).
QUICK: dict[str, Any] = {
    "world": {"base_images": 600, "pool_images": 60, "test_images": 24},
    "warm_start": {"steps": 200},
    "fewshot": {"shots": [1, 2], "steps": 8},
    "eval": {"report_samples": 8},
}


# World settings the warm start never sees (they shape the novel pool and test parts only).
NOT_IN_WARM_START: frozenset[str] = frozenset({"pool_images", "test_images", "novel_scenes", "novel_prompts"})


def warm_start_key(settings: DemoSettings) -> str:
    """Hash of everything that determines the warm-start model (the base part of the world, model, warm
    start, vrft version)."""
    from vrft import __version__

    keyed = {
        "vrft": __version__,
        "world": settings.world.model_dump(mode="json", exclude=set(NOT_IN_WARM_START)),
        "model": settings.model.model_dump(mode="json"),
        "warm_start": settings.warm_start.model_dump(mode="json"),
    }
    return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:12]


def load_settings(
    path: str | Path | None = None, *, quick: bool = False, overrides: Sequence[str] = ()
) -> DemoSettings:
    """Defaults, then `QUICK` (with `quick`), then the YAML file at `path`, then `key=value` overrides.

    Raises:
        ConfigError: every unknown key (with a suggestion) and wrong value, naming where it came from.
    """
    data: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if quick:
        _merge(data, QUICK)
    if path is not None:
        from vrft.inputs import read_yaml

        p = Path(path)
        loaded = read_yaml(p, "demo config")[0] or {}  # not UTF-8, duplicate keys, alias bombs: ConfigError
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p}: the top level must be a mapping (world:, model:, ...)")
        _merge(data, loaded)
        for key in _dotted_keys(loaded):
            sources[key] = str(p)
    problems = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            problems.append(f"override '{item}': expected key=value, e.g. rft.beta=0.04")
            continue
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
        sources[key] = f"override '{item}'"
    if problems:
        raise ConfigError("; ".join(problems))
    try:
        settings = DemoSettings.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_describe(err, sources)) from None
    if settings.world.min_scale > settings.world.max_scale:
        raise ConfigError(
            f"world.min_scale ({settings.world.min_scale}) is larger than world.max_scale "
            f"({settings.world.max_scale})"
        )
    if settings.world.min_objects > settings.world.max_objects:
        raise ConfigError(
            f"world.min_objects ({settings.world.min_objects}) is larger than world.max_objects "
            f"({settings.world.max_objects})"
        )
    return settings


def _merge(into: dict[str, Any], new: Mapping[str, Any]) -> None:
    for k, v in new.items():
        if isinstance(v, Mapping) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = json.loads(json.dumps(v)) if isinstance(v, Mapping | list) else v


def _dotted_keys(data: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for k, v in data.items():
        dotted = f"{prefix}.{k}" if prefix else str(k)
        keys.append(dotted)
        if isinstance(v, Mapping):
            keys += _dotted_keys(v, dotted)
    return keys


def _describe(err: ValidationError, sources: dict[str, str]) -> str:
    problems = []
    for e in err.errors():
        loc = [str(p) for p in e["loc"]]
        dotted = ".".join(loc)
        at = next((sources[k] for k in _prefixes(dotted) if k in sources), "")
        where = f"{at}: " if at else ""
        if e["type"] == "extra_forbidden":
            section = _section(loc[:-1])
            names = list(section.model_fields) if section else []
            close = difflib.get_close_matches(loc[-1], names, n=1, cutoff=0.6)
            hint = (
                f" — did you mean '{'.'.join([*loc[:-1], close[0]])}'?"
                if close
                else (f" — known keys here: {', '.join(names)}" if names else "")
            )
            problems.append(f"{where}unknown demo setting '{dotted}'{hint}")
        else:
            problems.append(f"{where}{dotted}: {e['msg']} (got {e.get('input')!r})")
    if len(problems) == 1:
        return problems[0]
    return f"{len(problems)} problems in the demo settings:\n" + "\n".join(f"  - {p}" for p in problems)


def _prefixes(dotted: str) -> list[str]:
    out = []
    while dotted:
        out.append(dotted)
        dotted = dotted.rpartition(".")[0]
    return out


def _section(loc: Sequence[str]) -> type[BaseModel] | None:
    cls: type[BaseModel] | None = DemoSettings
    for part in loc:
        if cls is None or part not in cls.model_fields:
            return None
        ann = cls.model_fields[part].annotation
        cls = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return cls
