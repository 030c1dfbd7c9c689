"""The share of missing (NaN) inputs per feature family.

A source that stops updating does not stop the features: the as-of joins turn its columns NaN
once the newest record is older than the family allows, and the model answers from the rest.
Counting NaN inputs per family makes that visible (the Fear & Greed z-score going NaN when the
sentiment source goes stale).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd


def missing_share_by_family(features: pd.DataFrame | pd.Series, family_of: Mapping[str, str],
                            only: Iterable[str] | None = None) -> pd.Series:
    """Per family: the share of its (feature, row) cells that are NaN or infinite.

    ``features`` is one row (a Series indexed by feature name) or a frame; ``family_of`` maps
    each feature to its family, and a mapped feature absent from ``features`` counts as missing
    (the model expects it). ``only`` restricts the count to those features (e.g. the ones the
    model uses); a family left with none is omitted.
    """
    frame = features.to_frame().T if isinstance(features, pd.Series) else features
    wanted = set(only) if only is not None else None
    names = [n for n in family_of if wanted is None or n in wanted]
    values = frame.reindex(columns=names).to_numpy(dtype=float)
    missing = (~np.isfinite(values)).mean(axis=0) if len(frame) else np.ones(len(names))
    per_feature = pd.Series(missing, index=names, dtype=float)
    families = pd.Series({n: family_of[n] for n in names}, dtype=object)
    if per_feature.empty:
        return pd.Series(dtype=float, name="missing_share")
    out = per_feature.groupby(families, sort=True).mean()
    out.index.name = "family"
    return out.rename("missing_share")


def missing_features(row: pd.Series, names: Iterable[str]) -> list[str]:
    """Which of ``names`` are NaN/absent in ``row`` (in the given order)."""
    out = []
    for name in names:
        value = row.get(name, np.nan)
        if value is None or not np.isfinite(float(value)):
            out.append(name)
    return out
