"""Missing inputs per family and source staleness (point in time, relevance, coalesced venues)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from cascade_ml.data.store import MarketStore, PartitionKey
from cascade_ml.monitoring.config import MonitoringConfig
from cascade_ml.monitoring.missing import missing_features, missing_share_by_family
from cascade_ml.monitoring.staleness import (
    judge_sources,
    parse_key,
    source_staleness,
    stale_groups,
)

FAMILY_OF = {"a": "f1", "b": "f1", "c": "f1", "d": "f2", "e": "f2"}


def test_missing_share_of_one_row_and_of_a_frame():
    row = pd.Series({"a": 1.0, "b": np.nan, "c": np.inf, "d": 0.0, "e": 2.0})
    share = missing_share_by_family(row, FAMILY_OF)
    assert share.to_dict() == pytest.approx({"f1": 2 / 3, "f2": 0.0})
    frame = pd.DataFrame({"a": [1.0, np.nan], "b": [np.nan, np.nan], "c": [1.0, 1.0],
                          "d": [np.nan, 1.0], "e": [1.0, 1.0]})
    assert missing_share_by_family(frame, FAMILY_OF).to_dict() == pytest.approx(
        {"f1": 3 / 6, "f2": 1 / 4})
    # a feature the model expects but the table lacks is missing; ``only`` narrows the count
    assert missing_share_by_family(row.drop("e"), FAMILY_OF)["f2"] == pytest.approx(0.5)
    assert missing_share_by_family(row, FAMILY_OF, only=["a", "d"]).to_dict() == {"f1": 0.0,
                                                                                  "f2": 0.0}
    assert missing_features(row, ["a", "b", "c", "zz"]) == ["b", "c", "zz"]


def _store(tmp_path) -> MarketStore:
    store = MarketStore(tmp_path)
    hours = pd.date_range("2026-01-01", "2026-01-10 09:00", freq="1h", tz="UTC", name="timestamp")
    px = np.linspace(10, 11, len(hours))
    store.write(PartitionKey("ohlcv", "binance", "NEAR", "1h"), pd.DataFrame(
        {"open": px, "high": px * 1.01, "low": px * 0.99, "close": px, "volume": 1.0},
        index=hours))
    days = pd.date_range("2025-12-01", "2026-01-10", freq="1D", tz="UTC", name="timestamp")
    store.write(PartitionKey("sentiment", "alternative.me", "MARKET", "1d"),
                pd.DataFrame({"score": 50.0}, index=days))
    settle = pd.date_range("2025-12-01", "2026-01-09 16:00", freq="8h", tz="UTC",
                           name="timestamp")
    store.write(PartitionKey("funding", "binance", "NEAR", "8h"),
                pd.DataFrame({"funding_rate": 1e-4}, index=settle))
    old = settle[settle <= "2025-12-20"]
    store.write(PartitionKey("funding", "hyperliquid", "NEAR", "1h"),
                pd.DataFrame({"funding_rate": 1e-5}, index=old))
    return store


def test_source_age_counts_from_when_the_record_became_available(tmp_path):
    store = _store(tmp_path)
    now = pd.Timestamp("2026-01-10 10:30", tz="UTC")
    ages = source_staleness(store, now).set_index(["dataset", "venue"])
    # the 09:00 candle closed at 10:00
    assert ages.loc[("ohlcv", "binance"), "age_s"] == pytest.approx(1800)
    # the value for Jan 10 is not known until Jan 11: Jan 9's, known at Jan 10 00:00, is newest
    assert ages.loc[("sentiment", "alternative.me"), "last"] == pd.Timestamp("2026-01-09",
                                                                             tz="UTC")
    assert ages.loc[("sentiment", "alternative.me"), "age_s"] == pytest.approx(10.5 * 3600)
    # a settlement is known at its stamp
    assert ages.loc[("funding", "binance"), "age_s"] == pytest.approx(18.5 * 3600)
    # replaying an earlier moment ignores what came after it
    past = source_staleness(store, pd.Timestamp("2026-01-05 00:30", tz="UTC"))
    past = past.set_index(["dataset", "venue"])
    assert past.loc[("ohlcv", "binance"), "last"] == pd.Timestamp("2026-01-04 23:00", tz="UTC")
    keys = [PartitionKey("ohlcv", "binance", "NEAR", "1h")]
    assert source_staleness(store, now, keys)["dataset"].tolist() == ["ohlcv"]


def test_judging_and_coalesced_venues(tmp_path):
    store = _store(tmp_path)
    now = pd.Timestamp("2026-01-10 10:30", tz="UTC")
    cfg = MonitoringConfig()
    judged = judge_sources(source_staleness(store, now), cfg).set_index(["dataset", "venue"])
    assert judged.loc[("ohlcv", "binance"), "max_age_s"] == 2 * 3600  # two 1h bars
    assert judged.loc[("funding", "binance"), "max_age_s"] == 9 * 3600
    stale = judged["stale"].to_dict()
    assert stale == {("funding", "binance"): True, ("funding", "hyperliquid"): True,
                     ("ohlcv", "binance"): False, ("sentiment", "alternative.me"): False}
    groups = stale_groups(judged.reset_index())
    assert list(zip(groups.dataset, groups.venue, strict=True)) == [("funding", "binance")]
    # one fresh venue keeps the dataset alive for the symbol
    fresh = judge_sources(source_staleness(store, pd.Timestamp("2026-01-09 18:00", tz="UTC")),
                          cfg)
    assert fresh.set_index(["dataset", "venue"]).loc[("funding", "hyperliquid"), "stale"]
    assert stale_groups(fresh).empty
    # a dataset without a limit is never judged
    lax = MonitoringConfig(max_age={}, max_age_bars={})
    assert not judge_sources(source_staleness(store, now), lax)["stale"].any()


def test_config_validation():
    with pytest.raises(ValidationError, match="not a duration"):
        MonitoringConfig(max_age={"funding": "soon"})
    with pytest.raises(ValidationError):
        MonitoringConfig(psi_alrt=0.3)  # typo: unknown keys are rejected
    with pytest.raises(ValidationError, match="missing shares"):
        MonitoringConfig(max_missing_share={"sentiment": 1.5})
    cfg = MonitoringConfig(max_missing_share={"sentiment": 0.0})
    assert cfg.missing_limit("sentiment") == 0.0 and cfg.missing_limit("volume") == 0.5
    assert cfg.age_limit("ohlcv", "4h") == pd.Timedelta("8h")
    assert cfg.age_limit("sentiment", "1d") == pd.Timedelta("2d")


def test_parse_key_reads_manifest_paths():
    key = parse_key("funding/venue=binance/symbol=NEAR/interval=8h/part.parquet")
    assert key == PartitionKey("funding", "binance", "NEAR", "8h")
    assert parse_key("features/symbol=NEAR/features.parquet") is None
    assert parse_key("bogus/venue=x/symbol=Y/interval=1h/part.parquet") is None
