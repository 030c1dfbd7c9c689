"""The monitor in the loop: missing, stale and drifted inputs make the decision fail safe with the
reason named, except an input family the model was validated without."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from loop_helpers import FROM, HOUR, copy_replay, ledger_is_consistent

from cascade_ml.contracts.layout import features_path
from cascade_ml.data.sources.fear_greed import StoredFearGreed
from cascade_ml.data.sources.replay import ReplayExchange
from cascade_ml.data.store import MarketStore, PartitionKey
from cascade_ml.live.clock import SimClock
from cascade_ml.live.run import build_loop, replay_paths
from cascade_ml.models.bundle import load_bundle
from cascade_ml.monitoring.config import MonitoringConfig
from cascade_ml.monitoring.guard import Guard, evaluation_span
from cascade_ml.monitoring.health import health
from cascade_ml.monitoring.staleness import source_staleness
from cascade_ml.trading.book import PaperBook

NOW = FROM + pd.Timedelta("10s")  # the first cycle of the window


@pytest.fixture(scope="module")
def trained(replay_base: Path) -> tuple[MarketStore, Guard, pd.DataFrame]:
    """The base replay's store (read only), its champion's guard and the features known at NOW."""
    from loop_helpers import sections_of

    sections = sections_of(replay_base.parent / "pipeline.yaml")
    store = MarketStore(replay_base / "store")
    table = store.read_table(features_path("NEAR"))
    bundle = load_bundle(replay_base / "models" / "NEAR")
    guard = Guard(store, "NEAR", sections.task, sections.features, MonitoringConfig(), bundle,
                  table)
    return store, guard, table[table.index + HOUR <= NOW]


def test_a_family_absent_from_the_evaluation_is_waived_and_only_that_one(trained) -> None:  # noqa: ANN001
    store, guard, table = trained
    # the sample's Hyperliquid liquidation totals stop in 2025-05: the model's final period
    # (2025-10 .. 2026-03) had none, and it was promoted on that period
    assert [w.family for w in guard.waivers] == ["liquidations"]
    start, end = guard.waivers[0].span
    assert start > pd.Timestamp("2025-06-01", tz="UTC") and end < FROM
    assert guard.waivers[0].absent_share == 1.0
    assert "not a reason to fail safe" in guard.waivers[0].reason()
    assert guard.check(table, NOW).degrade_reasons == []
    # the monitor's plain rule would have held the replay in fail-safe for good
    plain = health("NEAR", table.reindex(columns=guard.names), guard.profile,
                   source_staleness(store, NOW, guard.keys), MonitoringConfig(), NOW)
    assert any("liquidations" in r for r in plain.degrade_reasons), plain.degrade_reasons


def test_a_family_present_in_the_evaluation_still_degrades_when_missing(trained) -> None:  # noqa: ANN001
    _, guard, table = trained
    funding = [n for n in guard.profile.used if guard.profile.family_of[n] == "funding"]
    assert funding and "funding" not in [w.family for w in guard.waivers]
    blank = table.copy()
    blank.loc[blank.index[-1], funding] = np.nan
    reasons = guard.check(blank, NOW).degrade_reasons
    assert any(f"of the {len(funding)} funding inputs the model uses are missing" in r
               for r in reasons), reasons


def test_drift_metrics_move_when_inputs_are_shifted(trained) -> None:  # noqa: ANN001
    _, guard, table = trained
    before = guard.check(table, NOW)
    name = "rv_ratio_24_168" if "rv_ratio_24_168" in guard.profile.used else guard.profile.used[0]
    shifted = table.copy()
    recent = shifted.index[-guard.cfg.recent_rows:]
    shifted.loc[recent, name] = shifted.loc[recent, name] + 10 * shifted[name].std()
    after = guard.check(shifted, NOW)
    psi0, psi1 = before.drift.at[name, "psi"], after.drift.at[name, "psi"]
    assert psi1 > psi0 + 1.0 and psi1 > after.drift.at[name, "psi_limit"]
    assert name in after.drifted and name not in before.drifted
    assert any(f"input {name}" in r and "has drifted" in r for r in after.degrade_reasons)
    others = after.drift.drop(index=name)["psi"].fillna(0)
    assert np.allclose(others, before.drift.drop(index=name)["psi"].fillna(0))


def test_evaluation_span_is_the_final_period(trained) -> None:  # noqa: ANN001
    _, guard, _ = trained
    bundle = load_bundle(guard.store.root.parent / "models" / "NEAR")
    start, end = evaluation_span(bundle)
    assert pd.Timestamp(bundle.metrics["final"]["start"]) == start
    assert pd.Timestamp(bundle.training_span["end"]) < start < end


def test_a_stale_source_the_loop_collects_makes_the_decision_fail_safe(
        replay_base: Path, tmp_path: Path) -> None:
    """BTC candles stop at the replay's start: the loop keeps cycling, and once the newest BTC
    candle is more than two bars old the decision is the fail-safe, with the reason in the book."""
    _, sections = copy_replay(replay_base, tmp_path)
    history = MarketStore(tmp_path / "replay" / "source")
    key = PartitionKey("ohlcv", "binance", "BTC", "1h")
    btc = history.read_partition(key)
    history.write_table(key.relpath(), btc[btc.index + HOUR <= FROM],
                        {"dataset": "ohlcv", "venue": "binance", "symbol": "BTC",
                         "interval": "1h"})  # rewrite the partition without later candles
    clock = SimClock(NOW)
    paths = replay_paths(sections)
    loop, _ = build_loop(sections, paths, clock=clock,
                         exchange=ReplayExchange(history, clock),
                         fear_greed=StoredFearGreed(history))
    loop.start()
    outcomes = []
    for hour in range(4):
        clock.set(NOW + hour * HOUR)
        outcomes.append(loop.cycle().symbols[0])
    loop.book.close()
    assert [o.decision.fail_safe for o in outcomes] == [False, False, True, True]
    stale = [r for r in outcomes[2].decision.reasons if "ohlcv of BTC is stale" in r]
    assert stale and stale[0].startswith("FAIL-SAFE: monitor: ")
    with PaperBook(paths.db_url, migrate=False) as book:
        stored = book.frames()["decisions"]
    assert stored["fail_safe"].tolist() == [False, False, True, True]
    assert any("ohlcv of BTC is stale" in r for r in stored["reasons"].iloc[2])
    ledger_is_consistent(paths.db_url)
