"""Execution: the fill model, cap refusals, planning, paper fills from the replay, and the ccxt
order path checked on the request a real ccxt client builds (offline)."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import ccxt
import pandas as pd
import pytest
from live_helpers import make_decision

from cascade_ml.data.sources.replay import ReplayExchange
from cascade_ml.data.store import MarketStore
from cascade_ml.errors import CascadeError
from cascade_ml.live.clock import SimClock
from cascade_ml.policy.config import PolicyConfig
from cascade_ml.trading.book import PaperBook
from cascade_ml.trading.execution import Executor, cap_violation
from cascade_ml.trading.orders import OrderIntent

BAR = pd.Timestamp("2026-03-10T11:00:00Z")
NOW = BAR + pd.Timedelta("1h")
KEYS = {"CASCADE_ML_TESTNET_API_KEY": "test-key", "CASCADE_ML_TESTNET_API_SECRET": "test-secret",
        "CASCADE_ML_LIVE_API_KEY": "live-key", "CASCADE_ML_LIVE_API_SECRET": "live-secret"}


@pytest.fixture
def book(tmp_path: Path) -> PaperBook:
    with PaperBook(f"sqlite:///{tmp_path / 'book.db'}", initial_cash=10_000.0) as b:
        yield b


def test_cap_check_refuses_growth_never_reduction() -> None:
    d = make_decision()
    # the 2 % rule: 2 % of 10,000 on a 3-sigma move of the 80 %/yr reference over 24 h
    cap = 0.02 * 10_000 / (3 * 0.8 * (24 / 8760) ** 0.5)  # 1,592.08
    assert d.size_cap_notional == pytest.approx(cap)
    grow = OrderIntent("main", "NEAR", "buy", (cap + 100) / 5.0)
    assert "above the size cap" in cap_violation("NEAR", grow, d, 0.0, 5.0, 1e9)
    # at the edge: 0.1 % above the size cap is refused, 0.1 % below goes
    over = OrderIntent("main", "NEAR", "buy", cap * 1.001 / 5.0)
    assert "above the size cap" in cap_violation("NEAR", over, d, 0.0, 5.0, 1e9)
    under = OrderIntent("main", "NEAR", "buy", cap * 0.999 / 5.0)
    assert cap_violation("NEAR", under, d, 0.0, 5.0, 1e9) is None
    small = OrderIntent("main", "NEAR", "buy", 10.0)
    assert cap_violation("NEAR", small, d, 0.0, 5.0, 1e9) is None
    # sigma 5 % over 24 h is above the reference: hedge at the band's top, leverage cap 3x
    assert d.leverage_cap == pytest.approx(3.0)
    tiny_equity = 50.0 / (2 * 3.0)  # 50 notional would be twice the cap on this equity
    assert "above the leverage cap" in cap_violation("NEAR", small, d, 0.0, 5.0, tiny_equity)
    # 50 notional on 50 / 3.003 equity is 3.003x: just past the 3x cap; on 50 / 2.997, inside
    assert "above the leverage cap" in cap_violation("NEAR", small, d, 0.0, 5.0, 50.0 / 3.003)
    assert cap_violation("NEAR", small, d, 0.0, 5.0, 50.0 / 2.997) is None
    cut = OrderIntent("main", "NEAR", "sell", 10.0)
    assert cap_violation("NEAR", cut, d, 5 * cap, 5.0, tiny_equity) is None  # far above: may cut
    flip = OrderIntent("main", "NEAR", "sell", 10 * cap)
    assert cap_violation("NEAR", flip, d, 1.0, 5.0, 1e9) is not None  # a flip opens exposure


def test_refused_orders_are_recorded_with_their_reason(book: PaperBook) -> None:
    d = make_decision()
    ex = Executor(book, prices=lambda inst: 5.0)
    too_big = OrderIntent("main", "NEAR", "buy", 2 * d.size_cap_notional / 5.0)
    hedge = OrderIntent("hedge", "NEAR", "sell", 100.0)
    result = ex.run_cycle("NEAR", BAR, d, [too_big, hedge], marks={"NEAR": 5.0}, as_of=NOW)
    assert result.written and result.refused == 1 and result.fills == 1
    orders = book.frames()["orders"].set_index("leg")
    assert orders.loc["main", "status"] == "refused"
    assert orders.loc["main", "reason"].startswith("refused: main buy")
    assert "above the size cap" in orders.loc["main", "reason"]
    assert orders.loc["hedge", "status"] == "filled"
    assert [(v.leg, v.qty) for v in book.state().legs] == [("hedge", -100.0)]


def test_paper_fills_at_the_replays_next_price_and_sends_nothing(
        book: PaperBook, sample_store: MarketStore, order_desk) -> None:  # noqa: ANN001
    clock = SimClock(NOW)
    replay = ReplayExchange(sample_store, clock)
    ex = Executor(book, exchange=replay, policy=PolicyConfig(spread=0.001))  # 5 bps half
    d = make_decision()
    last = replay.fetch_ticker("NEAR/USDT:USDT")["last"]
    result = ex.run_cycle("NEAR", BAR, d, [OrderIntent("main", "NEAR", "buy", 50.0)],
                          marks={"NEAR": last}, as_of=clock.now)
    fill = book.frames()["fills"].iloc[0]
    assert fill["ref_price"] == last and fill["price"] == pytest.approx(last * 1.0005)
    assert result.fills == 1
    # keys in the environment change nothing in paper mode: no request reaches the exchange
    real, desk = order_desk()
    Executor(book, exchange=real, prices=lambda i: 5.0, env=KEYS).run_cycle(
        "NEAR", NOW, d, [OrderIntent("main", "NEAR", "buy", 1.0)], marks={"NEAR": 5.0},
        as_of=NOW + pd.Timedelta("1h"))
    assert desk.requests == []


# ---------------------------------------------------------------------------- ccxt order path
def test_testnet_order_is_the_request_binance_expects(book: PaperBook, order_desk) -> None:  # noqa: ANN001
    exchange, desk = order_desk(avg_price=5.1)
    ex = Executor(book, mode="testnet", exchange=exchange, prices=lambda i: 5.0, env=KEYS)
    d = make_decision()
    intent = OrderIntent("hedge", "NEAR", "sell", 120.7)  # NEARUSDT trades in whole units
    result = ex.run_cycle("NEAR", BAR, d, [intent], marks={"NEAR": 5.0}, as_of=NOW)

    (sent,) = desk.orders
    assert sent["method"] == "POST" and sent["host"] == "demo-fapi.binance.com"
    p = sent["params"]
    assert (p["symbol"], p["side"], p["type"], p["quantity"]) == ("NEARUSDT", "SELL", "MARKET",
                                                                  "120")
    # cml-<symbol>-<bar open in ms: 2026-03-10 11:00 UTC>-<h: a hedge rebalance>-<instrument>
    assert p["newClientOrderId"] == "cml-NEAR-1773140400000-h-NEAR"
    assert p["newOrderRespType"] == "RESULT" and "positionSide" not in p
    assert sent["headers"]["X-MBX-APIKEY"] == "test-key"
    signed, signature = sent["body"].rsplit("&signature=", 1)  # HMAC-SHA256 with the env secret
    assert signature == hmac.new(b"test-secret", signed.encode(), hashlib.sha256).hexdigest()

    assert result.fills == 1
    order = book.frames()["orders"].iloc[0]
    fill = book.frames()["fills"].iloc[0]
    assert (order["status"], order["mode"], order["qty"]) == ("filled", "testnet", 120.0)
    assert order["exchange_order_id"] == "4087922044"
    assert (fill["price"], fill["qty"]) == (5.1, 120.0)
    assert fill["slippage"] == pytest.approx(120 * (5.0 - 5.1))  # sold above the reference
    assert bool(fill["fee_estimated"]) and fill["fee"] == pytest.approx(0.0005 * 120 * 5.1)
    # restart: the same bar again sends nothing and writes nothing
    again = ex.run_cycle("NEAR", BAR, d, [intent], marks={"NEAR": 5.0}, as_of=NOW)
    assert not again.written and len(desk.orders) == 1


def test_live_mode_production_venue_and_hedge_mode(book: PaperBook, order_desk) -> None:  # noqa: ANN001
    exchange, desk = order_desk()
    ex = Executor(book, mode="live", policy=PolicyConfig(), hedge_mode=True,
                  exchange=exchange, prices=lambda i: 5.0, env=KEYS)
    ex.run_cycle("NEAR", BAR, make_decision(), [OrderIntent("main", "NEAR", "buy", 30.0),
                                                OrderIntent("hedge", "NEAR", "sell", 12.0)],
                 marks={"NEAR": 5.0}, as_of=NOW)
    hosts = {r["host"] for r in desk.orders}
    assert hosts == {"fapi.binance.com"}
    sides = [(r["params"]["side"], r["params"]["positionSide"]) for r in desk.orders]
    assert sides == [("BUY", "LONG"), ("SELL", "SHORT")]
    assert desk.orders[0]["headers"]["X-MBX-APIKEY"] == "live-key"


def test_no_keys_no_orders(book: PaperBook, order_desk) -> None:  # noqa: ANN001
    exchange, desk = order_desk()
    only_live = {k: v for k, v in KEYS.items() if "LIVE" in k}  # live keys never serve testnet
    with pytest.raises(CascadeError, match="CASCADE_ML_TESTNET_API_KEY"):
        Executor(book, mode="testnet", exchange=exchange, env=only_live)
    with pytest.raises(CascadeError, match="unknown execution mode"):
        Executor(book, mode="yolo", exchange=exchange, env=KEYS)  # type: ignore[arg-type]
    assert desk.requests == []


def test_exchange_refusal_is_recorded_as_failed(book: PaperBook, order_desk) -> None:  # noqa: ANN001
    exchange, desk = order_desk(error="error_margin_insufficient.json")
    ex = Executor(book, mode="testnet", exchange=exchange, prices=lambda i: 5.0, env=KEYS)
    result = ex.run_cycle("NEAR", BAR, make_decision(), [OrderIntent("main", "NEAR", "buy", 10)],
                          marks={"NEAR": 5.0}, as_of=NOW)
    order = book.frames()["orders"].iloc[0]
    assert result.written and result.fills == 0 and len(desk.orders) == 1
    assert order["status"] == "failed" and order["reason"].startswith("InsufficientFunds")
    assert book.state().legs == ()


def test_other_exchanges_use_ccxt_sandbox_mode_for_testnet(book: PaperBook) -> None:
    bybit = ccxt.bybit({"enableRateLimit": False})
    Executor(book, mode="testnet", exchange=bybit, env=KEYS)
    assert bybit.isSandboxModeEnabled and bybit.apiKey == "test-key"
