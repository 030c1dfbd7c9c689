"""With ``forecast_halflife_bars`` set, each live decision reads the vol forecast the backtest's
policy reads: ``policy_targets``' smoothed sigma over the same stored forecasts (the scores
table the loop writes), bar by bar; the first bar, with no stored forecast before it, reads the
forecast as it is and says so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from loop_helpers import FROM, UNTIL, pipeline_dict, sections_of

from cascade_ml.backtest.strategies import Signals, policy_targets
from cascade_ml.contracts.layout import scores_path
from cascade_ml.data.store import MarketStore
from cascade_ml.forecasting.smoothing import UNSMOOTHED
from cascade_ml.live.run import replay_db_url, run_replay
from cascade_ml.trading.book import PaperBook

HALFLIFE = 2.0


def test_live_decisions_read_the_backtests_smoothed_forecast(replay_base: Path,
                                                              tmp_path: Path) -> None:
    import shutil

    shutil.copytree(replay_base, tmp_path / "replay")
    cfg = pipeline_dict(tmp_path / "replay")
    cfg["policy"]["forecast_halflife_bars"] = HALFLIFE
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(cfg))
    sections = sections_of(path)
    summary = run_replay(sections, FROM, UNTIL, echo=lambda line: None, max_cycles=6)
    assert summary.cycles == 6

    scores = MarketStore(tmp_path / "replay" / "store").read_table(scores_path("NEAR"))
    with PaperBook(replay_db_url(tmp_path / "replay"), migrate=False) as book:
        decisions = book.frames()["decisions"]
    assert len(scores) == len(decisions) == 6  # no stored forecast before the first cycle
    raw = scores["vol_forecast"].to_numpy(float)
    n = len(raw)
    policy = sections.policy
    sig = Signals(sigma_h=raw, cascade_prob=np.full(n, 0.05), n_fired=np.zeros(n),
                  horizon_hours=24.0)
    backtest = policy_targets(sig, "long", 10_000.0, policy.tiers_for("NEAR"), policy)["sigma_h"]
    live = decisions["forecast_vol"].to_numpy(float)  # the forecast the decision read
    # the window (21 bars) covers the whole history: the same EWMA, to rounding
    np.testing.assert_allclose(live, backtest, rtol=1e-12)
    assert live[0] == raw[0] and np.abs(live[1:] / raw[1:] - 1).max() > 1e-6  # smoothed
    reasons = decisions["reasons"].tolist()
    assert reasons[0][-1] == UNSMOOTHED and not any(UNSMOOTHED in r for r in reasons[1:])
