"""The service's routes, one router per concern (ops, forecasts, decisions, models)."""
