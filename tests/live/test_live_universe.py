"""The loop in universe mode: one panel bundle serves every symbol of the task, on panel rows the
loop builds each cycle from the data known at the bar (never the stored panel table), watched by
a monitor of the per-symbol features those rows derive from.

A few replay cycles over the small universe (NEAR, BTC, ETH from data/sample, ADA and SEI from
data/universe, whose files end 2026-03-25 13:00; open interest of the sample ends 2026-03-20,
so the window lies before that)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from loop_helpers import HOUR, SAMPLE, sections_of
from panel_data import SYMBOLS

from cascade_ml.atomic import write_json
from cascade_ml.contracts.layout import panel_path, scores_path
from cascade_ml.data.store import MarketStore
from cascade_ml.forecasting import load_forecaster
from cascade_ml.labels.config import LabelConfig
from cascade_ml.live.run import replay_db_url, run_replay
from cascade_ml.panel.dataset import ADVERSE, LABEL_KEEP, SYMBOL, TIMESTAMP, source_columns
from cascade_ml.panel.newest import newest_panel

FROM = pd.Timestamp("2026-03-18T08:00:00Z")
UNTIL = pd.Timestamp("2026-03-18T11:00:00Z")  # cycles of the bars opening 07:00 .. 10:00
BARS = list(pd.date_range(FROM - HOUR, UNTIL - HOUR, freq="1h"))


def universe_loop_pipeline(folder: Path, replay_dir: Path, bundle_dir: Path) -> Path:
    """The small universe with the panel enabled, its bundle served, replayed from the store."""
    doc = {"task": {"symbols": SYMBOLS, "references": ["BTC", "ETH"], "horizon": 24},
           "panel": {"enabled": True, "holdout_symbols": ["ADA"], "bundle_dir": str(bundle_dir)},
           # the drift verdict is judged (see the monitor test) but does not fail safe here: on
           # this window a toy bundle sees one or two inputs of NEAR, BTC or SEI a little past
           # their drift envelope, which is the data, not the plumbing under test; the missing-
           # input and staleness rules stay on
           "monitoring": {"degrade_on_drift": False},
           "live": {"retrain_cron": None,
                    "replay": {"source": str(SAMPLE), "dir": str(replay_dir)}}}
    path = folder / "universe.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(scope="module")
def universe_replay(tmp_path_factory: pytest.TempPathFactory, panel_store: MarketStore,
                    panel_bundle_dir: Path) -> dict:
    """Four cycles of the loop in universe mode; after each, the panel it built and its cycle."""
    from cascade_ml.live.seed import MARKER, _signature

    root = tmp_path_factory.mktemp("universe_replay")
    replay_dir = root / "replay"
    shutil.copytree(panel_store.root, replay_dir / "source")  # the replay's history
    write_json(replay_dir / "source" / MARKER, {"source": str(SAMPLE),
                                                "files": _signature(SAMPLE)})
    sections = sections_of(universe_loop_pipeline(root, replay_dir, panel_bundle_dir))
    seen: list[dict] = []

    def watch(loop, report) -> None:  # noqa: ANN001 - what the loop built in the cycle
        seen.append({"bar": report.bar, "now": report.now, "panel": loop.last_panel.frame.copy(),
                     "cycles": {s.symbol: s for s in report.symbols},
                     "guard_names": {s: g.names for s, g in loop.guards.items()},
                     "guard_families": {s: g.profile.family_of for s, g in loop.guards.items()},
                     "watched_last": {s: r.index[-1] for s, r in loop.panel_rows.items()},
                     "loop": loop,
                     "tables": {s: f.table.copy() for s, f in loop.features.items()}})

    summary = run_replay(sections, FROM, UNTIL, echo=lambda line: None, report_every=0,
                         watch=watch)
    return {"summary": summary, "seen": seen, "dir": replay_dir, "sections": sections,
            "bundle": panel_bundle_dir}


def _full_rows(small_panel, bar: pd.Timestamp) -> pd.DataFrame:  # noqa: ANN001
    """Every symbol's row at ``bar`` of the full build (the whole history, later bars too)."""
    frame = small_panel.frame
    return frame[frame[TIMESTAMP] == bar].set_index(SYMBOL)


def test_every_symbol_is_decided_on_the_model_path_on_the_newest_bar(
        universe_replay: dict) -> None:
    seen, summary = universe_replay["seen"], universe_replay["summary"]
    assert [s["bar"] for s in seen] == BARS and summary.cycles == 4
    for s in seen:
        assert sorted(s["cycles"]) == sorted(SYMBOLS)
        for symbol, cycle in s["cycles"].items():
            assert not cycle.decision.fail_safe, (symbol, cycle.decision.reasons)
            assert cycle.model_version == "p1" and cycle.forecast_age_s == pytest.approx(10.0)
            assert 0.30 <= cycle.decision.hedge_ratio <= 0.70  # the seed's band
            assert cycle.decision.leverage_cap <= 5.0  # and its 5x ceiling
        # the panel the loop built holds one row per symbol, at the bar that just closed
        panel = s["panel"]
        assert sorted(panel[SYMBOL]) == sorted(SYMBOLS) and (panel[TIMESTAMP] == s["bar"]).all()
    assert summary.decisions == 4 * len(SYMBOLS) and summary.fail_safe == 0
    # the loop never wrote (nor read) a panel table: its rows come from the cycle
    assert not (universe_replay["dir"] / "store" / panel_path(24)).exists()


def test_the_loops_panel_row_equals_the_full_build_at_that_bar(universe_replay: dict,
                                                               small_panel) -> None:  # noqa: ANN001
    names = load_forecaster(universe_replay["bundle"], "NEAR",
                            universe_replay["sections"].task).feature_names
    for s in universe_replay["seen"]:
        loop = s["panel"].set_index(SYMBOL)
        full = _full_rows(small_panel, s["bar"])
        assert set(full.index) == set(SYMBOLS)
        # the same columns as the full build but its labels (unknown at t), the bundle's among
        # them; every one on the same symbols within float tolerance; the full build ran over
        # history up to 2026-05 (13 months of bars after these), so later bars move nothing
        labels = {*LABEL_KEEP, ADVERSE, "y"}
        columns = [c for c in full.columns if c not in labels and c != TIMESTAMP]
        assert sorted(c for c in loop.columns if c != TIMESTAMP) == sorted(columns)
        assert set(names) <= set(columns)
        got = loop.loc[SYMBOLS, columns].to_numpy(float)
        want = full.loc[SYMBOLS, columns].to_numpy(float)
        assert np.array_equal(np.isnan(got), np.isnan(want)), (
            [n for n, a, b in zip(columns, np.isnan(got).any(0), np.isnan(want).any(0),
                                  strict=True) if a != b])
        np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)
        # market state is one value per bar: ADA (held out) sees the same as the core
        assert loop["mkt_n"].eq(4.0).all()  # NEAR, BTC, ETH, SEI; ADA is held out


def test_appending_bars_changes_no_newest_row(universe_replay: dict) -> None:
    first, last = universe_replay["seen"][0], universe_replay["seen"][-1]
    bar, cfg = first["bar"], universe_replay["sections"].panel
    early = newest_panel(first["tables"], [bar], cfg, 24, "long", LabelConfig()).frame
    later = newest_panel(last["tables"], [bar], cfg, 24, "long", LabelConfig()).frame
    assert len(early) == len(later) == len(SYMBOLS)
    assert max(t.index[-1] for t in last["tables"].values()) == bar + 3 * HOUR
    pd.testing.assert_frame_equal(early, later, rtol=0, atol=0)


def test_stored_scores_equal_the_bundle_on_the_full_build_row(universe_replay: dict,
                                                              small_panel) -> None:  # noqa: ANN001
    store = MarketStore(universe_replay["dir"] / "store")
    task = universe_replay["sections"].task
    for symbol in SYMBOLS:
        bundle = load_forecaster(universe_replay["bundle"], symbol, task)
        scores = store.read_table(scores_path(symbol))
        assert list(scores.index) == BARS and scores["model_version"].eq("p1").all()
        for bar in BARS:
            row = _full_rows(small_panel, bar).loc[symbol, bundle.feature_names]
            want = bundle.predict(row.to_numpy(float)[None, :], symbol)
            for column, value in want.items():
                assert scores.loc[bar, column] == pytest.approx(float(value[0]), rel=1e-6), (
                    symbol, bar, column)
            assert np.isclose(scores.loc[bar, "vol_forecast"] ** 2, scores.loc[bar, "var_forecast"])


def test_the_monitor_watches_the_panel_inputs_the_bundle_reads(universe_replay: dict) -> None:
    from cascade_ml.monitoring.run import family_map

    seen = universe_replay["seen"][-1]
    names = load_forecaster(universe_replay["bundle"], "NEAR",
                            universe_replay["sections"].task).feature_names
    assert seen["guard_names"]["NEAR"] == names  # scale-free panel columns, not rv levels
    families = seen["guard_families"]["NEAR"]
    raw = family_map("NEAR", universe_replay["sections"].task,
                     universe_replay["sections"].features)
    # each panel input has the family of the feature it is computed from, so a stale candle
    # source still fails safe (ohlcv feeds the volatility family)
    assert families["d"] == raw["rv_24h"] == "volatility"
    assert families["mkt_n"] == "market"
    assert all(families[n] == raw[n] for n in names if n in raw)
    # the guard judged the cycle's own row: its newest watched row is the bar that closed, and
    # its drift table is over the panel inputs
    assert seen["watched_last"]["NEAR"] == seen["bar"]
    drift = seen["cycles"]["NEAR"].monitor.drift
    assert set(drift.index) == set(names) and drift.loc["d", "psi"] >= 0
    assert source_columns(["d", "tw_rv_4h", "mkt_n", "funding_z_168h", "gone"],
                          ["ret_1h", "rv_24h", "rv_4h", "funding_z_168h"]) == [
        "rv_24h", "ret_1h", "rv_4h", "funding_z_168h", "gone"]


def test_the_book_holds_one_decision_per_symbol_and_bar(universe_replay: dict) -> None:
    from loop_helpers import ledger_is_consistent

    frames = ledger_is_consistent(replay_db_url(universe_replay["dir"]))
    dec = frames["decisions"]
    assert len(dec) == 4 * len(SYMBOLS) and not dec["fail_safe"].astype(bool).any()
    assert set(dec["symbol"]) == set(SYMBOLS) and dec["model_version"].eq("p1").all()


def test_retraining_in_universe_mode_keeps_the_served_bundle(universe_replay: dict) -> None:
    loop = universe_replay["seen"][-1]["loop"]
    guards = dict(loop.guards)
    report = loop.retrain(scheduled=False)  # the panel is trained by the pipeline, not the loop
    assert report.lines == ["panel: serving vp1 (unchanged); the universe is retrained by the "
                            "pipeline's train step"]
    assert loop.guards == guards  # same guards, still watching the rows of the last cycles


def test_universe_mode_without_a_bundle_is_refused_by_name(universe_replay: dict,
                                                           tmp_path: Path) -> None:
    from cascade_ml.errors import ModelBundleError

    replay_dir = tmp_path / "replay"
    shutil.copytree(universe_replay["dir"] / "source", replay_dir / "source")
    sections = sections_of(universe_loop_pipeline(tmp_path, replay_dir, tmp_path / "no-panel"))
    with pytest.raises(ModelBundleError, match="no universe bundle") as err:
        run_replay(sections, FROM, UNTIL, echo=lambda line: None, max_cycles=0)
    assert "no-panel" in str(err.value.where) and "universe.yaml" in str(err.value.hint)


def test_a_panel_input_the_loops_rows_lack_is_refused_by_name(universe_replay: dict) -> None:
    from dataclasses import replace

    from cascade_ml.errors import ModelBundleError

    loop = universe_replay["seen"][-1]["loop"]
    bundle = loop.bundles["NEAR"]
    wider = replace(bundle, meta={**bundle.meta,
                                  "feature_names": [*bundle.feature_names, "mkt_gone"]})
    row = loop.features["NEAR"].table.iloc[-1]
    with pytest.raises(ModelBundleError, match=r"lacks input\(s\) \['mkt_gone'\]"):
        loop._input_row(wider, "NEAR", row, loop.last_panel)
    ok = loop._input_row(bundle, "NEAR", row, loop.last_panel)
    assert ok.shape == (1, len(bundle.feature_names)) and np.isfinite(ok[0, :3]).all()
