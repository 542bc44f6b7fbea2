"""Answering with tools at evaluation time (`vrft eval --tools`, `vrft predict --tools`).

`ToolGenerator` has the interface of `vrft.evaluate.runner.HFGenerator` (``generate(requests, desc) ->
list[str]``) so `vrft.evaluate.pipeline.evaluate_model` takes it as its ``generator``. Each request runs
the loop TRL runs in training, one request at a time: render the conversation with the tools' schemas
(the processor's chat template), generate greedily, parse the turn with TRL's `parse_response` (the
tokenizer's response template, `vrft.tools.support`), run the calls on a fresh environment
(`vrft.tools.env`, the same tools, budgets and errors as in training), append the results, and go on
until a turn calls no tool or ``max_calls + 1`` turns were written. The conversation is re-rendered from
the messages each turn (no token concatenation is needed here: nothing is trained).

It returns the FINAL answer of each request (what is scored: `vrft.tools.stats.trace_of`) and keeps,
per request in order, the messages (`messages`) and their `transcript` (`transcripts`), for
predictions, the report and the tool metrics (`tool_metrics`).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from vrft.tools.env import ToolSettings, tool_environment
from vrft.tools.stats import trace_of, transcript
from vrft.tools.trace import run_call


class ToolGenerator:
    """Greedy multi-turn generation with tools (see the module docstring).

    Args:
        model, processor: a loaded model and its processor, made ready with
            `vrft.tools.support.prepare_processor` (tool-capable template, response template).
        settings: the tools and budgets (`vrft.tools.env.ToolSettings`; from ``vrft.json`` or ``--tools``).
        progress: show a progress bar.
    """

    def __init__(self, model: Any, processor: Any, settings: ToolSettings, *, progress: bool = True) -> None:
        self.model = model
        self.processor = processor
        self.settings = settings
        self.environment = tool_environment(settings)
        # the tools in TRL's order (the environment's public methods by name), so the prompt is training's
        probe = self.environment()
        self.tools = [
            getattr(probe, n)
            for n, _ in inspect.getmembers(self.environment, predicate=inspect.isfunction)
            if not n.startswith("_") and n != "reset"
        ]
        self.progress = progress
        self.messages: list[list[dict[str, Any]]] = []
        self.transcripts: list[str] = []
        self.zooms: list[list[list[float]]] = []  # per request: its zoom_in regions in original pixels
        self._last_regions: list[list[float]] = []

    def generate(self, requests: Sequence[Any], desc: str = "generate") -> list[str]:
        """The final answers of `requests` (`vrft.evaluate.runner.Request`), in order."""
        from tqdm.auto import tqdm

        self.model.eval()
        out = []
        for r in tqdm(requests, desc=desc, disable=not self.progress, unit="req"):
            completion = self.answer(r.image, r.text, r.max_new_tokens, getattr(r, "system", None))
            self.messages.append(completion)
            self.zooms.append(self._last_regions)
            self.transcripts.append(transcript(completion))
            out.append(trace_of(completion).final)
        return out

    def annotate(self, rows: list[dict[str, Any]], metrics: dict[str, Any]) -> None:
        """`vrft.evaluate.pipeline.score_predictions`' hook: each row gets its ``turns`` (the transcript),
        ``tool_calls``, ``tool_images`` (`tool_thumbnails`) and ``zoom_regions`` (each successful
        zoom_in's region in pixels of the original image); ``metrics["tools"]`` gets `tool_metrics`, a row counting as correct when its
        score (accuracy, IoU, ...) is at least 0.5. Rows that do not match the requests one to one
        (detection's all-categories protocol adds unasked pairs) get no turns and no split."""
        matched = len(rows) == len(self.messages)
        correct: list[bool | None] = [None] * len(self.messages)
        if matched:
            for i, (row, completion) in enumerate(zip(rows, self.messages)):
                row["turns"] = transcript(completion)
                row["tool_calls"] = trace_of(completion).calls
                row["tool_images"] = tool_thumbnails(completion)
                row["zoom_regions"] = self.zooms[i] if i < len(self.zooms) else []
                score = row.get("score")
                correct[i] = None if score is None else float(score) >= 0.5
        metrics["tools"] = {**self.describe(), **tool_metrics(self.messages, correct)}

    def describe(self) -> dict[str, Any]:
        """The tools and budgets asked with (metrics.json)."""
        s = self.settings
        return {
            "names": list(s.names),
            "max_calls": s.max_calls,
            "max_images": s.max_images,
            "max_pixels": s.max_pixels,
        }

    def answer(self, image: Any, text: str, max_new_tokens: int, system: str | None = None) -> list[dict]:
        """The completion's messages (assistant turns and tool results) for one image and prompt."""
        import torch
        from trl.chat_template_utils import parse_response

        from vrft.evaluate.runner import load_image

        picture = load_image(image)
        env = self.environment()
        env.reset(image=picture)
        user = {
            "role": "user",
            "content": [{"type": "image", "image": picture}, {"type": "text", "text": text}],
        }
        conversation: list[dict[str, Any]] = ([{"role": "system", "content": system}] if system else []) + [
            user
        ]
        completion: list[dict[str, Any]] = []
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        device = next(self.model.parameters()).device
        for _ in range(self.settings.max_calls + 1):
            inputs = self.processor.apply_chat_template(
                conversation, tools=self.tools, add_generation_prompt=True, tokenize=True, return_dict=True,
                return_tensors="pt",
            )  # fmt: skip
            inputs = {k: v.to(device) if hasattr(v, "to") else v for k, v in inputs.items()}
            with torch.inference_mode():
                ids = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
            prompt = inputs["input_ids"][0].tolist()
            new = ids[0, len(prompt) :].tolist()
            turn = parse_response(tokenizer, new, prefix=prompt, tools=self.tools)
            completion.append(turn)
            conversation.append(turn)
            calls = turn.get("tool_calls") or []
            if not calls:
                break
            for call in calls:
                result = run_call(env, call)
                completion.append(result)
                conversation.append(result)
        self._last_regions = list(env.regions)
        return completion


def tool_metrics(completions: Sequence[Any], correct: Sequence[bool | None]) -> dict[str, Any]:
    """The tool use of an evaluation for metrics.json: ``call_rate`` (share of samples with a call),
    ``mean_calls`` per sample, and ``mean_calls_correct`` / ``mean_calls_wrong`` over the samples whose
    answer was right / wrong (None where none; a sample with ``correct`` None counts in neither)."""
    traces = [trace_of(c) for c in completions]
    n = len(traces)

    def mean(values: list[int]) -> float | None:
        return round(sum(values) / len(values), 4) if values else None

    return {
        "samples": n,
        "call_rate": round(sum(t.calls > 0 for t in traces) / n, 4) if n else None,
        "mean_calls": mean([t.calls for t in traces]),
        "mean_errors": mean([t.errors for t in traces]),
        "mean_calls_correct": mean([t.calls for t, ok in zip(traces, correct) if ok is True]),
        "mean_calls_wrong": mean([t.calls for t, ok in zip(traces, correct) if ok is False]),
    }


def tool_generator(
    option: str | None,
    contract_tools: dict[str, Any] | None,
    model: Any,
    processor: Any,
    convention: str,
    *,
    command: str = "vrft eval",
    progress: bool = True,
) -> ToolGenerator | None:
    """The `ToolGenerator` of `--tools` (``"zoom_in,rotate"``; ``"none"``: without tools) or, without
    the option, of the model's ``vrft.json`` tools; None when neither asks for tools. The budgets are the
    contract's, else the config defaults (3 calls, 2 images, the processor's pixel budget). UserError for
    a family TRL's tool template does not cover (`vrft.tools.support`)."""
    import logging

    from vrft.config import ToolsSection
    from vrft.models.load import frame_for, pixel_budget
    from vrft.tools import parse_tool_list, user_tools
    from vrft.tools.support import prepare_processor

    if option is not None and option.strip().lower() == "none":
        return None
    if option is None and contract_tools is None:
        return None
    names = parse_tool_list(option) if option is not None else list(contract_tools["names"])
    defaults = ToolsSection()
    budget = pixel_budget(processor)
    limits = contract_tools or {
        "max_calls": defaults.max_calls,
        "max_images": defaults.max_images,
        "max_pixels": int(budget[1]) if budget and budget[1] else 401408,
    }
    prepare_processor(processor, getattr(getattr(model, "config", None), "model_type", None))

    def frame_of(width: int, height: int):
        return frame_for(width, height, convention, processor)

    settings = ToolSettings(
        tuple(names), int(limits["max_calls"]), int(limits["max_images"]), int(limits["max_pixels"]), frame_of,
        user_tools(names),
    )  # fmt: skip
    logging.getLogger(__name__).info(
        "%s: answering with tools %s (at most %d calls, %d images of %d pixels; %s)", command, ", ".join(names),
        settings.max_calls, settings.max_images, settings.max_pixels,
        "--tools" if option is not None else "the model's vrft.json",
    )  # fmt: skip
    return ToolGenerator(model, processor, settings, progress=progress)


THUMBNAIL_SIDE = 128
"""Longest side of a tool image's thumbnail in predictions.jsonl and report.html (pixels)."""


def tool_thumbnails(completion: Any) -> list[str]:
    """The images the tools returned in a completion, in order, as small PNG data URIs
    (``data:image/png;base64,...``, longest side `THUMBNAIL_SIDE`) for the report."""
    import base64
    import io

    out = []
    for m in completion if isinstance(completion, list) else []:
        if not isinstance(m, dict) or m.get("role") != "tool" or not isinstance(m.get("content"), list):
            continue
        for block in m["content"]:
            image = block.get("image") if isinstance(block, dict) else None
            if image is None or not hasattr(image, "copy"):
                continue
            thumb = image.copy()
            thumb.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
            buf = io.BytesIO()
            thumb.convert("RGB").save(buf, format="PNG")
            out.append("data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii"))
    return out
