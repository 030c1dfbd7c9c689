"""Population stability index: how far a sample's distribution has moved from a reference.

PSI = sum over bins of (c - r) * ln(c / r), with r and c the shares of the reference and the
current sample in each bin. Bins are quantiles of the reference (ties merged, so a constant or
binary column gets two bins: at-or-below the value, above it); a bin neither sample visits
contributes nothing, and an empty share is floored at ``SHARE_FLOOR`` so a sample landing where
the reference never was gives a large, finite PSI. NaN values are left out of the shares and
reported apart: a feature turning NaN is a missing input, not a shift. Common reading
(REFERENCES.md): < 0.1 stable, 0.1-0.25 watch, > 0.25 shifted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cascade_ml.errors import CascadeError

SHARE_FLOOR = 1e-4


def quantile_cuts(reference: np.ndarray, bins: int) -> np.ndarray:
    """Interior cut points of ``bins`` quantile bins of the finite reference values (unique, so
    fewer when values tie; empty when there is no finite value)."""
    if bins < 2:
        raise CascadeError(f"PSI needs at least 2 bins, got {bins}", "monitoring.psi_bins")
    ref = np.asarray(reference, dtype=float)
    ref = ref[np.isfinite(ref)]
    if not len(ref):
        return np.empty(0)
    return np.unique(np.quantile(ref, np.linspace(0.0, 1.0, bins + 1)[1:-1]))


def bin_index(values: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """The bin of each value (bin i holds cuts[i-1] < x <= cuts[i]); -1 for NaN/inf."""
    x = np.asarray(values, dtype=float)
    out = np.searchsorted(cuts, x, side="left")
    return np.where(np.isfinite(x), out, -1)


def bin_shares(values: np.ndarray, cuts: np.ndarray) -> tuple[np.ndarray, int]:
    """(share of the finite values in each of the len(cuts)+1 bins, how many were finite)."""
    idx = bin_index(values, cuts)
    idx = idx[idx >= 0]
    counts = np.bincount(idx, minlength=len(cuts) + 1).astype(float)
    return (counts / len(idx) if len(idx) else counts), len(idx)


def psi_from_shares(reference: np.ndarray, current: np.ndarray) -> np.ndarray:
    """PSI of the share vectors in the last axis (works on one pair or a stack of windows)."""
    r = np.maximum(np.asarray(reference, dtype=float), SHARE_FLOOR)
    c = np.maximum(np.asarray(current, dtype=float), SHARE_FLOOR)
    return np.sum((c - r) * np.log(c / r), axis=-1)


@dataclass(frozen=True)
class PsiResult:
    """The PSI of the finite values and how many values each sample had missing."""

    psi: float
    reference_nan_share: float
    current_nan_share: float
    reference_rows: int
    current_rows: int


def _nan_share(x: np.ndarray) -> float:
    return float(np.mean(~np.isfinite(x))) if len(x) else float("nan")


def psi_detail(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> PsiResult:
    """PSI of ``current`` against ``reference`` with the NaN shares beside it; the PSI is NaN
    when either sample has no finite value."""
    ref = np.asarray(reference, dtype=float).ravel()
    cur = np.asarray(current, dtype=float).ravel()
    cuts = quantile_cuts(ref, bins)
    r, n_ref = bin_shares(ref, cuts)
    c, n_cur = bin_shares(cur, cuts)
    value = float(psi_from_shares(r, c)) if n_ref and n_cur else float("nan")
    return PsiResult(value, _nan_share(ref), _nan_share(cur), n_ref, n_cur)


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """PSI of ``current`` against quantile bins of ``reference`` (NaN values left out)."""
    return psi_detail(reference, current, bins).psi


def reading(value: float, watch: float = 0.1, alert: float = 0.25) -> str:
    """'stable', 'watch' or 'shifted' by the common PSI reading; 'unknown' for NaN."""
    if not np.isfinite(value):
        return "unknown"
    return "shifted" if value > alert else "watch" if value >= watch else "stable"


def rolling_psis(reference: np.ndarray, cuts: np.ndarray, shares: np.ndarray, window: int,
                 min_rows: int) -> np.ndarray:
    """PSI against ``shares`` of the ``window`` rows ending at each row of ``reference``, from
    the first full window on (NaN where fewer than ``min_rows`` of them are finite): what a
    recent window's PSI looks like, bar by bar, when nothing has changed."""
    idx = bin_index(reference, cuts)
    if len(idx) < window:
        return np.empty(0)
    nbins = len(cuts) + 1
    onehot = np.zeros((len(idx) + 1, nbins), dtype=np.int32)
    rows = np.flatnonzero(idx >= 0)
    onehot[rows + 1, idx[rows]] = 1
    cum = np.cumsum(onehot, axis=0)
    counts = cum[window:] - cum[:-window]
    finite = counts.sum(axis=1)
    out = np.full(len(counts), np.nan)
    full = finite == window  # most windows: every term comes from one table of counts
    if full.any():
        table = _psi_terms(shares, np.arange(window + 1) / window)  # (bins, count)
        out[full] = table[np.arange(nbins), counts[full]].sum(axis=1)
    part = ~full & (finite >= max(min_rows, 1))
    if part.any():
        out[part] = psi_from_shares(shares, counts[part] / finite[part, None])
    return out


def _psi_terms(reference: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Each bin's PSI term for every current share in ``current``: (bins, len(current))."""
    r = np.maximum(np.asarray(reference, dtype=float), SHARE_FLOOR)[:, None]
    c = np.maximum(np.asarray(current, dtype=float), SHARE_FLOOR)[None, :]
    return (c - r) * np.log(c / r)
