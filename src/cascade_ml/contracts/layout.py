"""Where each derived table lives in the store: one function per table, used by every layer.

Paths are relative to the store root (``MarketStore.write_table`` / ``read_table`` take them).
Each table folder also holds a ``manifest.json`` beside the Parquet file.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

MANIFEST = "manifest.json"


def features_path(symbol: str) -> str:
    """Point-in-time feature table of one symbol (all horizons share it)."""
    return f"features/symbol={symbol}/features.parquet"


def labels_path(symbol: str, horizon: int) -> str:
    """Forward targets of one symbol at horizon H; kept apart from features."""
    return f"labels/symbol={symbol}/h={horizon}/labels.parquet"


def predictions_path(symbol: str, horizon: int) -> str:
    """Out-of-sample walk-forward and final-period forecasts, with the baselines'."""
    return f"predictions/symbol={symbol}/h={horizon}/oos.parquet"


def scores_path(symbol: str) -> str:
    """Batch-scored forecasts and default decisions of the newest bars."""
    return f"scores/symbol={symbol}/scores.parquet"


def monitor_path(symbol: str) -> str:
    """The monitor's latest report on one symbol (JSON, with the feature bar it judged): written
    by the live loop each cycle, read by the service's poller."""
    return f"monitor/symbol={symbol}/report.json"


def manifest_path(table_path: str) -> str:
    """The manifest beside a table."""
    return str(PurePosixPath(table_path).parent / MANIFEST)


def bundle_dir(models_dir: str | Path, symbol: str) -> Path:
    """The exported bundle that serves ``symbol`` (``<models_dir>/<SYMBOL>``): the one place that
    maps a symbol to its model folder, so a panel bundle serving many symbols changes only this."""
    return Path(models_dir) / symbol


def panel_path(horizon: int) -> str:
    """The stacked universe panel (scale-free features, market state, labels) at horizon H."""
    return f"panel/h={horizon}/panel.parquet"


def panel_predictions_path(horizon: int) -> str:
    """Out-of-sample forecasts of every panel candidate and baseline, all symbols."""
    return f"panel/h={horizon}/oos.parquet"
