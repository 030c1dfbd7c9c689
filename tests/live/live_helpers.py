"""Helpers of the live tests: real policy decisions, and an offline Binance USD-M order desk."""

from __future__ import annotations

import json
from pathlib import Path

from cascade_ml.policy import PolicyConfig, PolicyInputs, decide
from cascade_ml.policy.schemas import Decision, Forecast, Freshness, Position
from cascade_ml.trading.venue import BinanceTransport

HERE = Path(__file__).resolve().parent
ORDER_FIXTURES = HERE / "fixtures" / "binanceusdm"
EXCHANGE_INFO = HERE.parent / "fixtures" / "exchange" / "binanceusdm" / "exchangeInfo.json"


def make_decision(*, equity: float = 10_000.0, notional: float = 5_000.0, price: float = 5.0,
                  sigma: float | None = 0.05, prob: float = 0.05, hedge: float = 0.0,
                  fresh: bool = True) -> Decision:
    """A real ``decide`` answer for a NEAR long (stale inputs -> the fail-safe decision)."""
    age = 60.0 if fresh else 86_400.0
    inputs = PolicyInputs(
        symbol="NEAR", forecast=Forecast(sigma_h=sigma, horizon_hours=24, cascade_prob=prob),
        position=Position(side="long", notional=notional, entry_price=price, mark_price=price,
                          leverage=notional / equity, margin_mode="cross", hedge_ratio=hedge),
        equity=equity, freshness=Freshness(forecast_age_s=age, features_age_s=age))
    return decide(inputs, PolicyConfig())


class OrderDesk(BinanceTransport):
    """Binance USD-M's order endpoint for one ccxt client, offline, from recorded bodies.

    Answers ``GET /fapi/v1/exchangeInfo`` from the recorded body and ``POST /fapi/v1/order``
    from ``fixtures/binanceusdm``, echoing the request's side, quantity and ids like the
    exchange does. Every request is kept (``trading.venue.BinanceTransport``).
    """

    def __init__(self, avg_price: float = 5.1, error: str | None = None) -> None:
        super().__init__(keep=True)
        self.avg_price = avg_price
        self.error = error

    @property
    def orders(self) -> list[dict]:
        return [r for r in self.requests if r["path"] == "/fapi/v1/order"]

    def respond(self, method: str, path: str, params: dict[str, str]) -> tuple[int, str, dict]:
        if path == "/fapi/v1/exchangeInfo":
            return 200, json.loads(EXCHANGE_INFO.read_text()), {}
        if path != "/fapi/v1/order":
            return 404, {"code": -5000, "msg": f"Path {path} is invalid"}, {}
        if self.error:
            return 400, json.loads((ORDER_FIXTURES / self.error).read_text()), {}
        qty = params["quantity"]
        text = (ORDER_FIXTURES / f"order_{params['symbol']}_MARKET.json").read_text()
        fills = {"{clientOrderId}": params.get("newClientOrderId", ""),
                 "{avgPrice}": f"{self.avg_price:.4f}", "{origQty}": qty,
                 "{cumQuote}": f"{float(qty) * self.avg_price:.5f}", "{side}": params["side"],
                 "{positionSide}": params.get("positionSide", "BOTH")}
        for key, value in fills.items():
            text = text.replace(key, value)
        return 200, json.loads(text), {}
