"""The backtest's HTML report: ablation, forecast value, targets, regimes, figures, assumptions."""

from __future__ import annotations

from pathlib import Path

from cascade_ml.backtest.config import BacktestConfig
from cascade_ml.backtest.data import BacktestData
from cascade_ml.backtest.plots import CAPTIONS
from cascade_ml.policy.config import PolicyConfig
from cascade_ml.report import Figure, Section, Table, Text, write_html
from cascade_ml.trading.config import TradingConfig

PCT, PCT2, X2 = "+.1%", "+.2%", ".2f"
STRATEGY_FORMATS = {"return": PCT, "ann. vol": ".1%", "max DD": ".1%", "CVaR 95 (daily)": PCT2,
                    "Calmar": X2, "upside capture": X2, "downside capture": X2,
                    "liquidations": ".0f", "stops": ".0f", "fees": ",.0f", "funding": ",.0f",
                    "turnover": ".1f", "mean hedge": ".0%", "mean exposure": ".2f"}
COLUMNS = [("total_return", "return"), ("ann_vol", "ann. vol"), ("max_drawdown", "max DD"),
           ("cvar_95", "CVaR 95 (daily)"), ("calmar", "Calmar"),
           ("upside_capture", "upside capture"), ("downside_capture", "downside capture"),
           ("liquidations", "liquidations"), ("stops", "stops"), ("fees_paid", "fees"),
           ("funding_paid", "funding"), ("turnover", "turnover"), ("mean_hedge", "mean hedge"),
           ("mean_exposure", "mean exposure")]
KEY = ("model_policy", "har_policy")


def strategy_table(rows: list[dict], title: str, note: str | None = None) -> Table:
    """Strategies as rows, the metrics the issue lists as columns (absent ones dropped)."""
    cols = [(k, label) for k, label in COLUMNS if any(r.get(k) is not None for r in rows)]
    data = [{"strategy": r["strategy"], **{label: r.get(k) for k, label in cols}} for r in rows]
    return Table(data, title=title, note=note, formats=STRATEGY_FORMATS, highlight=KEY)


def forecast_value_table(fv: dict[str, dict]) -> Table:
    recs = []
    for span, block in fv.items():
        for name in ("cvar_95", "max_drawdown", "calmar"):
            if name not in block:
                continue
            m = block[name]
            state = ("models better" if m["model_better"] else
                     "HAR better" if m["har_better"] else "no difference shown")
            recs.append({"span": span, "metric": name, "model-fed": m["model"],
                         "HAR-fed": m["har"], "improvement": m["improvement"],
                         "95% CI low": m["ci_low"], "95% CI high": m["ci_high"],
                         "reading": state})
    fmt = {k: "+.4f" for k in ("model-fed", "HAR-fed", "improvement", "95% CI low",
                               "95% CI high")}
    blocks = {b.get("block_days") for b in fv.values()}
    return Table(recs, title="Forecast value: model-fed minus HAR-fed policy", formats=fmt,
                 note="Daily returns; improvement > 0 means the models did better (for max "
                      "drawdown: a smaller drawdown). Stationary bootstrap (arch), mean block "
                      f"{'/'.join(str(b) for b in blocks)} days, resampling both strategies' "
                      "days together.")


def economic_value_table(ev: dict[str, dict]) -> Table:
    """Realised utility (model minus HAR) and the HAR -> model performance fee, per span."""
    recs = []
    for span, block in ev.items():
        ru = block.get("realised_utility")
        if not ru:
            continue
        items = [("realised utility, model minus HAR", ru["model_minus_har"])]
        items += [(f"fee HAR -> model, bp/yr, gamma {k.removeprefix('gamma_')}", m)
                  for k, m in block["performance_fee_bp_per_year"].items()
                  if k.startswith("gamma_")]
        for name, m in items:
            recs.append({"span": span, "measure": name, "value": m["value"],
                         "95% CI low": m["ci_low"], "95% CI high": m["ci_high"],
                         "reading": "models better" if m["model_better"] else
                         "HAR better" if m["har_better"] else "no difference shown"})
    return Table(recs, title="Economic value: what switching from HAR-fed to model-fed is worth",
                 formats={k: "+.4g" for k in ("value", "95% CI low", "95% CI high")},
                 note="Realised utility: share of the perfect forecast's utility for a "
                      "volatility-targeting investor, 2 sqrt(RV/F) - RV/F on non-overlapping "
                      "H-bar windows (Bollerslev et al. 2018). Fee: the annualised return an "
                      "investor with relative risk aversion gamma would give up to switch "
                      "(Fleming, Kirby & Ostdiek 2001). Stationary bootstrap of days.")


def write_report(path: Path, symbol: str, rows: list[dict], periods: dict[str, dict],
                 fv: dict[str, dict], plots: list[Path], data: BacktestData,
                 bt: BacktestConfig, trading: TradingConfig, policy: PolicyConfig,
                 side: str = "long", extra: list[Section] | None = None,
                 title: str | None = None) -> Path:
    """Assemble and write the report; returns its path."""
    from cascade_ml.backtest.run import period_rows

    sections: list[Section] = []
    summary: list = []
    for span, block in fv.items():
        kind = "good" if block.get("model_beats_har") else "verdict"
        summary.append(Text(f"Forecast value ({span}): {block['verdict']}", kind=kind))
    ev = next((r.get("economic_value", {}) for r in rows if r["strategy"] == "model_policy"),
              {})
    for span, block in ev.items():
        summary.append(Text(f"Economic value ({span}): {block['verdict']}", kind="verdict"))
    targets = next((r.get("targets", {}) for r in rows if r["strategy"] == "model_policy"), {})
    for span, lines in targets.items():
        summary.append(Text(f"Targets for the model policy ({span}):"))
        summary.append(Text(lines, kind="ul"))
    sections.append(Section("Summary", summary))

    sections.append(Section("Strategies over the whole out-of-sample span", [strategy_table(
        rows, f"{data.index[0]:%Y-%m-%d} .. {data.index[-1]:%Y-%m-%d}, {len(data.index)} bars",
        "Net of fees and funding. Fees and funding in quote currency (positive = paid); "
        "turnover = traded notional / mean equity; mean exposure = main-leg notional / equity. "
        "*_policy rows: one policy fed by the models, HAR (+ climatological cascade "
        "probability), EWMA, or the realised future (oracle); static_matched holds the model "
        "policy's average leverage and hedge fixed.")]))
    final = period_rows(rows, "final period")
    if final:
        fp = periods["final period"]
        sections.append(Section("Final period (untouched by every choice)", [strategy_table(
            final, f"{fp['start'][:10]} .. {fp['end'][:10]}",
            "Sliced from the whole-span runs: the state (equity, position) is carried in; "
            "fees, funding and turnover are those accrued inside the period.")]))
    if fv:
        sections.append(Section("Do the forecasts make hedging better?",
                                [forecast_value_table(fv)]
                                + ([economic_value_table(ev)] if ev else [])))
    regime_items: list = []
    for name, t in periods.items():
        if name in ("final period",):
            continue
        if "strategies" not in t:
            regime_items.append(Text(f"{name}: {t['status']}."))
            continue
        recs = [{"strategy": s, **m} for s, m in t["strategies"].items()]
        note = None if t["status"] == "ok" else t["status"]
        regime_items.append(strategy_table(
            recs, f"{name}: {t['start'][:10]} .. {t['end'][:10]}", note))
    sections.append(Section("Regimes", regime_items))
    sections += extra or []
    by_name = {p.stem.removeprefix(f"{symbol}_"): p for p in plots}
    sections.append(Section("Figures", [Figure(by_name[n].read_bytes(), CAPTIONS.get(n))
                                        for n in ("equity", "ablation", "drawdown", "policy",
                                                  "positions")
                                        if n in by_name]))
    sections.append(Section("Assumptions", [Text([
        f"Bot: {trading.leverage:g}x {side} on an isolated margin of "
        f"{trading.margin_fraction:.0%} of equity; cut back at any close where leverage is "
        f"above its cap, re-levered up only when more than {trading.leverage_tolerance:.0%} "
        f"below it; fees {policy.trade_cost:.3%} per traded notional.",
        f"Policy strategies: size cap {'enforced' if bt.enforce_size_cap else 'not enforced'} "
        f"({policy.max_risk_fraction:.0%} of equity lost on a {policy.size_k_sigma:g}-sigma "
        f"adverse move), protective stop {'honoured' if trading.stops else 'ignored'} "
        f"(cooldown {trading.stop_cooldown_bars} bars), vol reference {policy.vol_reference}.",
        f"Funding: data on {data.funding_coverage:.0%} of bars, another venue's funding as a "
        f"proxy on {data.funding_proxy_share:.0%}.",
        "Every forecast is out of sample (walk-forward folds, then the final period); the "
        "oracle reads the realised future and is a reference, not a strategy.",
    ], kind="ul")]))
    return write_html(path, title or f"{symbol} backtest: hedging policy vs forecasts", sections,
                      subtitle=f"{len(data.index)} OOS bars, {data.index[0]} .. "
                               f"{data.index[-1]}")


POSITION_FORMATS = {"pnl": ",.0f", "return on allocation": PCT, "ann. vol": ".1%",
                    "max DD": ".1%", "CVaR 95 (daily)": PCT2, "liquidations": ".0f",
                    "stops": ".0f", "fees": ",.0f", "funding": ",.0f", "mean hedge": ".0%",
                    "proxy share": ".0%", "basis vol": ".1%", "proxy R^2": ".2f"}
POSITION_COLUMNS = [("pnl", "pnl"), ("return_on_allocation", "return on allocation"),
                    ("ann_vol", "ann. vol"), ("max_drawdown", "max DD"),
                    ("cvar_95", "CVaR 95 (daily)"), ("liquidations", "liquidations"),
                    ("stops", "stops"), ("fees_paid", "fees"), ("funding_paid", "funding"),
                    ("mean_hedge", "mean hedge"), ("proxy_share", "proxy share"),
                    ("proxy_basis_vol", "basis vol"), ("proxy_realised_r2", "proxy R^2")]


def positions_section(positions: dict[str, dict[str, dict]]) -> Section:
    """Per strategy, one row per position of the book."""
    tables = []
    for name, per in positions.items():
        recs = [{"position": s, **{label: m.get(k) for k, label in POSITION_COLUMNS}}
                for s, m in per.items()]
        tables.append(Table(recs, title=name, formats=POSITION_FORMATS))
    return Section("Positions", [Text(
        "Each position's P&L on its allocation (initial equity / positions), net of its fees "
        "and funding. Basis vol: annualised vol of r_perp - beta r_proxy on the bars hedged "
        "with a BTC/ETH proxy; proxy R^2: the share of the perp's variance that hedge "
        "removed there (n/a: never proxy-hedged)."), *tables])
