"""Labels: forward realized variance, forward minimum return and the cascade event.

Labels look FORWARD by design (bars t+1..t+H) and are stored apart from features at
``labels/symbol=<S>/h=<H>/labels.parquet`` so no feature table ever holds them. Rows whose window
is incomplete (the last H bars, or a gap in the bar grid) are NaN.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cascade_ml.atomic import read_json, write_json
from cascade_ml.contracts.layout import labels_path, manifest_path
from cascade_ml.contracts.task import Side, TaskConfig
from cascade_ml.data.history import read_bars
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import ConfigError
from cascade_ml.features.asof import asof_join, interval_delta
from cascade_ml.features.build import input_hashes
from cascade_ml.features.stats import log_return, min_periods, rolling_z
from cascade_ml.labels.config import LabelConfig

LABELS_VERSION = 1
LABEL_COLUMNS = ("fwd_rv", "fwd_log_rv", "fwd_min_return", "fwd_max_return", "cascade_threshold",
                 "cascade_price", "cascade")


def forward(values: pd.Series, horizon: int, how: str) -> pd.Series:
    """An aggregate of ``values`` over rows t+1..t+H (NaN when fewer than H rows follow)."""
    roll = values.rolling(horizon, min_periods=horizon)
    return getattr(roll, how)().shift(-horizon)


def _complete(index: pd.DatetimeIndex, horizon: int) -> np.ndarray:
    """True where the H bars after t exist and are contiguous in time."""
    if len(index) < 2:
        return np.zeros(len(index), dtype=bool)
    step = pd.Series(index).diff().median()
    ends = pd.Series(index).shift(-horizon)
    return ((ends - pd.Series(index)) == step * horizon).to_numpy()


def _oi_confirm(ohlcv: pd.DataFrame, oi: pd.DataFrame, horizon: int, cfg: LabelConfig,
                bar: pd.Timedelta) -> pd.Series:
    """1/0 where OI fell by more than the threshold within (t, t+H] vs OI at t; NaN if unknown."""
    cols = [c for c in ("open_interest_value", "open_interest") if c in oi]
    spacing = pd.Series(oi.index).diff().median()
    max_age = 2 * (spacing if pd.notna(spacing) else bar)
    joined = asof_join(ohlcv.index, oi, bar_interval=bar, columns=cols, max_age=max_age)
    value = joined[cols[0]]
    if len(cols) > 1:
        value = value.fillna(joined[cols[1]] * ohlcv["close"])
    drop = forward(value, horizon, "min") / value - 1.0
    out = (drop <= -cfg.oi_drop_threshold).astype(float)
    return out.where(drop.notna())


def _liq_confirm(ohlcv: pd.DataFrame, liquidations: pd.DataFrame, horizon: int,
                 cfg: LabelConfig) -> pd.Series:
    """1/0 where a liquidation period overlapping (t, t+H] was above its norm; NaN if unknown."""
    total = liquidations["total_notional"]
    z = rolling_z(np.log1p(total), cfg.liquidation_norm_periods, 0.5, prior=True)
    spacing = pd.Series(total.index).diff().median()
    period = spacing if pd.notna(spacing) else pd.Timedelta("1D")
    day = ohlcv.index.floor(period) if period >= pd.Timedelta("1h") else ohlcv.index
    z_on_bars = pd.Series(z.reindex(day).to_numpy(), index=ohlcv.index)
    hot = (z_on_bars >= cfg.liquidation_z).astype(float).where(z_on_bars.notna())
    return forward(hot, horizon, "max")


def cascade_threshold(ret: pd.Series, config: LabelConfig, horizon: int) -> pd.Series:
    """The cascade label's move threshold at each bar, from returns up to that bar only:
    max(cascade_k x trailing sigma x sqrt(H), cascade_floor); NaN while sigma is unknown.

    One definition for the label and for the panel's known-at-t copy of it."""
    sigma = ret.rolling(config.sigma_window,
                        min_periods=min_periods(config.sigma_window, 0.5)).std()
    return np.maximum(config.cascade_k * sigma * np.sqrt(horizon),
                      config.cascade_floor).where(sigma.notna())


def build_labels(ohlcv: pd.DataFrame, config: LabelConfig, *, horizon: int, side: Side = "long",
                 oi: pd.DataFrame | None = None,
                 liquidations: pd.DataFrame | None = None) -> pd.DataFrame:
    """Labels over ``horizon`` bars on the bar grid of ``ohlcv`` (canonical candles).

    A cascade is a move against ``side``: a drop for a long, a squeeze for a short.
    """
    h = horizon
    if h >= len(ohlcv):
        raise ConfigError(f"label horizon {h} bars is not shorter than the {len(ohlcv)} bars given",
                          "labels")
    index = ohlcv.index
    close = ohlcv["close"]
    ret = log_return(close)
    complete = _complete(index, h)
    fwd_rv = forward(ret**2, h, "sum")
    fwd_min = np.log(forward(ohlcv["low"], h, "min") / close)
    fwd_max = np.log(forward(ohlcv["high"], h, "max") / close)
    threshold = cascade_threshold(ret, config, h)
    move = 1.0 - np.exp(fwd_min) if side == "long" else np.exp(fwd_max) - 1.0
    price = (move > threshold).astype(float).where(move.notna() & threshold.notna())
    cascade = price.copy()
    bar = pd.Timedelta(pd.Series(index).diff().median()) if len(index) > 1 else pd.Timedelta("1h")
    if config.require_oi_drop and oi is not None and not oi.empty:
        confirm = _oi_confirm(ohlcv, oi, h, config, bar)
        cascade = cascade.where(confirm.isna(), cascade * confirm)
    if config.require_liquidations and liquidations is not None and not liquidations.empty:
        confirm = _liq_confirm(ohlcv, liquidations, h, config)
        cascade = cascade.where(confirm.isna(), cascade * confirm)
    out = pd.DataFrame({
        "fwd_rv": fwd_rv,
        "fwd_log_rv": np.log(np.maximum(fwd_rv, config.log_rv_floor)),
        "fwd_min_return": fwd_min,
        "fwd_max_return": fwd_max,
        "cascade_threshold": threshold,
        "cascade_price": price,
        "cascade": cascade,
    }, index=index)
    out.loc[~complete, :] = np.nan
    out.index.name = "timestamp"
    return out


@dataclass(frozen=True)
class LabelResult:
    symbol: str
    horizon: int
    path: Path
    rows: int
    base_rate: float
    up_to_date: bool

    def line(self) -> str:
        state = "up to date" if self.up_to_date else "built"
        return (f"{self.symbol} h={self.horizon}: {state}, {self.rows} rows, cascade base rate "
                f"{self.base_rate:.2%} -> {self.path}")


def _optional(store: MarketStore, dataset: str, symbol: str, venues: list[str]):
    keys = store.partitions(dataset, symbol)
    rank = {v: i for i, v in enumerate(venues)}
    keys = sorted(keys, key=lambda k: (rank.get(k.venue, len(rank)), interval_delta(k.interval)))
    return (store.read_partition(keys[0]), keys[0]) if keys else (None, None)


def build_and_store_labels(store: MarketStore, symbol: str, task: TaskConfig, cfg: LabelConfig,
                           *, oi_venues: list[str] | None = None,
                           force: bool = False) -> LabelResult:
    """Build and atomically write one symbol's labels unless inputs and config are unchanged.

    ``oi_venues`` rank the open-interest venues used when ``cfg.require_oi_drop`` is set.
    """
    h = task.horizon
    bars, used = read_bars(store, symbol, task.venue, task.interval, spot=task.spot_venue)
    oi = liq = None
    if cfg.require_oi_drop:
        oi, key = _optional(store, "open_interest", symbol, list(oi_venues or []))
        used += [key] if key else []
    if cfg.require_liquidations:
        liq, key = _optional(store, "liquidations", symbol, [])
        used += [key] if key else []
    relpath = labels_path(symbol, h)
    manifest_file = store.root / manifest_path(relpath)
    manifest = {"version": LABELS_VERSION, "symbol": symbol, "horizon": h, "side": task.side,
                "config": cfg.model_dump(mode="json"),
                "inputs": input_hashes(store, tuple(store.root / k.relpath() for k in used))}
    old = read_json(manifest_file)
    current = (not force and old and (store.root / relpath).exists()
               and {k: v for k, v in old.items() if k not in ("rows", "base_rate")}
               == json.loads(json.dumps(manifest)))
    if current:
        return LabelResult(symbol, h, store.root / relpath, old["rows"], old["base_rate"], True)
    frame = build_labels(bars, cfg, horizon=h, side=task.side, oi=oi, liquidations=liq)
    base_rate = float(frame["cascade"].mean())
    manifest.update(rows=len(frame), base_rate=base_rate)
    path = store.write_table(relpath, frame, {"symbol": symbol, "kind": "labels", "horizon": h})
    write_json(manifest_file, manifest)
    return LabelResult(symbol, h, path, len(frame), base_rate, False)

