"""The perp universe: one stacked dataset, pooled volatility and cascade models, leave-symbols-out
evaluation, and the universe bundle (docs/panel.md)."""
