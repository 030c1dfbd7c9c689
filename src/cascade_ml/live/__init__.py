"""Running for real: the live loop (an exchange, or a replay of history), the book, execution.

- ``loop.LiveLoop``: at each bar close collect (``collect``, ``sentiment``), extend the features
  (``features``), forecast, let the monitor judge the inputs (``guard``), decide, trade through
  the trading core (``cascade_ml.trading.paper.PaperTrader``), execute and book; retrain on a
  schedule. ``schedule`` fires its jobs (APScheduler live, a simulated clock in a replay);
  ``run`` assembles it for ``cascade-ml live``; ``seed`` sets up a replay; ``state`` is the
  loop's resume point; ``cache`` spares re-reading unchanged partitions; ``metrics`` exports
  Prometheus gauges.
- ``clock.SimClock`` / ``clock.WallClock`` and ``replay.ReplayExchange``: the store's history
  served as a ccxt exchange under a simulated clock (nothing shown before it was known).
- ``book.PaperBook`` (tables in ``models``, Alembic migrations in ``migrations/``, plumbing in
  ``db``): decisions, orders, fills, positions, hedges, funding and equity in a database.
- ``execution.Executor``: the trading core's orders filled on paper (``trading.costs``), or
  sent to testnet/live via ccxt, refused when they would break the decision's caps.
- ``report.write_paper_report``: the book as a PNG and summary figures.

Modules are imported directly (``from cascade_ml.trading.book import PaperBook``) so that using one
piece does not load the others (matplotlib, ccxt, MLflow).
"""
