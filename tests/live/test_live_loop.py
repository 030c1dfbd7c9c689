"""The live loop end to end on a replay of the bundled sample: collect -> features -> forecast ->
monitor -> decide -> paper fills -> book, bar by bar under the simulated clock."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from loop_helpers import FROM, HOUR, UNTIL, ledger_is_consistent

from cascade_ml.contracts.layout import features_path, monitor_path, scores_path
from cascade_ml.data.store import MarketStore
from cascade_ml.features.build import build_features
from cascade_ml.forecasting.inputs import trailing_vol_annual
from cascade_ml.live.run import replay_db_url, run_replay
from cascade_ml.live.state import LoopState
from cascade_ml.monitoring.persist import read_report


def test_every_bar_of_the_window_is_decided_once_on_a_fresh_forecast(
        reference_replay: dict) -> None:
    summary, seen = reference_replay["summary"], reference_replay["seen"]
    bars = pd.date_range(FROM - HOUR, UNTIL - HOUR, freq="1h")  # the bars closing FROM..UNTIL
    assert [s["bar"] for s in seen] == list(bars) and summary.cycles == len(bars) == 13
    assert all(s["now"] == s["bar"] + HOUR + pd.Timedelta("10s") for s in seen)
    # each cycle forecasts the row of the bar that just closed: 10 s old, never older
    assert all(s["last_row"] == s["bar"] for s in seen)
    assert all(s["cycle"].forecast_age_s == pytest.approx(10.0) for s in seen)
    assert all(s["collected"] >= 3 for s in seen[1:])  # a new candle of NEAR, BTC, ETH each bar
    decisions = [s["cycle"].decision for s in seen]
    assert not any(d.fail_safe for d in decisions), [d.reasons for d in decisions]
    assert summary.decisions == 13 and summary.fail_safe == 0
    assert summary.fills > 0 and summary.refused == 0
    assert any("hedge" in line and "leverage cap" in line for line in reference_replay["lines"])


def test_the_book_ledger_is_consistent(reference_replay: dict) -> None:
    frames = ledger_is_consistent(replay_db_url(reference_replay["dir"]))
    dec, hedges = frames["decisions"], frames["hedges"]
    assert len(dec) == 13 and dec["model_version"].eq("1").all()
    assert dec["forecast_vol"].notna().all() and (dec["forecast_vol"] > 0).all()
    # the main leg was opened at the bot's leverage (5x) on its isolated margin (half the
    # 10,000 equity), cut to the first decision's leverage and size caps, at the bar's close
    # (net of the open's own fee, 0.06 % of both legs' notional, paid from the margin and the
    # equity: the position sits at its caps after paying)
    first, d0 = frames["orders"].iloc[0], dec.iloc[0]
    assert (first["leg"], first["side"], first["order_type"]) == ("main", "buy", "market")
    assert reference_replay["sections"].policy.trade_cost == pytest.approx(0.0006)
    opened = frames["orders"].iloc[:2]
    assert list(opened["leg"]) == ["main", "hedge"]
    fee = 0.0006 * float((opened["qty"] * opened["ref_price"]).sum())
    allowed = min(min(5.0, d0["leverage_cap"]) * (5_000 - fee),
                  d0["size_cap_notional"] * (10_000 - fee) / 10_000)
    assert first["qty"] * first["ref_price"] == pytest.approx(allowed, rel=1e-6)
    assert first["ref_price"] == pytest.approx(d0["mark_price"])
    held = hedges["actual_ratio"].to_numpy()
    assert np.all(np.abs(held - hedges["target_ratio"].to_numpy()) < 0.15)


def test_forecasts_and_features_land_in_the_store(reference_replay: dict) -> None:
    store = MarketStore(reference_replay["dir"] / "store")
    scores = store.read_table(scores_path("NEAR"))
    assert len(scores) == 13 and scores.index.is_unique
    assert (scores["scored_at"] - scores.index == HOUR + pd.Timedelta("10s")).all()
    # the monitor's report of the last cycle, for the service, on the bar of the last forecast
    stored = read_report(store.root / monitor_path("NEAR"), "NEAR")
    last = reference_replay["seen"][-1]
    assert stored is not None and stored.bar == scores.index[-1] == last["bar"]
    assert stored.report.now == last["now"]
    assert stored.report.to_dict() == last["cycle"].monitor.to_dict()
    # the loop's incremental rows equal a full build over the same store
    table = store.read_table(features_path("NEAR"))
    sections = reference_replay["sections"]
    full = build_features(store, "NEAR", sections.task, sections.features)
    new = table.index[table.index >= FROM - HOUR]
    assert len(new) == 13
    np.testing.assert_allclose(table.loc[new].to_numpy(), full.loc[new, table.columns].to_numpy(),
                               rtol=1e-9, atol=1e-12)


def test_state_records_the_last_bar_and_a_finished_replay_does_nothing_more(
        reference_replay: dict) -> None:
    state = LoopState.load(reference_replay["dir"] / "loop_state.json")
    assert state.last_bar == UNTIL - HOUR and state.cycles == 13
    again = run_replay(reference_replay["sections"], FROM, UNTIL, echo=lambda line: None)
    assert again.cycles == 0 and again.decisions == 13


def test_paper_report_draws_the_replays_book(reference_replay: dict, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture) -> None:
    import json
    import sys

    from cascade_ml.cli.main import main

    url = replay_db_url(reference_replay["dir"])
    monkeypatch.setattr(sys, "argv", ["cascade-ml", "paper", "report", "--db", url,
                                      "--out", str(tmp_path)])
    main()
    out = capsys.readouterr().out
    summary = json.loads((tmp_path / "paper_summary.json").read_text())
    assert (tmp_path / "paper_report.png").read_bytes()[:4] == b"\x89PNG"
    assert summary["cycles"] == 13 and summary["fail_safe_share"] == 0.0
    assert summary["fills"] == reference_replay["summary"].fills
    assert summary["final_equity"] == pytest.approx(reference_replay["summary"].equity)
    assert f"{summary['fills']} fills" in out and "paper_report.png" in out


def test_loop_metrics_export_the_book_and_the_monitor(reference_replay: dict) -> None:
    from prometheus_client import generate_latest

    from cascade_ml.data.collect import CollectResult
    from cascade_ml.live.loop import CycleReport
    from cascade_ml.live.metrics import LoopMetrics

    last = reference_replay["seen"][-1]
    metrics = LoopMetrics()
    metrics.update(CycleReport(last["now"], last["bar"], CollectResult(failed={"x": "down"}),
                               [last["cycle"]], seconds=0.5))
    text = generate_latest(metrics.registry).decode()
    assert f"cascade_live_equity {last['cycle'].equity}" in text
    assert 'cascade_live_fail_safe{symbol="NEAR"} 0.0' in text
    assert "cascade_live_collect_failures 1.0" in text
    assert 'cascade_feature_psi{feature="rv_24h",symbol="NEAR"}' in text


def test_each_decision_is_judged_against_the_backtests_trailing_vol(
        reference_replay: dict) -> None:
    """The loop reads the trailing vol reference from the bar's feature row; the backtest
    computes it from closes: the same number at every decided bar."""
    store = MarketStore(reference_replay["dir"] / "store")
    key = next(k for k in store.partitions("ohlcv", "NEAR", "binance") if k.interval == "1h")
    close = store.read_partition(key)["close"]
    policy = reference_replay["sections"].policy
    assert policy.vol_reference == "trailing" and policy.vol_reference_window == 720
    want = trailing_vol_annual(close, 720, HOUR)
    for s in reference_replay["seen"]:
        reference = want.loc[s["bar"]]
        assert 0.2 < reference < 3.0  # a full 720-bar window of NEAR: tens of percent a year
        assert (f"its own trailing reference ({reference:.0%} a year)"
                in s["cycle"].decision.reasons[0]), s["bar"]
