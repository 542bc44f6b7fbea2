"""PNG plots with matplotlib's Agg backend (no display needed): training curves, metric vs shots."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_curves(
    series: Mapping[str, Sequence[tuple[float, float]]],
    out_png: str | os.PathLike,
    title: str = "",
    *,
    xlabel: str = "step",
    ylabel: str = "",
) -> Path:
    """Plot one line per series of ``(step, value)`` points (e.g. rewards over training steps).

    Non-finite values are skipped. An empty series still gets a legend entry. Returns `out_png`.
    """
    import math

    plt = _pyplot()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=100)
    try:
        for name, points in series.items():
            pts = sorted((float(x), float(y)) for x, y in points if math.isfinite(float(y)))
            xs = [p[0] for p in pts]
            ys = [p[1] for p in pts]
            ax.plot(xs, ys, marker="o" if len(pts) <= 20 else None, markersize=3, label=name)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if series:
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out_png)
    finally:
        plt.close(fig)
    return out_png


def plot_metric_vs_shots(
    rows: Sequence[Mapping[str, Any]],
    out_png: str | os.PathLike,
    *,
    metric: str | None = None,
    title: str = "",
) -> Path:
    """Plot a metric against the number of shots, one line per method (the paper's few-shot figure).

    Args:
        rows: dicts with ``"method"`` (e.g. "baseline", "SFT", "Visual-RFT"), ``"shots"`` (int) and
            ``"value"`` (the metric; ``None`` rows are skipped), optionally ``"sd"`` (drawn as an error
            bar of +- sd where given). A method with a single point at shots 0 (the untuned baseline) is
            drawn as a horizontal dashed line.
        out_png: output file.
        metric: the y-axis label (default: ``rows[0]["metric"]`` if present, else "metric").
        title: plot title.
    """
    plt = _pyplot()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    if metric is None:
        metric = next((str(r["metric"]) for r in rows if r.get("metric")), "metric")
    by_method: dict[str, list[tuple[int, float, float]]] = {}
    for r in rows:
        if r.get("value") is None:
            continue
        sd = float(r["sd"]) if r.get("sd") is not None else 0.0
        by_method.setdefault(str(r["method"]), []).append((int(r["shots"]), float(r["value"]), sd))
    all_shots = sorted({p[0] for pts in by_method.values() for p in pts if p[0] > 0})
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    try:
        for method, pts in by_method.items():
            pts.sort()
            if all(p[0] == 0 for p in pts) and all_shots:
                ax.axhline(pts[0][1], linestyle="--", color="gray", label=f"{method} ({pts[0][1]:.1f})")
                continue
            xs, ys, sds = [p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts]
            if any(sds):
                ax.errorbar(xs, ys, yerr=sds, marker="o", capsize=4, label=f"{method} (mean ± sd)")
            else:
                ax.plot(xs, ys, marker="o", label=method)
        if all_shots:
            ax.set_xscale("log", base=2)
            ax.set_xticks(all_shots)
            ax.set_xticklabels([str(s) for s in all_shots])
        ax.set_xlabel("shots per class")
        ax.set_ylabel(metric)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        if by_method:
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out_png)
    finally:
        plt.close(fig)
    return out_png


def plot_training_curves(
    panels: Mapping[str, Mapping[str, Sequence[tuple[float, float]]]],
    out_png: str | os.PathLike,
    title: str = "",
) -> Path:
    """Plot the panels of a training run side by side (2 columns), one line per series of ``(step,
    value)`` points; a panel with no series says "not logged". Non-finite values are skipped.

    Args:
        panels: panel title -> series name -> points (e.g. `vrft.train.run_log.curve_series`).
        out_png: output file.
        title: figure title.
    """
    import math

    plt = _pyplot()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    n = max(len(panels), 1)
    rows = (n + 1) // 2
    fig, axes = plt.subplots(rows, 2, figsize=(11, 3.4 * rows), dpi=100, squeeze=False)
    try:
        flat = [ax for row in axes for ax in row]
        for ax, (name, series) in zip(flat, panels.items(), strict=False):
            for label, points in series.items():
                pts = sorted((float(x), float(y)) for x, y in points if math.isfinite(float(y)))
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o" if len(pts) <= 20 else None,
                        markersize=3, label=label)  # fmt: skip
            ax.set_title(name, fontsize=10)
            ax.set_xlabel("step")
            ax.grid(True, alpha=0.3)
            if series:
                ax.legend(fontsize=7)
            else:
                ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes, color="gray")
        for ax in flat[len(panels) :]:
            ax.axis("off")
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(out_png)
    finally:
        plt.close(fig)
    return out_png
