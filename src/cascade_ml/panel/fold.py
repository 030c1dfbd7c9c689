"""One evaluation fold of the panel: choose on the training span, refit, forecast the test rows.

Inside the training span (times <= the fold's last training time, label windows purged by H bars
of the task's interval, held-out symbols excluded) the last ``val_frac`` of times is a
validation slice: which linear panel HAR and the shrinkage of the LightGBM correction are chosen
there, from fits on the earlier rows. The models are then refitted on the whole training span
(except the calibrated classifier, which keeps its calibration slice) and forecast the test rows
of every symbol, held-out ones included (``fit_fold``, the heavy part, one engine task).

The weight of each symbol's own HAR in the served forecast is chosen afterwards
(``finish_fold``) on a selection history that ends before the test window -- the validation
slice plus the earlier folds' out-of-sample rows -- per symbol, shrunk toward the pooled weight
(``cascade_ml.panel.blend``); the adverse multipliers and the cascade stacking, which read the
served sigma, are then set on the validation slice. A symbol whose HAR beat the panel on its
history is served (mostly) its HAR: the forecast is never knowingly worse than its base.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from cascade_ml.compute import worker_threads
from cascade_ml.contracts.columns import baseline_var
from cascade_ml.models.baselines import volatility_baselines
from cascade_ml.models.calibration import fit_calibration, logit
from cascade_ml.models.config import HarRollConfig
from cascade_ml.models.splits import holdout_exclusion
from cascade_ml.panel.blend import BlendWeights, add_curves, blend, choose_weights, loss_curves
from cascade_ml.panel.config import PRICE_FEATURES, PanelConfig
from cascade_ml.panel.dataset import ADVERSE, LVL, RAW_KEEP, SYMBOL, THRESHOLD, TIMESTAMP
from cascade_ml.panel.estimators import (
    LINEAR_KINDS,
    LinearPanel,
    PanelClassifier,
    PooledLogistic,
    RollingPanelHAR,
    TreeCorrection,
    best_weight,
    exceed_prob,
    multipliers,
    qlike,
    to_variance,
)

log = logging.getLogger(__name__)
_TINY = 1e-12


@dataclass(frozen=True)
class Fold:
    """Training rows end at ``train_end`` (purged); test rows are in [test_start, test_end].

    ``k``: 0..n_folds-1 walk-forward, n_folds the final period, -1, -2, ... the held-out periods
    (``period`` is then the held-out period's name)."""

    k: int
    train_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp
    period: str = ""


def usable(frame: pd.DataFrame) -> pd.Series:
    """Rows with labels, a level and the day's variance (cold-start rows included)."""
    return (frame["y"].notna() & frame["cascade"].notna() & frame["adverse"].notna()
            & frame[LVL].notna() & frame["d"].notna())


def baseline_frame(part: pd.DataFrame) -> pd.DataFrame:
    """A symbol's rows as the per-symbol baselines read them (raw columns, time index)."""
    out = part.set_index(TIMESTAMP)[[f"raw_{c}" for c in RAW_KEEP]]
    out.columns = list(RAW_KEEP)
    return out


POOLED_BASELINES = ("panel_har_roll",)
"""Baselines fitted on the pooled rows (not per symbol); listed in ``panel.baselines`` like the
per-symbol ones."""

CALIBRATION = "platt"
"""How the panel's LightGBM probabilities are calibrated on the validation slice: two parameters
are steadier than an isotonic step function on the few cascades a slice holds."""

class SymbolBaselines:
    """Per-symbol volatility baselines (and HAR for the combination), each on its own rows."""

    def __init__(self, names: list[str], horizon: int, min_rows: int,
                 har_roll: HarRollConfig | None = None) -> None:
        self.names, self.horizon, self.min_rows = names, horizon, min_rows
        self.har_roll = har_roll

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
            for name, base in volatility_baselines(self.horizon, har_roll=self.har_roll).items():
                if name not in names:
                    continue
                needs_fit = name in ("har", "har_roll", "garch", "gjr")
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


def _split_val(frame: pd.DataFrame, train: pd.Series, cfg: PanelConfig, horizon: int,
               bar: pd.Timedelta) -> tuple[pd.Series, pd.Series, pd.Timestamp]:
    """Early rows (purged by H bars before the slice) and the validation slice of ``train``."""
    times = np.sort(frame.loc[train, TIMESTAMP].unique())
    val_start = pd.Timestamp(times[int(len(times) * (1 - cfg.val_frac))])
    early = train & (frame[TIMESTAMP] + horizon * bar <= val_start)
    val = train & (frame[TIMESTAMP] >= val_start)
    return early, val, val_start


def fold_masks(frame: pd.DataFrame, fold: Fold, cfg: PanelConfig, horizon: int,
               bar: pd.Timedelta, *, all_symbols: bool = False) -> tuple[pd.Series, pd.Series]:
    """Panel training rows (held-out symbols excluded unless ``all_symbols``; label windows of
    H bars of ``bar`` ending before the test window: purged) and test rows (every symbol).

    Rows of the held-out periods and the H bars around them (``holdout_exclusion``) are in no
    fold's training span (so in no validation slice either) and in no test window but their
    own period's fold (``k < 0``)."""
    ok = usable(frame)
    symbols = pd.Series(True, index=frame.index) if all_symbols \
        else ~frame[SYMBOL].isin(cfg.holdout_symbols)
    held = pd.Series(holdout_exclusion(frame[TIMESTAMP], cfg.holdout_periods, horizon, bar),
                     index=frame.index)
    train = ok & symbols & ~held & (frame[TIMESTAMP] + horizon * bar <= fold.test_start) \
        & (frame[TIMESTAMP] <= fold.train_end)
    test = ok & (frame[TIMESTAMP] >= fold.test_start) & (frame[TIMESTAMP] <= fold.test_end)
    if fold.k >= 0:
        test &= ~held
    return train, test


def min_symbol_rows(cfg: PanelConfig, bar: pd.Timedelta) -> int:
    """Fewest training rows for a symbol's own HAR: ``cold_start_days`` of bars."""
    return int(round(cfg.cold_start_days * pd.Timedelta("1D") / bar))


def adverse_threshold(threshold: np.ndarray, side: str) -> np.ndarray:
    """The cascade threshold (a fractional move) as a log adverse move.

    A long's drop of more than ``thr`` is a log drop of more than ``-log(1 - thr)``; a short's
    squeeze ``log(1 + thr)``."""
    thr = np.asarray(threshold, float)
    return -np.log1p(-np.minimum(thr, 0.999)) if side == "long" else np.log1p(thr)


def _log_var(var: np.ndarray) -> np.ndarray:
    var = np.asarray(var, float)
    return np.where(np.isfinite(var), np.log(np.maximum(var, _TINY)), np.nan)


@dataclass
class FoldFit:
    """A fitted fold before its HAR weights are chosen.

    ``out``: the test rows' forecasts of every candidate and baseline; ``test``: what the
    weight-dependent outputs of the test rows read; ``val``: the validation slice of every
    symbol (held-out ones only for their own HAR weight), on which the weight, the adverse
    multipliers and the cascade stacking are chosen.
    """

    fold: Fold
    out: pd.DataFrame
    test: pd.DataFrame
    val: pd.DataFrame
    choices: dict
    state: dict | None
    val_start: pd.Timestamp


def fit_fold(fold: Fold, frame: pd.DataFrame, inputs: list[str], cfg: PanelConfig,
             horizon: int, bar: pd.Timedelta, lgbm_params: dict | None = None,
             keep: bool = False) -> FoldFit:
    """The heavy part of a fold (one engine task): choose the linear panel and the tree's
    shrinkage on the validation slice, refit on the training span, forecast the test rows."""
    threads = worker_threads()
    params = {**cfg.lgbm.model_dump(), **(lgbm_params or {})}
    core = ~frame[SYMBOL].isin(cfg.holdout_symbols)
    train, test = fold_masks(frame, fold, cfg, horizon, bar)
    own, _ = fold_masks(frame, fold, cfg, horizon, bar, all_symbols=True)
    early, _, val_start = _split_val(frame, train, cfg, horizon, bar)
    early_all = own & (frame[TIMESTAMP] + horizon * bar <= val_start)
    val_all = own & (frame[TIMESTAMP] >= val_start)
    fe, fv, ftr, fte = frame[early], frame[val_all], frame[train], frame[test]
    choices: dict = {"fold": fold.k, "train_rows": int(train.sum()), "test_rows": int(test.sum()),
                     "train_end": str(fold.train_end), "test_start": str(fold.test_start),
                     "test_end": str(fold.test_end), "val_start": str(val_start)}
    min_rows = min_symbol_rows(cfg, bar)
    fv_core = fv[core.loc[fv.index].to_numpy()]

    # --- choose on the validation slice (fits on the earlier rows) ------------------------
    val_q, lin_early = {}, {}
    for kind in LINEAR_KINDS:
        lin_early[kind] = LinearPanel(kind).fit(fe)
        val_q[kind] = qlike(fv_core, to_variance(lin_early[kind].predict(fv_core), fv_core,
                                                 horizon))
    best_lin = min(val_q, key=val_q.get)
    base_e, base_v = lin_early[best_lin].predict(fe), lin_early[best_lin].predict(fv)
    tree_e = TreeCorrection(inputs, params, cfg.seed, threads, cfg.row_stride).fit(fe, base_e)
    corr_v = tree_e.predict(fv)
    is_core = core.loc[fv.index].to_numpy()
    shrink = best_weight(lambda s: qlike(fv_core, to_variance(
        base_v[is_core] + s * corr_v[is_core], fv_core, horizon)))
    panel_v = base_v + shrink * corr_v
    ref = cfg.har_reference
    har_v = SymbolBaselines([ref], horizon, min_rows, cfg.har_roll).fit_predict(
        frame, early_all, val_all)[baseline_var(ref)].to_numpy()
    clf = PanelClassifier(inputs, cfg.cascade_lgbm.model_dump(), cfg.seed, threads,
                          cfg.row_stride).fit(fe)
    calibration = fit_calibration(clf.proba(fv_core), fv_core["cascade"].to_numpy(int),
                                  CALIBRATION)
    logistic_cols = [c for c in PRICE_FEATURES if c in frame.columns]
    logit_e = PooledLogistic(logistic_cols, seed=cfg.seed).fit(fe)
    val_rows = pd.DataFrame({
        SYMBOL: fv[SYMBOL].to_numpy(), TIMESTAMP: fv[TIMESTAMP].to_numpy(), "core": is_core,
        "fwd_rv": fv["fwd_rv"].to_numpy(float),
        "log_panel": _log_var(to_variance(panel_v, fv, horizon)), "log_har": _log_var(har_v),
        ADVERSE: fv[ADVERSE].to_numpy(float), "thr": fv[THRESHOLD].to_numpy(float),
        "cascade": fv["cascade"].to_numpy(float),
        "logit_lgbm": logit(calibration.apply(clf.proba(fv))),
        "logit_logistic": logit(logit_e.predict(fv))})
    choices.update(val_qlike=val_q, linear=best_lin, shrink=shrink)

    # --- refit on the whole training span and forecast the test rows ----------------------
    out = pd.DataFrame(index=fte.index)
    out[SYMBOL], out[TIMESTAMP] = fte[SYMBOL].to_numpy(), fte[TIMESTAMP].to_numpy()
    lin = {}
    for kind in LINEAR_KINDS:
        lin[kind] = LinearPanel(kind).fit(ftr)
        out[f"var_{kind}"] = to_variance(lin[kind].predict(fte), fte, horizon)
    base_tr, base_te = lin[best_lin].predict(ftr), lin[best_lin].predict(fte)
    tree = TreeCorrection(inputs, params, cfg.seed, threads, cfg.row_stride).fit(ftr, base_tr)
    corr_te = tree.predict(fte)
    out["var_panel_lgbm"] = to_variance(base_te + corr_te, fte, horizon)
    out["var_panel"] = to_variance(base_te + shrink * corr_te, fte, horizon)
    names = [n for n in dict.fromkeys([*cfg.baselines, ref]) if n not in POOLED_BASELINES]
    bases = SymbolBaselines(names, horizon, min_rows, cfg.har_roll).fit_predict(frame, own, test)
    for c in bases.columns:
        out[c] = bases[c].to_numpy()
    if "panel_har_roll" in cfg.baselines:
        roll = _pooled_har_roll(cfg, horizon, bar).choose(pd.concat([fe, fv_core]), fv_core)
        source = pd.concat([ftr, fte[core.loc[fte.index].to_numpy()]])
        out["var_panel_har_roll"] = to_variance(roll.forecast(source, fte, roll.window_), fte,
                                                horizon)
        choices["panel_har_roll"] = {"window": roll.window_, "val_qlike": roll.losses_}
    har_te = out[baseline_var(ref)].to_numpy()
    cold = fte["age_days"].to_numpy(float) < cfg.cold_start_days
    log_har = np.where(cold, np.nan, _log_var(har_te))
    out["var_combo_har"] = np.exp(blend(_log_var(to_variance(base_te, fte, horizon)),
                                        log_har, 0.5))
    _adverse_baseline(out, frame, fte, own, har_te, cfg, horizon, min_rows)

    logit_full = PooledLogistic(logistic_cols, seed=cfg.seed).fit(ftr)
    out["prob_lgbm"] = calibration.apply(clf.proba(fte))
    out["prob_logistic"] = logit_full.predict(fte)
    out["prob_climatology"] = float(ftr["cascade"].mean())
    out["fold"] = fold.k
    test_rows = pd.DataFrame({"log_panel": _log_var(out["var_panel"]), "log_har": log_har,
                              "thr": fte[THRESHOLD].to_numpy(float)}, index=fte.index)
    choices["lgbm_top_features"] = _top_features(tree.booster_, inputs)
    state = None
    if keep:
        state = {"linear": lin[best_lin], "tree": tree.booster_, "classifier": clf.booster_,
                 "calibration": calibration, "logistic": logit_full,
                 "climatology": float(ftr["cascade"].mean()),
                 "train_span": (str(ftr[TIMESTAMP].min()), str(ftr[TIMESTAMP].max()))}
    return FoldFit(fold, out, test_rows, val_rows, choices, state, val_start)


def _pooled_har_roll(cfg: PanelConfig, horizon: int, bar: pd.Timedelta) -> RollingPanelHAR:
    roll = cfg.har_roll
    return RollingPanelHAR(horizon, bar, tuple(roll.windows), roll.refit_every, roll.min_rows)


def _adverse_baseline(out: pd.DataFrame, frame: pd.DataFrame, fte: pd.DataFrame,
                      own: pd.Series, har_te: np.ndarray, cfg: PanelConfig, horizon: int,
                      min_rows: int) -> None:
    """The vol-scaled adverse baseline: per-symbol HAR sigma x the symbol's training multiplier."""
    base_sigma = np.sqrt(har_te)
    for sym, idx in fte.groupby(SYMBOL).groups.items():
        tr_sym = own & (frame[SYMBOL] == sym) & frame["raw_rv_720h"].notna()
        pos = fte.index.get_indexer(idx)
        if tr_sym.sum() < min_rows or not np.isfinite(base_sigma[pos]).any():
            continue
        part = frame[frame[SYMBOL] == sym]
        har = volatility_baselines(horizon, har_roll=cfg.har_roll)[cfg.har_reference]
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


def selection_curves(fit: FoldFit, history: pd.DataFrame | None = None) -> pd.DataFrame:
    """Loss curves of the HAR weight on the fold's validation slice plus ``history`` (earlier
    out-of-sample rows; only those before the slice are used, so no time counts twice)."""
    curves = loss_curves(fit.val)
    if history is not None and len(history):
        earlier = history[pd.to_datetime(history[TIMESTAMP]) < fit.val_start]
        curves = add_curves(curves, loss_curves(earlier))
    return curves


def finish_fold(fit: FoldFit, weights: BlendWeights, cfg: PanelConfig,
                side: str = "long") -> tuple[pd.DataFrame, dict]:
    """The weight-dependent outputs: served variance, adverse quantiles, cascade stacking.

    The multipliers and the stacker are set on the core symbols' validation slice with the
    same weights, so nothing here reads the test outcomes.
    """
    val = fit.val[fit.val["core"]]
    sigma_v = np.sqrt(np.exp(blend(val["log_panel"], val["log_har"],
                                   weights.for_rows(val[SYMBOL]))))
    adv_v = val[ADVERSE].to_numpy(float)
    mult = multipliers(adv_v, sigma_v, cfg.quantiles)
    z = adv_v / sigma_v
    z_sorted = np.sort(z[np.isfinite(z)])
    fhs_v = exceed_prob(z_sorted, adverse_threshold(val["thr"], side) / sigma_v)
    stack_v = np.column_stack([val["logit_lgbm"], val["logit_logistic"], logit(fhs_v)])
    stacker = LogisticRegression(C=1.0, max_iter=1000).fit(stack_v, val["cascade"].to_numpy(int))

    out = fit.out.copy()
    log_model = blend(fit.test["log_panel"], fit.test["log_har"], weights.for_rows(out[SYMBOL]))
    out["var_forecast"] = np.exp(log_model)
    out["vol_forecast"] = sigma = np.sqrt(out["var_forecast"].to_numpy())
    for q, m in mult.items():
        out[f"adv_q{round(q * 100)}"] = sigma * m
    p_fhs = exceed_prob(z_sorted, adverse_threshold(fit.test["thr"], side)
                        / np.maximum(sigma, 1e-9))
    stack_te = np.column_stack([logit(out["prob_lgbm"]), logit(out["prob_logistic"]),
                                logit(p_fhs)])
    out["cascade_prob"] = stacker.predict_proba(stack_te)[:, 1]
    out["prob_fhs"] = p_fhs
    choices = {**fit.choices, "har_weight": weights.pooled,
               "har_weights": {s: weights.of(s) for s in dict.fromkeys(out[SYMBOL])},
               "selection_rows": weights.rows, "multipliers": mult,
               "cascade_stack": [float(c) for c in stacker.coef_[0]]
               + [float(stacker.intercept_[0])]}
    if fit.state is not None:
        choices["state"] = {**fit.state, "stacker": stacker, "z_sorted": z_sorted,
                            "multipliers": mult, "har_weights": dict(weights.per_symbol)}
    return out, choices


def choose_fold_weights(fit: FoldFit, cfg: PanelConfig, bar: pd.Timedelta,
                        history: pd.DataFrame | None = None) -> BlendWeights:
    """The fold's HAR weights from its selection curves (see ``cascade_ml.panel.blend``)."""
    prior_rows = cfg.blend_prior_days * (pd.Timedelta("1D") / bar)
    core = [s for s in dict.fromkeys(fit.val[SYMBOL]) if s not in cfg.holdout_symbols]
    return choose_weights(selection_curves(fit, history if cfg.blend_history else None), core,
                          prior_rows, cfg.blend_per_symbol)


def history_rows(fit: FoldFit, frame: pd.DataFrame) -> pd.DataFrame:
    """A fitted fold's test rows as selection history for later folds (HAR missing where the
    served forecast is the panel alone)."""
    out = fit.out
    return pd.DataFrame({SYMBOL: out[SYMBOL].to_numpy(), TIMESTAMP: out[TIMESTAMP].to_numpy(),
                         "fwd_rv": frame.loc[out.index, "fwd_rv"].to_numpy(float),
                         "log_panel": fit.test["log_panel"].to_numpy(),
                         "log_har": fit.test["log_har"].to_numpy()}, index=out.index)


def run_fold(fold: Fold, frame: pd.DataFrame, inputs: list[str], cfg: PanelConfig,
             horizon: int, side: str = "long", lgbm_params: dict | None = None,
             keep: bool = False, *, bar: pd.Timedelta,
             history: pd.DataFrame | None = None) -> tuple[pd.DataFrame, dict]:
    """One fold end to end: fit, choose the HAR weights (validation slice + ``history``),
    finish. With ``keep`` the fitted objects a bundle needs are under ``choices["state"]``."""
    fit = fit_fold(fold, frame, inputs, cfg, horizon, bar, lgbm_params, keep)
    return finish_fold(fit, choose_fold_weights(fit, cfg, bar, history), cfg, side)

def _top_features(booster, inputs: list[str], k: int = 8) -> list[str]:
    gain = booster.feature_importance("gain")
    return [inputs[i] for i in np.argsort(gain)[::-1][:k]]
