"""Load and align what the backtest needs: prices, funding, OOS forecasts, triggers, labels.

Only out-of-sample predictions are used; the simulated span is the OOS span. Funding is a cash
flow at its settlement time, applied at the close of the bar that ends at that time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cascade_ml.backtest.strategies import Signals
from cascade_ml.contracts.columns import (
    CASCADE_PROB,
    TRIGGER_COLUMNS,
    VAR_FORECAST,
    VOL_FORECAST,
    quantile_key,
)
from cascade_ml.contracts.layout import features_path, labels_path, predictions_path
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import CascadeError

log = logging.getLogger(__name__)
FundingInput = pd.DataFrame | list[pd.DataFrame] | None


@dataclass
class BacktestData:
    """Aligned per-bar arrays on one hourly index."""

    index: pd.DatetimeIndex
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    funding_rate: np.ndarray
    signals: Signals
    cascade: np.ndarray        # label: 1 where a cascade followed (NaN unknown)
    funding_coverage: float    # share of the span with funding data
    funding_proxy_share: float  # share covered only by another venue's funding
    forecast_coverage: float   # share of bars with an OOS forecast


def _utc_index(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    if not isinstance(frame.index, pd.DatetimeIndex):
        if "timestamp" in frame.columns:
            frame = frame.set_index("timestamp")
        else:
            raise CascadeError("table has no timestamp index", where)
    idx = pd.DatetimeIndex(frame.index)
    idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    frame = frame.copy()
    frame.index = idx.as_unit("ns").rename("timestamp")
    return frame.sort_index()


def funding_per_bar(index: pd.DatetimeIndex, funding: FundingInput,
                    bar: pd.Timedelta) -> tuple[np.ndarray, float, float]:
    """Rate settling at each bar's close (``t + bar``), 0 where none.

    ``funding`` is one frame or several in priority order (the backtest venue first, then other
    venues as a proxy): a bar takes its rate from the first series whose span covers its close
    (from one settlement interval before its first record to its last record). Returns the rates,
    the share of bars covered, and the share covered only by a proxy series.
    """
    frames = [funding] if isinstance(funding, pd.DataFrame) else list(funding or [])
    frames = [f for f in frames if f is not None and not f.empty]
    out = np.zeros(len(index))
    covered = np.zeros(len(index), dtype=bool)
    proxy = np.zeros(len(index), dtype=bool)
    ends = index + bar
    for k, frame in enumerate(frames):
        rates = frame["funding_rate"].astype(float)
        # settlement times carry jitter on some venues: snap to the bar grid
        snapped = rates.groupby(rates.index.floor(bar)).sum()
        step = pd.Series(snapped.index).diff().median() if len(snapped) > 1 else bar
        inside = (ends > snapped.index.min() - step) & (ends <= snapped.index.max())
        take = inside & ~covered
        out[take] = snapped.reindex(ends[take]).fillna(0.0).to_numpy()
        covered |= take
        if k > 0:
            proxy |= take
    n = max(len(index), 1)
    return out, float(covered.sum() / n), float(proxy.sum() / n)


def align(ohlcv: pd.DataFrame, preds: pd.DataFrame, *, horizon: int,
          funding: FundingInput = None, features: pd.DataFrame | None = None,
          labels: pd.DataFrame | None = None, bar: pd.Timedelta = pd.Timedelta("1h")
          ) -> BacktestData:
    """Restrict prices to the OOS span and put every input on the price index."""
    preds = _utc_index(preds, "predictions")
    if preds.empty:
        raise CascadeError("the out-of-sample predictions are empty")
    px = _utc_index(ohlcv, "ohlcv")
    px = px[(px.index >= preds.index.min()) & (px.index <= preds.index.max())]
    if len(px) < 2:
        raise CascadeError("fewer than 2 price bars inside the out-of-sample span "
                           f"{preds.index.min()} .. {preds.index.max()}")
    p = preds.reindex(px.index)
    if VOL_FORECAST in p:
        sigma = p[VOL_FORECAST].to_numpy(float)
    elif VAR_FORECAST in p:
        sigma = np.sqrt(p[VAR_FORECAST].to_numpy(float))
    else:
        raise CascadeError("predictions have neither vol_forecast nor var_forecast")
    if CASCADE_PROB not in p:
        raise CascadeError("predictions have no cascade_prob column")
    q99 = np.sqrt(p[quantile_key(0.99)].to_numpy(float)) if quantile_key(0.99) in p else None
    n_fired = np.zeros(len(px))
    if features is not None:
        f = _utc_index(features, "features").reindex(px.index)
        for col in TRIGGER_COLUMNS:
            if col in f:
                n_fired += (f[col].to_numpy(float) == 1.0)
    cascade = np.full(len(px), np.nan)
    if labels is not None and "cascade" in labels:
        cascade = _utc_index(labels, "labels")["cascade"].reindex(px.index).to_numpy(float)
    rate, coverage, proxy = funding_per_bar(px.index, funding, bar)
    sig = Signals(sigma_h=sigma, cascade_prob=p[CASCADE_PROB].to_numpy(float), n_fired=n_fired,
                  horizon_hours=horizon * bar / pd.Timedelta("1h"), vol_q99=q99)
    return BacktestData(px.index, px["open"].to_numpy(float), px["high"].to_numpy(float),
                        px["low"].to_numpy(float), px["close"].to_numpy(float), rate, sig,
                        cascade, coverage, proxy, float(np.isfinite(sigma).mean()))


def _optional_table(store: MarketStore, relpath: str) -> pd.DataFrame | None:
    try:
        return store.read_table(relpath)
    except CascadeError:
        log.warning("no %s in the store; going on without it", relpath)
        return None


def _funding_sources(store: MarketStore, symbol: str, venue: str,
                     proxy: bool = True) -> list[pd.DataFrame]:
    """The venue's funding first, then other venues' as a proxy for the periods it lacks; one
    series per venue (the longest), since mixing intervals of a venue would double-count."""
    by_venue: dict[str, pd.DataFrame] = {}
    for key in store.partitions("funding", symbol):
        frame = store.read_partition(key)
        if key.venue not in by_venue or len(frame) > len(by_venue[key.venue]):
            by_venue[key.venue] = frame
    order = sorted((v for v in by_venue if proxy or v == venue), key=lambda v: (v != venue, v))
    return [by_venue[v] for v in order]


def load(store: MarketStore, symbol: str, *, venue: str, interval: str, horizon: int,
         funding_proxy: bool = True) -> BacktestData:
    """Read everything for one symbol from the store and align it."""
    preds = store.read_table(predictions_path(symbol, horizon))
    ohlcv = store.read("ohlcv", symbol, venue=venue, interval=interval)
    funding = _funding_sources(store, symbol, venue, funding_proxy)
    if not funding:
        log.warning("no funding for %s: funding payments are left out", symbol)
    labels = _optional_table(store, labels_path(symbol, horizon))
    return align(ohlcv, preds, horizon=horizon, funding=funding,
                 features=_optional_table(store, features_path(symbol)),
                 labels=labels,
                 bar=pd.Timedelta(interval))
