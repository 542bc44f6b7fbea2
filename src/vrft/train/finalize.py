"""The end of a training run, shared by GRPO and SFT: the final model, the replicas' checksums, samples.html.

- `save_final`: `<out>/final` (LoRA: the adapter in `<out>/adapter`, merged into final);
- `write_rank_checksum`: with several DDP processes, each writes `rank_checksums/rank<i>.json` and
  rank 0 compares the CURRENT run's ranks (files of an earlier run with more processes are removed);
- `write_samples_html`: `samples.jsonl` rendered for people.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


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
        n = trainer.accelerator.num_processes
        for stale in path.parent.glob("rank*.json"):  # an earlier run's ranks beyond this run's processes
            m = re.fullmatch(r"rank(\d+)\.json", stale.name)
            if m is None or int(m.group(1)) >= n:
                stale.unlink(missing_ok=True)
        others = [json.loads((path.parent / f"rank{i}.json").read_text()) for i in range(n)]
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
