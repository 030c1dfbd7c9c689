"""The newest panel rows, built from what is known at their bar (for the live loop).

The stored panel table is rebuilt only by the labels and score steps, so a loop that read its
input rows from it would forecast an old bar. Here each symbol's panel columns come from a
trailing window of its own feature rows (``history_bars``, so they equal a build over the whole
history), and the market state from every symbol's row at the same bar, through the same
``symbol_panel`` and ``stack`` the full build uses. Rows of bars after the wanted ones are never
read: appending bars changes no row returned for an earlier bar.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from cascade_ml.labels.config import LabelConfig
from cascade_ml.panel.config import PanelConfig
from cascade_ml.panel.dataset import (
    SYMBOL,
    TIMESTAMP,
    Panel,
    history_bars,
    stack,
    symbol_panel,
)


def newest_panel(features: Mapping[str, pd.DataFrame], times: Iterable[pd.Timestamp],
                 cfg: PanelConfig, horizon: int, side: str = "long",
                 label_cfg: LabelConfig | None = None) -> Panel:
    """Every symbol's panel rows at ``times`` (those it has), with the market state at each.

    ``features``: symbol -> its feature table (time index, the whole table: its first row is
    the symbol's listing for ``age_days``; only the rows from ``history_bars`` before the
    oldest wanted time up to the newest are computed on)."""
    wanted = pd.DatetimeIndex(sorted(set(times)))
    bars = history_bars(cfg, label_cfg)
    frames = []
    for symbol, table in features.items():
        if table.empty:
            continue
        known = table[table.index <= wanted.max()]
        window = known.iloc[max(int(known.index.searchsorted(wanted.min())) - bars, 0):]
        rows = symbol_panel(window, None, cfg, horizon, side, label_cfg,
                            listed=table.index[0])
        rows = rows[rows.index.isin(wanted)]
        if len(rows):
            rows.insert(0, SYMBOL, symbol)
            frames.append(rows.reset_index())
    return stack(frames, cfg, horizon)


def panel_row(panel: Panel, symbol: str, at: pd.Timestamp) -> pd.Series | None:
    """The panel row of ``symbol`` at ``at`` (None when the panel has none)."""
    frame = panel.frame
    hit = frame[(frame[SYMBOL] == symbol) & (frame[TIMESTAMP] == at)]
    return None if hit.empty else hit.iloc[-1]
