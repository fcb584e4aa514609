"""initial schema: runs, orders, order events, fills, positions, P&L, risk, commands, audit,
backtests, strategy leases

Revision ID: 0001
Revises:
Create Date: 2026-05-20

Written by hand from :mod:`algoengine.persistence.models` (the tests compare the two with
Alembic's autogenerate: they must not differ). Runs on SQLite and PostgreSQL: only CREATE and
DROP, no ALTER, so no batch mode is needed here. ``order_events`` is append-only: triggers
refuse UPDATE and DELETE on both databases.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID_LEN = 64
CLIENT_ID_LEN = 32
TOKEN_LEN = 32
SYMBOL_LEN = 64
ENUM_LEN = 32
NAME_LEN = 128

_APPEND_ONLY_MESSAGE = "order_events is append-only"


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _id() -> sa.Column[int]:
    return sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    )


def _ns(name: str, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=nullable)


def _str(name: str, length: int, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(length), nullable=nullable)


def _run_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["run_id", "strategy_id"],
        ["strategy_runs.run_id", "strategy_runs.strategy_id"],
        name=f"fk_{table}_run_id_strategy_id_strategy_runs",
    )


def upgrade() -> None:
    op.create_table(
        "strategy_runs",
        _str("run_id", ID_LEN),
        _str("strategy_id", ID_LEN),
        _str("mode", ENUM_LEN),
        _str("status", ENUM_LEN),
        _ns("started_ns"),
        _ns("stopped_ns", nullable=True),
        sa.Column("stop_reason", sa.Text(), nullable=True),
        sa.Column("config", _json(), nullable=False),
        _str("owner", NAME_LEN, nullable=True),
        sa.Column("fencing_token", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "strategy_id", name="pk_strategy_runs"),
        sa.CheckConstraint("mode IN ('backtest', 'paper', 'live')", name="ck_strategy_runs_mode"),
    )
    op.create_index(
        "ix_strategy_runs_strategy_id_started_ns", "strategy_runs", ["strategy_id", "started_ns"]
    )

    op.create_table(
        "orders",
        _str("client_order_id", CLIENT_ID_LEN),
        _str("run_id", ID_LEN),
        _str("strategy_id", ID_LEN),
        _str("token", TOKEN_LEN),
        _str("symbol", SYMBOL_LEN),
        _str("exchange", ENUM_LEN),
        _str("side", ENUM_LEN),
        _str("order_type", ENUM_LEN),
        _str("tif", ENUM_LEN),
        sa.Column("qty", sa.BigInteger(), nullable=False),
        sa.Column("price_paise", sa.BigInteger(), nullable=True),
        sa.Column("trigger_price_paise", sa.BigInteger(), nullable=True),
        _str("status", ENUM_LEN),
        sa.Column("filled_qty", sa.BigInteger(), nullable=False),
        sa.Column("filled_value_paise", sa.BigInteger(), nullable=False),
        _str("venue_order_id", ID_LEN, nullable=True),
        sa.Column("tag", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("square_off", sa.Boolean(), nullable=False),
        _str("parent_id", CLIENT_ID_LEN, nullable=True),
        _str("oco_id", CLIENT_ID_LEN, nullable=True),
        _ns("created_ns"),
        _ns("updated_ns"),
        sa.PrimaryKeyConstraint("client_order_id", name="pk_orders"),
        _run_fk("orders"),
    )
    op.create_index("ix_orders_run_id_status", "orders", ["run_id", "status"])
    op.create_index("ix_orders_venue_order_id", "orders", ["venue_order_id"])

    op.create_table(
        "order_events",
        _id(),
        _str("client_order_id", CLIENT_ID_LEN),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        _str("kind", ENUM_LEN),
        _ns("ts_ns"),
        sa.Column("payload", _json(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_order_events"),
        sa.UniqueConstraint("client_order_id", "seq", name="uq_order_events_client_order_id_seq"),
    )

    op.create_table(
        "fills",
        _id(),
        _str("run_id", ID_LEN),
        _str("strategy_id", ID_LEN),
        _str("trade_id", ID_LEN),
        _str("client_order_id", CLIENT_ID_LEN),
        _ns("ts_ns"),
        _str("token", TOKEN_LEN),
        _str("symbol", SYMBOL_LEN),
        _str("side", ENUM_LEN),
        sa.Column("qty", sa.BigInteger(), nullable=False),
        sa.Column("price_paise", sa.BigInteger(), nullable=False),
        sa.Column("charges_paise", sa.BigInteger(), nullable=False),
        sa.Column("tag", sa.Text(), nullable=False),
        sa.Column("settlement", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_fills"),
        _run_fk("fills"),
        sa.UniqueConstraint(
            "trade_id", "client_order_id", name="uq_fills_trade_id_client_order_id"
        ),
    )
    op.create_index("ix_fills_run_id_ts_ns", "fills", ["run_id", "ts_ns"])
    op.create_index("ix_fills_client_order_id", "fills", ["client_order_id"])

    op.create_table(
        "positions",
        _str("run_id", ID_LEN),
        _str("strategy_id", ID_LEN),
        _str("token", TOKEN_LEN),
        sa.Column("qty", sa.BigInteger(), nullable=False),
        sa.Column("open_cost_paise", sa.BigInteger(), nullable=False),
        sa.Column("cash_paise", sa.BigInteger(), nullable=False),
        sa.Column("charges_paise", sa.BigInteger(), nullable=False),
        sa.Column("realised_paise", sa.BigInteger(), nullable=False),
        sa.Column("bought_qty", sa.BigInteger(), nullable=False),
        sa.Column("sold_qty", sa.BigInteger(), nullable=False),
        sa.Column("mark_paise", sa.BigInteger(), nullable=False),
        _ns("updated_ns"),
        sa.PrimaryKeyConstraint("run_id", "strategy_id", "token", name="pk_positions"),
        _run_fk("positions"),
    )

    op.create_table(
        "pnl_snapshots",
        _str("run_id", ID_LEN),
        _str("strategy_id", ID_LEN),
        _ns("ts_ns"),
        sa.Column("realised_paise", sa.BigInteger(), nullable=False),
        sa.Column("unrealised_paise", sa.BigInteger(), nullable=False),
        sa.Column("charges_paise", sa.BigInteger(), nullable=False),
        sa.Column("net_paise", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "strategy_id", "ts_ns", name="pk_pnl_snapshots"),
        _run_fk("pnl_snapshots"),
    )
    op.create_index("ix_pnl_snapshots_strategy_id_ts_ns", "pnl_snapshots", ["strategy_id", "ts_ns"])

    op.create_table(
        "risk_events",
        _id(),
        _ns("ts_ns"),
        _str("run_id", ID_LEN, nullable=True),
        _str("strategy_id", ID_LEN, nullable=True),
        _str("client_order_id", CLIENT_ID_LEN, nullable=True),
        _str("code", ID_LEN),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_risk_events"),
        sa.UniqueConstraint(
            "client_order_id", "code", "ts_ns", name="uq_risk_events_client_order_id_code_ts_ns"
        ),
    )
    op.create_index("ix_risk_events_strategy_id_ts_ns", "risk_events", ["strategy_id", "ts_ns"])
    op.create_index("ix_risk_events_ts_ns", "risk_events", ["ts_ns"])

    op.create_table(
        "commands",
        _id(),
        _str("kind", ENUM_LEN),
        _str("strategy_id", ID_LEN, nullable=True),
        sa.Column("payload", _json(), nullable=False),
        _str("issued_by", NAME_LEN),
        _ns("issued_ns"),
        _ns("acted_ns", nullable=True),
        _str("acted_by", NAME_LEN, nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_commands"),
    )
    op.create_index(
        "ix_commands_pending",
        "commands",
        ["id"],
        sqlite_where=sa.text("acted_ns IS NULL"),
        postgresql_where=sa.text("acted_ns IS NULL"),
    )
    op.create_index("ix_commands_issued_ns", "commands", ["issued_ns"])

    op.create_table(
        "audit_log",
        _id(),
        _ns("ts_ns"),
        _str("actor", NAME_LEN),
        _str("action", ID_LEN),
        sa.Column("details", _json(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_ts_ns", "audit_log", ["ts_ns"])

    op.create_table(
        "backtest_runs",
        _str("id", ID_LEN),
        sa.Column("params", _json(), nullable=False),
        _ns("started_ns"),
        _ns("finished_ns", nullable=True),
        sa.Column("metrics", _json(), nullable=True),
        sa.Column("output_dir", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_backtest_runs"),
    )
    op.create_index("ix_backtest_runs_started_ns", "backtest_runs", ["started_ns"])

    op.create_table(
        "strategy_leases",
        _str("strategy_id", ID_LEN),
        _str("owner", NAME_LEN, nullable=True),
        sa.Column("fencing_token", sa.BigInteger(), nullable=False),
        _ns("expires_ns"),
        _ns("heartbeat_ns"),
        sa.PrimaryKeyConstraint("strategy_id", name="pk_strategy_leases"),
    )
    op.create_index("ix_strategy_leases_expires_ns", "strategy_leases", ["expires_ns"])

    _create_append_only_triggers()


def _create_append_only_triggers() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION order_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{_APPEND_ONLY_MESSAGE}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER order_events_append_only BEFORE UPDATE OR DELETE ON order_events "
            "FOR EACH ROW EXECUTE FUNCTION order_events_append_only()"
        )
        return
    for action in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER order_events_no_{action.lower()} BEFORE {action} ON order_events "
            f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY_MESSAGE}'); END"
        )


def downgrade() -> None:
    # dropping a table drops its indexes and triggers; children before parents
    for table in (
        "strategy_leases",
        "backtest_runs",
        "audit_log",
        "commands",
        "risk_events",
        "pnl_snapshots",
        "positions",
        "fills",
        "order_events",
        "orders",
        "strategy_runs",
    ):
        op.drop_table(table)
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP FUNCTION order_events_append_only()")
