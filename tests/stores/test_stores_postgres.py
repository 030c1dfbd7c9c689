"""The paper book, its migrations, MLflow and Optuna on a real PostgreSQL server (``pg_url``:
a fresh database on the session's server), including two processes writing at once."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError
from stores_helpers import T0, cycle_record, run_together

from cascade_ml.trading import db
from cascade_ml.trading.book import PaperBook, StopRecord
from cascade_ml.trading.tables import Base

BOOK_TABLES = {"account", "decisions", "orders", "fills", "positions", "hedges",
               "funding_payments", "equity_snapshots", "stop_orders"}


# ---------------------------------------------------------------------------- the book
def test_book_migrations_run_on_postgres(pg_url: str) -> None:
    engine = db.make_engine(pg_url)
    assert engine.dialect.name == "postgresql" and db.current_revision(engine) is None
    db.upgrade(engine, "0001")  # then 0002 (stop_orders) on its own
    assert "stop_orders" not in inspect(engine).get_table_names()
    db.upgrade(engine)
    assert db.current_revision(engine) == db.head_revision()
    assert set(inspect(engine).get_table_names()) == BOOK_TABLES | {"alembic_version"}
    with engine.connect() as conn:  # the models and the migration agree on PostgreSQL too
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                Base.metadata)
    assert diff == []
    db.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    db.upgrade(engine)
    assert set(inspect(engine).get_table_names()) == BOOK_TABLES | {"alembic_version"}
    engine.dispose()


def test_book_on_postgres_by_hand(pg_url: str) -> None:
    with PaperBook(pg_url, initial_cash=10_000.0) as book:
        # bar 0: buy 10 NEAR at 5.00 (no fee, no slippage) -> cash 10,000, flat P&L
        first = book.record_cycle(cycle_record("NEAR", 0, qty=10.0, price=5.0))
        assert first.written and first.cash == pytest.approx(10_000.0)
        # bar 1: buy 10 more at 6.00 -> 20 at 5.50, marked 6.00: unrealised 20 x 0.5 = 10
        second = book.record_cycle(cycle_record("NEAR", 1, qty=10.0, price=6.0))
        assert second.equity == pytest.approx(10_010.0)
        again = book.record_cycle(cycle_record("NEAR", 1, qty=10.0, price=6.0))
        assert not again.written and again.equity == pytest.approx(10_010.0)
        frames = book.frames()
    assert {k: len(v) for k, v in frames.items()} == {
        "decisions": 2, "orders": 2, "fills": 2, "positions": 1, "hedges": 2,
        "funding_payments": 0, "equity_snapshots": 2, "stop_orders": 0}
    (leg,) = frames["positions"].itertuples()
    assert (leg.qty, leg.entry_price) == pytest.approx((20.0, 5.5))
    # times come back as the same UTC instants
    assert pd.Timestamp(frames["decisions"]["bar_ts"].iloc[1]) == T0 + pd.Timedelta(hours=1)
    with PaperBook(pg_url, migrate=False) as book:  # an existing book opens read-only
        assert book.initial_cash == 10_000.0 and book.has_cycle("NEAR", T0)


def test_stop_orders_on_postgres(pg_url: str) -> None:
    stop = StopRecord("NEAR", "main", "NEAR", "sell", 600.0, 4.877, "STOP_MARKET", None,
                      "cml-NEAR-1773140400000-p-NEAR", T0)
    with PaperBook(pg_url, initial_cash=10_000.0) as book:
        book.add_stop(stop)  # written ahead of sending: pending
        book.update_stop(stop.client_order_id, "open", exchange_order_id="3358")
        (live,) = book.live_stops("NEAR")
        assert (live.state, live.exchange_order_id, live.trigger_price) == ("open", "3358", 4.877)
        assert live.bar_ts == T0  # the same UTC instant back
        book.update_stop(stop.client_order_id, "cancelled")
        assert book.live_stops("NEAR") == []
        with pytest.raises(IntegrityError):  # one row per client order id
            book.add_stop(stop)


def _final_snapshot(url: str) -> tuple[dict[str, int], pd.Series, pd.DataFrame]:
    with PaperBook(url, migrate=False) as book:
        frames = book.frames()
    counts = {k: len(v) for k, v in frames.items()}
    last = frames["equity_snapshots"].sort_values("bar_ts").iloc[-1]
    return counts, last, frames["positions"].set_index("symbol")


def test_two_loops_on_different_symbols_write_one_book(pg_url: str, tmp_path: Path) -> None:
    PaperBook(pg_url, initial_cash=10_000.0).close()  # here both write every bar's equity row
    hours = 25
    out = run_together(["book_writer.py", pg_url, "NEAR", str(hours)],
                       ["book_writer.py", pg_url, "SOL", str(hours)], cwd=tmp_path)
    assert out == [f"done {hours}", f"done {hours}"]
    counts, last, legs = _final_snapshot(pg_url)
    assert counts["decisions"] == counts["fills"] == 2 * hours
    assert counts["equity_snapshots"] == hours  # one per bar, shared by both symbols
    # each leg: 25 buys of 1 at 5.0, 5.1, .., 7.4 -> entry 6.2, marked 7.4: +1.2 x 25 = 30
    for symbol in ("NEAR", "SOL"):
        assert legs.loc[symbol, "qty"] == pytest.approx(25.0)
        assert legs.loc[symbol, "entry_price"] == pytest.approx(6.2)
    # the last bar's snapshot saw both loops' fills: 10,000 + 2 x 30
    assert last["equity"] == pytest.approx(10_060.0)
    assert last["cash"] == pytest.approx(10_000.0)


def test_the_same_cycles_from_two_processes_are_booked_once(pg_url: str,
                                                            tmp_path: Path) -> None:
    hours = 25  # both start on an empty database: they also migrate it at the same moment
    out = run_together(["book_writer.py", pg_url, "NEAR", str(hours)],
                       ["book_writer.py", pg_url, "NEAR", str(hours)], cwd=tmp_path)
    assert sum(int(line.split()[1]) for line in out) == hours  # each cycle written once
    counts, last, legs = _final_snapshot(pg_url)
    assert counts["decisions"] == counts["orders"] == counts["fills"] == hours
    assert legs.loc["NEAR", "qty"] == pytest.approx(25.0)
    assert last["equity"] == pytest.approx(10_030.0)


# ---------------------------------------------------------------------------- MLflow, Optuna
def test_mlflow_logs_a_run_and_registers_a_model_on_postgres(pg_url: str,
                                                            tmp_path: Path) -> None:
    import mlflow

    from cascade_ml.models.tracking import champion_version, reserve_version, set_champion
    from cascade_ml.tracking import TrackingConfig, connect

    cfg = TrackingConfig(uri=pg_url, artifact_root=tmp_path / "artifacts")
    client, exp_id = connect(cfg, "pg-test")
    with mlflow.start_run(experiment_id=exp_id) as run:
        mlflow.log_params({"symbol": "NEAR", "horizon": 24})
        mlflow.log_metrics({"qlike": 0.2265, "best_baseline_qlike": 0.2311})
        mlflow.log_dict({"features": ["d", "w", "m"]}, "features.json")
        version, _ = reserve_version(client, "cascade-ml-NEAR-h24", exp_id, run.info.run_id)
    set_champion(client, "NEAR", 24, version.version)

    client, same_id = connect(cfg, "pg-test")  # a second start finds the experiment
    assert same_id == exp_id
    stored = client.get_run(run.info.run_id)
    assert stored.data.metrics == {"qlike": 0.2265, "best_baseline_qlike": 0.2311}
    assert stored.data.params == {"symbol": "NEAR", "horizon": "24"}
    assert champion_version(client, "cascade-ml-NEAR-h24").version == version.version
    assert (tmp_path / "artifacts").is_dir()  # artifacts stay in the artifact root


def test_an_optuna_study_is_shared_by_two_processes_on_postgres(pg_url: str,
                                                               tmp_path: Path) -> None:
    import optuna

    from cascade_ml.sqlstore import rdb_storage

    # made once before the workers start, as panel.tune.tune_panel does
    optuna.create_study(study_name="shared", storage=rdb_storage(pg_url), direction="minimize")
    out = run_together(["optuna_worker.py", pg_url, "shared", "0", "4"],
                       ["optuna_worker.py", pg_url, "shared", "1", "4"], cwd=tmp_path)
    assert out == ["done 4", "done 4"]
    study = optuna.load_study(study_name="shared", storage=rdb_storage(pg_url))
    assert sorted(t.number for t in study.trials) == list(range(8))
    workers = [t.user_attrs["worker"] for t in study.trials]
    assert len(set(workers)) == 2 and sorted(workers.count(w) for w in set(workers)) == [4, 4]
    finished = [t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE,
                                                       optuna.trial.TrialState.PRUNED)]
    assert len(finished) == 8 and study.best_value > 0
