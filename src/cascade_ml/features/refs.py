"""Reference markets (BTC, ETH) put on the target's bar grid, as-of their own bar close."""

from __future__ import annotations

import pandas as pd

from cascade_ml.features.asof import asof_join
from cascade_ml.features.inputs import FeatureInputs


def ref_close(inputs: FeatureInputs, ref: str) -> pd.Series:
    """The reference's close known at each target bar's close; a missing reference bar is NaN.

    A reference bar stamped ``s`` closes at ``s + interval``; it is used for row ``t`` only when
    that close is at or before ``t + bar_interval`` and not older than one bar.
    """
    frame = inputs.refs[ref]
    joined = asof_join(inputs.bars.index, frame, bar_interval=inputs.bar_interval,
                       delay=inputs.bar_interval, max_age=inputs.bar_interval - pd.Timedelta(1),
                       columns=["close"])
    return joined["close"]
