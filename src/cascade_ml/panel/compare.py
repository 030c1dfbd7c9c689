"""Two panel evaluations side by side, per symbol (e.g. without and with the long history).

Both documents must be scored on the same final period (``panel.final_start``), so their final
rows are the same rows; the row counts are kept beside each figure so a reader can check. The
best baseline is chosen per document from its own ``panel.baselines`` (a run that adds the
strong HARs is judged against them), and the ratio to the plain HAR is shown too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cascade_ml.errors import CascadeError

FIGURES = {
    "rows": lambda b: b.get("rows"),
    "vs_best": lambda b: b["volatility"]["qlike_ratio_vs_best"],
    "vs_har": lambda b: b["volatility"].get("qlike_ratio_vs", {}).get(
        "har", b["volatility"].get("qlike_ratio_vs_har")),
    "dU_har": lambda b: b["volatility"].get("utility_gain_vs_har"),
    "pr_lift": lambda b: b["cascade"]["pr_auc_over_base"],
    "roc": lambda b: b["cascade"]["model"]["roc_auc"],
}
"""Per-symbol figures of one period: rows scored, QLIKE / best baseline, QLIKE / HAR,
realised utility minus HAR's, cascade PR-AUC / base rate, ROC AUC."""


def _figures(doc: dict, symbol: str, period: str) -> dict:
    block = doc["per_symbol"].get(symbol, {}).get(period, {})
    if "volatility" not in block:
        return {k: np.nan for k in FIGURES}
    return {k: (np.nan if (v := f(block)) is None else v) for k, f in FIGURES.items()}


def compare_docs(old: dict, new: dict, period: str = "final") -> pd.DataFrame:
    """One row per symbol in either document: each figure of ``period`` as ``<figure>_old``
    and ``<figure>_new``, plus ``left_out``; a last row ``median`` over the symbols both
    documents scored."""
    for name, doc in (("old", old), ("new", new)):
        if period not in doc.get("panel", {}):
            raise CascadeError(f"the {name} evaluation has no period {period!r}", "panel compare",
                               hint=f"periods there: {sorted(doc.get('panel', {}))}")
    symbols = list(dict.fromkeys([*old["per_symbol"], *new["per_symbol"]]))
    left_out = set(old.get("holdout_symbols", [])) | set(new.get("holdout_symbols", []))
    rows = []
    for sym in symbols:
        a, b = _figures(old, sym, period), _figures(new, sym, period)
        row = {"symbol": sym, "left_out": sym in left_out}
        for k in FIGURES:
            row[f"{k}_old"], row[f"{k}_new"] = a[k], b[k]
        rows.append(row)
    table = pd.DataFrame(rows).set_index("symbol")
    both = table[table["vs_best_old"].notna() & table["vs_best_new"].notna()]
    median = both.drop(columns="left_out").median().to_dict()
    table.loc["median"] = {**median, "left_out": False}
    return table


def format_compare(table: pd.DataFrame, period: str) -> str:
    """The comparison as the text table the CLI prints."""
    head = (f"{period}: per symbol, old -> new (* left out). QLIKE / best baseline, QLIKE / HAR, "
            "realised utility minus HAR's, cascade PR-AUC / base, ROC; rows scored")
    lines = [head, f"  {'symbol':<8}{'vs best':>16}{'vs HAR':>16}{'dU vs HAR':>20}"
                   f"{'PR/base':>14}{'ROC':>14}{'rows':>16}"]

    def pair(row: pd.Series, key: str, spec: str) -> str:
        a, b = row[f"{key}_old"], row[f"{key}_new"]
        show = [format(v, spec) if np.isfinite(v) else "-" for v in (float(a), float(b))]
        return f"{show[0]}->{show[1]}"

    for sym, row in table.iterrows():
        mark = "*" if bool(row["left_out"]) else " "
        lines.append(f" {mark}{sym:<8}{pair(row, 'vs_best', '.3f'):>16}"
                     f"{pair(row, 'vs_har', '.3f'):>16}{pair(row, 'dU_har', '+.4f'):>20}"
                     f"{pair(row, 'pr_lift', '.2f'):>14}{pair(row, 'roc', '.2f'):>14}"
                     f"{pair(row, 'rows', '.0f'):>16}")
    return "\n".join(lines)
