"""Batch scoring: the newest input rows -> the task's forecaster -> forecasts + the policy's
decision, merged into the scores table.

A pipeline step beside backtest. Loading the forecaster, the policy-input translation and the
scores merge live in ``cascade_ml.forecasting`` (which the service and the live loop use too);
nothing imports this package as a library.
"""
