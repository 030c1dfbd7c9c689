"""The evaluation's HTML report: one file a person opens after `train` or `evaluate`.

Built from what the evaluation already holds (the metrics dict, the out-of-sample predictions,
the figures written by ``plots.write_all``) with the project's HTML builder
(:mod:`cascade_ml.report`): model vs every baseline on the walk-forward and the final period
(with a Diebold-Mariano test against each baseline), the per-fold table, the reliability bins
and the figures inlined as PNG, so the one file opens anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cascade_ml.atomic import atomic_file
from cascade_ml.contracts.columns import CASCADE, FOLD, FWD_RV, VAR_FORECAST, baseline_var
from cascade_ml.models.metrics import diebold_mariano, qlike_loss
from cascade_ml.models.plots import CAPTIONS, cascade_probs, reliability_bins
from cascade_ml.report import Figure, Section, Table, Text, write_html

REPORT_FILE = "evaluation.html"
F4, F3, PCT = ".4f", ".3f", "+.1%"
VOL_FORMATS = {"QLIKE": F4, "model gain": PCT, "MSE log": F4, "MZ intercept": ".3g",
               "MZ slope": F3, "MZ R2": F3, "utility": F4, "DM stat": F3, "DM p": ".3g"}
CAS_FORMATS = {"PR-AUC": F4, "ROC-AUC": F4, "Brier": ".5f", "BSS": F4, "log loss": F4,
               "precision@thr": F3, "recall@thr": F3, "alert rate": F3}
FOLD_FORMATS = {"model QLIKE": F4, "HAR QLIKE": F4, "best baseline QLIKE": F4,
                "model gain": PCT, "model PR-AUC": F4, "logistic PR-AUC": F4,
                "base rate": F4}
# figure files in report order; any other PNG handed over follows them
ORDER = ("forecast_vs_realized", "qlike_over_time", "qlike_by_fold", "reliability", "pr_curve",
         "importance_volatility", "importance_cascade", "shap_volatility")


def report_path(reports_dir: Path, symbol: str) -> Path:
    """Where a symbol's evaluation report lives: ``<reports_dir>/<SYMBOL>/evaluation.html``."""
    return Path(reports_dir) / symbol / REPORT_FILE


def block_rows(oos: pd.DataFrame, n_folds: int, block: str) -> pd.DataFrame:
    """The OOS rows one metrics block was scored on (walk-forward folds or the final period)."""
    fold = oos[FOLD].to_numpy()
    return oos[fold < n_folds] if block == "walk_forward" else oos[fold == n_folds]


def dm_vs_baselines(pred: pd.DataFrame, rv: np.ndarray, names: Sequence[str],
                    horizon: int) -> dict[str, dict[str, float]]:
    """Diebold-Mariano of the model's QLIKE against each baseline's (negative = model better);
    the same test ``evaluate.score`` runs against the best baseline only."""
    model = qlike_loss(rv, pred[VAR_FORECAST].to_numpy(float))
    return {b: diebold_mariano(model, qlike_loss(rv, pred[baseline_var(b)].to_numpy(float)),
                               horizon) for b in names if baseline_var(b) in pred}


def volatility_table(block: dict, dm: dict[str, dict[str, float]], title: str) -> Table:
    """Model and every baseline on one block: QLIKE, the model's gain over it, MSE of log RV,
    Mincer-Zarnowitz and the DM test of model vs that baseline."""
    vol = block["volatility"]
    model_q = vol["model"]["qlike"]
    recs = []
    for name, m in {"model": vol["model"], **vol["baselines"]}.items():
        test = dm.get(name, {})
        recs.append({"forecast": name, "QLIKE": m["qlike"],
                     "model gain": None if name == "model" else 1 - model_q / m["qlike"],
                     "MSE log": m["mse_log"], "MZ intercept": m["mz_intercept"],
                     "MZ slope": m["mz_slope"], "MZ R2": m["mz_r2"],
                     "utility": m.get("realised_utility"), "DM stat": test.get("dm_stat"),
                     "DM p": test.get("dm_pvalue")})
    return Table(recs, title=title, formats=VOL_FORMATS,
                 highlight=("model", vol.get("best_baseline", "")),
                 note=f"{block['rows']} rows, {block['start'][:16]} .. {block['end'][:16]}. "
                      "QLIKE = RV/F - log(RV/F) - 1 (lower is better); model gain = 1 - model "
                      "QLIKE / baseline QLIKE; MZ: RV = a + b F (ideal 0, 1). DM: Diebold-"
                      "Mariano test of the model's QLIKE against that baseline's (Newey-West, "
                      "HLN correction; negative stat = model lower loss). Highlighted: the model "
                      "and the best baseline. Utility: realised utility of a volatility-targeting "
                      "investor as a share of the perfect forecast's, 2 sqrt(RV/F) - RV/F on "
                      "non-overlapping H-bar windows (Bollerslev et al. 2018; higher is better, "
                      "1 is the ceiling).")


def cascade_table(block: dict, title: str, threshold: float) -> Table:
    cas = block["cascade"]
    recs = [{"forecast": name, "PR-AUC": m["pr_auc"], "ROC-AUC": m["roc_auc"],
             "Brier": m["brier"], "BSS": m["bss"], "log loss": m["log_loss"],
             "precision@thr": m["precision_at_threshold"],
             "recall@thr": m["recall_at_threshold"], "alert rate": m["alert_rate"]}
            for name, m in {"model": cas["model"], **cas["baselines"]}.items()]
    return Table(recs, title=title, formats=CAS_FORMATS, highlight=("model",),
                 note=f"Base rate {cas['base_rate']:.4f} over {block['rows']} rows. BSS = Brier "
                      f"skill vs climatology; @thr: alerts at probability >= {threshold:g}.")


def fold_table(metrics: dict) -> Table:
    """One row per walk-forward fold, then the final period."""
    blocks = [(str(k), f) for k, f in enumerate(metrics["folds"])]
    if metrics.get("final"):
        blocks.append(("final", metrics["final"]))
    recs = []
    for name, b in blocks:
        vol, cas = b["volatility"], b.get("cascade") or {}
        best = vol.get("best_baseline")
        rec = {"fold": name, "start": b["start"][:10], "end": b["end"][:10], "rows": b["rows"],
               "model QLIKE": vol["model"]["qlike"],
               "HAR QLIKE": vol["baselines"].get("har", {}).get("qlike"),
               "best baseline": best,
               "best baseline QLIKE": vol["baselines"][best]["qlike"] if best else None,
               "model gain": vol.get("qlike_gain_vs_best")}
        if cas:
            rec.update({"model PR-AUC": cas["model"]["pr_auc"],
                        "logistic PR-AUC": cas["baselines"].get("logistic", {}).get("pr_auc"),
                        "base rate": cas["base_rate"]})
        recs.append(rec)
    return Table(recs, title="Per fold", formats=FOLD_FORMATS, highlight=("final",),
                 note="Each walk-forward fold's test window (models and baselines refitted on "
                      "its training rows), then the final period (models fitted on all "
                      "development rows). Model gain is against that row's best baseline.")


def verdict(block: dict, span: str) -> Text:
    """One sentence: does the model beat the best baseline on this block, and how surely."""
    vol = block["volatility"]
    best = vol.get("best_baseline")
    if not best:
        return Text(f"{span}: no baseline to compare with.")
    gain, p = vol["qlike_gain_vs_best"], vol.get("dm_pvalue_vs_best")
    sure = "" if p is None else (f", DM p = {p:.3g}" + (" (significant at 5 %)" if p < 0.05
                                                        else " (not significant at 5 %)"))
    text = (f"{span}: model QLIKE {vol['model']['qlike']:.4f} vs {best} (best baseline) "
            f"{vol['baselines'][best]['qlike']:.4f}, gain {100 * gain:+.1f} %{sure}.")
    return Text(text, kind="good" if gain > 0 else "verdict")


def _figure_items(figures: Sequence[Path], after: dict[str, Table]) -> list[Figure | Table]:
    """The PNGs in report order, each followed by the table ``after`` names for it."""
    by_name = {Path(f).stem: Path(f) for f in figures}
    names = [n for n in ORDER if n in by_name] + [n for n in by_name if n not in ORDER]
    items: list[Figure | Table] = []
    for n in names:
        items.append(Figure(by_name[n].read_bytes(), caption=CAPTIONS.get(n, n)))
        if n in after:
            items.append(after.pop(n))
    return items + list(after.values())


def reliability_table(oos: pd.DataFrame, labels: pd.DataFrame) -> Table | None:
    """The model's reliability bins over all out-of-sample rows (the diagram's numbers)."""
    probs = cascade_probs(oos)
    y = labels.loc[oos.index, CASCADE].to_numpy(float)
    if "model" not in probs or len(np.unique(y)) < 2:
        return None
    bins = reliability_bins(y, probs["model"])
    return Table(bins, title="Reliability bins of the model (all out-of-sample rows)",
                 formats={"mean forecast": F4, "observed": F4},
                 note="Equal-count bins of the calibrated cascade probability; a calibrated "
                      "model has observed close to mean forecast.")


def evaluation_sections(symbol: str, horizon: int, metrics: dict, oos: pd.DataFrame,
                        labels: pd.DataFrame, n_folds: int, alert_threshold: float,
                        figures: Sequence[Path] = (), about: dict[str, str] | None = None
                        ) -> list[Section]:
    """The report's sections from one evaluation (pure apart from reading the PNG files)."""
    blocks = [("walk_forward", f"Walk-forward ({len(metrics['folds'])} folds, development span)"),
              ("final", "Final period (untouched by tuning)")]
    blocks = [(k, t) for k, t in blocks if metrics.get(k)]
    summary: list = [verdict(metrics[k], t) for k, t in blocks]
    if about:
        summary.append(Text([f"{k}: {v}" for k, v in about.items()], kind="ul"))
    sections = [Section("Summary", summary)]
    vol_items: list = []
    cas_items: list = []
    for key, title in blocks:
        block = metrics[key]
        pred = block_rows(oos, n_folds, key)
        rv = labels.loc[pred.index, FWD_RV].to_numpy(float)
        dm = dm_vs_baselines(pred, rv, list(block["volatility"]["baselines"]), horizon)
        vol_items.append(volatility_table(block, dm, title))
        if block.get("cascade"):
            cas_items.append(cascade_table(block, title, alert_threshold))
    sections.append(Section(f"Volatility: forecast of the next {horizon} bars' realised "
                            "variance", vol_items))
    if cas_items:
        sections.append(Section("Cascade probability", cas_items))
    sections.append(Section("Folds", [fold_table(metrics)]))
    rel = reliability_table(oos, labels)
    items = _figure_items(figures, {"reliability": rel} if rel is not None else {})
    if items:
        sections.append(Section("Figures", items))
    return sections


def write_evaluation_report(folder: Path, symbol: str, horizon: int, metrics: dict,
                            oos: pd.DataFrame, labels: pd.DataFrame, n_folds: int,
                            alert_threshold: float, figures: Sequence[Path] = (),
                            about: dict[str, str] | None = None) -> Path:
    """Copy the figures into ``folder`` and write ``folder/evaluation.html``, all atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    kept = []
    for fig in figures:
        dest = folder / Path(fig).name
        if Path(fig).resolve() != dest.resolve():
            with atomic_file(dest, "wb") as fh:
                fh.write(Path(fig).read_bytes())
            os.chmod(dest, 0o644)  # figures are for reading (the temp file was private)
        kept.append(dest)
    sections = evaluation_sections(symbol, horizon, metrics, oos, labels, n_folds,
                                   alert_threshold, kept, about)
    return write_html(folder / REPORT_FILE, f"{symbol} h={horizon}: forecast evaluation",
                      sections, subtitle="Out-of-sample models against every baseline on the "
                                         "same rows; figures inline.")
