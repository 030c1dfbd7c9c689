"""Helpers of the live-loop tests: a small pipeline (tiny LightGBM) replaying the bundled sample,
and the checks every replay must pass (store point in time, book ledger)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from cascade_ml.config import load_pipeline
from cascade_ml.data.store import MarketStore
from cascade_ml.live.loop import LoopSections
from cascade_ml.monitoring.staleness import available_at
from cascade_ml.trading.book import PaperBook

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample"
FROM = pd.Timestamp("2026-04-01T00:00:00Z")
UNTIL = pd.Timestamp("2026-04-01T12:00:00Z")  # every test replays (part of) this window
HOUR = pd.Timedelta("1h")


def pipeline_dict(replay_dir: Path, **live: object) -> dict:
    """The near.yaml job with models small enough for tests (2 folds, 10 trees, one thread)."""
    small = {"n_estimators": 10, "min_child_samples": 200}
    return {
        "task": {"symbols": ["NEAR"], "references": ["BTC", "ETH"], "horizon": 24},
        "features": {"funding_venues": ["binance", "hyperliquid"]},
        "labels": {"cascade_k": 2.5, "cascade_floor": 0.05},
        "models": {"n_folds": 2, "lgbm": small, "cascade_lgbm": small, "quantiles": [],
                   "num_threads": 1, "garch_window": 500, "experiment": "live-test"},
        "policy": {"hedge_min": 0.3, "hedge_max": 0.7, "max_leverage": 5.0,
                   "max_risk_fraction": 0.02},
        "live": {"retrain_cron": None,
                 "replay": {"source": str(SAMPLE), "dir": str(replay_dir)}, **live},
    }


def write_pipeline(folder: Path, replay_dir: Path, **live: object) -> Path:
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(pipeline_dict(replay_dir, **live)))
    return path


def sections_of(path: Path) -> LoopSections:
    """The sections the CLI hands the loop for this pipeline file."""
    from cascade_ml.cli.live_cmds import loop_sections

    return loop_sections(load_pipeline(path))


def copy_replay(base: Path, dest: Path, **live: object) -> tuple[Path, LoopSections]:
    """A copy of a seeded and trained replay folder, with its own pipeline file."""
    shutil.copytree(base, dest / "replay")
    path = write_pipeline(dest, dest / "replay", **live)
    return path, sections_of(path)


def store_is_point_in_time(history: MarketStore, store: MarketStore, now: pd.Timestamp) -> None:
    """Every partition the loop collected holds exactly the history available at ``now``: no
    record before it was known, none missing, no duplicate stamp."""
    for key in store.partitions():
        got = store.read_partition(key)
        assert got.index.is_unique and got.index.is_monotonic_increasing, str(key)
        assert (available_at(key.dataset, key.interval, got.index) <= now).all(), str(key)
        if key in history.partitions():
            src = history.read_partition(key)
            want = src[available_at(key.dataset, key.interval, src.index) <= now]
            assert got.index.equals(want.index), (str(key), got.index[-3:], want.index[-3:])


def ledger_is_consistent(url: str) -> dict[str, pd.DataFrame]:
    """Equity = initial cash + realised - fees + funding + unrealised (legs at their marks), for
    every snapshot's last state; each filled order has exactly one fill; one decision per bar."""
    with PaperBook(url, migrate=False) as book:
        frames, state = book.frames(), book.state()
        initial = book.initial_cash
    dec, orders, fills = frames["decisions"], frames["orders"], frames["fills"]
    funding, eq = frames["funding_payments"], frames["equity_snapshots"]
    assert not dec.duplicated(["symbol", "bar_ts"]).any()
    assert eq["bar_ts"].is_unique and len(eq) == dec["bar_ts"].nunique()
    filled = orders[orders["status"] == "filled"]
    assert sorted(fills["order_id"]) == sorted(filled["id"])
    cash = initial + fills["realised_pnl"].sum() - fills["fee"].sum() + funding["amount"].sum()
    assert np.isclose(state.cash, cash, rtol=0, atol=1e-6)
    last = eq.iloc[-1]
    assert np.isclose(last["equity"], state.equity, rtol=0, atol=1e-6)
    assert np.isclose(last["equity"], last["cash"] + last["unrealised_pnl"], rtol=0, atol=1e-6)
    assert np.isclose(last["fees"], fills["fee"].sum()) and np.isclose(
        last["funding"], funding["amount"].sum())
    return frames
