"""The example strategy inside the real freqtrade (2026.9 from PyPI, in ``.venv-freqtrade``:
``make freqtrade-venv``, which ``make test`` runs first): ``freqtrade backtesting`` of
NEAR/USDT:USDT futures on the sample's real candles, mark prices and funding, against a real
``cascade-ml serve``. freqtrade's market list comes from the recorded Binance
``fapi/v1/exchangeInfo`` (tests/fixtures/exchange) served on loopback; every Binance URL of
ccxt points there, so nothing leaves the machine.

Each trade must open at the leverage cap of the decision as of its entry candle (not 1x) and
with the stake that decision sizes, both from the forecast of the bar that closed at the entry
(``decide`` on it, written out independently: tests/decision_oracle.py); no trade opens while
the newest forecast is stale.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import pytest
from decision_oracle import expected_decision
from demo_data import write_pipeline
from example_helpers import TOKEN

from cascade_ml.config import PipelineConfig, load_pipeline
from cascade_ml.contracts.layout import predictions_path
from cascade_ml.data.store import MarketStore
from cascade_ml.policy.schemas import Decision, Position

REPO = Path(__file__).resolve().parents[2]
FREQTRADE = REPO / ".venv-freqtrade" / "bin" / "freqtrade"
SAMPLE = REPO / "data" / "sample" / "roshan7869-algotrading" / "user_data" / "data" / "binance"
PAIR_FILES = ("NEAR_USDT_USDT-1h-futures.feather", "NEAR_USDT_USDT-1h-mark.feather",
              "NEAR_USDT_USDT-1h-funding_rate.feather")
TIMERANGE = "20260302-20260309"
H = pd.Timedelta("1h")
STALE = (pd.Timestamp("2026-03-05 06:00", tz="UTC"), pd.Timestamp("2026-03-05 14:00", tz="UTC"))
START_BALANCE, STAKE = 10_000.0, 1_000.0
# every REST base URL of ccxt's binance (ccxt 4.5.90, freqtrade 2026.9's pin), path kept
BINANCE_APIS = {
    "sapi": "/sapi/v1", "sapiV2": "/sapi/v2", "sapiV3": "/sapi/v3", "sapiV4": "/sapi/v4",
    "dapiPublic": "/dapi/v1", "dapiPrivate": "/dapi/v1", "dapiPrivateV2": "/dapi/v2",
    "dapiData": "/futures/data", "eapiPublic": "/eapi/v1", "eapiPrivate": "/eapi/v1",
    "fapiPublic": "/fapi/v1", "fapiPublicV2": "/fapi/v2", "fapiPublicV3": "/fapi/v3",
    "fapiPrivate": "/fapi/v1", "fapiPrivateV2": "/fapi/v2", "fapiPrivateV3": "/fapi/v3",
    "fapiData": "/futures/data", "public": "/api/v3", "private": "/api/v3", "v1": "/api/v1",
    "papi": "/papi/v1", "papiV2": "/papi/v2"}


def _forecasts() -> pd.DataFrame:
    """Walk-forward forecasts for every bar around the backtest, a different volatility each
    hour (so the bar before an entry and the entry's own bar give different caps), none for
    the bars that close inside ``STALE`` (the forecast is more than 2 h old there)."""
    bars = pd.date_range("2026-02-26", "2026-03-10", freq="1h", tz="UTC", name="timestamp")
    bars = bars[(bars + H <= STALE[0] - 2 * H) | (bars + H > STALE[1])]
    k = np.arange(len(bars))
    vol = 0.03 + 0.06 * ((k * 7) % 24) / 23  # 3 % .. 9 % over 24 h
    return pd.DataFrame({"fold": 5, "var_forecast": vol ** 2, "vol_forecast": vol,
                         "cascade_prob": 0.02 + 0.1 * ((k * 5) % 12) / 11}, index=bars)


@pytest.fixture
def binance_on_loopback(recorded_binance) -> Iterator[tuple[str, list[str]]]:  # noqa: ANN001
    """(base URL, paths asked): the recorded Binance USD-M REST answers over a real socket."""
    _, recorded = recorded_binance()
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            parts = urlsplit(self.path)
            asked.append(parts.path)
            status, body = recorded._answer(parts.path,
                                            {k: v[0] for k, v in parse_qs(parts.query).items()})
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", asked
    server.shutdown()
    server.server_close()


def _config(tmp: Path, binance: str) -> Path:
    ccxt = {"urls": {"api": {k: binance + v for k, v in BINANCE_APIS.items()}},
            "options": {"fetchMarkets": {"types": ["linear"]}}}  # USD-M perps: the recording
    config = {
        "trading_mode": "futures", "margin_mode": "isolated", "max_open_trades": 1,
        "stake_currency": "USDT", "stake_amount": STAKE, "tradable_balance_ratio": 1.0,
        "dry_run": True, "dry_run_wallet": START_BALANCE, "timeframe": "1h", "fee": 0.0005,
        "minimal_roi": {"0": 0.03, "720": -1},  # exits: +3 %, or after 12 h
        "exchange": {"name": "binance", "key": "", "secret": "",
                     "pair_whitelist": ["NEAR/USDT:USDT"], "ccxt_config": ccxt,
                     "ccxt_async_config": ccxt},
        "pairlists": [{"method": "StaticPairList"}],
        "entry_pricing": {"price_side": "same", "use_order_book": True, "order_book_top": 1},
        "exit_pricing": {"price_side": "same", "use_order_book": True, "order_book_top": 1},
    }
    path = tmp / "freqtrade.json"
    path.write_text(json.dumps(config))
    return path


def _decided(forecasts: pd.DataFrame, config: PipelineConfig, rate: float, equity: float,
             bar: pd.Timestamp, notional: float, leverage: float) -> Decision:
    """``decide`` on bar's forecast, 0 s old, for a long of ``notional`` entered at ``rate``
    (no feature rows are stored: triggers and BTC/ETH context unknown)."""
    position = Position(side="long", notional=notional, entry_price=rate, mark_price=rate,
                        leverage=leverage)
    return expected_decision("NEAR", forecasts.loc[bar].to_dict(), {}, position, equity,
                             config.task, config.policy, 0.0)


def _trades(userdir: Path) -> list[dict]:
    [archive] = (userdir / "backtest_results").glob("*.zip")
    with zipfile.ZipFile(archive) as zf:
        [name] = [n for n in zf.namelist() if n.endswith(".json") and "_config" not in n]
        result = json.loads(zf.read(name))
    return result["strategy"]["CascadeHedgedStrategy"]["trades"]


def test_freqtrade_backtest_is_sized_and_levered_as_of_each_entry(
        tmp_path: Path, serve, binance_on_loopback) -> None:  # noqa: ANN001
    assert FREQTRADE.exists(), ("freqtrade's own environment is missing: run `make "
                                "freqtrade-venv` (make test does)")
    # the 24 h vol of a 115 %/yr reference is 6.0 %: the forecasts (3 .. 9 %) move the hedge, and
    # with it the leverage cap (5x at 30 % .. 3x at 70 %), from bar to bar; each read as it is
    # (half-life 0: the service's smoothing is tested in tests/serving/test_serving_smoothing.py)
    # by an objective (gamma 0.08, a 3-horizon hold) that spreads the caps inside 3-5x
    policy = {"vol_reference_annual": 1.15, "forecast_halflife_bars": 0.0,
              "risk_aversion": 0.08, "holding_horizons": 3.0}
    pipeline = write_pipeline(tmp_path, symbols=("NEAR",), policy=policy)
    forecasts = _forecasts()
    MarketStore(tmp_path / "store").write_table(predictions_path("NEAR", 24), forecasts)
    url = serve(pipeline)
    datadir, userdir = tmp_path / "ftdata", tmp_path / "ftuser"
    (datadir / "futures").mkdir(parents=True)
    for name in PAIR_FILES:
        shutil.copy(SAMPLE / "futures" / name, datadir / "futures" / name)
    (userdir / "backtest_results").mkdir(parents=True)
    binance, asked = binance_on_loopback
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path),
           "PYTHONPATH": str(REPO / "src"),  # cascade_ml.client (httpx only) for the strategy
           "CASCADE_ML_URL": url, "CASCADE_ML_TOKEN": TOKEN}
    run = subprocess.run(
        [str(FREQTRADE), "backtesting", "--config", str(_config(tmp_path, binance)),
         "--datadir", str(datadir), "--userdir", str(userdir), "--strategy",
         "CascadeHedgedStrategy", "--strategy-path", str(REPO / "examples"), "--timerange",
         TIMERANGE, "--export", "trades", "--cache", "none"],
        env=env, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "/fapi/v1/exchangeInfo" in asked and set(asked) == {"/fapi/v1/exchangeInfo"}

    trades = _trades(userdir)
    config = load_pipeline(pipeline)
    assert len(trades) >= 8
    equity, caps_differ = START_BALANCE, 0
    for trade in sorted(trades, key=lambda t: t["open_timestamp"]):
        opened = pd.Timestamp(trade["open_date"])
        bar = opened - H  # the bar that closed at the entry: its forecast is 0 s old
        rate = trade["open_rate"]
        decided = partial(_decided, forecasts, config, rate, equity)
        first = decided(bar, STAKE * 1.0, 1.0)  # leverage(): freqtrade proposes 1x
        assert not first.fail_safe
        lev = min(max(1.0, first.leverage_cap), 75.0)  # 75x: NEAR's first Binance tier
        assert trade["leverage"] == pytest.approx(lev, rel=1e-9), opened
        assert 1.5 < trade["leverage"] <= 5.0  # never above the seed's 5x ceiling
        sized = decided(bar, STAKE * lev, lev)  # custom_stake_amount() at that leverage
        stake = min(equity, sized.size_cap_notional / lev)
        # freqtrade rounds the amount to whole NEAR: at most one coin of margin off
        assert abs(trade["stake_amount"] - stake) <= rate / lev + 1e-9, (opened, stake)
        assert trade["stake_amount"] < STAKE * 1.5  # sized by the risk budget, not the wallet
        if opened in forecasts.index:  # the entry bar's own forecast would have given another cap
            caps_differ += decided(opened, STAKE, 1.0).leverage_cap != first.leverage_cap
        assert not STALE[0] < opened <= STALE[1], "an entry while the forecast was stale"
        equity += trade["profit_abs"]  # max_open_trades 1: closed before the next opens
    # the test tells the entry's bar from the one before on many trades (the objective policy's
    # cap is flat wherever the hedge sits at a band edge: 17 of 38 trades differ as measured)
    assert caps_differ >= len(trades) // 3
    assert len({round(t["leverage"], 6) for t in trades}) >= 5
    assert any(t["funding_fees"] != 0.0 for t in trades)  # the mark and funding files are used
