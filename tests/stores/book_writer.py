"""A child process driving the paper book like one live loop: records the cycles of one symbol
for bars 0 .. HOURS-1 (a buy of 1 at 5 + 0.1 x hour each), after a start signal on stdin so
that two of them really write at the same time. Prints how many cycles it wrote.

Usage: ``python book_writer.py URL SYMBOL HOURS``.
"""

from __future__ import annotations

import sys

from stores_helpers import cycle_record

from cascade_ml.trading.book import PaperBook


def main(url: str, symbol: str, hours: int) -> None:
    with PaperBook(url, initial_cash=10_000.0) as book:
        print("ready", flush=True)
        sys.stdin.readline()
        written = sum(book.record_cycle(cycle_record(symbol, h, qty=1.0, price=5 + 0.1 * h))
                      .written for h in range(hours))
    print(f"done {written}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
