"""Every check of a run against the world, once, before any model weight is loaded.

`vrft.config` checks a config against itself (the schema, rules across fields). This module checks
it against everything else, and reports every problem at once as one `ConfigError`:

- registries: the task, the reward preset, weighted reward names, external rewards
  ('package.module:function', imported here);
- installed packages: vLLM (`grpo.use_vllm`), the trackers of `output.report_to` (named with the
  extra that installs them);
- files: the model directory (its `config.json` and coordinate convention; no weight is read), the
  training records (loaded once, filtered to the task, the `data.max_samples` subset, the run's
  `answer_format`) and the header of every image they use (every image of an ``images`` record,
  the header and first frame of a ``video``); no record may show more images than
  `model.max_images`; `data.eval` is not read by training and not checked;
- the output directories: not the filesystem root, a system directory (`system_dir_problem`) or the
  home directory itself; not an input and not holding one (model, records, external reward modules);
- without weights, from the model's config and processor files: LoRA `target_modules` that match no
  module, and an `sft.max_length` that would cut a prompt's image tokens.

`preflight(cfg)` returns the loaded records and the task (`Preflight`) so a run reads its records
and images once; `vrft check-config` runs the same function and discards them.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vrft.config import VrftConfig, problems_of
from vrft.errors import ConfigError, UserError
from vrft.schema import join_problems, suggest

logger = logging.getLogger(__name__)

TRACKER_PACKAGES = {"wandb": "wandb", "tensorboard": "tensorboard", "trackio": "trackio"}
"""`output.report_to` name -> the package transformers needs for it."""
TRACKER_INSTALL = {
    "wandb": 'pip install "vrft[wandb]"',
    "tensorboard": 'pip install "vrft[tensorboard]"',
    "trackio": "pip install trackio",
}

SYSTEM_DIRS = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/proc", "/sbin", "/sys", "/usr")
"""Directories that a run never writes into, nor anywhere below them."""
SYSTEM_ROOTS = ("/run", "/var", "/home", "/opt", "/srv", "/mnt", "/media", "/tmp")
"""Directories a run does not take as its own output directory (below them is fine: /var/tmp/run)."""


@dataclass
class Preflight:
    """What the checks loaded, for the run to use instead of reading it again.

    records: the records the run trains on (one task, or every task with `mixed_tasks`), at most
    `data.max_samples` of them (a seeded subset) with the run's `answer_format`; task_name: that task
    (mixed: the tasks joined by '+'); tasks: the distinct tasks of `records`; model_type: `config.json`'s.
    Empty when the path checks were skipped.
    """

    records: list[Any] = field(default_factory=list)
    task_name: str | None = None
    tasks: list[str] = field(default_factory=list)
    model_type: str | None = None


def preflight(cfg: VrftConfig, *, check_paths: bool = True, mixed_tasks: bool = False) -> Preflight:
    """Run every check (`problems` lists them); raise one ConfigError with all the problems found.

    `check_paths=False` skips what needs files (for shipped presets whose paths are placeholders).
    `mixed_tasks`: the records of every task are trained on (`vrft.train.sft.run_sft(mixed_tasks=True)`).
    """
    found, result = problems(cfg, check_paths=check_paths, mixed_tasks=mixed_tasks)
    if found:
        raise ConfigError(join_problems(found))
    return result


def problems(
    cfg: VrftConfig, *, check_paths: bool = True, mixed_tasks: bool = False
) -> tuple[list[str], Preflight]:
    """(every problem as a message, what was loaded)."""
    found = list(problems_of(cfg))

    def add(key: str, message: str) -> None:
        at = cfg.where(key)
        found.append(f"{at + ': ' if at else ''}{key}: {message}")

    result = Preflight()
    task_name = _check_task(cfg, add)
    _check_packages(cfg, add)
    reward_files = _check_rewards(cfg, task_name, add, check_task=False)
    _check_output_dirs(cfg, add, reward_files if check_paths else [])
    if check_paths:
        result.model_type = _check_model_dir(cfg, add)
        _check_records(cfg, task_name, add, result, mixed_tasks)
        if result.task_name and result.task_name != task_name and not mixed_tasks:
            _check_rewards(cfg, result.task_name, add, check_task=True)  # the task read from the records
        if result.records and result.model_type is not None:
            _check_sft_max_length(cfg, add, result)
        if result.model_type is not None:
            _check_lora_targets(cfg, add)
    if cfg.tools.enabled:
        _check_tools(cfg, add, result.model_type, result.task_name or task_name, result.records)
    return found, result


def _check_tools(cfg: VrftConfig, add, model_type: str | None, task_name: str | None = None, records=()) -> None:
    """tools.enabled: a one-image task whose records show one image each (a tool acts on the record's one
    image: on a record with several images or a video it would only ever see the first); the family has a
    tool-capable template (`vrft.tools.support`); user tools import and follow TRL's convention."""
    from vrft.data.record_checks import MULTI_IMAGE_TASKS, VIDEO_TASKS
    from vrft.tools import BUILTIN_TOOLS, load_user_tool, name_problem
    from vrft.tools.support import tool_problem

    if task_name in MULTI_IMAGE_TASKS + VIDEO_TASKS:
        shows = "several images" if task_name in MULTI_IMAGE_TASKS else "a video"
        add(
            "tools.enabled",
            f"tools act on the record's one image, but a {task_name} record shows {shows}: every tool call "
            "would see only its first image (or frame); set tools.enabled=false for this task",
        )

    if model_type:
        problem = tool_problem(model_type)
        if problem:
            add("tools.enabled", problem)
    for name in cfg.tools.names:
        if name not in BUILTIN_TOOLS and name_problem(name) is None:
            try:
                load_user_tool(name)
            except ConfigError as err:
                add("tools.names", str(err))
    several = [r for r in records or () if getattr(r, "image", None) is None]
    if several and task_name not in MULTI_IMAGE_TASKS + VIDEO_TASKS:  # else said above, once
        first = several[0]
        add(
            "tools.enabled",
            f"{len(several)} record(s) show several images or a video (first: {first.source or first.id}); the "
            "tools work on a record's one image: train those records without tools",
        )


# ------------------------------------------------------------------------------------- registries
def _check_task(cfg: VrftConfig, add) -> str | None:
    if cfg.data.task is None:
        return None
    from vrft.tasks import TASKS

    if cfg.data.task not in TASKS:
        add(
            "data.task",
            f"unknown task '{cfg.data.task}'{suggest(cfg.data.task, TASKS)}; known: {', '.join(TASKS)}",
        )
        return None
    return cfg.data.task


def _check_rewards(cfg: VrftConfig, task_name: str | None, add, *, check_task: bool) -> list[str]:
    """Check the rewards (only the preset x task pairing with `check_task`); returns the files of the
    external reward modules (inputs of the run)."""
    from vrft.rewards import PRESETS, REWARDS, rewards_for

    r = cfg.rewards
    if task_name is not None and r.preset in PRESETS:
        try:
            rewards_for(task_name, r.preset, {k: v for k, v in r.weights.items() if k in REWARDS},
                        answer_format=cfg.data.answer_format)  # fmt: skip
        except ConfigError as err:
            add("rewards.preset", str(err))
    if check_task:
        return []
    if r.preset not in PRESETS:
        add(
            "rewards.preset",
            f"unknown preset '{r.preset}'{suggest(r.preset, PRESETS)}; known: {', '.join(PRESETS)}",
        )
    extra_names: set[str] = set()
    files = []
    for i, spec in enumerate(r.extra):
        try:
            fn = resolve_reward(spec)
        except ConfigError as err:
            add(f"rewards.extra.{i}", str(err))
            continue
        extra_names.update({spec, getattr(fn, "__name__", spec)})
        module_file = getattr(importlib.import_module(spec.partition(":")[0]), "__file__", None)
        if module_file:
            files.append(module_file)
    for name in r.weights:
        if name in REWARDS or name in extra_names:
            continue
        if ":" in name:
            add(
                f"rewards.weights.{name}",
                f"'{name}' is weighted but not listed in rewards.extra; add it there",
            )
        else:
            add(
                f"rewards.weights.{name}",
                f"unknown reward '{name}'{suggest(name, REWARDS)}; known: {', '.join(REWARDS)} "
                "(or add an external one to rewards.extra as 'package.module:function')",
            )
    return files


def resolve_reward(spec: str) -> Callable:
    """Import an external reward 'package.module:function' (TRL convention); ConfigError if it fails."""
    module_name, sep, func_name = spec.partition(":")
    if not sep or not module_name or not func_name:
        raise ConfigError(f"'{spec}': name an external reward as 'package.module:function'")
    from vrft.inputs import import_user_module

    module = import_user_module(module_name, repr(spec))
    fn = getattr(module, func_name, None)
    if not callable(fn):
        raise ConfigError(f"'{spec}': module '{module_name}' has no function '{func_name}'")
    return fn


# --------------------------------------------------------------------------------------- packages
def _check_packages(cfg: VrftConfig, add) -> None:
    if cfg.grpo.use_vllm and importlib.util.find_spec("vllm") is None:
        add(
            "grpo.use_vllm",
            "vLLM is not installed: `pip install 'vrft[vllm]'` (needs a CUDA GPU) or set it false",
        )
    for name in cfg.output.report_to:
        if importlib.util.find_spec(TRACKER_PACKAGES[name]) is None:
            add(
                "output.report_to",
                f"'{name}' needs the {TRACKER_PACKAGES[name]} package, which is not installed: "
                f"`{TRACKER_INSTALL[name]}`, or remove it from output.report_to",
            )


# ---------------------------------------------------------------------------------------- outputs
def system_dir_problem(path: str | os.PathLike) -> str | None:
    """Why `path` may not be a run's output directory, or None: the filesystem root, a system directory
    or anything below one (`SYSTEM_DIRS`), a shared top-level directory itself (`SYSTEM_ROOTS`), or the
    home directory itself."""
    r = Path(os.path.realpath(os.path.abspath(os.path.expanduser(os.fspath(path)))))
    if r == Path(r.anchor):
        return "is the filesystem root"
    for d in SYSTEM_DIRS:
        if r == Path(d) or Path(d) in r.parents:
            return f"is {'the' if r == Path(d) else 'inside the'} system directory {d}"
    if any(r == Path(d) for d in SYSTEM_ROOTS):
        return "is a shared system directory"
    home = os.path.expanduser("~")
    if home not in ("", "/") and r == Path(os.path.realpath(home)):
        return "is your home directory itself"
    return None


def _check_output_dirs(cfg: VrftConfig, add, reward_files: list[str]) -> None:
    """output.dir (and output.sft_dir where it is set; otherwise it follows output.dir): not a system
    directory, not an input, not holding one."""
    from vrft.outputs import refuse_overlap

    explicit_sft = cfg.output.sft_dir is not None
    for key, out in (
        ("output.dir", cfg.output.dir),
        ("output.sft_dir" if explicit_sft else "output.dir", cfg.sft_output_dir),
    ):
        if key == "output.dir" and out != cfg.output.dir and system_dir_problem(cfg.output.dir):
            continue  # the derived SFT directory of a refused output.dir
        why = system_dir_problem(out)
        if why:
            add(key, f"{out} {why}: vrft cannot write a run (final/, checkpoints, logs) there; give a directory of its "
                     "own, e.g. runs/my-experiment")  # fmt: skip
            continue
        try:
            refuse_overlap([out], run_inputs(cfg) + reward_files, option=key)
        except UserError as err:
            add(key, str(err).removeprefix(f"{key}: "))


def run_inputs(cfg: VrftConfig) -> list[str]:
    """The paths a run reads (model, training and held-out records): its output directory may not be
    or hold one of them."""
    return [p for p in (cfg.model.path, cfg.data.train, cfg.data.eval) if p]


# ------------------------------------------------------------------------------------------ files
def _kind(path: Path) -> str:
    """'a directory', 'a file', 'a FIFO (named pipe)', ... for a path that exists."""
    try:
        mode = path.stat().st_mode
    except OSError as err:
        return f"unreadable ({err.strerror or err})"
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISREG, "a file"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):  # fmt: skip
        if test(mode):
            return name
    return "not a regular file"


def _check_model_dir(cfg: VrftConfig, add) -> str | None:
    """Check model.path; returns the model family (`model_type`), or None after a problem."""
    path = Path(cfg.model.path).expanduser()
    hint = ("set model.path to a local Hugging Face model directory, e.g. one made by "
            "`hf download Qwen/Qwen2-VL-2B-Instruct --local-dir DIR` or `vrft tiny --out DIR`")  # fmt: skip
    if not os.path.lexists(path) or (path.is_symlink() and not path.exists()):
        add("model.path", f"model directory not found: {path} ({hint})")
        return None
    if not path.is_dir():
        add("model.path", f"{path} is {_kind(path)}, not a model directory ({hint})")
        return None
    config_json = path / "config.json"
    if not config_json.is_file():
        add("model.path", f"{path} has no config.json: not a Hugging Face model directory ({hint})")
        return None
    try:
        model_type = json.loads(config_json.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError) as err:
        add("model.path", f"cannot read {config_json}: {err}")
        return None
    if cfg.model.coordinate_convention == "auto":
        from vrft.models.load import convention_for

        try:
            convention_for(model_type, "auto")
        except ConfigError as err:
            add("model.coordinate_convention", str(err))
            return None
    return model_type or ""


def _check_records(cfg: VrftConfig, task_name: str | None, add, result: Preflight, mixed: bool) -> None:
    from vrft.data.records import format_problems, image_problems, load_records

    key = "data.train"
    path = Path(cfg.data.train).expanduser()
    if not os.path.lexists(path) or (path.is_symlink() and not path.exists()):
        add(key, f"records file not found: {path} (make one with `vrft data ...`, see docs/data.md)")
        return
    if not path.is_file():
        what = _kind(path)
        if what == "a directory":
            add(
                key,
                f"{path} is a directory, not a records file (give the path of the records .jsonl file itself)",
            )
        else:
            add(key, f"{path} is {what}, not a records file: give a JSONL records file (docs/data.md)")
        return
    try:
        records = load_records(path)
    except UserError as err:
        add(key, str(err))
        return
    if cfg.data.task is not None and task_name is None:
        return  # an unknown data.task is reported already
    try:
        used, name = select_records(cfg, records, mixed_tasks=mixed)
    except ConfigError as err:
        field_name, _, message = str(err).partition(": ")  # select_records names its field first
        if not field_name.startswith("data.") or " " in field_name:
            field_name, message = key, str(err)
        add(field_name, message)
        return
    too_many = _image_count_problems(used, cfg.model.max_images)
    if too_many:
        add("model.max_images", too_many)
        return
    bad = image_problems(used)
    if bad:
        add(key, format_problems(bad, f"{len(bad)} record(s) with a missing or unreadable image or video:"))
        return
    result.records, result.task_name, result.tasks = used, name, sorted({r.task for r in used})


def _image_count_problems(records: list[Any], max_images: int) -> str | None:
    """One line when a record shows more images than `model.max_images` (the first such record named)."""
    over = [r for r in records if getattr(r, "images", None) is not None and len(r.images) > max_images]
    if not over:
        return None
    first = over[0]
    return (
        f"{len(over)} record(s) show more images than model.max_images={max_images} (first: "
        f"{first.source or first.id}: {len(first.images)} images); raise model.max_images (up to 16) "
        "or drop those records"
    )


def select_records(
    cfg: VrftConfig, records: list[Any], *, mixed_tasks: bool = False
) -> tuple[list[Any], str]:
    """(the records a run trains on, its task name) from every record of `data.train`.

    One task (`data.task`, or the records' only task): its records. `mixed_tasks`: every record, each
    trained with its own task (`data.task` must still be one of them). Then at most `data.max_samples`
    (a subset seeded by `data.seed`, file order kept) with `data.answer_format` set (a record that sets
    another format is refused).
    """
    from vrft.data.records import sample_records
    from vrft.tasks import TASKS

    train = cfg.data.train
    tasks = sorted({r.task for r in records})
    unknown = [t for t in tasks if t not in TASKS]
    task = cfg.data.task
    if task is None:
        if len(tasks) != 1 and not mixed_tasks:
            raise ConfigError(
                f"data.task: the records of {train} mix tasks {tasks}; set data.task to train on one of them"
            )
        task = tasks[0] if tasks else None
    if task is None or not any(r.task == task for r in records):
        raise ConfigError(f"data.train: {train} has no '{task}' records")
    if mixed_tasks:
        if unknown:
            raise ConfigError(f"data.train: {train} holds tasks no registered task handles: {unknown} "
                              f"(known: {', '.join(TASKS)})")  # fmt: skip
        used, name = records, "+".join(tasks)
    else:
        if task not in TASKS:
            raise ConfigError(f"data.train: records have task '{task}', which no registered task handles "
                              f"(known: {', '.join(TASKS)})")  # fmt: skip
        used, name = [r for r in records if r.task == task], task
    used = sample_records(used, cfg.data.max_samples, cfg.data.seed)
    return with_answer_format(used, cfg.data.answer_format, "data.answer_format"), name


def with_answer_format(records: list[Any], answer_format: str, setting: str) -> list[Any]:
    """The records with ``answer_format`` set to the run's format (copies; the prompts, SFT targets and
    format reward follow it). A record that sets a DIFFERENT format is a ConfigError naming it: one run
    trains (and its model contract records) one format."""
    import dataclasses

    clash = [r for r in records if r.answer_format not in (None, answer_format)]
    if clash:
        where = ", ".join(f"{r.source or r.id} ({r.answer_format})" for r in clash[:5])
        raise ConfigError(
            f"{setting} is {answer_format!r} but {len(clash)} record(s) set another answer_format: {where}; "
            f"set {setting} to match the records, or remove answer_format from them"
        )
    return [dataclasses.replace(r, answer_format=answer_format) for r in records]


# ------------------------------------------------------------------------- model files, no weights
def _check_sft_max_length(cfg: VrftConfig, add, result: Preflight) -> None:
    """sft.max_length must hold the longest prompt with its image tokens (TRL cuts the sequence at
    max_length, and a prompt cut inside its image tokens cannot be trained on)."""
    limit = cfg.sft.max_length
    if limit is None:
        return
    need, rec = prompt_tokens_needed(cfg, result.records)
    if need is not None and limit < need:
        add(
            "sft.max_length",
            f"{limit} is below the {need} tokens of the longest prompt with its image tokens "
            f"({rec.source or rec.id}); set sft.max_length above {need} plus the answer's tokens, or unset it",
        )


def prompt_tokens_needed(cfg: VrftConfig, records: list[Any]) -> tuple[int | None, Any]:
    """(tokens of the longest prompt, image tokens included, the record it belongs to), from the model's
    processor and chat template files (no weights); (None, None) for a family whose image token count
    is not a pixel grid of the resized image."""
    from vrft.boxes import smart_resize
    from vrft.models.load import load_processor, patch_factor, pixel_budget

    try:
        processor = load_processor(
            cfg.model.path, min_pixels=cfg.model.min_pixels, max_pixels=cfg.model.max_pixels
        )
    except (ConfigError, OSError, ValueError):
        return None, None  # the model load reports it
    factor, budget = patch_factor(processor), pixel_budget(processor)
    if factor is None or budget is None or not hasattr(processor, "apply_chat_template"):
        return None, None
    from vrft.data.hf import user_turn
    from vrft.data.visual_inputs import MediaBudget, is_single_image, visual_spec
    from vrft.media import fit_pixels
    from vrft.models.load import frame_for
    from vrft.tasks.base import record_frame
    from vrft.train.builder import get_task

    convention = _convention(cfg)
    media = MediaBudget.of(cfg.model)
    text_tokens: dict[str, int] = {}  # prompts repeat across records: tokenize each text once
    need, longest = -1, None
    for r in records:
        spec = None if is_single_image(r) else visual_spec(r, media)
        if spec is None:
            sizes = [(int(r.width), int(r.height))]
        elif "paths" in spec:
            sizes = [(int(w), int(h)) for w, h in r.image_sizes]
        else:  # video frames, resized to the frame budget before the processor sees them
            frame_size = fit_pixels(int(r.width), int(r.height), media.video_max_pixels, media.video_min_pixels)
            sizes = [frame_size] * len(spec["times"])
        frame = record_frame(r, lambda w, h: frame_for(w, h, convention, processor))
        prompt = get_task(r.task, cfg.rewards.preset).prompt(r, frame)
        key = json.dumps([prompt, spec and spec.get("captions"), spec and spec.get("header")])
        if key not in text_tokens:
            text = processor.apply_chat_template(
                user_turn(prompt, spec), add_generation_prompt=True, tokenize=False
            )
            text_tokens[key] = len(processor.tokenizer(text, add_special_tokens=False)["input_ids"])
        n = text_tokens[key] - len(sizes)  # each image placeholder -> its tokens
        for w, h in sizes:
            rh, rw = smart_resize(h, w, factor, *budget)
            n += (rh // factor) * (rw // factor)
        if n > need:
            need, longest = n, r
    return need, longest


def _convention(cfg: VrftConfig) -> str:
    from vrft.models.load import convention_for

    config = json.loads((Path(cfg.model.path).expanduser() / "config.json").read_text(encoding="utf-8"))
    return convention_for(config.get("model_type"), cfg.model.coordinate_convention)


def _check_lora_targets(cfg: VrftConfig, add) -> None:
    """LoRA target_modules that match no module of the model, found on a weightless copy built from
    config.json (skipped if the family cannot be built that way: the model load checks it again)."""
    lora = cfg.model.lora
    if not lora.enabled or lora.target_modules == "all-linear":
        return
    try:
        model = skeleton(cfg.model.path)
    except Exception as err:  # noqa: BLE001 - any failure here is reported by the real load
        logger.debug("no weightless model for the LoRA check: %s", err)
        return
    problem = lora_target_problem(model, lora.target_modules, include_vision=lora.include_vision)
    if problem:
        add("model.lora.target_modules", problem)


def skeleton(path: str) -> Any:
    """The model of `path` built from its config.json on the meta device: module names, no weights."""
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    config = AutoConfig.from_pretrained(Path(path).expanduser(), local_files_only=True)
    with torch.device("meta"):
        return AutoModelForImageTextToText.from_config(config)


def lora_target_problem(model: Any, target_modules: str | list[str], *, include_vision: bool) -> str | None:
    """Why LoRA with `target_modules` would put no adapter on `model` (peft's matching: a string is a
    regular expression over the full module name, a list names module-name suffixes), or None."""
    import re

    from vrft.train.builder import vision_module_names

    if target_modules == "all-linear":
        return None
    vision = [] if include_vision else vision_module_names(model)
    names = [
        n for n, _ in model.named_modules() if n and not any(n == v or n.startswith(v + ".") for v in vision)
    ]
    if isinstance(target_modules, str):
        hit = any(re.fullmatch(target_modules, n) for n in names)
        unmatched = [] if hit else [target_modules]
    else:
        unmatched = [t for t in target_modules if not any(n == t or n.endswith("." + t) for n in names)]
        hit = len(unmatched) < len(target_modules)
    if hit:
        return None
    leaves = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules()
                     if n in names and not list(m.children()) and not n.rsplit(".", 1)[-1].isdigit()})  # fmt: skip
    where = "the model" + ("" if include_vision else " outside the vision tower")
    return (f"{unmatched} match no module of {where}; module names there include: {', '.join(leaves[:12])} "
            "(or use 'all-linear')")  # fmt: skip
