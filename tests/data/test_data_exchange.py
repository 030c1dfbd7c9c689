"""ccxt ingestion, offline: real ccxt code over recorded Binance USD-M responses.

The recorded bodies (tests/fixtures/exchange/binanceusdm) are served through a requests transport
adapter, so ccxt's HTTP handling, parsing, rate limiter and our pagination all run for real.
"""

from __future__ import annotations

import json
from pathlib import Path

import ccxt
import pandas as pd
import pytest
from typer.testing import CliRunner

from cascade_ml.cli.main import app
from cascade_ml.data.config import ExchangeSourceConfig
from cascade_ml.data.sources import exchange as exchange_module
from cascade_ml.data.sources.exchange import ingest_exchange, make_exchange
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import CascadeError

REC = Path(__file__).resolve().parents[1] / "fixtures" / "exchange" / "binanceusdm"
KLINES = json.loads((REC / "klines_NEARUSDT_1h.json").read_text())
FIRST_MS, LAST_MS = KLINES[0][0], KLINES[-1][0]
NOW_MS = LAST_MS + 30 * 60_000  # recorded half-way through the last candle
SINCE = pd.Timestamp(FIRST_MS, unit="ms", tz="UTC").isoformat()


def snapshot(root: Path) -> dict[str, bytes]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def source(*datasets: str, timeframe: str = "1h") -> ExchangeSourceConfig:
    return ExchangeSourceConfig(exchange="binanceusdm", datasets=list(datasets),
                                timeframe=timeframe, since=SINCE)


def kline_calls(server) -> list[str]:  # noqa: ANN001
    return [u for u in server.calls if "/fapi/v1/klines" in u]


def test_ohlcv_paginates_and_drops_the_open_candle(tmp_path: Path, recorded_binance) -> None:  # noqa: ANN001
    ex, server = recorded_binance()
    store = MarketStore(tmp_path)
    report = ingest_exchange(store, source("ohlcv"), ["NEAR"], exchange=ex, now_ms=NOW_MS,
                             page_limit=50)
    assert not report.failed, report.format()
    assert len(kline_calls(server)) == 5  # 239 closed candles, 50 per page
    stored = store.read("ohlcv", "NEAR", venue="binance", interval="1h")
    assert len(stored) == len(KLINES) - 1
    assert stored.index[-1] == pd.Timestamp(KLINES[-2][0], unit="ms", tz="UTC")
    assert stored["close"].iloc[0] == float(KLINES[0][4])
    assert stored["volume"].iloc[-1] == float(KLINES[-2][5])


def test_incremental_run_starts_after_the_last_stored_bar(tmp_path: Path, recorded_binance) -> None:  # noqa: ANN001
    store = MarketStore(tmp_path)
    ex, _ = recorded_binance()
    ingest_exchange(store, source("ohlcv"), ["NEAR"], exchange=ex, now_ms=NOW_MS, page_limit=100)
    ex2, server2 = recorded_binance()
    later = ingest_exchange(store, source("ohlcv"), ["NEAR"], exchange=ex2,
                            now_ms=NOW_MS + 3_600_000, page_limit=100)
    calls = kline_calls(server2)
    assert f"startTime={LAST_MS}" in calls[0]  # last stored bar + 1h
    assert [(w.added, w.replaced) for w in later.writes] == [(1, 0)]  # the candle that closed
    again = ingest_exchange(store, source("ohlcv"), ["NEAR"], exchange=ex2,
                            now_ms=NOW_MS + 3_600_000, page_limit=100)
    assert again.loaded[0].notes == ["up to date: no new rows"] and not again.writes


def test_funding_and_open_interest(tmp_path: Path, recorded_binance) -> None:  # noqa: ANN001
    ex, _ = recorded_binance()
    store = MarketStore(tmp_path)
    recorded_oi = json.loads((REC / "openInterestHist_NEARUSDT_4h.json").read_text())
    cfg = ExchangeSourceConfig(exchange="binanceusdm", datasets=["funding", "open_interest"],
                               timeframe="4h", since="2026-01-01T00:00:00Z")
    report = ingest_exchange(store, cfg, ["NEAR"], exchange=ex,
                             now_ms=recorded_oi[-1]["timestamp"] + 60_000, page_limit=60)
    assert not report.failed, report.format()
    funding = store.read("funding", "NEAR", venue="binance")
    assert store.resolve("funding", "NEAR").interval == "8h" and len(funding) == 200
    assert (funding.index == funding.index.floor("h")).all()
    oi = store.read("open_interest", "NEAR", interval="4h")
    assert len(oi) == len(recorded_oi)
    assert oi["open_interest"].iloc[0] == float(recorded_oi[0]["sumOpenInterest"])


def test_network_error_mid_pagination_keeps_nothing(tmp_path: Path, recorded_binance) -> None:  # noqa: ANN001
    ex, server = recorded_binance(fail_calls={"/fapi/v1/klines": {2, 3, 4}})
    store = MarketStore(tmp_path)
    ingest_exchange(store, source("funding"), ["NEAR"], exchange=ex, now_ms=NOW_MS)
    before = snapshot(tmp_path)
    waits: list[float] = []
    report = ingest_exchange(store, source("ohlcv"), ["NEAR", "BTC"], exchange=ex, now_ms=NOW_MS,
                             page_limit=50, retries=2, backoff=0.5, sleep=waits.append)
    assert [o.path for o in report.failed] == ["binanceusdm:NEAR:ohlcv"]
    assert "network error after 3 attempt(s)" in report.failed[0].reason
    assert waits == [0.5, 1.0]  # exponential backoff between the three attempts
    assert [str(w.key) for w in report.writes] == ["ohlcv/binance/BTC/1h"]
    assert {k: v for k, v in snapshot(tmp_path).items() if "BTC" not in k} == before


def test_transient_network_error_is_retried(tmp_path: Path, recorded_binance) -> None:  # noqa: ANN001
    ex, _ = recorded_binance(fail_calls={"/fapi/v1/klines": {2}})
    waits: list[float] = []
    store = MarketStore(tmp_path)
    report = ingest_exchange(store, source("ohlcv"), ["NEAR"], exchange=ex, now_ms=NOW_MS,
                             page_limit=50, retries=3, backoff=0.25, sleep=waits.append)
    assert not report.failed and waits == [0.25]
    assert len(store.read("ohlcv", "NEAR")) == len(KLINES) - 1


def test_unknown_symbol_and_exchange(tmp_path: Path, recorded_binance) -> None:  # noqa: ANN001
    ex, _ = recorded_binance()
    report = ingest_exchange(MarketStore(tmp_path), source("ohlcv"), ["DOGE"], exchange=ex,
                             now_ms=NOW_MS)
    assert "unknown symbol 'DOGE' on binanceusdm" in report.failed[0].reason
    with pytest.raises(CascadeError, match="unknown exchange 'nosuchex'"):
        make_exchange("nosuchex")


def test_unsupported_call_is_skipped_without_network(tmp_path: Path) -> None:
    hyper = ccxt.hyperliquid({"enableRateLimit": True})
    cfg = ExchangeSourceConfig(exchange="hyperliquid", datasets=["open_interest"])
    report = ingest_exchange(MarketStore(tmp_path), cfg, ["NEAR"], exchange=hyper)
    reason = report.skipped[0].reason
    assert reason == "ccxt does not support fetchOpenInterestHistory on hyperliquid"


def test_cli_exchange_ingest(tmp_path: Path, recorded_binance, monkeypatch) -> None:  # noqa: ANN001
    ex, server = recorded_binance()
    monkeypatch.setattr(exchange_module, "make_exchange", lambda name: ex)
    runner = CliRunner()
    store = tmp_path / "store"
    result = runner.invoke(app, ["ingest", "--exchange", "binanceusdm", "--symbols", "NEAR,BTC",
                                 "--datasets", "ohlcv,funding", "--since", SINCE,
                                 "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert "4 input(s): 4 loaded, 0 skipped, 0 failed" in result.output
    keys = {str(k) for k in MarketStore(store).partitions()}
    assert keys == {"ohlcv/binance/NEAR/1h", "ohlcv/binance/BTC/1h", "funding/binance/NEAR/8h",
                    "funding/binance/BTC/8h"}
    bad = runner.invoke(app, ["ingest", "--exchange", "binanceusdm", "--symbols", "DOGE",
                              "--store", str(store)])
    assert bad.exit_code == 1 and "unknown symbol 'DOGE'" in bad.output
    wrong = runner.invoke(app, ["ingest", "--exchange", "binanceusdm", "--datasets", "trades",
                                "--store", str(store)])
    assert wrong.exit_code != 0 and "bad exchange options" in str(wrong.exception)
