"""cascade-ml: point-in-time volatility and cascade-risk forecasts for crypto perps."""
__version__ = "0.1.0"
