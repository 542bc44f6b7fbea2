"""Where a GRPO step WITH tools spends its time (`tools.enabled`: TRL 1.16's own tool loop).

One run, one table: the tools demo's Visual-RFT steps (`vrft.demo.tools_demo.rft_config`: shipped Qwen3-VL tools
base, 128 px views of 512 px scenes, G = 4, 4 prompts/step) on the same prompts

- with tools, from a model SFT'd on tool traces made in this script (`tools_demo.fewshot_sets` /
  `sft_config`, the demo's ``sft_traces`` arm: it calls ``zoom_in``, so the tool loop really runs);
- without tools, from the same SFT model, speed-ups off (TRL's plain single-turn path) and on (vrft's);
- with and without tools from the shipped base (the demo's ``rft`` arm; the base rarely calls a tool);

then a breakdown of the tools steps: each `generate` (first turn and each tool round: rows, prompt
length, images), the tool calls, the log-prob passes, the policy forward and the backward + optimizer.

How it is measured (benchmark-only, nothing in src/ is changed): `vrft.train.timing.StepTimer` (forward
hooks) for the step split, plus TIMING WRAPPERS set as instance attributes on the ONE trainer of each run
(`trainer_hook` of `run_grpo`) around TRL's methods ``_generate_single_turn``, ``_tool_call_loop``,
``_tokenize_prompts``, ``_get_per_token_logps_and_entropies`` and ``_calculate_rewards``, and around the
built environment class's ``_call`` (vrft's own tool dispatch). The wrappers only read the clock and the
shapes of the arguments; they call the original bound method unchanged.

    python benchmarks/train_speed_tools.py                  # ~2.5 minutes on 2 idle CPU cores
    python benchmarks/train_speed_tools.py --steps 1 --rounds 1 --no-save   # a smoke run (~35 s)

Writes benchmarks/results/train_speed_tools.md (date, machine, load, command, tables).
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from train_speed import Meter, Row, environment_lines  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "train_speed_tools.md"


@dataclass
class Breakdown:
    """Per-step timings of one run's trainer, from the labelled wrappers (index = optimizer step)."""

    steps: list[dict[str, Any]] = field(default_factory=list)

    def new(self) -> dict[str, Any]:
        row: dict[str, Any] = defaultdict(float)
        row["gens"] = []  # (round, rows, max prompt tokens, images, new tokens max, seconds)
        row["logp"] = []  # (kind, rows, length, seconds)
        self.steps.append(row)
        return row


def instrument(trainer: Any, bd: Breakdown) -> None:
    """Timing wrappers around bound methods of THIS trainer instance (benchmark only, see the docstring)."""
    import torch
    from transformers import TrainerCallback

    state = {"row": bd.new(), "round": 0, "in_loop": False}

    def wrap(name: str, before=None, after=None):
        original = getattr(trainer, name)

        def timed(*a, **k):
            ctx = before(a, k) if before else None
            t0 = time.perf_counter()
            try:
                return original(*a, **k)
            finally:
                dt = time.perf_counter() - t0
                if after:
                    after(a, k, ctx, dt)

        setattr(trainer, name, timed)  # instance attribute: this trainer only

    def gen_after(a, k, ctx, dt):
        prompt_ids, images = a[0], a[1]
        n_img = sum(len(x) for x in images if x) if images else 0
        rnd = state["round"] if state["in_loop"] else 0
        if state["in_loop"]:
            state["round"] += 1
        state["row"]["gens"].append((rnd, len(prompt_ids), max(len(p) for p in prompt_ids), n_img, dt))
        state["row"]["generate"] += dt

    def loop_before(a, k):
        state["in_loop"], state["round"] = True, 1

    def loop_after(a, k, ctx, dt):
        state["in_loop"] = False
        state["row"]["tool_loop"] += dt

    def logp_after(a, k, ctx, dt):
        model, input_ids = a[0], a[1]
        if torch.is_grad_enabled():
            kind = "policy forward (loss)"
        elif getattr(trainer, "ref_model", None) is not None and model is trainer.ref_model:
            kind = "reference log-probs"
        else:
            kind = "old / reference log-probs"
        state["row"]["logp"].append((kind, int(input_ids.shape[0]), int(input_ids.shape[1]), dt))

    def add(key):
        def after(a, k, ctx, dt):
            state["row"][key] += dt

        return after

    wrap("_generate_single_turn", after=gen_after)
    if trainer.tools:
        wrap("_tool_call_loop", before=loop_before, after=loop_after)
    wrap("_tokenize_prompts", after=add("tokenize"))
    wrap("_get_per_token_logps_and_entropies", after=logp_after)
    wrap("_calculate_rewards", after=add("rewards"))
    wrap("_generate_and_score_completions", after=add("rollout"))

    for factory in (getattr(trainer, "environment_factories", None) or {}).values():
        if isinstance(factory, type) and "_call" not in factory.__dict__:
            base_call = factory._call

            def tool_call(self, *a, _orig=base_call, **k):
                t0 = time.perf_counter()
                try:
                    return _orig(self, *a, **k)
                finally:
                    state["row"]["tools"] += time.perf_counter() - t0
                    state["row"]["tool_calls"] += 1

            factory._call = tool_call  # the class built for this run by vrft.tools.env.tool_environment

    from vrft.train.vision_dedup import find_vision_tower

    t_in = [0.0]

    def pre(module, args):
        t_in[0] = time.perf_counter()

    def post(module, args, output):
        state["row"]["vision"] += time.perf_counter() - t_in[0]

    for model in (trainer.model, getattr(trainer, "ref_model", None)):
        found = find_vision_tower(model) if model is not None else None
        if found is not None:  # forward hooks (a public PyTorch API) on the vision tower
            found[0].register_forward_pre_hook(pre)
            found[0].register_forward_hook(post)

    class _Steps(TrainerCallback):
        def on_step_end(self, args, state_, control, **kwargs):
            state["row"] = bd.new()

    trainer.add_callback(_Steps())


# ---------------------------------------------------------------------------------------------- runs
def run_row(settings, start: Path, records: Path, out: Path, *, tools: bool, speed: str, label: str,
            warmup: int) -> tuple[Row, Breakdown]:  # fmt: skip
    from vrft.demo.tools_demo import rft_config
    from vrft.train import run_grpo

    cfg = rft_config(settings, start, records, 0, out, tools=tools)
    cfg = cfg.model_copy(update={"grpo": cfg.grpo.model_copy(update={"speedups": speed})})
    meters: list[Meter] = []
    bd = Breakdown()

    def hook(trainer):
        rewards = [f for f in trainer.reward_funcs if hasattr(f, "seconds")]
        meters.append(Meter(trainer, lambda: sum(r.seconds for r in rewards)))
        instrument(trainer, bd)

    run_grpo(cfg, trainer_hook=hook)
    g, pps = settings.tools.rft.num_generations, settings.experiments.prompts_per_step
    row = meters[0].result(Row(label, g, pps, speed), warmup)
    bd.steps = bd.steps[warmup : warmup + len(row.steps)]
    return row, bd


def med(values) -> float:
    values = list(values)
    return statistics.median(values) if values else 0.0


def main_table(rows: list[tuple[Row, Breakdown]], ref: Row) -> str:
    head = ("| run | step s (median) | x no-tools (same model, speed-ups off) | generation | log-prob | update | "
            "reward | other | generate calls/step | tool calls/step | images encoded/step | "
            "mean completion tokens | longest first-turn prompt | log-prob pass (rows x tokens) |")  # fmt: skip
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r, bd in rows:
        lines.append(
            f"| {r.name} | {r.mean('total'):.2f} | {r.mean('total') / ref.mean('total'):.2f}x | "
            f"{r.mean('generation'):.2f} | {r.mean('logprob'):.2f} | {r.mean('update'):.2f} | "
            f"{r.mean('reward'):.3f} | {r.mean('other'):.2f} | {med(len(s['gens']) for s in bd.steps):.0f} | "
            f"{med(s['tool_calls'] for s in bd.steps):.0f} | {statistics.fmean(r.images):.0f} | "
            f"{statistics.fmean(r.completion_tokens) if r.completion_tokens else float('nan'):.1f} | "
            f"{_first_prompt(bd)} | {_logp_shape(bd)} |"
        )
    return "\n".join(lines)


def _first_prompt(bd: Breakdown) -> str:
    lengths = [max((g[2] for g in s["gens"] if g[0] == 0), default=0) for s in bd.steps]
    return f"{med(lengths):.0f} tokens" if any(lengths) else "(vrft rollout)"


def _logp_shape(bd: Breakdown) -> str:
    shapes = [
        next(((lp[1], lp[2]) for lp in s["logp"] if lp[0].startswith("policy")), None) for s in bd.steps
    ]
    shapes = [x for x in shapes if x]
    if not shapes:
        return ""
    return f"{med(x[0] for x in shapes):.0f} x {med(x[1] for x in shapes):.0f}"


def breakdown_table(row: Row, bd: Breakdown) -> str:
    """Median seconds per step of each part of a tools step, with its share of the step."""
    total = row.mean("total")
    parts: list[tuple[str, float, str]] = []
    rounds = sorted({g[0] for s in bd.steps for g in s["gens"]})
    for rnd in rounds:
        calls = [[g for g in s["gens"] if g[0] == rnd] for s in bd.steps]
        secs = med(sum(g[4] for g in c) for c in calls)
        rows_ = med(sum(g[1] for g in c) for c in calls)
        plen = med(max((g[2] for g in c), default=0) for c in calls)
        imgs = med(sum(g[3] for g in c) for c in calls)
        name = "generate, first turn (G per prompt)" if rnd == 0 else f"generate, tool round {rnd}"
        parts.append(
            (name, secs, f"{rows_:.0f} rows, longest prompt {plen:.0f} tokens, {imgs:.0f} images in")
        )
    gen_loop = med(sum(g[4] for g in s["gens"] if g[0] > 0) for s in bd.steps)
    tools = med(s["tools"] for s in bd.steps)
    loop = med(s["tool_loop"] for s in bd.steps)
    parts.append(
        ("tool execution (vrft's zoom_in etc.)", tools, f"{med(s['tool_calls'] for s in bd.steps):.0f} calls")
    )
    parts.append(("tool loop bookkeeping (chat-template suffixes, image processor, parsing)",
                  max(0.0, loop - gen_loop - tools), "inside `_tool_call_loop`, outside generate and tools"))  # fmt: skip
    parts.append(("prompt tokenization (`_tokenize_prompts`, chat template + images)",
                  med(s["tokenize"] for s in bd.steps), ""))  # fmt: skip
    kinds = sorted({lp[0] for s in bd.steps for lp in s["logp"]})
    for kind in kinds:
        sel = [[lp for lp in s["logp"] if lp[0] == kind] for s in bd.steps]
        secs = med(sum(lp[3] for lp in c) for c in sel)
        shape = med(max((lp[2] for lp in c), default=0) for c in sel)
        rws = med(sum(lp[1] for lp in c) for c in sel)
        parts.append((kind, secs, f"{rws:.0f} rows x {shape:.0f} tokens (prompt + completion)"))
    policy = med(sum(lp[3] for lp in s["logp"] if lp[0].startswith("policy")) for s in bd.steps)
    parts.append(
        ("backward + optimizer (update - policy forward)", max(0.0, row.mean("update") - policy), "")
    )
    parts.append(("rewards (`_calculate_rewards`)", med(s["rewards"] for s in bd.steps), ""))
    accounted = sum(p[1] for p in parts)
    parts.append(("rest (advantages, padding, callbacks, logging)", max(0.0, total - accounted), ""))
    lines = ["| part of a tools step | seconds (median) | share of step | what |", "|---|---|---|---|"]
    for name, secs, what in parts:
        lines.append(f"| {name} | {secs:.3f} | {100 * secs / total:.0f} % | {what} |")
    lines.append(f"| **step** | **{total:.3f}** | 100 % | |")
    vision = med(s["vision"] for s in bd.steps)
    lines.append(
        f"| (of which the vision tower, policy and reference, in the passes above) | {vision:.3f} | "
        f"{100 * vision / total:.0f} % | {statistics.fmean(row.images):.0f} images encoded per step |"
    )
    return "\n".join(lines)


def decomposition(rows: list[Row]) -> list[str]:
    """The demo's gap (rft_tools vs rft) in three steps, each between two rows of this run."""
    sft_tools, _, _, base_tools, base_off, base_auto = (r.mean("total") for r in rows)
    return [
        f"- the demo's gap, `rft_tools` (SFT model, tools) vs `rft` (base, no tools, speed-ups auto): "
        f"{base_auto:.2f} s -> {sft_tools:.2f} s per step ({sft_tools / base_auto:.1f}x), in three steps:",
        f"  - vrft's speed-ups standing aside (base, no tools: auto -> off): {base_auto:.2f} -> {base_off:.2f} s "
        f"({base_off / base_auto:.2f}x)",
        f"  - the tools system block in the prompt, no tool called (base: no tools -> tools, both TRL's "
        f"single-turn path): {base_off:.2f} -> {base_tools:.2f} s ({base_tools / base_off:.2f}x)",
        f"  - tool calls, tool rounds and longer transcripts (base with tools -> SFT model with tools): "
        f"{base_tools:.2f} -> {sft_tools:.2f} s ({sft_tools / base_tools:.2f}x)",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4, help="measured steps per run (after the warm-up)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2, help="runs of every row, in alternating order")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: leave as is)")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from transformers import AutoConfig

    from vrft.demo.settings import load_settings
    from vrft.demo.tools_demo import fewshot_sets, resolve_tools_base, sft_config, tools_part
    from vrft.models.load import convention_for
    from vrft.train.sft import run_sft

    started, t_all = datetime.datetime.now(), time.perf_counter()
    load_before = os.getloadavg()
    settings = load_settings(
        overrides=[f"tools.rft.steps={args.steps + args.warmup}", "experiments.seeds=[0]"]
    )
    base, _ = resolve_tools_base(settings)
    tmp = Path(tempfile.mkdtemp(prefix="vrft-toolspeed-"))
    try:
        pool = tools_part(settings, "tools_pool", tmp / "world" / "tools_pool")
        convention = convention_for(AutoConfig.from_pretrained(base))
        sets = fewshot_sets(settings, pool, 0, convention, tmp / "fewshot")
        t0 = time.perf_counter()
        sft_dir = run_sft(sft_config(settings, base, sets["traces"], 0, tmp / "sft"))
        sft_s = time.perf_counter() - t0
        plan = [  # (start, tools, speed-ups, label)
            (sft_dir, True, "off", "SFT model, WITH tools (TRL tool loop)"),
            (sft_dir, False, "off", "SFT model, no tools, speed-ups off"),
            (sft_dir, False, "auto", "SFT model, no tools, speed-ups auto (vrft default)"),
            (base, True, "off", "shipped base, WITH tools"),
            (base, False, "off", "shipped base, no tools, speed-ups off"),
            (base, False, "auto", "shipped base, no tools, speed-ups auto (the demo's rft arm)"),
        ]
        results: list[tuple[Row, Breakdown] | None] = [None] * len(plan)
        for rnd in range(args.rounds):  # rows in alternating order (a shared machine's load drifts)
            order = range(len(plan)) if rnd % 2 == 0 else reversed(range(len(plan)))
            for i in order:
                start, tools, speed, label = plan[i]
                row, bd = run_row(settings, start, sets["plain"], tmp / f"run{i}-{rnd}", tools=tools,
                                  speed=speed, label=label, warmup=args.warmup)  # fmt: skip
                if results[i] is None:
                    results[i] = (row, bd)
                else:
                    results[i][0].merge(row)
                    results[i][1].steps += bd.steps
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ref = results[1][0]
    t = settings.tools
    report = [
        f"# Training speed with tools: where a GRPO step with `tools.enabled` spends its time ({started:%Y-%m-%d})",
        "",
        f"- date: {started:%Y-%m-%dT%H:%M:%S}; wall time {time.perf_counter() - t_all:.0f} s "
        f"(SFT on traces {sft_s:.0f} s)",
        *environment_lines(
            " ".join(["python benchmarks/train_speed_tools.py", *(sys.argv[1:] if argv is None else argv)]),
            load_before, os.getloadavg(),
        ),
        f"- run: the tools demo's Visual-RFT config (`tools_demo.rft_config`): shipped Qwen3-VL tools base "
        f"({base.name}), {t.view_size} px views of {t.scene_size} px scenes, G = {t.rft.num_generations}, "
        f"{settings.experiments.prompts_per_step} prompts/step, max {t.rft.max_completion_length} completion "
        f"tokens, beta {settings.rft.beta}, tools {', '.join(('zoom_in',))} (max_calls {t.max_calls}), "
        f"{args.warmup} warm-up step(s) dropped per run, median of {args.steps} steps x {args.rounds} rounds "
        f"(rows run in alternating order); the SFT model is the demo's "
        f"`sft_traces` arm ({t.sft.steps} steps on {t.shots} traces per shape, seed 0)",
        "- step split (s): `vrft.train.timing.StepTimer` (generation = first to last generation forward; "
        "log-prob = forwards without gradients with labels; update = policy forward + backward + optimizer)",
        "",
        main_table(results, ref),
        "",
    ]
    report += decomposition([r for r, _ in results]) + [""]
    for row, bd in results:
        if "WITH tools" in row.name:
            report += [f"## Breakdown: {row.name}", "", breakdown_table(row, bd), ""]
    text = "\n".join(report)
    print(text)
    if not args.no_save:
        RESULTS.write_text(text + "\n", encoding="utf-8")
        print(f"\nwrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
