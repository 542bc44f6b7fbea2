"""The supervised fine-tuning baseline of the paper, on TRL's `SFTTrainer` (no fork, no patch).

The same config as Visual-RFT (model, data, output), with the `sft` section for the optimiser: every
record becomes (prompt = image + task text, completion = the task's answer text with its
`<think>..</think> <answer>..</answer>` wrapper), and the loss is on the completion tokens only.
The records are the ones `vrft.train.preflight` selected (`data.task`, `data.max_samples` with
`data.seed`, `data.answer_format`; with `mixed_tasks` every task of `data.train`), visited in a seeded
random order each epoch (`sft.seed`), or in file order with `data.shuffle: false`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from vrft.config import VrftConfig
from vrft.outputs import atomic_write_text
from vrft.train import builder
from vrft.train.callbacks import MetricsWriter, truncate_jsonl
from vrft.train.checkpoints import checkpoint_step
from vrft.train.contract import ContractWriter, contract_tools, save_contract, training_contract
from vrft.train.finalize import save_final
from vrft.train.preflight import preflight, run_inputs
from vrft.train.processes import Precision, is_main_process, resolve_precision, shared_trainer_args
from vrft.train.run_dir import prepare_output_dir, release_output_dir, schedule_of
from vrft.train.speed import refuse_data_parallel

logger = logging.getLogger(__name__)


def sft_args(cfg: VrftConfig, out: Path, precision: Precision):
    """TRL `SFTConfig` for the config."""
    from trl import SFTConfig

    s = cfg.sft
    return SFTConfig(
        output_dir=str(out),
        seed=s.seed,
        per_device_train_batch_size=s.per_device_batch_size,
        gradient_accumulation_steps=s.gradient_accumulation_steps,
        learning_rate=s.learning_rate,
        lr_scheduler_type=s.lr_scheduler,
        warmup_steps=s.warmup,
        weight_decay=s.weight_decay,
        max_grad_norm=s.max_grad_norm,
        max_steps=s.max_steps or -1,
        num_train_epochs=s.epochs,
        max_length=s.max_length,  # None: never cut the image tokens of a prompt
        completion_only_loss=True,
        dataloader_drop_last=False,
        # data.shuffle: the Trainer's seeded random order each epoch, or the records' order
        train_sampling_strategy="random" if cfg.data.shuffle else "sequential",
        **shared_trainer_args(cfg, precision),
        disable_tqdm=True,  # one line per logging step instead (vrft.train.run_log.StepLine)
    )


class PerRecordTask:
    """Prompt and answer text from each record's own task (`mixed_tasks`: one SFT run over several tasks)."""

    name = "mixed"

    def __init__(self, preset: str = "default") -> None:
        self.preset = preset

    def prompt(self, record: Any, frame: Any = None) -> str:
        return builder.get_task(record.task, self.preset).prompt(record, frame)

    def answer_text(self, record: Any, frame: Any) -> str:
        return builder.get_task(record.task, self.preset).answer_text(record, frame)


def run_sft(
    cfg: VrftConfig, *, extra_callbacks: list[Any] | None = None, trainer_hook=None, mixed_tasks: bool = False
) -> Path:
    """Train the SFT baseline as `cfg` says; return the directory of the final model.

    With `mixed_tasks`, every record of `data.train` is trained on with its own task's prompt and answer
    (a pretraining mix, e.g. classification + detection; `data.task` must still name one of them);
    `data.max_samples`, `data.seed`, `data.answer_format` and `data.shuffle` apply as to one task.

    Writes to `cfg.sft_output_dir` (output.sft_dir, default '<output.dir>-sft'): checkpoints,
    metrics.jsonl, config.resolved.yaml and `final/` (LoRA: merged; adapter in `adapter/`), each model
    directory with `vrft.json` (how the model must be asked, `vrft.models.contract`).
    """
    checked = preflight(cfg, mixed_tasks=mixed_tasks)
    out, checkpoint = prepare_output_dir(
        cfg.sft_output_dir, cfg.output.resume, cfg.output.overwrite, inputs=run_inputs(cfg), owner="sft",
        report_to=cfg.output.report_to, schedule=schedule_of(cfg),
    )  # fmt: skip
    from vrft.train.run_log import quiet_run

    try:
        with quiet_run():  # no per-step deprecation warning, short key lists on a resume
            return _train(cfg, checked, out, checkpoint, mixed_tasks, extra_callbacks, trainer_hook)
    finally:
        release_output_dir(out)


def _train(cfg, checked, out, checkpoint, mixed_tasks, extra_callbacks, trainer_hook) -> Path:
    from trl import SFTTrainer

    from vrft.data.hf import build_sft_dataset
    from vrft.data.visual_inputs import MediaBudget

    main = is_main_process()
    if main:
        atomic_write_text(out / "config.resolved.yaml", cfg.to_yaml())
        if checkpoint is not None:
            truncate_jsonl(out / "metrics.jsonl", checkpoint_step(checkpoint))
        else:
            (out / "metrics.jsonl").unlink(missing_ok=True)

    records, task_name = checked.records, checked.task_name
    if mixed_tasks:
        task = PerRecordTask(cfg.rewards.preset)
    else:
        task = builder.get_task(task_name, cfg.rewards.preset)
    precision = resolve_precision(cfg.model.dtype, cfg.model.precision, cfg.model.lora.enabled)
    args = sft_args(cfg, out, precision)
    refuse_data_parallel(args.n_gpu)  # one process per GPU (accelerate launch), never nn.DataParallel

    model, processor, convention = builder.load_policy(cfg, precision.weights, checkpoint)
    if cfg.model.freeze_vision:
        logger.info("froze the vision tower (%d parameters)", builder.freeze_vision(model))
    frame_fn = builder.make_frame_fn(convention, processor)
    if any(
        getattr(r, "trace", None) for r in records
    ):  # tool traces: whole conversations, assistant turns trained
        from vrft.train.tool_setup import trace_dataset

        dataset = trace_dataset(cfg, model, processor, convention, records, task, frame_fn)
        args.completion_only_loss, args.assistant_only_loss = False, True
    else:
        dataset = build_sft_dataset(records, task, frame_fn, MediaBudget.of(cfg.model))
    contract = training_contract(
        task_name,
        records,
        convention,
        processor,
        getattr(cfg.data, "answer_format", "think"),
        model_cfg=cfg.model,
        tools=contract_tools(cfg.tools, cfg.model.max_pixels)
        if any(getattr(r, "trace", None) for r in records)
        else None,
    )
    contract = builder.with_task_prompt(contract, task, records, convention)

    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=processor,
        peft_config=builder.lora_config(cfg, model),
    )
    trainable, total = builder.count_parameters(trainer.model)
    logger.info(
        "SFT: %d %s examples, %s of %s parameters trainable",
        len(dataset), task_name, f"{trainable:,}", f"{total:,}",
    )  # fmt: skip
    from vrft.train.run_log import StepLine, quiet_trainer

    quiet_trainer(trainer)
    max_steps = trainer.args.max_steps if trainer.args.max_steps > 0 else None
    trainer.add_callback(MetricsWriter(out / "metrics.jsonl", on_row=StepLine(max_steps)))
    trainer.add_callback(ContractWriter(contract, main))
    for cb in extra_callbacks or []:
        trainer.add_callback(cb)
    if trainer_hook is not None:
        trainer_hook(trainer)
    trainer.train(resume_from_checkpoint=checkpoint)
    final = save_final(trainer, processor, out, lora=cfg.model.lora.enabled, base=cfg.model.path)
    save_contract(out, contract, main)
    return final
