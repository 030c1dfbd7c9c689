"""The service's shared objects (settings, state, poller, metrics) and the dependency that hands
them to the routers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from cascade_ml.contracts.task import TaskConfig
from cascade_ml.policy import PolicyConfig
from cascade_ml.serving.config import ServingConfig
from cascade_ml.serving.decisions import DecisionPlans
from cascade_ml.serving.metrics import ServiceMetrics
from cascade_ml.serving.state import Poller, ServingState


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

    def __post_init__(self) -> None:
        self.symbols = frozenset(self.task.symbols)
        self.horizon_hours = self.task.horizon_hours
        self.plans = DecisionPlans(self.policy, self.horizon_hours)

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
