"""Replay vs backtest: the book a `cascade-ml live --replay` wrote, against the backtest of the
same span fed the same forecasts.

The replay stores every forecast it served (the scores table) and every decision (the book);
this script backtests the replayed span on those forecasts (bars where the loop failed safe,
e.g. on the monitor's verdict, get no forecast, so the backtest fails safe on them too), with
the same `trading` and `policy` sections, and prints trades, stops, fees, funding and final
equity of both, and the largest per-bar equity gap. It asserts nothing.

    cascade-ml live --pipeline pipelines/near.yaml --replay --from 2026-04-01 --until 2026-05-01
    python benchmarks/parity_replay.py --pipeline pipelines/near.yaml
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from cascade_ml.backtest.data import load
from cascade_ml.backtest.simulate_all import run_strategies
from cascade_ml.config import load_pipeline
from cascade_ml.contracts.columns import SERVED_FORECASTS, VOL_FORECAST
from cascade_ml.contracts.layout import scores_path
from cascade_ml.data.store import MarketStore
from cascade_ml.live.run import replay_db_url
from cascade_ml.trading.book import PaperBook


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pipeline", default="pipelines/near.yaml")
    args = ap.parse_args()
    config = load_pipeline(args.pipeline)
    task, policy, trading = config.task, config.policy, config.trading
    folder = config.live.replay.dir
    store = MarketStore(folder / "store")
    with PaperBook(replay_db_url(folder), migrate=False) as book:
        frames = book.frames()
    for symbol in task.symbols:
        dec = frames["decisions"][frames["decisions"]["symbol"] == symbol].copy()
        dec["bar_ts"] = pd.to_datetime(dec["bar_ts"], utc=True)
        served = store.read_table(scores_path(symbol))
        preds = served[[c for c in SERVED_FORECASTS if c in served]].reindex(dec["bar_ts"])
        preds.index.name = "timestamp"
        safe = dec["fail_safe"].astype(bool).to_numpy()
        preds.loc[safe, VOL_FORECAST] = np.nan  # the loop failed safe here: so does the backtest
        if "var_forecast" in preds:
            preds.loc[safe, "var_forecast"] = np.nan
        bt = config.backtest.model_copy(update={"strategies": ["model_policy"]})
        tiers = {name: policy.tiers_for(name) for name in ("BTC", "ETH")}
        data = load(store, symbol, venue=task.venue, interval=task.interval, horizon=task.horizon,
                    funding_proxy=bt.funding_proxy, vol_window=policy.vol_reference_window,
                    proxy_window=policy.proxy_window, proxy_tiers=tiers if bt.proxy_hedges
                    else None, preds=preds)
        r = run_strategies(data, bt, policy, symbol, task.side, trading=trading)[
            "model_policy"].result
        orders = frames["orders"][frames["orders"]["symbol"] == symbol]
        at = pd.to_datetime(orders["bar_ts"], utc=True)
        paper_trades = at.nunique()
        paper_stops = at[orders["order_type"] == "stop"].nunique()
        fills = frames["fills"][frames["fills"]["symbol"] == symbol]
        paid = frames["funding_payments"][frames["funding_payments"]["symbol"] == symbol]
        eq = frames["equity_snapshots"].copy()
        eq["bar_ts"] = pd.to_datetime(eq["bar_ts"], utc=True)
        paper_eq = eq.set_index("bar_ts")["equity"].reindex(data.index).to_numpy(float)
        traded = r.cum_costs[2]
        bt_trades = int(np.sum(np.diff(np.r_[0.0, traded]) > 1e-9))
        gap = np.nanmax(np.abs(paper_eq / r.equity - 1))
        print(f"{symbol}: {len(data.index)} bars {data.index[0]} .. {data.index[-1]}, "
              f"{int(safe.sum())} fail-safe")
        print(f"  {'':10}{'trades':>8}{'stops':>7}{'fees':>10}{'funding':>10}{'equity':>12}")
        print(f"  {'backtest':10}{bt_trades:>8}{len(r.stop_bars):>7}{r.fees:>10.2f}"
              f"{r.funding:>10.2f}{r.equity[-1]:>12.2f}")
        print(f"  {'replay':10}{paper_trades:>8}{paper_stops:>7}"
              f"{fills['fee'].sum() + fills['slippage'].sum():>10.2f}"
              f"{-paid['amount'].sum():>10.2f}{paper_eq[-1]:>12.2f}")
        print(f"  final equity gap {paper_eq[-1] / r.equity[-1] - 1:+.4%}; largest per-bar gap "
              f"{gap * 1e4:.3f} bp")


if __name__ == "__main__":
    main()
