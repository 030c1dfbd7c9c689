"""The backtest step: simulate the strategies on OOS forecasts, report, plot, log to MLflow.

``run_backtest`` simulates one symbol of the task, prints the comparison tables (whole OOS span
and final period), the forecast value (model-fed vs HAR-fed policy), its economic value
(realised utility, performance fee, oracle capture) and the targets, writes JSON, plots and the
HTML report, and logs to MLflow; the pipeline step calls it per symbol, then
``universe_economic_value`` pools the symbols.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import typer

from cascade_ml.atomic import write_json
from cascade_ml.backtest.ablation import forecast_value
from cascade_ml.backtest.config import BacktestConfig
from cascade_ml.backtest.data import BacktestData, load
from cascade_ml.backtest.economic import economic_frame, economic_spans
from cascade_ml.backtest.plots import save_plots
from cascade_ml.backtest.regimes import period_tables
from cascade_ml.backtest.simulate_all import StrategyRun, model_policy_paths, run_strategies
from cascade_ml.contracts.task import TaskConfig
from cascade_ml.data.store import MarketStore
from cascade_ml.policy.config import PolicyConfig
from cascade_ml.trading.config import TradingConfig

if TYPE_CHECKING:  # SQLAlchemy only where MLflow is logged to, never on a worker
    from cascade_ml.tracking import TrackingConfig

log = logging.getLogger(__name__)
TABLE_COLS = [("total_return", "return", "{:+.1%}"), ("ann_vol", "vol", "{:.1%}"),
              ("max_drawdown", "maxDD", "{:.1%}"), ("cvar_95", "CVaR95", "{:+.2%}"),
              ("calmar", "calmar", "{:.2f}"), ("upside_capture", "up", "{:.2f}"),
              ("downside_capture", "down", "{:.2f}"), ("vol_ratio_capped", "vol/cap", "{:.2f}"),
              ("upside_capture_capped", "up/cap", "{:.2f}"),
              ("downside_capture_capped", "dn/cap", "{:.2f}"), ("liquidations", "liq", "{:.0f}"),
              ("stops", "stops", "{:.0f}"), ("fees_paid", "fees", "{:,.0f}"),
              ("funding_paid", "funding", "{:,.0f}"), ("turnover", "turnover", "{:.1f}")]
TARGET_VOL, TARGET_UP, TARGET_DD = 0.5, 0.6, 0.6
TARGET_DOWN_CAPPED = 0.45  # issue 16: downside capture against the capped unhedged position


def _clean(x: object) -> object:
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, bool | str) or x is None:
        return x
    if isinstance(x, int | np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(float(x)) else None
    return x


def forecast_values(runs: dict[str, StrategyRun], data: BacktestData, bt: BacktestConfig
                    ) -> dict[str, dict]:
    """Model-fed minus HAR-fed over the whole OOS span and over the final period."""
    if not {"model_policy", "har_policy"} <= set(runs):
        return {}
    m, h = runs["model_policy"].result.equity, runs["har_policy"].result.equity
    final = np.flatnonzero(data.final_mask())
    spans = {"all": slice(None)}
    if len(final):
        spans["final"] = slice(max(int(final[0]) - 1, 0), int(final[-1]) + 1)
    return {name: forecast_value(m[sl], h[sl], reps=bt.bootstrap_reps,
                                 block_days=bt.bootstrap_block_days, seed=bt.seed)
            for name, sl in spans.items()}


def economic_values(frames: dict[str, pd.DataFrame], bt: BacktestConfig) -> dict[str, dict]:
    """The economic value block (``all`` and ``final`` spans) of one symbol or of many pooled,
    with the backtest's bootstrap settings."""
    return economic_spans(frames, reps=bt.bootstrap_reps, block_days=bt.bootstrap_block_days,
                          seed=bt.seed)


def records(runs: dict[str, StrategyRun], data: BacktestData, symbol: str, horizon: int,
            periods: dict[str, dict] | None = None, fv: dict[str, dict] | None = None,
            ev: dict[str, dict] | None = None, frontier: dict | None = None) -> list[dict]:
    """One JSON-ready object per strategy; each carries its per-period metrics, and the
    ``model_policy`` record the forecast value, the economic value, the frontier (its points
    and each feed's dominance) and the targets."""
    span = {"start": str(data.index[0]), "end": str(data.index[-1]), "bars": len(data.index),
            "funding_coverage": data.funding_coverage,
            "funding_proxy_share": data.funding_proxy_share,
            "forecast_coverage": data.forecast_coverage}
    rows = []
    for name, run in runs.items():
        row = {"symbol": symbol, "horizon": horizon, "strategy": name, **span,
               **{k: _clean(v) for k, v in run.metrics.items()}}
        if periods is not None:
            row["periods"] = {p: ({"status": t["status"], "start": t["start"], "end": t["end"],
                                   **_clean(t["strategies"][name])} if "strategies" in t
                                  else {"status": t["status"]})
                              for p, t in periods.items()}
        rows.append(row)
    by = {r["strategy"]: r for r in rows}
    if "model_policy" in by:
        if fv:
            by["model_policy"]["forecast_value"] = _clean(fv)
        if ev:
            by["model_policy"]["economic_value"] = _clean(ev)
        if frontier:
            by["model_policy"]["frontier"] = _clean(frontier)
        by["model_policy"]["targets"] = {
            "all": target_report(rows, (fv or {}).get("all")),
            **({"final": target_report(period_rows(rows, "final period"), fv.get("final"))}
               if fv and periods and "strategies" in periods.get("final period", {}) else {})}
    return rows


def echo_economic(ev: dict[str, dict], label: str = "") -> None:
    """Print the economic value: the verdict and each feed's oracle-gain capture per span
    (against the equal-cost static, then against each policy's same-size static)."""
    for span, block in ev.items():
        typer.echo(f"economic value{label} ({span}): {block['verdict']}")
        for key in ("oracle_gain_capture", "oracle_gain_capture_same_size"):
            echo_capture(block.get(key, {}))


def echo_capture(cap: dict) -> None:
    """One line per measure of an oracle-gain capture block (:func:`economic.oracle_capture`)."""
    for measure, feeds in cap.items():
        if not isinstance(feeds, dict) or measure == "basis":
            continue
        reasons = {c["status"] for c in feeds.values() if c["share"] is None}
        cells = (next(iter(reasons)) if len(reasons) == 1 and all(
            c["share"] is None for c in feeds.values()) else ", ".join(
            f"{n} {c['share']:+.2f}" if c["share"] is not None else f"{n} n/a"
            for n, c in feeds.items()))
        typer.echo(f"  share of the oracle's gain over {cap['static']} on {measure}: "
                   f"{cells}")


def universe_economic_value(frames: dict[str, pd.DataFrame], bt: BacktestConfig,
                            holdout: list[str] | tuple[str, ...] = (),
                            json_path: Path | None = None) -> dict:
    """The economic value pooled over every backtested symbol (and over the left-out ones and
    the others apart): printed, and written to ``json_path`` when given."""
    groups = {"universe": list(frames)}
    left = [s for s in frames if s in set(holdout)]
    if left:
        groups.update(core=[s for s in frames if s not in set(left)], left_out=left)
    doc = {g: economic_values({s: frames[s] for s in syms}, bt) for g, syms in groups.items()
           if syms}
    for g, ev in doc.items():
        echo_economic(ev, f" pooled over {g} ({len(groups[g])} symbols)")
    if json_path is not None:
        write_json(Path(json_path), _clean(doc))
    return doc


def period_rows(rows: list[dict], period: str) -> list[dict]:
    """The strategy rows of one period (same keys as the whole-span rows)."""
    out = []
    for r in rows:
        p = r.get("periods", {}).get(period, {})
        if p.get("status", "").startswith(("ok", "partial")):
            out.append({"strategy": r["strategy"], **{k: None for k, _, _ in TABLE_COLS}, **p})
    return out


def format_table(rows: list[dict]) -> str:
    """The comparison table printed by the step."""
    head = f"{'strategy':<15}" + "".join(f"{label:>9}" for _, label, _ in TABLE_COLS)
    lines = [head]
    for r in rows:
        cells = "".join(f"{(fmt.format(r[k]) if r.get(k) is not None else 'n/a'):>9}"
                        for k, _, fmt in TABLE_COLS)
        lines.append(f"{r['strategy']:<15}{cells}")
    return "\n".join(lines)


def target_report(rows: list[dict], fv: dict | None = None) -> list[str]:
    """The issue's targets for the model policy, checked (reported, never asserted)."""
    by = {r["strategy"]: r for r in rows}
    if not {"model_policy", "unhedged"} <= set(by):
        return []
    m, u = by["model_policy"], by["unhedged"]

    def ratio(key: str) -> float | None:
        return m[key] / u[key] if m.get(key) is not None and u.get(key) else None

    def mark(ok: bool | None) -> str:
        return "n/a" if ok is None else ("met" if ok else "NOT met")

    lines = []
    r, up = ratio("ann_vol"), m.get("upside_capture")
    lines.append(f"vol {r:.2f}x unhedged (target <= {TARGET_VOL:.2f}) with upside capture "
                 f"{up:.2f} (target >= {TARGET_UP:.2f}): "
                 f"{mark(r <= TARGET_VOL and up >= TARGET_UP)}"
                 if r is not None and up is not None else "vol / upside capture: n/a")
    r, up, down = (m.get(k) for k in ("vol_ratio_capped", "upside_capture_capped",
                                       "downside_capture_capped"))
    if None not in (r, up, down):
        ok = r <= TARGET_VOL and up >= TARGET_UP and down <= TARGET_DOWN_CAPPED
        lines.append(f"against the capped unhedged position (the hedge alone): vol {r:.2f}x "
                     f"(target <= {TARGET_VOL:.2f}), upside capture {up:.2f} (target >= "
                     f"{TARGET_UP:.2f}), downside capture {down:.2f} (target <= "
                     f"{TARGET_DOWN_CAPPED:.2f}): {mark(ok)}")
    r = ratio("max_drawdown")
    lines.append(f"max drawdown {r:.2f}x unhedged (target <= {TARGET_DD:.2f}): "
                 f"{mark(r <= TARGET_DD)}" if r is not None else "max drawdown: n/a")
    if m.get("liquidations") is not None and u.get("liquidations") is not None:
        lines.append(f"liquidations {m['liquidations']:.0f} vs unhedged {u['liquidations']:.0f}: "
                     f"{mark(m['liquidations'] <= u['liquidations'])}")
    labels = {"static_matched": " (equal-cost static hedge)",
              "static_sized": " (same-size static hedge)"}
    for other in ("static_matched", "static_sized", "static_hedge", "vol_target"):
        if other in by and m.get("calmar") is not None and by[other].get("calmar") is not None:
            label = labels.get(other, "")
            lines.append(f"Calmar {m['calmar']:.2f} vs {other}{label} "
                         f"{by[other]['calmar']:.2f}: {mark(m['calmar'] > by[other]['calmar'])}")
    if fv and "model_beats_har" in fv:
        lines.append("beats har_policy on CVaR 95 and max drawdown, bootstrap interval "
                     f"excluding zero: {mark(fv['model_beats_har'])}")
    return lines


def period_summary(periods: dict[str, dict]) -> str:
    """Compact per-period lines: return and max drawdown of the key strategies."""
    keys = ["unhedged", "model_policy", "har_policy", "static_matched"]
    lines = [f"{'period':<26}" + "".join(f"{k:>22}" for k in keys)]
    for name, t in periods.items():
        if "strategies" not in t:
            lines.append(f"{name:<26}  {t['status']}")
            continue
        cells = []
        for k in keys:
            m = t["strategies"].get(k)
            cells.append(f"{m['total_return']:+7.1%} / {m['max_drawdown']:5.1%}".rjust(22)
                         if m else "n/a".rjust(22))
        note = "" if t["status"] == "ok" else f"  ({t['status']})"
        lines.append(f"{name:<26}" + "".join(cells) + note)
    return "\n".join(lines)


def log_to_mlflow(tracking: TrackingConfig, bt: BacktestConfig, trading: TradingConfig,
                  policy: PolicyConfig, symbol: str, horizon: int, rows: list[dict],
                  artifacts: list[Path], json_path: Path | None,
                  run_name: str | None = None) -> str:
    """One run per symbol in the backtest experiment: params, metrics per strategy, artifacts."""
    import mlflow

    from cascade_ml.models.tracking import flatten
    from cascade_ml.tracking import connect

    _, exp_id = connect(tracking, bt.experiment)
    with mlflow.start_run(experiment_id=exp_id,
                          run_name=run_name or f"backtest-{symbol}-h{horizon}") as run:
        mlflow.set_tags({"symbol": symbol, "horizon": str(horizon)})
        params = flatten("backtest", {k: v for k, v in bt.model_dump(mode="json").items()
                                      if not isinstance(v, dict | list)})
        params.update(flatten("trading", trading.model_dump(mode="json")))
        params.update(flatten("policy", {k: v for k, v in policy.model_dump(mode="json")
                                         .items() if not isinstance(v, dict | list)}))
        mlflow.log_params(params)
        skip = ("_coverage", "_share")
        for r in rows:
            mlflow.log_metrics({f"{r['strategy']}.{k}": v for k, v in r.items()
                                if isinstance(v, float) and not k.endswith(skip)})
            fv = r.get("forecast_value", {})
            mlflow.log_metrics(flatten("forecast_value", {
                span: {n: v.get("improvement") for n, v in block.items() if isinstance(v, dict)}
                for span, block in fv.items()}))
            ev = r.get("economic_value", {})
            mlflow.log_metrics(flatten("economic_value", {
                span: {k: block.get(k) for k in ("performance_fee_bp_per_year",
                                                 "realised_utility")}
                for span, block in ev.items()}))
        mlflow.log_dict(rows, "backtest.json")
        for p in artifacts:
            mlflow.log_artifact(str(p), "plots" if p.suffix == ".png" else None)
        if json_path is not None:
            mlflow.log_artifact(str(json_path))
        return run.info.run_id


@dataclass
class SymbolBacktest:
    """Everything one symbol's backtest computed (what the printers and writers read)."""

    symbol: str
    horizon: int
    data: BacktestData
    runs: dict[str, StrategyRun]
    periods: dict[str, dict]
    fv: dict[str, dict]
    frame: pd.DataFrame          # the economic-value inputs (economic_frame)
    ev: dict[str, dict]
    frontier: list[dict] | None  # frontier points (backtest.frontier.enabled)
    rows: list[dict]


def load_symbol(store: MarketStore, symbol: str, task: TaskConfig, bt: BacktestConfig,
                policy: PolicyConfig) -> BacktestData:
    """One symbol's aligned data, with the BTC/ETH proxies when the backtest allows them."""
    proxy_tiers = ({name: policy.tiers_for(name) for name in ("BTC", "ETH")}
                   if bt.proxy_hedges else None)
    return load(store, symbol, venue=bt.venue or task.venue, interval=task.interval,
                horizon=task.horizon, funding_proxy=bt.funding_proxy,
                vol_window=policy.vol_reference_window, proxy_window=policy.proxy_window,
                proxy_tiers=proxy_tiers)


def backtest_symbol(store: MarketStore, symbol: str, task: TaskConfig, bt: BacktestConfig,
                    trading: TradingConfig, policy: PolicyConfig, *,
                    frontier_in_records: bool = True) -> SymbolBacktest:
    """Simulate every strategy of one symbol and compute its tables, forecast value, economic
    value and frontier (no printing, no files): the one computation behind ``run_backtest``
    and each perp of :func:`cascade_ml.backtest.universe.run_universe_backtest`."""
    from cascade_ml.backtest.frontier import feed_dominance
    from cascade_ml.backtest.simulate_all import frontier_points

    data = load_symbol(store, symbol, task, bt, policy)
    runs = run_strategies(data, bt, policy, symbol, task.side, trading=trading)
    periods = period_tables(runs, data, bt.periods)
    fv = forecast_values(runs, data, bt)
    frame = economic_frame(runs, data, task.horizon)
    ev = economic_values({symbol: frame}, bt)
    points = (frontier_points(data, bt, policy, symbol, task.side, trading=trading, runs=runs)
              if bt.frontier.enabled else None)
    front = ({"points": points, "dominance": feed_dominance(points)}
             if points and frontier_in_records else None)
    rows = records(runs, data, symbol, task.horizon, periods, fv, ev, front)
    return SymbolBacktest(symbol, task.horizon, data, runs, periods, fv, frame, ev, points, rows)


def echo_symbol(sb: SymbolBacktest) -> None:
    """Print one symbol's tables, forecast value, economic value and targets."""
    data, rows, periods = sb.data, sb.rows, sb.periods
    typer.echo(f"{sb.symbol} h={sb.horizon}: {len(data.index)} OOS bars {data.index[0]} .. "
               f"{data.index[-1]}; forecasts on {data.forecast_coverage:.0%} of bars, funding "
               f"data on {data.funding_coverage:.0%} (other venues' funding as proxy on "
               f"{data.funding_proxy_share:.0%})")
    typer.echo("whole OOS span:")
    typer.echo(format_table(rows))
    final_rows = period_rows(rows, "final period")
    if final_rows:
        fp = periods["final period"]
        typer.echo(f"final period (untouched) {fp['start']} .. {fp['end']}:")
        typer.echo(format_table(final_rows))
    typer.echo("per period, return / max drawdown:")
    typer.echo(period_summary(periods))
    for span, block in sb.fv.items():
        typer.echo(f"forecast value ({span}): {block['verdict']}")
    echo_economic(sb.ev)
    if sb.frontier:
        from cascade_ml.backtest.frontier import feed_dominance

        echo_dominance(feed_dominance(sb.frontier), f" ({sb.symbol})")
    targets = next((r["targets"] for r in rows if r["strategy"] == "model_policy"), {})
    for span, lines in targets.items():
        for line in lines:
            typer.echo(f"  model_policy target ({span}): {line}")


def echo_dominance(dom: dict[str, dict[str, dict]], label: str = "") -> None:
    """Per feed: the share of its frontier points below / above the static curve, per risk."""
    for feed, risks in dom.items():
        cells = "; ".join(
            f"{risk} {d['dominating']}/{d['points']} below, {d['dominated']} above"
            + (f", {d['outside']} outside" if d["outside"] else "")
            for risk, d in risks.items())
        typer.echo(f"frontier{label}, {feed}-fed policy vs static hedges: {cells}")


def write_symbol_outputs(sb: SymbolBacktest, bt: BacktestConfig, trading: TradingConfig,
                         policy: PolicyConfig, side: str, out_dir: Path) -> list[Path]:
    """One symbol's plots and HTML report into ``out_dir``; returns the files written."""
    from cascade_ml.backtest.plots import frontier_figure, save_figures

    paths = model_policy_paths(sb.data, trading, policy, sb.symbol, side)
    plots = save_plots(sb.runs, sb.data, paths, out_dir, sb.symbol)
    if sb.frontier:
        plots += save_figures({"frontier": frontier_figure(sb.frontier, sb.symbol)}, out_dir,
                              sb.symbol)
    artifacts = list(plots)
    if bt.html_report:
        from cascade_ml.backtest.report import write_report

        artifacts.append(write_report(out_dir / f"{sb.symbol}_report.html", sb.symbol, sb.rows,
                                      sb.periods, sb.fv, plots, sb.data, bt, trading, policy,
                                      side))
    return artifacts


def run_backtest(store: MarketStore, symbol: str, task: TaskConfig, bt: BacktestConfig,
                 trading: TradingConfig, policy: PolicyConfig, tracking: TrackingConfig, *,
                 json_path: Path | None = None, report_dir: Path | None = None,
                 log_mlflow: bool | None = None,
                 economic: dict[str, pd.DataFrame] | None = None) -> list[dict]:
    """Backtest one symbol; prints the tables, writes JSON/plots/HTML, logs to MLflow. When
    ``economic`` is given, the symbol's economic-value windows are added to it under its name
    (for :func:`universe_economic_value`)."""
    sb = backtest_symbol(store, symbol, task, bt, trading, policy)
    if economic is not None:
        economic[symbol] = sb.frame
    echo_symbol(sb)
    if json_path is not None:
        write_json(Path(json_path), sb.rows)
    out_dir = Path(report_dir) if report_dir is not None else bt.report_dir
    artifacts = write_symbol_outputs(sb, bt, trading, policy, task.side, out_dir)
    for a in artifacts:
        if a.suffix == ".html":
            typer.echo(f"report: {a}")
    typer.echo(f"plots in {out_dir}")
    if bt.log_mlflow if log_mlflow is None else log_mlflow:
        run_id = log_to_mlflow(tracking, bt, trading, policy, symbol, task.horizon, sb.rows,
                               artifacts, json_path)
        typer.echo(f"logged to MLflow experiment '{bt.experiment}' run {run_id}")
    return sb.rows


def run_book_backtest(store: MarketStore, symbols: list[str], task: TaskConfig,
                      bt: BacktestConfig, trading: TradingConfig, policy: PolicyConfig,
                      tracking: TrackingConfig, *,
                      json_path: Path | None = None, report_dir: Path | None = None,
                      log_mlflow: bool | None = None) -> list[dict]:
    """Backtest the book: print the book and position tables, write JSON/plots/HTML, log."""
    from cascade_ml.backtest.report import positions_section, write_report

    runs, cal, periods, fv, rows = book_backtest(store, symbols, task, bt, trading, policy)
    echo_book(rows, task.horizon)
    if json_path is not None:
        write_json(Path(json_path), rows)
    out_dir = Path(report_dir) if report_dir is not None else bt.report_dir
    from cascade_ml.backtest.plots import book_figures, save_figures

    plots = save_figures(book_figures(runs, cal), out_dir, "BOOK")
    artifacts: list[Path] = list(plots)
    typer.echo(f"plots in {out_dir}")
    if bt.html_report:
        html = write_report(out_dir / "BOOK_report.html", "BOOK", rows, periods, fv, plots,
                            cal, bt, trading, policy, task.side,  # type: ignore[arg-type]
                            extra=[positions_section({n: r.position_metrics
                                                      for n, r in runs.items()})],
                            title=f"Book backtest: {', '.join(rows[0]['symbols'])}")
        artifacts.append(html)
        typer.echo(f"report: {html}")
    if bt.log_mlflow if log_mlflow is None else log_mlflow:
        run_id = log_to_mlflow(tracking, bt, trading, policy, "BOOK", task.horizon, rows, artifacts,
                               json_path, run_name=f"backtest-book-h{task.horizon}")
        typer.echo(f"logged to MLflow experiment '{bt.experiment}' run {run_id}")
    return rows


def book_backtest(store: MarketStore, symbols: list[str], task: TaskConfig, bt: BacktestConfig,
                  trading: TradingConfig, policy: PolicyConfig) -> tuple:
    """The book's runs, calendar, periods, forecast value and records (each record with the
    book's ``symbols`` and per-position metrics); no printing, no files."""
    from cascade_ml.backtest.book import load_book, run_book, run_proxy_book

    book = load_book(store, symbols, task, bt, policy)
    runs = run_book(book, bt, policy, task.side, trading=trading)
    proxy = run_proxy_book(book, bt, policy, task.side, trading=trading)
    cal = book.calendar()
    periods = period_tables(runs, cal, bt.periods)  # type: ignore[arg-type]
    fv = forecast_values(runs, cal, bt)  # type: ignore[arg-type]
    rows = records(runs, cal, "BOOK", task.horizon, periods, fv)  # type: ignore[arg-type]
    by = {r["strategy"]: r for r in rows}
    for name, run in runs.items():
        by[name]["symbols"] = list(book.symbols)
        by[name]["positions"] = {s: _clean(m) for s, m in run.position_metrics.items()}
    for rec in records(proxy or {}, cal, "BOOK", task.horizon):  # backtest.book.proxy_effectiveness
        name = rec["strategy"]
        by[name]["proxy_variant"] = {
            "same_perp_effectiveness": bt.book.proxy_effectiveness, **rec,
            "positions": {s: _clean(m) for s, m in proxy[name].position_metrics.items()}}
    return runs, cal, periods, fv, rows


def echo_book(rows: list[dict], horizon: int) -> None:
    """Print the book's tables (whole span, final period, positions) and forecast value."""
    first = rows[0]
    typer.echo(f"book {', '.join(first['symbols'])} h={horizon}: {first['bars']} common OOS "
               f"bars {first['start']} .. {first['end']}")
    typer.echo(format_table(rows))
    final_rows = period_rows(rows, "final period")
    if final_rows:
        typer.echo("final period (every symbol untouched):")
        typer.echo(format_table(final_rows))
    by = {r["strategy"]: r for r in rows}
    for name in ("model_policy", "har_policy"):
        if name in by:
            typer.echo(f"{name} positions:")
            typer.echo(position_table(by[name]["positions"]))
    variant = [r["proxy_variant"] for r in rows if "proxy_variant" in r]
    if variant:
        typer.echo(f"proxy-hedged variant (same_perp_effectiveness "
                   f"{variant[0]['same_perp_effectiveness']} on every position but BTC/ETH):")
        typer.echo(format_table(variant))
        for v in variant:
            typer.echo(f"  {v['strategy']:<15} proxy share {v['proxy_share']:.1%}, "
                       f"{v['proxy_positions']:.0f} positions by proxy, basis vol "
                       f"{_fmt(v.get('proxy_basis_vol'), '{:.1%}')}, realised R^2 "
                       f"{_fmt(v.get('proxy_realised_r2'), '{:.2f}')}, instrument switches "
                       f"{v.get('instrument_switches', 0):.0f} ("
                       f"{v.get('forced_switches', 0):.0f} forced)")
    for span, block in by.get("model_policy", {}).get("forecast_value", {}).items():
        typer.echo(f"book forecast value ({span}): {block['verdict']}")


def position_table(per: dict[str, dict]) -> str:
    """Per-position lines for the console."""
    cols = [("pnl", "pnl", "{:,.0f}"), ("return_on_allocation", "ret/alloc", "{:+.1%}"),
            ("max_drawdown", "maxDD", "{:.1%}"), ("liquidations", "liq", "{:.0f}"),
            ("stops", "stops", "{:.0f}"), ("fees_paid", "fees", "{:,.0f}"),
            ("funding_paid", "funding", "{:,.0f}"), ("mean_hedge", "hedge", "{:.0%}"),
            ("proxy_share", "proxy", "{:.0%}"), ("proxy_basis_vol", "basis", "{:.1%}")]
    lines = [f"  {'position':<10}" + "".join(f"{c[1]:>11}" for c in cols)]
    for s, m in per.items():
        cells = "".join(f"{(f.format(m[k]) if _clean(m.get(k)) is not None else 'n/a'):>11}"
                        for k, _, f in cols)
        lines.append(f"  {s:<10}{cells}")
    return "\n".join(lines)


def run_tuning(store: MarketStore, symbol: str, holdout: list[str], task: TaskConfig,
               bt: BacktestConfig, trading: TradingConfig, policy: PolicyConfig, *,
               trials: int,
               out_dir: Path | None = None) -> dict:
    """Tune the policy on ``symbol``'s development folds, then score untuned and tuned once on
    its final period and on the ``holdout`` perps (never used for tuning); write the tuned
    policy section and the scores to ``<report_dir>/policy_tuning.json``."""
    from cascade_ml.backtest.tune import OBJECTIVE, tune_policy

    def data_of(s: str) -> BacktestData:
        return load(store, s, venue=bt.venue or task.venue, interval=task.interval,
                    horizon=task.horizon, funding_proxy=bt.funding_proxy,
                    vol_window=policy.vol_reference_window, proxy_window=policy.proxy_window)

    data = data_of(symbol)
    res = tune_policy(data, bt, policy, symbol, task.side, trading=trading, trials=trials,
                      seed=bt.seed)
    typer.echo(f"objective: {OBJECTIVE}")
    typer.echo(f"tuned on {symbol} development bars {res.dev_start} .. {res.dev_end} "
               f"({res.dev_bars}), {res.trials} trials: objective {res.default_value:.3f} "
               f"untuned -> {res.best_value:.3f} tuned")
    typer.echo("tuned policy: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float)
                                            else f"{k}={v}" for k, v in res.params.items()))
    only = bt.model_copy(update={"strategies": ["unhedged", "model_policy", "har_policy",
                                                "static_matched"]})
    scores = []
    for s in [symbol, *[h for h in holdout if h != symbol]]:
        d = data if s == symbol else data_of(s)
        spans = {"final period": d.final_mask()}
        if s != symbol:
            spans["whole OOS span"] = np.ones(len(d.index), dtype=bool)
        for span, mask in spans.items():
            part = d.take(mask)
            for label, cfg in (("untuned", policy), ("tuned", res.policy)):
                runs = run_strategies(part, only, cfg, s, task.side, trading=trading)
                for name in ("model_policy", "har_policy", "static_matched"):
                    m = runs[name].metrics
                    scores.append({"symbol": s, "used_for_tuning": s == symbol, "span": span,
                                   "start": str(part.index[0]), "end": str(part.index[-1]),
                                   "policy": label, "strategy": name,
                                   **{k: _clean(m[k]) for k in ("total_return", "ann_vol",
                                                                "max_drawdown", "cvar_95",
                                                                "calmar", "upside_capture")}})
    head = (f"{'symbol':<6}{'span':<16}{'policy':<9}{'strategy':<16}{'return':>9}{'maxDD':>8}"
            f"{'CVaR95':>9}{'calmar':>8}{'up':>6}")
    typer.echo(head)
    for r in scores:
        typer.echo(f"{r['symbol']:<6}{r['span']:<16}{r['policy']:<9}{r['strategy']:<16}"
                   f"{r['total_return']:>+9.1%}{r['max_drawdown']:>8.1%}{r['cvar_95']:>+9.2%}"
                   f"{r['calmar'] if r['calmar'] is not None else float('nan'):>8.2f}"
                   f"{r['upside_capture']:>6.2f}")
    payload = {**_clean(res.summary()), "tuned_on": symbol, "holdout": holdout,
               "policy_section": res.params, "scores": scores}
    out = Path(out_dir or bt.report_dir) / "policy_tuning.json"
    write_json(out, payload)
    typer.echo(f"tuned policy section and scores: {out} (copy 'policy_section' into the "
               "pipeline's policy section to use it)")
    return payload


def _fmt(v: float | None, spec: str) -> str:
    return "n/a" if v is None else spec.format(v)
