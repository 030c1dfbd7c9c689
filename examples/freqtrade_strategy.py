"""A freqtrade strategy whose leverage and stake come from cascade-ml's decisions.

freqtrade asks ``leverage()`` and then ``custom_stake_amount()`` before every entry; both ask
``POST /v1/decisions`` of a running ``cascade-ml serve`` through ``cascade_ml.client`` for the
position about to be opened, as of the entry's time, and keep the bot inside the answer:

- leverage: the decision's leverage cap, within freqtrade's ``max_leverage`` for the pair and
  never below 1x (freqtrade's floor). freqtrade always proposes 1x, so the proposal is not a
  limit; 1x when there is no answer;
- stake (the margin): the decision's size cap at that leverage (``size_cap / leverage``: the
  largest position the risk budget allows on the bot's equity), within the balance freqtrade
  offers (``max_stake``); 0 (no entry) when the decision fails safe, when that is below the
  exchange minimum, or when there is no answer at all: no forecast, no new exposure.

Every request carries ``as_of`` = the ``current_time`` freqtrade passes: the candle's open time
in ``freqtrade backtesting`` (each entry is sized by the forecast available at its own time,
from the walk-forward's stored out-of-sample forecasts), the clock when trading live (the
service's current forecast). freqtrade falls back to its own defaults when a callback raises,
so these never raise.

Use it: copy this file into ``user_data/strategies/`` (or pass ``--strategy-path examples``),
make ``cascade_ml.client`` importable in freqtrade's environment (it needs only httpx), then

    export CASCADE_ML_URL=http://127.0.0.1:8000 CASCADE_ML_TOKEN=...
    cascade-ml serve --pipeline pipelines/near.yaml &
    freqtrade backtesting --strategy CascadeHedgedStrategy --config config.json  # futures, NEAR

The entry rule below (close above its 24-candle mean) is only a placeholder for the bot's own.
freqtrade itself is not needed to import this file: without it the class stands alone, which
is how tests/examples call its callbacks against a real server (tests/examples also run it
inside the real freqtrade, ``test_freqtrade_backtest.py``).
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from typing import Any

from cascade_ml.client import CascadeClient, ClientError, DecisionResult

try:  # the real base class when freqtrade is installed
    from freqtrade.strategy import IStrategy
except ImportError:  # pragma: no cover - exercised when freqtrade is absent (the tests)
    class IStrategy:  # type: ignore[no-redef]
        """Stand-in holding the config, so the callbacks run without freqtrade."""

        def __init__(self, config: dict) -> None:
            self.config = config

log = logging.getLogger(__name__)


class CascadeHedgedStrategy(IStrategy):
    """Long NEAR perp entries sized and levered by cascade-ml's decision for that position."""

    INTERFACE_VERSION = 3
    timeframe = "1h"
    can_short = False
    stoploss = -0.10
    minimal_roi = {"0": 100}  # exits are the bot's business; the example only enters
    process_only_new_candles = True
    startup_candle_count = 24

    cascade_url = "http://127.0.0.1:8000"
    cascade_timeout_s = 2.0
    cascade_retries = 1
    stake_hint = 100.0  # margin assumed when asking for a leverage (freqtrade's stake comes later)

    # ------------------------------------------------------------------ freqtrade hooks
    def populate_indicators(self, dataframe: Any, metadata: dict) -> Any:
        dataframe["mean_24"] = dataframe["close"].rolling(24).mean()
        return dataframe

    def populate_entry_trend(self, dataframe: Any, metadata: dict) -> Any:
        dataframe.loc[(dataframe["close"] > dataframe["mean_24"])
                      & (dataframe["volume"] > 0), "enter_long"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: Any, metadata: dict) -> Any:
        return dataframe

    def leverage(self, pair: str, current_time: datetime, current_rate: float,
                 proposed_leverage: float, max_leverage: float, entry_tag: str | None,
                 side: str, **kwargs: Any) -> float:
        """The decision's leverage cap within [1, max_leverage]; 1x without an answer."""
        stake = self._stake_hint()
        decision = self._decision(pair, side, current_rate, current_time,
                                  notional=stake * proposed_leverage, leverage=proposed_leverage)
        if decision is None:
            return 1.0
        return max(1.0, min(decision.leverage_cap, max_leverage))

    def custom_stake_amount(self, pair: str, current_time: datetime, current_rate: float,
                            proposed_stake: float, min_stake: float | None, max_stake: float,
                            leverage: float, entry_tag: str | None, side: str,
                            **kwargs: Any) -> float:
        """The decision's size cap as margin at ``leverage``, within ``max_stake``; 0 (no
        entry) when failing safe, unanswered or below the exchange minimum."""
        decision = self._decision(pair, side, current_rate, current_time,
                                  notional=proposed_stake * leverage, leverage=leverage)
        if decision is None or decision.fail_safe:
            return 0.0
        stake = min(max_stake, decision.size_cap / leverage)
        if min_stake is not None and stake < min_stake:
            return 0.0
        return stake

    # ------------------------------------------------------------------ the service
    def _client(self) -> CascadeClient | None:
        token = os.environ.get("CASCADE_ML_TOKEN", "")
        if not token:
            log.error("CASCADE_ML_TOKEN is not set: no decision, no new exposure")
            return None
        url = os.environ.get("CASCADE_ML_URL", self.cascade_url)
        return CascadeClient(url, token, timeout=self.cascade_timeout_s,
                             retries=self.cascade_retries)

    def _decision(self, pair: str, side: str, price: float, when: datetime, *,
                  notional: float, leverage: float) -> DecisionResult | None:
        client = self._client()
        if client is None:
            return None
        symbol = pair.split("/")[0]
        try:
            with client:
                decision = client.decision(symbol, notional=notional, mark_price=price,
                                           leverage=leverage, side=side,
                                           portfolio_value=self._equity(), as_of=when)
        except ClientError as exc:
            log.warning("no cascade-ml decision for %s: %s", pair, exc.message)
            return None
        if decision.fail_safe:
            log.warning("cascade-ml fails safe for %s: %s", pair, "; ".join(decision.reasons))
        return decision

    def _stake_hint(self) -> float:
        stake = getattr(self, "config", {}).get("stake_amount")
        return float(stake) if isinstance(stake, int | float) else self.stake_hint

    def _equity(self) -> float | None:
        wallets = getattr(self, "wallets", None)
        return float(wallets.get_total_stake_amount()) if wallets is not None else None
