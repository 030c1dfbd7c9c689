"""The one protocol every forecaster kind answers (arch's ``VolatilityProcess`` habit).

A caller asks a forecaster which store table holds its input rows for a symbol, reads them with
``input_rows`` and calls ``predict(x, symbol)``; it never asks which kind it holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from cascade_ml.data.store import MarketStore


@runtime_checkable
class Forecaster(Protocol):
    """A loaded model bundle that forecasts ``horizon`` bars of ``interval`` ahead.

    ``symbols``: the symbols it was fitted on; ``serves(s)``: whether it forecasts ``s`` at all
    (a panel serves any perp, by the panel alone outside ``symbols``). ``predict`` returns the
    served columns only (``contracts.columns.SERVED_FORECASTS``): ``var_forecast`` (variance over
    H bars), ``vol_forecast`` = sqrt of it, ``cascade_prob``, and the variance quantiles it has.
    """

    kind: str
    version: str
    horizon: int
    interval: str
    model_name: str
    feature_names: list[str]
    training_span: dict
    metrics: dict

    @property
    def symbols(self) -> list[str]: ...

    def serves(self, symbol: str) -> bool: ...

    def input_table(self, symbol: str) -> str:
        """Store path of the table ``input_rows`` reads (its mtime says when rows changed)."""
        ...

    def input_rows(self, store: MarketStore, symbol: str,
                   last: int | None = None) -> pd.DataFrame:
        """The symbol's newest ``last`` input rows (time index, ``feature_names`` columns)."""
        ...

    def predict(self, x: np.ndarray, symbol: str) -> dict[str, np.ndarray]: ...
