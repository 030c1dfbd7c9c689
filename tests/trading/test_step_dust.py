"""A leg closed on the exchange's amount step leaves no dust (the April soak's dust loop).

The book's leg is a float sum of step-multiple fills: 60.3 - 2.2 - 10.1 is booked as
47.99999999999999 NEAR for 48.000 on the exchange. ccxt's ``amount_to_precision`` truncates, so
closing the leg as booked sent 47.999 and left one step, 0.001 NEAR, behind, booked as
0.000999..., which truncates to nothing: every later close was refused ("cannot be ordered")
while the trading core, holding that leg in an empty bucket, liquidated it again at every bar
(132 refusals in the April soak, book.db orders 53..184)."""

from __future__ import annotations

import pandas as pd
from trading.test_reconcile import decide_with
from trading.test_stop_venue import NEAR, _executor
from trading.venue_helpers import at

from cascade_ml.trading.book import PaperBook
from cascade_ml.trading.orders import OrderIntent
from cascade_ml.trading.stops import step_amount


def _cycle(ex, clock, hour: int, intents: list[OrderIntent], stop: float | None = None):  # noqa: ANN001, ANN202
    clock.set(at(hour + 1))
    bar = at(hour, 0)
    return ex.run_cycle("NEAR", bar, decide_with([]), intents, marks={"NEAR": 5.0},
                        as_of=bar + pd.Timedelta("1h10s"), stop=stop)


def _main_leg(book: PaperBook) -> float:
    return sum(v.qty for v in book.state().legs if v.leg == "main")


def test_closing_a_noisy_booked_leg_leaves_nothing_to_liquidate_every_bar(
        venue, book: PaperBook) -> None:  # noqa: ANN001
    sim, client, clock = venue()
    ex = _executor(book, client)
    for hour, side, qty in ((1, "buy", 60.3), (2, "sell", 2.2), (3, "sell", 10.1)):
        _cycle(ex, clock, hour, [OrderIntent("main", "NEAR", side, qty, ref_price=5.0)])
    assert _main_leg(book) == 47.99999999999999  # 48.000 held, float noise under it
    # the loop after a liquidation in the core: each bar closes the leg the book holds
    results = []
    for hour in (4, 5, 6):
        left = _main_leg(book)
        intents = ([OrderIntent("main", "NEAR", "sell", left, "liquidation", ref_price=5.0)]
                   if left > 0 else [])
        results.append(_cycle(ex, clock, hour, intents))
    assert [(r.fills, r.refused) for r in results] == [(1, 0), (0, 0), (0, 0)]
    assert sim.position("NEARUSDT") == 0.0 and _main_leg(book) == 0.0
    closes = [o for o in sim.state["orders"] if "-x-" in o["clientOrderId"]]
    assert [o["origQty"] for o in closes] == ["48.0"]  # the whole leg was sent, not 47.999


def test_step_amount_snaps_float_noise_but_never_rounds_a_real_remainder_up(venue) -> None:  # noqa: ANN001
    _, client, _ = venue()
    client.load_markets()
    assert step_amount(client, NEAR, 0.000999999999812928) == 0.001  # the soak's dust: one step
    assert step_amount(client, NEAR, 48.18099999999981) == 48.181  # the soak's booked leg
    assert step_amount(client, NEAR, 48.1809) == 48.18  # 0.9 step over: truncated, as asked
    assert step_amount(client, NEAR, 48.181000001) == 48.181
    assert step_amount(client, NEAR, 1310.23849195) == 1310.238


def test_the_resting_stop_covers_the_whole_noisy_leg(venue, book: PaperBook) -> None:  # noqa: ANN001
    sim, client, clock = venue()
    ex = _executor(book, client)
    for hour, side, qty in ((1, "buy", 60.3), (2, "sell", 2.2), (3, "sell", 10.1)):
        _cycle(ex, clock, hour, [OrderIntent("main", "NEAR", side, qty, ref_price=5.0)], 4.0)
    # a stop for 47.999 would leave 0.001 NEAR behind when it fires
    assert [(a["quantity"], a["algoStatus"]) for a in sim.state["algo"]][-1] == ("48", "NEW")
