"""``GET /v1/models``: the serving bundle per symbol, any reload error, and the monitor's latest
report on the symbol."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from cascade_ml.serving.http import AUTH_ERRORS
from cascade_ml.serving.schemas import ModelOut, ModelsOut
from cascade_ml.serving.service import ServiceDep

router = APIRouter(prefix="/v1", tags=["models"])


@router.get("/models", response_model=ModelsOut, responses=AUTH_ERRORS)
async def get_models(service: ServiceDep) -> ModelsOut:
    """Serving bundle per task symbol (version, training span, metrics), any reload error and the
    monitor's latest report (drift, missing inputs, source ages, QLIKE vs HAR, calibration)."""
    state = service.state
    models, errors, monitors = state.models, state.load_errors, state.monitors
    out = []
    for symbol in service.task.symbols:
        slot = models.get(symbol)
        b = slot.bundle if slot else None
        monitor = monitors.get(symbol)
        out.append(ModelOut(
            symbol=symbol, version=slot.version if slot else None,
            horizon=getattr(b, "horizon", None), metrics=getattr(b, "metrics", None),
            training_span=getattr(b, "training_span", None),
            n_features=len(b.feature_names) if b is not None else None,
            path=str(slot.path) if slot else None,
            loaded_at=datetime.fromtimestamp(slot.loaded_at, tz=UTC) if slot else None,
            load_error=errors.get(symbol),
            monitor=monitor.block(state.forecasts.get(symbol)) if monitor else None,
            monitor_error=state.monitor_errors.get(symbol)))
    return ModelsOut(models=out)
