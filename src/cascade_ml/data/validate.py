"""Turn a source's raw frame into a validated canonical frame, or say exactly what is wrong.

Sources map their columns to the canonical names and hand the frame here; nothing reaches the
store without passing through ``to_canonical``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cascade_ml.data.schemas import SPECS, schemas
from cascade_ml.errors import DataValidationError

_MAX_EXAMPLES = 5


def _examples(values: object) -> str:
    items = list(values)  # type: ignore[call-overload]
    shown = ", ".join(str(v) for v in items[:_MAX_EXAMPLES])
    more = f" and {len(items) - _MAX_EXAMPLES} more" if len(items) > _MAX_EXAMPLES else ""
    return shown + more


def parse_timestamps(values: pd.Series, where: str, *,
                     naive_is_utc: bool = False) -> pd.DatetimeIndex:
    """Parse epoch numbers (s or ms) or ISO strings into a UTC index.

    Naive strings are refused unless the source documents them as UTC (``naive_is_utc``):
    guessing a timezone would silently shift every bar.
    """
    if len(values) == 0:
        raise DataValidationError("no rows", where)
    if not pd.api.types.is_numeric_dtype(values.dtype) and not \
            pd.api.types.is_datetime64_any_dtype(values.dtype):
        # A column of epoch numbers with a stray word is read as text: parse it as numbers so
        # the report names the bad rows, not every row.
        as_numbers = pd.to_numeric(values, errors="coerce")
        if as_numbers.notna().mean() > 0.5:
            values = as_numbers
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        parsed = pd.DatetimeIndex(values)
    elif pd.api.types.is_numeric_dtype(values.dtype):
        numbers = pd.to_numeric(values, errors="coerce")
        bad = numbers.isna() | ~np.isfinite(numbers.astype(float))
        if bad.any():
            rows = np.flatnonzero(bad.to_numpy()) + 1
            raise DataValidationError(f"unparsable timestamp in data rows {_examples(rows)}", where)
        unit = "ms" if numbers.abs().max() > 1e11 else "s"
        parsed = pd.DatetimeIndex(pd.to_datetime(numbers.astype("int64"), unit=unit, utc=True))
    else:
        text = values.astype("string")
        try:
            parsed = pd.DatetimeIndex(pd.to_datetime(text, format="ISO8601", errors="coerce"))
        except (ValueError, TypeError) as exc:  # mixed offsets and the like
            raise DataValidationError(f"unparsable timestamps ({exc})", where) from exc
        bad = parsed.isna() & text.notna().to_numpy()
        if bad.any() or parsed.isna().any():
            rows = np.flatnonzero(parsed.isna()) + 1
            samples = [values.iloc[r - 1] for r in rows[:_MAX_EXAMPLES]]
            raise DataValidationError(
                f"unparsable timestamp in data rows {_examples(rows)} (values {samples!r})", where
            )
    if parsed.tz is None:
        if not naive_is_utc:
            raise DataValidationError(
                "timestamps have no timezone",
                where,
                hint="write them with an offset such as +00:00, or as epoch numbers",
            )
        parsed = parsed.tz_localize("UTC")
    return parsed.tz_convert("UTC").as_unit("ns").rename("timestamp")


def to_canonical(
    raw: pd.DataFrame,
    dataset: str,
    where: str,
    *,
    timestamp_col: str = "timestamp",
    naive_is_utc: bool = False,
) -> pd.DataFrame:
    """Validate ``raw`` (canonical column names plus a timestamp column) for ``dataset``.

    Sorts rows, drops exact duplicate rows, refuses duplicates whose values conflict, and runs
    the pandera schema. Columns the dataset does not know are dropped.
    """
    if dataset not in SPECS:
        raise DataValidationError(
            f"unknown dataset {dataset!r}; expected one of {list(SPECS)}", where)
    spec = SPECS[dataset]
    if raw.empty:
        raise DataValidationError("no rows", where)
    if timestamp_col not in raw.columns:
        raise DataValidationError(
            f"missing timestamp column {timestamp_col!r}; columns are {list(raw.columns)}", where
        )
    missing = [c for c in spec.required if c not in raw.columns]
    if missing:
        raise DataValidationError(
            f"missing required column(s) {missing} for dataset {dataset!r}; "
            f"columns are {list(raw.columns)}",
            where,
        )
    if spec.any_of and not any(c in raw.columns for c in spec.any_of):
        raise DataValidationError(
            f"dataset {dataset!r} needs at least one of {list(spec.any_of)}; "
            f"columns are {list(raw.columns)}",
            where,
        )
    index = parse_timestamps(raw[timestamp_col].reset_index(drop=True), where,
                             naive_is_utc=naive_is_utc)
    present = [c for c in spec.columns if c in raw.columns]
    frame = pd.DataFrame(index=index)
    for col in present:
        values = pd.to_numeric(raw[col].reset_index(drop=True), errors="coerce")
        text_bad = values.isna().to_numpy() & raw[col].reset_index(drop=True).notna().to_numpy()
        if text_bad.any():
            rows = np.flatnonzero(text_bad) + 1
            raise DataValidationError(f"column {col!r}: non-numeric value in data rows "
                                      f"{_examples(rows)}", where)
        frame[col] = values.to_numpy(dtype=float)
    for col in spec.required:
        nan_rows = np.flatnonzero(frame[col].isna().to_numpy()) + 1
        if len(nan_rows):
            raise DataValidationError(f"column {col!r}: missing/NaN value in data rows "
                                      f"{_examples(nan_rows)}", where)
    if spec.any_of and frame[[c for c in spec.any_of if c in frame]].isna().all(axis=1).any():
        rows = np.flatnonzero(frame[[c for c in spec.any_of if c in frame]].isna().all(axis=1)) + 1
        raise DataValidationError(f"all of {list(spec.any_of)} missing in data rows "
                                  f"{_examples(rows)}", where)
    frame = frame.sort_index(kind="stable")
    frame = _drop_duplicates(frame, where)
    return validate_frame(frame, dataset, where)


def _drop_duplicates(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """Drop repeated identical rows; refuse repeated timestamps whose values differ."""
    dup_ts = frame.index.duplicated(keep=False)
    if not dup_ts.any():
        return frame
    dups = frame[dup_ts]
    # Rows are equal when every column is equal or both NaN.
    distinct = dups.reset_index().drop_duplicates()
    conflicting = distinct["timestamp"][distinct["timestamp"].duplicated()].unique()
    if len(conflicting):
        raise DataValidationError(
            f"duplicate timestamps with conflicting values at {_examples(conflicting)}", where
        )
    return frame[~frame.index.duplicated(keep="first")]


def validate_frame(frame: pd.DataFrame, dataset: str, where: str) -> pd.DataFrame:
    """Run the pandera schema and convert its failure report into one readable message.

    A tz-aware index is brought to UTC nanoseconds first: pandas 3 creates microsecond indexes
    (``pd.date_range``) that hold the same instants; naive indexes still fail the schema.
    """
    if isinstance(frame.index, pd.DatetimeIndex) and frame.index.tz is not None and (
            frame.index.unit != "ns" or str(frame.index.tz) != "UTC"):
        frame = frame.copy()
        frame.index = frame.index.tz_convert("UTC").as_unit("ns")
    import pandera.errors

    schema = schemas()[dataset]
    try:
        return schema.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        frame_checks = {c.error for c in schema.checks}
        lines = []
        for check, group in cases.groupby("check", dropna=False, sort=False):
            idx = list(dict.fromkeys(group["index"].dropna().tolist()))
            at = f" at {_examples(idx)}" if idx else ""
            if check in frame_checks:
                lines.append(f"rows: {check}{at}")
                continue
            columns = list(dict.fromkeys(str(c) for c in group["column"].dropna()))
            lines.append(f"column {', '.join(columns)}: {check}{at}")
        raise DataValidationError("; ".join(lines[:10]), where) from exc
