"""Visual-RFT: GRPO with verifiable rewards, on TRL's `GRPOTrainer` (no fork, no patch).

`run_grpo(cfg)` reads top to bottom:

1. check the config (every problem at once) and the number of processes; resolve resume;
2. records of the task -> prompts, images and reward columns (`vrft.data.hf.build_grpo_dataset`);
3. the task's rewards with the configured preset and weights, each wrapped in `NamedReward` (stable
   metric names, samples for people, non-finite values dropped);
4. TRL arguments (before the model: DeepSpeed ZeRO-3 partitions the weights as they load);
5. the model and processor from a LOCAL directory (left padding), frozen vision tower / LoRA if asked;
6. `GRPOTrainer(...).train(resume_from_checkpoint=...)` with callbacks writing `metrics.jsonl`,
   `samples.jsonl` and the step-time split;
7. the final model in `<output.dir>/final` with `vrft.json` (how the model must be asked, also in every
   checkpoint), `samples.html`, `config.resolved.yaml`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from vrft.config import VrftConfig, validate
from vrft.outputs import atomic_write_text
from vrft.train import builder, speed
from vrft.train.callbacks import MetricsWriter, NamedReward, SampleRecorder, SampleWriter, truncate_jsonl
from vrft.train.contract import ContractWriter, save_contract, training_contract
from vrft.train.timing import StepTimer

logger = logging.getLogger(__name__)


def grpo_args(
    cfg: VrftConfig, out: Path, accumulation: int, precision: builder.Precision, weights: list[float]
):
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
        **builder.shared_trainer_args(cfg, precision),
    )


def run_grpo(cfg: VrftConfig, *, extra_callbacks: list[Any] | None = None, trainer_hook=None) -> Path:
    """Train with Visual-RFT (GRPO) as `cfg` says; return the directory of the final model.

    Args:
        cfg: a loaded config (`vrft.config.load_config`); it is validated again here.
        extra_callbacks: more `transformers.TrainerCallback`s (e.g. a benchmark's).
        trainer_hook: called with the built `GRPOTrainer` before training (tests, benchmarks).
    Returns:
        `<output.dir>/final`: the trained model and processor (LoRA: merged; the adapter is in
        `<output.dir>/adapter`). The run directory (its parent) also holds metrics.jsonl, samples.jsonl,
        samples.html, config.resolved.yaml and the checkpoints.
    """
    from trl import GRPOTrainer

    from vrft.data.hf import build_grpo_dataset

    validate(cfg)
    processes = builder.world_size()
    accumulation = builder.gradient_accumulation(
        cfg.grpo.prompts_per_step, cfg.grpo.per_device_prompts, processes
    )
    out, checkpoint = builder.prepare_output_dir(
        cfg.output.dir, cfg.output.resume, cfg.output.overwrite, inputs=builder.run_inputs(cfg), owner="train",
        report_to=cfg.output.report_to,
    )  # fmt: skip
    main = builder.is_main_process()
    if main:
        atomic_write_text(out / "config.resolved.yaml", cfg.to_yaml())
        if checkpoint is not None:  # lines written after the checkpoint are written again
            for name in ("metrics.jsonl", "samples.jsonl"):
                truncate_jsonl(out / name, builder.checkpoint_step(checkpoint))
        else:  # a fresh start (also a resume that found no checkpoint)
            for name in ("metrics.jsonl", "samples.jsonl"):
                (out / name).unlink(missing_ok=True)

    records, task_name = builder.training_records(cfg)
    task = builder.get_task(task_name, cfg.rewards.preset)
    reward_pairs, weights = builder.reward_functions(cfg, task_name)
    precision = builder.resolve_precision(cfg.model.dtype, cfg.model.precision, cfg.model.lora.enabled)
    args = grpo_args(cfg, out, accumulation, precision, weights)
    speed.refuse_data_parallel(args.n_gpu)

    model, processor, convention = builder.load_policy(cfg, precision.weights, checkpoint)
    if cfg.model.freeze_vision:
        logger.info("froze the vision tower (%d parameters)", builder.freeze_vision(model))
    frame_fn = builder.make_frame_fn(convention, processor)
    contract = training_contract(
        task_name, records, convention, processor, getattr(cfg.data, "answer_format", "think")
    )
    contract = builder.with_task_prompt(contract, task, records, convention)
    dataset = build_grpo_dataset(records, task, frame_fn)
    order = builder.prompt_order(
        len(dataset), cfg.grpo.prompts_per_step, epochs=cfg.grpo.epochs, max_steps=cfg.grpo.max_steps,
        seed=cfg.grpo.seed, shuffle=cfg.data.shuffle,
    )  # fmt: skip
    train_dataset = dataset.select(order)

    recorder = SampleRecorder(
        every=cfg.output.sample_every,
        num=cfg.output.num_samples,
        describe=_describer(records, task, frame_fn),
        parse=_parser(records, task, frame_fn),
        completion_text=_completion_text,
        is_main=main,
    )
    rewards = [NamedReward(fn, name, recorder) for name, fn in reward_pairs]
    names = [r.__name__ for r in rewards]
    g = cfg.grpo
    modes = {name: speed.mode_of(g.speedups, getattr(g, name)) for name in speed.SPEEDUPS}
    rollout = speed.rollout_candidate(model, modes["shared_prefill"], use_vllm=g.use_vllm)
    with speed.quiet_rollout_warning():
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=rewards,
            args=args,
            train_dataset=train_dataset,
            processing_class=processor,
            peft_config=builder.lora_config(cfg, model),
            rollout_func=rollout,
        )
    speed.apply(trainer, rollout, modes, use_vllm=g.use_vllm)
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
    trainer.add_callback(timer)
    trainer.add_callback(MetricsWriter(out / "metrics.jsonl", extra=timer.pop_window))
    trainer.add_callback(SampleWriter(recorder, out / "samples.jsonl", dict(zip(names, weights))))
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
    builder.release_output_dir(out)
    return final


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
        }

    return describe


def _parser(records, task, frame_fn):
    """(completion text, record id) -> the parsed answer in the fields of a report sample (pixels)."""
    by_id = {r.id: r for r in records}
    frames: dict[str, Any] = {}

    def parse(text: str, record_id: str) -> dict[str, Any]:
        r = by_id.get(record_id)
        if r is None:
            return {}
        if record_id not in frames:
            frames[record_id] = frame_fn(r)
        pred = task.parse(text, frames[record_id])
        return {
            "pred_boxes": [list(map(float, b)) for b in pred.boxes],
            "confidences": list(pred.scores),
            "pred_label": pred.label if pred.label is not None else pred.text,
            "no_objects": pred.no_objects,
            "parse_ok": pred.ok,
            "reason": pred.reason,
        }

    return parse


SHARDED = ("fsdp1", "fsdp2", "zero3")  # distributions where no process holds the full weights


def save_final(
    trainer: Any, processor: Any, out: Path, *, lora: bool, base: str | Path | None = None
) -> Path:
    """Save the trained model + processor to `<out>/final` (LoRA: adapter to `<out>/adapter`, merged to final).

    LoRA under FSDP or DeepSpeed ZeRO-3 (weights sharded over the processes): the Trainer's `save_model`
    gathers the adapter from all ranks into `<out>/adapter`; rank 0 then merges it into the untouched base
    weights read from `base` (the LoRA base is frozen), never into its own shard.
    """
    from vrft.train.speed import distribution_of

    final = out / "final"
    acc = trainer.accelerator
    if lora:
        trainer.save_model(str(out / "adapter"))
        acc.wait_for_everyone()
        sharded = distribution_of(acc) in SHARDED
        if acc.is_main_process:
            if sharded:
                if base is None:
                    raise ValueError("save_final: LoRA under sharding needs the base model directory")
                dtype = next(p.dtype for p in acc.unwrap_model(trainer.model).parameters())
                merged = merge_saved_adapter(base, out / "adapter", str(dtype).removeprefix("torch."))
                logger.info("LoRA under %s: merged the gathered adapter into %s", distribution_of(acc), base)
            else:
                merged = acc.unwrap_model(trainer.model).merge_and_unload()
            merged.save_pretrained(final)
            processor.save_pretrained(final)
    else:
        trainer.save_model(str(final))
        if acc.is_main_process:
            processor.save_pretrained(final)
    acc.wait_for_everyone()
    return final


def merge_saved_adapter(base: str | Path, adapter: str | Path, dtype: str = "float32") -> Any:
    """The base model (loaded on CPU) with the saved LoRA adapter merged in: a plain transformers model."""
    from peft import PeftModel

    from vrft.models.load import load_model_and_processor

    model, _ = load_model_and_processor(base, dtype=dtype)
    return PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()


def write_rank_checksum(trainer: Any, out: Path) -> None:
    """With several DDP processes, each writes a checksum of its weights (they must be identical)."""
    if trainer.accelerator.num_processes < 2 or trainer.accelerator.distributed_type.value not in (
        "MULTI_GPU",
        "MULTI_CPU",
        "MULTI_XPU",
        "MULTI_NPU",
    ):
        return
    sums = weights_checksum(trainer.accelerator.unwrap_model(trainer.model))
    rank = trainer.accelerator.process_index
    path = out / "rank_checksums" / f"rank{rank}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(sums, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    trainer.accelerator.wait_for_everyone()
    if trainer.accelerator.is_main_process:
        others = [json.loads(p.read_text()) for p in sorted(path.parent.glob("rank*.json"))]
        if any(o != sums for o in others):
            logger.error("the DDP replicas ended with DIFFERENT weights (see %s)", path.parent)
        else:
            logger.info("all %d processes ended with identical weights", len(others))


def weights_checksum(model: Any) -> dict[str, str]:
    """{parameter name: sha256 of its bytes} (exact, device-independent)."""
    import hashlib

    out = {}
    for name, p in model.state_dict().items():
        t = p.detach().to("cpu").contiguous()
        out[name] = hashlib.sha256(t.view(-1).view(_byte_dtype()).numpy().tobytes()).hexdigest()[:16]
    return out


def _byte_dtype():
    import torch

    return torch.uint8


def write_samples_html(out: Path, title: str) -> Path | None:
    """Render `<out>/samples.jsonl` to `<out>/samples.html` (if there are samples)."""
    path = out / "samples.jsonl"
    if not path.is_file() or path.stat().st_size == 0:
        return None
    from vrft.report.html import load_samples, render_report

    return render_report(load_samples(path), out / "samples.html", title=title)
