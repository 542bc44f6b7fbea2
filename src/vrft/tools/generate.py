"""Answering with tools at evaluation time (`vrft eval --tools`, `vrft predict --tools`).

`ToolGenerator` has the interface of `vrft.evaluate.runner.HFGenerator` (``generate(requests, desc) ->
list[str]``) so `vrft.evaluate.pipeline.evaluate_model` takes it as its ``generator``. Each request runs
the loop TRL runs in training: render the conversation with the tools' schemas (the processor's chat
template), generate greedily, parse the turn with TRL's `parse_response` (the tokenizer's response
template, `vrft.tools.support`), run the calls on the request's own environment (`vrft.tools.env`, the same
tools, budgets and errors as in training), append the results, and go on until a turn calls no tool or
``max_calls + 1`` turns were written. Up to ``batch_size`` requests go together: one left-padded
`generate` per round over the requests still answering; a finished request's place goes to the next one.
The conversation is re-rendered from the messages each turn (no token concatenation is needed here:
nothing is trained).

It returns the FINAL answer of each request (what is scored: `vrft.tools.stats.trace_of`) and keeps,
per request in order, the messages (`messages`) and their `transcript` (`transcripts`), for
predictions, the report and the tool metrics (`tool_metrics`).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
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
        batch_size: requests answered together (one padded `generate` per turn over the active ones).
        progress: show a progress bar.
    """

    def __init__(
        self,
        model: Any,
        processor: Any,
        settings: ToolSettings,
        *,
        batch_size: int = 16,
        progress: bool = True,
    ) -> None:
        from vrft.errors import UserError
        from vrft.models.load import check_processor

        if batch_size < 1:
            raise UserError(f"--batch-size must be >= 1, got {batch_size}")
        check_processor(processor)
        self.batch_size = int(batch_size)
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

    def generate(self, requests: Sequence[Any], desc: str = "generate") -> list[str]:
        """The final answers of `requests` (`vrft.evaluate.runner.Request`), in order.

        Up to `batch_size` requests are answered together: each round renders every active request's
        conversation, runs ONE padded greedy `generate` over them, parses each row's turn and runs its calls on
        the request's own environment; a request whose turn called no tool (or that wrote ``max_calls + 1``
        turns) leaves, and the next pending request takes its place in the following round."""
        from collections import deque

        from tqdm.auto import tqdm

        self.model.eval()
        n = len(requests)
        done: list[_Run | None] = [None] * n
        # equal token budgets together (one generate serves the largest; each row is cut to its own)
        pending = deque(sorted(range(n), key=lambda i: requests[i].max_new_tokens))
        active: list[_Run] = []
        with tqdm(total=n, desc=desc, disable=not self.progress, unit="req") as bar:
            while pending or active:
                while pending and len(active) < self.batch_size:
                    i = pending.popleft()
                    active.append(self._start(i, requests[i]))
                self._round(active)
                for run in active:
                    if run.finished:
                        done[run.index] = run
                        bar.update(1)
                active = [run for run in active if not run.finished]
        out = []
        for run in done:
            assert run is not None
            self.messages.append(run.completion)
            self.zooms.append(list(run.env.regions))
            self.transcripts.append(transcript(run.completion))
            out.append(trace_of(run.completion).final)
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
        run = self._start(0, _Single(image, text, max_new_tokens, system))
        while not run.finished:
            self._round([run])
        return run.completion

    def _start(self, index: int, request: Any) -> _Run:
        """A request's state: its own environment reset on its image, and the conversation so far."""
        from vrft.evaluate.runner import load_image

        picture = load_image(request.image)
        env = self.environment()
        env.reset(image=picture)
        system = getattr(request, "system", None)
        user = {
            "role": "user",
            "content": [{"type": "image", "image": picture}, {"type": "text", "text": request.text}],
        }
        conversation = ([{"role": "system", "content": system}] if system else []) + [user]
        return _Run(index, env, conversation, int(request.max_new_tokens))

    def _round(self, runs: Sequence[_Run]) -> None:
        """One turn for each of `runs` (none finished): one padded batch, one greedy `generate`; each row's
        new tokens (up to its end of turn) are parsed against its own unpadded prompt, and its calls run."""
        import torch
        from trl.chat_template_utils import parse_response

        texts = [
            self.processor.apply_chat_template(
                run.conversation, tools=self.tools, add_generation_prompt=True, tokenize=False
            )
            for run in runs
        ]
        images = [conversation_images(run.conversation) for run in runs]
        # the processor pads on the left (`check_processor`), so every row's new tokens start at one column
        inputs = self.processor(text=texts, images=images, padding=True, return_tensors="pt")
        device = next(self.model.parameters()).device
        inputs = {k: v.to(device) if hasattr(v, "to") else v for k, v in inputs.items()}
        budget = max(run.max_new_tokens for run in runs)
        with torch.inference_mode():
            ids = self.model.generate(**inputs, max_new_tokens=budget, do_sample=False)
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        ends = _end_ids(self.model)
        width = inputs["input_ids"].shape[1]
        for row, run in enumerate(runs):
            prompt = inputs["input_ids"][row][inputs["attention_mask"][row].bool()].tolist()
            new = _until_end(ids[row, width:].tolist()[: run.max_new_tokens], ends)
            turn = parse_response(tokenizer, new, prefix=prompt, tools=self.tools)
            run.completion.append(turn)
            run.conversation.append(turn)
            run.turns += 1
            calls = turn.get("tool_calls") or []
            for call in calls:
                result = run_call(run.env, call)
                run.completion.append(result)
                run.conversation.append(result)
            run.finished = not calls or run.turns >= self.settings.max_calls + 1


@dataclass
class _Run:
    """One request being answered: its index, environment, conversation (prompt and turns), completion."""

    index: int
    env: Any
    conversation: list[dict[str, Any]]
    max_new_tokens: int
    completion: list[dict[str, Any]] = field(default_factory=list)
    turns: int = 0
    finished: bool = False


@dataclass
class _Single:
    """`ToolGenerator.answer`'s request."""

    image: Any
    text: str
    max_new_tokens: int
    system: str | None = None


def conversation_images(conversation: Sequence[dict[str, Any]]) -> list[Any]:
    """The images of a conversation in the order the chat template places them: message by message (the
    user's image, then each tool result's), block by block."""
    return [
        block["image"]
        for message in conversation
        if isinstance(message.get("content"), list)
        for block in message["content"]
        if isinstance(block, dict) and block.get("type") == "image"
    ]


def _end_ids(model: Any) -> set[int]:
    """The token ids that end a sequence in `model.generate` (its generation config's EOS)."""
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if eos is None:
        return set()
    return {int(eos)} if isinstance(eos, int) else {int(e) for e in eos}


def _until_end(tokens: list[int], ends: set[int]) -> list[int]:
    """`tokens` up to and including the first end token: a finished row of a batch is padded after it, a
    row generated alone is not."""
    for k, token in enumerate(tokens):
        if token in ends:
            return tokens[: k + 1]
    return tokens


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
    batch_size: int = 16,
    progress: bool = True,
) -> ToolGenerator | None:
    """The `ToolGenerator` of `--tools` (``"zoom_in,rotate"``; ``"none"``: without tools) or, without
    the option, of the model's ``vrft.json`` tools; None when neither asks for tools. The budgets are the
    contract's, else the config defaults (3 calls, 2 images, the processor's pixel budget); `batch_size`
    requests are answered together (`ToolGenerator`). UserError for
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
    return ToolGenerator(model, processor, settings, batch_size=batch_size, progress=progress)


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
