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
    exchange does; conditional (stop) orders through the Algo Order API, see
    :data:`ALGO_ROUTES`. Every request is kept (``trading.venue.BinanceTransport``).
    """

    def __init__(self, avg_price: float = 5.1, error: str | None = None) -> None:
        super().__init__(keep=True)
        self.avg_price = avg_price
        self.error = error
        self.algo: dict[int, dict[str, str]] = {}   # algoId -> the order's fields, as sent
        self.spawned: dict[str, dict[str, str]] = {}  # orderId -> a fired stop's market order

    @property
    def orders(self) -> list[dict]:
        """Market orders created (``POST /fapi/v1/order``)."""
        return [r for r in self.requests
                if (r["method"], r["path"]) == ("POST", "/fapi/v1/order")]

    def calls(self, method: str, path: str) -> list[dict]:
        return [r for r in self.requests if (r["method"], r["path"]) == (method, path)]

    def fire(self, client_algo_id: str, avg_price: float) -> str:
        """The price crossed a resting stop: Binance's algo service places its market order,
        which fills at ``avg_price`` (status ``FINISHED``); returns that order's id."""
        algo = next(a for a in self.algo.values() if a["clientAlgoId"] == client_algo_id)
        order_id = str(5_000_000_000 + len(self.spawned))
        algo.update(algoStatus="FINISHED", actualOrderId=order_id,
                    actualPrice=f"{avg_price:.4f}", triggerTime="1773151200456")
        self.spawned[order_id] = {"orderId": order_id, "clientOrderId": f"algo-{order_id}",
                                  "side": algo["side"], "origQty": algo["quantity"],
                                  "avgPrice": avg_price, "positionSide": algo["positionSide"]}
        return order_id

    def respond(self, method: str, path: str, params: dict[str, str]) -> tuple[int, object, dict]:
        route = ALGO_ROUTES.get((method, path))
        if route is not None:
            status, text = route(self, params)
        elif path == "/fapi/v1/exchangeInfo":
            status, text = 200, EXCHANGE_INFO.read_text()
        elif path != "/fapi/v1/order" or method not in ("POST", "GET"):
            return 404, {"code": -5000, "msg": f"Path {path} is invalid"}, {}
        elif method == "GET":
            status, text = query_order(self, params)
        elif self.error:
            status, text = 400, (ORDER_FIXTURES / self.error).read_text()
        else:
            status, text = 200, market_order(params["symbol"], params.get("newClientOrderId", ""),
                                             params["side"], params["quantity"], self.avg_price,
                                             params.get("positionSide", "BOTH"))
        return status, json.loads(text), {}


def _filled(name: str, fields: dict[str, str]) -> str:
    text = (ORDER_FIXTURES / name).read_text()
    for key, value in fields.items():
        text = text.replace("{" + key + "}", value)
    return text


def market_order(symbol: str, client_id: str, side: str, qty: str, avg_price: float,
                 position_side: str = "BOTH", order_id: str = "4087922044") -> str:
    """A filled market order's body (``order_<symbol>_MARKET.json``)."""
    text = _filled(f"order_{symbol}_MARKET.json", {
        "clientOrderId": client_id, "avgPrice": f"{avg_price:.4f}", "origQty": qty,
        "cumQuote": f"{float(qty) * avg_price:.5f}", "side": side,
        "positionSide": position_side})
    return text.replace('"orderId": 4087922044', f'"orderId": {order_id}')


def query_order(desk: OrderDesk, params: dict[str, str]) -> tuple[int, str]:
    """``GET /fapi/v1/order``: the market order a fired stop placed, by ``orderId``."""
    order = desk.spawned.get(params.get("orderId", ""))
    if order is None:
        return 400, (ORDER_FIXTURES / "error_algo_order_not_found.json").read_text()
    return 200, market_order(params["symbol"], order["clientOrderId"], order["side"],
                             order["origQty"], order["avgPrice"], order["positionSide"],
                             order["orderId"])


def algo_new(desk: OrderDesk, params: dict[str, str]) -> tuple[int, str]:
    """``POST /fapi/v1/algoOrder``: a conditional order rests (``algoStatus`` NEW)."""
    if params.get("algoType") != "CONDITIONAL":
        return 400, json.dumps({"code": -1102, "msg": "Mandatory parameter 'algoType' was not "
                                "sent, was empty/null, or malformed."})
    algo_id = 3358 + len(desk.algo)
    fields = {"algoId": str(algo_id), "clientAlgoId": params.get("clientAlgoId", ""),
              "orderType": params["type"], "symbol": params["symbol"], "side": params["side"],
              "positionSide": params.get("positionSide", "BOTH"), "quantity": params["quantity"],
              "triggerPrice": params["triggerPrice"],
              "workingType": params.get("workingType", "CONTRACT_PRICE"),
              "reduceOnly": params.get("reduceOnly", "false"), "algoStatus": "NEW",
              "actualOrderId": "", "actualPrice": "0.0000", "updateTime": "1773147600123",
              "triggerTime": "0"}
    desk.algo[algo_id] = fields
    return 200, _filled("algoOrder_NEW.json", fields)


def _algo_of(desk: OrderDesk, params: dict[str, str]) -> dict[str, str] | None:
    if "algoId" in params:
        return desk.algo.get(int(params["algoId"]))
    return next((a for a in desk.algo.values()
                 if a["clientAlgoId"] == params.get("clientAlgoId")), None)


def algo_query(desk: OrderDesk, params: dict[str, str]) -> tuple[int, str]:
    """``GET /fapi/v1/algoOrder`` by ``algoId`` or ``clientAlgoId``."""
    algo = _algo_of(desk, params)
    if algo is None:
        return 400, (ORDER_FIXTURES / "error_algo_order_not_found.json").read_text()
    return 200, _filled("algoOrder_query.json", algo)


def algo_cancel(desk: OrderDesk, params: dict[str, str]) -> tuple[int, str]:
    """``DELETE /fapi/v1/algoOrder``: a resting (NEW) order is cancelled; a fired one is not."""
    algo = _algo_of(desk, params)
    if algo is None or algo["algoStatus"] != "NEW":
        return 400, (ORDER_FIXTURES / "error_algo_order_not_found.json").read_text()
    algo["algoStatus"] = "CANCELED"
    return 200, _filled("algoOrder_cancel.json", algo)


ALGO_ROUTES = {("POST", "/fapi/v1/algoOrder"): algo_new, ("GET", "/fapi/v1/algoOrder"): algo_query,
               ("DELETE", "/fapi/v1/algoOrder"): algo_cancel}
"""Binance USD-M's Algo Order API (conditional orders: STOP_MARKET, TAKE_PROFIT_MARKET, ...),
one plain function per endpoint: ``(desk, request parameters) -> (HTTP status, body)``."""
