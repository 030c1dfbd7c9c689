"""Forecast rows -> the scores table: served columns, the policy's decision, one row per bar.

Batch scoring (``cascade_ml.scoring``) and the live loop write
``scores/symbol=<S>/scores.parquet`` through :func:`merge_scores` only: rows are upserted on the
feature timestamp (scoring the same bar twice leaves one row, the later one wins) and the table
is written atomically with the horizon and model version in its metadata. The service reads
the newest row back.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cascade_ml.contracts.columns import SERVED_FORECASTS, VOL_FORECAST
from cascade_ml.contracts.layout import scores_path
from cascade_ml.contracts.task import TaskConfig
from cascade_ml.data.store import MarketStore
from cascade_ml.forecasting.inputs import (
    context_columns,
    policy_context,
    policy_forecast,
    trailing_vol,
)
from cascade_ml.forecasting.protocol import Forecaster
from cascade_ml.forecasting.smoothing import smoothed_forecast
from cascade_ml.policy import PolicyConfig, decide
from cascade_ml.policy.schemas import Freshness, PolicyInputs, Position

DECISION_COLUMNS = ("hedge_ratio", "hedge_instrument", "leverage_cap", "size_cap", "action",
                    "fail_safe", "reasons")
MODEL_VERSION = "model_version"


def forecast_frame(forecaster: Forecaster, rows: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """The served forecasts of ``rows`` (``forecaster.input_rows`` output), indexed like them."""
    preds = forecaster.predict(rows[list(forecaster.feature_names)].to_numpy(np.float64), symbol)
    out = pd.DataFrame(index=pd.DatetimeIndex(rows.index, name="timestamp"))
    for col in SERVED_FORECASTS:
        if col in preds:
            out[col] = np.asarray(preds[col], dtype=np.float64)
    return out


def default_position(task: TaskConfig, notional: float) -> Position:
    """The position behind stored decisions: the task's side at 1x, unhedged. Prices are 1
    because only ratios and caps are stored, which do not depend on the price level."""
    return Position(side=task.side, notional=notional, entry_price=1.0, mark_price=1.0,
                    leverage=1.0, hedge_ratio=0.0)


def vol_history(store: MarketStore, symbol: str) -> pd.Series:
    """The symbol's stored vol forecasts by bar (the scores table's ``vol_forecast``; empty
    when there is no table yet): the history the policy's smoothed forecast reads
    (:mod:`cascade_ml.forecasting.smoothing`)."""
    rel = scores_path(symbol)
    if not (store.root / rel).exists():
        return pd.Series(dtype=float, index=pd.DatetimeIndex([], tz="UTC"))
    frame = store.read_table(rel, columns=[VOL_FORECAST])
    if VOL_FORECAST not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    return frame[VOL_FORECAST].astype(float)


def with_history(stored: pd.Series, forecasts: pd.DataFrame) -> pd.Series:
    """The stored vol forecasts with ``forecasts``' own rows in place of any stored on the
    same bars (the rows about to be merged), sorted by bar."""
    new = (forecasts[VOL_FORECAST] if VOL_FORECAST in forecasts.columns
           else pd.Series(np.nan, index=forecasts.index)).astype(float)
    if not len(stored):
        return new.sort_index(kind="stable")
    return pd.concat([stored[~stored.index.isin(new.index)], new]).sort_index(kind="stable")


def decision_columns(symbol: str, forecasts: pd.DataFrame, features: pd.DataFrame | None,
                     task: TaskConfig, policy: PolicyConfig, notional: float,
                     history: pd.Series | None = None) -> pd.DataFrame:
    """The policy's decision for the default position on each forecast row, decided as of the
    row's own bar close (age 0) with the triggers and betas of that bar's feature row (unknown
    where the features table has no such row). With ``policy.forecast_halflife_bars`` set the
    vol forecast is smoothed over ``history`` (the symbol's stored vol forecasts; default:
    ``forecasts``' own) up to the row's bar, as the backtest's policy reads it."""
    if history is None:
        history = with_history(pd.Series(dtype=float), forecasts)
    columns = context_columns(task.references_for(symbol), policy, task.bar)
    frame = features if features is not None else pd.DataFrame(index=forecasts.index)
    wanted = [c for c in columns.names if c in frame.columns]
    context = frame.reindex(index=forecasts.index, columns=wanted).to_dict("records")
    position = default_position(task, notional)
    fresh = Freshness(forecast_age_s=0.0, features_age_s=0.0, max_age_s=policy.max_data_age_s)
    rows = []
    for ts, values, row in zip(forecasts.index, forecasts.to_dict("records"), context,
                               strict=True):
        triggers, cross = policy_context(row, columns)
        forecast, note = smoothed_forecast(policy_forecast(values, task.horizon_hours), history,
                                           ts, policy.forecast_halflife_bars, task.bar)
        decision = decide(PolicyInputs(
            symbol=symbol, forecast=forecast,
            triggers=triggers, cross_asset=cross, trailing_vol_annual=trailing_vol(row, columns),
            position=position, equity=position.notional,
            freshness=fresh), policy)
        reasons = [*decision.reasons, *([note] if note else [])]
        rows.append((decision.hedge_ratio, decision.hedge_instrument, decision.leverage_cap,
                     decision.size_cap_notional, decision.action, decision.fail_safe,
                     " | ".join(reasons)))
    return pd.DataFrame(rows, index=forecasts.index, columns=list(DECISION_COLUMNS))


def merge_scores(store: MarketStore, symbol: str, rows: pd.DataFrame, *, horizon: int,
                 model_version: str, meta: dict | None = None) -> pd.DataFrame:
    """Upsert ``rows`` (indexed by feature timestamp) into the symbol's scores table, atomically;
    returns the merged table."""
    rel = scores_path(symbol)
    if (store.root / rel).exists():
        stored = store.read_table(rel)
        rows = pd.concat([stored[~stored.index.isin(rows.index)], rows]).sort_index(
            kind="stable")
    rows.index.name = "timestamp"
    store.write_table(rel, rows, {"symbol": symbol, "horizon": int(horizon),
                                  MODEL_VERSION: str(model_version), **(meta or {})})
    return rows
