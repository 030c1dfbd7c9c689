"""The evaluation report: written by train and evaluate, numbers equal to the metrics, figures
inline, logged to MLflow, and a reliability diagram zoomed to the probabilities in use.

One tiny train run (real NEAR candles, 2 folds, few trees, one thread) per module.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from conftest import near_store

from cascade_ml.data.store import MarketStore
from cascade_ml.forecasting.pyfunc import log_forecast_model
from cascade_ml.models.config import ModelConfig
from cascade_ml.models.dataset import load_dataset
from cascade_ml.models.plots import reliability, reliability_bins
from cascade_ml.models.report import REPORT_FILE, report_path
from cascade_ml.models.train import TrainReport, log_evaluation, train_symbol
from cascade_ml.tracking import TrackingConfig, connect

TINY = {"n_folds": 2, "lgbm": {"n_estimators": 20, "num_leaves": 7, "min_child_samples": 20},
        "cascade_lgbm": {"n_estimators": 20, "num_leaves": 7, "min_child_samples": 50},
        "quantiles": [0.9], "garch_window": 500, "num_threads": 1, "shap_sample": 20}


@dataclass
class Trained:
    report: TrainReport
    cfg: ModelConfig
    tracking: TrackingConfig
    store: MarketStore
    html: str


class Tables(HTMLParser):
    """Every <table> of a page as rows of cell texts, keyed "<h2> / <h3>" by the headings
    before it."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._section = ""
        self._title = ""
        self._in: str | None = None
        self._rows: list[list[str]] | None = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        if tag in ("h2", "h3", "td", "th"):
            self._in, self._text = tag, ""
        elif tag == "table":
            self._rows = self.tables.setdefault(f"{self._section} / {self._title}", [])
        elif tag == "tr" and self._rows is not None:
            self._rows.append([])

    def handle_endtag(self, tag):
        if tag == "h2":
            self._section, self._title = self._text.strip(), ""
        elif tag == "h3":
            self._title = self._text.strip()
        elif tag in ("td", "th") and self._rows is not None:
            self._rows[-1].append(self._text.strip())
        elif tag == "table":
            self._rows = None
        if tag == self._in:
            self._in = None

    def handle_data(self, data):
        if self._in:
            self._text += data


def records(rows: list[list[str]]) -> dict[str, dict[str, str]]:
    """Table rows keyed by their first cell, each a {column header: cell} dict."""
    head, *body = rows
    return {r[0]: dict(zip(head, r, strict=True)) for r in body}


def close(cell: str, value: float, digits: int) -> None:
    assert float(cell) == pytest.approx(value, abs=0.6 * 10.0 ** -digits), (cell, value)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Trained:
    root = tmp_path_factory.mktemp("evalreport")
    store = near_store(root, 2400)
    track = TrackingConfig(uri=f"sqlite:///{root}/mlflow.db", artifact_root=root / "artifacts")
    cfg = ModelConfig(**TINY, models_dir=root / "models", reports_dir=root / "reports")
    report = train_symbol(store, "NEAR", 24, cfg, track, log_model=log_forecast_model,
                          force=True)
    return Trained(report, cfg, track, store, report.report_path.read_text())


def test_train_writes_the_report_beside_its_figures_and_logs_it(trained):
    path = report_path(trained.cfg.reports_dir, "NEAR")
    assert trained.report.report_path == path and path.name == REPORT_FILE
    assert path.stat().st_mode & 0o044 == 0o044  # readable by others, like any report
    pngs = {p.name for p in path.parent.glob("*.png")}
    assert {"reliability.png", "pr_curve.png", "qlike_over_time.png", "shap_volatility.png",
            "forecast_vs_realized.png"} <= pngs
    assert not list(path.parent.glob(".tmp-*"))  # nothing half-written left behind
    client, _ = connect(trained.tracking, trained.cfg.experiment)
    arts = {a.path for a in client.list_artifacts(trained.report.run_id)}
    assert REPORT_FILE in arts
    assert trained.report.run_id in trained.html
    assert "PROMOTED: forced" in trained.html


def test_figures_are_inline_pngs_and_nothing_is_fetched(trained):
    images = re.findall(r'<img [^>]*src="([^"]+)"', trained.html)
    pngs = sorted(trained.report.report_path.parent.glob("*.png"))
    assert len(images) == len(pngs) >= 7
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<script" not in trained.html and "http" not in trained.html.split("<body>")[1]


def test_volatility_tables_hold_the_metrics_of_model_and_every_baseline(trained):
    metrics = trained.report.result.metrics
    tables = Tables()
    tables.feed(trained.html)
    found = tables.tables
    for block, title in (("walk_forward", "Walk-forward (2 folds, development span)"),
                         ("final", "Final period (untouched by tuning)")):
        vol_rows = records(next(v for k, v in found.items()
                                if k.startswith("Volatility") and k.endswith(title)))
        cas_rows = records(found[f"Cascade probability / {title}"])
        vol = metrics[block]["volatility"]
        assert set(vol_rows) == {"model", *vol["baselines"]}
        for name, m in {"model": vol["model"], **vol["baselines"]}.items():
            close(vol_rows[name]["QLIKE"], m["qlike"], 4)
            close(vol_rows[name]["MSE log"], m["mse_log"], 4)
            close(vol_rows[name]["MZ R2"], m["mz_r2"], 3)
        best = vol["best_baseline"]
        assert float(vol_rows[best]["DM p"]) == pytest.approx(vol["dm_pvalue_vs_best"], rel=1e-2)
        assert float(vol_rows[best]["DM stat"]) == pytest.approx(vol["dm_stat_vs_best"],
                                                                  abs=1e-3)
        assert vol_rows["model"]["DM p"] == "n/a"
        gain = float(vol_rows[best]["model gain"].rstrip("%")) / 100
        assert gain == pytest.approx(vol["qlike_gain_vs_best"], abs=6e-4)
        cas = metrics[block]["cascade"]
        assert set(cas_rows) == {"model", *cas["baselines"]}
        for name, m in {"model": cas["model"], **cas["baselines"]}.items():
            close(cas_rows[name]["PR-AUC"], m["pr_auc"], 4)
            close(cas_rows[name]["Brier"], m["brier"], 5)
            close(cas_rows[name]["BSS"], m["bss"], 4)


def test_fold_table_has_each_fold_then_the_final_period(trained):
    metrics = trained.report.result.metrics
    tables = Tables()
    tables.feed(trained.html)
    rows = records(tables.tables["Folds / Per fold"])
    assert list(rows) == [str(k) for k in range(len(metrics["folds"]))] + ["final"]
    for key, block in [*((str(k), f) for k, f in enumerate(metrics["folds"])),
                       ("final", metrics["final"])]:
        assert int(rows[key]["rows"]) == block["rows"]
        close(rows[key]["model QLIKE"], block["volatility"]["model"]["qlike"], 4)
        close(rows[key]["HAR QLIKE"], block["volatility"]["baselines"]["har"]["qlike"], 4)
        close(rows[key]["model PR-AUC"], block["cascade"]["model"]["pr_auc"], 4)
    bins = tables.tables["Figures / Reliability bins of the model (all out-of-sample rows)"]
    head, *body = bins
    assert sum(int(r[head.index("rows")]) for r in body) == len(trained.report.result.oos)


def test_evaluate_writes_its_report_under_reports_dir_and_logs_it(trained, tmp_path):
    cfg = trained.cfg.model_copy(update={"reports_dir": tmp_path / "reports"})
    ds = load_dataset(trained.store, "NEAR", 24, cfg.features, cfg.exclude_features)
    run_id, path = log_evaluation(ds, cfg, trained.tracking, trained.report.result, None)
    assert path == tmp_path / "reports" / "NEAR" / REPORT_FILE
    page = path.read_text()
    assert run_id in page and "nothing registered" in page
    assert f"{trained.report.result.metrics['final']['volatility']['model']['qlike']:.4f}" in page
    client, _ = connect(trained.tracking, cfg.experiment)
    assert REPORT_FILE in {a.path for a in client.list_artifacts(run_id)}
    assert (path.parent / "reliability.png").exists()
    assert run_id != trained.report.run_id  # an evaluation run of its own


def test_reliability_axis_is_zoomed_to_the_probabilities_in_use():
    rng = np.random.default_rng(0)
    p = rng.beta(1, 40, 5000) * 0.1 / 0.2  # all below 0.1, most near 0.02
    p = np.minimum(p, 0.099)
    y = (rng.random(5000) < p).astype(int)
    probs = {"model": p, "logistic": np.clip(p * 0.8 + 0.005, 0, 0.099)}
    fig = reliability(y, probs)
    try:
        curve, hist = fig.axes[:2]
        lo, hi = curve.get_xlim()
        assert lo == 0 and hi < 0.5
        assert hi >= max(float(reliability_bins(y, q)["mean forecast"].max())
                         for q in probs.values())  # no point cut off
        assert hist.get_xlim() == (lo, hi)
        xs = np.concatenate([line.get_xdata() for line in curve.lines[1:3]])
        assert xs.max() <= hi
    finally:
        plt.close(fig)
    wide = reliability(y, {"model": np.linspace(0.01, 0.99, 5000)})
    try:
        assert wide.axes[0].get_xlim()[1] == pytest.approx(1.0)  # a full range keeps 0..1
    finally:
        plt.close(wide)


def test_reliability_bins_count_every_row_and_event():
    y = np.array([0, 0, 1, 0, 1, 1, 0, 0, 0, 1])
    p = np.array([0.1, 0.1, 0.1, 0.1, 0.1, 0.3, 0.3, 0.3, 0.3, 0.3])  # two distinct values
    bins = reliability_bins(y, p, n_bins=10)
    assert len(bins) == 2  # ties merge the equal-count bins
    assert bins["rows"].tolist() == [5, 5] and bins["events"].tolist() == [2, 2]
    assert bins["mean forecast"].tolist() == pytest.approx([0.1, 0.3])
    assert bins["observed"].tolist() == pytest.approx([0.4, 0.4])


def test_report_path_is_per_symbol(tmp_path):
    assert report_path(Path("reports"), "NEAR") == Path("reports/NEAR/evaluation.html")
