"""Backtest figures: equity curves, drawdowns, the policy's hedge ratio and leverage cap."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cascade_ml.backtest.data import BacktestData  # noqa: E402
from cascade_ml.backtest.metrics import drawdown_path  # noqa: E402


def _mark_cascades(ax, data: BacktestData) -> None:
    mask = data.cascade == 1.0
    if mask.any():
        ax.fill_between(data.index, 0, 1, where=mask, transform=ax.get_xaxis_transform(),
                        color="red", alpha=0.15, lw=0, label="cascade (label)")


def save_plots(runs: dict, data: BacktestData, paths: dict[str, np.ndarray], out_dir: Path,
               symbol: str) -> list[Path]:
    """Write the three figures as PNG files; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    fig, ax = plt.subplots(figsize=(11, 5))
    for name, run in runs.items():
        ax.plot(data.index, run.result.equity, lw=1, label=name)
    ax.set_yscale("log")
    ax.set_title(f"{symbol}: equity (net of fees and funding), OOS")
    ax.legend()
    _mark_cascades(ax, data)
    files.append(out_dir / f"{symbol}_equity.png")
    fig.savefig(files[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(11, 4))
    for name, run in runs.items():
        ax.plot(data.index, -drawdown_path(run.result.equity), lw=1, label=name)
    ax.set_title(f"{symbol}: drawdown")
    ax.legend()
    files.append(out_dir / f"{symbol}_drawdown.png")
    fig.savefig(files[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)

    fig, (a1, a2) = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    a1.plot(data.index, paths["hedge"], lw=0.8, label="policy hedge ratio")
    a1.set_ylim(0, 1)
    a1.legend(loc="upper left")
    a2.plot(data.index, paths["cap"], lw=0.8, color="tab:orange", label="leverage cap")
    a2.legend(loc="upper left")
    for ax in (a1, a2):
        _mark_cascades(ax, data)
    a1.set_title(f"{symbol}: policy hedge ratio and leverage cap (red: cascade labels)")
    files.append(out_dir / f"{symbol}_policy.png")
    fig.savefig(files[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)
    return files
