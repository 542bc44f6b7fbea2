"""Batched generation for evaluation: Hugging Face ``generate`` (default) or vLLM (optional).

A `Request` is one user turn ``[image, text]`` (the training prompt layout, no system prompt of
our own; the model's chat template applies its default), or, for a record with several images or a
video (`Request.visuals`, `request_for`), each image or sampled frame after its caption then the text,
exactly as training shows it (`vrft.data.visual_inputs`: video-as-frames), optionally after a system turn
(``Request.system``: the reference's LISA inference, ``vrft eval --paper``). `HFGenerator` batches
requests (LEFT padding, greedy unless asked otherwise), stops each sequence at ``</answer>`` or EOS,
and returns the completion text of every request in input order. Requests are grouped by their token budget
and sorted by prompt size so that a batch pads little; the output order is the input order.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vrft.errors import UserError

logger = logging.getLogger(__name__)

STOP_STRINGS = ("</answer>",)


@dataclass(frozen=True)
class Request:
    """One generation request: an image (path or PIL image), the user text, the token budget and an
    optional system prompt (None: the chat template's default). ``visuals``: a
    `vrft.data.visual_inputs.visual_spec` (several images, or a video's sampled frames, decoded when
    the request's batch runs) instead of ``image`` (then None)."""

    image: Any
    text: str
    max_new_tokens: int
    system: str | None = None
    visuals: dict | None = None

    def images(self) -> list[Any]:
        """The RGB PIL images of the request, in placeholder order (UserError on a bad file)."""
        if self.visuals is None:
            return [load_image(self.image)]
        from vrft.data.visual_inputs import load_visuals
        from vrft.errors import DataError

        try:
            return load_visuals(self.visuals)
        except DataError as err:
            raise UserError(str(err)) from None


def request_for(
    record: Any, text: str, max_new_tokens: int, system: str | None = None, media: Any = None
) -> Request:
    """The `Request` asking `record` with `text`: its one image, or its images / sampled video frames
    under `media` (a `vrft.data.visual_inputs.MediaBudget`; None: the defaults), as training shows them."""
    from vrft.data.visual_inputs import MediaBudget, is_single_image, visual_spec

    if is_single_image(record):
        return Request(record.resolved_image(), text, max_new_tokens, system)
    return Request(None, text, max_new_tokens, system, visual_spec(record, media or MediaBudget()))


def messages_for(text: str, system: str | None = None, visuals: dict | None = None) -> list[dict]:
    """The conversational user turn ``[image, text]`` used for training and evaluation alike (with
    `visuals`: each image after its caption, `vrft.data.visual_inputs.user_content`), after a system
    turn when `system` is given."""
    from vrft.data.visual_inputs import user_content

    user = {"role": "user", "content": user_content(text, visuals)}
    if system is None:
        return [user]
    return [{"role": "system", "content": system}, user]


def load_image(image: Any):
    """A PIL RGB image from a path or an image (raises UserError naming a missing/unreadable file).
    Both go through the one image reader (`vrft.inputs.open_image`), so an image given as a PIL object
    is converted exactly as one read from a file (transparency, 16-bit, ...)."""
    from vrft.inputs import open_image

    return open_image(image, error=UserError)


def _trim(text: str, stops: Sequence[str]) -> str:
    """Cut the text right after the first stop string (a token may carry text past it)."""
    cut = len(text)
    for s in stops:
        i = text.find(s)
        if i >= 0:
            cut = min(cut, i + len(s))
    return text[:cut]


class HFGenerator:
    """Batched `model.generate` with a processor that pads on the left.

    Args:
        model: an image-text-to-text model (eval mode is set here).
        processor: its processor (left padding; see `vrft.models.load.check_processor`).
        batch_size: requests per `generate` call.
        do_sample: sample instead of greedy decoding; `temperature` / `top_p` then apply.
        stop_strings: generation stops once a sequence has produced one of these (default
            ``</answer>``); EOS stops it too.
        progress: show a tqdm progress bar.
    """

    def __init__(
        self,
        model: Any,
        processor: Any,
        *,
        batch_size: int = 16,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        stop_strings: Sequence[str] = STOP_STRINGS,
        progress: bool = True,
    ) -> None:
        from vrft.models.load import check_processor

        if batch_size < 1:
            raise UserError(f"--batch-size must be >= 1, got {batch_size}")
        check_processor(processor)
        self.model = model
        self.processor = processor
        self.batch_size = int(batch_size)
        self.do_sample = do_sample
        self.temperature = temperature
        self.top_p = top_p
        self.stop_strings = tuple(stop_strings)
        self.progress = progress

    def _chat(self, text: str, system: str | None = None, visuals: dict | None = None) -> str:
        return self.processor.apply_chat_template(
            messages_for(text, system, visuals), tokenize=False, add_generation_prompt=True
        )

    def _generate_batch(self, batch: Sequence[Request]) -> list[str]:
        import torch

        images = [r.images() for r in batch]
        texts = [self._chat(r.text, r.system, r.visuals) for r in batch]
        # The images of each prompt as a nested list: the form every image-text processor accepts
        # (Idefics3 / SmolVLM needs it; Qwen flattens it).
        inputs = self.processor(text=texts, images=images, padding=True, return_tensors="pt")
        device = next(self.model.parameters()).device
        dtype = next(self.model.parameters()).dtype
        inputs = {
            k: (v.to(device=device, dtype=dtype) if v.is_floating_point() else v.to(device))
            for k, v in inputs.items()
            if hasattr(v, "to")
        }
        kwargs: dict[str, Any] = {
            "max_new_tokens": max(r.max_new_tokens for r in batch),
            "do_sample": self.do_sample,
        }
        if self.do_sample:
            kwargs.update(temperature=self.temperature, top_p=self.top_p)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if self.stop_strings:
            kwargs.update(stop_strings=list(self.stop_strings), tokenizer=self.processor.tokenizer)
        with torch.inference_mode():
            out = self.model.generate(**inputs, **kwargs)
        new_tokens = out[:, inputs["input_ids"].shape[1] :]
        decoded = self.processor.batch_decode(new_tokens, skip_special_tokens=True)
        return [_trim(t, self.stop_strings) for t in decoded]

    def generate(self, requests: Sequence[Request], desc: str = "generate") -> list[str]:
        """Completions for `requests`, in the same order."""
        from tqdm.auto import tqdm

        self.model.eval()
        order = sorted(
            range(len(requests)), key=lambda i: (requests[i].max_new_tokens, len(requests[i].text))
        )
        batches: list[list[int]] = []
        for i in order:
            if (
                batches
                and len(batches[-1]) < self.batch_size
                and requests[batches[-1][0]].max_new_tokens == requests[i].max_new_tokens
            ):
                batches[-1].append(i)
            else:
                batches.append([i])
        results: list[str | None] = [None] * len(requests)
        with tqdm(total=len(requests), desc=desc, disable=not self.progress, unit="req") as bar:
            for idx in batches:
                for i, text in zip(idx, self._generate_batch([requests[i] for i in idx])):
                    results[i] = text
                bar.update(len(idx))
        return [r if r is not None else "" for r in results]


def vllm_device(device: str) -> None:
    """UserError unless `--device` is one vLLM can honour here ("auto" or "cuda"; vLLM picks the GPU)."""
    if device in ("auto", "cuda"):
        return
    if device.startswith("cuda:"):
        index = device.partition(":")[2]
        raise UserError(
            f"--device {device}: vLLM does not take a GPU index; run with CUDA_VISIBLE_DEVICES={index} and "
            "--device cuda (or auto)"
        )
    raise UserError(
        f"--device {device}: --backend vllm runs on CUDA GPUs only; use --backend hf --device {device}"
    )


class VLLMGenerator:
    """Generation with vLLM (``pip install 'vrft[vllm]'``, a CUDA GPU); same interface as `HFGenerator`.

    Greedy by default, stops at ``</answer>`` (kept in the text) or EOS.

    Args:
        model_path: the local model directory.
        processor: the processor the answers are decoded with (chat template; its pixel budget).
        batch_size: the most sequences vLLM runs at once (`max_num_seqs`); None: vLLM's default.
        pixel_budget: (min_pixels, max_pixels) the images are resized to (Qwen-VL families), passed to vLLM
            as `mm_processor_kwargs`: it must be the budget the decoding frame is built from
            (`vrft.models.load.pixel_budget(processor)`), or boxes in resized pixels are read in another
            frame than the model saw. None: the family has no pixel budget.
        device: "auto" or "cuda" (others refused: `vllm_device`).
        max_images: the most images one prompt shows (several images, or a video's sampled frames).
    """

    def __init__(
        self,
        model_path: str | os.PathLike,
        processor: Any,
        *,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        stop_strings: Sequence[str] = STOP_STRINGS,
        gpu_memory_utilization: float = 0.85,
        dtype: str = "auto",
        batch_size: int | None = None,
        pixel_budget: tuple[int, int] | None = None,
        device: str = "auto",
        max_images: int = 1,
        **llm_kwargs: Any,
    ) -> None:
        vllm_device(device)
        if batch_size is not None and batch_size < 1:
            raise UserError(f"--batch-size must be >= 1, got {batch_size}")
        try:
            from vllm import LLM
        except ImportError:
            raise UserError(
                "--backend vllm needs vLLM: pip install 'vrft[vllm]' (CUDA GPU required); or use --backend hf"
            ) from None
        self.processor = processor
        self.do_sample = do_sample
        self.temperature = temperature
        self.top_p = top_p
        self.stop_strings = tuple(stop_strings)
        if batch_size is not None:
            llm_kwargs.setdefault("max_num_seqs", int(batch_size))
        if pixel_budget is not None:
            lo, hi = (int(x) for x in pixel_budget)
            llm_kwargs.setdefault("mm_processor_kwargs", {"min_pixels": lo, "max_pixels": hi})
        self.llm_kwargs = dict(llm_kwargs)
        self.llm = LLM(
            model=str(Path(model_path)),
            limit_mm_per_prompt={"image": int(max_images)},
            gpu_memory_utilization=gpu_memory_utilization,
            dtype=dtype,
            **llm_kwargs,
        )

    def generate(self, requests: Sequence[Request], desc: str = "generate") -> list[str]:
        """Completions for `requests`, in the same order."""
        from vllm import SamplingParams

        results: list[str] = [""] * len(requests)
        budgets = sorted({r.max_new_tokens for r in requests})
        for budget in budgets:
            idx = [i for i, r in enumerate(requests) if r.max_new_tokens == budget]
            params = SamplingParams(
                max_tokens=budget,
                temperature=self.temperature if self.do_sample else 0.0,
                top_p=self.top_p if self.do_sample else 1.0,
                stop=list(self.stop_strings),
                include_stop_str_in_output=True,
            )
            prompts = [
                {
                    "prompt": self.processor.apply_chat_template(
                        messages_for(requests[i].text, requests[i].system, requests[i].visuals),
                        tokenize=False,
                        add_generation_prompt=True,
                    ),
                    "multi_modal_data": {"image": _vllm_images(requests[i])},
                }
                for i in idx
            ]
            logger.info("%s: %d requests with vLLM (max %d new tokens)", desc, len(idx), budget)
            for i, out in zip(idx, self.llm.generate(prompts, params)):
                results[i] = out.outputs[0].text
        return results


def _vllm_images(request: Request) -> Any:
    """vLLM's ``multi_modal_data["image"]``: one image, or the list of a request's images / frames."""
    images = request.images()
    return images[0] if request.visuals is None else images


BACKENDS = ("hf", "vllm")
