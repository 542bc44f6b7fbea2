"""Visual-RFT: GRPO with verifiable rewards, on TRL's `GRPOTrainer` (no fork, no patch).

`run_grpo(cfg)` reads top to bottom:

1. check the config against the world, every problem at once (`vrft.train.preflight`: the records and
   image headers are read there, once), and the number of processes; prepare the output directory
   and resolve resume (`vrft.train.run_dir`);
2. records of the task -> prompts, images and reward columns (`vrft.data.hf.build_grpo_dataset`);
3. the task's rewards with the configured preset and weights, each wrapped in `NamedReward` (stable
   metric names, samples for people, non-finite values dropped);
4. TRL arguments (before the model: DeepSpeed ZeRO-3 partitions the weights as they load);
5. the model and processor from a LOCAL directory (left padding), frozen vision tower / LoRA if asked;
6. `GRPOTrainer(...).train(resume_from_checkpoint=...)` with callbacks writing `metrics.jsonl` (with the
   step-time split and the learning signals of `vrft.train.step_signals`: zero-sd share, truncation,
   parse failures by reason, a warning when the groups stay flat), `samples.jsonl` (with each
   completion's GRPO advantage) and one log line per step (`vrft.train.run_log`);
7. the final model in `<output.dir>/final` with `vrft.json` (how the model must be asked, also in every
   checkpoint), `samples.html`, `config.resolved.yaml` (`vrft.train.finalize`), `summary.json`,
   `curves.png` and a summary line (`vrft.train.run_log.finish_run`); the output directory is released
   in a `finally`, also when the run fails.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from vrft.config import VrftConfig
from vrft.outputs import atomic_write_text
from vrft.rewards.tools import tool_reward_pairs
from vrft.tools.stats import final_of_transcript, transcript
from vrft.train import builder, speed
from vrft.train.callbacks import MetricsWriter, NamedReward, SampleRecorder, SampleWriter, truncate_jsonl
from vrft.train.checkpoints import checkpoint_step
from vrft.train.contract import ContractWriter, contract_tools, save_contract, training_contract
from vrft.train.finalize import save_final, write_rank_checksum, write_samples_html
from vrft.train.preflight import preflight, run_inputs
from vrft.train.processes import (
    Precision,
    gradient_accumulation,
    is_main_process,
    resolve_precision,
    shared_trainer_args,
    world_size,
)
from vrft.train.run_dir import prepare_output_dir, release_output_dir, schedule_of
from vrft.train.run_log import StepLine, finish_run, quiet_run, quiet_trainer
from vrft.train.step_signals import FlatWatch, StepSignals
from vrft.train.timing import StepTimer
from vrft.train.tool_setup import tool_run

logger = logging.getLogger(__name__)


def grpo_args(cfg: VrftConfig, out: Path, accumulation: int, precision: Precision, weights: list[float]):
    """TRL `GRPOConfig` for the config (batch sizes in completions: per-device prompts x G)."""
    from trl import GRPOConfig

    g = cfg.grpo
    return GRPOConfig(
        output_dir=str(out),
        seed=g.seed,
        # batches: one optimizer step sees grpo.prompts_per_step prompts x G completions
        num_generations=g.num_generations,
        per_device_train_batch_size=g.per_device_prompts * g.num_generations,
        gradient_accumulation_steps=accumulation,
        shuffle_dataset=False,  # the order is laid out by builder.prompt_order (exact resume)
        # rollouts
        max_completion_length=g.max_completion_length,
        temperature=g.temperature,
        top_p=g.top_p,
        top_k=g.top_k,
        use_vllm=g.use_vllm,
        vllm_mode=g.vllm_mode,
        vllm_server_host=g.vllm_server_host,
        vllm_server_port=g.vllm_server_port,
        vllm_gpu_memory_utilization=g.vllm_gpu_memory_utilization,
        # objective
        beta=g.beta,
        num_iterations=g.num_iterations,
        epsilon=g.epsilon,
        epsilon_high=g.epsilon_high,
        loss_type=g.loss_type,
        importance_sampling_level=g.importance_sampling_level,
        delta=g.delta,
        sapo_temperature_pos=g.sapo_temperature_pos,
        sapo_temperature_neg=g.sapo_temperature_neg,
        vespo_k_pos=g.vespo_k_pos,
        vespo_lambda_pos=g.vespo_lambda_pos,
        vespo_k_neg=g.vespo_k_neg,
        vespo_lambda_neg=g.vespo_lambda_neg,
        scale_rewards=g.scale_rewards,
        mask_truncated_completions=g.mask_truncated_completions,
        reward_weights=weights,
        disable_dropout=True,
        # optimisation
        learning_rate=g.learning_rate,
        lr_scheduler_type=g.lr_scheduler,
        warmup_steps=g.warmup,
        weight_decay=g.weight_decay,
        max_grad_norm=g.max_grad_norm,
        max_steps=g.max_steps or -1,
        num_train_epochs=1,  # all passes are laid out in the dataset (builder.prompt_order)
        log_completions=False,
        **shared_trainer_args(cfg, precision),
        disable_tqdm=True,  # one line per logging step instead (vrft.train.run_log.StepLine)
    )


def run_grpo(cfg: VrftConfig, *, extra_callbacks: list[Any] | None = None, trainer_hook=None) -> Path:
    """Train with Visual-RFT (GRPO) as `cfg` says; return the directory of the final model.

    Args:
        cfg: a loaded config (`vrft.config.load_config`); `vrft.train.preflight` checks it against the
            world here (and loads its records, once).
        extra_callbacks: more `transformers.TrainerCallback`s (e.g. a benchmark's).
        trainer_hook: called with the built `GRPOTrainer` before training (tests, benchmarks).
    Returns:
        `<output.dir>/final`: the trained model and processor (LoRA: merged; the adapter is in
        `<output.dir>/adapter`). The run directory (its parent) also holds metrics.jsonl, samples.jsonl,
        samples.html, config.resolved.yaml and the checkpoints.
    """
    checked = preflight(cfg)
    processes = world_size()
    accumulation = gradient_accumulation(cfg.grpo.prompts_per_step, cfg.grpo.per_device_prompts, processes)
    out, checkpoint = prepare_output_dir(
        cfg.output.dir, cfg.output.resume, cfg.output.overwrite, inputs=run_inputs(cfg), owner="train",
        report_to=cfg.output.report_to, schedule=schedule_of(cfg),
    )  # fmt: skip
    try:
        with quiet_run():  # no per-step deprecation warning, short key lists on a resume
            return _train(cfg, checked, out, checkpoint, processes, accumulation, extra_callbacks, trainer_hook)
    finally:
        release_output_dir(out)


def _train(cfg, checked, out, checkpoint, processes, accumulation, extra_callbacks, trainer_hook) -> Path:
    from trl import GRPOTrainer

    from vrft.data.hf import build_grpo_dataset
    from vrft.data.visual_inputs import MediaBudget

    main = is_main_process()
    if main:
        atomic_write_text(out / "config.resolved.yaml", cfg.to_yaml())
        if checkpoint is not None:  # lines written after the checkpoint are written again
            for name in ("metrics.jsonl", "samples.jsonl"):
                truncate_jsonl(out / name, checkpoint_step(checkpoint))
        else:  # a fresh start (also a resume that found no checkpoint)
            for name in ("metrics.jsonl", "samples.jsonl"):
                (out / name).unlink(missing_ok=True)

    records, task_name = checked.records, checked.task_name
    task = builder.get_task(task_name, cfg.rewards.preset)
    reward_pairs, weights = builder.reward_functions(cfg, task_name)
    precision = resolve_precision(cfg.model.dtype, cfg.model.precision, cfg.model.lora.enabled)
    args = grpo_args(cfg, out, accumulation, precision, weights)
    speed.refuse_data_parallel(args.n_gpu)

    model, processor, convention = builder.load_policy(cfg, precision.weights, checkpoint)
    tools = tool_run(cfg, model, processor, convention) if cfg.tools.enabled else None
    if tools is not None:
        args.max_tool_calling_iterations = tools.max_iterations
        reward_pairs = tool_reward_pairs(reward_pairs, weights)
        reward_pairs[0] = (reward_pairs[0][0], tools.stats.wrap(reward_pairs[0][1]))
    if cfg.model.freeze_vision:
        logger.info("froze the vision tower (%d parameters)", builder.freeze_vision(model))
    frame_fn = builder.make_frame_fn(convention, processor)
    contract = training_contract(
        task_name,
        records,
        convention,
        processor,
        getattr(cfg.data, "answer_format", "think"),
        model_cfg=cfg.model,
        tools=contract_tools(cfg.tools, cfg.model.max_pixels),
    )
    contract = builder.with_task_prompt(contract, task, records, convention)
    dataset = build_grpo_dataset(records, task, frame_fn, MediaBudget.of(cfg.model))
    order = builder.prompt_order(
        len(dataset), cfg.grpo.prompts_per_step, epochs=cfg.grpo.epochs, max_steps=cfg.grpo.max_steps,
        seed=cfg.grpo.seed, shuffle=cfg.data.shuffle,
    )  # fmt: skip
    train_dataset = dataset.select(order)

    parse = _prediction_fn(records, task, frame_fn)
    if tools is not None:  # a completion is the whole transcript; its answer is the final one
        parse = _final_answer_parser(parse)
    completion_text = _completion_text if tools is None else transcript
    recorder = SampleRecorder(
        every=cfg.output.sample_every,
        num=cfg.output.num_samples,
        describe=_describer(records, task, frame_fn),
        parse=_parser(parse),
        completion_text=completion_text,
        is_main=main,
    )
    g = cfg.grpo
    watch = FlatWatch(cfg.output.flat_warning_share, cfg.output.flat_warning_steps, g.temperature)
    signals = StepSignals(
        {name: w for (name, _), w in zip(reward_pairs, weights, strict=True)}, g.num_generations,
        g.max_completion_length, scale_rewards=g.scale_rewards, reason=_reason(parse),
        completion_text=completion_text, watch=watch if main else None, is_main=main,
    )  # fmt: skip
    rewards = [NamedReward(fn, name, recorder, signals) for name, fn in reward_pairs]
    names = [r.__name__ for r in rewards]
    modes = {name: speed.mode_of(g.speedups, getattr(g, name)) for name in speed.SPEEDUPS}
    rollout = speed.rollout_candidate(
        model, modes["shared_prefill"], use_vllm=g.use_vllm, tools=tools is not None
    )
    with speed.quiet_rollout_warning():
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=rewards,
            args=args,
            train_dataset=train_dataset,
            processing_class=processor,
            peft_config=builder.lora_config(cfg, model),
            rollout_func=rollout,
            environment_factory=tools.environment if tools is not None else None,
        )
    speed.apply(trainer, rollout, modes, use_vllm=g.use_vllm, tools=tools is not None)
    trainable, total = builder.count_parameters(trainer.model)
    logger.info(
        "GRPO: %d %s prompts, G=%d, %d prompts/step (%d processes x %d x accumulation %d), rewards %s, "
        "%s of %s parameters trainable, weights %s, %s",
        len(dataset), task_name, cfg.grpo.num_generations, cfg.grpo.prompts_per_step, processes,
        cfg.grpo.per_device_prompts, accumulation, dict(zip(names, weights)), f"{trainable:,}", f"{total:,}",
        precision.weights, "bf16" if precision.bf16 else "fp16" if precision.fp16 else "fp32",
    )  # fmt: skip

    timed = [_innermost(trainer.model)]
    if getattr(trainer, "ref_model", None) is not None:
        timed.append(_innermost(trainer.ref_model))
    timer = StepTimer(timed, lambda: sum(r.seconds for r in rewards))
    quiet_trainer(trainer)
    trainer.add_callback(timer)
    trainer.add_callback(signals)  # before SampleWriter, which reads the step's advantages
    windows = (timer.pop_window, signals.pop_window) + (() if tools is None else (tools.stats.pop_window,))
    trainer.add_callback(MetricsWriter(
        out / "metrics.jsonl", extra=_merged(*windows),
        on_row=StepLine(trainer.args.max_steps if trainer.args.max_steps > 0 else None),
    ))  # fmt: skip
    trainer.add_callback(SampleWriter(
        recorder, out / "samples.jsonl", dict(zip(names, weights)), group_size=g.num_generations, signals=signals
    ))  # fmt: skip
    trainer.add_callback(ContractWriter(contract, main))
    for cb in extra_callbacks or []:
        trainer.add_callback(cb)
    if trainer_hook is not None:
        trainer_hook(trainer)

    trainer.train(resume_from_checkpoint=checkpoint)
    timer.remove()

    final = save_final(trainer, processor, out, lora=cfg.model.lora.enabled, base=cfg.model.path)
    save_contract(out, contract, main)
    write_rank_checksum(trainer, out)
    if main:
        write_samples_html(out, title=f"{cfg.name or 'vrft'}: training samples")
        finish_run(out, title=cfg.name or "vrft train", flat_threshold=cfg.output.flat_warning_share,
                   warnings_fired=watch.warnings)  # fmt: skip
    return final


def _final_answer_parser(parse):
    """Under tools a sample's completion is the whole transcript; its parsed answer is the final one
    (`parse`: (text, record id) -> `Prediction`, as `_prediction_fn`)."""
    return lambda text, record_id: parse(final_of_transcript(text), record_id)


def _merged(*windows):
    """One `MetricsWriter.extra` from several (the step-time split, the tool counters)."""
    return lambda: {k: v for window in windows for k, v in window().items()}


def _innermost(model: Any) -> Any:
    """The transformers model inside a PEFT wrapper (forward hooks go there)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def _completion_text(completion: Any) -> str:
    from vrft.parsing import completion_text

    return completion_text(completion)


def _describer(records, task, frame_fn):
    by_id = {r.id: r for r in records}

    def describe(record_id: str) -> dict[str, Any]:
        r = by_id.get(record_id)
        if r is None:
            return {}
        query = r.category or r.expression or (r.domain or {}).get("object") or ""
        return {
            "id": r.id,
            "image": str(r.image_path) if getattr(r, "image_path", None) else r.image,
            "image_id": r.image_id,
            "width": r.width,
            "height": r.height,
            "task": r.task,
            "query": query,
            "gt_boxes": r.boxes or [],
            "gt_label": r.label if r.label is not None else r.text,
            **_visuals_of(r),
        }

    return describe


def _visuals_of(r) -> dict[str, Any]:
    """A sample's ``images`` (paths, in order) or ``video`` (path) for a record without one image."""
    if r.images is not None:
        return {"images": [str(p.path) for p in r.visual_parts()], "target_image": r.target_image}
    if r.video is not None:
        return {"video": str(r.visual_parts()[0].path), "duration": r.duration, "gt_window": r.window}
    return {}


def _prediction_fn(records, task, frame_fn):
    """(completion text, record id) -> the task's parsed `Prediction` (None: unknown record)."""
    by_id = {r.id: r for r in records}
    frames: dict[str, Any] = {}

    def predict(text: str, record_id: str):
        r = by_id.get(record_id)
        if r is None:
            return None
        if record_id not in frames:
            frames[record_id] = frame_fn(r)
        return task.parse(text, frames[record_id])

    return predict


def _reason(predict):
    """(completion text, record id) -> the parser's reason ("ok" when it parsed)."""

    def reason(text: str, record_id: str) -> str:
        pred = predict(text, record_id)
        if pred is None:
            return "ok"
        return "ok" if pred.ok else (pred.reason or "unknown")

    return reason


def _parser(predict):
    """(completion text, record id) -> the parsed answer in the fields of a report sample (pixels)."""

    def parse(text: str, record_id: str) -> dict[str, Any]:
        pred = predict(text, record_id)
        if pred is None:
            return {}
        return {
            "pred_boxes": [list(map(float, b)) for b in pred.boxes],
            "confidences": list(pred.scores),
            "pred_label": pred.label if pred.label is not None else pred.text,
            "no_objects": pred.no_objects,
            "parse_ok": pred.ok,
            "reason": pred.reason,
            **({"pred_window": pred.window} if pred.window is not None else {}),
            **({"pred_image": pred.image} if pred.image is not None else {}),
        }

    return parse
