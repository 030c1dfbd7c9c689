"""Backtest figures: equity curves, drawdowns, the forecast ablation, decisions over time.

``figures`` returns matplotlib figures (for the HTML report); ``save_plots`` writes them as PNG.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cascade_ml.backtest.data import BacktestData  # noqa: E402
from cascade_ml.backtest.frontier import RISKS, static_curve  # noqa: E402
from cascade_ml.backtest.metrics import drawdown_path  # noqa: E402
from cascade_ml.backtest.strategies import POLICY_FEEDS  # noqa: E402

CAPTIONS = {
    "equity": "Equity of every strategy (log scale, net of fees and funding); red bands: bars "
              "followed by a cascade (labels); dotted line: start of the final period.",
    "drawdown": "Drawdown from the running peak.",
    "ablation": "The same policy fed by different forecasts, beside the static hedge of the "
                "model policy's average size and hedge (static_matched).",
    "positions": "Cumulative P&L of each position of the book under the model policy.",
    "frontier": "Efficiency frontier: hedge cost per year (fees + funding + upside given up, "
                "share of mean equity) against CVaR 95 loss, annualised vol and max drawdown; "
                "black: static hedges at every ratio (labels: hedge ratio; a red x: liquidated, "
                "left off the curve); coloured: the "
                "policy fed by each forecast under each variant of backtest.frontier. Below "
                "the black curve = cheaper protection than a static hedge.",
    "policy": "Decisions over time (model policy): target hedge ratio and the hedge held; "
              "leverage cap and the leverage held; grey: fail-safe bars; triangles: stops.",
}


def _mark_cascades(ax, data: BacktestData) -> None:
    mask = data.cascade == 1.0
    if mask.any():
        ax.fill_between(data.index, 0, 1, where=mask, transform=ax.get_xaxis_transform(),
                        color="red", alpha=0.15, lw=0, label="cascade (label)")


def _mark_final(ax, data: BacktestData) -> None:
    final = np.flatnonzero(data.final_mask())
    if len(final) and final[0] > 0:
        ax.axvline(data.index[final[0]], color="k", ls=":", lw=1, label="final period")


def _equity(runs: dict, data: BacktestData, symbol: str, names: list[str], title: str):
    fig, ax = plt.subplots(figsize=(11, 5))
    for name in names:
        ax.plot(data.index, np.maximum(runs[name].result.equity, 1e-2), lw=1, label=name)
    ax.set_yscale("log")
    ax.set_title(f"{symbol}: {title}")
    _mark_cascades(ax, data)
    _mark_final(ax, data)
    ax.legend(fontsize=8, ncol=2)
    return fig


def figures(runs: dict, data: BacktestData, paths: dict[str, np.ndarray],
            symbol: str) -> dict[str, plt.Figure]:
    """The report's figures by name: equity, drawdown, ablation, policy."""
    out = {"equity": _equity(runs, data, symbol, list(runs),
                             "equity (net of fees and funding), OOS")}
    fig, ax = plt.subplots(figsize=(11, 4))
    for name, run in runs.items():
        ax.plot(data.index, -drawdown_path(run.result.equity), lw=1, label=name)
    ax.set_title(f"{symbol}: drawdown")
    _mark_final(ax, data)
    ax.legend(fontsize=8, ncol=2)
    out["drawdown"] = fig
    ablation = [n for n in (*POLICY_FEEDS, "static_matched") if n in runs]
    if ablation:
        out["ablation"] = _equity(runs, data, symbol, ablation, "forecast ablation")

    fig, (a1, a2) = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    a1.plot(data.index, paths["hedge"], lw=0.6, label="target hedge ratio")
    a2.plot(data.index, paths["cap"], lw=0.6, color="tab:orange", label="leverage cap")
    run = runs.get("model_policy")
    if run is not None:
        a1.plot(data.index, run.result.hedge, lw=0.8, color="k", alpha=0.6, label="hedge held")
        a2.plot(data.index, run.result.leverage, lw=0.8, color="k", alpha=0.6,
                label="leverage held (on margin)")
        for b in run.result.stop_bars:
            a2.plot(data.index[b], 0, marker="v", color="red", ms=5)
    fs = paths.get("fail_safe")
    for ax in (a1, a2):
        if fs is not None and np.any(fs):
            ax.fill_between(data.index, 0, 1, where=fs, transform=ax.get_xaxis_transform(),
                            color="grey", alpha=0.3, lw=0)
        _mark_cascades(ax, data)
        _mark_final(ax, data)
        ax.legend(loc="upper left", fontsize=8)
    a1.set_ylim(0, 1)
    a1.set_title(f"{symbol}: policy decisions over time (red: cascade labels)")
    out["policy"] = fig
    return out


def save_figures(figs: dict[str, plt.Figure], out_dir: Path, prefix: str) -> list[Path]:
    """Write figures as ``<prefix>_<name>.png`` and close them; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for name, fig in figs.items():
        files.append(out_dir / f"{prefix}_{name}.png")
        fig.savefig(files[-1], dpi=110, bbox_inches="tight")
        plt.close(fig)
    return files


def save_plots(runs: dict, data: BacktestData, paths: dict[str, np.ndarray], out_dir: Path,
               symbol: str) -> list[Path]:
    """Write the figures as PNG files; returns their paths."""
    return save_figures(figures(runs, data, paths, symbol), out_dir, symbol)


def book_figures(runs: dict, cal: BacktestData) -> dict[str, plt.Figure]:
    """The book's equity and drawdown per strategy, and each model-policy position's P&L."""
    out = {"equity": _equity(runs, cal, "BOOK", list(runs), "book equity (net), OOS")}
    fig, ax = plt.subplots(figsize=(11, 4))
    for name, run in runs.items():
        ax.plot(cal.index, -drawdown_path(run.result.equity), lw=1, label=name)
    ax.set_title("BOOK: drawdown")
    _mark_final(ax, cal)
    ax.legend(fontsize=8, ncol=2)
    out["drawdown"] = fig
    if "model_policy" in runs:
        fig, ax = plt.subplots(figsize=(11, 4))
        for sym, r in runs["model_policy"].positions.items():
            ax.plot(cal.index, r.pnl, lw=1, label=sym)
        ax.set_title("BOOK: model policy, cumulative P&L per position (quote)")
        _mark_final(ax, cal)
        ax.legend(fontsize=8)
        out["positions"] = fig
    return out


RISK_LABELS = {"cvar_95_loss": "CVaR 95 loss (daily)", "ann_vol": "annualised vol",
               "max_drawdown": "max drawdown"}


def frontier_figure(points: list[dict], title: str) -> plt.Figure:
    """Hedge cost against each risk: the static curve and one curve per feed (its variants
    in order of cost)."""
    fig, axes = plt.subplots(1, len(RISKS), figsize=(14, 4.2))
    static = sorted(static_curve(points), key=lambda p: p["cost"])
    liquidated = [p for p in points if p["kind"] == "static" and p.get("liquidations")]
    feeds = list(dict.fromkeys(p["feed"] for p in points if p["kind"] == "policy"))
    for ax, risk in zip(axes, RISKS, strict=True):
        ax.plot([p["cost"] for p in static], [p[risk] for p in static], "k.-", lw=1.2,
                label="static hedge")
        if liquidated:
            ax.plot([p["cost"] for p in liquidated], [p[risk] for p in liquidated], "rx",
                    label="static hedge, liquidated (no curve)")
        for p in static + liquidated:
            ax.annotate(f"{p['ratio']:.1f}", (p["cost"], p[risk]), fontsize=6,
                        textcoords="offset points", xytext=(2, 2))
        for feed in feeds:
            pts = sorted((p for p in points if p.get("feed") == feed), key=lambda p: p["cost"])
            ax.plot([p["cost"] for p in pts], [p[risk] for p in pts], "o-", ms=3, lw=1,
                    label=f"{feed}-fed policy")
        ax.set_xlabel("hedge cost per year (share of equity)")
        ax.set_ylabel(RISK_LABELS[risk])
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{title}: efficiency frontier")
    fig.tight_layout()
    return fig
