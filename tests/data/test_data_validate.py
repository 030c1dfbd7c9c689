"""to_canonical / parse_timestamps: every bad input gives a message naming what and where."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cascade_ml.data.sources.symbols import normalize_symbol
from cascade_ml.data.validate import parse_timestamps, to_canonical, validate_frame
from cascade_ml.errors import CascadeError, DataValidationError

WHERE = "in.csv"


def raw(n: int = 4) -> pd.DataFrame:
    ts = 1_700_000_000_000 + 3_600_000 * np.arange(n)
    close = 2.0 + 0.1 * np.arange(n)
    return pd.DataFrame({"timestamp": ts, "open": close, "high": close + 0.2, "low": close - 0.2,
                         "close": close, "volume": np.full(n, 10.0)})


def test_valid_frame_becomes_canonical() -> None:
    frame = to_canonical(raw(), "ohlcv", WHERE)
    assert frame.index.name == "timestamp" and str(frame.index.dtype) == "datetime64[ns, UTC]"
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert frame.index[0] == pd.Timestamp(1_700_000_000_000, unit="ms", tz="UTC")


def test_unsorted_rows_are_sorted_and_exact_duplicates_dropped() -> None:
    frame = raw(5)
    shuffled = pd.concat([frame.iloc[[3, 0, 4, 1, 2]], frame.iloc[[1]]])
    out = to_canonical(shuffled, "ohlcv", WHERE)
    assert out.index.is_monotonic_increasing and len(out) == 5
    pd.testing.assert_frame_equal(out, to_canonical(frame, "ohlcv", WHERE))


def test_unknown_columns_are_dropped() -> None:
    frame = raw().assign(close_time=1, symbol="NEARUSDT")
    assert "close_time" not in to_canonical(frame, "ohlcv", WHERE).columns


@pytest.mark.parametrize("mutate, message", [
    (lambda f: f.drop(columns="close"), r"in.csv: missing required column\(s\) \['close'\]"),
    (lambda f: f.rename(columns={"close": "Close"}), r"missing required column\(s\) \['close'\]"),
    (lambda f: f.drop(columns="timestamp"), "missing timestamp column 'timestamp'"),
    (lambda f: f.iloc[0:0], "in.csv: no rows"),
    (lambda f: f.assign(timestamp=["2024-01-01T00:00Z", "garbage", "2024-01-01T02:00Z",
                                   "2024-01-01T03:00Z"]), "unparsable timestamp in data rows 2"),
    (lambda f: f.assign(timestamp=pd.date_range("2024-01-01", periods=4, freq="h").astype(str)),
     "timestamps have no timezone"),
    (lambda f: f.assign(timestamp=[f.timestamp[0]] * 2 + list(f.timestamp[2:]),
                        close=[2.0, 2.05, 2.2, 2.3]), "duplicate timestamps with conflicting"),
    (lambda f: f.assign(close=[2.0, np.nan, 2.2, 2.3]),
     "column 'close': missing/NaN value in data rows 2"),
    (lambda f: f.assign(close=[2.0, np.inf, 2.2, 2.3], high=[2.2, np.inf, 2.4, 2.5]),
     "values must be finite"),
    (lambda f: f.assign(open=[2.0, -2.1, 2.2, 2.3]), "column open: must be positive"),
    (lambda f: f.assign(volume=[1.0, 1.0, -1.0, 1.0]), "column volume: must not be negative"),
    (lambda f: f.assign(high=[1.0, 2.3, 2.4, 2.5]), "high must be >= low"),
    (lambda f: f.assign(close=["2.0", "x", "2.2", "2.3"]),
     "column 'close': non-numeric value in data rows 2"),
])
def test_bad_inputs_have_clear_messages(mutate, message: str) -> None:  # noqa: ANN001
    with pytest.raises(DataValidationError, match=message):
        to_canonical(mutate(raw()), "ohlcv", WHERE)


def test_naive_strings_accepted_only_when_documented_utc() -> None:
    values = pd.Series(["2024-01-01 00:00:00", "2024-01-01 01:00:00"])
    with pytest.raises(DataValidationError, match="no timezone"):
        parse_timestamps(values, WHERE)
    parsed = parse_timestamps(values, WHERE, naive_is_utc=True)
    assert parsed[1] == pd.Timestamp("2024-01-01 01:00", tz="UTC")


def test_offsets_are_converted_to_utc_and_epoch_seconds_detected() -> None:
    parsed = parse_timestamps(pd.Series(["2024-01-01T02:00:00+02:00"]), WHERE)
    assert parsed[0] == pd.Timestamp("2024-01-01 00:00", tz="UTC")
    seconds = parse_timestamps(pd.Series([1_517_443_200]), WHERE)
    assert seconds[0] == pd.Timestamp("2018-02-01", tz="UTC")


def test_funding_rate_out_of_range_and_any_of_datasets() -> None:
    frame = pd.DataFrame({"timestamp": [1_700_000_000_000], "funding_rate": [3.0]})
    with pytest.raises(DataValidationError, match="funding_rate: must be a fraction"):
        to_canonical(frame, "funding", WHERE)
    with pytest.raises(DataValidationError, match="needs at least one of"):
        to_canonical(pd.DataFrame({"timestamp": [1_700_000_000_000], "x": [1]}),
                     "open_interest", WHERE)


def test_microsecond_utc_index_is_accepted() -> None:
    idx = pd.date_range("2024-01-01", periods=2, freq="h", tz="Europe/Paris", name="timestamp")
    frame = pd.DataFrame({"funding_rate": [0.0001, 0.0002]}, index=idx.as_unit("us"))
    out = validate_frame(frame, "funding", WHERE)
    assert str(out.index.dtype) == "datetime64[ns, UTC]"
    naive = frame.tz_localize(None)
    with pytest.raises(DataValidationError, match="timestamp"):
        validate_frame(naive, "funding", WHERE)


@pytest.mark.parametrize("name", ["NEARUSDT", "NEAR_USDT_USDT", "NEAR/USDT:USDT", "near",
                                  "NEARUSD_PERP.A", "NEAR/USDC:USDC", "NEAR-PERP"])
def test_symbols_normalise_to_base_asset(name: str) -> None:
    assert normalize_symbol(name) == "NEAR"


def test_symbol_edge_cases() -> None:
    assert normalize_symbol("1000PEPEUSDT") == "1000PEPE"
    assert normalize_symbol("MARKET") == "MARKET"
    assert normalize_symbol("USDC") == "USDC"
    with pytest.raises(CascadeError, match="cannot read a base asset"):
        normalize_symbol("NE AR!")
