"""`cascade-ml decide` through the real console script: JSON out, clear errors on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-c", "from cascade_ml.cli.main import main; main()"]

GOOD = {
    "symbol": "NEAR",
    "forecast": {"sigma_h": 0.04, "horizon_hours": 24, "cascade_prob": 0.1},
    "triggers": {"funding_divergence": True, "sentiment_spike": None},
    "cross_asset": {"beta_btc": 1.2, "corr_btc": 0.7},
    "position": {"side": "long", "notional": 5000, "entry_price": 5.0, "mark_price": 5.1,
                 "leverage": 5, "margin_mode": "isolated", "hedge_ratio": 0.3},
    "equity": 20000,
    "freshness": {"forecast_age_s": 120, "features_age_s": 300, "max_age_s": 3600},
}


def run(tmp_path: Path, payload: object, *extra: str) -> subprocess.CompletedProcess:
    path = tmp_path / "in.json"
    path.write_text(json.dumps(payload) if not isinstance(payload, str) else payload)
    return subprocess.run([*CLI, "decide", "--json-in", str(path), *extra],
                          capture_output=True, text=True, timeout=120)


def test_decide_prints_decision_json(tmp_path: Path) -> None:
    out = run(tmp_path, GOOD)
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert 0.3 <= d["hedge_ratio"] <= 0.7 and d["fail_safe"] is False
    assert d["leverage_cap"] <= 5 and d["action"] in ("rebalance", "hold")
    assert any("funding_divergence" in r for r in d["reasons"])


def test_pipeline_policy_section_is_used(tmp_path: Path) -> None:
    pipe = tmp_path / "p.yaml"
    pipe.write_text("policy:\n  hedge_min: 0.5\n  hedge_max: 0.6\n  max_leverage: 2\n")
    d = json.loads(run(tmp_path, GOOD, "--pipeline", str(pipe)).stdout)
    assert 0.5 <= d["hedge_ratio"] <= 0.6 and d["leverage_cap"] <= 2


@pytest.mark.parametrize("patch, needle", [
    (("position", "notional", -5), "position.notional"),
    (("position", "leverage", 0), "position.leverage"),
    (("position", "side", "sideways"), "position.side"),
    ((None, "forecast", None), "forecast"),
])
def test_bad_input_is_a_clear_error(tmp_path: Path, patch: tuple, needle: str) -> None:
    payload = json.loads(json.dumps(GOOD))
    block, key, value = patch
    if block is None:
        del payload[key]
    else:
        payload[block][key] = value
    out = run(tmp_path, payload)
    assert out.returncode == 2
    assert "in.json" in out.stderr and needle in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_not_json_is_a_clear_error(tmp_path: Path) -> None:
    out = run(tmp_path, "{nope")
    assert out.returncode == 2 and "not valid JSON" in out.stderr
