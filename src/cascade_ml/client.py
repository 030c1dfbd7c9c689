"""A small typed client for the forecast service, for the hedging bot.

Retries connection errors, timeouts and 5xx answers with exponential backoff; never retries a 4xx
(the request itself is wrong, sending it again cannot help). After the last try it raises
``ServiceUnavailableError``; a 4xx raises ``RequestRejectedError`` with the server's message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

import httpx

from cascade_ml.errors import CascadeError


class ClientError(CascadeError):
    """The service could not give an answer."""


class ServiceUnavailableError(ClientError):
    """No answer after all retries (connection refused, timeout or 5xx)."""


class RequestRejectedError(ClientError):
    """The service refused the request (4xx): bad token, bad payload, unknown symbol."""

    def __init__(self, status: int, what: str, where: str | None = None) -> None:
        self.status = status
        super().__init__(f"HTTP {status}: {what}", where)


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _pick(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """Only the fields the dataclass knows, so a newer server adding fields never breaks a bot."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass(frozen=True)
class ForecastResult:
    symbol: str
    timestamp: datetime
    available_at: datetime
    age_seconds: float
    stale: bool
    model_version: str
    source: str
    max_age_seconds: float = 0.0
    var_forecast: float | None = None
    vol_forecast: float | None = None
    cascade_prob: float | None = None
    var_q50: float | None = None
    var_q90: float | None = None
    var_q99: float | None = None
    as_of: datetime | None = None  # the time asked for (ages are measured at it); None: now

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ForecastResult:
        kw = _pick(cls, data)
        kw["timestamp"] = _dt(data["timestamp"])
        kw["available_at"] = _dt(data["available_at"])
        kw["as_of"] = _dt(data.get("as_of"))
        return cls(**kw)

    def age_now(self) -> float:
        """Seconds since the forecast's bar closed, by this machine's clock."""
        return time.time() - self.available_at.timestamp()

    @property
    def fresh(self) -> bool:
        """Usable: the server says not stale and, by our own clock, it is not older than allowed.

        Checking locally too means a forecast held across a server outage is never taken as fresh.
        """
        return not self.stale and self.age_now() <= self.max_age_seconds


@dataclass(frozen=True)
class DecisionResult:
    symbol: str
    hedge_ratio: float
    instrument: str
    leverage_cap: float
    size_cap: float
    action: str
    fail_safe: bool
    stale: bool
    reasons: list[str] = field(default_factory=list)
    model_version: str | None = None
    forecast_timestamp: datetime | None = None
    forecast_age_seconds: float | None = None
    as_of: datetime | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DecisionResult:
        kw = _pick(cls, data)
        kw["forecast_timestamp"] = _dt(data.get("forecast_timestamp"))
        kw["as_of"] = _dt(data.get("as_of"))
        return cls(**kw)


@dataclass(frozen=True)
class ModelInfo:
    symbol: str
    version: str | None
    horizon: int | None = None
    training_span: Any = None
    metrics: dict | None = None
    n_features: int | None = None
    path: str | None = None
    loaded_at: str | None = None
    load_error: str | None = None


class CascadeClient:
    """``CascadeClient("http://127.0.0.1:8000", token)``; a context manager (or call ``close``)."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 2.0, retries: int = 3,
                 backoff: float = 0.2, max_backoff: float = 5.0,
                 sleep: Callable[[float], None] = time.sleep,
                 transport: httpx.BaseTransport | None = None) -> None:
        if retries < 0:
            raise CascadeError(f"retries must be >= 0, got {retries}")
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport,
                                  headers={"Authorization": f"Bearer {token}"})

    def __enter__(self) -> CascadeClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ calls
    def forecast(self, symbol: str, *, as_of: datetime | None = None) -> ForecastResult:
        """The latest forecast; with ``as_of`` (timezone-aware; a naive time is refused by the
        server) the newest one available then."""
        params = None if as_of is None else {"as_of": as_of.isoformat()}
        return ForecastResult.from_json(self._request("GET", f"/v1/forecasts/{symbol}",
                                                      params=params))

    def decision(self, symbol: str, *, notional: float, mark_price: float, leverage: float,
                 side: str = "long", entry_price: float | None = None,
                 portfolio_value: float | None = None, hedge_ratio: float | None = None,
                 market: dict[str, Any] | None = None,
                 as_of: datetime | None = None) -> DecisionResult:
        """The policy's answer for a position (see docs/serving.md for the fields); with
        ``as_of`` (timezone-aware) the answer at that time, for a point-in-time backtest."""
        body: dict[str, Any] = {"symbol": symbol, "side": side, "notional": notional,
                                "mark_price": mark_price, "leverage": leverage}
        optional = {"entry_price": entry_price, "portfolio_value": portfolio_value,
                    "hedge_ratio": hedge_ratio, "market": market,
                    "as_of": None if as_of is None else as_of.isoformat()}
        body.update({k: v for k, v in optional.items() if v is not None})
        return DecisionResult.from_json(self._request("POST", "/v1/decisions", json=body))

    def models(self) -> list[ModelInfo]:
        data = self._request("GET", "/v1/models")
        return [ModelInfo(**_pick(ModelInfo, m)) for m in data["models"]]

    def health(self) -> bool:
        return self._request("GET", "/health").get("status") == "ok"

    # ------------------------------------------------------------------ transport
    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        last = "no attempt made"
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(min(self.backoff * 2 ** (attempt - 1), self.max_backoff))
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:  # refused, reset, timeout
                last = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code >= 500:
                last = f"HTTP {response.status_code}: {_detail(response)}"
                continue
            if response.status_code >= 400:
                raise RequestRejectedError(response.status_code, _detail(response),
                                           f"{method} {self.base_url}{path}")
            return response.json()
        raise ServiceUnavailableError(
            f"no answer after {self.retries + 1} attempt(s); last: {last}",
            f"{method} {self.base_url}{path}")


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    return str(body.get("detail", body)) if isinstance(body, dict) else str(body)
