"""GRPO with tools: what `run_grpo` adds when `tools.enabled` (TRL's own tool loop, nothing forked).

`tool_run(cfg, model, processor, convention)` checks the family (`vrft.tools.support`: one line saying
why for a refused family), prepares the processor's chat/response templates, imports the user tools and
builds the `environment_factory` class; `run_grpo` then

- passes ``environment_factory=run.environment`` to `GRPOTrainer` and sets
  ``max_tool_calling_iterations = tools.max_calls + 1`` (the extra round lets the model read a "too many
  calls" error and still answer);
- lets the task's rewards score the final answer only (`vrft.rewards.tools.tool_reward_pairs`);
- feeds `run.stats` with every scored batch (the first reward is wrapped) and adds its per-step counters
  to metrics.jsonl (``train/tools/*``, next to TRL's ``train/tools/call_frequency`` and
  ``train/tools/failure_frequency``);
- stands every speed-up aside (`vrft.train.speed.TOOLS_PROBLEM`), logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from vrft.config import VrftConfig
from vrft.tools.stats import ToolStats

logger = logging.getLogger(__name__)


@dataclass
class ToolRun:
    """The parts of a tools run: the environment class, the counters, the loop bound, the logged lines."""

    environment: type
    stats: ToolStats
    max_iterations: int
    lines: list[str]


def tool_run(cfg: VrftConfig, model: Any, processor: Any, convention: str) -> ToolRun:
    """Everything `run_grpo` needs for `tools.enabled` (UserError for a family TRL's loop cannot serve)."""
    from vrft.models.load import frame_for
    from vrft.tools import user_tools
    from vrft.tools.env import ToolSettings, tool_environment
    from vrft.tools.support import prepare_processor

    t = cfg.tools
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    lines = prepare_processor(processor, model_type)

    def frame_of(width: int, height: int):
        return frame_for(width, height, convention, processor)

    settings = ToolSettings(
        names=tuple(t.names),
        max_calls=t.max_calls,
        max_images=t.max_images,
        max_pixels=t.max_pixels or cfg.model.max_pixels,
        frame_of=frame_of,
        user=user_tools(t.names),
    )
    line = (
        f"tools: {', '.join(t.names)} through TRL's tool loop (environment_factory), at most {t.max_calls} calls "
        f"and {t.max_images} images per rollout, {settings.max_pixels} pixels per tool image; the task's rewards "
        "score the final answer"
    )
    logger.info("%s", line)
    return ToolRun(tool_environment(settings), ToolStats(), t.max_calls + 1, [*lines, line])


def trace_dataset(cfg: VrftConfig, model: Any, processor: Any, convention: str, records, task, frame_fn):
    """`vrft sft` on records with a ``trace``: the conversations with tool results made by the run's tools
    (`vrft.tools.sft`). Needs `tools.enabled` (the tools and budgets) and a Qwen3-VL model."""
    from vrft.errors import ConfigError
    from vrft.tools.sft import build_trace_dataset, tools_system_text

    if not cfg.tools.enabled:
        raise ConfigError(
            f"{cfg.where('tools.enabled') or 'config'}: tools.enabled: records carry a tool 'trace'; set "
            "tools.enabled: true and tools.names to the tools the traces call (docs/tools.md)"
        )
    run = tool_run(cfg, model, processor, convention)
    instance = run.environment()
    tools = [getattr(instance, name) for name in _public_tools(run.environment)]
    logger.info("SFT on tool traces: the tool results are made by the tools %s", ", ".join(cfg.tools.names))
    return build_trace_dataset(records, task, frame_fn, run.environment, tools_system_text(processor, tools))


def _public_tools(environment: type) -> list[str]:
    import inspect

    return [n for n, _ in inspect.getmembers(environment, predicate=inspect.isfunction)
            if not n.startswith("_") and n != "reset"]  # fmt: skip
