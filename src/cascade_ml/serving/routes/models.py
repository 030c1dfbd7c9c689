"""``GET /v1/models``: the serving bundle per symbol and any reload error."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from cascade_ml.serving.http import AUTH_ERRORS
from cascade_ml.serving.schemas import ModelOut, ModelsOut
from cascade_ml.serving.service import ServiceDep

router = APIRouter(prefix="/v1", tags=["models"])


@router.get("/models", response_model=ModelsOut, responses=AUTH_ERRORS)
async def get_models(service: ServiceDep) -> ModelsOut:
    """Serving bundle per task symbol (version, training span, metrics) and any reload error."""
    models, errors = service.state.models, service.state.load_errors
    out = []
    for symbol in service.task.symbols:
        slot = models.get(symbol)
        b = slot.bundle if slot else None
        out.append(ModelOut(
            symbol=symbol, version=slot.version if slot else None,
            horizon=getattr(b, "horizon", None), metrics=getattr(b, "metrics", None),
            training_span=getattr(b, "training_span", None),
            n_features=len(b.feature_names) if b is not None else None,
            path=str(slot.path) if slot else None,
            loaded_at=datetime.fromtimestamp(slot.loaded_at, tz=UTC) if slot else None,
            load_error=errors.get(symbol)))
    return ModelsOut(models=out)
