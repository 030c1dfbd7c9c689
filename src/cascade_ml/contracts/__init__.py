"""The floor every layer stands on: the task, the store layout and the column vocabulary.

Nothing here imports another layer, so data, features, labels, models, policy, backtest,
scoring and serving can all depend on it without a cycle (see the import-linter contract in
pyproject.toml). A fact that two layers share lives here once.
"""
