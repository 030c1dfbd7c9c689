"""A :class:`MonitorReport` as a JSON file in the store, so a process that did not compute it (the
service) can export and enforce it.

The live loop writes each symbol's latest report to ``contracts.layout.monitor_path(symbol)``
with the feature bar it judged; the service's poller reads it back. The file holds the whole
report (every feature's PSI, every source's age, the calibration bins), not only ``to_dict()``,
so ``export_reports`` gives the service the same gauges as the loop. Non-finite numbers are
written as ``null`` (strict JSON) and read back as NaN.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cascade_ml.atomic import write_json
from cascade_ml.contracts.layout import monitor_path
from cascade_ml.data.store import to_utc
from cascade_ml.errors import CascadeError
from cascade_ml.monitoring.health import MonitorReport
from cascade_ml.monitoring.quality import ForecastQuality, QlikeSummary

FORMAT = 1


@dataclass(frozen=True)
class StoredReport:
    """A report as read from the store, with the feature bar (open time) it judged."""

    bar: pd.Timestamp
    report: MonitorReport


# --------------------------------------------------------------------------- values
def _float(value: object) -> float | None:
    out = float(value)  # type: ignore[arg-type]
    return out if np.isfinite(out) else None


def _time(value: object) -> str | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).isoformat()


def _time_in(value: str | None) -> pd.Timestamp | None:
    return None if value is None else pd.Timestamp(value)


def _column_out(values: pd.Series | pd.Index) -> dict:
    """One column as ``{"kind", "values"}`` of plain JSON values (``write_json`` would turn a
    numpy scalar into a string)."""
    dtype = values.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return {"kind": "datetime", "utc": getattr(dtype, "tz", None) is not None,
                "values": [_time(v) for v in values]}
    if pd.api.types.is_bool_dtype(dtype):
        return {"kind": "bool", "values": [bool(v) for v in values]}
    if pd.api.types.is_integer_dtype(dtype):
        return {"kind": "int", "values": [int(v) for v in values]}
    if pd.api.types.is_float_dtype(dtype):
        return {"kind": "float", "values": [_float(v) for v in values]}
    present = [v for v in values if v is not None and not (isinstance(v, float) and np.isnan(v))
               and v is not pd.NaT]
    if present and all(isinstance(v, pd.Timestamp) for v in present):
        return {"kind": "datetime", "utc": present[0].tzinfo is not None,
                "values": [_time(v) for v in values]}
    return {"kind": "str", "values": [None if v is None or v is pd.NaT or
                                      (isinstance(v, float) and np.isnan(v)) else str(v)
                                      for v in values]}


def _column_in(coded: dict) -> pd.Series:
    kind, values = coded["kind"], coded["values"]
    if kind == "datetime":
        return pd.Series(pd.to_datetime(values, utc=bool(coded.get("utc"))))
    dtype = {"bool": "bool", "int": "int64", "float": "float64", "str": "str"}.get(kind)
    if dtype is None:
        raise CascadeError(f"unknown column kind {kind!r} in a stored monitor report")
    return pd.Series(values, dtype=dtype)


def _frame_out(frame: pd.DataFrame) -> dict:
    return {"index": _column_out(frame.index), "index_name": frame.index.name,
            "columns": [[str(name), _column_out(frame[name])] for name in frame.columns]}


def _frame_in(coded: dict) -> pd.DataFrame:
    index = pd.Index(_column_in(coded["index"]), name=coded.get("index_name"))
    columns = {name: _column_in(col).set_axis(index) for name, col in coded["columns"]}
    return pd.DataFrame(columns, index=index, columns=[name for name, _ in coded["columns"]])


def _shares_out(shares: dict) -> dict:
    return {str(k): _float(v) for k, v in shares.items()}


def _shares_in(shares: dict) -> dict[str, float]:
    return {k: np.nan if v is None else float(v) for k, v in shares.items()}


def _num_in(value: float | None) -> float:
    return np.nan if value is None else float(value)


# --------------------------------------------------------------------------- the report
def _quality_out(q: ForecastQuality | None) -> dict | None:
    if q is None:
        return None
    qlike = None if q.qlike is None else {
        "model": _float(q.qlike.model), "har": _float(q.qlike.har),
        "ratio": _float(q.qlike.ratio), "rows": int(q.qlike.rows),
        "last_realised": _time(q.qlike.last_realised)}
    return {"qlike": qlike,
            "calibration": None if q.calibration is None else _frame_out(q.calibration),
            "ece": _float(q.ece), "cascade_rows": int(q.cascade_rows),
            "cascade_rate": _float(q.cascade_rate), "mean_prob": _float(q.mean_prob)}


def _quality_in(coded: dict | None) -> ForecastQuality | None:
    if coded is None:
        return None
    q = coded["qlike"]
    qlike = None if q is None else QlikeSummary(_num_in(q["model"]), _num_in(q["har"]),
                                                _num_in(q["ratio"]), int(q["rows"]),
                                                _time_in(q["last_realised"]))
    calibration = None if coded["calibration"] is None else _frame_in(coded["calibration"])
    return ForecastQuality(qlike, calibration, _num_in(coded["ece"]), int(coded["cascade_rows"]),
                           _num_in(coded["cascade_rate"]), _num_in(coded["mean_prob"]))


def report_to_json(report: MonitorReport) -> dict:
    """Everything in ``report`` as plain JSON values (lossless but for inf -> NaN)."""
    return {
        "symbol": report.symbol, "now": _time(report.now), "last_row": _time(report.last_row),
        "drift": _frame_out(report.drift), "drifted": [str(n) for n in report.drifted],
        "missing_share": _shares_out(report.missing_share),
        "missing_share_used": _shares_out(report.missing_share_used),
        "missing_families": [str(f) for f in report.missing_families],
        "sources": _frame_out(report.sources),
        "stale_sources": [str(s) for s in report.stale_sources],
        "quality": _quality_out(report.quality),
        "degrade_reasons": [str(r) for r in report.degrade_reasons],
        "drift_reasons": [str(r) for r in report.drift_reasons],
    }


def report_from_json(coded: dict) -> MonitorReport:
    """The :class:`MonitorReport` ``report_to_json`` wrote."""
    return MonitorReport(
        symbol=str(coded["symbol"]), now=pd.Timestamp(coded["now"]),
        last_row=_time_in(coded["last_row"]), drift=_frame_in(coded["drift"]),
        drifted=list(coded["drifted"]), missing_share=_shares_in(coded["missing_share"]),
        missing_share_used=_shares_in(coded["missing_share_used"]),
        missing_families=list(coded["missing_families"]), sources=_frame_in(coded["sources"]),
        stale_sources=list(coded["stale_sources"]), quality=_quality_in(coded["quality"]),
        degrade_reasons=list(coded["degrade_reasons"]),
        drift_reasons=list(coded.get("drift_reasons", [])))  # absent in older files


# --------------------------------------------------------------------------- the store file
def write_report(store_root: str | Path, report: MonitorReport,
                 bar: pd.Timestamp | None = None) -> Path:
    """Atomically write ``report`` as ``report.symbol``'s latest, for the feature bar ``bar``
    (open time; default the report's newest visible row). Returns the file."""
    bar = report.last_row if bar is None else bar
    if bar is None:
        raise CascadeError(f"monitor report of {report.symbol} at {report.now} judged no feature "
                           "row: pass the bar it stands for")
    path = Path(store_root) / monitor_path(report.symbol)
    write_json(path, {"format": FORMAT, "symbol": report.symbol, "bar": _time(to_utc(bar)),
                      "report": report_to_json(report)})
    return path


def read_report(path: str | Path, symbol: str | None = None) -> StoredReport | None:
    """The report stored at ``path`` (None when there is no file); a file that cannot be read
    as a report, or that is another symbol's, raises ``CascadeError`` naming it."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        raise CascadeError(f"unreadable monitor report: {exc}", str(path)) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CascadeError(f"not a monitor report of format {FORMAT} (found {found!r})",
                           str(path))
    try:
        stored = StoredReport(to_utc(payload["bar"]), report_from_json(payload["report"]))
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise CascadeError(f"malformed monitor report ({type(exc).__name__}: {exc})",
                           str(path)) from exc
    if symbol is not None and stored.report.symbol != symbol:
        raise CascadeError(f"monitor report of {stored.report.symbol!r} where {symbol!r}'s "
                           "belongs", str(path))
    return stored

