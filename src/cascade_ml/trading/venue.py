"""A simulated Binance USD-M venue under the real ccxt client: orders, trades, positions and the
wallet of one account, priced from the replay's bars, with a fault plan.

``SimulatedBinance`` is a requests transport adapter mounted into a ``ccxt.binanceusdm``
session (``venue_client``), so ccxt builds and signs its requests and parses the answers as it
does against Binance: the venue answers in Binance's formats and error codes, and ccxt maps them
to its exceptions. Endpoints (the ones ccxt 4.5 calls for the unified methods):

- ``GET /fapi/v1/exchangeInfo`` (markets: the replay's symbols), ``GET /fapi/v1/time``;
- ``POST /fapi/v1/order`` (``create_order``: MARKET, optionally reduceOnly);
  ``GET /fapi/v1/order`` (``fetch_order`` by orderId or origClientOrderId),
  ``DELETE /fapi/v1/order``, ``GET /fapi/v1/openOrders``, ``GET /fapi/v1/allOrders``,
  ``GET /fapi/v1/userTrades``;
- the algo-order API that ccxt routes conditional orders to since Binance moved them there
  (late 2025): ``POST /fapi/v1/algoOrder`` (STOP_MARKET with triggerPrice and reduceOnly),
  ``GET`` / ``DELETE /fapi/v1/algoOrder``, ``GET /fapi/v1/openAlgoOrders``;
- ``GET /fapi/v1/leverageBracket``, ``/fapi/v2|v3/positionRisk``, ``/fapi/v3/account``,
  ``/fapi/v2|v3/balance``.

Prices: a market order fills at the close of the newest closed bar of the replay
(``ReplayExchange.fetch_ticker``) moved half the spread against the trader, paying the policy's
fee on the filled notional (``trading.costs``: the paper book's model). A stop triggers on the
first closed bar from the one it was placed in whose low (sell stop) or high (buy stop) reaches
it, and fills at the stop, or at the bar's open when the bar gapped through it: the trading
core's stop rule (``trading.core.settle``), then the same spread and fee. Stops are checked
against every bar closed by the venue's clock whenever it answers a request (or on
``trigger_stops``), before the answer.

Funding: every settlement of the replay's funding data (``ReplayExchange.
fetch_funding_rate_history``: the store's funding partitions, the rates the loop collects) is
charged on each position held at its time, ``trading.funding.funding_amount(qty, mark, rate)``
(longs pay a positive rate, shorts receive it), the mark being the close of the bar ending at
the settlement (``trading.book.funding_events``: the book's rule). Settlements are charged when
the venue next answers, in time order with the stops: a stop reached by a bar that closed by
the settlement fires first (the position is gone at that time), one reached later fires after
it. The wallet moves by the amount and the account keeps one income entry per position and
settlement (``state["income"]``, Binance's ``GET /fapi/v1/income`` record, incomeType
``FUNDING_FEE``, plus the ``rate``, ``markPrice`` and ``positionAmt`` it was charged on). The
income endpoint itself (ccxt ``fetch_funding_history``) is not served: nothing in the project
calls it; the audit reads the account.

A client order id already used is refused with -4116 "ClientOrderId is duplicated." (Binance
USD-M error codes, developers.binance.com/docs/derivatives/usds-margined-futures/error-code;
ccxt maps it to ``InvalidOrder``, ``binance.py`` ``exceptions.linear.exact['-4116']``).

The account survives the client: with ``path`` set the state is written (atomically) before
every answer, so a client killed at any moment meets, on restart, what the exchange did.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import ccxt
import pandas as pd
import requests
from requests.adapters import BaseAdapter

from cascade_ml.atomic import read_json, write_json
from cascade_ml.data.sources.replay import ReplayExchange
from cascade_ml.policy.config import PolicyConfig
from cascade_ml.trading.book import BookState, FundingEvent, funding_events
from cascade_ml.trading.costs import fee_rate, simulate_fill
from cascade_ml.trading.faults import Fault, FaultDice, FaultPlan
from cascade_ml.trading.funding import funding_amount
from cascade_ml.trading.orders import position_after_fill

QUOTE = "USDT"
STEP = 0.001   # quantity step of every simulated market (LOT_SIZE)
TICK = 0.0001  # price tick (PRICE_FILTER)
_FLAT = 1e-12
Answer = tuple[int, Any, dict[str, str]]
_UNAVAILABLE = ("<html><body><h1>503 Service Unavailable</h1>Unknown error, execution status "
                "unknown</body></html>")


def _err(status: int, code: int, msg: str, headers: dict[str, str] | None = None) -> Answer:
    return status, {"code": code, "msg": msg}, headers or {}


def _num(value: float) -> str:
    """A number as Binance writes it (a string), without float noise."""
    return repr(float(value)) if math.isfinite(value) else "0"


def _step(qty: float) -> float:
    return math.floor(qty / STEP + 1e-9) * STEP


class BinanceTransport(BaseAdapter):
    """A requests transport adapter that answers a ccxt Binance client in process: the request
    is parsed (query and form body), ``respond`` answers it as ``(status, payload, headers)``,
    and the answer goes back as Binance sends it (JSON, or an HTML error page). Raising
    :class:`AnswerLost` from ``respond`` loses the answer on the way: status 0 as a
    ``requests.Timeout`` (ccxt: ``RequestTimeout``), else that status. With ``keep`` every
    request is kept in ``requests`` (method, host, path, parameters, body, headers)."""

    def __init__(self, *, keep: bool = False) -> None:
        super().__init__()
        self.keep = keep
        self.requests: list[dict] = []

    def respond(self, method: str, path: str, params: dict[str, str]) -> Answer:
        raise NotImplementedError

    def send(self, request, **kwargs):  # noqa: ANN001, ANN201 - requests' adapter signature
        parts = urlsplit(request.url)
        body = request.body.decode() if isinstance(request.body, bytes) else request.body or ""
        params = {k: v[0] for k, v in parse_qs(parts.query).items()}
        params.update({k: v[0] for k, v in parse_qs(body).items()})
        if self.keep:
            self.requests.append({"method": request.method, "host": parts.netloc,
                                  "path": parts.path, "params": params, "body": body,
                                  "headers": dict(request.headers)})
        try:
            status, payload, headers = self.respond(request.method, parts.path, params)
        except AnswerLost as exc:
            status, payload, headers = exc.answer
            if status == 0:
                raise requests.exceptions.ReadTimeout(
                    f"read timed out after the request was accepted ({parts.path})",
                    request=request) from None
        response = requests.Response()
        response.status_code = status
        response.reason = {200: "OK", 418: "I'm a teapot", 429: "Too Many Requests",
                           503: "Service Unavailable"}.get(status, "Bad Request")
        text = payload if isinstance(payload, str) else json.dumps(payload)
        response._content = text.encode()
        response.headers["Content-Type"] = ("text/html" if isinstance(payload, str)
                                            else "application/json")
        response.headers.update(headers)
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        pass


class AnswerLost(Exception):  # noqa: N818 - a control-flow signal, not an error
    """The request was executed; its answer (``Answer``, status 0: none) is lost on the way."""

    def __init__(self, answer: Answer) -> None:
        super().__init__("answer lost")
        self.answer = answer


class SimulatedBinance(BinanceTransport):
    """One Binance USD-M account over a replay (see the module docstring)."""

    def __init__(self, market: ReplayExchange, *, policy: PolicyConfig | None = None,
                 faults: FaultPlan | None = None, balance: float = 10_000.0,
                 path: str | Path | None = None, timeframe: str = "1h") -> None:
        super().__init__()
        self.market = market
        self.policy = policy or PolicyConfig()
        self.plan = faults or FaultPlan()
        self.timeframe = timeframe
        self.path = Path(path) if path is not None else None
        saved = read_json(self.path) if self.path is not None and self.path.exists() else None
        self.state: dict[str, Any] = saved or {
            "next_id": 1, "orders": [], "algo": [], "trades": [], "positions": {},
            "wallet": float(balance), "faults": {}, "requests": {}, "dice": None,
            "sent_ids": {}}
        self.state.setdefault("balance", float(balance))  # the wallet at the start (audits)
        self.state.setdefault("income", [])
        self.dice = FaultDice(self.plan, self.state.get("dice"))

    def respond(self, method: str, path: str, params: dict[str, str]) -> Answer:
        """The answer, with the account written before it leaves (even a lost one)."""
        self._count("requests", f"{method} {path}")
        try:
            return self._answer(method, path, params)
        finally:
            self._save()

    # ------------------------------------------------------------------ bookkeeping
    @property
    def now_ms(self) -> int:
        return int(self.market.milliseconds())

    def _count(self, kind: str, key: str) -> None:
        bucket = self.state.setdefault(kind, {})
        bucket[key] = bucket.get(key, 0) + 1

    def _save(self) -> None:
        self.state["dice"] = self.dice.state()
        self.state["clock_ms"] = self.now_ms  # how far the venue has seen the bars (audits)
        if self.path is not None:
            write_json(self.path, self.state)

    def _new_id(self) -> int:
        self.state["next_id"] += 1
        return 4_000_000_000 + self.state["next_id"]

    @property
    def fault_counts(self) -> dict[str, int]:
        return dict(self.state.get("faults", {}))

    def position(self, symbol_id: str, position_side: str = "BOTH") -> float:
        return float(self.state["positions"].get(f"{symbol_id}|{position_side}",
                                                 {"qty": 0.0})["qty"])

    def client_ids_sent(self) -> dict[str, int]:
        """How many order requests carried each client order id (accepted or refused)."""
        return dict(self.state["sent_ids"])

    # ------------------------------------------------------------------ dispatch
    def _answer(self, method: str, path: str, params: dict[str, str]) -> Answer:
        self.settle_funding()
        self.trigger_stops()
        self._undo_hand_changes()
        public = {"/fapi/v1/exchangeInfo": self._exchange_info, "/fapi/v1/time": self._time}
        if path in public:
            return 200, public[path](), {}
        writes = {("POST", "/fapi/v1/order"): self._new_order,
                  ("POST", "/fapi/v1/algoOrder"): self._new_algo,
                  ("DELETE", "/fapi/v1/order"): self._cancel_order,
                  ("DELETE", "/fapi/v1/algoOrder"): self._cancel_algo}
        reads = {"/fapi/v1/order": self._get_order, "/fapi/v1/algoOrder": self._get_algo,
                 "/fapi/v1/openOrders": self._open_orders,
                 "/fapi/v1/openAlgoOrders": self._open_algos,
                 "/fapi/v1/allOrders": self._all_orders, "/fapi/v1/userTrades": self._trades,
                 "/fapi/v1/leverageBracket": self._brackets,
                 "/fapi/v2/positionRisk": self._position_risk,
                 "/fapi/v3/positionRisk": self._position_risk,
                 "/fapi/v3/account": self._account, "/fapi/v2/account": self._account,
                 "/fapi/v2/balance": self._balance, "/fapi/v3/balance": self._balance}
        if (method, path) in writes:
            return self._write(writes[(method, path)], path, params)
        if method == "GET" and path in reads:
            fault = self.dice.read_fault()
            if fault in ("rate_limit", "ban"):
                return self._limited(fault)
            if fault == "server_error":
                self._count("faults", fault)
                return 503, _UNAVAILABLE, {}
            if fault == "timeout":
                self._count("faults", fault)
                raise AnswerLost((0, None, {}))
            return reads[path](params)
        return _err(404, -5000, f"Path {path}, Method {method} is invalid")

    def _limited(self, fault: Fault) -> Answer:
        self._count("faults", fault)
        wait = {"Retry-After": _num(self.plan.retry_after_s)}
        if fault == "ban":
            until = self.now_ms + int(self.plan.retry_after_s * 1000)
            return _err(418, -1003, f"Way too many requests; IP(127.0.0.1) banned until {until}. "
                        "Please use the websocket for live updates to avoid bans.", wait)
        return _err(429, -1003, "Too many requests; current limit of IP(127.0.0.1) is 2400 "
                    "requests per minute. Please use the websocket for live updates to avoid "
                    "polling the API.", wait)

    def _write(self, handler, path: str, params: dict[str, str]) -> Answer:  # noqa: ANN001
        cid = params.get("newClientOrderId") or params.get("clientAlgoId")
        if cid and path.endswith(("/order", "/algoOrder")) and "quantity" in params:
            self._count("sent_ids", cid)
        scripted = self.dice.scripted < len(self.plan.script)
        fault = self.dice.order_fault()
        if fault == "hand_change" or (not scripted and self.dice.hand_change()):
            self._hand_change()
        if fault == "hand_change":
            fault = None
        if fault in ("rate_limit", "ban"):
            return self._limited(fault)
        if fault == "margin" and "quantity" in params:
            self._count("faults", "margin")
            return _err(400, -2019, "Margin is insufficient.")
        if fault == "server_error" and not self.dice.coin():  # 503 before execution
            self._count("faults", "server_error")
            return 503, _UNAVAILABLE, {}
        partial = fault == "partial_fill" and path == "/fapi/v1/order" and "quantity" in params
        answer = handler(params, partial=partial) if partial else handler(params)
        if answer[0] != 200:
            return answer
        if partial:
            self._count("faults", "partial_fill")
        if fault == "timeout":
            self._count("faults", "timeout")
            raise AnswerLost((0, None, {}))
        if fault == "server_error":
            self._count("faults", "server_error")
            raise AnswerLost((503, _UNAVAILABLE, {}))
        return answer

    # ------------------------------------------------------------------ markets
    def _time(self) -> dict:
        return {"serverTime": self.now_ms}

    def _exchange_info(self) -> dict:
        symbols = []
        for m in self.market.load_markets().values():
            symbols.append({
                "symbol": f"{m['base']}{QUOTE}", "pair": f"{m['base']}{QUOTE}",
                "contractType": "PERPETUAL", "deliveryDate": 4133404800000,
                "onboardDate": 1569398400000, "status": "TRADING",
                "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000",
                "baseAsset": m["base"], "quoteAsset": QUOTE, "marginAsset": QUOTE,
                "pricePrecision": 4, "quantityPrecision": 3, "baseAssetPrecision": 8,
                "quotePrecision": 8, "underlyingType": "COIN", "triggerProtect": "0.0500",
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": "0.0001", "maxPrice": "1000000",
                     "tickSize": _num(TICK)},
                    {"filterType": "LOT_SIZE", "stepSize": _num(STEP), "minQty": _num(STEP),
                     "maxQty": "100000000"},
                    {"filterType": "MARKET_LOT_SIZE", "stepSize": _num(STEP),
                     "minQty": _num(STEP), "maxQty": "100000000"},
                    {"filterType": "MIN_NOTIONAL", "notional": "5"}],
                "orderTypes": ["MARKET", "STOP_MARKET"], "timeInForce": ["GTC"]})
        return {"timezone": "UTC", "serverTime": self.now_ms, "futuresType": "U_MARGINED",
                "rateLimits": [], "exchangeFilters": [],
                "assets": [{"asset": QUOTE, "marginAvailable": True}], "symbols": symbols}

    def _unified(self, symbol_id: str) -> str:
        return f"{symbol_id[:-len(QUOTE)]}/{QUOTE}:{QUOTE}"

    def last_price(self, symbol_id: str) -> float:
        return float(self.market.fetch_ticker(self._unified(symbol_id))["last"])

    # ------------------------------------------------------------------ execution
    def _execute(self, symbol_id: str, side: str, qty: float, ref: float, position_side: str,
                 order_id: int, at_ms: int, reduce_only: bool) -> dict | None:
        """Fill ``qty`` at ``ref`` (half the spread against us, the policy's fee on the filled
        notional): the trade, the position and the wallet; None when a reduce-only order has
        nothing to reduce."""
        key = f"{symbol_id}|{position_side}"
        pos = self.state["positions"].setdefault(key, {"qty": 0.0, "entry": 0.0})
        dq = qty if side == "BUY" else -qty
        if reduce_only:
            if pos["qty"] == 0 or (pos["qty"] > 0) == (dq > 0):
                return None
            dq = math.copysign(min(abs(dq), abs(pos["qty"])), dq)
            qty = abs(dq)
        fill = simulate_fill("buy" if side == "BUY" else "sell", qty, ref, self.policy)
        commission = fee_rate(self.policy) * qty * fill.price
        pos["qty"], pos["entry"], realised = position_after_fill(pos["qty"], pos["entry"], dq,
                                                                 fill.price)
        self.state["wallet"] += realised - commission
        trade = {"symbol": symbol_id, "id": self._new_id(), "orderId": order_id, "side": side,
                 "price": _num(fill.price), "qty": _num(qty), "realizedPnl": _num(realised),
                 "quoteQty": _num(qty * fill.price), "commission": _num(commission),
                 "commissionAsset": QUOTE, "time": at_ms, "positionSide": position_side,
                 "buyer": side == "BUY", "maker": False, "marginAsset": QUOTE}
        self.state["trades"].append(trade)
        return trade

    def _order(self, symbol_id: str, side: str, qty: float, cid: str, position_side: str,
               reduce_only: bool, at_ms: int, *, ref: float | None = None,
               fraction: float = 1.0, order_type: str = "MARKET",
               stop_price: float = 0.0) -> tuple[dict | None, dict]:
        """A market order: executed now (at ``ref`` or the last close); (trade, order)."""
        order_id = self._new_id()
        ref = self.last_price(symbol_id) if ref is None else ref
        fill_qty = _step(qty * fraction) if fraction < 1 else qty
        trade = (self._execute(symbol_id, side, fill_qty, ref, position_side, order_id, at_ms,
                               reduce_only) if fill_qty > 0 else None)
        done = float(trade["qty"]) if trade else 0.0
        price = float(trade["price"]) if trade else 0.0
        status = "FILLED" if trade and done >= qty - _FLAT else "EXPIRED"
        order = {"orderId": order_id, "symbol": symbol_id, "status": status,
                 "clientOrderId": cid, "price": "0", "avgPrice": _num(price),
                 "origQty": _num(qty), "executedQty": _num(done), "cumQty": _num(done),
                 "cumQuote": _num(done * price), "timeInForce": "GTC", "type": order_type,
                 "reduceOnly": reduce_only, "closePosition": False, "side": side,
                 "positionSide": position_side, "stopPrice": _num(stop_price),
                 "workingType": "CONTRACT_PRICE", "priceProtect": False,
                 "origType": order_type, "priceMatch": "NONE",
                 "selfTradePreventionMode": "NONE", "goodTillDate": 0,
                 "time": at_ms, "updateTime": at_ms}
        self.state["orders"].append(order)
        return trade, order

    def _used(self, cid: str) -> bool:
        return any(o["clientOrderId"] == cid for o in self.state["orders"]) or any(
            a["clientAlgoId"] == cid for a in self.state["algo"])

    def _check_new(self, params: dict[str, str], cid: str | None) -> Answer | None:
        symbol_id = params.get("symbol", "")
        if symbol_id not in {f"{m['base']}{QUOTE}" for m in self.market.load_markets().values()}:
            return _err(400, -1121, "Invalid symbol.")
        if cid and self._used(cid):
            return _err(400, -4116, "ClientOrderId is duplicated.")
        try:
            qty = float(params["quantity"])
        except (KeyError, ValueError):
            return _err(400, -1102, "Mandatory parameter 'quantity' was not sent, was empty/null,"
                        " or malformed.")
        if qty <= 0 or abs(qty / STEP - round(qty / STEP)) > 1e-6:
            return _err(400, -1111, "Precision is over the maximum defined for this asset.")
        return None

    def _new_order(self, params: dict[str, str], partial: bool = False) -> Answer:
        if params.get("type") != "MARKET":
            return _err(400, -4120, "Order type not supported for this endpoint. Please use "
                        "the Algo Order API endpoints instead.")
        cid = params.get("newClientOrderId") or f"venue-{self.state['next_id']}"
        refused = self._check_new(params, cid)
        if refused is not None:
            return refused
        reduce_only = params.get("reduceOnly") == "true"
        position_side = params.get("positionSide", "BOTH")
        qty = float(params["quantity"])
        if reduce_only and not self._reduces(params["symbol"], params["side"], position_side):
            return _err(400, -2022, "ReduceOnly Order is rejected.")
        _, order = self._order(params["symbol"], params["side"], qty, cid, position_side,
                               reduce_only, self.now_ms,
                               fraction=self.plan.partial_fraction if partial else 1.0)
        return 200, order, {}

    def _reduces(self, symbol_id: str, side: str, position_side: str) -> bool:
        q = self.position(symbol_id, position_side)
        return q != 0 and (q > 0) == (side == "SELL")

    def _new_algo(self, params: dict[str, str]) -> Answer:
        if params.get("type") != "STOP_MARKET" or params.get("algoType") != "CONDITIONAL":
            return _err(400, -1116, "Invalid orderType.")
        cid = params.get("clientAlgoId") or f"venue-{self.state['next_id']}"
        refused = self._check_new(params, cid)
        if refused is not None:
            return refused
        try:
            trigger = float(params["triggerPrice"])
        except (KeyError, ValueError):
            return _err(400, -1102, "Mandatory parameter 'triggerPrice' was not sent, was "
                        "empty/null, or malformed.")
        now = self.now_ms
        algo = {"algoId": self._new_id(), "clientAlgoId": cid, "algoType": "CONDITIONAL",
                "orderType": "STOP_MARKET", "symbol": params["symbol"], "side": params["side"],
                "positionSide": params.get("positionSide", "BOTH"), "timeInForce": "GTC",
                "quantity": params["quantity"], "algoStatus": "NEW",
                "triggerPrice": _num(trigger), "price": "0", "icebergQuantity": None,
                "selfTradePreventionMode": "NONE", "workingType": "CONTRACT_PRICE",
                "priceMatch": "NONE", "closePosition": False, "priceProtect": False,
                "reduceOnly": params.get("reduceOnly") == "true", "createTime": now,
                "updateTime": now, "triggerTime": 0, "goodTillDate": 0}
        self.state["algo"].append(algo)
        return 200, algo, {}

    @property
    def _step_ms(self) -> int:
        return int(self.market.parse_timeframe(self.timeframe) * 1000)

    def trigger_stops(self, until_ms: int | None = None) -> None:
        """Fire every open stop whose price a closed bar since its placement reached (only bars
        closed by ``until_ms`` when given)."""
        step = self._step_ms
        for algo in self.state["algo"]:
            if algo["algoStatus"] != "NEW":
                continue
            since = algo["createTime"] // step * step
            bars = self.market.fetch_ohlcv(self._unified(algo["symbol"]), self.timeframe,
                                           since=since, limit=1500)
            trigger, sell = float(algo["triggerPrice"]), algo["side"] == "SELL"
            for open_ms, o, hi, lo, _, _ in bars:
                if until_ms is not None and open_ms + step > until_ms:
                    break
                if sell and lo <= trigger:
                    ref = min(o, trigger)
                elif not sell and hi >= trigger:
                    ref = max(o, trigger)
                else:
                    continue
                at = max(int(open_ms), algo["createTime"])
                trade, order = self._order(algo["symbol"], algo["side"],
                                           float(algo["quantity"]), algo["clientAlgoId"],
                                           algo["positionSide"], algo["reduceOnly"], at,
                                           ref=ref, order_type="STOP_MARKET",
                                           stop_price=trigger)
                algo.update(algoStatus="FINISHED", triggerTime=at, updateTime=at,
                            actualOrderId=str(order["orderId"]),
                            actualPrice=trade["price"] if trade else "0")
                break

    # ------------------------------------------------------------------ funding
    def settle_funding(self) -> None:
        """Charge every settlement since the last one charged, up to now, on the positions held
        at it (see the module docstring); the first call only starts the count."""
        now = self.now_ms
        since = int(self.state.setdefault("funding_ms", now))
        if now <= since:
            return
        traded = sorted({key.split("|")[0] for key in self.state["positions"]})
        events = [e for symbol_id in traded for e in self._settlements(symbol_id, since, now)]
        for event in sorted(events, key=lambda e: (e.timestamp, e.instrument)):
            at = int(pd.Timestamp(event.timestamp).value // 1_000_000)
            self.trigger_stops(until_ms=at)
            self._charge(event, at)
        self.state["funding_ms"] = now

    def _settlements(self, symbol_id: str, since_ms: int, now_ms: int) -> list[FundingEvent]:
        """The settlements of ``symbol_id`` in (``since_ms``, ``now_ms``], each priced at the
        close of the bar ending at it (the book's rule, ``funding_events``)."""
        unified = self._unified(symbol_id)
        rows = self.market.fetch_funding_rate_history(unified, since=since_ms + 1, limit=1000)
        if not rows:
            return []
        rates = pd.Series([float(r["fundingRate"]) for r in rows],
                          index=pd.to_datetime([r["timestamp"] for r in rows], unit="ms",
                                               utc=True))
        step = self._step_ms
        bars = self.market.fetch_ohlcv(unified, self.timeframe, since=since_ms - 24 * step,
                                       limit=1500)
        closes = pd.Series([float(b[4]) for b in bars],
                           index=pd.to_datetime([b[0] for b in bars], unit="ms", utc=True),
                           dtype=float)
        return funding_events(symbol_id, rates, closes, pd.Timestamp(since_ms, unit="ms", tz="UTC"),
                              pd.Timestamp(now_ms, unit="ms", tz="UTC"),
                              pd.Timedelta(milliseconds=step))

    def _charge(self, event: FundingEvent, at_ms: int) -> None:
        """One settlement on every position held in its perp: the wallet and an income entry."""
        for key, pos in sorted(self.state["positions"].items()):
            symbol_id, position_side = key.split("|")
            if symbol_id != event.instrument or abs(pos["qty"]) < STEP / 2:
                continue
            amount = funding_amount(pos["qty"], event.mark_price, event.rate)
            self.state["wallet"] += amount
            self.state["income"].append({
                "symbol": symbol_id, "incomeType": "FUNDING_FEE", "income": _num(amount),
                "asset": QUOTE, "info": "FUNDING_FEE", "time": at_ms,
                "tranId": self._new_id(), "tradeId": "", "positionSide": position_side,
                "rate": _num(event.rate), "markPrice": _num(event.mark_price),
                "positionAmt": _num(pos["qty"])})

    def _cancel_order(self, params: dict[str, str]) -> Answer:
        found = self._find(self.state["orders"], params, "orderId", "origClientOrderId",
                           "clientOrderId")
        if found is None:
            return _err(400, -2011, "Unknown order sent.")
        return _err(400, -2011, "Unknown order sent.")  # market orders are never open

    def _cancel_algo(self, params: dict[str, str]) -> Answer:
        algo = self._find(self.state["algo"], params, "algoId", "clientAlgoId", "clientAlgoId")
        if algo is None or algo["algoStatus"] != "NEW":
            return _err(400, -2011, "Unknown order sent.")
        algo.update(algoStatus="CANCELED", updateTime=self.now_ms)
        return 200, {"algoId": algo["algoId"], "clientAlgoId": algo["clientAlgoId"],
                     "code": "200", "msg": "success"}, {}

    # ------------------------------------------------------------------ reads
    @staticmethod
    def _find(rows: list[dict], params: dict[str, str], id_key: str, param_cid: str,
              row_cid: str) -> dict | None:
        if params.get(id_key):
            return next((r for r in rows if str(r[id_key]) == params[id_key]), None)
        cid = params.get(param_cid)
        return next((r for r in rows if r[row_cid] == cid), None) if cid else None

    def _get_order(self, params: dict[str, str]) -> Answer:
        order = self._find(self.state["orders"], params, "orderId", "origClientOrderId",
                           "clientOrderId")
        return (200, order, {}) if order else _err(400, -2013, "Order does not exist.")

    def _get_algo(self, params: dict[str, str]) -> Answer:
        algo = self._find(self.state["algo"], params, "algoId", "clientAlgoId", "clientAlgoId")
        return (200, algo, {}) if algo else _err(400, -2013, "Order does not exist.")

    def _open_orders(self, params: dict[str, str]) -> Answer:
        return 200, [o for o in self.state["orders"] if o["status"] == "NEW"
                     and params.get("symbol") in (None, o["symbol"])], {}

    def _open_algos(self, params: dict[str, str]) -> Answer:
        return 200, [a for a in self.state["algo"] if a["algoStatus"] == "NEW"
                     and params.get("symbol") in (None, a["symbol"])], {}

    @staticmethod
    def _window(rows: list[dict], params: dict[str, str], stamp: str) -> list[dict]:
        lo = int(params.get("startTime", 0))
        hi = int(params.get("endTime", 2**62))
        limit = int(params.get("limit", 500))
        return [r for r in rows if r["symbol"] == params.get("symbol")
                and lo <= r[stamp] <= hi][:limit]

    def _all_orders(self, params: dict[str, str]) -> Answer:
        return 200, self._window(self.state["orders"], params, "time"), {}

    def _trades(self, params: dict[str, str]) -> Answer:
        return 200, self._window(self.state["trades"], params, "time"), {}

    def _brackets(self, params: dict[str, str]) -> Answer:
        bracket = [{"bracket": 1, "initialLeverage": 20, "notionalCap": 100_000_000,
                    "notionalFloor": 0, "maintMarginRatio": 0.025, "cum": 0.0}]
        return 200, [{"symbol": f"{m['base']}{QUOTE}", "brackets": bracket}
                     for m in self.market.load_markets().values()], {}

    def _position_rows(self) -> list[dict]:
        rows = []
        for key, pos in sorted(self.state["positions"].items()):
            symbol_id, side = key.split("|")
            mark = self.last_price(symbol_id)
            q = pos["qty"]
            rows.append({"symbol": symbol_id, "positionSide": side, "positionAmt": _num(q),
                         "entryPrice": _num(pos["entry"]), "breakEvenPrice": "0",
                         "markPrice": _num(mark),
                         "unRealizedProfit": _num(q * (mark - pos["entry"])),
                         "liquidationPrice": "0", "isolatedMargin": "0",
                         "notional": _num(q * mark), "marginAsset": QUOTE,
                         "isolatedWallet": "0", "initialMargin": _num(abs(q) * mark / 20),
                         "maintMargin": _num(abs(q) * mark * 0.025), "leverage": "20",
                         "marginType": "cross", "isAutoAddMargin": "false",
                         "maxNotionalValue": "100000000", "adl": 0,
                         "updateTime": self.now_ms})
        return rows

    def _position_risk(self, params: dict[str, str]) -> Answer:
        return 200, [r for r in self._position_rows()
                     if params.get("symbol") in (None, r["symbol"])], {}

    def _asset(self) -> dict:
        unrealised = sum(float(r["unRealizedProfit"]) for r in self._position_rows())
        wallet = self.state["wallet"]
        return {"asset": QUOTE, "walletBalance": _num(wallet),
                "unrealizedProfit": _num(unrealised), "marginBalance": _num(wallet + unrealised),
                "maintMargin": "0", "initialMargin": "0", "positionInitialMargin": "0",
                "openOrderInitialMargin": "0", "crossWalletBalance": _num(wallet),
                "crossUnPnl": _num(unrealised), "availableBalance": _num(wallet + unrealised),
                "maxWithdrawAmount": _num(wallet), "updateTime": self.now_ms,
                "balance": _num(wallet), "accountAlias": "sim"}

    def _account(self, params: dict[str, str]) -> Answer:
        asset = self._asset()
        return 200, {"totalWalletBalance": asset["walletBalance"],
                     "totalUnrealizedProfit": asset["unrealizedProfit"],
                     "totalMarginBalance": asset["marginBalance"],
                     "availableBalance": asset["availableBalance"],
                     "maxWithdrawAmount": asset["maxWithdrawAmount"], "assets": [asset],
                     "positions": []}, {}

    def _balance(self, params: dict[str, str]) -> Answer:
        return 200, [self._asset()], {}

    # ------------------------------------------------------------------ faults
    def _hand_change(self) -> None:
        """Someone halves a held position on the exchange (no client order id of ours)."""
        held = [(k, p) for k, p in sorted(self.state["positions"].items())
                if abs(p["qty"]) >= 2 * STEP]
        if not held:
            return
        key, pos = held[self.dice.pick(len(held))]
        symbol_id, position_side = key.split("|")
        qty = max(_step(abs(pos["qty"]) / 2), STEP)
        side = "SELL" if pos["qty"] > 0 else "BUY"
        self._order(symbol_id, side, qty, f"web_{self.state['next_id']}", position_side, True,
                    self.now_ms)
        self._count("faults", "hand_change")
        if self.plan.hand_change_undo_s > 0:
            self.state.setdefault("undo", []).append(
                {"symbol": symbol_id, "positionSide": position_side, "qty": qty,
                 "side": "BUY" if side == "SELL" else "SELL",
                 "due": self.now_ms + int(self.plan.hand_change_undo_s * 1000)})

    def _undo_hand_changes(self) -> None:
        """Put back, by hand, the hand changes whose time has come."""
        due = [u for u in self.state.get("undo", []) if u["due"] <= self.now_ms]
        for undo in due:
            self._order(undo["symbol"], undo["side"], undo["qty"],
                        f"web_{self.state['next_id']}", undo["positionSide"], False, self.now_ms)
            self.state["undo"].remove(undo)
            self._count("faults", "hand_change_undone")


def venue_client(venue: SimulatedBinance, *, rate_limit_ms: float = 50.0) -> ccxt.binanceusdm:
    """The real ccxt Binance USD-M client with ``venue`` mounted: every request it makes is
    answered by the venue (nothing reaches the network). ccxt's rate limiter is on."""
    exchange = ccxt.binanceusdm({"enableRateLimit": True, "rateLimit": rate_limit_ms,
                                 "apiKey": "simulated-venue", "secret": "simulated-venue",
                                 "options": {"fetchCurrencies": False}})
    exchange.session.mount("https://", venue)
    exchange.session.mount("http://", venue)
    return exchange


def book_differences(orders: pd.DataFrame, fills: pd.DataFrame, legs: Mapping[str, float],
                     state: dict, *, loop_only: bool = False,
                     book: BookState | None = None) -> list[str]:
    """Where a book (its ``orders`` and ``fills`` tables, net ``legs`` per instrument) and the
    venue's account ``state`` disagree: an order of the loop's on one side only, a filled
    quantity, price or fee that differs, a net position that differs, a client order id the
    venue accepted twice, and with the book's ``book`` state its equity against the venue's
    wallet (``wallet_audit``: funding, realised P&L and fees). ``loop_only``: the venue's
    positions (and wallet) counted from the loop's own trades (without the changes made by
    hand). Empty: they are equal."""
    out = []
    if book is not None:
        wallet = wallet_audit(state, book, loop_only=loop_only)
        if not wallet.ok:
            out.append(f"wallet: the venue's equity {wallet.venue:.8f} at the book's marks, the "
                       f"book's {wallet.book:.8f} (difference {wallet.difference:+.8f}, "
                       f"tolerance {wallet.tolerance:.1e}; funding {wallet.funding:+.8f} on the "
                       "venue)")
    accepted: dict[str, list[dict]] = {}
    for o in state["orders"]:
        accepted.setdefault(o["clientOrderId"], []).append(o)
    out += [f"{cid}: accepted {len(v)} times" for cid, v in accepted.items() if len(v) > 1]
    fee_of: dict[int, float] = {}
    for t in state["trades"]:
        fee_of[t["orderId"]] = fee_of.get(t["orderId"], 0.0) + float(t["commission"])
    booked = _booked_by_venue_order(orders, fills)
    for cid, (o, *_) in accepted.items():
        if not cid.startswith("cml-") or float(o["executedQty"]) <= 0:
            continue
        if cid not in booked:
            out.append(f"{cid}: filled {o['executedQty']} on the venue, not in the book")
            continue
        status, got = booked[cid]
        if got is None:
            out.append(f"{cid}: filled {o['executedQty']} on the venue, {status} in the book")
            continue
        for what, venue_value, book_value in (
                ("quantity", float(o["executedQty"]), got[0]),
                ("price", float(o["avgPrice"]), got[1]),
                ("fee", fee_of.get(o["orderId"], 0.0), got[2])):
            if not math.isclose(venue_value, book_value, rel_tol=1e-9, abs_tol=1e-9):
                out.append(f"{cid}: {what} {venue_value!r} on the venue, {book_value!r} in the "
                           "book")
    for cid, (status, _) in booked.items():
        if status == "filled" and cid not in accepted:
            out.append(f"{cid}: filled in the book, unknown to the venue")
    held: dict[str, float] = {}
    if loop_only:
        cid_of = {o["orderId"]: o["clientOrderId"] for o in state["orders"]}
        for t in state["trades"]:
            if cid_of.get(t["orderId"], "").startswith("cml-"):
                instrument = t["symbol"][:-len(QUOTE)]
                dq = float(t["qty"]) * (1 if t["side"] == "BUY" else -1)
                held[instrument] = held.get(instrument, 0.0) + dq
    else:
        for key, pos in state["positions"].items():
            instrument = key.split("|")[0][:-len(QUOTE)]
            held[instrument] = held.get(instrument, 0.0) + float(pos["qty"])
    for instrument in sorted(set(held) | set(legs)):
        v, b = held.get(instrument, 0.0), legs.get(instrument, 0.0)
        if abs(v - b) > STEP / 2:
            out.append(f"{instrument}: the venue holds {v:+g}, the book {b:+g}")
    return out


WALLET_UNIT = 1e-8
"""USDT: the unit Binance books cash in (income and commission are reported to 8 decimals)."""


@dataclass(frozen=True)
class WalletAudit:
    """The venue's account value against the book's, both at the book's marks (``wallet_audit``).

    Equity, not the wallet against the book's cash: the venue nets every perp into one position
    per position side, the book keeps one leg per (symbol, leg), so the same fills realise P&L
    at different moments (a hedge against a main leg in one perp, two symbols hedged in BTC);
    cash plus unrealised P&L at one mark is the same however the fills are netted.
    ``tolerance``: one ``WALLET_UNIT`` per cash movement (each fill's realised P&L and fee, each
    funding entry), the rounding a real account may show where the book does not; every
    funding entry of a held position is far above it (0.01 % on 100 USDT is 0.01)."""

    venue: float      # wallet + unrealised P&L of the venue's positions at the book's marks
    book: float       # the book's cash + unrealised P&L
    funding: float    # funding the venue charged (loop_only: on the loop's own positions)
    tolerance: float

    @property
    def difference(self) -> float:
        return self.venue - self.book

    @property
    def ok(self) -> bool:
        return abs(self.difference) <= self.tolerance


def wallet_audit(state: Mapping[str, Any], book: BookState, *,
                 loop_only: bool = False) -> WalletAudit:
    """The venue's equity against the ``book``'s, both at the book's marks (an instrument the
    book never held: the venue's last trade price in it). The venue's: its wallet (initial
    balance, realised P&L, fees, funding) plus its positions' unrealised P&L; ``loop_only``:
    rebuilt from the loop's own trades (client ids ``cml-...``) and the funding of every
    settlement charged on the position those trades held at it, leaving out the changes made
    by hand (their P&L, fees and funding) that the loop refused to book."""
    marks = {v.instrument: v.mark_price for v in book.legs}
    last = {t["symbol"]: float(t["price"]) for t in state["trades"]}

    def mark(symbol_id: str) -> float:
        return marks.get(symbol_id[:-len(QUOTE)], last.get(symbol_id, 0.0))

    income = state.get("income", [])
    cid_of = {o["orderId"]: o["clientOrderId"] for o in state["orders"]}
    trades = [t for t in state["trades"]
              if not loop_only or cid_of.get(t["orderId"], "").startswith("cml-")]
    if not loop_only:
        funding = sum(float(r["income"]) for r in income)
        value = float(state["wallet"]) + sum(
            float(p["qty"]) * (mark(key.split("|")[0]) - float(p["entry"]))
            for key, p in state["positions"].items())
        moves = len(trades) + len(income)
    else:
        balance = state.get("balance")
        if balance is None:  # an account saved before the balance was kept
            balance = float(state["wallet"]) - sum(
                float(t["realizedPnl"]) - float(t["commission"]) for t in state["trades"]) - sum(
                float(r["income"]) for r in income)
        value, held = float(balance), {}
        flows: list[tuple[int, str, float]] = []
        for t in trades:
            dq = float(t["qty"]) * (1 if t["side"] == "BUY" else -1)
            value -= dq * float(t["price"]) + float(t["commission"])
            held[t["symbol"]] = held.get(t["symbol"], 0.0) + dq
            flows.append((int(t["time"]), t["symbol"], dq))
        settlements = {(r["symbol"], int(r["time"])): r for r in income}
        funding = sum(funding_amount(sum(dq for at, s, dq in flows if s == symbol_id and at < t),
                                     float(r["markPrice"]), float(r["rate"]))
                      for (symbol_id, t), r in settlements.items())
        value += funding + sum(q * mark(s) for s, q in held.items())
        moves = len(trades) + len(settlements)
    return WalletAudit(value, book.equity, funding, WALLET_UNIT * (moves + 1))


def _booked_by_venue_order(orders: pd.DataFrame, fills: pd.DataFrame
                           ) -> dict[str, tuple[str, tuple[float, float, float] | None]]:
    """The book's orders per venue client order id: status and (quantity, price, fee) of the
    fill. A one-way stop that closed several legs is booked once per leg (``<id>/<leg>``): its
    legs are netted back into the one order the venue filled (signed quantities summed, fees
    added, the price of the first)."""
    out: dict[str, tuple[str, tuple[float, float, float] | None]] = {}
    if not len(orders):
        return out
    fill_of = fills.set_index("order_id") if len(fills) else fills
    for row in orders.itertuples():
        cid = str(row.client_order_id).split("/")[0]
        got = None
        if row.id in fill_of.index:
            f = fill_of.loc[row.id]
            sign = 1.0 if row.side == "buy" else -1.0
            got = (sign * float(f["qty"]), float(f["price"]), float(f["fee"]))
        if cid in out and out[cid][1] is not None and got is not None:
            q, p, fee = out[cid][1]
            got = (q + got[0], p, fee + got[2])
        out[cid] = (row.status if cid not in out else out[cid][0], got)
    return {cid: (status, None if got is None else (abs(got[0]), got[1], got[2]))
            for cid, (status, got) in out.items()}


@dataclass(frozen=True)
class StopAudit:
    """The loop's stop orders on a venue against the bars they rested through (``stop_audit``).
    The three lists name the stops that break the stop rule; all must be empty."""

    placed: int                        # stop orders of the loop's the venue accepted
    crossed: int                       # of them, reached by a bar that closed while they rested
    fired: int                         # triggered by the venue
    crossed_not_fired: list[str]       # reached while resting, never fired
    fired_not_crossed: list[str]       # fired though no bar reached them
    fired_off: list[str]               # fired at another bar or price than the rule's
    fired_empty: int = 0               # fired with no position left to reduce (no trade)


def stop_audit(state: Mapping[str, Any], bars: Mapping[str, pd.DataFrame], *,
               step_ms: int, policy: PolicyConfig, until_ms: int | None = None) -> StopAudit:
    """Every stop order of the loop's (client id ``cml-...``) in the venue's account ``state``
    replayed over ``bars`` (per venue symbol id, e.g. ``NEARUSDT``: columns ``open``, ``high``,
    ``low``, indexed by the bar's open time in ms): it rests from the bar open when it was
    placed until it fired, was cancelled (bars closed by then) or the venue's clock
    (``until_ms``, default ``state['clock_ms']``). Reached: a sell stop by a bar's low at or
    below it, a buy stop by a high at or above it. The rule the venue must follow (the trading
    core's): it fires on the first bar that reaches it, at the trigger or at the bar's open when
    the bar gapped through, moved half the ``policy``'s spread against the trader (the trade
    of the order it spawned, ``actualOrderId``)."""
    until = int(until_ms if until_ms is not None else state.get("clock_ms", 2**62))
    trade_of = {t["orderId"]: t for t in state["trades"]}
    placed = crossed = fired = 0
    not_fired: list[str] = []
    not_crossed: list[str] = []
    off: list[str] = []
    empty = 0
    for algo in state["algo"]:
        cid = algo["clientAlgoId"]
        if not cid.startswith("cml-"):
            continue
        placed += 1
        sell, trigger = algo["side"] == "SELL", float(algo["triggerPrice"])
        end = algo["updateTime"] if algo["algoStatus"] == "CANCELED" else until
        frame = bars.get(algo["symbol"])
        first = None
        if frame is not None:
            rows = frame[(frame.index >= algo["createTime"] // step_ms * step_ms)
                         & (frame.index + step_ms <= end)]
            hits = rows[rows["low"] <= trigger] if sell else rows[rows["high"] >= trigger]
            first = None if hits.empty else (int(hits.index[0]), float(hits["open"].iloc[0]))
        done = algo["algoStatus"] == "FINISHED"
        crossed += first is not None
        fired += done
        if first is not None and not done:
            not_fired.append(cid)
        elif done and first is None:
            not_crossed.append(cid)
        elif done and first is not None:
            at_ms, bar_open = first
            ref = min(bar_open, trigger) if sell else max(bar_open, trigger)
            trade = trade_of.get(int(algo.get("actualOrderId") or 0))
            empty += trade is None
            price = simulate_fill("sell" if sell else "buy", 1.0, ref, policy).price
            if algo["triggerTime"] != max(at_ms, int(algo["createTime"])) or (
                    trade is not None
                    and not math.isclose(float(trade["price"]), price, rel_tol=1e-9)):
                off.append(cid)
    return StopAudit(placed, crossed, fired, not_fired, not_crossed, off, empty)
