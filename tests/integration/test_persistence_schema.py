"""Migrations and schema, the same tests on SQLite and on a real PostgreSQL 15."""

from __future__ import annotations

import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DatabaseError, IntegrityError

from algoengine.errors import ConfigurationError
from algoengine.persistence.db import (
    current_revision,
    downgrade,
    ensure_schema,
    head_revision,
    make_engine,
    upgrade,
)
from algoengine.persistence.models import Base

TABLES = {
    "strategy_runs",
    "orders",
    "order_events",
    "fills",
    "positions",
    "pnl_snapshots",
    "risk_events",
    "commands",
    "audit_log",
    "backtest_runs",
    "strategy_leases",
}


def tables(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(inspect(conn).get_table_names())


def test_upgrade_creates_every_table_downgrade_drops_them_and_upgrade_again(
    engine: Engine,
) -> None:
    assert tables(engine) == set()
    assert current_revision(engine) is None

    assert upgrade(engine) == head_revision()
    assert tables(engine) == TABLES | {"alembic_version"}
    assert current_revision(engine) == head_revision()

    assert downgrade(engine, "base") is None
    assert tables(engine) == {"alembic_version"}  # Alembic keeps its (empty) version table
    assert current_revision(engine) is None

    assert upgrade(engine, "head") == head_revision()
    assert tables(engine) == TABLES | {"alembic_version"}


def test_the_migrations_build_exactly_the_models(migrated: Engine) -> None:
    with migrated.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, Base.metadata) == []
    assert set(Base.metadata.tables) == TABLES


def test_indexes_where_the_dashboard_and_recovery_query(migrated: Engine) -> None:
    with migrated.connect() as conn:
        insp = inspect(conn)

        def index_columns(table: str) -> set[tuple[str, ...]]:
            found = {tuple(ix["column_names"]) for ix in insp.get_indexes(table)}
            found |= {tuple(uq["column_names"]) for uq in insp.get_unique_constraints(table)}
            return found  # type: ignore[return-value]

        assert ("run_id", "status") in index_columns("orders")
        assert ("client_order_id", "seq") in index_columns("order_events")
        assert ("strategy_id", "ts_ns") in index_columns("pnl_snapshots")
        assert ("trade_id", "client_order_id") in index_columns("fills")
        pending = [ix for ix in insp.get_indexes("commands") if ix["name"] == "ix_commands_pending"]
        assert len(pending) == 1


def test_ensure_schema_migrates_an_empty_database_once(engine: Engine) -> None:
    assert ensure_schema(engine) == head_revision()
    assert tables(engine) >= TABLES
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO audit_log (ts_ns, actor, action, details) VALUES (1, 'a', 'b', '{}')")
        )
    assert ensure_schema(engine) == head_revision()  # a no-op now: the data stays
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one() == 1


def test_ensure_schema_from_several_processes_at_once_migrates_once(db_url: str) -> None:
    # engine tasks starting together: the migration lock (PostgreSQL advisory lock, SQLite
    # BEGIN IMMEDIATE) lets one migrate and the others see the result
    engines = [make_engine(db_url) for _ in range(4)]
    results: list[object] = []
    barrier = threading.Barrier(len(engines))

    def start(e: Engine) -> None:
        barrier.wait()
        try:
            results.append(ensure_schema(e))
        except Exception as exc:  # collected and asserted on below
            results.append(exc)

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for e in engines:
        e.dispose()
    assert results == [head_revision()] * len(engines)


def test_a_database_at_an_unknown_revision_is_refused(migrated: Engine) -> None:
    with migrated.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed'"))
    with pytest.raises(ConfigurationError, match=r"f00dfeed.*does not know"):
        ensure_schema(migrated)
    with pytest.raises(ConfigurationError, match="f00dfeed"):
        upgrade(migrated)
    with pytest.raises(ConfigurationError, match="f00dfeed"):
        downgrade(migrated, "base")
    assert current_revision(migrated) == "f00dfeed"  # untouched


def test_tables_made_without_migrations_are_refused(engine: Engine) -> None:
    Base.metadata.create_all(engine, tables=[Base.metadata.tables["audit_log"]])
    with pytest.raises(ConfigurationError, match=r"audit_log.*no migration revision"):
        ensure_schema(engine)


def test_an_unknown_target_revision_is_a_configuration_error(engine: Engine) -> None:
    with pytest.raises(ConfigurationError, match="nosuchrev"):
        upgrade(engine, "nosuchrev")
    assert tables(engine) <= {"alembic_version"}


def test_order_events_are_append_only(migrated: Engine) -> None:
    with migrated.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO order_events (client_order_id, seq, kind, ts_ns, payload) "
                "VALUES ('AE000001', 1, 'OrderAccepted', 5, '{}')"
            )
        )
    for statement in (
        "UPDATE order_events SET kind = 'OrderRejected'",
        "DELETE FROM order_events",
    ):
        with pytest.raises(DatabaseError, match="append-only"), migrated.begin() as conn:
            conn.execute(text(statement))
    with migrated.connect() as conn:
        assert conn.execute(text("SELECT kind FROM order_events")).scalar_one() == "OrderAccepted"


def test_foreign_keys_are_enforced(migrated: Engine) -> None:
    # an order of a run that was never recorded (SQLite: proves PRAGMA foreign_keys=ON)
    with pytest.raises(IntegrityError), migrated.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO orders (client_order_id, run_id, strategy_id, token, symbol, "
                "exchange, side, order_type, tif, qty, status, filled_qty, filled_value_paise, "
                "tag, square_off, created_ns, updated_ns) VALUES ('X1', 'nope', 'nope', '1', "
                "'S', 'NFO', 'BUY', 'LIMIT', 'DAY', 1, 'NEW', 0, 0, '', false, 0, 0)"
            )
        )


def test_run_mode_is_checked_by_the_database(migrated: Engine) -> None:
    with pytest.raises(IntegrityError), migrated.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO strategy_runs (run_id, strategy_id, mode, status, started_ns, "
                "config) VALUES ('r', 's', 'yolo', 'running', 0, '{}')"
            )
        )
