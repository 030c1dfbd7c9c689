"""The reusable point-in-time checker: appending the future must not change the past.

``find_lookahead`` computes features on what could exist at the close of bar ``cutoff`` (bars up
to ``cutoff``, external records stamped up to ``cutoff + bar_interval``; see
``FeatureInputs.truncate``) and again with every later row appended from ``future`` (typically
extreme values), and reports every column whose values at or before ``cutoff`` differ
(NaN == NaN, otherwise exact). That records are not used before their availability time is
proven separately by the as-of rule tests.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from cascade_ml.features.inputs import FeatureInputs

Compute = Callable[[FeatureInputs], pd.DataFrame]


def append_future(inputs: FeatureInputs, future: FeatureInputs,
                  cutoff: pd.Timestamp) -> FeatureInputs:
    """``inputs`` cut at ``cutoff`` with ``future``'s rows after ``cutoff`` appended."""
    past = inputs.truncate(cutoff)
    later = future.after(cutoff)
    frames_past = _flatten(past)
    frames_later = iter(_flatten(later))

    def glue(frame: pd.DataFrame) -> pd.DataFrame:
        extra = next(frames_later)
        return pd.concat([frame, extra]) if len(extra) else frame

    assert len(frames_past) == len(_flatten(later)), "future must have the same datasets"
    return past.map_frames(glue)


def _flatten(inputs: FeatureInputs) -> list[pd.DataFrame]:
    seen: list[pd.DataFrame] = []

    def grab(frame: pd.DataFrame) -> pd.DataFrame:
        seen.append(frame)
        return frame

    inputs.map_frames(grab)
    return seen


def differing_columns(a: pd.DataFrame, b: pd.DataFrame) -> dict[str, pd.Timestamp]:
    """Columns whose values differ (NaN-aware, exact), with the first differing timestamp."""
    out = {}
    for col in a.columns:
        x = a[col].to_numpy(dtype=float)
        y = b[col].reindex(a.index).to_numpy(dtype=float)
        same = (x == y) | (np.isnan(x) & np.isnan(y))
        if not same.all():
            out[col] = a.index[np.flatnonzero(~same)[0]]
    return out


def find_lookahead(compute: Compute, inputs: FeatureInputs, future: FeatureInputs,
                   cutoff: pd.Timestamp) -> dict[str, pd.Timestamp]:
    """Columns whose rows at or before ``cutoff`` change when the future is appended."""
    cut = compute(inputs.truncate(cutoff))
    extended = compute(append_future(inputs, future, cutoff))
    missing = [c for c in cut.columns if c not in extended.columns]
    if missing:
        raise ValueError(f"columns disappeared with more data: {missing}")
    past = cut[cut.index <= cutoff]
    return differing_columns(past, extended.loc[past.index, past.columns])
