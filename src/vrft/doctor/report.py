"""The doctor's figures from the sampled completions, and how they are written: a printed table,
`doctor.json` (the whole report dict) and a self-contained `doctor.html` (the findings, the figures and
every sampled completion with its image and boxes, or its images / video and answer, drawn by
`vrft.report.html.render_report` and `vrft.report.media_html`)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from vrft.doctor.signals import group_signals, parse_failure_reasons, top_reasons, truncation_share


def _mean(xs: list[float]) -> float:
    xs = [x for x in xs if math.isfinite(x)]
    return sum(xs) / len(xs) if xs else 0.0


def _sd(xs: list[float]) -> float:
    xs = [x for x in xs if math.isfinite(x)]
    if not xs:
        return 0.0
    m = sum(xs) / len(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / len(xs))


def build_report(cfg, *, task_name, task, convention, sampled, reward_names, weights, model, processor,
                 precision, processes, frame_fn) -> dict[str, Any]:  # fmt: skip
    """The report dict (`doctor.json`), findings included."""
    from vrft.doctor.verdict import findings

    g = cfg.grpo.num_generations
    totals = [t for s in sampled for t in s.totals]
    signal = group_signals(totals, g)
    rewards = {}
    for name, w in zip(reward_names, weights):
        values = [v for s in sampled for v in s.rewards[name]]
        per = group_signals(values, g)
        rewards[name] = {
            "weight": w, "mean": _mean(values), "sd": _sd(values), "zero_sd_share": per.zero_sd_share,
            "mean_within_sd": per.mean_within_sd,
            "nan_share": sum(1 for v in values if not math.isfinite(v)) / len(values) if values else 0.0,
        }  # fmt: skip
    parsed = [(p, t, s) for s in sampled for p, t in zip(s.parsed, s.texts)]
    reasons = parse_failure_reasons(p.reason if not p.ok else "ok" for p, _, _ in parsed)
    examples: dict[str, str] = {}
    for p, text, _ in parsed:
        if not p.ok and p.reason not in examples:
            examples[p.reason] = text
    lengths = [n for s in sampled for n in s.lengths]
    limit = cfg.grpo.max_completion_length
    text_config = getattr(model.config, "text_config", None) or model.config
    report: dict[str, Any] = {
        "config": cfg.name,
        "task": task_name,
        "model": str(cfg.model.path),
        "records": len(sampled),
        "num_generations": g,
        "sampling": {"temperature": cfg.grpo.temperature, "top_p": cfg.grpo.top_p, "top_k": cfg.grpo.top_k,
                     "max_completion_length": limit, "seed": cfg.grpo.seed},  # fmt: skip
        "learning_signal": {"zero_sd_share": signal.zero_sd_share, "mean_within_sd": signal.mean_within_sd,
                            "groups": signal.n_groups, "total_mean": _mean(totals)},  # fmt: skip
        "rewards": rewards,
        "format_rate": _mean([1.0 if p.format_ok else 0.0 for p, _, _ in parsed]),
        "parse": {
            "rate": sum(reasons.values()) / len(parsed) if parsed else 0.0,
            "reasons": reasons,
            "top_reasons": [{"reason": r, "count": c, "example": examples.get(r, "")}
                            for r, c in top_reasons(reasons, 3)],  # fmt: skip
        },
        "truncation": {"share": truncation_share(lengths, limit), "max_completion_length": limit,
                       "mean_length": _mean([float(n) for n in lengths]), "longest": max(lengths, default=0)},  # fmt: skip
        "prompt": {
            "max_prompt_length": getattr(cfg.grpo, "max_prompt_length", None),
            "model_context": getattr(text_config, "max_position_embeddings", None),
            "max_tokens": max((s.prompt_tokens for s in sampled), default=0),
            "records": [{"id": s.record.id, "prompt_tokens": s.prompt_tokens, "image_tokens": s.image_tokens,
                         "first_image_token": s.first_image_token} for s in sampled],  # fmt: skip
        },
        "images": [{"id": s.record.id, "original": [s.record.width, s.record.height],
                    "resized": list(s.resized) if s.resized else None} for s in sampled],  # fmt: skip
        "convention": _convention_check(task, convention, sampled, processor) if task_name in ("detection", "grounding") else None,
        "memory": _memory(cfg, model, sampled, precision, processes),
    }  # fmt: skip
    report["findings"] = [f.to_dict() for f in findings(report, cfg)]
    report["blocking"] = any(f["blocking"] for f in report["findings"])
    report["_samples"] = _samples(sampled, reward_names)
    return report


def _decode(box: list[float], conv: str, w: float, h: float, processor) -> list[float] | None:
    from vrft.boxes import Frame
    from vrft.models.load import frame_for

    if conv == "norm1":
        return [min(max(v, 0.0), 1.0) * s for v, s in zip(box, (w, h, w, h))]
    try:
        frame = frame_for(w, h, conv, processor) if conv == "resized_pixels" else Frame(w, h, conv)
    except Exception:  # noqa: BLE001 - a processor without a pixel grid: that convention is not checked
        return None
    return frame.decode(box)


def _convention_check(task, convention, sampled, processor) -> dict[str, Any]:
    """Mean IoU with the ground truth of the model's raw boxes read under each convention: for every
    completion with boxes on a record with ground-truth boxes, each GT box's best IoU, averaged."""
    from vrft.boxes import iou_matrix
    from vrft.doctor.run import CHECKED_CONVENTIONS

    sums = dict.fromkeys(CHECKED_CONVENTIONS, 0.0)
    usable = set(CHECKED_CONVENTIONS)
    n = 0
    for s in sampled:
        gt = s.record.boxes or []
        if not gt:
            continue
        for text in s.texts:
            raw = task.parse(text, None).boxes
            if not raw:
                continue
            n += 1
            for conv in CHECKED_CONVENTIONS:
                decoded = [_decode(b, conv, s.record.width, s.record.height, processor) for b in raw]
                if any(d is None for d in decoded):
                    usable.discard(conv)
                    continue
                m = iou_matrix(gt, decoded)
                sums[conv] += float(m.max(axis=1).mean()) if m.size else 0.0
    return {
        "configured": convention,
        "answers_with_boxes": n,
        "mean_iou": {c: (sums[c] / n if n else 0.0) for c in CHECKED_CONVENTIONS if c in usable},
    }


def _memory(cfg, model, sampled, precision, processes) -> dict[str, Any]:
    from vrft.doctor.memory import estimate, lora_trainable, model_shape
    from vrft.train.builder import vision_module_names

    lora = cfg.model.lora
    trainable = None
    if lora.enabled:
        trainable = lora_trainable(model, lora.target_modules, lora.r, include_vision=lora.include_vision,
                                   vision_prefixes=vision_module_names(model))  # fmt: skip
    elif cfg.model.freeze_vision:
        frozen = {
            n
            for v in vision_module_names(model)
            for n, _ in model.get_submodule(v).named_parameters(prefix=v)
        }
        trainable = sum(p.numel() for n, p in model.named_parameters() if n not in frozen)
    shape = model_shape(model, trainable=trainable)
    merge = getattr(getattr(model.config, "vision_config", None), "spatial_merge_size", 1) or 1
    patches = max((s.image_tokens for s in sampled), default=0) * merge * merge
    half = precision.bf16 or precision.fp16
    est = estimate(
        shape,
        rows=cfg.grpo.per_device_prompts * cfg.grpo.num_generations,
        tokens_per_row=max((s.prompt_tokens for s in sampled), default=0) + cfg.grpo.max_completion_length,
        patches_per_row=patches,
        weight_bytes=2 if precision.weights in ("bfloat16", "float16") else 4,
        activation_bytes=2 if half else 4,
        beta=cfg.grpo.beta,
        lora=lora.enabled,
        gradient_checkpointing=cfg.model.gradient_checkpointing,
        attention_scores=cfg.model.attn_implementation == "eager"
        or next(model.parameters()).device.type == "cpu",
        processes=processes,
    )
    return est.to_dict()


def _samples(sampled, reward_names) -> list[dict[str, Any]]:
    out = []
    for s in sampled:
        r = s.record
        for j, (text, p) in enumerate(zip(s.texts, s.parsed)):
            out.append({
                "id": f"{r.id}#{j}", "image": str(r.image_path), "width": r.width, "height": r.height,
                "task": r.task, "query": r.category or r.expression or "", "completion": text,
                "gt_boxes": r.boxes or [], "pred_boxes": [list(map(float, b)) for b in p.boxes],
                "confidences": list(p.scores), "gt_label": r.label if r.label is not None else r.text,
                "pred_label": p.label if p.label is not None else p.text, "parse_ok": p.ok, "reason": p.reason,
                "rewards": {n: s.rewards[n][j] for n in reward_names}, "score": s.totals[j],
                **_media_fields(r, p),
            })  # fmt: skip
    return out


def _media_fields(r, p) -> dict[str, Any]:
    """The fields `vrft.report.media_html` draws for a record with several images or a video."""
    if r.images is not None:
        parts = r.visual_parts()
        return {"image": None, "images": [str(x.path) for x in parts],
                "image_sizes": [[x.width, x.height] for x in parts], "gt_image": r.target_image,
                "pred_image": p.image if p.ok else None}  # fmt: skip
    if r.video is not None:
        part = r.visual_parts()[0]
        return {"image": None, "video": str(part.path), "query": r.event, "duration": r.duration, "fps": part.fps,
                "gt_window": r.window, "pred_window": p.window}  # fmt: skip
    return {}


# ------------------------------------------------------------------------------------------- output
def table(report: dict[str, Any]) -> str:
    """The printed summary: figures, then the verdict (one line per finding)."""
    from vrft.doctor.verdict import Finding

    sig, parse, trunc, prompt = (
        report["learning_signal"],
        report["parse"],
        report["truncation"],
        report["prompt"],
    )
    lines = [
        f"vrft doctor: {report['config'] or report['task']} ({report['records']} prompts x G="
        f"{report['num_generations']}, temperature {report['sampling']['temperature']})",
        f"  learning signal   flat groups {100 * sig['zero_sd_share']:.0f} %   within-group sd "
        f"{sig['mean_within_sd']:.3f}   (total reward mean {sig['total_mean']:.3f})",
    ]
    for name, r in report["rewards"].items():
        lines.append(f"  reward {name:<22} weight {r['weight']:<5g} mean {r['mean']:.3f}  sd {r['sd']:.3f}  "
                     f"flat groups {100 * r['zero_sd_share']:.0f} %")  # fmt: skip
    lines.append(f"  format rate       {100 * report['format_rate']:.0f} %")
    reasons = ", ".join(f"{t['reason']} ({t['count']})" for t in parse["top_reasons"]) or "-"
    lines.append(f"  parse failures    {100 * parse['rate']:.0f} %   top: {reasons}")
    lines.append(f"  truncation        {100 * trunc['share']:.0f} % at {trunc['max_completion_length']} tokens "
                 f"(mean length {trunc['mean_length']:.1f})")  # fmt: skip
    image = max((r["image_tokens"] for r in prompt["records"]), default=0)
    lines.append(f"  prompt tokens     longest {prompt['max_tokens']} (image tokens up to {image}); "
                 f"grpo.max_prompt_length {prompt['max_prompt_length']}; model context {prompt['model_context']}")  # fmt: skip
    sizes = {(tuple(i["original"]), tuple(i["resized"]) if i["resized"] else None) for i in report["images"]}
    shown = "; ".join(
        f"{o[0]}x{o[1]} -> {f'{r[0]}x{r[1]}' if r else '?'}" for o, r in sorted(sizes, key=str)[:4]
    )
    lines.append(f"  images            {shown}")
    conv = report["convention"]
    if conv:
        ious = "  ".join(f"{k} {v:.2f}" for k, v in conv["mean_iou"].items())
        lines.append(f"  convention        configured {conv['configured']}; mean IoU read as: {ious} "
                     f"({conv['answers_with_boxes']} answers with boxes)")  # fmt: skip
    mem = report["memory"]["per_device_gib"]
    lines.append(
        f"  memory estimate   GiB per device ({report['memory']['processes']} process(es)): "
        + "  ".join(f"{k} {v:.2f}" for k, v in mem.items())
    )
    lines.append("verdict:")
    if not report["findings"]:
        lines.append("  nothing blocks training")
    for f in report["findings"]:
        lines.append("  " + Finding(**f).line())
    return "\n".join(lines)


def write(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """doctor.json and doctor.html in `out` (locked and listed in its manifest, `vrft.outputs.OutputDir`:
    an earlier doctor's files are replaced, a file vrft did not write never is); returns their paths."""
    from vrft.outputs import OutputDir

    with OutputDir(out, "doctor") as d:
        d.claim(["doctor.json", "doctor.html"])
        return _write(report, out)


def _write(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    from vrft.outputs import atomic_write_text
    from vrft.report.html import render_report

    data = {k: v for k, v in report.items() if not k.startswith("_")}
    data["samples"] = report["_samples"]
    json_path = atomic_write_text(out / "doctor.json", json.dumps(data, indent=2, default=str) + "\n")
    metrics = {
        "verdict": {
            f"{i + 1}. {'BLOCKING' if f['blocking'] else 'warning'} [{f['key']}]": f["message"]
            for i, f in enumerate(report["findings"])
        }
        or {"-": "nothing blocks training"},  # fmt: skip
        "learning_signal": report["learning_signal"],
        "format_rate": report["format_rate"],
        "parse_fail_rate": report["parse"]["rate"],
        "parse_failures": {
            t["reason"]: f"{t['count']} completion(s), e.g. {t['example'][:160]!r}"
            for t in report["parse"]["top_reasons"]
        },
        "truncation_share": report["truncation"]["share"],
        "longest_prompt_tokens": report["prompt"]["max_tokens"],
        "convention_mean_iou": (report["convention"] or {}).get("mean_iou", {}),
        "memory_gib_per_device": report["memory"]["per_device_gib"],
    }
    html_path = render_report(report["_samples"], out / "doctor.html", title=f"vrft doctor: {report['config'] or report['task']}",
                              metrics=metrics)  # fmt: skip
    return json_path, html_path
