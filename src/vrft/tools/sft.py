"""SFT on tool traces (the cold start before GRPO with tools): records with a ``trace`` become whole
conversations whose tool results are made again by the real tools, never stored.

`build_trace_dataset` gives TRL's `SFTTrainer` a conversational vision dataset (``messages`` +
``images``), built lazily: when a row is read, the record's image is opened, a fresh environment
(`vrft.tools.env`, the run's tools and budgets) replays the trace (`vrft.tools.trace.play`), and the
conversation is: a system turn holding the tools' schemas exactly as the chat template writes them for
GRPO's and eval's prompts (`tools_system_text`), the user turn (image + the task's prompt), then the
assistant turns with their calls, the tool results (images + text) and the final answer. A record
without a trace is the user turn and its answer text. `vrft sft` trains with TRL's
``assistant_only_loss``: only the assistant turns are trained (TRL swaps in Qwen3-VL's training template,
with generation markers), never the tool results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from vrft.tools.trace import play


def tools_system_text(processor: Any, tools: Sequence[Callable[..., Any]]) -> str:
    """The system text the chat template writes when `tools` are offered (Qwen3-VL: ``# Tools ...``)."""
    rendered = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "text", "text": "x"}]}], tools=list(tools), tokenize=False
    )
    head = "<|im_start|>system\n"
    if not rendered.startswith(head) or "<|im_end|>" not in rendered:
        raise ValueError("the chat template does not open with a system turn listing the tools")
    return rendered[len(head) : rendered.index("<|im_end|>")]


def conversation(
    image: Any, prompt: str, trace: Sequence[dict[str, Any]] | None, answer: str, env: Any, system: str
) -> tuple[list[dict[str, Any]], list[Any]]:
    """(messages, images) of one record: the user turn's image is a placeholder filled from `images` (TRL's
    `prepare_multimodal_messages`); the tools' images stay inline in their tool turns."""
    images = [image]
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": [{"type": "text", "text": system}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]},
    ]
    if not trace:
        messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
        return messages, images
    env.reset(image=image)
    for m in play(trace, env):
        content = m.get("content")
        blocks = content if isinstance(content, list) else [{"type": "text", "text": str(content or "")}]
        shown = []
        for b in blocks:
            if (
                isinstance(b, dict) and b.get("image") is not None
            ):  # kept inline: TRL fills user placeholders only
                shown.append({"type": "image", "image": b["image"]})
            elif isinstance(b, dict) and isinstance(b.get("text"), str):
                shown.append({"type": "text", "text": b["text"]})
        messages.append({**m, "content": shown})
    return messages, images


def build_trace_dataset(records: Sequence[Any], task: Any, frame_fn: Callable[[Any], Any], environment: type,
                        system: str):  # fmt: skip
    """The lazy ``messages`` / ``images`` dataset of `records` (see the module docstring)."""
    import datasets

    from vrft.data.hf import load_rgb

    by_index = list(records)

    def rows(batch: dict[str, list]) -> dict[str, list]:
        out: dict[str, list] = {"messages": [], "images": []}
        for i in batch["index"]:
            r = by_index[i]
            frame = frame_fn(r)
            image = load_rgb(str(r.image_path))
            prompt = task.prompt(r, frame) if _takes_frame(task) else task.prompt(r)
            messages, images = conversation(
                image, prompt, r.trace, task.answer_text(r, frame), environment(), system
            )
            out["messages"].append(messages)
            out["images"].append(images)
        return out

    return datasets.Dataset.from_dict({"index": list(range(len(by_index)))}).with_transform(rows)


def _takes_frame(task: Any) -> bool:
    import inspect

    try:
        return len(inspect.signature(task.prompt).parameters) >= 2
    except (TypeError, ValueError):
        return False
