"""Monitoring: is the model still looking at the world it was trained on, and is it still right?

Pure functions over the feature table, the training window, the store's source ages and the
realised labels (I/O only in :mod:`~cascade_ml.monitoring.run` and
:mod:`~cascade_ml.monitoring.persist`): feature drift (PSI against the training window), the
share of missing inputs per feature family, the age of every source, rolling realised QLIKE
against HAR and the calibration of the cascade probabilities. They are
gathered per symbol in a :class:`~cascade_ml.monitoring.health.MonitorReport` whose
``degrade_reasons`` say why a decision must fall back to the policy's fail-safe, exported to
Prometheus by :mod:`cascade_ml.monitoring.exporter` and stored for the service by
:mod:`cascade_ml.monitoring.persist`.

A layer beside scoring and backtest: it reads contracts, data, features (family names), models
(losses, the HAR baseline) and policy; serving imports it, never the reverse.
"""
