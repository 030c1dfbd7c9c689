"""The monitor on the real sample (data/sample): drift, a source going stale, HAR as yardstick."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from monitor_factories import SAMPLE_NOW, TRAIN_SPAN

from cascade_ml.contracts.layout import features_path, manifest_path
from cascade_ml.contracts.task import TaskConfig
from cascade_ml.data.store import MarketStore, PartitionKey
from cascade_ml.features.build import build_and_store
from cascade_ml.features.config import FeatureConfig
from cascade_ml.labels.build import build_labels
from cascade_ml.labels.config import LabelConfig
from cascade_ml.models.metrics import qlike_loss
from cascade_ml.monitoring.config import MonitoringConfig
from cascade_ml.monitoring.drift import fit_profile
from cascade_ml.monitoring.health import health
from cascade_ml.monitoring.quality import har_forecast, rolling_qlike
from cascade_ml.monitoring.run import family_map, monitor_symbol, symbol_sources
from cascade_ml.monitoring.staleness import SOURCE_COLUMNS

TASK, FEATURES_CFG, CFG = TaskConfig(), FeatureConfig(), MonitoringConfig()
NO_SOURCES = pd.DataFrame(columns=SOURCE_COLUMNS)
SHIFTED = "funding_div_eth_z_168h"


@pytest.fixture(scope="module")
def profile(near_features):
    return fit_profile(near_features, TRAIN_SPAN,
                       family_map("NEAR", TASK, FEATURES_CFG, list(near_features.columns)), CFG)


def test_a_week_of_slow_features_reads_shifted_but_stays_inside_the_training_envelope(
        near_features, profile):
    report = health("NEAR", near_features, profile, NO_SOURCES, CFG, SAMPLE_NOW)
    used = report.drift[report.drift["used"]]
    # by the absolute reading most inputs have "shifted" over the last week (levels, betas,
    # F&G move slowly) ...
    assert (used["psi"] > 0.25).sum() > len(used) / 2  # 0.25: the common "shifted" reading
    # ... yet none moved further than some week of the training window already had
    assert report.drifted == []
    assert not any("drifted" in r for r in report.degrade_reasons)


def test_shifting_one_input_moves_its_psi_past_the_limit_and_no_other(near_features, profile):
    shifted = near_features.copy()
    shifted.iloc[-CFG.recent_rows:, shifted.columns.get_loc(SHIFTED)] *= 5.0
    before = health("NEAR", near_features, profile, NO_SOURCES, CFG, SAMPLE_NOW)
    after = health("NEAR", shifted, profile, NO_SOURCES, CFG, SAMPLE_NOW)
    assert before.drift.loc[SHIFTED, "psi"] < before.drift.loc[SHIFTED, "psi_limit"]
    assert after.drift.loc[SHIFTED, "psi"] > after.drift.loc[SHIFTED, "psi_limit"] \
        >= 0.25  # never below PSI's 'shifted' reading
    assert after.drifted == [SHIFTED]
    others = after.drift.index != SHIFTED
    pd.testing.assert_series_equal(after.drift.loc[others, "psi"],
                                   before.drift.loc[others, "psi"])
    assert [r for r in after.degrade_reasons if "drifted" in r][0].startswith(
        f"input {SHIFTED} (funding) has drifted")


def _drop_sentiment_after(store: MarketStore, cut: pd.Timestamp) -> None:
    key = store.resolve("sentiment", "MARKET")
    kept = store.read_partition(key)
    kept = kept[kept.index < cut]
    (store.root / key.relpath()).unlink()
    store.write(PartitionKey(key.dataset, key.venue, key.symbol, key.interval), kept)


def test_a_stale_sentiment_source_empties_its_family_and_degrades(sample_store, tmp_path):
    store = MarketStore(tmp_path / "store")
    shutil.copytree(sample_store.root, store.root)
    build_and_store(store, "NEAR", TASK, FEATURES_CFG)
    kwargs = dict(training_span=TRAIN_SPAN, now=SAMPLE_NOW)
    intact = monitor_symbol(store, "NEAR", TASK, FEATURES_CFG, CFG, **kwargs)
    assert intact.missing_share_used["sentiment"] == 0.0
    assert "sentiment/alternative.me/MARKET/1d" not in intact.stale_sources
    ages = intact.sources.set_index("dataset")
    assert ages.loc["sentiment", "age_s"] == 12 * 3600  # May 17's value, known at midnight

    cut = SAMPLE_NOW.floor("D") - pd.Timedelta(days=21)
    _drop_sentiment_after(store, cut)
    build_and_store(store, "NEAR", TASK, FEATURES_CFG)
    dropped = monitor_symbol(store, "NEAR", TASK, FEATURES_CFG, CFG, **kwargs)
    # F&G score, its z-score and the F&G trigger go NaN; the 168h run-up (price) stays
    assert dropped.missing_share_used["sentiment"] == 0.75
    assert "sentiment" in dropped.missing_families
    assert "sentiment/alternative.me/MARKET/1d" in dropped.stale_sources
    sentiment = dropped.sources.set_index("dataset").loc["sentiment"]
    assert sentiment["age_s"] == pytest.approx((pd.Timedelta(days=21, hours=12))
                                               .total_seconds())
    reasons = " | ".join(dropped.degrade_reasons)
    assert ("3 of the 4 sentiment inputs the model uses are missing (fng_score, fng_z_30d, "
            "trigger_sentiment_spike)") in reasons
    assert "sentiment of MARKET is stale: the newest record (alternative.me) is 21.5 days old" \
        in reasons
    # every other finding is unchanged: the monitor names the source that went away
    assert set(dropped.degrade_reasons) - set(intact.degrade_reasons) == {
        r for r in dropped.degrade_reasons if "sentiment" in r}
    json.dumps(dropped.to_dict())
    # without a features manifest the sources are the ones the feature loader selects
    from_manifest = symbol_sources(store, "NEAR", TASK, FEATURES_CFG)
    assert PartitionKey("sentiment", "alternative.me", "MARKET", "1d") in from_manifest
    (store.root / manifest_path(features_path("NEAR"))).unlink()
    assert symbol_sources(store, "NEAR", TASK, FEATURES_CFG) == from_manifest


def test_har_refitted_on_the_training_span_matches_the_evaluated_baseline(
        sample_store, near_features):
    bars = sample_store.read("ohlcv", "NEAR", venue="binance", interval="1h")
    labels = build_labels(bars, LabelConfig(), horizon=TASK.horizon)
    final = near_features.loc["2025-11-18":"2026-05-17"].index
    har = har_forecast(near_features, labels, TRAIN_SPAN, final, TASK.horizon)
    ok = np.isfinite(labels.loc[final, "fwd_rv"].to_numpy())
    q = float(qlike_loss(labels.loc[final, "fwd_rv"].to_numpy()[ok], har.to_numpy()[ok]).mean())
    assert q == pytest.approx(0.2579, abs=0.005)  # README: HAR-RV on the final period, 0.2579
    fc = pd.DataFrame({"var_forecast": har * 1.3, "var_har": har})
    table = rolling_qlike(fc, labels, now=SAMPLE_NOW, horizon=TASK.horizon, window=720)
    assert table.index[-1] <= SAMPLE_NOW - (TASK.horizon + 1) * TASK.bar
    assert table["ratio"].iloc[-1] > 1  # an inflated forecast loses to HAR
