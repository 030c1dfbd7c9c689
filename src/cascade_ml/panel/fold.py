"""One evaluation fold of the panel: choose on the training span, refit, forecast the test rows.

Inside the training span (times <= the fold's last training time, held-out symbols excluded)
the last ``val_frac`` of times is a validation slice; everything chosen -- which linear panel
HAR, the shrinkage of the LightGBM correction, the weight of the per-symbol HAR in the
combination, the cascade stacking, the adverse-move multipliers -- is chosen there, from fits on
the earlier rows (purged by H bars). The models are then refitted on the whole training span
(except the calibrated classifier, which keeps its calibration slice) and forecast the test rows
of every symbol, held-out ones included. The served forecast is therefore never knowingly worse
than its base on data the fold may see.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from cascade_ml.compute import worker_threads
from cascade_ml.models.baselines import volatility_baselines
from cascade_ml.panel.config import PRICE_FEATURES, PanelConfig
from cascade_ml.panel.dataset import ADVERSE, LVL, RAW_KEEP, SYMBOL, TIMESTAMP
from cascade_ml.panel.models import (
    LINEAR_KINDS,
    LinearPanel,
    PanelClassifier,
    PooledLogistic,
    TreeCorrection,
    best_weight,
    exceed_prob,
    multipliers,
    platt,
    qlike,
    sigmoid,
    to_variance,
)

log = logging.getLogger(__name__)
_TINY = 1e-12


@dataclass(frozen=True)
class Fold:
    """Training rows end at ``train_end`` (purged); test rows are in [test_start, test_end]."""

    k: int
    train_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp


def usable(frame: pd.DataFrame) -> pd.Series:
    """Rows with labels, a level and the day's variance (cold-start rows included)."""
    return (frame["y"].notna() & frame["cascade"].notna() & frame["adverse"].notna()
            & frame[LVL].notna() & frame["d"].notna())


def baseline_frame(part: pd.DataFrame) -> pd.DataFrame:
    """A symbol's rows as the per-symbol baselines read them (raw columns, time index)."""
    out = part.set_index(TIMESTAMP)[[f"raw_{c}" for c in RAW_KEEP]]
    out.columns = list(RAW_KEEP)
    return out


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


class SymbolBaselines:
    """Per-symbol volatility baselines (and HAR for the combination), each on its own rows."""

    def __init__(self, names: list[str], horizon: int, min_rows: int) -> None:
        self.names, self.horizon, self.min_rows = names, horizon, min_rows

    def fit_predict(self, frame: pd.DataFrame, train: pd.Series, test: pd.Series,
                    names: list[str] | None = None) -> pd.DataFrame:
        """Forecasts of ``test`` rows by baselines fitted on each symbol's ``train`` rows.

        A symbol with fewer than ``min_rows`` complete training rows gets NaN (cold start).
        """
        names = names or self.names
        out = pd.DataFrame(np.nan, index=frame.index[test], columns=[f"var_{n}" for n in names])
        complete = frame["raw_rv_720h"].notna()
        for sym, part in frame.groupby(SYMBOL, sort=False):
            te = test.loc[part.index]
            if not te.any():
                continue
            tr = (train & complete).loc[part.index]
            feats = baseline_frame(part)
            rows_tr = feats.index[tr.to_numpy()]
            rows_te = feats.index[te.to_numpy()]
            y = part.set_index(TIMESTAMP)["fwd_rv"]
            for name, base in volatility_baselines(self.horizon).items():
                if name not in names:
                    continue
                needs_fit = name in ("har", "garch", "gjr")
                if needs_fit and len(rows_tr) < self.min_rows:
                    continue
                try:
                    base.fit(feats, y, rows_tr)
                    pred = base.predict(feats, rows_te)
                except (ValueError, np.linalg.LinAlgError) as exc:
                    log.warning("%s baseline %s failed: %s", sym, name, exc)
                    continue
                out.loc[part.index[te.to_numpy()], f"var_{name}"] = pred
        return out


def _split_val(frame: pd.DataFrame, train: pd.Series, cfg: PanelConfig,
               horizon: int) -> tuple[pd.Series, pd.Series]:
    times = np.sort(frame.loc[train, TIMESTAMP].unique())
    val_start = times[int(len(times) * (1 - cfg.val_frac))]
    bar = pd.Timedelta("1h") if len(times) < 2 else pd.Timedelta(np.median(np.diff(times[:100])))
    early = train & (frame[TIMESTAMP] + horizon * bar <= val_start)
    val = train & (frame[TIMESTAMP] >= val_start)
    return early, val


def fold_masks(frame: pd.DataFrame, fold: Fold, cfg: PanelConfig,
               horizon: int) -> tuple[pd.Series, pd.Series]:
    """Panel training rows (held-out symbols excluded, label windows ending before the test
    window: purged) and test rows (every symbol) of a fold."""
    ok = usable(frame)
    bar = pd.Timedelta("1h")
    core = ~frame[SYMBOL].isin(cfg.holdout_symbols)
    train = ok & core & (frame[TIMESTAMP] + horizon * bar <= fold.test_start) \
        & (frame[TIMESTAMP] <= fold.train_end)
    test = ok & (frame[TIMESTAMP] >= fold.test_start) & (frame[TIMESTAMP] <= fold.test_end)
    return train, test


def adverse_threshold(threshold: np.ndarray, side: str) -> np.ndarray:
    """The cascade threshold (a fractional move) as a log adverse move.

    A long's drop of more than ``thr`` is a log drop of more than ``-log(1 - thr)``; a short's
    squeeze ``log(1 + thr)``."""
    thr = np.asarray(threshold, float)
    return -np.log1p(-np.minimum(thr, 0.999)) if side == "long" else np.log1p(thr)


def run_fold(fold: Fold, frame: pd.DataFrame, inputs: list[str], cfg: PanelConfig,
             horizon: int, side: str = "long",
             lgbm_params: dict | None = None, keep: bool = False) -> tuple[pd.DataFrame, dict]:
    """Forecasts of the fold's test rows (every candidate and baseline) and the choices made.

    With ``keep`` the fitted objects a bundle needs are returned under ``choices["state"]``.
    """
    threads = worker_threads()
    params = {**cfg.lgbm.model_dump(), **(lgbm_params or {})}
    ok = usable(frame)
    bar = pd.Timedelta("1h")
    core = ~frame[SYMBOL].isin(cfg.holdout_symbols)
    train, test = fold_masks(frame, fold, cfg, horizon)
    early, val = _split_val(frame, train, cfg, horizon)
    fe, fv, ftr, fte = frame[early], frame[val], frame[train], frame[test]
    choices: dict = {"fold": fold.k, "train_rows": int(train.sum()), "test_rows": int(test.sum()),
                     "train_end": str(fold.train_end), "test_start": str(fold.test_start),
                     "test_end": str(fold.test_end)}
    min_rows = 30 * 24

    # --- choose on the validation slice ---------------------------------------------------
    val_q = {}
    lin_early = {}
    for kind in LINEAR_KINDS:
        lin_early[kind] = LinearPanel(kind).fit(fe)
        val_q[kind] = qlike(fv, to_variance(lin_early[kind].predict(fv), fv, horizon))
    best_lin = min(val_q, key=val_q.get)
    base_e, base_v = lin_early[best_lin].predict(fe), lin_early[best_lin].predict(fv)
    tree_e = TreeCorrection(inputs, params, cfg.seed, threads, cfg.row_stride).fit(fe, base_e)
    corr_v = tree_e.predict(fv)
    shrink = best_weight(lambda s: qlike(fv, to_variance(base_v + s * corr_v, fv, horizon)))
    panel_v = base_v + shrink * corr_v
    sym_base = SymbolBaselines(["har"], horizon, min_rows)
    har_v = sym_base.fit_predict(frame, early, val, ["har"])["var_har"].to_numpy()
    has = np.isfinite(har_v)
    log_har_v = np.log(np.maximum(np.where(has, har_v, 1.0), _TINY)) - fv[LVL].to_numpy() \
        - np.log(horizon)
    weight = best_weight(lambda a: qlike(fv[has], to_variance(
        a * log_har_v[has] + (1 - a) * panel_v[has], fv[has], horizon)))
    model_v = np.where(has, weight * log_har_v + (1 - weight) * panel_v, panel_v)
    sigma_v = np.sqrt(to_variance(model_v, fv, horizon))
    adv_v = fv[ADVERSE].to_numpy(float)
    mult = multipliers(adv_v, sigma_v, cfg.quantiles)
    z_sorted = np.sort((adv_v / sigma_v)[np.isfinite(adv_v / sigma_v)])
    choices.update(val_qlike=val_q, linear=best_lin, shrink=shrink, har_weight=weight,
                   multipliers=mult)

    logistic_cols = [c for c in PRICE_FEATURES if c in frame.columns]
    clf = PanelClassifier(inputs, cfg.cascade_lgbm.model_dump(), cfg.seed, threads,
                          cfg.row_stride).fit(fe)
    a, b = platt(clf.raw(fv), fv["cascade"].to_numpy(int))
    logit_e = PooledLogistic(logistic_cols, seed=cfg.seed).fit(fe)
    thr_v = fv["cascade_threshold_t"].to_numpy(float)
    fhs_v = exceed_prob(z_sorted, adverse_threshold(thr_v, side) / sigma_v)
    stack_v = np.column_stack([a * clf.raw(fv) + b, _logit(logit_e.predict(fv)), _logit(fhs_v)])
    stacker = LogisticRegression(C=1.0, max_iter=1000).fit(stack_v, fv["cascade"].to_numpy(int))
    choices["cascade_stack"] = [float(c) for c in stacker.coef_[0]] + [
        float(stacker.intercept_[0])]

    # --- refit on the whole training span and forecast the test rows ----------------------
    out = pd.DataFrame(index=fte.index)
    out[SYMBOL], out[TIMESTAMP] = fte[SYMBOL].to_numpy(), fte[TIMESTAMP].to_numpy()
    lin = {}
    for kind in LINEAR_KINDS:
        lin[kind] = LinearPanel(kind).fit(ftr)
        out[f"var_{kind}"] = to_variance(lin[kind].predict(fte), fte, horizon)
    base_tr, base_te = lin[best_lin].predict(ftr), lin[best_lin].predict(fte)
    tree = TreeCorrection(inputs, params, cfg.seed, threads, cfg.row_stride).fit(ftr, base_tr)
    panel_te = base_te + shrink * tree.predict(fte)
    out["var_panel_lgbm"] = to_variance(base_te + tree.predict(fte), fte, horizon)
    out["var_panel"] = to_variance(panel_te, fte, horizon)
    bases = SymbolBaselines(cfg.baselines, horizon, min_rows).fit_predict(frame, train | (
        ok & ~core & (frame[TIMESTAMP] + horizon * bar <= fold.test_start)
        & (frame[TIMESTAMP] <= fold.train_end)), test)
    for c in bases.columns:
        out[c] = bases[c].to_numpy()
    har_te = out["var_har"].to_numpy() if "var_har" in out else np.full(len(out), np.nan)
    cold = fte["age_days"].to_numpy(float) < cfg.cold_start_days
    has = np.isfinite(har_te) & ~cold
    log_har = np.log(np.maximum(np.where(has, har_te, 1.0), _TINY)) - fte[LVL].to_numpy() \
        - np.log(horizon)
    model_te = np.where(has, weight * log_har + (1 - weight) * panel_te, panel_te)
    out["var_forecast"] = to_variance(model_te, fte, horizon)
    out["vol_forecast"] = np.sqrt(out["var_forecast"])
    out["var_combo_har"] = to_variance(np.where(has, 0.5 * log_har + 0.5 * base_te, base_te),
                                       fte, horizon)

    sigma = out["vol_forecast"].to_numpy()
    for q, m in mult.items():
        out[f"adv_q{round(q * 100)}"] = sigma * m
    # the vol-scaled baseline: per-symbol HAR sigma x the symbol's training multiplier
    base_sigma = np.sqrt(har_te)
    for sym, idx in fte.groupby(SYMBOL).groups.items():
        tr_sym = (train | (ok & ~core & (frame[TIMESTAMP] <= fold.train_end)
                           & (frame[TIMESTAMP] + horizon * bar <= fold.test_start)))
        tr_sym &= (frame[SYMBOL] == sym) & frame["raw_rv_720h"].notna()
        pos = fte.index.get_indexer(idx)
        if tr_sym.sum() < min_rows or not np.isfinite(base_sigma[pos]).any():
            continue
        part = frame[frame[SYMBOL] == sym]
        har = volatility_baselines(horizon)["har"]
        feats = baseline_frame(part)
        rows_tr = feats.index[tr_sym.loc[part.index].to_numpy()]
        har.fit(feats, part.set_index(TIMESTAMP)["fwd_rv"], rows_tr)
        s_in = np.sqrt(har.predict(feats, rows_tr))
        m_sym = multipliers(part.set_index(TIMESTAMP).loc[rows_tr, ADVERSE].to_numpy(float),
                            s_in, cfg.quantiles)
        for q, m in m_sym.items():
            col = f"adv_base_q{round(q * 100)}"
            if col not in out:
                out[col] = np.nan
            out.iloc[pos, out.columns.get_loc(col)] = base_sigma[pos] * m

    thr = fte["cascade_threshold_t"].to_numpy(float)
    logit_full = PooledLogistic(logistic_cols, seed=cfg.seed).fit(ftr)
    p_lgbm = sigmoid(a * clf.raw(fte) + b)
    p_log = logit_full.predict(fte)
    p_fhs = exceed_prob(z_sorted, adverse_threshold(thr, side) / np.maximum(sigma, 1e-9))
    stack_te = np.column_stack([_logit(p_lgbm), _logit(p_log), _logit(p_fhs)])
    out["cascade_prob"] = stacker.predict_proba(stack_te)[:, 1]
    out["prob_lgbm"] = p_lgbm
    out["prob_fhs"] = p_fhs
    out["prob_logistic"] = p_log
    out["prob_climatology"] = float(ftr["cascade"].mean())
    out["fold"] = fold.k
    choices["lgbm_top_features"] = _top_features(tree.booster_, inputs)
    if keep:
        choices["state"] = {"linear": lin[best_lin], "tree": tree.booster_, "classifier":
                            clf.booster_, "platt": (a, b), "logistic": logit_full,
                            "stacker": stacker, "z_sorted": z_sorted, "multipliers": mult,
                            "climatology": float(ftr["cascade"].mean()),
                            "train_span": (str(ftr[TIMESTAMP].min()), str(ftr[TIMESTAMP].max()))}
    return out, choices


def _top_features(booster, inputs: list[str], k: int = 8) -> list[str]:
    gain = booster.feature_importance("gain")
    return [inputs[i] for i in np.argsort(gain)[::-1][:k]]
