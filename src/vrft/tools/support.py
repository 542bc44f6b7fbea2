"""Which model families TRL 1.16's tool loop can serve, and the chat/response templates it needs.

TRL's loop (`GRPOTrainer._tool_call_loop`) needs a chat template that renders the whole exchange
(user -> assistant with ``tool_calls`` -> tool, `trl.chat_template_utils.supports_tool_calling`), a
response template on the tokenizer to parse the calls out of a completion, and a prefix-preserving
template. Per family (decided from TRL's shipped templates, `trl/chat_templates/`):

- ``qwen3_vl``: SUPPORTED. Its official template (``qwen3_vl.jinja``) renders tools, ``<tool_call>`` JSON
  calls and ``<tool_response>`` blocks with images. A model whose own template cannot render tool calls
  (vrft's tiny Qwen3-VL) gets that official template; the saved model keeps it.
- ``qwen2_vl``, ``qwen2_5_vl``: REFUSED. Their official template (``qwen2_5_vl.jinja``) has no tool
  blocks, so the model was never shown a tool call in its format; giving it another family's template
  would train a format the base model has never seen, silently.
- ``smolvlm``: REFUSED. Its template (``smolvlm.jinja``) has no tool blocks either.

The response template is vrft's own (`RESPONSE_TEMPLATE`, the documented transformers mechanism): the
Qwen3 one that TRL would pick, WITHOUT splitting ``<think>`` into ``reasoning_content``, so the final
answer's text keeps vrft's ``<think>..</think> <answer>..</answer>`` shape for the format rewards.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from vrft.errors import UserError

logger = logging.getLogger(__name__)

TOOL_FAMILIES: dict[str, str] = {
    "qwen3_vl": "Qwen3-VL's official chat template (trl/chat_templates/qwen3_vl.jinja) renders tool calls and "
    "tool results with images",
}
REFUSED: dict[str, str] = {
    "qwen2_vl": "Qwen2-VL's official chat template has no tool blocks (like trl/chat_templates/qwen2_5_vl.jinja), "
    "so TRL's tool loop can neither render nor parse a tool call in its format",
    "qwen2_5_vl": "Qwen2.5-VL's official chat template (trl/chat_templates/qwen2_5_vl.jinja) has no tool blocks, "
    "so TRL's tool loop can neither render nor parse a tool call in its format",
    "smolvlm": "SmolVLM's chat template (trl/chat_templates/smolvlm.jinja) has no tool blocks, so TRL's tool loop "
    "can neither render nor parse a tool call in its format",
}

RESPONSE_TEMPLATE: dict[str, Any] = {
    "defaults": {"role": "assistant"},
    "start_anchor": "<|im_start|>assistant\n",
    "fields": {
        "tool_calls": {
            "open": "<tool_call>",
            "close_pattern": r"</tool_call>\s*",
            "repeats": True,
            "content": "json",
            "transform": {"type": "function", "function": "{content}"},
        },
        "content": {"close_pattern": r"<\|im_end\|>\s*", "content": "text"},
    },
}
"""Qwen3's tool-call response template (trl.chat_template_utils.qwen3_template) minus the think split."""


def tool_problem(model_type: str | None) -> str | None:
    """One line saying why tools cannot train this family (None: supported)."""
    if model_type in TOOL_FAMILIES:
        return None
    why = REFUSED.get(
        model_type or "", f"no tool-capable chat template is known for model_type {model_type!r}"
    )
    return f"tools.enabled needs a Qwen3-VL model: {why}"


def official_template() -> str:
    """Qwen3-VL's official chat template as TRL ships it."""
    import trl

    return (Path(trl.__file__).parent / "chat_templates" / "qwen3_vl.jinja").read_text(encoding="utf-8")


def prepare_processor(processor: Any, model_type: str | None) -> list[str]:
    """Make `processor` ready for TRL's tool loop, or raise UserError (one line) for a refused family.

    Installs Qwen3-VL's official template when the model's own cannot render tool calls, and vrft's
    response template on the tokenizer. Returns the lines it logged.
    """
    from trl.chat_template_utils import is_chat_template_prefix_preserving, supports_tool_calling

    problem = tool_problem(model_type)
    if problem:
        raise UserError(problem)
    lines = []
    tokenizer = getattr(processor, "tokenizer", processor)
    if not supports_tool_calling(processor):
        template = official_template()
        processor.chat_template = template
        tokenizer.chat_template = template
        lines.append(
            "tools: the model's chat template cannot render tool calls; using Qwen3-VL's official template "
            "(trl/chat_templates/qwen3_vl.jinja), saved with the trained model"
        )
    tokenizer.response_template = RESPONSE_TEMPLATE
    if not is_chat_template_prefix_preserving(processor):
        lines.append(
            "tools: the chat template is not prefix-preserving; TRL trains with its training template"
        )
    for line in lines:
        logger.info("%s", line)
    return lines
