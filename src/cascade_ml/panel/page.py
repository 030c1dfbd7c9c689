"""The panel evaluation as one HTML page (``reports/panel/evaluation.html``): per period the
groups against the targets, the regimes a hedger cares about (calm, trend, crash weeks), the
alert-rate precision, the adverse quantiles' coverage, per-symbol ratios by regime, SHAP per
feature family, and optionally the old/new table of ``panel.compare``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cascade_ml.panel.compare import compare_docs
from cascade_ml.panel.regimes import REGIMES
from cascade_ml.panel.report import periods, regime_rows
from cascade_ml.report import Section, Table, Text, write_html

F3 = ".3f"


def _groups(doc: dict, period: str) -> list[dict]:
    out = []
    for group in ("universe", "core", "left_out"):
        s = doc["panel"][period].get(group)
        if not s:
            continue
        cas = s.get("cascade") or {}
        alert = doc["panel"][period].get("alert", {}).get(group, {})
        out.append({"group": group, "symbols": s["symbols"],
                    "median vs best": s["median_qlike_ratio"],
                    "above 1": len(s["symbols_above_1"]),
                    "median vs HAR": s.get("median_qlike_ratio_vs_har"),
                    "PR-AUC/base": cas.get("pr_auc_over_base"),
                    "ROC": cas.get("model", {}).get("roc_auc"),
                    "alert precision": alert.get("precision"), "alert recall": alert.get("recall"),
                    "alert lift": alert.get("lift")})
    return out


def _by_symbol(doc: dict, period: str) -> pd.DataFrame:
    recs = []
    for sym, blocks in doc["per_symbol"].items():
        b = blocks.get(period, {})
        if "volatility" not in b:
            continue
        rec = {"symbol": ("* " if sym in doc["holdout_symbols"] else "") + sym,
               "all": b["volatility"]["qlike_ratio_vs_best"],
               "best": b["volatility"]["best_baseline"]}
        for r in REGIMES:
            reg = b.get("regimes", {}).get(r, {})
            rec[r] = reg.get("volatility", {}).get("qlike_ratio_vs_best")
            rec[f"{r} q99 cov"] = reg.get("adverse", {}).get("q99", {}).get("coverage_model")
        recs.append(rec)
    return pd.DataFrame(recs).set_index("symbol") if recs else pd.DataFrame()


def sections(doc: dict, old: dict | None = None) -> list[Section]:
    rule = doc.get("regime_rule", {})
    alert = doc.get("alert", {})
    out = [Section("How to read this", [Text([
        "QLIKE ratios are the served forecast's over the best per-period baseline (ex post, "
        "among panel.baselines: the strong HARs har_roll and panel_har_roll included when "
        "listed); below 1 is better.",
        f"Regimes are ISO weeks from realised outcomes (evaluation only): crash = some hour "
        f"with at least {rule.get('crash_share', float('nan')):.0%} of the labelled symbols "
        f"(>= {rule.get('min_symbols')}) in a cascade, or some hour whose median 24-bar log "
        f"return is at or below {rule.get('crash_return', 0):+.0%}; "
        f"trend = median weekly log return beyond +-{rule.get('trend_return', 0):.0%}; calm = "
        f"the rest. Weeks over the panel: {rule.get('weeks', {})}.",
        f"Cascade alerts: the bars with probability >= {alert.get('threshold', float('nan')):.4f}"
        f", the top {alert.get('rate', float('nan')):.0%} of the walk-forward's out-of-sample "
        "bars (chosen there, never on the final or held-out periods)."])])]
    for period in periods(doc):
        items = [Table(_groups(doc, period), title="Groups", formats={
            k: F3 for k in ("median vs best", "median vs HAR", "PR-AUC/base", "ROC",
                            "alert precision", "alert recall", "alert lift")}),
                 Table(regime_rows(doc, period), title="By regime (pooled over symbols)",
                       formats={"vs_best": F3, "vs_best_left_out": F3, "vs_har": F3,
                                "vs_har_roll": F3, "vs_panel_har_roll": F3, "vs_ewma": F3,
                                "vs_naive": F3, "vs_garch": F3, "q95_cov": F3, "q99_cov": F3,
                                "q95_cov_base": F3, "q99_cov_base": F3, "q95_pinball": F3,
                                "q99_pinball": F3, "alert_precision": F3, "alert_recall": F3,
                                "alert_share": F3, "base_rate": F3}, highlight=("crash",))]
        per = _by_symbol(doc, period)
        if len(per):
            items.append(Table(per, title="QLIKE / best baseline per symbol and regime "
                               "(* left out); adverse q99 coverage", formats={
                                   c: F3 for c in per.columns if c != "best"}))
        out.append(Section(f"Period: {period}", items))
    att = doc.get("attribution")
    if att:
        recs = [{"family": f, **{m: att[m]["share"].get(f) for m in
                                 ("volatility_correction", "cascade")}}
                for f in dict.fromkeys([*att["volatility_correction"]["share"],
                                        *att["cascade"]["share"]])]
        out.append(Section("SHAP share per feature family (final period, pooled)", [
            Text("Mean |SHAP| (LightGBM pred_contrib) per input summed by family over all "
                 "inputs' sum; the volatility model is the tree correction to the pooled HAR."),
            Table(recs, formats={"volatility_correction": ".1%", "cascade": ".1%"})]))
    if old is not None:
        items = []
        for period in ("walk_forward", "final"):
            if period in old.get("panel", {}) and period in doc["panel"]:
                items.append(Table(compare_docs(old, doc, period), title=period,
                                   formats={"left_out": str}))
        out.append(Section("Old (first document) vs this evaluation, per symbol", items))
    return out


def write_page(doc: dict, path: str | Path, old: dict | None = None) -> Path:
    """The evaluation page, written atomically."""
    return write_html(path, "Panel evaluation", sections(doc, old),
                      subtitle=f"{len(doc.get('symbols', []))} symbols, horizon "
                               f"{doc.get('horizon')} bars")
