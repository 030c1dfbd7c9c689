"""The paper-trading report: one PNG (equity and P&L, drawdown, hedge ratio, forecast vs realised
vol) and a dict of summary figures, read from the book only (``cascade-ml paper report``)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cascade_ml.atomic import atomic_file, write_json  # noqa: E402
from cascade_ml.backtest.metrics import drawdown_path  # noqa: E402
from cascade_ml.errors import CascadeError  # noqa: E402
from cascade_ml.trading.book import PaperBook  # noqa: E402
from cascade_ml.trading.db import safe_url  # noqa: E402

FIGURE = "paper_report.png"
SUMMARY = "paper_summary.json"


def realised_forward_vol(marks: pd.Series, horizon_hours: float) -> pd.Series:
    """sqrt of the sum of squared log returns over the bars in (t, t + H], per bar t: the same
    window as the ``fwd_rv`` label. NaN where the window is not complete in the book."""
    marks = marks.dropna().sort_index()
    marks = marks[~marks.index.duplicated(keep="last")]
    if len(marks) < 2:
        return pd.Series(np.nan, index=marks.index)
    step = pd.Series(marks.index).diff().median()
    n = int(round(pd.Timedelta(hours=horizon_hours) / step))
    grid = pd.date_range(marks.index[0], marks.index[-1], freq=step)
    r2 = np.log(marks.reindex(grid)).diff() ** 2
    fwd = r2.rolling(n, min_periods=n).sum().shift(-n) if n >= 1 else r2 * np.nan
    return np.sqrt(fwd).reindex(marks.index)


def _num(value: float | int | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _vol_table(decisions: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per symbol: forecast vol and the realised vol over the same horizon, where both exist."""
    out = {}
    for symbol, d in decisions.groupby("symbol"):
        d = d.set_index("bar_ts").sort_index()
        if d["forecast_vol"].notna().sum() == 0 or d["mark_price"].notna().sum() < 2:
            continue
        horizon = float(d["horizon_hours"].dropna().iloc[0])
        frame = pd.DataFrame({"forecast": d["forecast_vol"],
                              "realised": realised_forward_vol(d["mark_price"], horizon)})
        out[str(symbol)] = frame.dropna()
    return out


def summarise(frames: dict[str, pd.DataFrame], initial_cash: float) -> dict:
    """Summary figures of a book's tables (no I/O)."""
    eq, dec, orders = frames["equity_snapshots"], frames["decisions"], frames["orders"]
    hedges, fills = frames["hedges"], frames["fills"]
    equity = np.concatenate([[initial_cash], eq["equity"].to_numpy(dtype=float)])
    last = eq.iloc[-1]
    status = orders["status"].value_counts() if len(orders) else pd.Series(dtype=int)
    vols = {}
    for symbol, table in _vol_table(dec).items():
        both = len(table)
        vols[symbol] = {
            "n": both,
            "mean_forecast": _num(table["forecast"].mean()) if both else None,
            "mean_realised": _num(table["realised"].mean()) if both else None,
            "realised_over_forecast": _num(table["realised"].mean() / table["forecast"].mean())
            if both else None,
            "correlation": _num(table["forecast"].corr(table["realised"])) if both > 2 else None,
        }
    return {
        "start": eq["bar_ts"].iloc[0].isoformat(), "end": eq["bar_ts"].iloc[-1].isoformat(),
        "bars": len(eq), "cycles": len(dec), "symbols": sorted(dec["symbol"].unique().tolist()),
        "initial_equity": initial_cash, "final_equity": float(last["equity"]),
        "pnl": float(last["equity"]) - initial_cash,
        "return": float(last["equity"]) / initial_cash - 1.0,
        "max_drawdown": float(drawdown_path(equity).max()),
        "realised_pnl": float(last["realised_pnl"]),
        "unrealised_pnl": float(last["unrealised_pnl"]), "fees": float(last["fees"]),
        "slippage": float(last["slippage"]), "funding": float(last["funding"]),
        "orders": len(orders), "fills": len(fills),
        **{s: int(status.get(s, 0)) for s in ("refused", "failed", "submitted")},
        "fail_safe_share": float(dec["fail_safe"].astype(bool).mean()),
        "mean_target_hedge": _num(hedges["target_ratio"].mean()) if len(hedges) else None,
        "mean_actual_hedge": _num(hedges["actual_ratio"].mean()) if len(hedges) else None,
        "vol": vols,
    }


def _figure(frames: dict[str, pd.DataFrame], initial_cash: float, path: Path) -> None:
    eq, dec, hedges = frames["equity_snapshots"], frames["decisions"], frames["hedges"]
    t = eq["bar_ts"]
    equity = eq["equity"].to_numpy(dtype=float)
    fig, axes = plt.subplots(4, 1, figsize=(11, 12), sharex=True)
    ax = axes[0]
    ax.plot(t, equity, lw=1, label="equity")
    ax.axhline(initial_cash, color="grey", lw=0.6, ls="--", label="initial cash")
    ax.set_ylabel("equity")
    pnl = ax.secondary_yaxis("right", functions=(lambda e: e - initial_cash,
                                                 lambda p: p + initial_cash))
    pnl.set_ylabel("P&L")
    ax.legend(loc="upper left")
    ax.set_title("paper book: equity (cash + unrealised, net of fees, slippage and funding)")
    axes[1].fill_between(t, 0, -drawdown_path(np.concatenate([[initial_cash], equity]))[1:],
                         color="tab:red", alpha=0.4, lw=0)
    axes[1].set_ylabel("drawdown")
    for symbol, h in hedges.groupby("symbol"):
        axes[2].step(h["bar_ts"], h["target_ratio"], where="post", lw=0.8,
                     label=f"{symbol} target")
        axes[2].plot(h["bar_ts"], h["actual_ratio"], lw=0.8, ls="--", label=f"{symbol} held")
    axes[2].set_ylim(0, 1.05)
    axes[2].set_ylabel("hedge ratio")
    axes[2].legend(loc="upper left")
    vols = _vol_table(dec)
    for symbol, table in vols.items():
        axes[3].plot(table.index, table["forecast"], lw=0.8, label=f"{symbol} forecast")
        axes[3].plot(table.index, table["realised"], lw=0.8, label=f"{symbol} realised")
    if vols:
        axes[3].legend(loc="upper left")
    else:
        axes[3].text(0.5, 0.5, "no forecast with a complete realised window in the book",
                     ha="center", va="center", transform=axes[3].transAxes)
    axes[3].set_ylabel("vol over the horizon")
    fig.tight_layout()
    with atomic_file(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=100)
    plt.close(fig)


def write_paper_report(db_url: str, out_dir: str | Path) -> dict:
    """Write ``paper_report.png`` and ``paper_summary.json`` into ``out_dir``; return the
    summary (with the two paths). The book is only read."""
    with PaperBook(db_url, migrate=False) as book:
        frames = book.frames()
        initial = book.initial_cash
    if frames["equity_snapshots"].empty:
        raise CascadeError("the paper book has no cycles yet", safe_url(db_url),
                           hint="run the paper loop for at least one bar")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarise(frames, initial)
    _figure(frames, initial, out / FIGURE)
    summary.update({"figure": str(out / FIGURE), "summary": str(out / SUMMARY),
                    "db": safe_url(db_url)})
    write_json(out / SUMMARY, summary)
    return summary
