"""The panel: every symbol's features and labels, made scale-free and stacked with a symbol key.

Each symbol's table comes from the per-symbol builders (``build_and_store`` /
``build_and_store_labels``), one task per symbol on the compute engine. Variance levels drift
by an order of magnitude between perps and regimes, so one model can serve all perps only on
scale-free inputs: every level feature gets a twin ``log(level per hour) - lvl``, where ``lvl``
is the log of the symbol's own trailing mean squared return (``level_window`` bars, ending at
t). Returns are standardised by the same level. All of it uses bars up to t only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cascade_ml.contracts.columns import (
    CASCADE,
    FWD_MIN_RETURN,
    FWD_RV,
    HAR_COLUMNS,
    LEVEL_PATTERN,
    LOG_LEVEL_PATTERN,
    RET_1H,
)
from cascade_ml.contracts.layout import features_path, labels_path
from cascade_ml.contracts.task import TaskConfig
from cascade_ml.data.history import read_bars
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import CascadeError
from cascade_ml.features.config import FeatureConfig
from cascade_ml.labels.build import cascade_threshold
from cascade_ml.labels.config import LabelConfig
from cascade_ml.panel.config import PanelConfig

SYMBOL = "symbol"
TIMESTAMP = "timestamp"
LVL = "lvl"
"""log of the symbol's trailing mean squared 1h return (per-hour variance level)."""
HAR_TERMS = ("d", "w", "m")
"""log(rv_24h/24), log(rv_168h/168), log(rv_720h/720), each minus ``lvl``."""
ASYM = {"asym_d": "semivar_asym_24h", "asym_w": "semivar_asym_168h"}
"""Panel column -> the feature it copies (semivariance asymmetry, scale-free already)."""
TWIN = "tw_"
"""Prefix of a level feature's scale-free twin."""
RAW = "raw_"
"""Prefix of a raw feature kept for the per-symbol baselines."""
ADVERSE = "adverse"
"""The worst move against the side over (t, t+H], as a positive log move."""
LABEL_KEEP = (FWD_RV, CASCADE, FWD_MIN_RETURN, "fwd_max_return", "cascade_threshold")
RAW_KEEP = (RET_1H, *HAR_COLUMNS)
"""Raw columns the per-symbol baselines (HAR, EWMA, naive, GARCH) read."""
_TINY = 1e-12


@dataclass
class Panel:
    """Stacked rows of all symbols: ``frame`` has a ``symbol`` and a ``timestamp`` column.

    ``inputs`` are the scale-free model inputs (own features, then market state).
    """

    frame: pd.DataFrame
    inputs: list[str]
    horizon: int
    symbols: list[str]

    def rows_of(self, symbol: str) -> pd.DataFrame:
        """One symbol's rows indexed by time (what the per-symbol baselines expect)."""
        part = self.frame[self.frame[SYMBOL] == symbol]
        return part.set_index(TIMESTAMP)


def _log(x: pd.Series | np.ndarray) -> np.ndarray:
    return np.log(np.maximum(np.asarray(x, dtype=float), _TINY))


def passthrough_columns(columns: list[str]) -> list[str]:
    """Feature columns that are scale-free already (ratios, z-scores, shares, correlations)."""
    out = []
    for c in columns:
        if LEVEL_PATTERN.search(c) or LOG_LEVEL_PATTERN.search(c):
            continue  # levels get twins instead
        if c in (RET_1H, "ret_168h") or c.startswith("trigger_"):
            continue  # returns are standardised below; rule flags stay with the rules
        out.append(c)
    return out


THRESHOLD = "cascade_threshold_t"
"""The cascade label's threshold as known at t (the label's own column is NaN where the label
window is incomplete, i.e. on exactly the newest rows a live forecast needs)."""
FROM_RETURNS = (LVL, "zret_1h", "zret_24h", "zret_168h", "drawdown_720h", THRESHOLD)
"""Panel columns computed from the 1h returns alone."""


def symbol_panel(features: pd.DataFrame, labels: pd.DataFrame | None, cfg: PanelConfig,
                 horizon: int, side: str = "long",
                 label_cfg: LabelConfig | None = None,
                 listed: pd.Timestamp | None = None) -> pd.DataFrame:
    """One symbol's scale-free panel columns on its own bar grid (pure; bars up to t only).

    ``listed``: the symbol's first feature row (``age_days`` counts from it); default the first
    row of ``features``, so a trailing window of the table passes the table's first row."""
    f = features.sort_index()
    ret = f[RET_1H]
    sq = ret**2
    level = sq.rolling(cfg.level_window, min_periods=cfg.level_min_bars).mean()
    lvl = pd.Series(_log(level), index=f.index).where(level.notna())
    out: dict[str, pd.Series | np.ndarray] = {LVL: lvl}
    for term, col in zip(HAR_TERMS, HAR_COLUMNS, strict=True):
        hours = int(LEVEL_PATTERN.search(col).group(3))
        out[term] = _log(f[col] / hours) - lvl
    for name, col in ASYM.items():
        out[name] = f.get(col)
    rq = (ret**4).rolling(24, min_periods=24).sum() * 24 / 3.0
    out["harq_q"] = 0.5 * (_log(rq) - 2 * _log(f[HAR_COLUMNS[0]]))
    for c in f.columns:
        match = LEVEL_PATTERN.search(c)
        if match and not match.group(1) and c not in HAR_COLUMNS:
            out[f"{TWIN}{c}"] = _log(f[c] / int(match.group(3))) - lvl
    scale = np.sqrt(np.exp(lvl))
    out["zret_1h"] = ret / scale
    out["zret_24h"] = ret.rolling(24, min_periods=24).sum() / (scale * np.sqrt(24))
    out["zret_168h"] = ret.rolling(168, min_periods=168).sum() / (scale * np.sqrt(168))
    logp = ret.fillna(0.0).cumsum()
    out["drawdown_720h"] = np.expm1(logp - logp.rolling(cfg.drawdown_window, min_periods=24).max())
    out[THRESHOLD] = cascade_threshold(ret, label_cfg or LabelConfig(), horizon)
    first = f.index[0] if listed is None else listed
    out["age_days"] = (f.index - first) / pd.Timedelta("1D")
    frame = pd.DataFrame(out, index=f.index)
    for c in passthrough_columns(list(f.columns)):
        if c not in frame:
            frame[c] = f[c]
    for c in RAW_KEEP:
        frame[f"{RAW}{c}"] = f[c]
    if labels is not None:
        lab = labels.reindex(f.index)
        for c in LABEL_KEEP:
            frame[c] = lab.get(c, np.nan)
        frame[ADVERSE] = (-lab[FWD_MIN_RETURN] if side == "long"
                          else lab["fwd_max_return"])
        frame["y"] = _log(lab[FWD_RV] / horizon) - lvl
        frame.loc[lab[FWD_RV].isna(), "y"] = np.nan
    frame.index.name = TIMESTAMP
    return frame


def history_bars(cfg: PanelConfig, label_cfg: LabelConfig | None = None) -> int:
    """The longest trailing window ``symbol_panel`` reads (level, drawdown, the 168-bar return,
    the cascade threshold's sigma): a row computed over this many bars ending at it equals the
    row of a build over the whole history."""
    return max(cfg.level_window, cfg.drawdown_window, 168,
               (label_cfg or LabelConfig()).sigma_window)


def source_columns(names: list[str], feature_columns: list[str]) -> list[str]:
    """The symbol's own feature columns that the panel columns ``names`` are computed from, in
    order (what a monitor of the symbol watches). Market state (``mkt_*``, from the other
    symbols' rows) and ``age_days`` (from the first row) have none; a name that is neither a
    derived column nor in ``feature_columns`` is kept as is (the monitor reports it missing)."""
    har = dict(zip(HAR_TERMS, HAR_COLUMNS, strict=True))
    out: list[str] = []
    for name in names:
        if name.startswith("mkt_") or name == "age_days":
            continue
        if name in feature_columns:  # passed through unchanged
            out.append(name)
        elif name.startswith((TWIN, RAW)):
            out.append(name.removeprefix(TWIN).removeprefix(RAW))
        elif name in har or name in ASYM:
            out.append(har.get(name) or ASYM[name])
            if name in har:
                out.append(RET_1H)  # minus lvl
        elif name == "harq_q":
            out += [RET_1H, HAR_COLUMNS[0]]
        elif name in FROM_RETURNS:
            out.append(RET_1H)
        else:  # a passthrough column the table lacks: watched, and reported missing
            out.append(name)
    return list(dict.fromkeys(out))


MARKET_FAMILY = "market"
"""Family of the market-state columns (aggregates of every symbol's row at the bar)."""


def column_families(names: list[str], feature_family: dict[str, str]) -> dict[str, str]:
    """Panel column -> the family of the feature it is computed from first (``d`` is a
    volatility input, like ``rv_24h``); market state is ``market``; ``feature_family``: the
    symbol's feature -> family map (``monitoring.run.family_map``)."""
    out = {}
    for name in names:
        sources = source_columns([name], list(feature_family))
        out[name] = (MARKET_FAMILY if name.startswith("mkt_")
                     else feature_family.get(sources[0], "unknown") if sources else "unknown")
    return out


def build_symbol(symbol: str, store_root: str, task: TaskConfig, features: FeatureConfig,
                 labels: LabelConfig, cfg: PanelConfig, oi_venues: list[str],
                 write: bool = True) -> pd.DataFrame:
    """Features, labels and panel columns of one symbol (one engine task).

    With ``write`` the per-symbol tables are built and stored (skipped when current) first. A new
    listing with fewer bars than the longest feature window gets its table too (cold start).
    """
    from cascade_ml.features.build import build_and_store, build_features
    from cascade_ml.labels.build import build_and_store_labels, build_labels

    store = MarketStore(store_root)
    if write:
        build_and_store(store, symbol, task, features, short_history=True)
        build_and_store_labels(store, symbol, task, labels, oi_venues=oi_venues)
        feats = store.read_table(features_path(symbol))
        labs = store.read_table(labels_path(symbol, task.horizon))
    else:
        feats = build_features(store, symbol, task, features, short_history=True)
        bars, _ = read_bars(store, symbol, task.venue, task.interval, spot=task.spot_venue)
        labs = build_labels(bars, labels, horizon=task.horizon, side=task.side)
    frame = symbol_panel(feats, labs, cfg, task.horizon, task.side, labels)
    frame.insert(0, SYMBOL, symbol)
    return frame.reset_index()


def stack(frames: list[pd.DataFrame], cfg: PanelConfig, horizon: int) -> Panel:
    """Stack per-symbol panel frames, add market state, fix the input list."""
    from cascade_ml.panel.market import market_state

    if not frames:
        raise CascadeError("the panel has no symbols", "panel")
    cols = list(dict.fromkeys(c for f in frames for c in f.columns))
    frame = pd.concat([f.reindex(columns=cols) for f in frames], ignore_index=True)
    symbols = list(dict.fromkeys(frame[SYMBOL]))
    core = [s for s in symbols if s not in cfg.holdout_symbols]
    market = market_state(frame, core, cfg)
    frame = frame.join(market, on=TIMESTAMP)
    frame = frame.sort_values([SYMBOL, TIMESTAMP], kind="stable").reset_index(drop=True)
    skip = {SYMBOL, TIMESTAMP, LVL, ADVERSE, "y", "age_days", THRESHOLD, *LABEL_KEEP}
    inputs = [c for c in frame.columns if c not in skip and not c.startswith(RAW)]
    return Panel(frame, inputs, horizon, symbols)


def build_panel(engine, store_root: str, task: TaskConfig, features: FeatureConfig,
                labels: LabelConfig, cfg: PanelConfig, oi_venues: list[str],
                write: bool = True) -> Panel:
    """Per-symbol tables on the engine (one task each), stacked with market state."""
    frames = engine.map(build_symbol, task.symbols, str(store_root), task, features, labels,
                        cfg, list(oi_venues), write)
    return stack(frames, cfg, task.horizon)
