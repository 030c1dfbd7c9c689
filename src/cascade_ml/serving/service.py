"""The service's shared objects (settings, state, poller, metrics) and the dependency that hands
them to the routers."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError

from cascade_ml.contracts.task import TaskConfig
from cascade_ml.policy import PolicyConfig
from cascade_ml.serving.asof import AsOfLookup, FutureAsOf, NoForecastAsOf
from cascade_ml.serving.config import ServingConfig
from cascade_ml.serving.decisions import DecisionPlans
from cascade_ml.serving.metrics import ServiceMetrics
from cascade_ml.serving.state import Forecast, Poller, ServingState


@dataclass
class Service:
    """One app's settings and live objects; routers reach it through ``ServiceDep``."""

    task: TaskConfig
    serving: ServingConfig
    policy: PolicyConfig
    state: ServingState
    poller: Poller
    metrics: ServiceMetrics
    symbols: frozenset[str] = field(init=False)
    horizon_hours: float = field(init=False)  # computed once: the task's property parses a span
    plans: DecisionPlans = field(init=False)  # the policy's plan of each served forecast
    asof: AsOfLookup = field(init=False)  # forecasts available at a past time (as_of)

    def __post_init__(self) -> None:
        self.symbols = frozenset(self.task.symbols)
        self.horizon_hours = self.task.horizon_hours
        self.plans = DecisionPlans(self.policy, self.horizon_hours)
        self.asof = AsOfLookup(self.poller.store, self.task, self.policy)

    async def forecast_as_of(self, symbol: str, as_of: datetime, loc: tuple[str, ...]
                             ) -> Forecast:
        """The forecast of ``symbol`` available at ``as_of`` (``serving.asof``), looked up off
        the event loop (a changed table is re-read there): 404 when there was none, 422 naming
        ``loc`` for a time later than the server's clock."""
        try:
            return await asyncio.to_thread(self.asof.forecast, symbol, as_of,
                                           self.state.forecasts.get(symbol), time.time())
        except NoForecastAsOf as exc:
            raise HTTPException(404, exc.message) from None
        except FutureAsOf as exc:
            raise RequestValidationError([{"loc": loc, "msg": exc.message,
                                           "type": "value_error"}]) from None

    def require_symbol(self, raw: str) -> str:
        """The canonical symbol, or 404 when it is not one the service serves: a bot's typo
        must fail loudly, not get a fail-safe answer for a market nobody forecasts."""
        symbol = raw.upper()
        if symbol not in self.symbols:
            raise HTTPException(404, f"symbol {raw!r} is not served; served symbols: "
                                f"{sorted(self.symbols)}")
        return symbol


async def get_service(request: Request) -> Service:
    """The app's ``Service`` (async: FastAPI would run a plain function in a thread pool)."""
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]
