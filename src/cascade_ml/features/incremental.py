"""A symbol's feature table kept current bar by bar: the newest rows are computed from a trailing
window of history instead of the whole of it.

Every feature is a function of at most ``features.max_window()`` bars (plus the external records
of that span), so computing over the last ``warmup_bars`` gives the same newest rows as a full
build at a fraction of the cost (a test checks this against ``build_features``). Rows already in
the table are never rewritten here: a row is what was known at its bar's close. The table is
written atomically; its manifest keeps the inputs of the last full build, so the next full build
(at retraining) recomputes everything from the store.
"""

from __future__ import annotations

import pandas as pd

from cascade_ml.contracts.layout import features_path
from cascade_ml.contracts.task import TaskConfig
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import CascadeError
from cascade_ml.features.build import build_and_store, check_config
from cascade_ml.features.config import FeatureConfig
from cascade_ml.features.inputs import load_inputs
from cascade_ml.features.registry import compute_families


class LiveFeatures:
    """The feature table of ``symbol`` in ``store``, extended by ``update``."""

    def __init__(self, store: MarketStore, symbol: str, task: TaskConfig, cfg: FeatureConfig,
                 warmup_bars: int) -> None:
        longest = cfg.max_window()
        if warmup_bars < longest + 1:
            raise CascadeError(f"live.warmup_bars {warmup_bars} is shorter than the longest "
                               f"feature window ({longest} bars) plus one", "live")
        self.store, self.symbol, self.task, self.cfg = store, symbol, task, cfg
        self.refs = task.references_for(symbol)
        self.warmup_bars = warmup_bars
        check_config(cfg, symbol, self.refs)
        self._table: pd.DataFrame | None = None
        self._unsaved = False

    @property
    def table(self) -> pd.DataFrame:
        if self._table is None:
            rel = features_path(self.symbol)
            if not (self.store.root / rel).exists():
                self.rebuild()
            else:
                self._table = self.store.read_table(rel)
        assert self._table is not None
        return self._table

    def rebuild(self) -> pd.DataFrame:
        """A full build from the store (skipped by the features step when nothing changed)."""
        build_and_store(self.store, self.symbol, self.task, self.cfg)
        self._table = self.store.read_table(features_path(self.symbol))
        self._unsaved = False
        return self._table

    def newest_rows(self) -> pd.DataFrame:
        """Feature rows for the last ``warmup_bars`` bars of the store, computed over them only."""
        inputs = load_inputs(self.store, self.symbol, self.refs, venue=self.task.venue,
                             interval=self.task.interval,
                             funding_venues=self.cfg.funding_venues,
                             oi_venues=self.cfg.oi_venues,
                             market_symbol=self.cfg.sentiment_market_symbol)
        bars = inputs.bars.index
        cut = bars[max(len(bars) - self.warmup_bars, 0)]
        trimmed = inputs.map_frames(lambda f: f[f.index >= cut])
        return compute_families(trimmed, self.cfg)

    def update(self, persist: bool = True) -> pd.DataFrame:
        """Append the rows of bars closed since the table's last row and return the table;
        write it when it grew (``persist``) or grew earlier without being written. Rows not yet
        written are only derived data: a restarted loop computes them again."""
        table = self.table
        last = table.index[-1] if len(table) else None
        fresh = self.newest_rows()
        new = fresh if last is None else fresh[fresh.index > last]
        if not new.empty:
            if last is not None and fresh.index[0] > last:
                return self.rebuild()  # a gap longer than the warm-up: rebuild from the store
            table = pd.concat([table, new.reindex(columns=table.columns)]) if len(table) else new
            table.index.name = "timestamp"
            self._table = table
            self._unsaved = True
        if persist:
            self.save()
        return table

    def save(self) -> None:
        """Write the table if it holds rows the stored one lacks."""
        if self._unsaved and self._table is not None:
            self.store.write_table(features_path(self.symbol), self._table,
                                   {"symbol": self.symbol, "kind": "features"})
            self._unsaved = False
