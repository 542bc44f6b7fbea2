"""The trained model's contract: how it must be asked, saved beside its weights as ``vrft.json``.

Training (`vrft train`, `vrft sft`) writes ``<model dir>/vrft.json`` into ``final/`` and every checkpoint::

    {"task": "detection", "prompt": "Detect every {category}.", "answer_format": "think",
     "coordinate_convention": "norm1000", "min_pixels": 3136, "max_pixels": 401408,
     "max_images": 4, "video_fps": 2.0, "video_max_frames": 8, "video_max_pixels": 12544,
     "video_min_pixels": 3136}

- ``task``: the task trained, or several joined by ``+`` in sorted order (``classification+detection``:
  a mixed-task SFT, the shipped demo base); a command then asks one of them (`pick_task`, `for_task`);
- ``prompt``: the record-prompt template all training records shared (``Record.prompt``, placeholders
  ``{category}``, ``{expression}``, ``{label}``), or null: the task's own template;
- ``answer_format``: ``think`` (``<think>..</think> <answer>..</answer>``) or ``answer_only``;
- ``coordinate_convention``: resolved (never ``auto``): ``norm1000``, ``resized_pixels`` or ``pixels``;
- ``min_pixels`` / ``max_pixels``: the image processor's pixel budget (null: the family has none).
- ``max_images``, ``video_fps``, ``video_max_frames``, ``video_max_pixels``, ``video_min_pixels``:
  the many-image and video budgets of the run (`model.*` of the config; `MEDIA_BUDGETS`); null or
  absent in a ``vrft.json`` written before they existed (then the command's own defaults hold).
- ``tools``: null, or the tools a GRPO run with ``tools.enabled`` offered the model:
  ``{"names": ["zoom_in"], "max_calls": 3, "max_images": 2, "max_pixels": 401408}`` (docs/tools.md).

`vrft predict` and `vrft eval` read it (`resolve_settings`) and ask the model the same way; an explicit
option overrides a setting, with a warning when it differs from the training setting.
`recorded_coordinates` tells re-scoring (`vrft eval --predictions`, `vrft score`) the coordinates saved
answers are in, from the run that wrote them (its ``metrics.json``, else a ``vrft.json``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vrft.data.record_checks import TASK_NAMES
from vrft.errors import UserError
from vrft.media import BUDGET_NAMES

logger = logging.getLogger(__name__)

CONTRACT_FILE = "vrft.json"
TASKS = TASK_NAMES  # the tasks a contract may name
MEDIA_BUDGETS = BUDGET_NAMES
"""The many-image / video budgets a contract keeps (the `model.*` config keys of the same names)."""
ANSWER_FORMATS = ("think", "answer_only")
CONVENTIONS = ("norm1000", "resized_pixels", "pixels")
DEFAULT_PROMPT = "default"
"""The value of ``--prompt`` that asks with the task's own template (overriding a trained template)."""
CARD_HEADING = "## How to ask this model (vrft.json)"


@dataclass(frozen=True)
class ModelContract:
    """The settings a model was trained with (the fields of ``vrft.json``)."""

    task: str
    prompt: str | None
    answer_format: str
    coordinate_convention: str
    min_pixels: int | None
    max_pixels: int | None
    max_images: int | None = None
    video_fps: float | None = None
    video_max_frames: int | None = None
    video_max_pixels: int | None = None
    video_min_pixels: int | None = None
    tools: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``vrft.json`` (fixed key order)."""
        return dataclasses.asdict(self)

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks trained: one, or those of a multi-task contract (``"classification+detection"``)."""
        return tuple(dict.fromkeys(self.task.split("+")))


def shared_prompt(records: Sequence[Any]) -> str | None:
    """The record-prompt template every record carries, or None (none carry one, or they differ)."""
    prompts = {getattr(r, "prompt", None) for r in records}
    if len(prompts) == 1:
        (only,) = prompts
        return only or None
    return None


def write_contract(model_dir: str | os.PathLike, contract: ModelContract) -> Path:
    """Write ``<model_dir>/vrft.json`` and mention it in ``<model_dir>/README.md`` if a card is there."""
    d = Path(model_dir)
    path = d / CONTRACT_FILE
    tmp = d / f".{CONTRACT_FILE}.tmp"
    tmp.write_text(json.dumps(contract.to_dict(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    mention_in_card(d / "README.md", contract)
    return path


def card_section(contract: ModelContract) -> str:
    """The model card paragraph describing ``vrft.json``."""
    prompt = json.dumps(contract.prompt) if contract.prompt else "the task's default template"
    pixels = (
        f"min_pixels={contract.min_pixels}, max_pixels={contract.max_pixels}"
        if contract.min_pixels is not None or contract.max_pixels is not None
        else "the processor's own"
    )
    return (
        f"\n{CARD_HEADING}\n\n"
        f"Trained by vrft for **{contract.task}** with the prompt {prompt}, answer format "
        f"`{contract.answer_format}`, coordinates `{contract.coordinate_convention}` and pixel budget "
        f"{pixels}. These settings are in `{CONTRACT_FILE}` beside the weights; `vrft predict` and "
        "`vrft eval` use them by default (an explicit option overrides them, with a warning).\n"
    )


def mention_in_card(readme: Path, contract: ModelContract) -> bool:
    """Append (or replace) the `card_section` in an existing README.md; False when there is none."""
    if not readme.is_file():
        return False
    text = readme.read_text(encoding="utf-8", errors="replace")
    if CARD_HEADING in text:
        text = text[: text.index(CARD_HEADING)].rstrip("\n") + "\n"
    from vrft.outputs import atomic_write_text

    atomic_write_text(readme, text.rstrip("\n") + "\n" + card_section(contract))
    return True


def read_contract(model_dir: str | os.PathLike) -> ModelContract | None:
    """The contract of a model directory, or None when it has no ``vrft.json`` (not trained by vrft).

    Raises UserError naming the file and the field when the file is not a valid contract.
    """
    path = Path(model_dir) / CONTRACT_FILE
    if not path.is_file():
        return None
    fix = f"fix or delete {path} (it is rewritten by training)"
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path}: not valid UTF-8 JSON ({err}); {fix}") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path}: expected a JSON object; {fix}")
    names = [f.name for f in dataclasses.fields(ModelContract)]
    unknown = sorted(set(obj) - set(names))
    if unknown:
        raise UserError(f"{path}: unknown field(s) {', '.join(unknown)}; known: {', '.join(names)}")
    values = {n: obj.get(n) for n in names}
    values["answer_format"] = values["answer_format"] or "think"

    def bad(name: str, want: str) -> UserError:
        return UserError(f"{path}: {name}: {values[name]!r} is not {want}; {fix}")

    task = values["task"]
    if not isinstance(task, str) or not task or any(t not in TASKS for t in task.split("+")):
        raise bad("task", "one of " + ", ".join(TASKS) + ", or several joined by '+'")
    if values["prompt"] is not None and not (isinstance(values["prompt"], str) and values["prompt"].strip()):
        raise bad("prompt", "null or a non-empty string")
    if values["answer_format"] not in ANSWER_FORMATS:
        raise bad("answer_format", "one of " + ", ".join(ANSWER_FORMATS))
    if values["coordinate_convention"] not in CONVENTIONS:
        raise bad("coordinate_convention", "one of " + ", ".join(CONVENTIONS))
    for name in ("min_pixels", "max_pixels"):
        v = values[name]
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v <= 0):
            raise bad(name, "null or a positive integer")
    from vrft.media import budget_problem

    for name in MEDIA_BUDGETS:
        v = values[name]
        if v is not None and (want := budget_problem(name, v)):
            raise bad(name, f"null or {want}")
    if values["video_fps"] is not None:
        values["video_fps"] = float(values["video_fps"])
    if values["tools"] is not None:
        problem = tools_problem(values["tools"])
        if problem:
            raise bad("tools", f"null or a tools object ({problem})")
    return ModelContract(**values)


TOOL_KEYS = ("names", "max_calls", "max_images", "max_pixels")
"""The fields of a contract's ``tools`` object (the `tools.*` config keys of a run with tools)."""


def tools_problem(tools: Any) -> str | None:
    """Why a contract's ``tools`` value is not ``{"names": [...], "max_calls": n, "max_images": n,
    "max_pixels": n}`` (None: it is)."""
    from vrft.tools import name_problem

    if not isinstance(tools, dict) or set(tools) != set(TOOL_KEYS):
        return f"an object with exactly the keys {', '.join(TOOL_KEYS)}"
    names = tools["names"]
    if (
        not isinstance(names, list)
        or not names
        or not all(isinstance(n, str) and not name_problem(n) for n in names)
    ):
        return "names: a non-empty list of tool names"
    for key in ("max_calls", "max_images", "max_pixels"):
        v = tools[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < (0 if key == "max_images" else 1):
            return f"{key}: a whole number"
    return None


@dataclass(frozen=True)
class AskSettings:
    """How `predict` / `eval` ask a model: the contract's settings with the explicit options applied.

    ``prompt``: a record-prompt template, or None for the task's template. ``convention``: None means
    "from the model family" (no contract and no option). ``explicit_prompt``: the prompt came from an
    option (it then replaces the records' own prompts too).
    """

    task: str | None
    prompt: str | None
    answer_format: str
    convention: str | None
    min_pixels: int | None
    max_pixels: int | None
    explicit_prompt: bool = False
    contract: ModelContract | None = None
    max_images: int | None = None
    video_fps: float | None = None
    video_max_frames: int | None = None
    video_max_pixels: int | None = None
    video_min_pixels: int | None = None


def resolve_settings(
    model_dir: str | os.PathLike,
    *,
    prompt: str | None = None,
    answer_format: str | None = None,
    convention: str | None = None,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    command: str = "vrft",
    max_images: int | None = None,
    video_fps: float | None = None,
    video_max_frames: int | None = None,
    video_max_pixels: int | None = None,
    video_min_pixels: int | None = None,
) -> AskSettings:
    """The settings to ask the model in `model_dir` with: ``vrft.json`` where it exists, each explicit
    (non-None) argument overriding its setting. Logs one line naming the file when it is used, and a
    warning per explicit argument that differs from the training setting. ``prompt="default"`` asks with
    the task's own template. The task is chosen afterwards by the command (`for_task`). The media
    budgets (`MEDIA_BUDGETS`: ``max_images``, ``video_*``) are resolved the same way (None: neither
    the contract nor an option sets it; the command uses its default)."""
    media = {
        "max_images": max_images, "video_fps": video_fps, "video_max_frames": video_max_frames,
        "video_max_pixels": video_max_pixels, "video_min_pixels": video_min_pixels,
    }  # fmt: skip
    contract = read_contract(model_dir)
    explicit_prompt = prompt is not None
    given_prompt = None if prompt == DEFAULT_PROMPT else prompt
    if contract is None:
        return AskSettings(
            None, given_prompt, answer_format or "think", convention, min_pixels, max_pixels, explicit_prompt,
            **media,
        )  # fmt: skip
    path = Path(model_dir) / CONTRACT_FILE
    logger.info(
        "%s: asking the model as it was trained (%s): task=%s, prompt=%s, answer_format=%s, "
        "coordinates=%s, min_pixels=%s, max_pixels=%s",
        command, path, contract.task, json.dumps(contract.prompt) if contract.prompt else "the task's default",
        contract.answer_format, contract.coordinate_convention, contract.min_pixels, contract.max_pixels,
    )  # fmt: skip
    options = {
        "prompt": ("--prompt", given_prompt if explicit_prompt else None),
        "answer_format": ("--answer-only", answer_format),
        "coordinate_convention": ("--convention", convention),
        "min_pixels": ("--min-pixels", min_pixels),
        "max_pixels": ("--max-pixels", max_pixels),
        **{name: ("--" + name.replace("_", "-"), value) for name, value in media.items()},
    }
    chosen: dict[str, Any] = {}
    for name, (option, value) in options.items():
        trained = getattr(contract, name)
        given = value is not None or (name == "prompt" and explicit_prompt)
        if given and value != trained and not (name in MEDIA_BUDGETS and trained is None):
            logger.warning(
                "%s: %s %s overrides the training setting %s=%s of %s; the model may answer worse",
                command, option, _show(value, name), name, _show(trained, name), path,
            )  # fmt: skip
        chosen[name] = value if given else trained
    return AskSettings(
        task=contract.task if len(contract.tasks) == 1 else None,
        prompt=chosen["prompt"],
        answer_format=chosen["answer_format"],
        convention=chosen["coordinate_convention"],
        min_pixels=chosen["min_pixels"],
        max_pixels=chosen["max_pixels"],
        explicit_prompt=explicit_prompt,
        contract=contract,
        **{name: chosen[name] for name in MEDIA_BUDGETS},
    )


def for_task(settings: AskSettings, task: str, *, command: str = "vrft") -> AskSettings:
    """`settings` for asking `task`. A task other than the trained one(s) is asked with the task's own
    prompt (or the explicit ``--prompt``) and a warning; the model's coordinates and pixels still hold.
    A multi-task contract (``"classification+detection"``) is asked any of its tasks as trained."""
    contract = settings.contract
    if contract is None or task in contract.tasks:
        return dataclasses.replace(settings, task=task)
    logger.warning(
        "%s: the model was trained for %s (%s), not %s: asking with %s; the model may not answer in the format",
        command, contract.task, CONTRACT_FILE, task,
        "--prompt" if settings.explicit_prompt else "the task's default prompt",
    )  # fmt: skip
    return dataclasses.replace(
        settings,
        task=task,
        prompt=settings.prompt if settings.explicit_prompt else None,
        answer_format="think" if settings.answer_format == contract.answer_format else settings.answer_format,
    )


def pick_task(settings: AskSettings, record_tasks: Sequence[str], explicit: str | None) -> str | None:
    """The task to evaluate: `explicit`, else the one trained task the records hold, else None (the
    command then infers it from the records: their single task, or an error asking for --task)."""
    if explicit:
        return explicit
    if settings.contract is not None:
        held = [t for t in settings.contract.tasks if t in set(record_tasks)]
        if len(held) == 1:
            return held[0]
    return None


def _show(value: Any, name: str) -> str:
    if name == "prompt":
        return json.dumps(value) if value else "(the task's default)"
    return str(value)


def apply_to_records(records: Sequence[Any], settings: AskSettings) -> list[Any]:
    """The records asked as `settings` say: the prompt template (an explicit one replaces the records'
    own prompts; the trained one fills records without a prompt) and, where records have the field,
    the answer format. Only records of the settings' task (all when it is None) are changed."""
    out, differ = [], 0
    has_format = "answer_format" in {f.name for f in dataclasses.fields(records[0])} if records else False
    for r in records:
        if settings.task is not None and r.task != settings.task:
            out.append(r)
            continue
        changes: dict[str, Any] = {}
        if settings.explicit_prompt:
            if r.prompt != settings.prompt:
                changes["prompt"] = settings.prompt
        elif r.prompt is None and settings.prompt is not None:
            changes["prompt"] = settings.prompt
        elif r.prompt is not None and settings.contract is not None and r.prompt != settings.prompt:
            differ += 1
        if has_format and getattr(r, "answer_format", None) is None and settings.answer_format != "think":
            changes["answer_format"] = settings.answer_format
        out.append(dataclasses.replace(r, **changes) if changes else r)
    if differ:
        logger.warning(
            "%d record(s) carry their own prompt, which differs from the training prompt %s; they are asked "
            "with their own (give --prompt to ask every record the same way)",
            differ, _show(settings.prompt, "prompt"),
        )  # fmt: skip
    return out


def _recorded_run(predictions: str) -> dict:
    """The ``run`` settings of the evaluation that wrote `predictions` (its ``metrics.json`` beside it),
    or {} when there is none."""
    path = Path(predictions).parent / "metrics.json"
    try:
        run = json.loads(path.read_text(encoding="utf-8")).get("run")
    except (OSError, ValueError, AttributeError, RecursionError):
        return {}
    return run if isinstance(run, dict) else {}


def recorded_coordinates(predictions: str | None) -> dict:
    """The coordinates the run that wrote `predictions` recorded: ``{"convention", "min_pixels",
    "max_pixels", "patch_factor", "source"}`` from its ``metrics.json`` beside it (a `vrft eval` output:
    convention, pixel budget, resize grid), else from the ``vrft.json`` of the model it names, else
    from ``final/vrft.json`` beside it (a training run's ``samples.jsonl``); None values when unknown."""
    run = _recorded_run(predictions) if predictions else {}
    source = f"{Path(predictions).parent / 'metrics.json'}" if run.get("convention") else None
    convention, budget = run.get("convention"), run.get("pixel_budget")
    lo, hi = (
        budget
        if isinstance(budget, list) and len(budget) == 2
        else (run.get("min_pixels"), run.get("max_pixels"))
    )
    model = run.get("model")
    candidates = [model] if isinstance(model, str) else []
    candidates += [Path(predictions).parent / "final"] if predictions else []
    for model_dir in candidates if convention is None else ():
        if not Path(model_dir).is_dir():
            continue
        contract = read_contract(model_dir)
        if contract is not None:
            source = str(Path(model_dir) / "vrft.json")
            convention, lo, hi = contract.coordinate_convention, contract.min_pixels, contract.max_pixels
            break
    good = [v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None for v in (lo, hi)]
    factor = run.get("patch_factor")
    return {"convention": convention if convention in ("norm1000", "pixels", "resized_pixels") else None,
            "min_pixels": good[0], "max_pixels": good[1],
            "patch_factor": factor if isinstance(factor, int) and factor > 0 else None, "source": source}  # fmt: skip
