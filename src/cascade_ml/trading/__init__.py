"""The trading core: one definition of how a decision becomes positions, what trading costs, how
funding is paid, how margin and liquidation work, and when the protective stop fires.

The backtest (``backtest.engine``) loops these functions over whole price columns; the live
paper book (``live.loop`` through :class:`cascade_ml.trading.paper.PaperTrader`) calls the same
functions one bar at a time, so a replay and a backtest of the same bars and forecasts agree
(``tests/trading/test_parity.py``). The rules are written out in docs/policy.md ("Execution").
In testnet / live mode the same stop price rests on the exchange (``trading.stops``).
"""
