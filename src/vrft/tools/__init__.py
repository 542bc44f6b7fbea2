"""Tools a model may call during a rollout ("thinking with images"), on TRL's `environment_factory`.

- `vrft.tools.ops`: the built-in image tools as pure functions, arguments checked before any pixel;
- `vrft.tools.env`: one rollout's environment (current image, counters, the tools as methods);
- `vrft.tools.support`: which model families TRL's tool loop can serve, and their chat templates;
- `vrft.tools.stats`: the final answer of a multi-turn completion and the per-step tool counters.

A tool is named in `tools.names` by its built-in name (`BUILTIN_TOOLS`) or as
``package.module:function`` (TRL's convention: type hints and a docstring with an ``Args:`` section).
User tools are trusted code, like user rewards (docs/inputs.md). No built-in tool reads or writes a file
or runs model-written code.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import Any

from vrft.errors import ConfigError
from vrft.inputs import import_user_module

# name -> what it does (a literal dict: the built-in tools; their code is vrft.tools.env / ops)
BUILTIN_TOOLS: dict[str, str] = {
    "zoom_in": "zoom_in(bbox_2d): the region, in the model's coordinates of the current image, enlarged to "
    "the tool pixel budget",
    "rotate": "rotate(degrees): 90, 180 or 270 degrees counter-clockwise",
    "adjust": "adjust(brightness, contrast): factors within [0.25, 4]",
    "flip": "flip(direction): horizontal or vertical mirror",
}


def name_problem(name: str) -> str | None:
    """Why `name` is not a tool name (None: a built-in, or written ``package.module:function``)."""
    if name in BUILTIN_TOOLS:
        return None
    if ":" in name:
        module, _, attr = name.partition(":")
        if module and attr and attr.isidentifier():
            return None
        return f"{name!r} is not written package.module:function"
    close = difflib.get_close_matches(name, BUILTIN_TOOLS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return (
        f"unknown tool {name!r}{hint}; built-in tools: {', '.join(BUILTIN_TOOLS)} "
        "(or write package.module:function)"
    )


def load_user_tool(name: str) -> Callable[..., Any]:
    """Import a ``package.module:function`` tool and check TRL's convention (a JSON schema can be made
    from its type hints and docstring); ConfigError saying what to fix otherwise."""
    from transformers.utils import get_json_schema

    from vrft.tools.env import user_method

    module, _, attr = name.partition(":")
    fn = getattr(import_user_module(module, f"tool {name!r}"), attr, None)
    if fn is None:
        raise ConfigError(f"tool {name!r}: module {module!r} has no {attr!r}")
    if not callable(fn):
        raise ConfigError(f"tool {name!r} is not callable")
    if fn.__name__ in BUILTIN_TOOLS:
        raise ConfigError(
            f"tool {name!r} has the name of the built-in tool {fn.__name__!r}; rename the function"
        )
    try:
        get_json_schema(user_method(fn.__name__, fn))
    except Exception as err:  # transformers' TypeHintParsingException / DocstringParsingException, NameError
        raise ConfigError(
            f"tool {name!r} does not follow TRL's tool convention ({err}): give every parameter a type hint and "
            "the function a docstring with an 'Args:' section describing each parameter"
        ) from err
    return fn


def user_tools(names: Sequence[str]) -> dict[str, Callable[..., Any]]:
    """The user tools among `names`, imported and checked: {configured name: function}."""
    return {n: load_user_tool(n) for n in names if n not in BUILTIN_TOOLS}


def parse_tool_list(text: str) -> list[str]:
    """``"zoom_in,rotate"`` -> ``["zoom_in", "rotate"]`` (blanks dropped); ConfigError for a bad name."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    problems = [p for p in map(name_problem, names) if p]
    if problems:
        raise ConfigError("; ".join(problems))
    return names


__all__ = ["BUILTIN_TOOLS", "load_user_tool", "name_problem", "parse_tool_list", "user_tools"]
