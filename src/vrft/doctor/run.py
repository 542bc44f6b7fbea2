"""`vrft doctor`: sample a run's first prompts as `vrft train` would and say why its reward will not move.

`diagnose(cfg, records=N)` reads top to bottom:

1. the config is checked and its records loaded by `vrft.train.preflight` (as `vrft train` does);
2. the task, the rewards and their weights, the model, processor and coordinate convention, the
   coordinate frames and the GRPO dataset come from `vrft.train.builder` / `vrft.data.hf`, and the
   first N prompts are those the run visits first (`builder.prompt_order`);
3. each prompt (its image, or its images / video frames, as training shows them) goes through TRL's own
   message preparation and the processor's chat template, then G = grpo.num_generations completions are
   sampled with HF `generate` (G copies of the prompt in one batch, as TRL samples a group) under TRL's
   generation settings (temperature, top_p, top_k, max_completion_length, the image token suppressed),
   seeded by grpo.seed;
4. the run's reward functions score them with the dataset's reward columns, exactly as TRL calls them,
   and the weighted total is what GRPO's advantages are computed from;
5. the figures (`vrft.doctor.signals`, `vrft.doctor.memory`) and the findings (`vrft.doctor.verdict`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

from vrft.config import VrftConfig
from vrft.errors import ConfigError, UserError

logger = logging.getLogger(__name__)

#: Limits of --records and of grpo.num_generations for a doctor run (it samples N x G completions here).
MAX_RECORDS = 1024
MAX_GENERATIONS = 64

#: Box decodings compared by the convention check: the three configurable ones and 0..1 (norm1).
CHECKED_CONVENTIONS = ("norm1000", "resized_pixels", "pixels", "norm1")

BOX_TASKS = ("detection", "grounding")


@dataclass
class Sampled:
    """One prompt's G completions and everything measured about them."""

    record: Any
    prompt_tokens: int
    image_tokens: int
    first_image_token: int | None
    resized: tuple[int, int] | None
    texts: list[str]
    lengths: list[int]
    rewards: dict[str, list[float]]
    totals: list[float]
    parsed: list[Any] = field(default_factory=list)


def check_counts(records: int, num_generations: int) -> None:
    """UserError for --records or grpo.num_generations outside what a doctor run samples."""
    if not 1 <= records <= MAX_RECORDS:
        raise UserError(f"--records must be between 1 and {MAX_RECORDS}, got {records}")
    if not 2 <= num_generations <= MAX_GENERATIONS:
        raise ConfigError(
            f"grpo.num_generations: the doctor samples G = 2..{MAX_GENERATIONS} completions per prompt, got "
            f"{num_generations}; override it for the doctor run, e.g. grpo.num_generations=8"
        )


def diagnose(cfg: VrftConfig, *, records: int = 16, processes: int = 1) -> dict[str, Any]:
    """Sample and score the run's first `records` prompts; return the report dict (`doctor.json`)."""
    import torch

    from vrft.data.hf import build_grpo_dataset
    from vrft.data.visual_inputs import MediaBudget
    from vrft.train import builder
    from vrft.train.preflight import preflight
    from vrft.train.processes import resolve_precision

    check_counts(records, cfg.grpo.num_generations)
    checked = preflight(cfg)
    if records > len(checked.records):
        raise UserError(
            f"--records {records}: the run has only {len(checked.records)} training record(s) "
            f"({cfg.data.train}); use --records {len(checked.records)} or fewer"
        )
    task_name = checked.task_name
    task = builder.get_task(task_name, cfg.rewards.preset)
    reward_pairs, weights = builder.reward_functions(cfg, task_name)
    if cfg.tools.enabled:  # the rewards as a tools run calls them; the sampling stays one turn
        from vrft.rewards.tools import tool_reward_pairs

        reward_pairs = tool_reward_pairs(reward_pairs, weights)
        logger.warning(
            "vrft doctor: tools.enabled: each prompt is sampled for its first turn only, no tool is run (the "
            "training rollouts go on after a call); the rewards score that turn as a tools run would"
        )
    precision = resolve_precision(cfg.model.dtype, cfg.model.precision, cfg.model.lora.enabled)
    try:
        model, processor, convention = builder.load_policy(cfg, precision.weights)
    except UserError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(
            f"model.path: {cfg.model.path} does not load as a vision-language model ({first})"
        ) from None
    if torch.cuda.is_available():  # sample where training would run (the trainer moves it to its device)
        model.to("cuda")
    model.eval()
    frame_fn = builder.make_frame_fn(convention, processor)
    dataset = build_grpo_dataset(checked.records, task, frame_fn, MediaBudget.of(cfg.model))
    order = builder.prompt_order(
        len(dataset), cfg.grpo.prompts_per_step, epochs=cfg.grpo.epochs, max_steps=cfg.grpo.max_steps,
        seed=cfg.grpo.seed, shuffle=cfg.data.shuffle,
    )  # fmt: skip
    picked: list[int] = []
    for i in order:  # the first N distinct prompts the run visits
        if i not in picked:
            picked.append(i)
        if len(picked) == records:
            break
    by_id = {r.id: r for r in checked.records}
    torch.manual_seed(cfg.grpo.seed)
    sampled = []
    for i in picked:
        row = dataset[i]
        sampled.append(_sample(cfg, model, processor, row, by_id[row["record_id"]], reward_pairs, weights))
    for s in sampled:
        frame = frame_fn(s.record)
        s.parsed = [task.parse(t, frame) for t in s.texts]

    from vrft.doctor.report import build_report

    return build_report(
        cfg, task_name=task_name, task=task, convention=convention, sampled=sampled,
        reward_names=[n for n, _ in reward_pairs], weights=weights, model=model, processor=processor,
        precision=precision, processes=processes, frame_fn=frame_fn,
    )  # fmt: skip


def _generation_config(cfg: VrftConfig, model: Any, processor: Any):
    """TRL 1.16 GRPOTrainer's generation settings (transformers path) for this config (one sequence per
    prompt row: the caller repeats the prompt G times, as TRL does)."""
    from transformers import GenerationConfig

    tokenizer = getattr(processor, "tokenizer", processor)
    g = cfg.grpo
    eos = model.generation_config.eos_token_id if model.generation_config is not None else None
    if eos is None:
        eos = tokenizer.eos_token_id
    kwargs: dict[str, Any] = {
        "max_new_tokens": g.max_completion_length,
        "do_sample": True,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": eos,
        "temperature": g.temperature,
        "top_p": g.top_p,
        "top_k": g.top_k,
    }
    image_token = getattr(model.config, "image_token_id", None)
    if image_token is not None:  # TRL: a sampled image token would mismatch the image features
        kwargs["suppress_tokens"] = [int(image_token)]
    return GenerationConfig(**kwargs), ({eos} if isinstance(eos, int) else set(eos or []))


def _sample(cfg, model, processor, row, record, reward_pairs, weights) -> Sampled:
    import torch
    from trl.data_utils import prepare_multimodal_messages

    images = row["images"] if "images" in row else [row["image"]]  # several images / video frames, or one
    messages = prepare_multimodal_messages(row["prompt"], images=images)
    # The prompt G times in one batch, as TRL repeats each prompt per generation (not
    # `num_return_sequences`, whose expansion of the encoded images fails in transformers for a Qwen3-VL
    # without deepstack layers); left padding never applies, the G rows are the same.
    tokenized = processor.apply_chat_template(
        conversation=[messages] * cfg.grpo.num_generations,
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
    )
    ids = tokenized["input_ids"]
    image_token = getattr(model.config, "image_token_id", None)
    image_positions = (ids[0] == image_token).nonzero().flatten().tolist() if image_token is not None else []
    resized = None
    grid = tokenized.get("image_grid_thw")
    patch = getattr(getattr(processor, "image_processor", None), "patch_size", None)
    if grid is not None and patch:
        resized = (int(grid[0][2]) * int(patch), int(grid[0][1]) * int(patch))  # (width, height)
    config, eos = _generation_config(cfg, model, processor)
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    inputs = {
        k: (v.to(device=device, dtype=dtype) if v.is_floating_point() else v.to(device))
        for k, v in tokenized.items()
        if isinstance(v, torch.Tensor)
    }
    with torch.inference_mode():
        out = model.generate(**inputs, generation_config=config)
    completion_ids = []
    for seq in out[:, ids.shape[1] :].tolist():  # cut after the first EOS, as TRL does
        end = next((t + 1 for t, tok in enumerate(seq) if tok in eos), len(seq))
        completion_ids.append(seq[:end])
    lengths = [len(c) for c in completion_ids]  # no EOS: max_completion_length tokens
    texts = processor.batch_decode(completion_ids, skip_special_tokens=True)
    rewards = _score(row, texts, completion_ids, reward_pairs, cfg.grpo.num_generations)
    totals = []
    for j in range(len(texts)):
        vals = [w * rewards[name][j] for (name, _), w in zip(reward_pairs, weights)]
        finite = [v for v in vals if math.isfinite(v)]
        totals.append(sum(finite))  # TRL: nansum of the weighted rewards
    return Sampled(
        record=record, prompt_tokens=int(ids.shape[1]), image_tokens=len(image_positions),
        first_image_token=image_positions[0] if image_positions else None, resized=resized, texts=texts,
        lengths=lengths, rewards=rewards, totals=totals,
    )  # fmt: skip


def _score(row, texts, completion_ids, reward_pairs, g) -> dict[str, list[float]]:
    """Each reward on the G completions, called as TRL calls it: prompts, completions (conversational),
    completion_ids and every other dataset column, one value per completion. A reward that raises or
    returns None gives NaN (TRL would stop the run on the exception; the report names it)."""
    skip = {"prompt", "image", "images"}
    columns = {k: [v] * g for k, v in row.items() if k not in skip}
    prompts = [row["prompt"]] * g
    completions = [[{"role": "assistant", "content": t}] for t in texts]
    out: dict[str, list[float]] = {}
    for name, fn in reward_pairs:
        try:
            values = fn(prompts=prompts, completions=completions, completion_ids=completion_ids, **columns)
        except Exception as err:  # noqa: BLE001 - reported, never raised: the doctor diagnoses
            logger.warning("reward %s raised %s: %s", name, type(err).__name__, err)
            values = [None] * g
        out[name] = [float("nan") if v is None else float(v) for v in values]
    return out
