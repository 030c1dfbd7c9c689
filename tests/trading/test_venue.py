"""The simulated Binance USD-M venue under the real ccxt client: fills, stops, duplicate ids."""

from __future__ import annotations

import ccxt
import pytest
from trading.venue_helpers import at

NEAR = "NEAR/USDT:USDT"


def test_market_order_fills_at_the_close_half_the_spread_against_us(venue) -> None:  # noqa: ANN001
    sim, client, _ = venue()
    order = client.create_order(NEAR, "market", "buy", 100, None, {"clientOrderId": "cml-a"})
    assert order["status"] == "closed" and order["filled"] == 100
    assert order["average"] == pytest.approx(5.05 * 1.0005)  # bar 1's close + 5 bps
    (trade,) = client.fetch_my_trades(NEAR, since=int(at(1).value // 10**6))
    assert trade["fee"]["cost"] == pytest.approx(0.0005 * 100 * 5.05 * 1.0005)
    (pos,) = client.fetch_positions([NEAR])
    assert (pos["side"], pos["contracts"]) == ("long", 100)
    assert client.fetch_order(None, NEAR, {"clientOrderId": "cml-a"})["id"] == order["id"]


def test_duplicate_client_order_id_is_refused_with_binances_code(venue) -> None:  # noqa: ANN001
    sim, client, _ = venue()
    client.create_order(NEAR, "market", "buy", 10, None, {"clientOrderId": "cml-dup"})
    with pytest.raises(ccxt.InvalidOrder, match="-4116"):
        client.create_order(NEAR, "market", "buy", 10, None, {"clientOrderId": "cml-dup"})
    assert sim.position("NEARUSDT") == 10  # the second order did nothing
    assert sim.client_ids_sent() == {"cml-dup": 2}


def _stop(client, trigger: float, cid: str):  # noqa: ANN001, ANN202
    return client.create_order(NEAR, "STOP_MARKET", "sell", 100, None,
                               {"stopPrice": trigger, "reduceOnly": True, "clientOrderId": cid})


def test_stop_triggers_on_the_bar_whose_low_reaches_it(venue) -> None:  # noqa: ANN001
    sim, client, clock = venue()
    client.create_order(NEAR, "market", "buy", 100, None, {"clientOrderId": "cml-in"})
    stop = _stop(client, 4.85, "cml-stop")
    assert stop["status"] == "open"
    assert client.fetch_open_orders(NEAR, params={"trigger": True})[0]["id"] == stop["id"]
    clock.set(at(3))  # bar 2 closed: low 4.80 <= 4.85 < open 5.05 -> filled at the stop
    assert client.fetch_positions([NEAR]) == []
    assert client.fetch_order(stop["id"], NEAR, {"trigger": True})["status"] == "closed"
    filled = client.fetch_order(None, NEAR, {"clientOrderId": "cml-stop"})
    assert filled["average"] == pytest.approx(4.85 * 0.9995) and filled["filled"] == 100


def test_stop_gapped_through_fills_at_the_open(venue) -> None:  # noqa: ANN001
    sim, client, clock = venue()
    clock.set(at(3))
    client.create_order(NEAR, "market", "buy", 100, None, {"clientOrderId": "cml-in"})
    _stop(client, 4.70, "cml-gap")
    clock.set(at(4))  # bar 3: low 4.85, no trigger
    sim.trigger_stops()
    assert sim.position("NEARUSDT") == 100
    clock.set(at(5))  # bar 4 opened at 4.50, below the stop: filled at the open
    sim.trigger_stops()
    assert sim.position("NEARUSDT") == 0
    filled = client.fetch_order(None, NEAR, {"clientOrderId": "cml-gap"})
    assert filled["average"] == pytest.approx(4.50 * 0.9995)


def test_cancelled_stop_never_fires_and_reduce_only_needs_a_position(venue) -> None:  # noqa: ANN001
    sim, client, clock = venue()
    client.create_order(NEAR, "market", "buy", 100, None, {"clientOrderId": "cml-in"})
    stop = _stop(client, 4.85, "cml-stop")
    client.cancel_order(stop["id"], NEAR, {"trigger": True})
    clock.set(at(3))
    sim.trigger_stops()
    assert sim.position("NEARUSDT") == 100
    with pytest.raises(ccxt.InvalidOrder, match="-2022"):
        client.create_order(NEAR, "market", "buy", 5, None, {"reduceOnly": True})
