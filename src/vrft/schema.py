"""YAML + dotted `key=value` overrides -> a pydantic schema, with every problem at its file:line.

The loading machinery of `vrft.config` (the `vrft train` / `vrft sft` config) and of the demo's
settings (`vrft.demo.settings`): `read_source` (a YAML file through `vrft.inputs.read_yaml`, or a
mapping), `apply_overrides`, `validate_schema` (unknown keys with a "did you mean", wrong types,
missing keys, each named with the file:line of the key or the override that set it), and the
helpers that format problems (`join_problems`, `suggest`). It knows no schema of its own; `Section` is
the base of every section of both schemas (their shared rules: unknown keys, inf/nan, true/false).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from vrft.errors import ConfigError

_M = TypeVar("_M", bound=BaseModel)


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
        raise ConfigError(join_problems(problems))
    return data


def validate_schema(schema: type[_M], data: Mapping[str, Any], sources: dict[str, str], origin: str) -> _M:
    """`schema.model_validate(data)`; ConfigError lists every problem with its file:line or override
    and, for an unknown key, the closest known one. Any pydantic schema (the `vrft train` config, the
    demo's settings) gets the same messages."""
    try:
        return schema.model_validate(data)
    except ValidationError as err:
        raise ConfigError(join_problems(_schema_problems(err, sources, origin, schema))) from None


class Section(BaseModel):
    """Base of every config / demo-settings section: unknown keys are errors, assignments are validated,
    and a number key refuses inf / nan and YAML's true / false."""

    # allow_inf_nan=False: a float key (grpo.learning_rate, grpo.beta, rewards.weights, ...) set to
    # .inf / .nan is a schema error at check-config time, not a crash at training step 2.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        """pydantic takes ``true`` as 1 for an int or float key (``grpo.num_generations: true`` would train
        with G = 1): a key whose type holds a number and no bool refuses true / false, inside a list or a
        mapping too (``rewards.weights: {iou: true}``)."""
        field = cls.model_fields.get(info.field_name or "")
        if field is None or not _holds_number(field.annotation) or _takes_bool(field.annotation):
            return value
        where = _bool_inside(value)
        if where is not None:
            at = f" at {where}" if where else ""
            raise PydanticCustomError(
                "bool_for_number",
                "true/false{at} is not a number here (write the number itself, e.g. 1 or 0.5)",
                {"at": at},
            )
        return value


def _type_args(ann: Any) -> tuple[Any, ...]:
    from typing import get_args

    return get_args(ann)


def _holds_number(ann: Any) -> bool:
    """Whether a field type holds an int or a float anywhere (``int | None``, ``dict[str, float]``)."""
    if isinstance(ann, type) and not issubclass(ann, bool) and issubclass(ann, int | float):
        return True
    return any(_holds_number(a) for a in _type_args(ann))


def _takes_bool(ann: Any) -> bool:
    """Whether true / false is a value of a field type (``bool``, ``bool | str``, a nested section
    checks its own keys, ``Any``)."""
    from typing import get_origin

    if ann is bool or ann is Any or (isinstance(ann, type) and issubclass(ann, BaseModel)):
        return True
    if get_origin(ann) is Literal:
        return any(isinstance(a, bool) for a in _type_args(ann))
    return any(_takes_bool(a) for a in _type_args(ann))


def _bool_inside(value: Any, path: str = "") -> str | None:
    """Where a bool sits in a raw value: "" for the value itself, "key" / "key.sub" / "[i]" inside; None: nowhere."""
    if isinstance(value, bool):
        return path
    if isinstance(value, Mapping):
        items: Any = ((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
    elif isinstance(value, list | tuple):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for where, v in items:
        found = _bool_inside(v, where)
        if found is not None:
            return found
    return None


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


def join_problems(problems: list[str]) -> str:
    """One problem as is; several as a counted list (the shape of every ConfigError of a config)."""
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
    err: ValidationError, sources: dict[str, str], origin: str, schema: type[BaseModel]
) -> list[str]:
    problems = []
    for e in err.errors():
        loc = [str(p) for p in e["loc"]]
        dotted = ".".join(loc)
        at = source_of(sources, dotted) or origin
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


def source_of(sources: dict[str, str], dotted: str) -> str:
    """Where `dotted` was set: its own entry, else an override of a key below it (an unknown key
    `grpo.x` introduced by `grpo.x.y=1` is that override's fault), else the nearest key above it."""
    if dotted in sources:
        return sources[dotted]
    below = [v for k, v in sources.items() if k.startswith(dotted + ".")]
    if below:
        overrides = [v for v in below if v.startswith("override ")]
        return (overrides or below)[0]
    while dotted:
        if dotted in sources:
            return sources[dotted]
        dotted = dotted.rpartition(".")[0]
    return ""


def suggest(name: str, known: Mapping[str, Any] | Sequence[str]) -> str:
    """A " — did you mean 'X'?" hint naming the known name closest to `name`, or ''."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" — did you mean '{close[0]}'?" if close else ""


def type_name(ann: Any) -> str:
    """A short name of a field's type for `--keys` listings ('a|b' for a Literal)."""
    from typing import get_args, get_origin

    if get_origin(ann) is Literal:
        return "|".join(str(a) for a in get_args(ann))
    if isinstance(ann, type):
        return ann.__name__
    return str(ann).replace("typing.", "")
