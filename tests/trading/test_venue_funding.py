"""Funding on the simulated Binance venue: each position held at a settlement pays or receives
qty x mark x rate (longs pay a positive rate), the mark being the close of the bar ending at the
settlement; and the audit's wallet check catches an account whose funding the book lacks."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from trading.venue_helpers import POLICY, START, at, bars_store

from cascade_ml.data.sources.replay import ReplayExchange
from cascade_ml.data.store import MarketStore, PartitionKey
from cascade_ml.live.clock import SimClock
from cascade_ml.trading.book import BookState, LegView
from cascade_ml.trading.venue import SimulatedBinance, book_differences, venue_client, wallet_audit

NEAR = "NEAR/USDT:USDT"
# hourly NEAR bars from START: bar 7 (07:00-08:00) dips to 4.90 and closes at 4.95, the mark of
# the 08:00 settlement; bar 8 (08:00-09:00) dips to 4.80
BARS = [(5.00, 5.02, 4.98, 5.00)] * 7 + [(5.00, 5.02, 4.90, 4.95), (4.95, 4.97, 4.80, 4.85)] \
    + [(4.85, 4.87, 4.83, 4.85)] * 3
RATE = 0.0001  # settling at 08:00; the 00:00 one settles before the venue's first request
PAID = 100 * 4.95 * RATE  # 0.0495 on 100 NEAR
FILL = 5.00 * 1.0005  # a buy at bar 1's close, half the 10 bps spread against us
FEE = 0.0005 * 100 * FILL


@pytest.fixture(scope="module")
def funding_store(tmp_path_factory: pytest.TempPathFactory) -> MarketStore:
    store = bars_store(tmp_path_factory.mktemp("funding_store"), BARS)
    rates = pd.DataFrame({"funding_rate": [0.0003, RATE]},
                         index=pd.DatetimeIndex([START, START + pd.Timedelta(hours=8)],
                                                name="timestamp"))
    store.write(PartitionKey("funding", "binance", "NEAR", "8h"), rates)
    return store


@pytest.fixture
def venue(funding_store: MarketStore, tmp_path: Path):  # noqa: ANN201
    """``make() -> (SimulatedBinance, ccxt client, SimClock)``, the clock at 02:00:10."""

    def make(path: Path | None = None):  # noqa: ANN202
        clock = SimClock(at(2))
        sim = SimulatedBinance(ReplayExchange(funding_store, clock), policy=POLICY,
                               path=path)
        return sim, venue_client(sim, rate_limit_ms=1), clock

    return make


def _wallet(client) -> float:  # noqa: ANN001
    """The wallet balance as Binance answers it (``/fapi/v3/account`` through ccxt)."""
    return float(client.fetch_balance()["info"]["totalWalletBalance"])


def test_a_long_held_over_a_settlement_pays_qty_x_mark_x_rate(venue) -> None:  # noqa: ANN001
    sim, client, clock = venue()
    client.create_order(NEAR, "market", "buy", 100, None, {"clientOrderId": "cml-in"})
    before = _wallet(client)
    assert before == pytest.approx(10_000 - FEE, abs=1e-9)
    clock.set(at(9))  # 09:00:10: the 08:00 settlement has passed
    assert _wallet(client) == pytest.approx(before - PAID, abs=1e-9)
    (entry,) = sim.state["income"]
    assert entry["incomeType"] == "FUNDING_FEE" and entry["symbol"] == "NEARUSDT"
    assert float(entry["income"]) == pytest.approx(-0.0495, abs=1e-12)
    assert entry["time"] == int((START + pd.Timedelta(hours=8)).value // 10**6)
    assert float(entry["markPrice"]) == 4.95 and float(entry["positionAmt"]) == 100


def test_a_short_held_over_a_settlement_receives_it(venue) -> None:  # noqa: ANN001
    sim, client, clock = venue()
    client.create_order(NEAR, "market", "sell", 100, None, {"clientOrderId": "cml-in"})
    before = _wallet(client)
    clock.set(at(9))
    assert _wallet(client) == pytest.approx(before + 0.0495, abs=1e-9)
    assert [float(e["income"]) for e in sim.state["income"]] == pytest.approx([0.0495])


def test_flat_at_the_settlement_nothing_is_charged(venue) -> None:  # noqa: ANN001
    sim, client, clock = venue()
    client.create_order(NEAR, "market", "buy", 100, None, {"clientOrderId": "cml-in"})
    clock.set(at(5))
    client.create_order(NEAR, "market", "sell", 100, None, {"clientOrderId": "cml-out"})
    closed = _wallet(client)
    clock.set(at(10))
    assert _wallet(client) == closed and sim.state["income"] == []


def test_a_position_opened_after_the_settlement_pays_nothing_for_it(venue) -> None:  # noqa: ANN001
    sim, client, clock = venue()
    clock.set(at(8, seconds=1))  # 08:00:01, one second after the settlement
    client.create_order(NEAR, "market", "buy", 100, None, {"clientOrderId": "cml-in"})
    opened = _wallet(client)
    clock.set(at(11))
    assert _wallet(client) == opened and sim.state["income"] == []


@pytest.mark.parametrize(("trigger", "charged"), [(4.92, []), (4.85, [-0.0495])])
def test_a_stop_fires_before_or_after_the_settlement_by_its_bar(
        venue, trigger: float, charged: list[float]) -> None:  # noqa: ANN001
    """One request after the settlement and both stops' bars: a stop reached by bar 7 (low
    4.90, closed at 08:00) closed the position before the settlement; one reached by bar 8
    (from 08:00, low 4.80) closed it after, so it paid."""
    sim, client, clock = venue()
    client.create_order(NEAR, "market", "buy", 100, None, {"clientOrderId": "cml-in"})
    client.create_order(NEAR, "STOP_MARKET", "sell", 100, None,
                        {"stopPrice": trigger, "reduceOnly": True, "clientOrderId": "cml-stop"})
    clock.set(at(10))
    assert client.fetch_positions([NEAR]) == []
    assert [float(e["income"]) for e in sim.state["income"]] == pytest.approx(charged)


def test_a_settlement_is_charged_once_across_restarts(venue, tmp_path: Path) -> None:  # noqa: ANN001
    path = tmp_path / "venue.json"
    _, client, clock = venue(path)
    client.create_order(NEAR, "market", "buy", 100, None, {"clientOrderId": "cml-in"})
    clock.set(at(9))
    charged = _wallet(client)
    again, client2, clock2 = venue(path)  # the account read back from its file
    clock2.set(at(10))
    assert _wallet(client2) == charged and len(again.state["income"]) == 1


def _book(cash: float) -> BookState:
    """A book holding what the venue holds after the first test, marked at 4.85."""
    return BookState(10_000.0, cash, (LegView("NEAR", "main", "NEAR", 100.0, FILL, 4.85, 0.0),))


def test_the_audit_compares_the_wallet_and_catches_missing_funding(venue) -> None:  # noqa: ANN001
    sim, client, clock = venue()
    client.create_order(NEAR, "market", "buy", 100, None, {"clientOrderId": "cml-in"})
    clock.set(at(9))
    client.fetch_balance()
    equal = _book(10_000 - FEE - PAID)
    audit = wallet_audit(sim.state, equal)
    assert audit.book == pytest.approx(10_000 - FEE - PAID + 100 * (4.85 - FILL), abs=1e-9)
    assert audit.ok and audit.funding == pytest.approx(-0.0495, abs=1e-12)
    assert audit.tolerance == pytest.approx(3e-8)  # one trade, one funding entry, plus one unit
    no_funding = _book(10_000 - FEE)  # a book that charged no funding
    audit = wallet_audit(sim.state, no_funding)
    assert audit.difference == pytest.approx(-0.0495, abs=1e-9) and not audit.ok
    assert wallet_audit(sim.state, no_funding, loop_only=True).difference == pytest.approx(
        -0.0495, abs=1e-9)
    legs = {"NEAR": 100.0}
    orders = pd.DataFrame(columns=["id", "client_order_id", "side", "status"])
    diff = book_differences(orders, pd.DataFrame(), legs, {**sim.state, "orders": []},
                            book=no_funding)
    assert len(diff) == 1 and diff[0].startswith("wallet:") and "-0.0495" in diff[0]
