"""Forecasts as of a time t: what could be known at t, so a backtesting bot is point in time.

A request with ``as_of`` is answered from the newest forecast that was available at t:

- the walk-forward's out-of-sample forecasts (``contracts.layout.predictions_path``): the row of
  bar ``ts`` is known from the bar's close, ``ts + interval``;
- the batch scores (``contracts.layout.scores_path``): known from the bar's close or from its
  ``scored_at``, whichever is later (a bar scored later, by a model trained later, was not
  known at its close);
- when t is the present (within ``PRESENT_S`` of the server's clock), also the forecast the
  service serves now, with the monitor's reasons: a live bot sending its clock gets the answer
  it would get without ``as_of``.

The newest bar wins; on one bar the served forecast, then the scores, then the predictions. Its
age is t minus its bar's close (the staleness rule applies at t), and its triggers and BTC/ETH
context come from the feature row of that bar. When nothing was available at t the lookup
raises ``NoForecastAsOf`` naming the span the tables cover. The tables are re-read only when
their files change (``serving.tables.read_if_changed``). With ``policy.forecast_halflife_bars``
set, the policy reads the forecast's vol smoothed over the vol forecasts of its table known at t
(``forecasting.smoothing``), as the backtest's policy reads the walk-forward's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from cascade_ml.contracts.columns import SERVED_FORECASTS, VOL_FORECAST
from cascade_ml.contracts.layout import features_path, predictions_path, scores_path
from cascade_ml.contracts.task import TaskConfig
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import CascadeError
from cascade_ml.forecasting.inputs import (
    ContextColumns,
    context_columns,
    policy_context,
    trailing_vol,
)
from cascade_ml.forecasting.smoothing import smoothed_forecast
from cascade_ml.policy.config import PolicyConfig
from cascade_ml.serving.state import Forecast, forecast_record
from cascade_ml.serving.tables import read_if_changed

PRESENT_S = 60.0  # an as_of this close to the server's clock is "now" (clock skew allowed)
PREDICTIONS, SCORES = "predictions", "scores"
_RANK = {SCORES: 2, PREDICTIONS: 1}  # on one bar: scores before the walk-forward's


class AsOfError(CascadeError):
    """An ``as_of`` the service cannot answer."""


class NoForecastAsOf(AsOfError):
    """No forecast of the symbol was available at t (the route answers 404)."""


class FutureAsOf(AsOfError):
    """t is later than the server's clock (the route answers 422)."""


def _iso(ns: int) -> str:
    return pd.Timestamp(ns, tz="UTC").isoformat()


@dataclass(frozen=True)
class History:
    """One stored forecast table of one symbol as arrays, ordered by bar."""

    source: str
    bars: np.ndarray  # int64 ns: bar open times, ascending
    known: np.ndarray  # int64 ns: when each row became known
    versions: np.ndarray  # model version of each row
    values: Mapping[str, np.ndarray]  # the served columns the table has

    def newest(self, t_ns: int) -> int | None:
        """Position of the newest bar known at ``t_ns``, None when none was."""
        idx = np.flatnonzero(self.known <= t_ns)
        return int(idx[-1]) if len(idx) else None

    def row(self, i: int) -> dict[str, float]:
        return {k: float(v[i]) for k, v in self.values.items()}

    def span(self) -> str:
        return (f"{self.source} cover bars {_iso(self.bars[0])} .. {_iso(self.bars[-1])}, the "
                f"first known at {_iso(self.known.min())}")


def _history(frame: pd.DataFrame, source: str, bar: pd.Timedelta) -> History | None:
    """Arrays of a predictions or scores table (None when it has no rows)."""
    if not len(frame):
        return None
    frame = frame.sort_index()
    bars = pd.DatetimeIndex(frame.index).as_unit("ns")
    known = (bars + bar).asi8
    if source == SCORES:
        version = frame["model_version"].astype(str).to_numpy()
        if "scored_at" in frame:
            scored = pd.DatetimeIndex(pd.to_datetime(frame["scored_at"], utc=True)).as_unit("ns")
            known = np.maximum(known, scored.asi8)
    else:  # the walk-forward's folds: each row was forecast by its fold's model
        fold = frame["fold"].to_numpy() if "fold" in frame else None
        version = (np.array([f"oos-fold{int(f)}" for f in fold], dtype=object)
                   if fold is not None else np.full(len(frame), "oos", dtype=object))
    values = {k: frame[k].to_numpy(np.float64) for k in SERVED_FORECASTS if k in frame}
    return History(source, bars.asi8, known, version, values)


class AsOfLookup:
    """The forecast of a symbol available at a time t (see the module docstring)."""

    def __init__(self, store: MarketStore, task: TaskConfig, policy: PolicyConfig) -> None:
        self.store = store
        self.task = task
        self.bar = task.bar
        self.halflife = policy.forecast_halflife_bars
        self.columns: dict[str, ContextColumns] = {
            s: context_columns(task.references_for(s), policy, task.bar) for s in task.symbols}
        self._cache: dict[str, tuple] = {}  # table path -> (file mtime, value read from it)

    def forecast(self, symbol: str, as_of: datetime, served: Forecast | None,
                 now: float) -> Forecast:
        """The newest forecast of ``symbol`` available at ``as_of`` (timezone-aware)."""
        t = pd.Timestamp(as_of).tz_convert("UTC")
        if t.timestamp() > now + PRESENT_S:
            raise FutureAsOf(f"as_of {t.isoformat()} is later than the server's clock "
                             f"({pd.Timestamp(now, unit='s', tz='UTC').isoformat()}): nothing "
                             "is known about it yet")
        t_ns = t.as_unit("ns").value
        tables = [h for h in (self._table(symbol, PREDICTIONS), self._table(symbol, SCORES))
                  if h is not None]
        stored = [(int(h.bars[i]), _RANK[h.source], h, i) for h in tables
                  if (i := h.newest(t_ns)) is not None]
        best = max(stored, key=lambda c: c[:2], default=None)  # newest bar, then rank
        present = t.timestamp() >= now - PRESENT_S
        if present and served is not None and served.available_at <= t.timestamp():
            bar_ns = pd.Timestamp(served.timestamp).as_unit("ns").value
            if best is None or bar_ns >= best[0]:
                return served  # the service's own forecast, monitor reasons included
        if best is None:
            raise NoForecastAsOf(self._nothing(symbol, t, tables))
        _, _, table, i = best
        fc = forecast_record(symbol, pd.Timestamp(table.bars[i], tz="UTC"),
                             str(table.versions[i]), table.row(i), table.source, self.bar,
                             self.task.horizon_hours)
        if self.halflife > 0:
            fc = self._smoothed(fc, table, t_ns)
        row = self._context_row(symbol, fc.timestamp)
        if row is not None:
            triggers, cross = policy_context(row, self.columns[symbol])
            fc = replace(fc, triggers=triggers, cross=cross,
                         trailing_vol=trailing_vol(row, self.columns[symbol]))
        return fc

    def _smoothed(self, fc: Forecast, table: History, t_ns: int) -> Forecast:
        """The forecast with its vol smoothed over the table's vol forecasts known at t (point
        in time; ``forecasting.smoothing``), as the backtest's policy reads it."""
        known = table.known <= t_ns
        vols = table.values.get(VOL_FORECAST, np.full(len(known), np.nan))[known]
        history = pd.Series(vols, index=pd.to_datetime(table.bars[known], utc=True))
        policy, note = smoothed_forecast(fc.policy, history, fc.timestamp, self.halflife,
                                         self.bar)
        return replace(fc, policy=policy, smoothing=note)

    # ------------------------------------------------------------------ tables
    def _table(self, symbol: str, source: str) -> History | None:
        rel = (predictions_path(symbol, self.task.horizon) if source == PREDICTIONS
               else scores_path(symbol))
        return read_if_changed(self.store, self._cache, rel,
                               lambda frame: _history(frame, source, self.bar))

    def _context_row(self, symbol: str, ts: pd.Timestamp) -> dict | None:
        """The feature row of bar ``ts``, only the columns the policy reads beside the
        forecast (the features table is read for those columns alone)."""
        names = self.columns[symbol].names

        def read(rel: str) -> pd.DataFrame:
            path = self.store.root / rel
            present = [c for c in names if c in set(pq.read_schema(path).names)]
            return pd.read_parquet(path, columns=present)

        frame = read_if_changed(self.store, self._cache, features_path(symbol), lambda f: f,
                                read=read)
        if frame is None or ts not in frame.index:
            return None
        return frame.loc[ts].to_dict()

    def _nothing(self, symbol: str, t: pd.Timestamp, tables: list[History]) -> str:
        head = f"no forecast of {symbol} was available as of {t.isoformat()}"
        if not tables:
            return (f"{head}: the store holds neither {predictions_path(symbol, self.task.horizon)}"
                    f" (the walk-forward's, written by `cascade-ml train`) nor "
                    f"{scores_path(symbol)} (`cascade-ml score`)")
        return f"{head}: {'; '.join(h.span() for h in tables)}"
