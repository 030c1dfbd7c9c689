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
                    "turnover": ".1f", "mean hedge": ".0%", "mean exposure": ".2f",
                    "vol / capped": X2, "upside / capped": X2, "downside / capped": X2,
                    "up/down / capped": X2}
COLUMNS = [("total_return", "return"), ("ann_vol", "ann. vol"), ("max_drawdown", "max DD"),
           ("cvar_95", "CVaR 95 (daily)"), ("calmar", "Calmar"),
           ("upside_capture", "upside capture"), ("downside_capture", "downside capture"),
           ("vol_ratio_capped", "vol / capped"), ("upside_capture_capped", "upside / capped"),
           ("downside_capture_capped", "downside / capped"),
           ("capture_ratio_capped", "up/down / capped"), ("liquidations", "liquidations"),
           ("stops", "stops"), ("fees_paid", "fees"),
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
        "Captures against unhedged: the bot's full-size position; against capped: "
        "capped_unhedged, the policy's own size-capped position without its hedge (each "
        "policy row against its own feed's), so they measure the hedge alone. "
        "*_policy rows: one policy fed by the models, HAR (+ climatological cascade "
        "probability), EWMA, or the realised future (oracle); static_matched holds the model "
        "policy's average leverage and hedge fixed; static_sized follows the model policy's "
        "own size-capped position with its hedge held at that average (the hedge alone).")]))
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
    front = next((r.get("frontier") for r in rows if r["strategy"] == "model_policy"), None)
    if front:
        sections.append(Section("Efficiency frontier", [
            dominance_table(front["dominance"], "Policy curves against the static hedges"),
            frontier_table(front["points"])]))
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
                                                  "positions", "frontier")
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


FRONTIER_FORMATS = {"cost / yr": "+.2%", "fees": "+.2%", "funding": "+.2%",
                    "upside given up": "+.2%", "CVaR 95 loss": ".2%", "ann. vol": ".1%",
                    "max DD": ".1%", "mean hedge": ".0%"}


def frontier_table(points: list[dict], title: str = "Frontier points") -> Table:
    """Every frontier point: its cost parts and its three risks."""
    recs = [{"curve": p["feed"] + "-fed policy" if p["kind"] == "policy" else "static",
             "point": p["label"], "cost / yr": p["cost"], "fees": p["fees"],
             "funding": p["funding"], "upside given up": p["upside_given_up"],
             "CVaR 95 loss": p["cvar_95_loss"], "ann. vol": p["ann_vol"],
             "max DD": p["max_drawdown"], "mean hedge": p["mean_hedge"]} for p in points]
    return Table(recs, title=title, formats=FRONTIER_FORMATS,
                 note="Cost per year as a share of mean equity: fees + funding (net, the whole "
                      "position) + the hedge leg's loss on the days the perp rose. Static points "
                      "hold the model policy's mean leverage at a fixed hedge ratio.")


def dominance_table(dom: dict[str, dict[str, dict]], title: str) -> Table:
    """Per feed and risk: points below (dominating) / above (dominated) the static curve."""
    recs = [{"feed": feed, "risk": risk, "points": d["points"], "below static": d["dominating"],
             "above static": d["dominated"], "outside its cost range": d["outside"],
             "share below": d["share_dominating"], "share above": d["share_dominated"]}
            for feed, risks in dom.items() for risk, d in risks.items()]
    return Table(recs, title=title, formats={"share below": ".0%", "share above": ".0%"},
                 note="A point is below the static curve when its risk is lower than the static "
                      "hedges' at the same cost (linear between static points): there the "
                      "forecast buys protection more cheaply than a fixed hedge.")


PERP_FORMATS = {"CVaR m": PCT2, "CVaR har": PCT2, "CVaR static": PCT2, "CVaR oracle": PCT2,
                "DD m": ".1%", "DD static": ".1%", "DD oracle": ".1%", "vol / capped": X2,
                "up / capped": X2, "down / capped": X2, "utility m": ".3f",
                "utility har": ".3f", "fee g1 bp/yr": "+.0f", "CI low": "+.0f",
                "CI high": "+.0f", "oracle gain, utility": "+.2f",
                "oracle gain, CVaR": "+.2f", "frontier below": ".0%", "frontier above": ".0%"}
PERP_LABELS = {"cvar_model": "CVaR m", "cvar_har": "CVaR har", "cvar_static": "CVaR static",
               "cvar_oracle": "CVaR oracle", "maxdd_model": "DD m", "maxdd_static": "DD static",
               "maxdd_oracle": "DD oracle", "vol_ratio_capped": "vol / capped",
               "up_capped": "up / capped", "down_capped": "down / capped",
               "utility_model": "utility m", "utility_har": "utility har",
               "fee_g1": "fee g1 bp/yr", "fee_g1_low": "CI low", "fee_g1_high": "CI high",
               "capture_util_g1": "oracle gain, utility", "capture_cvar": "oracle gain, CVaR",
               "frontier_below": "frontier below", "frontier_above": "frontier above"}


def write_universe_report(out_dir: Path, doc: dict, bt: BacktestConfig, trading: TradingConfig,
                          policy: PolicyConfig, side: str = "long") -> list[Path]:
    """The universe's page (per-perp table, pooled tables, economic value, frontier figure and
    dominance, the book) and its frontier figure; returns [figure..., page]."""
    from cascade_ml.backtest.plots import frontier_figure, save_figures
    from cascade_ml.backtest.run import target_report

    files: list[Path] = []
    summary: list = [Text(f"{len(doc['symbols'])} perps, horizon {doc['horizon']} bars; "
                          f"left out of every panel fit: {', '.join(doc['left_out']) or 'none'}."
                          f" Run in {doc['seconds']:.1f} s on {doc['workers']} worker(s).")]
    for g, block in doc["economic_value"]["pooled"].items():
        for span, ev in block.items():
            summary.append(Text(f"Economic value pooled over {g} ({span}): {ev['verdict']}",
                                kind="verdict"))
    for g, recs in doc["pooled"].items():
        lines = target_report(recs)
        if lines:
            summary.append(Text(f"Targets for the model policy, pooled over {g}:"))
            summary.append(Text(lines, kind="ul"))
    count_lines = [f"{pair}: " + ", ".join(f"{k} {c['better']}/{c['of']}"
                                           for k, c in block.items())
                   for pair, block in doc["counts"]["universe"].items()]
    summary += [Text("Perps where the first strategy beats the second (universe):"),
                Text(count_lines, kind="ul")]
    wt = doc.get("window_targets", {}).get("pooled", {}).get("universe", {})
    if wt:
        from cascade_ml.backtest.windows import summary_line

        summary += [Text("Issue 16's first target on windows as long as the final period "
                         "(static_matched_*: the equal-cost static; static_sized_*: the same "
                         "main leg with the hedge at its mean):"),
                    Text([summary_line(pair, block) for pair, block in wt.items()], kind="ul")]
    sections = [Section("Summary", summary)]
    recs = [{"perp": t["symbol"] + (" (left out)" if t["left_out"] else ""), "bars": t["bars"],
             **{label: t.get(k) for k, label in PERP_LABELS.items()}} for t in doc["perp_table"]]
    sections.append(Section("Per perp (whole out-of-sample span)", [Table(
        recs, formats={**PERP_FORMATS, "bars": ",.0f"},
        note="m: model-fed policy; static: static_matched (equal-cost static hedge); oracle: "
             "oracle-fed policy. vol / up / down against capped_unhedged (the model policy's "
             "position without its hedge). Utility: BHHP realised utility share of the "
             "forecasts. Fee: HAR-fed -> model-fed policy, gamma 1, with its 95 % interval. "
             "Oracle gain: share of the oracle's gain over static captured by the model feed. "
             "Frontier: share of the model-fed curve's points below / above the static curve "
             "(CVaR 95 loss).")]))
    for g, recs_g in doc["pooled"].items():
        sections.append(Section(f"Pooled over {g}", [strategy_table(
            recs_g, "Equal-weight basket of the perps' accounts (daily returns)",
            "Sums: liquidations, stops, fees, funding over every perp's account; means: "
            "turnover, hedge, exposure.")]))
    ev_items = []
    for g, block in doc["economic_value"]["pooled"].items():
        t = economic_value_table(block)
        t.title = f"{t.title} (pooled over {g})"
        ev_items.append(t)
    if ev_items:
        sections.append(Section("Economic value, pooled", ev_items))
    front = doc.get("frontier")
    if front:
        pts = front["pooled"]["points"]
        files += save_figures({"frontier": frontier_figure(pts, "universe (mean over perps)")},
                              out_dir, "UNIVERSE")
        sections.append(Section("Efficiency frontier", [
            Figure(files[-1].read_bytes(), "Mean over perps of each point's coordinates. "
                   + CAPTIONS["frontier"]),
            dominance_table(front["pooled"]["dominance"],
                            "On the mean-over-perps curves"),
            dominance_table(front["pooled"]["over_every_perp"],
                            "Over every (perp, variant) point, each against its perp's static "
                            "curve"),
            frontier_table(pts, "Frontier points, mean over perps")]))
    if doc.get("book"):
        book = doc["book"]
        sections.append(Section("One book (every perp on one account)", [
            strategy_table(book, f"{book[0]['start'][:10]} .. {book[0]['end'][:10]}, "
                           f"{book[0]['bars']} common bars")]))
        sections.append(positions_section({r["strategy"]: r["positions"] for r in book
                                           if r["strategy"] in ("model_policy", "har_policy")}))
    sections.append(Section("Assumptions", [Text([
        f"Bot per perp: {trading.leverage:g}x {side} on an isolated margin of "
        f"{trading.margin_fraction:.0%} of its own account; size cap "
        f"{policy.max_risk_fraction:.0%} of equity on a {policy.size_k_sigma:g}-sigma adverse "
        f"move ({'enforced' if bt.enforce_size_cap else 'not enforced'}).",
        "unhedged: the bot's full position; capped_unhedged: the policy's own size-capped "
        "position with hedge 0 (the benchmark the hedge alone is judged against).",
        "Every forecast is out of sample; the oracle reads the realised future.",
        f"Bootstrap: {bt.bootstrap_reps} stationary resamples of days, one draw applied to "
        "every perp.",
    ], kind="ul")]))
    files.append(write_html(out_dir / "UNIVERSE_report.html", "Universe backtest", sections,
                            subtitle=f"{len(doc['symbols'])} perps"))
    return files
