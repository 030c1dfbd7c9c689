"""The backtest step: simulate the strategies on OOS forecasts, report, plot, log to MLflow.

``run_backtest`` simulates one symbol of the task, prints the comparison table, writes JSON and
plots and logs to MLflow; the pipeline step (``cascade_ml.steps``) calls it per symbol.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import typer

from cascade_ml.atomic import write_json
from cascade_ml.backtest.config import BacktestConfig
from cascade_ml.backtest.data import BacktestData, load
from cascade_ml.backtest.plots import save_plots
from cascade_ml.backtest.simulate_all import StrategyRun, model_policy_paths, run_strategies
from cascade_ml.contracts.task import TaskConfig
from cascade_ml.data.store import MarketStore
from cascade_ml.policy.config import PolicyConfig
from cascade_ml.tracking import TrackingConfig

log = logging.getLogger(__name__)
TABLE_COLS = [("total_return", "return", "{:+.1%}"), ("ann_vol", "vol", "{:.1%}"),
              ("max_drawdown", "maxDD", "{:.1%}"), ("calmar", "calmar", "{:.2f}"),
              ("sortino", "sortino", "{:.2f}"), ("upside_capture", "up", "{:.2f}"),
              ("downside_capture", "down", "{:.2f}"), ("liquidations", "liq", "{:.0f}"),
              ("fees_paid", "fees", "{:,.0f}"), ("funding_paid", "funding", "{:,.0f}"),
              ("turnover", "turnover", "{:.1f}")]


def _clean(x: float) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


def records(runs: dict[str, StrategyRun], data: BacktestData, symbol: str,
            horizon: int) -> list[dict]:
    """One JSON-ready object per strategy."""
    span = {"start": str(data.index[0]), "end": str(data.index[-1]), "bars": len(data.index),
            "funding_coverage": data.funding_coverage,
            "funding_proxy_share": data.funding_proxy_share,
            "forecast_coverage": data.forecast_coverage}
    return [{"symbol": symbol, "horizon": horizon, "strategy": name, **span,
             **{k: _clean(v) for k, v in run.metrics.items()}} for name, run in runs.items()]


def format_table(rows: list[dict]) -> str:
    """The comparison table printed by the step."""
    head = f"{'strategy':<14}" + "".join(f"{label:>10}" for _, label, _ in TABLE_COLS)
    lines = [head]
    for r in rows:
        cells = "".join(f"{(fmt.format(r[k]) if r[k] is not None else 'n/a'):>10}"
                        for k, _, fmt in TABLE_COLS)
        lines.append(f"{r['strategy']:<14}{cells}")
    return "\n".join(lines)


def target_report(rows: list[dict]) -> list[str]:
    """The brief's targets for the model policy, checked (reported, never asserted)."""
    by = {r["strategy"]: r for r in rows}
    if not {"model_policy", "unhedged"} <= set(by):
        return []
    m, u = by["model_policy"], by["unhedged"]

    def ratio(key: str) -> float | None:
        return m[key] / u[key] if m[key] is not None and u[key] else None

    def mark(ok: bool | None) -> str:
        return "n/a" if ok is None else ("met" if ok else "NOT met")

    lines = []
    for key, label in (("ann_vol", "vol"), ("max_drawdown", "max drawdown")):
        r = ratio(key)
        lines.append(f"{label} {r:.2f}x unhedged (target <= 0.60): "
                     f"{mark(None if r is None else r <= 0.6)}" if r is not None
                     else f"{label}: n/a")
    up = m["upside_capture"]
    lines.append(f"upside capture {up:.2f} (target >= 0.50): {mark(up >= 0.5)}"
                 if up is not None else "upside capture: n/a")
    lines.append(f"liquidations {m['liquidations']:.0f} vs unhedged {u['liquidations']:.0f}: "
                 f"{mark(m['liquidations'] <= u['liquidations'])}")
    for other in ("static_hedge", "vol_target"):
        if other in by and m["calmar"] is not None and by[other]["calmar"] is not None:
            lines.append(f"Calmar {m['calmar']:.2f} vs {other} {by[other]['calmar']:.2f}: "
                         f"{mark(m['calmar'] > by[other]['calmar'])}")
    return lines


def log_to_mlflow(tracking: TrackingConfig, bt: BacktestConfig, policy: PolicyConfig,
                  symbol: str, horizon: int, rows: list[dict], plots: list[Path],
                  json_path: Path | None) -> str:
    """One run per symbol in the backtest experiment: params, metrics per strategy, artifacts."""
    import mlflow

    from cascade_ml.models.tracking import flatten
    from cascade_ml.tracking import connect

    _, exp_id = connect(tracking, bt.experiment)
    with mlflow.start_run(experiment_id=exp_id, run_name=f"backtest-{symbol}-h{horizon}") as run:
        mlflow.set_tags({"symbol": symbol, "horizon": str(horizon)})
        params = flatten("backtest", bt.model_dump(mode="json"))
        params.update(flatten("policy", {k: v for k, v in policy.model_dump(mode="json")
                                         .items() if not isinstance(v, (dict, list))}))
        mlflow.log_params(params)
        skip = ("_coverage", "_share")
        for r in rows:
            mlflow.log_metrics({f"{r['strategy']}.{k}": v for k, v in r.items()
                                if isinstance(v, float) and not k.endswith(skip)})
        mlflow.log_dict(rows, "backtest.json")
        for p in plots:
            mlflow.log_artifact(str(p), "plots")
        if json_path is not None:
            mlflow.log_artifact(str(json_path))
        return run.info.run_id


def run_backtest(store: MarketStore, symbol: str, task: TaskConfig, bt: BacktestConfig,
                 policy: PolicyConfig, tracking: TrackingConfig, *,
                 json_path: Path | None = None, report_dir: Path | None = None,
                 log_mlflow: bool | None = None) -> list[dict]:
    """Backtest one symbol; prints the table, writes JSON/plots, logs to MLflow."""
    horizon = task.horizon
    data = load(store, symbol, venue=bt.venue or task.venue, interval=task.interval,
                horizon=horizon, funding_proxy=bt.funding_proxy)
    runs = run_strategies(data, bt, policy, symbol, task.side)
    rows = records(runs, data, symbol, horizon)
    typer.echo(f"{symbol} h={horizon}: {len(data.index)} OOS bars {data.index[0]} .. "
               f"{data.index[-1]}; forecasts on {data.forecast_coverage:.0%} of bars, funding "
               f"data on {data.funding_coverage:.0%} (other venues' funding as proxy on "
               f"{data.funding_proxy_share:.0%})")
    typer.echo(format_table(rows))
    for line in target_report(rows):
        typer.echo(f"  model_policy target: {line}")
    if json_path is not None:
        write_json(Path(json_path), rows)
    out_dir = Path(report_dir) if report_dir is not None else bt.report_dir
    plots = save_plots(runs, data, model_policy_paths(data, bt, policy, symbol, task.side),
                       out_dir, symbol)
    typer.echo(f"plots in {out_dir}")
    if bt.log_mlflow if log_mlflow is None else log_mlflow:
        run_id = log_to_mlflow(tracking, bt, policy, symbol, horizon, rows, plots, json_path)
        typer.echo(f"logged to MLflow experiment '{bt.experiment}' run {run_id}")
    return rows

