"""Checkpoints of a run: which one a resume starts from, whether one is complete, what it holds.

- `resolve_checkpoint`: the checkpoint `output.resume` names (true: the newest COMPLETE one of the
  output directory; half-written ones are skipped and removed);
- `checkpoint_problem`: why a folder is not a complete Trainer checkpoint (it reads `trainer_state.json`
  and each safetensors file's header, no tensor);
- `checkpoint_step`, `checkpoints`: step numbers and the `checkpoint-<step>` folders;
- `resume_weights`: the checkpoint to load full weights from with `from_pretrained`.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import struct
from pathlib import Path

from vrft.errors import ConfigError

logger = logging.getLogger(__name__)


def checkpoints(out: Path) -> list[Path]:
    """`checkpoint-<step>` folders of `out`, newest first."""
    if not out.is_dir():
        return []
    found = [p for p in out.iterdir() if p.is_dir() and re.fullmatch(r"checkpoint-\d+", p.name)]
    return sorted(found, key=checkpoint_step, reverse=True)


def resolve_checkpoint(out: Path, resume: bool | str, *, clean: bool) -> str | None:
    """The checkpoint to resume from: `resume` itself if it is a path (refused unless complete), the
    newest complete `checkpoint-<step>` of `out` if it is true (incomplete newer ones are removed with
    `clean`), or None (not resuming, or nothing to resume from yet)."""
    if isinstance(resume, str) and resume:
        ckpt = Path(resume)
        if not ckpt.is_dir():
            raise ConfigError(f"output.resume: checkpoint directory not found: {ckpt}")
        problem = checkpoint_problem(ckpt)
        if problem:
            raise ConfigError(
                f"output.resume: {ckpt} is not a complete checkpoint ({problem}); give an earlier one, "
                "or output.resume=true to take the last complete checkpoint"
            )
        return str(ckpt)
    if not resume:
        return None
    for ckpt in checkpoints(out):
        problem = checkpoint_problem(ckpt)
        if problem is None:
            logger.info("resuming from %s (step %d)", ckpt, checkpoint_step(str(ckpt)))
            return str(ckpt)
        logger.warning("resume: skipping %s, an incomplete checkpoint (%s)", ckpt, problem)
        if clean:  # vrft's own half-written save; a later save of that step would be mixed into it
            shutil.rmtree(ckpt, ignore_errors=True)
    logger.warning("output.resume is set but %s has no complete checkpoint yet: starting from scratch", out)
    return None


def checkpoint_problem(ckpt: str | Path) -> str | None:
    """Why `ckpt` is not a complete Trainer checkpoint, or None if it is.

    Complete: `trainer_state.json` (the Trainer writes it LAST) parses and names the folder's step, and
    the weights are there: full safetensors (single file or every shard of the index, each with a
    readable header and as many bytes as the header promises), a LoRA adapter, a .bin, or a DeepSpeed /
    FSDP state folder.
    """
    ckpt = Path(ckpt)
    state = ckpt / "trainer_state.json"
    if not state.is_file():
        return "no trainer_state.json, which the Trainer writes last: the save was interrupted"
    try:
        step = json.loads(state.read_text(encoding="utf-8")).get("global_step")
    except (OSError, ValueError, AttributeError) as err:
        return f"trainer_state.json is unreadable ({err})"
    expected = checkpoint_step(str(ckpt))
    if re.search(r"checkpoint-\d+$", ckpt.name) and step != expected:
        return f"trainer_state.json says step {step}, the folder name {expected}"
    for single in ("model.safetensors", "adapter_model.safetensors"):
        if (ckpt / single).is_file():
            return _safetensors_problem(ckpt / single)
    index = ckpt / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            return f"{index.name} is unreadable ({err})"
        for shard in shards:
            if not (ckpt / shard).is_file():
                return f"weight shard {shard} is missing"
            problem = _safetensors_problem(ckpt / shard)
            if problem:
                return problem
        return None
    if any(
        (ckpt / n).is_file() and (ckpt / n).stat().st_size > 0
        for n in ("pytorch_model.bin", "adapter_model.bin")
    ):
        return None
    if any(p.is_dir() for p in ckpt.glob("global_step*")) or any(ckpt.glob("pytorch_model_fsdp*")):
        return None
    return "no model weights (model.safetensors, an index with its shards, or an adapter)"


def _safetensors_problem(path: Path) -> str | None:
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return f"{path.name} is truncated"
            (n,) = struct.unpack("<Q", head)
            if n > size - 8:
                return f"{path.name} is truncated (header)"
            header = json.loads(fh.read(n))
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    except (OSError, ValueError, KeyError, TypeError, IndexError, struct.error) as err:
        return f"{path.name} is unreadable ({err})"
    if size < 8 + n + end:
        return f"{path.name} is truncated ({size} of {8 + n + end} bytes)"
    return None


def checkpoint_step(checkpoint: str | None) -> int:
    """Global step of a `checkpoint-<step>` directory (0 for None)."""
    if checkpoint is None:
        return 0
    m = re.search(r"checkpoint-(\d+)$", str(Path(checkpoint)))
    return int(m.group(1)) if m else 0


def resume_weights(checkpoint: str | None) -> str | None:
    """The checkpoint directory if it holds full model weights in Hugging Face format, else None.

    transformers' Trainer reloads a resumed model with a plain `load_state_dict`, which misses every
    key of models whose saved names differ from their module names (Qwen-VL: `visual.*` on disk,
    `model.visual.*` in memory) and silently keeps the initial weights. Loading the checkpoint with
    `from_pretrained` applies the conversion. Adapter (LoRA), DeepSpeed and FSDP checkpoints are
    restored by the Trainer itself.
    """
    if checkpoint is None:
        return None
    ckpt = Path(checkpoint)
    if (ckpt / "model.safetensors").is_file() or (ckpt / "model.safetensors.index.json").is_file():
        return str(ckpt)
    return None
