"""Plots are real PNGs with the expected content drawn."""

from __future__ import annotations

from PIL import Image

from vrft.report.plots import plot_curves, plot_metric_vs_shots


def _non_white_fraction(path):
    im = Image.open(path).convert("L")
    hist = im.histogram()
    return 1 - hist[255] / sum(hist)


def test_plot_curves_writes_png(tmp_path):
    out = plot_curves(
        {
            "reward/iou": [(0, 0.1), (1, 0.3), (2, float("nan")), (3, 0.5)],
            "reward/format": [],
            "kl": [(0, 0.0)],
        },
        tmp_path / "sub" / "curves.png",
        "rewards",
    )
    im = Image.open(out)
    assert im.format == "PNG" and im.size == (700, 420)
    assert _non_white_fraction(out) > 0.02


def test_plot_metric_vs_shots(tmp_path):
    rows = [
        {"method": "baseline", "shots": 0, "value": 19.6, "metric": "mAP"},
        {"method": "SFT", "shots": 1, "value": 19.5},
        {"method": "SFT", "shots": 4, "value": 25.2},
        {"method": "Visual-RFT", "shots": 4, "value": 40.6},
        {"method": "Visual-RFT", "shots": 1, "value": 33.6},
        {"method": "Visual-RFT", "shots": 16, "value": None},
    ]
    out = plot_metric_vs_shots(rows, tmp_path / "shots.png", title="few-shot COCO")
    assert Image.open(out).size == (600, 400)
    empty = plot_metric_vs_shots([], tmp_path / "empty.png")
    assert _non_white_fraction(out) > _non_white_fraction(empty)


def test_plot_metric_vs_shots_draws_sd_error_bars(tmp_path):
    import numpy as np

    rows = [{"method": "SFT", "shots": 1, "value": 5.0}, {"method": "SFT", "shots": 4, "value": 7.0}]
    plain = plot_metric_vs_shots(rows, tmp_path / "plain.png", metric="mAP")
    bars = plot_metric_vs_shots(
        [{**r, "sd": 1.5} for r in rows], tmp_path / "bars.png", metric="mAP"
    )
    a = np.asarray(Image.open(plain).convert("L"), dtype=int)
    b = np.asarray(Image.open(bars).convert("L"), dtype=int)
    assert (a != b).sum() > 50  # the error bars (and the legend's "mean ± sd") are drawn


def test_plot_training_curves_draws_every_panel(tmp_path):
    from vrft.report.plots import plot_training_curves

    panels = {
        "reward": {"total": [(1, 0.1), (2, 0.4)], "iou": [(1, 0.0), (2, 0.2)]},
        "KL": {"KL": [(1, 0.0), (2, 0.01)]},
        "groups and truncation": {"zero-sd share": [(1, 1.0), (2, 0.5)]},
        "parse failures": {},
    }
    out = plot_training_curves(panels, tmp_path / "curves.png", title="run")
    im = Image.open(out)
    assert im.format == "PNG" and im.size == (1100, 680)
    assert _non_white_fraction(out) > 0.02
