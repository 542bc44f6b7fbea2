"""Where the time of a GRPO step goes: generation, reward, log-prob passes, update, other.

No part of TRL is patched. `StepTimer` registers PyTorch forward hooks (a public API) on the policy (and
reference) model and tells the passes apart by their inputs:

- a forward with `labels` and gradients enabled is the policy-loss pass (part of the *update*);
- a forward with `labels` and no gradients is a *log-prob* pass (old / reference log-probabilities);
- any other forward is *generation* (prefill and decoding); generation time is the span from the first
  to the last generation forward of the step (sampling between forwards included).

Reward time is the time spent inside the reward functions (`NamedReward.seconds`). The *update* runs
from the start of each training forward to the end of its micro-step (forward, backward and, on the
last micro-step, clipping and the optimizer step: `on_substep_end` / `on_step_end`). The rest of the
step (processor calls, padding, data loading, advantages) is *other*. With vLLM rollouts generation happens outside the
model and shows up as *other*.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import torch
from transformers import TrainerCallback

PARTS = ("generation", "reward", "logprob", "update", "other")


class StepTimer(TrainerCallback):
    """Split each optimizer step's wall time into `PARTS` (seconds), averaged over the logging window.

    Args:
        models: the modules to hook (the policy model, and the reference model if there is one).
        reward_seconds: returns the total seconds spent in reward functions so far.
        synchronize: call `torch.cuda.synchronize()` at every boundary (exact GPU timings, slower).
    """

    def __init__(
        self, models: Iterable[torch.nn.Module], reward_seconds: Callable[[], float], synchronize=False
    ):
        self.reward_seconds = reward_seconds
        self.synchronize = synchronize and torch.cuda.is_available()
        self._handles = []
        for model in models:
            self._handles.append(model.register_forward_pre_hook(self._pre, with_kwargs=True))
            self._handles.append(model.register_forward_hook(self._post, with_kwargs=True))
        self._depth = 0
        self._kind: str | None = None
        self._t0 = 0.0
        self._reset_step()
        self.history: list[dict[str, float]] = []  # one dict per optimizer step
        self._window: list[dict[str, float]] = []

    def _now(self) -> float:
        if self.synchronize:
            torch.cuda.synchronize()
        return time.perf_counter()

    def _reset_step(self) -> None:
        self._gen_first: float | None = None
        self._gen_last = 0.0
        self._logprob = 0.0
        self._update = 0.0
        self._update_start: float | None = None

    # forward hooks ------------------------------------------------------------------------------
    def _pre(self, module: torch.nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        self._depth += 1
        if self._depth > 1:  # a hooked module inside another hooked one (e.g. PEFT base model)
            return
        if "labels" in kwargs:
            self._kind = "train" if torch.is_grad_enabled() else "logprob"
        else:
            self._kind = "generation"
        self._t0 = self._now()
        if self._kind == "generation" and self._gen_first is None:
            self._gen_first = self._t0
        if self._kind == "train" and self._update_start is None:
            self._update_start = self._t0

    def _post(self, module: torch.nn.Module, args: tuple, kwargs: dict[str, Any], output: Any) -> None:
        self._depth -= 1
        if self._depth > 0:
            return
        now = self._now()
        if self._kind == "generation":
            self._gen_last = now
        elif self._kind == "logprob":
            self._logprob += now - self._t0

    # trainer callbacks --------------------------------------------------------------------------
    def on_step_begin(self, args, state, control, **kwargs):
        self._reset_step()
        self._step_start = self._now()
        self._reward_start = self.reward_seconds()

    def _end_update(self) -> float:
        now = self._now()
        if self._update_start is not None:
            self._update += now - self._update_start
            self._update_start = None
        return now

    def on_substep_end(self, args, state, control, **kwargs):
        self._end_update()  # a gradient-accumulation micro-step ends after its backward

    def on_step_end(self, args, state, control, **kwargs):
        now = self._end_update()  # ... and the last one after the optimizer step
        total = now - self._step_start
        generation = 0.0 if self._gen_first is None else self._gen_last - self._gen_first
        reward = self.reward_seconds() - self._reward_start
        row = {"total": total, "generation": generation, "reward": reward, "logprob": self._logprob}
        row["update"] = self._update
        row["other"] = max(0.0, total - generation - reward - self._logprob - self._update)
        self.history.append(row)
        self._window.append(row)

    def remove(self) -> None:
        """Remove the hooks (the timer stops measuring)."""
        for h in self._handles:
            h.remove()
        self._handles = []

    def pop_window(self) -> dict[str, float]:
        """Mean seconds per step of each part since the last call, as `train/time/<part>` metrics."""
        if not self._window:
            return {}
        n = len(self._window)
        out = {f"train/time/{k}": sum(r[k] for r in self._window) / n for k in (*PARTS, "total")}
        self._window = []
        return out
