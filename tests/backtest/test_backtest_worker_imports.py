"""A dask worker of the universe backtest imports only what a perp's backtest uses.

The worker unpickles ``perp_task`` and so imports ``cascade_ml.backtest.universe``; LightGBM,
scikit-learn (the model bundles), SQLAlchemy and MLflow (tracking) and pandera (validation on
writes to the store) are never used there; they cost each process about 0.6 s of CPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

NOT_ON_A_WORKER = ("lightgbm", "sklearn", "sqlalchemy", "mlflow", "pandera")

PROBE = f"""
import json, sys
import cascade_ml.backtest.universe
before = [m for m in {NOT_ON_A_WORKER!r} if m in sys.modules]
import cascade_ml.forecasting as forecasting
forecasting.load_forecaster  # the package's loader names still resolve, on first use
try:
    forecasting.no_such_name
    missing = "no error"
except AttributeError as exc:
    missing = str(exc)
print(json.dumps({{"before": before, "lightgbm_after": "lightgbm" in sys.modules,
                  "missing": missing}}))
"""


def test_the_backtest_worker_module_leaves_model_tracking_and_validation_packages_unimported():
    out = subprocess.run([sys.executable, "-c", PROBE], env=dict(os.environ), check=True,
                         capture_output=True, text=True).stdout
    got = json.loads(out.strip().splitlines()[-1])
    assert got["before"] == []
    assert got["lightgbm_after"] is True
    assert "no_such_name" in got["missing"]
