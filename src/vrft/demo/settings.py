"""Settings of the demo: a typed schema whose defaults ARE the full demo, plus the `--quick` overrides.

`configs/demo/demo.yaml` and `configs/demo/quick.yaml` are the same values written out (a test keeps
them equal), so a user can copy one, change a knob and run `vrft demo --config my.yaml`. Any field can
also be set on the command line as a dotted ``key=value`` (``vrft demo rft.learning_rate=5e-4``).

Every method starts from the shipped miniature base model (`vrft.demo.base`); `base.rebuild` builds it
from nothing first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field

from vrft.config import Seed
from vrft.errors import ConfigError
from vrft.schema import Section

_M = TypeVar("_M", bound=BaseModel)


class _Section(Section):
    """The config's rules (`vrft.schema.Section`): unknown keys, inf / nan and true / false for a number
    are errors."""


class BaseBuildSettings(_Section):
    """Everything that determines the demo base model (`vrft.demo.base`; written into its card)."""

    seed: int = Field(0, description="Seed of the data, the initial weights and the training order.")
    arch: Literal["qwen2_5_vl", "qwen3_vl"] = Field(
        "qwen2_5_vl",
        description="Tiny architecture (vrft.models.tiny). Qwen3-VL needs image_size 128 for 16 visual tokens; "
        "it was measured worse here (docs/demo.md).",
    )
    image_size: int = Field(
        112, ge=32, description="Square image side (112 with Qwen2.5-VL: 16 visual tokens)."
    )
    size: str = Field("demo", description="Tiny size preset (vrft.models.tiny.SIZES).")
    vocab_size: int = Field(768, ge=320, description="BPE vocabulary.")
    rope_theta: int = Field(10, ge=1, description="Text RoPE base.")
    vision_images: int = Field(6000, ge=8, description="Images of the vision-tower pretraining.")
    vision_steps: int = Field(2000, ge=1, description="Vision-tower classifier steps (batch vision_batch).")
    vision_batch: int = Field(32, ge=1)
    vision_lr: float = Field(2e-3, gt=0)
    vision_objective: Literal["dense", "classify"] = Field(
        "dense",
        description="'dense': every visual token predicts the class and box of the shape centred in its cell, "
        "on scenes of 1-3 shapes (a detector's backbone); 'classify': mean-pooled tokens predict the class of "
        "a single shape.",
    )
    cls_images: int = Field(1500, ge=8, description="Classification images in the SFT mix (all 8 shapes).")
    det_images: int = Field(3000, ge=1, description="Detection scenes (base shapes, 1-3 per image).")
    det_max_objects: int = Field(3, ge=1)
    det_negative_ratio: float = Field(0.6, ge=0, description="'No Objects' prompts per positive prompt.")
    sft_steps: int = Field(2500, ge=1)
    sft_batch: int = Field(32, ge=1)
    sft_lr: float = Field(2e-3, gt=0)
    eval_images: int = Field(48, ge=1, description="Held-out images per build metric.")
    threads: int = Field(2, ge=1)


class WorldSettings(_Section):
    """The synthetic shapes world (`vrft.data.synthetic`, white background, random colours): novel
    shapes for the few-shot pools, the validation and the test sets; base shapes for open-vocabulary
    training. Every part has its own seed, so no image is shared between parts."""

    seed: Seed = Field(0, description="World seed (every image depends only on it, its part and its index).")
    image_size: int = Field(112, ge=32, description="Square image side in pixels (112: 16 visual tokens).")
    base_train_images: int = Field(
        300, ge=1, description="Open-vocabulary training scenes: 1-3 BASE shapes each, every base name asked."
    )
    det_pool_images: int = Field(
        150, ge=1, description="Novel-shape images the few-shot detection sets come from."
    )
    det_val_images: int = Field(
        45, ge=1, description="Novel-shape detection validation images (tuning only)."
    )
    det_test_images: int = Field(60, ge=1, description="Novel-shape detection test images (read once).")
    cls_pool_images: int = Field(
        150, ge=3, description="Novel-shape images the few-shot classification sets come from."
    )
    cls_val_images: int = Field(60, ge=3, description="Novel-shape classification validation images.")
    cls_test_images: int = Field(90, ge=3, description="Novel-shape classification test images.")
    min_scale: float = Field(
        0.25,
        gt=0.0,
        le=0.9,
        description="Smallest object height / image side in the novel-shape detection parts.",
    )
    max_scale: float = Field(
        0.5,
        gt=0.0,
        le=0.9,
        description="Largest object height / image side in the novel-shape detection parts.",
    )
    base_train_min_scale: float = Field(
        0.22,
        gt=0.0,
        le=0.9,
        description="Smallest object height / image side in base_train (scenes of 1-3 shapes).",
    )
    base_train_max_scale: float = Field(
        0.45, gt=0.0, le=0.9, description="Largest object height / image side in base_train."
    )


class BaseSettings(_Section):
    """The miniature pretrained VLM every method starts from (`vrft.demo.base`)."""

    path: str | None = Field(
        None,
        description="A base model directory (default: the one shipped in the package, vrft/demo/base_model).",
    )
    rebuild: bool = Field(
        False,
        description="Build the base from nothing (`base.build` settings, cached by them) even when one is "
        "shipped; without a shipped base this happens anyway.",
    )
    build: BaseBuildSettings = Field(
        default_factory=BaseBuildSettings, description="How a rebuilt base is built (`vrft demo build-base`)."
    )


EXPERIMENTS = ("open_vocab", "fewshot_detection", "fewshot_classification")
"""The paper's experiments, (a)-(c): the default `experiments.run`."""
TOOLS_EXPERIMENT = "tools"
"""The 4th experiment (`experiments.run=[tools]`, `vrft.demo.tools_demo`): acting on the image is necessary."""
TASK_OF = {
    "open_vocab": "detection",
    "fewshot_detection": "detection",
    "fewshot_classification": "classification",
    "tools": "classification",
}


class MethodBudget(_Section):
    """One method's own learning rate and optimizer steps in one experiment (None: the shared value)."""

    learning_rate: float | None = Field(
        None, gt=0.0, description="Peak learning rate (None: `sft.learning_rate` / `rft.learning_rate`)."
    )
    steps: int | None = Field(None, ge=1, description="Optimizer steps (None: `experiments.steps`).")


class SFTClassificationBudget(MethodBudget):
    """SFT in (c): today's 5e-5 x 40 steps stayed its best on validation."""

    learning_rate: float | None = Field(
        5e-5, gt=0.0, description="Peak learning rate (None: `sft.learning_rate`)."
    )
    steps: int | None = Field(40, ge=1, description="Optimizer steps (None: `experiments.steps`).")


class RFTClassificationBudget(MethodBudget):
    """Visual-RFT in (c): 1e-4 x 30 steps, its best on validation."""

    learning_rate: float | None = Field(
        1e-4, gt=0.0, description="Peak learning rate (None: `rft.learning_rate`)."
    )
    steps: int | None = Field(30, ge=1, description="Optimizer steps (None: `experiments.steps`).")


class ClassificationBudgets(_Section):
    """(c) few-shot classification, each method at its own setting, tuned on the validation split within
    the compute budget of both at 40 steps (docs/demo.md, tuning log; benchmarks/demo_tune.py)."""

    sft: SFTClassificationBudget = Field(
        default_factory=SFTClassificationBudget, description="The SFT baseline in (c)."
    )
    rft: RFTClassificationBudget = Field(
        default_factory=RFTClassificationBudget, description="Visual-RFT in (c)."
    )


class ExperimentSettings(_Section):
    """Which of the paper's experiments run, over which seeds, with which budget (shared in (a) and (b),
    per method in (c))."""

    run: list[Literal["open_vocab", "fewshot_detection", "fewshot_classification", "tools"]] = Field(
        list(EXPERIMENTS),
        min_length=1,
        description="(a) open_vocab: train on BASE shapes, test on NOVEL ones; (b) fewshot_detection and "
        "(c) fewshot_classification of the novel shapes at every k of `shots`; 'tools' (not in the default "
        "run, it costs more): name a shape too small to see without zooming (`tools` settings).",
    )
    seeds: list[Seed] = Field(
        [0, 1, 2],
        min_length=1,
        description="Each seed is one few-shot draw AND one training seed (sampling).",
    )
    shots: list[int] = Field([1, 4], min_length=1, description="k values (images per novel class).")
    steps: int = Field(
        40,
        ge=1,
        description="Optimizer steps of BOTH methods in (b) (and in (c) where `classification` says None).",
    )
    open_vocab_steps: int = Field(40, ge=1, description="Optimizer steps of both methods in (a).")
    prompts_per_step: int = Field(4, ge=1, description="Prompts per optimizer step of BOTH methods.")
    classification: ClassificationBudgets = Field(
        default_factory=ClassificationBudgets,
        description="(c) only: each method's own learning rate and steps (tuned per method on 'val').",
    )
    train_negatives: bool = Field(
        False,
        description="Detection training sets (a, b) keep their 'No Objects' prompts (absent categories); "
        "false: positive prompts only, as the reference's COCO training sets. Evaluation always asks every "
        "category.",
    )


class SFTSettings(_Section):
    """The supervised baseline on the k-shot set (`run_sft`)."""

    learning_rate: float = Field(
        5e-5,
        gt=0.0,
        description="Peak AdamW learning rate in (a), (b) (= Visual-RFT's; (c): experiments.classification).",
    )
    lr_scheduler: str = Field("constant", description="transformers scheduler name.")
    warmup: float = Field(0.0, ge=0.0, description="Warmup ratio (< 1) or steps.")


class RFTSettings(_Section):
    """Visual-RFT on the k-shot set (`run_grpo`)."""

    learning_rate: float = Field(
        5e-5,
        gt=0.0,
        description="Peak AdamW learning rate in (a), (b) (= SFT's; (c): experiments.classification).",
    )
    lr_scheduler: str = Field("constant", description="transformers scheduler name.")
    warmup: float = Field(0.0, ge=0.0, description="Warmup ratio (< 1) or steps.")
    num_generations: int = Field(8, ge=2, description="G: completions per prompt.")
    temperature: float = Field(1.0, gt=0.0, description="Sampling temperature of the rollouts.")
    beta: float = Field(0.04, ge=0.0, description="KL coefficient to the base model.")
    max_completion_length: int = Field(64, ge=8, description="Max new tokens per rollout.")
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo"] = Field(
        "grpo", description="TRL loss normalisation."
    )
    reward_preset: str = Field("default", description="Reward preset of vrft.rewards.PRESETS.")
    reward_weights: dict[str, float] = Field(default_factory=dict, description="Reward weight overrides.")


class EvalSettings(_Section):
    """Evaluation (`evaluate_model`, greedy): detection COCO mAP under the all-categories protocol
    (every novel shape asked on every image, absent ones to be answered 'No Objects'), classification
    accuracy."""

    split: Literal["test", "val"] = Field(
        "test", description="'val' for tuning (the test set is read once, at the end, with 'test')."
    )
    batch_size: int = Field(32, ge=1, description="Prompts per generate call (greedy decoding).")
    max_new_tokens: int = Field(64, ge=8, description="Generation budget per answer.")
    report_samples: int = Field(12, ge=0, description="Test images shown side by side in report.html.")


class ToolsSFTSettings(_Section):
    """SFT on the tool traces (the cold start) in the tools experiment."""

    learning_rate: float = Field(
        3e-3,
        gt=0.0,
        description="Peak AdamW learning rate (constant; 2e-4 and 1e-3 left the calls unlearned or out of the "
        "image on validation, docs/demo.md).",
    )
    steps: int = Field(40, ge=1, description="Optimizer steps (x `experiments.prompts_per_step` traces).")


class ToolsRFTSettings(_Section):
    """Visual-RFT in the tools experiment (with tools from the SFT model; without tools from the base)."""

    learning_rate: float = Field(5e-5, gt=0.0, description="Peak AdamW learning rate (constant).")
    steps: int = Field(20, ge=1, description="Optimizer steps (x `experiments.prompts_per_step` prompts).")
    num_generations: int = Field(4, ge=2, description="G: rollouts per prompt.")
    max_completion_length: int = Field(
        192, ge=16, description="Tokens per rollout, tool results included (TRL counts them)."
    )
    reward_weights: dict[str, float] = Field(
        default_factory=dict, description="Reward weights (e.g. {tool_bonus: 0.5}; default: the task's own)."
    )


class ToolsExperimentSettings(_Section):
    """The tools experiment (`experiments.run=[tools]`, `vrft.demo.tools_demo`): scenes larger than the
    model's pixel budget, one small shape to name, which only a zoom shows at a nameable scale."""

    base_path: str | None = Field(
        None,
        description="Base model directory (default: the shipped Qwen3-VL tools base, vrft/demo/tools_base_model; "
        "TRL's tool loop serves Qwen3-VL only, docs/tools.md).",
    )
    scene_size: int = Field(512, ge=64, description="Scene side in pixels.")
    view_size: int = Field(
        128, ge=32, description="Side the model sees a scene (and a tool image) at: its pixel budget's side."
    )
    min_scale: float = Field(0.06, gt=0.0, le=0.5, description="Smallest shape height / scene side.")
    max_scale: float = Field(0.09, gt=0.0, le=0.5, description="Largest shape height / scene side.")
    pool_images: int = Field(100, ge=5, description="Scenes the k-shot training sets come from.")
    val_images: int = Field(40, ge=5, description="Validation scenes (tuning only).")
    test_images: int = Field(60, ge=5, description="Test scenes (read once).")
    shots: int = Field(8, ge=1, description="k: training scenes per shape (5 base shapes).")
    zoom_margin: float = Field(
        3.0, ge=1.0, description="A trace's zoom region: the shape's box enlarged this many times (its side)."
    )
    zoom_jitter: float = Field(
        0.2, ge=0.0, le=0.45, description="The trace's zoom centre moves by up to this share of its side."
    )
    max_calls: int = Field(2, ge=1, le=32, description="tools.max_calls of training and evaluation.")
    max_images: int = Field(2, ge=1, le=16, description="tools.max_images of training and evaluation.")
    sft: ToolsSFTSettings = Field(default_factory=ToolsSFTSettings)
    rft: ToolsRFTSettings = Field(default_factory=ToolsRFTSettings)


class DemoSettings(_Section):
    """The whole miniature experiment (`vrft demo`)."""

    threads: int = Field(2, ge=1, description="torch CPU threads.")
    world: WorldSettings = Field(default_factory=WorldSettings)
    base: BaseSettings = Field(default_factory=BaseSettings)
    experiments: ExperimentSettings = Field(default_factory=ExperimentSettings)
    sft: SFTSettings = Field(default_factory=SFTSettings)
    rft: RFTSettings = Field(default_factory=RFTSettings)
    eval: EvalSettings = Field(default_factory=EvalSettings)
    tools: ToolsExperimentSettings = Field(
        default_factory=ToolsExperimentSettings, description="The tools experiment (experiments.run=[tools])."
    )

    def to_dict(self) -> dict[str, Any]:
        """Plain, YAML-serialisable values."""
        return self.model_dump(mode="json")


# `--quick`: the same pipeline, smaller (budget: 3 minutes on 2 cores; CI shrinks it further).
QUICK: dict[str, Any] = {
    "world": {"base_train_images": 40, "det_pool_images": 30, "det_val_images": 12, "det_test_images": 24,
              "cls_pool_images": 30, "cls_val_images": 12, "cls_test_images": 24},
    "experiments": {"seeds": [0], "shots": [1], "steps": 8, "open_vocab_steps": 8,
                    # (c) keeps each method's learning rate; its steps follow `steps`
                    "classification": {"sft": {"steps": None}, "rft": {"steps": None}}},
    "eval": {"report_samples": 6},
    "tools": {"pool_images": 15, "val_images": 8, "test_images": 8, "shots": 1,
              "sft": {"steps": 4}, "rft": {"steps": 2, "num_generations": 2}},
    # a smaller base, built (and cached) only when none is shipped
    "base": {"build": {"vision_images": 400, "vision_steps": 80, "cls_images": 200, "det_images": 100,
                       "sft_steps": 60, "sft_batch": 16, "eval_images": 8}},
}  # fmt: skip


def caveat(settings: DemoSettings) -> str | None:
    """What makes a run's numbers NOT the demo's result (a smaller world, fewer seeds, shots or steps
    than the full `vrft demo`, as `--quick` runs), as one sentence to print under its tables; None for
    a run at least as large as the full demo."""
    full, w, ex = DemoSettings(), settings.world, settings.experiments
    why = []
    paper = any(e != "tools" for e in ex.run)  # (a)-(c): the world, shots and steps below are theirs
    sizes = [f for f in WorldSettings.model_fields if f.endswith("_images")]
    if paper and any(getattr(w, f) < getattr(full.world, f) for f in sizes):
        cls, det = f"cls_{settings.eval.split}_images", f"det_{settings.eval.split}_images"
        why.append(f"a smaller world ({getattr(w, cls)} classification and {getattr(w, det)} detection "
                   f"{settings.eval.split} images instead of {getattr(full.world, cls)} and "
                   f"{getattr(full.world, det)})")  # fmt: skip
    if len(ex.seeds) < len(full.experiments.seeds):
        why.append(
            f"{len(ex.seeds)} seed{'s' if len(ex.seeds) > 1 else ''} instead of {len(full.experiments.seeds)}"
        )
    if paper and not set(full.experiments.shots) <= set(ex.shots):
        why.append(f"k = {ex.shots} instead of {full.experiments.shots}")
    if paper and (ex.steps < full.experiments.steps or ex.open_vocab_steps < full.experiments.open_vocab_steps):
        why.append(f"{ex.steps} optimizer steps instead of {full.experiments.steps}")
    if "tools" in ex.run:
        t, ft = settings.tools, full.tools
        small = [f for f in ("pool_images", "val_images", "test_images", "shots") if getattr(t, f) < getattr(ft, f)]
        if small or t.sft.steps < ft.sft.steps or t.rft.steps < ft.rft.steps:
            why.append("a smaller tools experiment (" + ", ".join(
                [f"tools.{f} {getattr(t, f)} instead of {getattr(ft, f)}" for f in small]
                + [f"tools.{m}.steps {getattr(t, m).steps} instead of {getattr(ft, m).steps}"
                   for m in ("sft", "rft") if getattr(t, m).steps < getattr(ft, m).steps]) + ")")  # fmt: skip
    if not why:
        return None
    return (f"Not the demo's result: these numbers come from {', '.join(why)}. They check that the "
            "pipeline runs; the demo's result is the full `vrft demo` (README.md, docs/demo.md).")  # fmt: skip


def load_schema(
    schema: type[_M],
    path: str | Path | None = None,
    *,
    base: Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
    what: str = "demo config",
) -> _M:
    """`base` (defaults on top of the schema's own), then the YAML file at `path`, then dotted
    ``key=value`` overrides, validated by `schema` through `vrft.config`'s loader (the same YAML
    error positions, override parsing and unknown-key suggestions as `vrft train` configs).

    Raises:
        ConfigError: every unknown key (with a suggestion) and wrong value, naming where it came from.
    """
    from vrft.config import apply_overrides, read_source, validate_schema

    data: dict[str, Any] = {}
    _merge(data, base or {})
    sources: dict[str, str] = {}
    origin = "<defaults>"
    if path is not None:
        loaded, sources, origin = read_source(Path(path), what)
        _merge(data, loaded)
    return validate_schema(schema, apply_overrides(data, overrides, sources), sources, origin)


def load_settings(
    path: str | Path | None = None, *, quick: bool = False, overrides: Sequence[str] = ()
) -> DemoSettings:
    """Defaults, then `QUICK` (with `quick`), then the YAML file at `path`, then `key=value` overrides.

    Raises:
        ConfigError: every unknown key (with a suggestion) and wrong value, naming where it came from.
    """
    settings = load_schema(DemoSettings, path, base=QUICK if quick else None, overrides=overrides)
    w = settings.world
    pairs = [(w, "world", "min_scale", "max_scale"), (w, "world", "base_train_min_scale", "base_train_max_scale"),
             (settings.tools, "tools", "min_scale", "max_scale")]  # fmt: skip
    for section, name, low, high in pairs:
        if getattr(section, low) > getattr(section, high):
            raise ConfigError(
                f"{name}.{low} ({getattr(section, low)}) is larger than {name}.{high} ({getattr(section, high)}); "
                f"set {name}.{low} <= {name}.{high}"
            )
    t = settings.tools
    if t.view_size > t.scene_size:
        raise ConfigError(
            f"tools.view_size ({t.view_size}) is larger than tools.scene_size ({t.scene_size}): the scene must be "
            "larger than what the model sees, or nothing needs a zoom; lower tools.view_size"
        )
    return settings


def _merge(into: dict[str, Any], new: Mapping[str, Any]) -> None:
    for k, v in new.items():
        if isinstance(v, Mapping) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = json.loads(json.dumps(v)) if isinstance(v, Mapping | list) else v
