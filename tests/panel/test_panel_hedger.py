"""Skill where it matters to a hedger: the weekly regime rule at its edges, alert precision at a
chosen bar rate by hand, the alert threshold never read from the final period, SHAP shares per
family, and the old/new table from two evaluation documents (also through the CLI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from cascade_ml.errors import CascadeError
from cascade_ml.panel.attribution import input_families, shap_family_shares
from cascade_ml.panel.compare import compare_docs, format_compare
from cascade_ml.panel.config import RegimeRule
from cascade_ml.panel.evaluate import time_folds
from cascade_ml.panel.fold import run_fold
from cascade_ml.panel.page import write_page
from cascade_ml.panel.regimes import alert_scores, alert_threshold, weekly_regimes
from cascade_ml.panel.report import score_panel

HOUR = pd.Timedelta("1h")
MONDAY = pd.Timestamp("2024-01-01", tz="UTC")  # a Monday
RULE = RegimeRule(crash_share=0.5, crash_return=-0.15, trend_return=0.10, min_symbols=4)


def weeks_frame(week_returns: list[float], cascade_hits: list[int], n_sym: int = 4,
                drop_24h: list[float] | None = None) -> pd.DataFrame:
    """``n_sym`` symbols, one week per entry: each symbol's hourly returns sum to the week's
    return (spread evenly), ``cascade_hits`` symbols carry a cascade label at the week's hour
    50, and ``drop_24h`` adds a drop of that log size spread over hours 100-123 (taken back
    over hours 124-147, so the week's return is unchanged)."""
    rows = []
    for w, (ret, hits) in enumerate(zip(week_returns, cascade_hits, strict=True)):
        for h in range(168):
            ts = MONDAY + pd.Timedelta(weeks=w) + h * HOUR
            for s in range(n_sym):
                r = ret / 168
                drop = (drop_24h or [0.0] * len(week_returns))[w]
                if 100 <= h < 124:
                    r += drop / 24
                elif 124 <= h < 148:
                    r -= drop / 24
                rows.append({"timestamp": ts, "symbol": f"S{s}", "raw_ret_1h": r,
                             "cascade": float(h == 50 and s < hits)})
    return pd.DataFrame(rows)


def test_regime_rule_at_its_edges():
    """Week by week: calm; 2 of 4 symbols in a cascade at one hour (share 0.5 = the rule):
    crash; 1 of 4 (0.25): not; weekly return +0.10 (at the trend edge): trend; +0.09: calm;
    -0.12 over the week: trend (down), a 24-bar drop of -0.15: crash, of -0.14: not."""
    frame = weeks_frame([0.0, 0.0, 0.0, 0.1001, 0.09, -0.12, 0.0, 0.0],
                        [0, 2, 1, 0, 0, 0, 0, 0],
                        drop_24h=[0, 0, 0, 0, 0, 0, -0.1501, -0.14])
    got = weekly_regimes(frame, RULE)["regime"].tolist()
    assert got == ["calm", "crash", "calm", "trend", "calm", "trend", "crash", "calm"]
    # with fewer labelled symbols than min_symbols an hour's share does not count
    assert weekly_regimes(frame, RULE.model_copy(update={"min_symbols": 5})
                          )["regime"].iloc[1] == "calm"


def test_alert_precision_and_recall_by_hand():
    """Ten bars, probabilities 0.1 .. 1.0, events on the bars at 0.3, 0.9 and 1.0. The top 20 %
    threshold is the 0.8 quantile = 0.82: bars 0.9 and 1.0 alert, both events: precision 1,
    recall 2/3, lift 1 / 0.3."""
    p = np.arange(1, 11) / 10
    y = np.array([0, 0, 1, 0, 0, 0, 0, 0, 1, 1], float)
    thr = alert_threshold(p, 0.2)
    assert thr == pytest.approx(0.82)
    got = alert_scores(y, p, thr)
    assert got["alerts"] == 2 and got["alert_rate"] == pytest.approx(0.2)
    assert got["precision"] == pytest.approx(1.0)
    assert got["recall"] == pytest.approx(2 / 3)
    assert got["lift"] == pytest.approx(1 / 0.3)
    # one bar more alerted (threshold just under 0.8): precision 2/3
    assert alert_scores(y, p, 0.79)["precision"] == pytest.approx(2 / 3)


@pytest.fixture(scope="module")
def two_folds(small_panel, panel_cfg):
    """The first walk-forward fold and the final fold of the small panel."""
    folds = time_folds(small_panel, panel_cfg)
    outs = [run_fold(f, small_panel.frame, small_panel.inputs, panel_cfg, 24, bar=HOUR,
                     keep=f is folds[-1]) for f in (folds[0], folds[-1])]
    return pd.concat([o for o, _ in outs]).sort_index(), outs[-1][1]


def test_alert_threshold_is_set_on_the_walk_forward_only(small_panel, panel_cfg, two_folds,
                                                        tmp_path):
    """Final-period probabilities all set to 0.99: the threshold is unchanged, and every final
    bar alerts (alert share 1); the walk-forward's regimes and alerts are in the document and
    on its page."""
    oos, _ = two_folds
    doc = score_panel(oos, small_panel.frame, panel_cfg, 24)
    final = oos["fold"] == panel_cfg.n_folds
    moved = score_panel(oos.assign(cascade_prob=np.where(final, 0.99, oos["cascade_prob"])),
                        small_panel.frame, panel_cfg, 24)
    assert doc["alert"]["threshold"] == moved["alert"]["threshold"] < 0.99
    assert moved["panel"]["final"]["alert"]["universe"]["alert_rate"] == 1.0
    wf = doc["panel"]["walk_forward"]["alert"]["universe"]["alert_rate"]
    assert 0.04 < wf < 0.06  # top 5 % of the bars it was set on
    regimes = doc["panel"]["final"]["regimes"]
    assert set(regimes) == {"calm", "trend", "crash"}
    assert sum(r["rows"] for r in regimes.values()) == sum(
        doc["per_symbol"][s]["final"]["rows"] for s in doc["per_symbol"]
        if "final" in doc["per_symbol"][s])
    near = doc["per_symbol"]["NEAR"]["final"]["regimes"]
    assert {"calm", "trend", "crash"} == set(near)
    page = write_page(doc, tmp_path / "evaluation.html", old=moved).read_text()
    assert "By regime" in page and "Period: final" in page and "Old (first document)" in page


def test_shap_shares_follow_the_input_that_drives_the_target():
    """A booster on y = 3 * rv_24h-twin + noise: the volatility family takes most of the
    share; shares sum to 1."""
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"d": rng.normal(size=2000), "funding_8h": rng.normal(size=2000),
                      "mkt_median_d": rng.normal(size=2000)})
    y = 3 * x["d"] + 0.1 * rng.normal(size=2000)
    booster = lgb.train({"verbose": -1, "num_threads": 1, "seed": 0},
                        lgb.Dataset(x.to_numpy(np.float32), y), 30)
    fams = input_families(list(x.columns), ["BTC", "ETH"])
    assert fams == {"d": "volatility", "funding_8h": "funding", "mkt_median_d": "market"}
    got = shap_family_shares(booster, x, fams)
    assert sum(got["share"].values()) == pytest.approx(1.0)
    assert got["share"]["volatility"] > 0.9
    assert next(iter(got["top_inputs"])) == "d"


def _doc(ratios: dict[str, float], left_out: list[str], rows: int = 100) -> dict:
    blocks = {s: {"final": {"rows": rows, "volatility": {
        "qlike_ratio_vs_best": r, "qlike_ratio_vs": {"har": r + 0.01},
        "utility_gain_vs_har": 0.001}, "cascade": {"pr_auc_over_base": 2.0,
                                                    "model": {"roc_auc": 0.7}}}}
        for s, r in ratios.items()}
    return {"per_symbol": blocks, "holdout_symbols": left_out, "panel": {"final": {}}}


def test_old_new_table_by_hand(tmp_path):
    """Old ratios 1.00/0.98/1.02, new 0.95/0.97/- (C missing in the new one): per symbol both,
    the median over the symbols both scored: old (1.00 + 0.98)/2, new (0.95 + 0.97)/2."""
    old = _doc({"A": 1.00, "B": 0.98, "C": 1.02}, ["C"])
    new = _doc({"A": 0.95, "B": 0.97}, [])
    table = compare_docs(old, new, "final")
    assert table.loc["A", "vs_best_old"] == 1.00 and table.loc["A", "vs_best_new"] == 0.95
    assert np.isnan(table.loc["C", "vs_best_new"]) and bool(table.loc["C", "left_out"])
    assert table.loc["median", "vs_best_old"] == pytest.approx(0.99)
    assert table.loc["median", "vs_best_new"] == pytest.approx(0.96)
    assert table.loc["A", "vs_har_new"] == pytest.approx(0.96)
    text = format_compare(table, "final")
    assert "1.000->0.950" in text and "*C" in text
    with pytest.raises(CascadeError, match="no period 'crash_2022'"):
        compare_docs(old, new, "crash_2022")
    # the CLI prints the same table and refuses a file that is not an evaluation, by path
    a, b, bad = tmp_path / "old.json", tmp_path / "new.json", tmp_path / "bad.json"
    a.write_text(json.dumps(old))
    b.write_text(json.dumps(new))
    bad.write_text("{}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    cli = [sys.executable, "-c", "from cascade_ml.cli.main import main; main()", "panel",
           "compare"]
    ok = subprocess.run([*cli, str(a), str(b), "--period", "final"], capture_output=True,
                        text=True, env=env, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "1.000->0.950" in ok.stdout
    err = subprocess.run([*cli, str(a), str(bad)], capture_output=True, text=True, env=env,
                         timeout=120)
    assert err.returncode != 0
    assert "bad.json" in err.stdout + err.stderr
