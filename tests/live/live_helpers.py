"""Helpers of the live tests: real policy decisions, and an offline Binance USD-M order desk."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cascade_ml.policy import PolicyConfig, PolicyInputs, decide
from cascade_ml.policy.schemas import Decision, Forecast, Freshness, Position

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


class OrderDesk:
    """A requests transport adapter playing Binance USD-M for one ccxt client, offline.

    Answers ``GET /fapi/v1/exchangeInfo`` from the recorded body and ``POST /fapi/v1/order``
    from ``fixtures/binanceusdm``, echoing the request's side, quantity and ids like the
    exchange does. Every request is kept (method, host, path, parameters, headers).
    """

    def __init__(self, avg_price: float = 5.1, error: str | None = None) -> None:
        self.avg_price = avg_price
        self.error = error
        self.requests: list[dict] = []

    @property
    def orders(self) -> list[dict]:
        return [r for r in self.requests if r["path"] == "/fapi/v1/order"]

    def send(self, request, **kwargs):  # noqa: ANN001, ANN201 - requests' adapter signature
        import requests

        parts = urlsplit(request.url)
        body = request.body.decode() if isinstance(request.body, bytes) else request.body or ""
        params = {k: v[0] for k, v in parse_qs(parts.query).items()}
        params.update({k: v[0] for k, v in parse_qs(body).items()})
        self.requests.append({"method": request.method, "host": parts.netloc,
                              "path": parts.path, "params": params, "body": body,
                              "headers": dict(request.headers)})
        status, payload = self._answer(parts.path, params)
        response = requests.Response()
        response.status_code = status
        response.reason = "OK" if status == 200 else "Bad Request"
        response._content = payload.encode()
        response.headers["Content-Type"] = "application/json"
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        pass

    def _answer(self, path: str, params: dict[str, str]) -> tuple[int, str]:
        if path == "/fapi/v1/exchangeInfo":
            return 200, EXCHANGE_INFO.read_text()
        if path != "/fapi/v1/order":
            return 404, json.dumps({"code": -5000, "msg": f"Path {path} is invalid"})
        if self.error:
            return 400, (ORDER_FIXTURES / self.error).read_text()
        qty = params["quantity"]
        text = (ORDER_FIXTURES / f"order_{params['symbol']}_MARKET.json").read_text()
        fills = {"{clientOrderId}": params.get("newClientOrderId", ""),
                 "{avgPrice}": f"{self.avg_price:.4f}", "{origQty}": qty,
                 "{cumQuote}": f"{float(qty) * self.avg_price:.5f}", "{side}": params["side"],
                 "{positionSide}": params.get("positionSide", "BOTH")}
        for key, value in fills.items():
            text = text.replace(key, value)
        return 200, text
