"""Evaluation figures (matplotlib, Agg backend): files only, never a window."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import lightgbm as lgb  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.metrics import precision_recall_curve  # noqa: E402

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


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def forecast_vs_realized(oos: pd.DataFrame, rv: pd.Series, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(rv.index, np.sqrt(rv.to_numpy()), lw=0.5, color="grey", label="realized vol (H)")
    for col, label in ((VAR_FORECAST, "model"), (baseline_var("har"), "HAR")):
        if col in oos:
            ax.plot(oos.index, np.sqrt(oos[col]), lw=0.8, label=label)
    ax.set_yscale("log")
    ax.legend()
    ax.set_title("Out-of-sample forecast vs realized volatility")
    return _save(fig, path)


def qlike_by_fold(oos: pd.DataFrame, rv: pd.Series, path: Path) -> Path:
    cols = [c for c in oos.columns if c.startswith("var_") and not c.startswith("var_q")]
    table = pd.DataFrame({c: [np.mean(qlike_loss(rv.loc[g.index], g[c])) for _, g in
                              oos.groupby(FOLD)] for c in cols},
                         index=sorted(oos[FOLD].unique()))
    fig, ax = plt.subplots(figsize=(8, 4))
    table.plot.bar(ax=ax)
    ax.set_xlabel("fold (last = final period)")
    ax.set_ylabel("QLIKE")
    return _save(fig, path)


def reliability(y: np.ndarray, probs: dict[str, np.ndarray], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    for name, p in probs.items():
        frac, mean = calibration_curve(y, p, n_bins=10, strategy="quantile")
        ax.plot(mean, frac, marker="o", label=name)
    ax.set_xlabel("forecast probability")
    ax.set_ylabel("observed frequency")
    ax.legend()
    return _save(fig, path)


def pr_curve(y: np.ndarray, probs: dict[str, np.ndarray], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, p in probs.items():
        prec, rec, _ = precision_recall_curve(y, p)
        ax.plot(rec, prec, label=name)
    ax.axhline(float(np.mean(y)), color="k", ls=":", lw=0.8, label="base rate")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.legend()
    return _save(fig, path)


def importance(booster: lgb.Booster, names: list[str], path: Path, top: int = 25) -> Path:
    gain = booster.feature_importance("gain")
    order = np.argsort(gain)[::-1][:top][::-1]
    fig, ax = plt.subplots(figsize=(6, max(3, 0.25 * len(order))))
    ax.barh([names[i] for i in order], gain[order])
    ax.set_xlabel("gain")
    return _save(fig, path)


def shap_summary(booster: lgb.Booster, x: np.ndarray, names: list[str], path: Path) -> Path:
    import shap

    values = shap.TreeExplainer(booster).shap_values(x)
    if isinstance(values, list):
        values = values[-1]
    shap.summary_plot(values, x, feature_names=names, show=False, max_display=20)
    return _save(plt.gcf(), path)


def write_all(oos: pd.DataFrame, labels: pd.DataFrame, vol, clf, x_sample: np.ndarray,
              names: list[str], folder: Path) -> list[Path]:
    """Every figure of one evaluation into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rv = labels.loc[oos.index, FWD_RV]
    y = labels.loc[oos.index, CASCADE].to_numpy(int)
    probs = {n: oos[c].to_numpy() for n, c in (("model", CASCADE_PROB),
                                                ("logistic", baseline_prob("logistic")),
                                                ("rules", baseline_prob("rules"))) if c in oos}
    out = [forecast_vs_realized(oos, rv, folder / "forecast_vs_realized.png"),
           qlike_by_fold(oos, rv, folder / "qlike_by_fold.png")]
    if len(np.unique(y)) == 2:
        out += [reliability(y, probs, folder / "reliability.png"),
                pr_curve(y, probs, folder / "pr_curve.png")]
    out += [importance(vol.forecast_.booster, names, folder / "importance_volatility.png"),
            importance(clf.forecast_.booster, names, folder / "importance_cascade.png"),
            shap_summary(vol.forecast_.booster, vol.tree_inputs(x_sample), names,
                         folder / "shap_volatility.png")]
    return out
