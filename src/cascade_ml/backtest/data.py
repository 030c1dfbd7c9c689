"""Load and align what the backtest needs: prices, funding, OOS forecasts, triggers, labels.

Only out-of-sample predictions are used; the simulated span is the OOS span. Funding is a cash
flow at its settlement time, applied at the close of the bar that ends at that time.

Besides the models' forecasts (feed ``model``) the same OOS table carries the baselines', so
the policy can be fed by each of them on the same bars: ``har`` (HAR-RV vol, climatological
cascade probability), ``ewma`` (EWMA vol, climatology) and ``oracle`` (the realised future
variance and cascade label from the labels table: a ceiling no forecast can reach).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cascade_ml.backtest.engine import Market
from cascade_ml.backtest.strategies import Signals
from cascade_ml.contracts.columns import (
    CASCADE,
    CASCADE_PROB,
    FOLD,
    FWD_RV,
    TRIGGER_COLUMNS,
    VAR_FORECAST,
    VOL_FORECAST,
    baseline_prob,
    baseline_var,
    beta_column,
    corr_column,
    quantile_key,
)
from cascade_ml.contracts.layout import features_path, labels_path, predictions_path
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import CascadeError
from cascade_ml.forecasting.inputs import trailing_vol_annual
from cascade_ml.policy.rules import INSTRUMENTS

log = logging.getLogger(__name__)
FundingInput = pd.DataFrame | list[pd.DataFrame] | None
PROXIES = INSTRUMENTS[1:]  # BTC, ETH: hedge instrument codes 1, 2


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
    fold: np.ndarray = field(default_factory=lambda: np.zeros(0))  # walk-forward fold (-1: none)
    feeds: dict[str, Signals] = field(default_factory=dict)  # forecasts the policy can be fed
    trailing_vol_annual: np.ndarray | None = None  # the symbol's own trailing realised vol
    cross: dict[str, np.ndarray] = field(default_factory=dict)  # beta_btc, r2_btc, beta_eth, ...
    proxies: Market | None = None  # BTC/ETH bars on this index, for proxy hedges

    @property
    def final_fold(self) -> int:
        """The fold of the final, untouched period (the highest fold)."""
        return int(np.max(self.fold)) if len(self.fold) else 0

    def final_mask(self) -> np.ndarray:
        """Bars of the final period (fold == n_folds)."""
        return self.fold == self.final_fold

    def development_mask(self) -> np.ndarray:
        """Bars of the development folds (every OOS bar before the final period)."""
        return (self.fold >= 0) & (self.fold < self.final_fold)

    def take(self, keep: np.ndarray) -> BacktestData:
        """The bars ``keep`` (a boolean mask) of every per-bar array; nothing else is read."""
        def cut(x):
            return None if x is None else np.asarray(x)[keep]

        def cut_sig(f: Signals) -> Signals:
            return Signals(cut(f.sigma_h), cut(f.cascade_prob), cut(f.n_fired),
                           f.horizon_hours, cut(f.vol_q99))

        feeds = {k: cut_sig(f) for k, f in self.feeds.items()}
        proxies = None
        if self.proxies is not None:
            p = self.proxies
            proxies = Market(p.names, *(getattr(p, k)[:, keep] for k in
                                        ("open", "high", "low", "close", "funding_rate")),
                             tiers=p.tiers)
        return BacktestData(self.index[keep], cut(self.open), cut(self.high), cut(self.low),
                            cut(self.close), cut(self.funding_rate),
                            feeds.get("model") or cut_sig(self.signals), cut(self.cascade),
                            self.funding_coverage, self.funding_proxy_share,
                            self.forecast_coverage, fold=cut(self.fold), feeds=feeds,
                            trailing_vol_annual=cut(self.trailing_vol_annual),
                            cross={k: cut(v).copy() for k, v in self.cross.items()},
                            proxies=proxies)


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


def _feed(p: pd.DataFrame, var_col: str, prob_col: str, n_fired: np.ndarray,
          horizon_hours: float) -> Signals | None:
    if var_col not in p or prob_col not in p:
        return None
    var = p[var_col].to_numpy(float)
    with np.errstate(invalid="ignore"):
        sigma = np.sqrt(var)
    return Signals(sigma_h=sigma, cascade_prob=p[prob_col].to_numpy(float), n_fired=n_fired,
                   horizon_hours=horizon_hours)


def _feeds(p: pd.DataFrame, main: Signals, labels: pd.DataFrame | None, n_fired: np.ndarray,
           horizon_hours: float) -> dict[str, Signals]:
    """The forecasts the policy can be fed, on the price index (absent ones left out)."""
    feeds = {"model": main}
    climatology = baseline_prob("climatology")
    for name in ("har", "ewma"):
        f = _feed(p, baseline_var(name), climatology, n_fired, horizon_hours)
        if f is not None:
            feeds[name] = f
    if labels is not None and FWD_RV in labels:
        lab = labels.reindex(p.index)
        prob = lab[CASCADE].to_numpy(float) if CASCADE in lab else np.full(len(p), np.nan)
        if climatology in p:
            prob = np.where(np.isfinite(prob), prob, p[climatology].to_numpy(float))
        with np.errstate(invalid="ignore"):
            sigma = np.sqrt(lab[FWD_RV].to_numpy(float))
        feeds["oracle"] = Signals(sigma_h=sigma, cascade_prob=prob, n_fired=n_fired,
                                  horizon_hours=horizon_hours)
    return feeds


def _cross(features: pd.DataFrame | None, index: pd.DatetimeIndex, window: int
           ) -> dict[str, np.ndarray]:
    """Rolling beta and R^2 (corr^2) to BTC and ETH per bar (NaN where unknown)."""
    out = {}
    f = None if features is None else features.reindex(index)
    for name in ("btc", "eth"):
        b, c = beta_column(name, window), corr_column(name, window)
        if f is not None and b in f and c in f:
            out[f"beta_{name}"] = f[b].to_numpy(float, copy=True)
            out[f"r2_{name}"] = f[c].to_numpy(float) ** 2
        else:
            out[f"beta_{name}"] = np.full(len(index), np.nan)
            out[f"r2_{name}"] = np.full(len(index), np.nan)
    return out


def proxy_market(index: pd.DatetimeIndex, bars: dict[str, pd.DataFrame],
                 funding: dict[str, np.ndarray], tiers: dict[str, list]) -> Market:
    """BTC and ETH bars on ``index`` (forward-filled; NaN where a perp has no bars yet)."""
    cols = {k: [] for k in ("open", "high", "low", "close", "funding_rate")}
    for name in PROXIES:
        frame = bars.get(name)
        if frame is None:
            for k in cols:
                cols[k].append(np.full(len(index), np.nan if k != "funding_rate" else 0.0))
            continue
        px = _utc_index(frame, f"ohlcv {name}").reindex(index)
        close = px["close"].ffill()
        for k in ("open", "high", "low"):
            cols[k].append(px[k].fillna(close).to_numpy(float))
        cols["close"].append(close.to_numpy(float))
        cols["funding_rate"].append(funding.get(name, np.zeros(len(index))))
    return Market(list(PROXIES), *(np.vstack(cols[k]) for k in cols),
                  tiers=[tiers[name] for name in PROXIES])


def align(ohlcv: pd.DataFrame, preds: pd.DataFrame, *, horizon: int,
          funding: FundingInput = None, features: pd.DataFrame | None = None,
          labels: pd.DataFrame | None = None, bar: pd.Timedelta = pd.Timedelta("1h"),
          vol_window: int = 720, proxy_window: int = 168) -> BacktestData:
    """Restrict prices to the OOS span and put every input on the price index."""
    preds = _utc_index(preds, "predictions")
    if preds.empty:
        raise CascadeError("the out-of-sample predictions are empty")
    full = _utc_index(ohlcv, "ohlcv")
    px = full[(full.index >= preds.index.min()) & (full.index <= preds.index.max())]
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
    feats = None if features is None else _utc_index(features, "features")
    if feats is not None:
        f = feats.reindex(px.index)
        for col in TRIGGER_COLUMNS:
            if col in f:
                n_fired += (f[col].to_numpy(float) == 1.0)
    lab = None if labels is None else _utc_index(labels, "labels")
    cascade = np.full(len(px), np.nan)
    if lab is not None and CASCADE in lab:
        cascade = lab[CASCADE].reindex(px.index).to_numpy(float)
    rate, coverage, proxy = funding_per_bar(px.index, funding, bar)
    hours = horizon * bar / pd.Timedelta("1h")
    sig = Signals(sigma_h=sigma, cascade_prob=p[CASCADE_PROB].to_numpy(float), n_fired=n_fired,
                  horizon_hours=hours, vol_q99=q99)
    fold = p[FOLD].fillna(-1).to_numpy(int) if FOLD in p else np.zeros(len(px), dtype=int)
    trailing = trailing_vol_annual(full["close"], vol_window, bar).reindex(px.index)
    return BacktestData(px.index, px["open"].to_numpy(float), px["high"].to_numpy(float),
                        px["low"].to_numpy(float), px["close"].to_numpy(float), rate, sig,
                        cascade, coverage, proxy, float(np.isfinite(sigma).mean()), fold=fold,
                        feeds=_feeds(p, sig, lab, n_fired, hours),
                        trailing_vol_annual=trailing.to_numpy(float),
                        cross=_cross(feats, px.index, proxy_window))


def feature_columns(proxy_window: int) -> list[str]:
    """The feature columns the backtest reads: the rule triggers and the BTC/ETH beta and
    correlation over ``proxy_window``."""
    return [*TRIGGER_COLUMNS, *(col(name, proxy_window) for name in ("btc", "eth")
                                for col in (beta_column, corr_column))]


def _optional_table(store: MarketStore, relpath: str,
                    columns: list[str] | None = None) -> pd.DataFrame | None:
    try:
        return store.read_table(relpath, columns)
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


def load_proxies(store: MarketStore, index: pd.DatetimeIndex, *, venue: str, interval: str,
                 tiers: dict[str, list], funding_proxy: bool = True) -> Market:
    """BTC and ETH bars and funding from the store on ``index`` (NaN where absent)."""
    bars, rates = {}, {}
    for name in PROXIES:
        try:
            bars[name] = store.read("ohlcv", name, venue=venue, interval=interval)
        except CascadeError:
            log.warning("no %s bars in the store: no %s proxy hedge", name, name)
            continue
        rates[name] = funding_per_bar(index, _funding_sources(store, name, venue, funding_proxy),
                                      pd.Timedelta(interval))[0]
    return proxy_market(index, bars, rates, tiers)


def load(store: MarketStore, symbol: str, *, venue: str, interval: str, horizon: int,
         funding_proxy: bool = True, vol_window: int = 720, proxy_window: int = 168,
         proxy_tiers: dict[str, list] | None = None,
         preds: pd.DataFrame | None = None) -> BacktestData:
    """Read everything for one symbol from the store and align it (with the BTC/ETH proxies
    when ``proxy_tiers`` gives their margin tiers). ``preds``: the forecasts to trade on (by
    default the stored out-of-sample predictions; e.g. the forecasts a replay served)."""
    if preds is None:
        preds = store.read_table(predictions_path(symbol, horizon))
    ohlcv = store.read("ohlcv", symbol, venue=venue, interval=interval)
    funding = _funding_sources(store, symbol, venue, funding_proxy)
    if not funding:
        log.warning("no funding for %s: funding payments are left out", symbol)
    labels = _optional_table(store, labels_path(symbol, horizon))
    data = align(ohlcv, preds, horizon=horizon, funding=funding,
                 features=_optional_table(store, features_path(symbol),
                                          feature_columns(proxy_window)), labels=labels,
                 bar=pd.Timedelta(interval), vol_window=vol_window, proxy_window=proxy_window)
    if proxy_tiers is not None:
        data.proxies = load_proxies(store, data.index, venue=venue, interval=interval,
                                    tiers=proxy_tiers, funding_proxy=funding_proxy)
        for k, name in enumerate(PROXIES):
            gone = ~np.isfinite(data.proxies.close[k])
            data.cross[f"beta_{name.lower()}"][gone] = np.nan
    return data
