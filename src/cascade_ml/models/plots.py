"""Evaluation figures (matplotlib, Agg backend): files only, never a window.

Each figure function returns the matplotlib figure (so a test can read its axes and the HTML
report can inline it); :func:`write_all` saves every figure of one evaluation as PNG files.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import lightgbm as lgb  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.metrics import precision_recall_curve  # noqa: E402

from cascade_ml.atomic import atomic_file  # noqa: E402
from cascade_ml.contracts.columns import (  # noqa: E402
    CASCADE,
    CASCADE_PROB,
    FOLD,
    FWD_RV,
    VAR_FORECAST,
    baseline_prob,
    baseline_var,
)
from cascade_ml.models.metrics import qlike_loss  # noqa: E402

RELIABILITY_BINS = 10
QLIKE_WINDOW = "30D"
# what each file shows, for the HTML report's captions
CAPTIONS = {
    "forecast_vs_realized": "Out-of-sample forecast volatility (model, HAR) against the realised "
                            "volatility of the next H bars, log scale.",
    "qlike_over_time": "QLIKE over time: 30-day rolling mean of the per-row loss (lower is "
                       "better); dotted lines mark fold starts, the shaded span is the final "
                       "period.",
    "qlike_by_fold": "Mean QLIKE of the model and every baseline in each fold (last = final "
                     "period).",
    "reliability": "Reliability of the cascade probabilities, zoomed to the range the forecasts "
                   "use (axis up to their 99th percentile); equal-count bins; below, how many "
                   "rows fall in each probability bin (values beyond the axis in the last bin).",
    "pr_curve": "Precision-recall curves of the cascade forecasts; dotted: the base rate.",
    "importance_volatility": "Volatility model: LightGBM gain importance (top 25).",
    "importance_cascade": "Cascade model: LightGBM gain importance (top 25).",
    "shap_volatility": "Volatility model: SHAP values on a sample of development rows.",
}


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    with atomic_file(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=90)
    os.chmod(path, 0o644)  # a figure is for reading (the temp file was private)
    plt.close(fig)
    return path


def _fold_starts(oos: pd.DataFrame) -> pd.Series:
    return oos.index.to_series().groupby(oos[FOLD].to_numpy()).min()


def forecast_vs_realized(oos: pd.DataFrame, rv: pd.Series) -> Figure:
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(rv.index, np.sqrt(rv.to_numpy()), lw=0.5, color="grey", label="realized vol (H)")
    for col, label in ((VAR_FORECAST, "model"), (baseline_var("har"), "HAR")):
        if col in oos:
            ax.plot(oos.index, np.sqrt(oos[col]), lw=0.8, label=label)
    ax.set_yscale("log")
    ax.legend()
    ax.set_title("Out-of-sample forecast vs realized volatility")
    return fig


def _var_columns(oos: pd.DataFrame) -> list[str]:
    return [c for c in oos.columns if c.startswith("var_") and not c.startswith("var_q")]


def qlike_by_fold(oos: pd.DataFrame, rv: pd.Series) -> Figure:
    table = pd.DataFrame({c: [np.mean(qlike_loss(rv.loc[g.index], g[c])) for _, g in
                              oos.groupby(FOLD)] for c in _var_columns(oos)},
                         index=sorted(oos[FOLD].unique()))
    fig, ax = plt.subplots(figsize=(8, 4))
    table.plot.bar(ax=ax)
    ax.set_xlabel("fold (last = final period)")
    ax.set_ylabel("QLIKE")
    return fig


def qlike_over_time(oos: pd.DataFrame, rv: pd.Series, best: str | None = None,
                    final_fold: int | None = None) -> Figure:
    """Rolling mean QLIKE of the model, HAR and the best baseline: where the model gains."""
    names = {VAR_FORECAST: "model", baseline_var("har"): "HAR"}
    if best and baseline_var(best) in oos:
        names.setdefault(baseline_var(best), f"{best} (best baseline)")
    fig, ax = plt.subplots(figsize=(10, 4))
    truth = rv.loc[oos.index].to_numpy(float)
    for col, label in names.items():
        if col in oos:
            loss = pd.Series(qlike_loss(truth, oos[col].to_numpy(float)), index=oos.index)
            ax.plot(loss.rolling(QLIKE_WINDOW, min_periods=168).mean(), lw=1.0, label=label)
    starts = _fold_starts(oos)
    for fold, ts in starts.items():
        if fold != final_fold:
            ax.axvline(ts, color="k", ls=":", lw=0.6)
    if final_fold in starts.index:
        ax.axvspan(starts[final_fold], oos.index[-1], color="grey", alpha=0.12,
                   label="final period")
    ax.set_ylabel(f"QLIKE, {QLIKE_WINDOW} rolling mean")
    ax.legend()
    return fig


def reliability_bins(y: np.ndarray, p: np.ndarray, n_bins: int = RELIABILITY_BINS
                     ) -> pd.DataFrame:
    """Equal-count bins of the forecasts: mean forecast, observed frequency, rows, events.

    Ties (e.g. a rule's few distinct values) merge bins, so there may be fewer than ``n_bins``.
    """
    y, p = np.asarray(y, float), np.asarray(p, float)
    edges = np.unique(np.quantile(p, np.linspace(0, 1, n_bins + 1)))
    which = np.searchsorted(edges[1:-1], p, side="right")
    frame = pd.DataFrame({"bin": which, "p": p, "y": y}).groupby("bin")
    out = pd.DataFrame({"mean forecast": frame["p"].mean(), "observed": frame["y"].mean(),
                        "rows": frame["y"].size(), "events": frame["y"].sum().astype(int)})
    return out.reset_index(drop=True)


def reliability_limit(probs: dict[str, np.ndarray], bins: dict[str, pd.DataFrame]) -> float:
    """Upper end of the probability axis: the 99th percentile of all forecasts (and every bin's
    mean forecast, so no point is cut off), plus a margin; at most 1."""
    pooled = np.concatenate([np.asarray(p, float) for p in probs.values()])
    top = max([float(np.quantile(pooled, 0.99))]
              + [float(b["mean forecast"].max()) for b in bins.values()])
    return float(min(1.0, 1.1 * top)) if top > 0 else 1.0


def reliability(y: np.ndarray, probs: dict[str, np.ndarray],
                n_bins: int = RELIABILITY_BINS) -> Figure:
    """Reliability diagram on the probability range in use, over a histogram of the forecasts."""
    bins = {name: reliability_bins(y, p, n_bins) for name, p in probs.items()}
    lim = reliability_limit(probs, bins)
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(6, 7), sharex=True,
                                   gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, lim], [0, lim], "k:", lw=0.8, label="perfectly calibrated")
    top = lim
    for name, b in bins.items():
        rows = int(b["rows"].median()) if len(b) else 0
        ax.plot(b["mean forecast"], b["observed"], marker="o",
                label=f"{name} ({len(b)} bins, ~{rows} rows each)")
        top = max(top, float(b["observed"].max()))
    ax.axhline(float(np.mean(y)), color="grey", lw=0.6, ls="--", label="base rate")
    ax.set_xlim(0, lim)
    ax.set_ylim(0, min(1.0, 1.08 * top))
    ax.set_ylabel("observed frequency")
    ax.legend(fontsize=8)
    edges = np.linspace(0, lim, 21)
    for name, p in probs.items():
        hist.hist(np.clip(np.asarray(p, float), 0, lim), bins=edges, histtype="step", lw=1.2,
                  label=name)
    hist.set_yscale("log")
    hist.set_ylabel("rows per bin")
    hist.set_xlabel("forecast probability")
    hist.set_xlim(0, lim)
    return fig


def pr_curve(y: np.ndarray, probs: dict[str, np.ndarray]) -> Figure:
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, p in probs.items():
        prec, rec, _ = precision_recall_curve(y, p)
        ax.plot(rec, prec, label=name)
    ax.axhline(float(np.mean(y)), color="k", ls=":", lw=0.8, label="base rate")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.legend()
    return fig


def importance(booster: lgb.Booster, names: list[str], top: int = 25) -> Figure:
    gain = booster.feature_importance("gain")
    order = np.argsort(gain)[::-1][:top][::-1]
    fig, ax = plt.subplots(figsize=(6, max(3, 0.25 * len(order))))
    ax.barh([names[i] for i in order], gain[order])
    ax.set_xlabel("gain")
    return fig


def shap_summary(booster: lgb.Booster, x: np.ndarray, names: list[str]) -> Figure:
    import shap

    values = shap.TreeExplainer(booster).shap_values(x)
    if isinstance(values, list):
        values = values[-1]
    shap.summary_plot(values, x, feature_names=names, show=False, max_display=20)
    return plt.gcf()


def cascade_probs(oos: pd.DataFrame) -> dict[str, np.ndarray]:
    """The cascade forecasts the figures compare: the model and the informative baselines."""
    return {n: oos[c].to_numpy(float) for n, c in (("model", CASCADE_PROB),
                                                   ("logistic", baseline_prob("logistic")),
                                                   ("rules", baseline_prob("rules"))) if c in oos}


def write_all(oos: pd.DataFrame, labels: pd.DataFrame, vol, clf, x_sample: np.ndarray,
              names: list[str], folder: Path, best: str | None = None,
              final_fold: int | None = None) -> list[Path]:
    """Every figure of one evaluation into ``folder`` (``<name>.png``, names as in CAPTIONS)."""
    folder.mkdir(parents=True, exist_ok=True)
    rv = labels.loc[oos.index, FWD_RV]
    y = labels.loc[oos.index, CASCADE].to_numpy(int)
    probs = cascade_probs(oos)
    out = [_save(forecast_vs_realized(oos, rv), folder / "forecast_vs_realized.png"),
           _save(qlike_over_time(oos, rv, best, final_fold), folder / "qlike_over_time.png"),
           _save(qlike_by_fold(oos, rv), folder / "qlike_by_fold.png")]
    if len(np.unique(y)) == 2 and probs:
        out += [_save(reliability(y, probs), folder / "reliability.png"),
                _save(pr_curve(y, probs), folder / "pr_curve.png")]
    out += [_save(importance(vol.forecast_.booster, names), folder / "importance_volatility.png"),
            _save(importance(clf.forecast_.booster, names), folder / "importance_cascade.png"),
            _save(shap_summary(vol.forecast_.booster, vol.tree_inputs(x_sample), names),
                  folder / "shap_volatility.png")]
    return out
