"""Running for real: replayed or live market data, a paper-trading book, order execution.

- ``clock.SimClock`` and ``replay.ReplayExchange``: the store's history served as a ccxt
  exchange under a simulated clock (nothing shown before it was known).
- ``book.PaperBook`` (tables in ``models``, Alembic migrations in ``migrations/``, plumbing in
  ``db``): decisions, orders, fills, positions, hedges, funding and equity in a database.
- ``fills.FillModel`` and ``execution.Executor``: paper fills, or testnet/live orders via ccxt,
  refused when they would break the decision's caps.
- ``report.write_paper_report``: the book as a PNG and summary figures.

Modules are imported directly (``from cascade_ml.live.book import PaperBook``) so that using one
piece does not load the others (matplotlib, ccxt).
"""
