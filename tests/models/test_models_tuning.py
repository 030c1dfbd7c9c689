"""Optuna tuning: persistent, seeded, pruned per fold, blind to the final period."""

from __future__ import annotations

import optuna
import pandas as pd
import pytest

from cascade_ml.errors import ConfigError
from cascade_ml.models import tuning
from cascade_ml.models.config import ModelConfig
from cascade_ml.models.evaluate import split_rows


def test_tuning_persists_and_never_sees_the_final_period(near_small, tmp_path, monkeypatch):
    cfg = ModelConfig(n_folds=3, quantiles=[], num_threads=1,
                      optuna_storage=f"sqlite:///{tmp_path}/sub/optuna.db")
    _, final = split_rows(near_small, cfg)
    seen = []
    real = tuning.fit_predict

    def spy(ds, train, test, *args, **kwargs):
        seen.append((train, test))
        return real(ds, train, test, *args, **kwargs)

    monkeypatch.setattr(tuning, "fit_predict", spy)
    monkeypatch.setattr(tuning, "suggest", lambda trial: {  # a small, fast space
        "n_estimators": trial.suggest_int("n_estimators", 10, 40),
        "num_leaves": trial.suggest_int("num_leaves", 3, 15)})
    params, study = tuning.tune(near_small, cfg, 4, study_name="t")
    assert set(params) == {"n_estimators", "num_leaves"}
    assert seen
    for train, test in seen:
        assert not train.isin(final).any() and not test.isin(final).any()
        assert train.max() < final[0] and test.max() < final[0]
    # persisted: a new process (a fresh load) sees the trials, and a second call continues
    loaded = optuna.load_study(study_name="t", storage=cfg.optuna_storage)
    assert len(loaded.trials) == 4
    tuning.tune(near_small, cfg, 1, study_name="t")
    assert len(optuna.load_study(study_name="t", storage=cfg.optuna_storage).trials) == 5
    # intermediate values were reported per fold (what the MedianPruner judges)
    done = [t for t in loaded.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert all(len(t.intermediate_values) == 3 for t in done)


def test_tuning_is_reproducible_with_the_seed(near_small, tmp_path, monkeypatch):
    monkeypatch.setattr(tuning, "suggest", lambda trial: {
        "n_estimators": trial.suggest_int("n_estimators", 10, 30)})
    a = [tuning.tune(near_small, ModelConfig(n_folds=2, quantiles=[], num_threads=1,
                                             optuna_storage=f"sqlite:///{tmp_path}/{k}.db"),
                     2, study_name="s")[1] for k in ("a", "b")]
    assert [t.params for t in a[0].trials] == [t.params for t in a[1].trials]


def test_models_final_start_sets_the_final_rows_and_is_checked(near_small):
    first = near_small.rows[1000]
    dev, final = split_rows(near_small, ModelConfig(final_start=first.isoformat()))
    assert final[0] == first and len(final) == len(near_small.rows) - 1000
    assert dev.max() + 24 * pd.Timedelta("1h") <= first  # purged by H
    _, plain = split_rows(near_small, ModelConfig())  # unset: the last 15 %, as before
    assert len(plain) == round(len(near_small.rows) * 0.15)
    with pytest.raises(ConfigError, match="models.final_start"):
        split_rows(near_small, ModelConfig(final_start=near_small.rows[100].isoformat()))
    with pytest.raises(ConfigError, match="empty final period"):
        split_rows(near_small, ModelConfig(final_start="2030-01-01"))
