"""Build a symbol's feature table from the store, store it with a manifest, skip it when current.

``features/symbol=<S>/features.parquet`` is written atomically by ``MarketStore.write_table``;
``manifest.json`` beside it records the configuration and the sha256 of every input partition, so
an unchanged build is reported "up to date" instead of recomputed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cascade_ml.atomic import read_json, write_json
from cascade_ml.contracts.layout import features_path, manifest_path
from cascade_ml.contracts.task import TaskConfig
from cascade_ml.data.store import MarketStore, to_utc
from cascade_ml.errors import ConfigError
from cascade_ml.features.config import FAMILIES, FeatureConfig
from cascade_ml.features.inputs import FeatureInputs, load_inputs
from cascade_ml.features.registry import compute_families

FEATURES_VERSION = 1


@dataclass(frozen=True)
class BuildResult:
    """What a build did: where the table is, its shape and span, and whether it was skipped."""

    symbol: str
    path: Path
    rows: int
    columns: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    up_to_date: bool

    def line(self) -> str:
        state = "up to date" if self.up_to_date else "built"
        return (f"{self.symbol}: {state}, {self.rows} rows x {self.columns} columns, "
                f"{self.first} .. {self.last} -> {self.path}")


def check_config(cfg: FeatureConfig, symbol: str, refs: list[str]) -> None:
    """Refuse a bad request before any data is read."""
    unknown = [f for f in cfg.families if f not in FAMILIES]
    if unknown:
        raise ConfigError(f"unknown feature family {unknown}; known: {list(FAMILIES)}", "features")
    if symbol in refs:
        raise ConfigError(f"{symbol} is both the target and a reference symbol", "task")


def _check_history(inputs: FeatureInputs, cfg: FeatureConfig, short_ok: bool = False) -> None:
    """Refuse a history shorter than the longest window, unless ``short_ok`` (a new listing in
    a panel: windows not yet filled are NaN, never 0, and fill in as bars arrive)."""
    rows = len(inputs.bars)
    longest = cfg.max_window()
    if rows == 0 or (longest > rows and not short_ok):
        raise ConfigError(f"a window of {longest} bars is longer than the {rows} bars of "
                          f"{inputs.symbol} available", "features",
                          hint="shorten the windows or supply more history")
    for ref, frame in inputs.refs.items():
        if frame.empty:
            raise ConfigError(f"reference symbol {ref} has no bars up to the requested end")


def _load(store: MarketStore, symbol: str, task: TaskConfig, cfg: FeatureConfig,
          refs: list[str], end: pd.Timestamp | str | None,
          short_ok: bool = False) -> FeatureInputs:
    check_config(cfg, symbol, refs)
    inputs = load_inputs(store, symbol, refs, venue=task.venue,
                         interval=task.interval, funding_venues=cfg.funding_venues,
                         oi_venues=cfg.oi_venues, market_symbol=cfg.sentiment_market_symbol,
                         end=end, spot_venue=task.spot_venue)
    _check_history(inputs, cfg, short_ok)
    return inputs


def _slice(frame: pd.DataFrame, start: object, end: object) -> pd.DataFrame:
    if start is not None:
        frame = frame[frame.index >= to_utc(start)]
    if end is not None:
        frame = frame[frame.index <= to_utc(end)]
    return frame


def build_features(store: MarketStore, symbol: str, task: TaskConfig, cfg: FeatureConfig,
                   start: pd.Timestamp | str | None = None, end: pd.Timestamp | str | None = None,
                   refs: list[str] | None = None,
                   short_history: bool = False) -> pd.DataFrame:
    """The feature table of ``symbol`` on its own bar grid, rows in [start, end].

    All history up to ``end`` is read so the windows are full at ``start``. With
    ``short_history`` a symbol with fewer bars than the longest window still gets a table.
    """
    refs = task.references_for(symbol) if refs is None else list(refs)
    inputs = _load(store, symbol, task, cfg, refs, end, short_history)
    return _slice(compute_families(inputs, cfg), start, end)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def input_hashes(store: MarketStore, sources: tuple[Path, ...]) -> dict[str, str]:
    return {str(p.relative_to(store.root)): _sha256(p) for p in sources}


def build_and_store(store: MarketStore, symbol: str, task: TaskConfig, cfg: FeatureConfig,
                    start: pd.Timestamp | str | None = None,
                    end: pd.Timestamp | str | None = None, refs: list[str] | None = None,
                    force: bool = False, short_history: bool = False) -> BuildResult:
    """Build and write the table unless the manifest shows the same inputs and configuration."""
    refs = task.references_for(symbol) if refs is None else list(refs)
    inputs = _load(store, symbol, task, cfg, refs, end, short_history)
    relpath = features_path(symbol)
    manifest_file = store.root / manifest_path(relpath)
    manifest = {
        "version": FEATURES_VERSION,
        "symbol": symbol,
        "refs": refs,
        "start": None if start is None else str(to_utc(start)),
        "end": None if end is None else str(to_utc(end)),
        "bars": {"venue": task.venue, "interval": task.interval,
                 **({"spot_venue": task.spot_venue} if task.spot_venue else {})},
        "config": cfg.model_dump(mode="json"),
        "inputs": input_hashes(store, inputs.sources),
    }
    old = read_json(manifest_file)
    if not force and old is not None and (store.root / relpath).exists():
        same = {k: v for k, v in old.items() if k not in ("rows", "columns", "first", "last")}
        if same == json.loads(json.dumps(manifest, default=str)):
            return BuildResult(symbol, store.root / relpath, old["rows"], len(old["columns"]),
                               old["first"], old["last"], up_to_date=True)
    frame = _slice(compute_families(inputs, cfg), start, end)
    first = frame.index[0] if len(frame) else None
    last = frame.index[-1] if len(frame) else None
    manifest.update(rows=len(frame), columns=list(frame.columns), first=str(first), last=str(last))
    path = store.write_table(relpath, frame, {"symbol": symbol, "kind": "features"})
    write_json(manifest_file, manifest)
    return BuildResult(symbol, path, len(frame), frame.shape[1], first, last, up_to_date=False)

