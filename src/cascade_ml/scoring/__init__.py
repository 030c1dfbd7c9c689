"""Batch scoring: the newest feature rows -> the bundle -> forecasts + the policy's decision.

A pipeline step beside backtest (above policy and models). The service imports the policy-input
translation from here (``scoring.inputs``), so a served decision and a scored one are the same
function of the same data; scoring never imports the service.
"""
