"""With ``forecast_halflife_bars`` set, each stored decision is ``decide`` on the stored vol
forecast smoothed over the stored ones up to its bar (a log-EWMA written out here by hand), as
the backtest's policy reads it; the first bar, with nothing before it, reads the forecast as it
is and says so."""

from __future__ import annotations

import math
from pathlib import Path

from decision_oracle import expected_decision
from demo_data import fresh_end, make_bundle, run_score, synthetic_features, write_features
from demo_data import write_pipeline as pipeline_file

from cascade_ml.config import load_pipeline
from cascade_ml.contracts.layout import features_path, scores_path
from cascade_ml.data.store import MarketStore
from cascade_ml.forecasting.smoothing import UNSMOOTHED
from cascade_ml.policy.schemas import Position

HALFLIFE = 2.0  # window: 10 half-lives + the bar itself = 21 bars
POLICY = {"forecast_halflife_bars": HALFLIFE, "vol_reference_annual": 2.0}


def _by_hand(vols: list[float], i: int) -> float:
    """EWMA of the logs of the stored forecasts of the 21 bars up to bar i, started at the
    window's first bar: weight a = 1 - 0.5**(1/2) on each new one."""
    a = 1.0 - 0.5 ** (1.0 / HALFLIFE)
    window = vols[max(0, i - 20):i + 1]
    level = math.log(window[0])
    for v in window[1:]:
        level += a * (math.log(v) - level)
    return math.exp(level)


def test_stored_decisions_read_the_smoothed_stored_forecast(tmp_path: Path) -> None:
    pipeline = pipeline_file(tmp_path, policy=POLICY, score_rows=40)
    make_bundle(tmp_path / "models" / "NEAR", seed=40)
    write_features(tmp_path, synthetic_features(120, fresh_end(), seed=41))
    assert all(r.ok for r in run_score(pipeline))

    config = load_pipeline(pipeline)
    task, policy, scoring = config.task, config.policy, config.scoring
    store = MarketStore(tmp_path / "store")
    scores = store.read_table(scores_path("NEAR"))
    features = store.read_table(features_path("NEAR"))
    assert len(scores) == 40
    position = Position(side=task.side, notional=scoring.default_position_notional,
                        entry_price=1.0, mark_price=1.0, leverage=1.0, hedge_ratio=0.0)
    vols = scores["vol_forecast"].tolist()
    moved = 0
    for i, (ts, stored) in enumerate(scores.iterrows()):
        values = {**stored.to_dict(), "vol_forecast": _by_hand(vols, i)}
        want = expected_decision("NEAR", values, features.loc[ts].to_dict(), position,
                                 position.notional, task, policy, age=0.0)
        reasons = [*want.reasons, UNSMOOTHED] if i == 0 else want.reasons
        assert (stored["hedge_ratio"], stored["leverage_cap"], stored["reasons"]) == (
            want.hedge_ratio, want.leverage_cap, " | ".join(reasons)), (i, ts)
        raw = expected_decision("NEAR", stored.to_dict(), features.loc[ts].to_dict(), position,
                                position.notional, task, policy, age=0.0)
        moved += raw.hedge_ratio != want.hedge_ratio or raw.reasons != want.reasons
    assert moved >= 20  # the smoothing changes what is decided: this test can tell
