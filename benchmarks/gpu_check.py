"""One-command GPU check of vrft: GRPO in bf16 (speed-ups off / on / TRL as-is), log-prob agreement on vs
off, the LoRA path, single-GPU FSDP2, and evaluation throughput at batch 1, 16 and 64.

    python benchmarks/gpu_check.py --out DIR                 # one GPU, <= 8 minutes on an H200
    python benchmarks/gpu_check.py --out DIR --sizes 3b,7b   # also Qwen2.5-VL-7B proportions, time allowing
    python benchmarks/gpu_check.py --out DIR --dry-run       # the same script at tiny sizes on CPU (CI)

Nothing is downloaded: the models are random-weight Qwen2.5-VL built from a config with the real
proportions (3B: hidden 2048, 36 layers, 16 heads / 2 KV heads, MLP 11008; vision 32 blocks of 1280;
7B: hidden 3584, 28 layers, 28 / 4 heads, MLP 18944) and vrft's offline tokenizer (vocabulary 512, so
the real 151,936-token LM head and its logits are NOT modelled; every vision block uses full attention
instead of Qwen2.5-VL's windows). Python packages the GPU machine lacks travel as wheels
(benchmarks/fetch_gpu_wheels.py). Each section is timed and guarded: a failing section records its error
and the check goes on; sections past `--budget-s` are recorded as skipped.

Writes DIR/gpu.json (every number) and DIR/gpu.md (tables for benchmarks/results/gpu.md).
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_speed  # noqa: E402  (benchmarks/ is not a package)

SIZES = {  # Qwen2.5-VL proportions (the models' config.json), vocabulary aside
    "3b": dict(hidden_size=2048, layers=36, heads=16, kv_heads=2, intermediate_size=11008,
               vision_hidden=1280, vision_depth=32, vision_heads=16, vision_intermediate=3420),
    "7b": dict(hidden_size=3584, layers=28, heads=28, kv_heads=4, intermediate_size=18944,
               vision_hidden=1280, vision_depth=32, vision_heads=16, vision_intermediate=3420),
    "dry": dict(hidden_size=64, layers=2, heads=4, kv_heads=2, intermediate_size=128,
                vision_hidden=32, vision_depth=1, vision_heads=2, vision_intermediate=64),
}  # fmt: skip


class Plan:
    """The sizes of one check: real (GPU) or tiny (--dry-run)."""

    def __init__(self, dry: bool) -> None:
        self.dry = dry
        self.image_side = 56 if dry else 448  # 448: 1,024 patches = 256 image tokens per image
        self.g = 2 if dry else 8
        self.prompts = 2 if dry else 4
        self.completion = 8 if dry else 64
        self.steps = 1 if dry else 2
        self.warmup = 1
        self.eval_batches = (1, 2, 4) if dry else (1, 16, 64)
        self.eval_prompts = {1: 2, 2: 4, 4: 4} if dry else {1: 8, 16: 64, 64: 64}
        self.eval_tokens = 8 if dry else 32


# --------------------------------------------------------------------------------------------- utils
def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _reset_peak() -> None:
    import torch

    if _cuda():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib() -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if _cuda() else None


def _free() -> None:
    import gc

    import torch

    gc.collect()
    if _cuda():
        torch.cuda.empty_cache()


def build_model(size: str, root: Path, image_side: int) -> tuple[Path, dict]:
    """A random-weight Qwen2.5-VL directory with the proportions of SIZES[size]."""
    from vrft.models.tiny import build_tiny

    t = time.perf_counter()
    sizes = dict(SIZES[size])
    out = build_tiny(
        "qwen2_5_vl", root / f"qwen2_5_vl-{size}", size="tiny", image_size=image_side,
        hidden_size=sizes.pop("hidden_size"), layers=sizes.pop("layers"), vision_hidden=sizes.pop("vision_hidden"),
        vision_depth=sizes.pop("vision_depth"), **sizes,
    )  # fmt: skip
    info = json.loads((out / "vrft_tiny.json").read_text())
    return out, {
        "parameters": info["parameters"],
        "build_s": round(time.perf_counter() - t, 1),
        **SIZES[size],
    }


# ------------------------------------------------------------------------------------------ sections
def grpo_rows(model_dir: Path, records: Path, work: Path, plan: Plan) -> list[dict]:
    """GRPO in bf16 (precision auto = bf16 on a GPU): vrft with the speed-ups off and on, TRL as-is."""
    rows = []
    for kind, speed in (("vrft", "off"), ("vrft", "on"), ("trl", "")):
        _reset_peak()
        out = work / f"grpo-{kind}-{speed}"
        common = dict(g=plan.g, steps=plan.steps, warmup=plan.warmup, image_side=plan.image_side,
                      completion=plan.completion)  # fmt: skip
        if kind == "trl":
            row = train_speed.trl_row(model_dir, records, out, prompts=1, gpu=_cuda(), **common)
        else:
            row = train_speed.vrft_row(model_dir, records, out, prompts=plan.prompts, speed=speed, **common)
        rows.append(_row_dict(row, _peak_gib()))
        _free()
    return rows


def _row_dict(row: Any, peak: float | None) -> dict:
    total = row.mean("total")
    tokens = statistics.fmean(row.completion_tokens) if row.completion_tokens else float("nan")
    completions = row.prompts * row.g
    return {
        "run": row.name,
        "G": row.g,
        "prompts_per_step": row.prompts,
        "step_s": round(total, 3),
        "completions_per_s": round(completions / total, 3),
        "tokens_per_s_per_gpu": round(completions * tokens / total, 1),
        "mean_completion_tokens": round(tokens, 1),
        "split_s": {k: round(row.mean(k), 3) for k in ("generation", "logprob", "update", "reward", "other")},
        "images_encoded_per_step": round(statistics.fmean(row.images), 1) if row.images else None,
        "peak_gpu_gib": peak,
    }


def logprob_agreement(model_dir: Path, plan: Plan) -> dict:
    """Log-probs, loss and gradients of one bf16 log-prob pass (2 prompts x G) with the speed-ups on vs
    off, next to the bf16-vs-fp32 difference of the same pass (tests/speed/test_bf16.py on a GPU)."""
    import numpy as np
    import torch
    from PIL import Image

    from vrft.models.load import load_model_and_processor
    from vrft.train.prefix_share import install_prefix_share
    from vrft.train.vision_dedup import install_vision_dedup

    device = "cuda" if _cuda() else "cpu"
    side = plan.image_side
    model, processor = load_model_and_processor(
        model_dir, dtype="float32", min_pixels=side**2, max_pixels=side**2
    )
    model.to(device).train()
    rng = np.random.default_rng(0)
    pics = [Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)) for _ in range(2)]
    rows = [p for p in (0, 1) for _ in range(plan.g)]
    texts = ["Detect the red circle in the image.", "Where is the square?"]
    chat = [processor.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text",
            "text": texts[p]}]}], add_generation_prompt=True) for p in rows]  # fmt: skip
    inp = processor(images=[[pics[p]] for p in rows], text=chat, padding=True, return_tensors="pt")
    c = plan.completion
    comp = torch.randint(5, 200, (len(rows), c), generator=torch.Generator().manual_seed(0))
    n, width = inp["input_ids"].shape
    fields = {}
    for k, v in inp.items():
        if k not in ("input_ids", "attention_mask"):
            fields[k] = (
                torch.cat([v, torch.zeros_like(comp)], 1) if v.dim() == 2 and v.shape == (n, width) else v
            )
    fields["input_ids"] = torch.cat([inp["input_ids"], comp], 1)
    fields["attention_mask"] = torch.cat([inp["attention_mask"], torch.ones_like(comp)], 1)
    fields = {k: v.to(device) for k, v in fields.items()}
    comp = comp.to(device)

    def run(bf16: bool, model=model):
        model.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            logits = model(**fields, use_cache=False).logits[:, -c - 1 : -1].float()
        logps = torch.log_softmax(logits, -1).gather(-1, comp[..., None])[..., 0]
        adv = torch.linspace(-1, 1, logps.shape[0], device=device)[:, None]
        loss = -(adv * logps).mean()
        loss.backward()
        grads = {k: p.grad.float() for k, p in model.named_parameters() if p.grad is not None}
        return logps.detach(), loss.item(), grads

    def rel(a, b):
        return max((a[k] - b[k]).abs().max().item() for k in b) / max(
            v.abs().max().item() for v in b.values()
        )

    ref = run(False)
    off = run(True)
    hooks = [install_vision_dedup(model), install_prefix_share(model)]
    _reset_peak()
    on = run(True)
    shared = hooks[1].stats.shared_calls
    for h in hooks:
        h.remove()
    result = {
        "rows": len(rows),
        "logp_max_abs_on_vs_off": (on[0] - off[0]).abs().max().item(),
        "logp_max_abs_bf16_vs_fp32": (off[0] - ref[0]).abs().max().item(),
        "loss_on_vs_off": abs(on[1] - off[1]),
        "grad_rel_on_vs_off": rel(on[2], off[2]),
        "grad_rel_bf16_vs_fp32": rel(off[2], ref[2]),
        "prefix_shared_calls": shared,
        "images_encoded": hooks[0].stats.images_encoded,
        "images_in": hooks[0].stats.images_in,
    }
    result["within_bf16_rule"] = (
        result["logp_max_abs_on_vs_off"] <= 2 * result["logp_max_abs_bf16_vs_fp32"]
        and result["grad_rel_on_vs_off"] <= 2 * result["grad_rel_bf16_vs_fp32"]
    )
    del model
    _free()
    return result


def lora_row(model_dir: Path, records: Path, work: Path, plan: Plan) -> dict:
    """GRPO with LoRA (bf16 base on a GPU), speed-ups on, and its merged save."""
    _reset_peak()
    row = train_speed.vrft_row(
        model_dir, records, work / "lora", g=plan.g, prompts=plan.prompts, speed="on", steps=plan.steps,
        warmup=plan.warmup, image_side=plan.image_side, completion=plan.completion,
        extra={"model": {"lora": {"enabled": True, "r": 16, "alpha": 32}}},
    )  # fmt: skip
    out = _row_dict(row, _peak_gib())
    out["merged_saved"] = (work / "lora" / "final" / "config.json").is_file()
    _free()
    return out


FSDP_YAML = """compute_environment: LOCAL_MACHINE
distributed_type: FSDP
fsdp_config:
  fsdp_version: 2
  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP
  fsdp_cpu_ram_efficient_loading: false
  fsdp_offload_params: false
  fsdp_reshard_after_forward: true
  fsdp_state_dict_type: FULL_STATE_DICT
  fsdp_activation_checkpointing: false
num_machines: 1
num_processes: 1
machine_rank: 0
mixed_precision: {mp}
rdzv_backend: static
same_network: true
use_cpu: {cpu}
main_training_function: main
"""


def fsdp2_single(model_dir: Path, records: Path, work: Path, plan: Plan, speedups: str) -> dict:
    """`accelerate launch` with FSDP v2 on one GPU (`vrft train`, 1 process); the speed-ups' log lines say
    which distribution each decision saw. On CPU (--dry-run) accelerate runs it without FSDP."""
    import yaml

    out = work / f"fsdp2-{speedups}"
    cfg = train_speed.vrft_config(
        model_dir, records, out, g=plan.g, prompts=plan.prompts, speed="on", steps=plan.steps,
        warmup=plan.warmup, image_side=plan.image_side, completion=plan.completion,
    )  # fmt: skip
    for key in ("shared_prefill", "dedup_images", "share_prompt_prefix"):
        cfg["grpo"].pop(key)
    cfg["grpo"]["speedups"] = speedups
    (work / f"fsdp2-{speedups}.yaml").write_text(yaml.safe_dump(cfg))
    acc = work / "fsdp2-accelerate.yaml"
    gpu = _cuda()
    acc.write_text(FSDP_YAML.format(mp="bf16" if gpu else "'no'", cpu="false" if gpu else "true"))
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(acc), "-m", "vrft.cli",
           "train", str(work / f"fsdp2-{speedups}.yaml")]  # fmt: skip
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ), timeout=600)
    seconds = time.perf_counter() - t
    log = proc.stdout + proc.stderr
    lines = [
        ln.split("vrft.train.speed: ", 1)[-1] for ln in log.splitlines() if "vrft.train.speed: speed:" in ln
    ]
    metrics = []
    if (out / "metrics.jsonl").is_file():
        metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    return {
        "speedups": speedups,
        "returncode": proc.returncode,
        "seconds": round(seconds, 1),
        "speed_lines": lines,
        "steps_logged": sum("train/reward" in m for m in metrics),
        "final_saved": (out / "final" / "config.json").is_file(),
        "error_tail": None if proc.returncode == 0 else log[-3000:],
    }


def eval_rows(model_dir: Path, work: Path, plan: Plan) -> list[dict]:
    """`vrft eval`'s batched generation (HFGenerator, bf16 on a GPU) at each batch size: prompts/s."""
    import eval_throughput
    import torch

    from vrft.evaluate.protocols import detection_setup
    from vrft.evaluate.runner import HFGenerator, Request
    from vrft.models.load import convention_for, frame_for, load_model_and_processor
    from vrft.tasks import TASKS

    side = plan.image_side
    dtype = "bfloat16" if _cuda() else "float32"
    model, processor = load_model_and_processor(
        model_dir, dtype=dtype, min_pixels=side**2, max_pixels=side**2
    )
    model.to("cuda" if _cuda() else "cpu")
    convention = convention_for(model.config)
    records = eval_throughput._records(work / "eval-data", max(plan.eval_prompts.values()), 1)
    queries = detection_setup(records).queries
    task = TASKS["detection"]
    requests = [Request(q.resolved_image(), task.prompt(q, frame_for(q.width, q.height, convention, processor)),
                        plan.eval_tokens) for q in queries]  # fmt: skip
    HFGenerator(model, processor, batch_size=2, progress=False).generate(requests[:2])  # warm-up
    rows = []
    for bs in plan.eval_batches:
        reqs = (requests * 2)[: plan.eval_prompts[bs]]
        _reset_peak()
        if _cuda():
            torch.cuda.synchronize()
        t = time.perf_counter()
        HFGenerator(model, processor, batch_size=bs, progress=False).generate(reqs)
        if _cuda():
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t
        rows.append({"batch": bs, "prompts": len(reqs), "seconds": round(seconds, 2),
                     "prompts_per_s": round(len(reqs) / seconds, 2), "peak_gpu_gib": _peak_gib()})  # fmt: skip
    del model
    _free()
    return rows


# ------------------------------------------------------------------------------------------- report
def markdown(result: dict) -> str:
    out = [f"# GPU check ({result['date']})", "", f"- machine: {result['machine']}", f"- command: `{result['command']}`",
           f"- wall time: {result['wall_s']} s", ""]  # fmt: skip
    for size, sec in result["sizes"].items():
        m = sec.get("model", {})
        out += [
            f"## Qwen2.5-VL {size} proportions ({m.get('parameters', 0) / 1e9:.2f}B parameters, random weights)",
            "",
        ]
        grpo = sec.get("grpo")
        if isinstance(grpo, list):
            out += ["| run | G | prompts/step | step s | completions/s | tokens/s/GPU | generation | log-prob | "
                    "update | other | images/step | peak GiB |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
            for r in grpo + ([sec["lora"]] if isinstance(sec.get("lora"), dict) else []):
                s = r["split_s"]
                name = r["run"] + (" + LoRA r=16" if r is sec.get("lora") else "")
                out.append(f"| {name} | {r['G']} | {r['prompts_per_step']} | {r['step_s']} | {r['completions_per_s']} | "
                           f"{r['tokens_per_s_per_gpu']} | {s['generation']} | {s['logprob']} | {s['update']} | "
                           f"{s['other']} | {r['images_encoded_per_step']} | {r['peak_gpu_gib']} |")  # fmt: skip
            out.append("")
        for key in ("logprob_agreement", "fsdp2", "eval"):
            value = sec.get(key)
            if value is not None:
                out += [f"**{key}**", "", "```json", json.dumps(value, indent=1)[:4000], "```", ""]
    return "\n".join(out)


def machine() -> str:
    from importlib.metadata import PackageNotFoundError, version

    import torch

    gpu = torch.cuda.get_device_name(0) if _cuda() else "no GPU (CPU)"
    versions = []
    for name in ("torch", "transformers", "trl", "accelerate", "peft", "datasets", "pyarrow"):
        try:
            versions.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            versions.append(f"{name} missing")
    return f"{gpu}, {', '.join(versions)}, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="directory for gpu.json and gpu.md")
    ap.add_argument("--dry-run", action="store_true", help="tiny sizes on CPU (CI)")
    ap.add_argument("--sizes", default="3b", help="comma-separated: 3b, 7b (default 3b)")
    ap.add_argument(
        "--budget-s", type=float, default=450, help="skip sections started after this (default 450)"
    )
    ap.add_argument(
        "--skip", default="", help="comma-separated sections to skip: grpo, logprob, lora, fsdp2, eval"
    )
    ap.add_argument(
        "--fsdp-speedups", default="on,auto", help="grpo.speedups of the FSDP2 runs (default on,auto)"
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    plan = Plan(args.dry_run)
    if not args.dry_run and not _cuda():
        print("gpu_check: no CUDA GPU visible; use --dry-run on CPU", file=sys.stderr)
        return 2
    if args.dry_run:
        import torch

        torch.set_num_threads(1)
    sizes = ["dry"] if args.dry_run else [s.strip() for s in args.sizes.split(",") if s.strip()]
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    started = time.time()
    args.out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": "python benchmarks/gpu_check.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "dry_run": args.dry_run,
        "sizes": {},
    }

    def section(store: dict, name: str, fn, *a, key: str | None = None):
        if (key or name) in skip:
            store[name] = "skipped (--skip)"
            return
        if time.time() - started > args.budget_s:
            store[name] = f"skipped (past --budget-s {args.budget_s:.0f})"
            return
        t = time.perf_counter()
        try:
            store[name] = fn(*a)
        except Exception as err:  # a section's failure is a result; the check goes on
            store[name] = {
                "error": f"{type(err).__name__}: {err}",
                "traceback": traceback.format_exc()[-3000:],
            }
        print(f"gpu_check: {name} done in {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
        _save(args.out, result, started)

    with tempfile.TemporaryDirectory(prefix="vrft-gpu-check-") as tmp:
        work = Path(tmp)
        n_records = plan.prompts * (plan.steps + plan.warmup) * 2
        records = train_speed.write_records(work / "data", n_records)
        for size in sizes:
            if time.time() - started > args.budget_s:
                result["sizes"][size] = f"skipped (past --budget-s {args.budget_s:.0f})"
                continue
            store: dict[str, Any] = {}
            result["sizes"][size] = store
            model_dir, store["model"] = build_model(size, work, plan.image_side)
            section(store, "grpo", grpo_rows, model_dir, records, work, plan)
            section(store, "logprob_agreement", logprob_agreement, model_dir, plan, key="logprob")
            section(store, "lora", lora_row, model_dir, records, work, plan)
            fsdp = store.setdefault("fsdp2", {})
            for mode in [m.strip() for m in args.fsdp_speedups.split(",") if m.strip()]:
                section(fsdp, mode, fsdp2_single, model_dir, records, work, plan, mode, key="fsdp2")
            section(store, "eval", eval_rows, model_dir, work, plan)
            shutil.rmtree(model_dir, ignore_errors=True)
    _save(args.out, result, started)
    print(markdown(result))
    return 0


def _save(out: Path, result: dict, started: float) -> None:
    result["wall_s"] = round(time.time() - started, 1)
    (out / "gpu.json").write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
    (out / "gpu.md").write_text(markdown(result) + "\n", encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
