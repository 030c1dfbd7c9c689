"""The paper book: migrations, accounting checked by hand, idempotent and all-or-nothing cycles."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from live_helpers import make_decision
from sqlalchemy import inspect

from cascade_ml.errors import CascadeError
from cascade_ml.policy.config import PolicyConfig
from cascade_ml.trading import db
from cascade_ml.trading.book import CycleRecord, FundingEvent, OrderOutcome, PaperBook
from cascade_ml.trading.costs import simulate_fill
from cascade_ml.trading.orders import OrderIntent, position_after_fill
from cascade_ml.trading.tables import Base

REPO = Path(__file__).resolve().parents[2]
T0 = pd.Timestamp("2026-03-10T00:00:00Z")
TABLES = {"account", "decisions", "orders", "fills", "positions", "hedges", "funding_payments",
          "equity_snapshots", "stop_orders"}
FEES = PolicyConfig(taker_fee=0.0005, spread=0.002)  # 10 bps half spread


def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'paper' / 'book.db'}"


def filled(leg: str, inst: str, side: str, qty: float, ref: float,
           bar: pd.Timestamp) -> OrderOutcome:
    intent = OrderIntent(leg, inst, side, qty)  # type: ignore[arg-type]
    cid = f"t-{int(bar.value // 10**6)}-{leg}-{inst}"
    fill = simulate_fill(side, qty, ref, FEES)  # type: ignore[arg-type]
    return OrderOutcome(intent, "filled", cid, ref_price=ref, fill=fill)


def cycle(hour: int, outcomes=(), funding=(), mark: float = 5.0) -> CycleRecord:  # noqa: ANN001
    bar = T0 + pd.Timedelta(hours=hour)
    return CycleRecord(symbol="NEAR", bar_ts=bar, as_of=bar + pd.Timedelta(hours=1),
                       mode="paper", decision=make_decision(), marks={"NEAR": mark},
                       outcomes=list(outcomes), funding=list(funding), model_version="v-test")


def counts(book: PaperBook) -> dict[str, int]:
    return {name: len(frame) for name, frame in book.frames().items()}


# ---------------------------------------------------------------------------- schema
def test_migrations_create_the_schema_the_models_describe(tmp_path: Path) -> None:
    engine = db.make_engine(url(tmp_path))
    assert db.current_revision(engine) is None
    db.upgrade(engine, "0001")  # a book of the first revision gains the stop orders' table
    assert "stop_orders" not in inspect(engine).get_table_names()
    db.upgrade(engine)
    assert db.current_revision(engine) == db.head_revision()
    assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
    with engine.connect() as conn:  # models and migration scripts agree, column by column
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                Base.metadata)
    assert diff == []
    db.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    db.upgrade(engine)  # and back up again
    assert set(inspect(engine).get_table_names()) >= TABLES
    engine.dispose()


def test_migration_scripts_ship_as_package_data() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["cascade_ml.trading"]
    root = REPO / "src" / "cascade_ml" / "trading"
    scripts = [p.relative_to(root).as_posix() for p in (root / "migrations").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts]
    assert {"migrations/env.py", "migrations/script.py.mako"} <= set(scripts)
    assert any(s.startswith("migrations/versions/") for s in scripts)
    assert all(any(fnmatch(s, pat) for pat in patterns) for s in scripts), scripts


def test_opening_rules(tmp_path: Path) -> None:
    with pytest.raises(CascadeError, match="no paper book at"):
        PaperBook(url(tmp_path), migrate=False)
    with pytest.raises(CascadeError, match="cannot open database"):
        PaperBook("nosuchdialect://x/y")
    PaperBook(url(tmp_path), initial_cash=2_500.0).close()
    with PaperBook(url(tmp_path)) as book:  # the stored starting cash wins when none is given
        assert book.initial_cash == 2_500.0
    with pytest.raises(CascadeError, match="started with 2,500.00 USDT, not 9,000.00"):
        PaperBook(url(tmp_path), initial_cash=9_000.0)


# ---------------------------------------------------------------------------- accounting
@pytest.mark.parametrize(("qty", "entry", "dq", "price", "want"), [
    (0.0, 0.0, 10.0, 5.0, (10.0, 5.0, 0.0)),        # open
    (10.0, 5.0, 10.0, 6.0, (20.0, 5.5, 0.0)),       # add: weighted entry
    (10.0, 5.0, -4.0, 6.0, (6.0, 5.0, 4.0)),        # reduce a long: realise 4 x (6 - 5)
    (-10.0, 5.0, 10.0, 4.0, (0.0, 0.0, 10.0)),      # close a short at a gain
    (10.0, 5.0, -15.0, 4.0, (-5.0, 4.0, -10.0)),    # flip: the remainder opens at the fill
])
def test_position_after_fill(qty: float, entry: float, dq: float, price: float,
                             want: tuple[float, float, float]) -> None:
    assert position_after_fill(qty, entry, dq, price) == pytest.approx(want)


def test_equity_is_cash_plus_unrealised_by_hand(tmp_path: Path) -> None:
    book = PaperBook(url(tmp_path), initial_cash=10_000.0)
    # bar 0: buy 100 NEAR at ref 5.00 -> fill 5.005 (10 bps), fee 0.0005 x 100 x 5.00 = 0.25
    r1 = book.record_cycle(cycle(0, [filled("main", "NEAR", "buy", 100, 5.00, T0)], mark=5.0))
    assert r1.written and r1.cash == pytest.approx(10_000 - 0.25)
    assert r1.unrealised_pnl == pytest.approx(100 * (5.0 - 5.005))          # -0.5
    assert r1.equity == pytest.approx(9_999.25)
    # bar 1: funding settled at 01:30 on the 100 held: -100 x 5.05 x 0.0001 = -0.0505;
    # sell 40 at ref 5.20 -> 5.1948, fee 0.104, realised 40 x (5.1948 - 5.005) = 7.592;
    # open a 30 NEAR hedge short at ref 5.00 -> 4.995, fee 0.075 (it pays no 01:30 funding)
    bar1 = T0 + pd.Timedelta(hours=1)
    r2 = book.record_cycle(cycle(1, [filled("main", "NEAR", "sell", 40, 5.20, bar1),
                                     filled("hedge", "NEAR", "sell", 30, 5.00, bar1)],
                                 funding=[FundingEvent("NEAR", bar1 + pd.Timedelta("30min"),
                                                       0.0001, 5.05)], mark=5.0))
    cash = 10_000 + 7.592 - 0.25 - 0.104 - 0.075 - 0.0505
    unrealised = 60 * (5.0 - 5.005) - 30 * (5.0 - 4.995)                     # -0.3 - 0.15
    assert r2.funding == pytest.approx(-0.0505) and r2.fills == 2
    assert r2.cash == pytest.approx(cash) and r2.unrealised_pnl == pytest.approx(unrealised)
    assert r2.equity == pytest.approx(10_006.6625)
    # the book's own tables say the same
    frames = book.frames()
    fills, funding = frames["fills"], frames["funding_payments"]
    assert fills["fee"].sum() == pytest.approx(0.25 + 0.104 + 0.075)
    assert fills["realised_pnl"].sum() == pytest.approx(7.592)
    assert fills["slippage"].sum() == pytest.approx(100 * 0.005 + 40 * 0.0052 + 30 * 0.005)
    assert funding[["leg", "qty"]].values.tolist() == [["main", 100.0]]
    assert funding["amount"].tolist() == [pytest.approx(-0.0505)]
    snap = frames["equity_snapshots"].iloc[-1]
    assert snap["equity"] == pytest.approx(snap["cash"] + snap["unrealised_pnl"])
    hedge = frames["hedges"].iloc[-1]
    assert hedge["actual_ratio"] == pytest.approx(0.5) and hedge["main_notional"] == 300.0
    # bar 2: funding settled before the last cycle or after now is ignored; at a -0.0002 rate
    # the 60 long receive 60 x 5 x 0.0002 = 0.06 and the 30 short hedge pays 0.03
    r3 = book.record_cycle(cycle(2, funding=[
        FundingEvent("NEAR", T0 + pd.Timedelta("30min"), 0.01, 5.0),       # already past
        FundingEvent("NEAR", T0 + pd.Timedelta("2h30min"), -0.0002, 5.0),
        FundingEvent("NEAR", T0 + pd.Timedelta("3h30min"), 0.01, 5.0)], mark=5.0))  # future
    assert r3.funding == pytest.approx(0.06 - 0.03)
    assert r3.cash == pytest.approx(cash + 0.03)
    state = book.state({"NEAR": 5.5})
    assert state.equity == pytest.approx(cash + 0.03 + 60 * 0.495 - 30 * 0.505)
    assert state.hedge_ratio("NEAR") == pytest.approx(0.5)
    book.close()


# ---------------------------------------------------------------------------- restart safety
def test_a_replayed_bar_adds_nothing(tmp_path: Path) -> None:
    first = cycle(0, [filled("main", "NEAR", "buy", 100, 5.0, T0)])
    with PaperBook(url(tmp_path)) as book:
        assert book.record_cycle(first).written
        before = counts(book)
        again = book.record_cycle(first)
        assert not again.written and counts(book) == before
    with PaperBook(url(tmp_path)) as restarted:  # a new process replays the same bar
        assert restarted.has_cycle("NEAR", T0)
        assert not restarted.record_cycle(first).written
        assert counts(restarted) == before == {"decisions": 1, "orders": 1, "fills": 1,
                                               "positions": 1, "hedges": 1,
                                               "funding_payments": 0, "equity_snapshots": 1,
                                               "stop_orders": 0}


KILL_SCRIPT = """
import os, signal, sys
import pandas as pd
from cascade_ml.trading import book as B
from cascade_ml.policy.config import PolicyConfig
from cascade_ml.policy.schemas import Decision
from cascade_ml.trading.costs import simulate_fill
from cascade_ml.trading.orders import OrderIntent

url, decision_json = sys.argv[1], open(sys.argv[2]).read()
decision = Decision.model_validate_json(decision_json)
bar = pd.Timestamp("2026-03-10T01:00:00Z")
fill = simulate_fill("sell", 40.0, 5.2, PolicyConfig())
outcome = B.OrderOutcome(OrderIntent("main", "NEAR", "sell", 40.0), "filled", "kill-1",
                         ref_price=5.2, fill=fill)
record = B.CycleRecord(symbol="NEAR", bar_ts=bar, as_of=bar + pd.Timedelta("1h"), mode="paper",
                       decision=decision, marks={"NEAR": 5.2}, outcomes=[outcome])
real = B._hedge_snapshot

def die_mid_cycle(*args, **kwargs):  # decision, order, fill and position are written by now
    real(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)

B._hedge_snapshot = die_mid_cycle
B.PaperBook(url).record_cycle(record)
print("not killed")
"""


def test_kill_9_mid_cycle_leaves_nothing_of_that_cycle(tmp_path: Path) -> None:
    with PaperBook(url(tmp_path)) as book:
        book.record_cycle(cycle(0, [filled("main", "NEAR", "buy", 100, 5.0, T0)]))
        before, legs = counts(book), book.state().legs
    decision = tmp_path / "decision.json"
    decision.write_text(make_decision().model_dump_json())
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, url(tmp_path), str(decision)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stdout + proc.stderr
    with PaperBook(url(tmp_path)) as book:
        assert counts(book) == before and book.state().legs == legs
        assert not book.has_cycle("NEAR", T0 + pd.Timedelta(hours=1))
        redo = book.record_cycle(cycle(1, [filled("main", "NEAR", "sell", 40, 5.2,
                                                  T0 + pd.Timedelta(hours=1))]))
        assert redo.written and book.state().legs[0].qty == pytest.approx(60.0)
