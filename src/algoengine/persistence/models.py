"""The database tables (SQLAlchemy 2 typed declarative models).

Units and types, the same on SQLite and PostgreSQL:

- money and prices: ``BIGINT`` paise (``*_paise``); quantities: ``BIGINT`` units (``*qty``);
- times: ``BIGINT`` UTC epoch nanoseconds (``*_ns``), as everywhere in algoengine (a
  ``TIMESTAMP`` would lose the nanoseconds and invite time-zone mistakes);
- enumerations (side, order type, status, ...): their string values;
- free data: ``JSON`` (``JSONB`` on PostgreSQL), finite numbers only.

Tables, and who reads them:

``strategy_runs``
    One row per (run, strategy): mode (backtest/paper/live), when it started and stopped, its
    configuration, its status (running/stopped/failed/crashed), and for scale-out the task
    that owned it and the lease fencing token it held. Recovery finds the last run of a
    strategy here.
``orders``
    Our orders (each slice of a sliced order), keyed by client order id (Angel One's
    ``ordertag``), updated in place as they progress. Writes are monotonic in
    ``updated_ns``: replaying an older snapshot (the outage journal) never overwrites a newer
    one. Recovery reads the open orders of a run; the dashboard lists them.
``order_events``
    Append-only journal of every order event, ``seq`` = the event's position in its order's
    history (1, 2, ...): ``(client_order_id, seq)`` is unique, so a replayed event is a no-op.
    Updates and deletes are refused by triggers. No foreign key to ``orders``: the journal
    must take an event whatever else failed.
``fills``
    One row per fill, unique on ``(trade_id, client_order_id)`` so that replays are no-ops.
    Expiry settlements have ``client_order_id = ''`` and a synthetic trade id.
``positions``
    Per (run, strategy, token): signed quantity, cash, open cost, charges, realised (the
    portfolio's numbers), updated in place (monotonic in ``updated_ns``).
``pnl_snapshots``
    Per (run, strategy, minute): realised, unrealised, charges and net P&L.
``risk_events``
    Orders the engine refused before they left (``OrderDenied``): code and reason.
``commands``
    From the dashboard or the CLI to the engine (kill switch, square off, pause/resume,
    stop): who issued it and when, when the engine acted and what came of it. The engine
    polls the ones not yet acted on.
``audit_log``
    Who did what, when (operators and the engine's own decisions), with details.
``backtest_runs``
    A backtest's parameters, times, metrics and output folder.
``strategy_leases``
    Scale-out: which engine task holds each strategy, until when, with a fencing token that
    grows with every change of owner (the row outlives a release, so the token never repeats).
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

__all__ = [
    "AuditLogModel",
    "BacktestRunModel",
    "Base",
    "CommandModel",
    "FillModel",
    "JsonType",
    "OrderEventModel",
    "OrderModel",
    "PnlSnapshotModel",
    "PositionModel",
    "RiskEventModel",
    "StrategyLeaseModel",
    "StrategyRunModel",
]

#: Constraint and index names, so that migrations (and SQLite batch mode) can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: JSON on SQLite, JSONB on PostgreSQL.
JsonType: TypeEngine[Any] = JSON().with_variant(JSONB(), "postgresql")
#: An auto-incrementing 64-bit key (SQLite autoincrements only ``INTEGER PRIMARY KEY``).
_Id = BigInteger().with_variant(Integer(), "sqlite")

# lengths of the identifier columns (the repositories check them, so that SQLite, which does
# not enforce VARCHAR lengths, refuses what PostgreSQL would)
ID_LEN = 64  # run, strategy, trade, venue order, backtest ids
CLIENT_ID_LEN = 32  # client order ids (Angel One's ordertag: 20)
TOKEN_LEN = 32
SYMBOL_LEN = 64
ENUM_LEN = 32
NAME_LEN = 128  # people and processes: issued_by, actor, owner


class Base(DeclarativeBase):
    """Declarative base of the algoengine tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        int: BigInteger(),
        bool: Boolean(),
        dict[str, Any]: JsonType,
    }


class StrategyRunModel(Base):
    __tablename__ = "strategy_runs"

    run_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    strategy_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    mode: Mapped[str] = mapped_column(String(ENUM_LEN))
    status: Mapped[str] = mapped_column(String(ENUM_LEN))
    started_ns: Mapped[int]
    stopped_ns: Mapped[int | None]
    stop_reason: Mapped[str | None] = mapped_column(Text)
    config: Mapped[dict[str, Any]]
    owner: Mapped[str | None] = mapped_column(String(NAME_LEN))
    fencing_token: Mapped[int | None]

    __table_args__ = (
        CheckConstraint("mode IN ('backtest', 'paper', 'live')", name="mode"),
        Index(None, "strategy_id", "started_ns"),
    )


class OrderModel(Base):
    __tablename__ = "orders"

    client_order_id: Mapped[str] = mapped_column(String(CLIENT_ID_LEN), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(ID_LEN))
    strategy_id: Mapped[str] = mapped_column(String(ID_LEN))
    token: Mapped[str] = mapped_column(String(TOKEN_LEN))
    symbol: Mapped[str] = mapped_column(String(SYMBOL_LEN))
    exchange: Mapped[str] = mapped_column(String(ENUM_LEN))
    side: Mapped[str] = mapped_column(String(ENUM_LEN))
    order_type: Mapped[str] = mapped_column(String(ENUM_LEN))
    tif: Mapped[str] = mapped_column(String(ENUM_LEN))
    qty: Mapped[int]
    price_paise: Mapped[int | None]
    trigger_price_paise: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(ENUM_LEN))
    filled_qty: Mapped[int]
    filled_value_paise: Mapped[int]  # sum of price * qty over fills; avg = value / filled_qty
    venue_order_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    tag: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    square_off: Mapped[bool]
    parent_id: Mapped[str | None] = mapped_column(String(CLIENT_ID_LEN))
    oco_id: Mapped[str | None] = mapped_column(String(CLIENT_ID_LEN))
    created_ns: Mapped[int]
    updated_ns: Mapped[int]

    __table_args__ = (
        ForeignKeyConstraint(
            ["run_id", "strategy_id"], ["strategy_runs.run_id", "strategy_runs.strategy_id"]
        ),
        Index(None, "run_id", "status"),
        Index(None, "venue_order_id"),
    )


class OrderEventModel(Base):
    """One row of the append-only order event journal."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(_Id, primary_key=True, autoincrement=True)
    client_order_id: Mapped[str] = mapped_column(String(CLIENT_ID_LEN))
    seq: Mapped[int]
    kind: Mapped[str] = mapped_column(String(ENUM_LEN))
    ts_ns: Mapped[int]
    payload: Mapped[dict[str, Any]]

    # the unique index serves the lookups by client_order_id
    __table_args__ = (UniqueConstraint("client_order_id", "seq"),)


class FillModel(Base):
    __tablename__ = "fills"

    id: Mapped[int] = mapped_column(_Id, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(ID_LEN))
    strategy_id: Mapped[str] = mapped_column(String(ID_LEN))
    trade_id: Mapped[str] = mapped_column(String(ID_LEN))
    client_order_id: Mapped[str] = mapped_column(String(CLIENT_ID_LEN))
    ts_ns: Mapped[int]
    token: Mapped[str] = mapped_column(String(TOKEN_LEN))
    symbol: Mapped[str] = mapped_column(String(SYMBOL_LEN))
    side: Mapped[str] = mapped_column(String(ENUM_LEN))
    qty: Mapped[int]
    price_paise: Mapped[int]
    charges_paise: Mapped[int]
    tag: Mapped[str] = mapped_column(Text)
    settlement: Mapped[bool]

    __table_args__ = (
        ForeignKeyConstraint(
            ["run_id", "strategy_id"], ["strategy_runs.run_id", "strategy_runs.strategy_id"]
        ),
        UniqueConstraint("trade_id", "client_order_id"),
        Index(None, "run_id", "ts_ns"),
        Index(None, "client_order_id"),
    )


class PositionModel(Base):
    __tablename__ = "positions"

    run_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    strategy_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    token: Mapped[str] = mapped_column(String(TOKEN_LEN), primary_key=True)
    qty: Mapped[int]  # signed units: > 0 long, < 0 short
    open_cost_paise: Mapped[int]
    cash_paise: Mapped[int]
    charges_paise: Mapped[int]
    realised_paise: Mapped[int]
    bought_qty: Mapped[int]
    sold_qty: Mapped[int]
    mark_paise: Mapped[int]
    updated_ns: Mapped[int]

    __table_args__ = (
        ForeignKeyConstraint(
            ["run_id", "strategy_id"], ["strategy_runs.run_id", "strategy_runs.strategy_id"]
        ),
    )


class PnlSnapshotModel(Base):
    __tablename__ = "pnl_snapshots"

    run_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    strategy_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    ts_ns: Mapped[int] = mapped_column(primary_key=True)
    realised_paise: Mapped[int]
    unrealised_paise: Mapped[int]
    charges_paise: Mapped[int]
    net_paise: Mapped[int]

    __table_args__ = (
        ForeignKeyConstraint(
            ["run_id", "strategy_id"], ["strategy_runs.run_id", "strategy_runs.strategy_id"]
        ),
        Index(None, "strategy_id", "ts_ns"),
    )


class RiskEventModel(Base):
    __tablename__ = "risk_events"

    id: Mapped[int] = mapped_column(_Id, primary_key=True, autoincrement=True)
    ts_ns: Mapped[int]
    run_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    strategy_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    client_order_id: Mapped[str | None] = mapped_column(String(CLIENT_ID_LEN))
    code: Mapped[str] = mapped_column(String(ID_LEN))
    reason: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        # a replayed denial is a no-op (NULL client ids are distinct: never deduplicated)
        UniqueConstraint("client_order_id", "code", "ts_ns"),
        Index(None, "strategy_id", "ts_ns"),
        Index(None, "ts_ns"),
    )


class CommandModel(Base):
    __tablename__ = "commands"

    id: Mapped[int] = mapped_column(_Id, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(ENUM_LEN))
    strategy_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    payload: Mapped[dict[str, Any]]
    issued_by: Mapped[str] = mapped_column(String(NAME_LEN))
    issued_ns: Mapped[int]
    acted_ns: Mapped[int | None]
    acted_by: Mapped[str | None] = mapped_column(String(NAME_LEN))
    result: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        # what the engine polls: the commands not yet acted on (a partial index: small)
        Index(
            "ix_commands_pending",
            "id",
            sqlite_where=text("acted_ns IS NULL"),
            postgresql_where=text("acted_ns IS NULL"),
        ),
        Index(None, "issued_ns"),
    )


class AuditLogModel(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(_Id, primary_key=True, autoincrement=True)
    ts_ns: Mapped[int]
    actor: Mapped[str] = mapped_column(String(NAME_LEN))
    action: Mapped[str] = mapped_column(String(ID_LEN))
    details: Mapped[dict[str, Any]]

    __table_args__ = (Index(None, "ts_ns"),)


class BacktestRunModel(Base):
    __tablename__ = "backtest_runs"

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    params: Mapped[dict[str, Any]]
    started_ns: Mapped[int]
    finished_ns: Mapped[int | None]
    metrics: Mapped[dict[str, Any] | None]
    output_dir: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index(None, "started_ns"),)


class StrategyLeaseModel(Base):
    __tablename__ = "strategy_leases"

    strategy_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(NAME_LEN))  # None: released
    fencing_token: Mapped[int]
    expires_ns: Mapped[int]
    heartbeat_ns: Mapped[int]

    __table_args__ = (Index(None, "expires_ns"),)
