"""What the engine, recovery and the dashboard call to write and read the database.

Every function takes ``bind``: an :class:`~sqlalchemy.Engine` (the call runs in its own
transaction: all or nothing) or a :class:`~sqlalchemy.Connection` (the call joins the
caller's transaction, so that a journal writer can put a whole batch of different rows in
one). Writers accept one row or a list of rows (one statement per table, executed as a batch).

Every write the engine journals is idempotent, so that recovery and the outage journal can
replay them:

=================== ==================================================================
orders              upsert on client_order_id; an older snapshot (smaller updated_ns)
                    never overwrites a newer one
order_events        (client_order_id, seq) unique: a replayed event is ignored
fills               (trade_id, client_order_id) unique: a replayed fill is ignored
positions           upsert on (run, strategy, token), monotonic in updated_ns
pnl_snapshots       upsert on (run, strategy, ts_ns)
risk_events         (client_order_id, code, ts_ns) unique: a replayed denial is ignored
=================== ==================================================================

Rows are validated before anything is written: a :class:`~algoengine.errors.ValidationError`
names the field (``"orders.symbol"``) and the value, the same on SQLite (which enforces no
lengths) as on PostgreSQL. Values are checked against the table: strings within the column's
length, integers within BIGINT (-2**63 .. 2**63 - 1), JSON with finite numbers.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    Connection,
    Engine,
    Integer,
    RowMapping,
    String,
    Table,
    and_,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from algoengine.domain.orders import OrderStatus
from algoengine.engine.commands import Command
from algoengine.errors import ConfigurationError, ValidationError
from algoengine.persistence._checks import (
    check_enum,
    check_int,
    check_json,
    check_opt_str,
    check_str,
)
from algoengine.persistence.db import write_transaction
from algoengine.persistence.models import Base
from algoengine.persistence.records import (
    AuditRow,
    BacktestRunRow,
    CommandRow,
    FillRow,
    OrderEventRow,
    OrderRow,
    PnlSnapshotRow,
    PositionRow,
    RiskEventRow,
    RunStatus,
    StrategyRunRow,
    command_fields,
)

__all__ = [
    "Bind",
    "append_order_event",
    "audit",
    "audit_entries",
    "fills_of_run",
    "fills_of_strategy",
    "get_backtest_run",
    "get_command",
    "get_order",
    "get_run",
    "insert_fill",
    "insert_pnl_snapshot",
    "insert_risk_event",
    "latest_pnl",
    "latest_run",
    "mark_command_acted",
    "new_backtest_id",
    "open_orders",
    "order_events",
    "orders_of_run",
    "orders_of_strategy",
    "pending_commands",
    "pnl_history",
    "positions",
    "post_command",
    "record_backtest_run",
    "record_run_start",
    "record_run_stop",
    "risk_events",
    "upsert_order",
    "upsert_position",
]

#: Where a repository call runs: an engine (own transaction) or a connection (the caller's).
Bind = Engine | Connection

R = TypeVar("R")

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_OPEN_STATUSES = tuple(s.value for s in OrderStatus if not s.is_terminal)

_runs: Table = Base.metadata.tables["strategy_runs"]
_orders: Table = Base.metadata.tables["orders"]
_events: Table = Base.metadata.tables["order_events"]
_fills: Table = Base.metadata.tables["fills"]
_positions: Table = Base.metadata.tables["positions"]
_pnl: Table = Base.metadata.tables["pnl_snapshots"]
_risk: Table = Base.metadata.tables["risk_events"]
_commands: Table = Base.metadata.tables["commands"]
_audit: Table = Base.metadata.tables["audit_log"]
_backtests: Table = Base.metadata.tables["backtest_runs"]


# ---- plumbing ------------------------------------------------------------------------------


def _listed(value: R | Iterable[R], cls: type[R], name: str) -> list[R]:
    items: list[Any] = [value] if isinstance(value, cls) else list(value)  # type: ignore[arg-type]
    for i, item in enumerate(items):
        if not isinstance(item, cls):
            raise ValidationError(f"{name}[{i}]", item, f"must be a {cls.__name__}")
    return items


def _checked(table: Table, values: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """``values`` if they fit the table's columns, else ValidationError naming the column.

    ``partial``: only the columns given are checked (an UPDATE's values).
    """
    for column in table.columns:
        name = f"{table.name}.{column.name}"
        if partial and column.name not in values:
            continue
        value = values.get(column.name)
        if value is None:
            if column.name not in values and column.autoincrement is True:
                continue
            if not column.nullable:
                raise ValidationError(name, value, "is required")
            continue
        ctype = column.type
        if isinstance(ctype, Integer):  # BigInteger too
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValidationError(name, value, "must be an integer")
            if not _INT64_MIN <= value <= _INT64_MAX:
                raise ValidationError(name, value, "is outside the 64-bit integer range")
        elif isinstance(ctype, String):  # Text too
            if not isinstance(value, str):
                raise ValidationError(name, value, "must be a string")
            if ctype.length is not None and len(value) > ctype.length:
                raise ValidationError(name, value, f"is longer than {ctype.length} characters")
            if "\x00" in value:
                raise ValidationError(name, value, "must not contain NUL characters")
        elif isinstance(ctype, Boolean) and not isinstance(value, bool):
            raise ValidationError(name, value, "must be True or False")
        elif isinstance(ctype, JSON) and not isinstance(value, dict):
            raise ValidationError(name, value, "must be a JSON object")
    extra = set(values) - set(table.columns.keys())
    if extra:  # pragma: no cover - a programming error in this module
        raise ValidationError(table.name, sorted(extra), "not columns of the table")
    return dict(values)


def _insert(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that can say ON CONFLICT (both dialects spell it the same way)."""
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise ConfigurationError(f"database: unsupported dialect {name!r}")  # pragma: no cover


@contextmanager
def _reading(bind: Bind) -> Iterator[Connection]:
    if isinstance(bind, Connection):
        yield bind
        return
    with bind.connect() as conn:
        yield conn


def _dict(row: RowMapping) -> dict[str, Any]:
    return dict(row)


def _names(table: Table) -> list[str]:
    return [c.name for c in table.columns]


# ---- runs ----------------------------------------------------------------------------------


def _run_values(run: StrategyRunRow) -> dict[str, Any]:
    return _checked(
        _runs,
        {
            "run_id": run.run_id,
            "strategy_id": run.strategy_id,
            "mode": run.mode.value,
            "status": run.status.value,
            "started_ns": run.started_ns,
            "stopped_ns": run.stopped_ns,
            "stop_reason": run.stop_reason,
            "config": dict(run.config),
            "owner": run.owner,
            "fencing_token": run.fencing_token,
        },
    )


def _run_row(values: Mapping[str, Any]) -> StrategyRunRow:
    return StrategyRunRow(**values)


def record_run_start(bind: Bind, runs: StrategyRunRow | Iterable[StrategyRunRow]) -> None:
    """Record that strategies started in a run (one row per strategy).

    Raises
    ------
    ValidationError
        A row is invalid, or ``(run_id, strategy_id)`` is already recorded (run ids must be
        unique per start); nothing is written then.
    """
    rows = [_run_values(r) for r in _listed(runs, StrategyRunRow, "runs")]
    if not rows:
        return
    with write_transaction(bind) as conn:
        stmt = (
            _insert(conn, _runs)
            .on_conflict_do_nothing(index_elements=["run_id", "strategy_id"])
            .returning(_runs.c.run_id, _runs.c.strategy_id)
        )
        inserted = {(r.run_id, r.strategy_id) for r in conn.execute(stmt, rows)}
        for values in rows:
            key = (values["run_id"], values["strategy_id"])
            if key not in inserted:
                raise ValidationError(
                    "run_id", values["run_id"], f"already recorded for strategy {key[1]!r}"
                )


def record_run_stop(
    bind: Bind,
    run_id: str,
    *,
    stopped_ns: int,
    status: RunStatus = RunStatus.STOPPED,
    reason: str | None = None,
    strategy_id: str | None = None,
) -> int:
    """Record that a run's strategies (or one of them) stopped.

    Parameters
    ----------
    run_id
        The run.
    stopped_ns
        When [UTC epoch ns].
    status
        stopped, failed or crashed.
    reason
        Why (free text).
    strategy_id
        Only this strategy (``None``: every strategy of the run still running).

    Returns
    -------
    int
        How many strategy runs were updated (0: none was running).
    """
    status = check_enum("status", status, RunStatus)
    if status is RunStatus.RUNNING:
        raise ValidationError("status", status, "a stopped run cannot be 'running'")
    check_str("run_id", run_id)
    check_int("stopped_ns", stopped_ns, minimum=0)
    check_opt_str("strategy_id", strategy_id)
    values = _checked(
        _runs,
        {"status": status.value, "stopped_ns": stopped_ns, "stop_reason": reason},
        partial=True,
    )
    cond = and_(_runs.c.run_id == run_id, _runs.c.status == RunStatus.RUNNING.value)
    if strategy_id is not None:
        cond = and_(cond, _runs.c.strategy_id == strategy_id)
    with write_transaction(bind) as conn:
        return conn.execute(update(_runs).where(cond).values(**values)).rowcount


def get_run(bind: Bind, run_id: str, strategy_id: str) -> StrategyRunRow | None:
    """One strategy run, or ``None``."""
    with _reading(bind) as conn:
        row = (
            conn.execute(
                select(_runs).where(_runs.c.run_id == run_id, _runs.c.strategy_id == strategy_id)
            )
            .mappings()
            .first()
        )
    return None if row is None else _run_row(_dict(row))


def latest_run(
    bind: Bind, strategy_id: str, *, before_run_id: str | None = None
) -> StrategyRunRow | None:
    """The strategy's most recently started run (recovery's starting point), or ``None``.

    ``before_run_id`` leaves that run out (the one now starting).
    """
    stmt = select(_runs).where(_runs.c.strategy_id == strategy_id)
    if before_run_id is not None:
        stmt = stmt.where(_runs.c.run_id != before_run_id)
    stmt = stmt.order_by(_runs.c.started_ns.desc(), _runs.c.run_id.desc()).limit(1)
    with _reading(bind) as conn:
        row = conn.execute(stmt).mappings().first()
    return None if row is None else _run_row(_dict(row))


# ---- orders and their events ---------------------------------------------------------------


def _order_values(order: OrderRow) -> dict[str, Any]:
    return _checked(
        _orders,
        {
            "client_order_id": order.client_order_id,
            "run_id": order.run_id,
            "strategy_id": order.strategy_id,
            "token": order.token,
            "symbol": order.symbol,
            "exchange": order.exchange,
            "side": order.side.value,
            "order_type": order.order_type.value,
            "tif": order.tif.value,
            "qty": order.qty,
            "price_paise": order.price_paise,
            "trigger_price_paise": order.trigger_price_paise,
            "status": order.status.value,
            "filled_qty": order.filled_qty,
            "filled_value_paise": order.filled_value_paise,
            "venue_order_id": order.venue_order_id,
            "tag": order.tag,
            "reason": order.reason,
            "square_off": order.square_off,
            "parent_id": order.parent_id,
            "oco_id": order.oco_id,
            "created_ns": order.created_ns,
            "updated_ns": order.updated_ns,
        },
    )


def upsert_order(bind: Bind, orders: OrderRow | Iterable[OrderRow]) -> None:
    """Insert orders, or update them in place.

    An update applies only if its ``updated_ns`` is at least the stored one (an older
    snapshot, replayed late, never overwrites a newer one); ``created_ns`` never changes.
    """
    rows = [_order_values(o) for o in _listed(orders, OrderRow, "orders")]
    if not rows:
        return
    with write_transaction(bind) as conn:
        stmt = _insert(conn, _orders)
        changing = [c for c in _names(_orders) if c not in ("client_order_id", "created_ns")]
        stmt = stmt.on_conflict_do_update(
            index_elements=["client_order_id"],
            set_={c: stmt.excluded[c] for c in changing},
            where=_orders.c.updated_ns <= stmt.excluded.updated_ns,
        )
        conn.execute(stmt, rows)


def _order_row(values: Mapping[str, Any]) -> OrderRow:
    return OrderRow(**values)


def get_order(bind: Bind, client_order_id: str) -> OrderRow | None:
    """One order by client order id, or ``None``."""
    with _reading(bind) as conn:
        row = (
            conn.execute(select(_orders).where(_orders.c.client_order_id == client_order_id))
            .mappings()
            .first()
        )
    return None if row is None else _order_row(_dict(row))


def open_orders(bind: Bind, run_id: str, *, strategy_id: str | None = None) -> list[OrderRow]:
    """The run's orders not in a terminal status, oldest first (what recovery reconciles)."""
    stmt = select(_orders).where(_orders.c.run_id == run_id, _orders.c.status.in_(_OPEN_STATUSES))
    if strategy_id is not None:
        stmt = stmt.where(_orders.c.strategy_id == strategy_id)
    stmt = stmt.order_by(_orders.c.created_ns, _orders.c.client_order_id)
    with _reading(bind) as conn:
        return [_order_row(_dict(r)) for r in conn.execute(stmt).mappings()]


def orders_of_run(bind: Bind, run_id: str, *, strategy_id: str | None = None) -> list[OrderRow]:
    """Every order of the run, oldest first."""
    stmt = select(_orders).where(_orders.c.run_id == run_id)
    if strategy_id is not None:
        stmt = stmt.where(_orders.c.strategy_id == strategy_id)
    stmt = stmt.order_by(_orders.c.created_ns, _orders.c.client_order_id)
    with _reading(bind) as conn:
        return [_order_row(_dict(r)) for r in conn.execute(stmt).mappings()]


def append_order_event(bind: Bind, events: OrderEventRow | Iterable[OrderEventRow]) -> int:
    """Append order events to the journal.

    Returns
    -------
    int
        How many were new; an event whose ``(client_order_id, seq)`` is already there is
        ignored (a replay), not an error.
    """
    rows = [
        _checked(
            _events,
            {
                "client_order_id": e.client_order_id,
                "seq": e.seq,
                "kind": e.kind,
                "ts_ns": e.ts_ns,
                "payload": dict(e.payload),
            },
        )
        for e in _listed(events, OrderEventRow, "events")
    ]
    return _insert_new(bind, _events, rows, ["client_order_id", "seq"])


def order_events(bind: Bind, client_order_id: str) -> list[OrderEventRow]:
    """An order's journal, in order (``seq`` ascending)."""
    stmt = (
        select(
            _events.c.client_order_id,
            _events.c.seq,
            _events.c.kind,
            _events.c.ts_ns,
            _events.c.payload,
        )
        .where(_events.c.client_order_id == client_order_id)
        .order_by(_events.c.seq)
    )
    with _reading(bind) as conn:
        return [OrderEventRow(**_dict(r)) for r in conn.execute(stmt).mappings()]


def _insert_new(
    bind: Bind, table: Table, rows: Sequence[Mapping[str, Any]], unique: list[str]
) -> int:
    """Insert rows, skipping those that clash on ``unique``; the number inserted."""
    if not rows:
        return 0
    with write_transaction(bind) as conn:
        stmt = (
            _insert(conn, table)
            .on_conflict_do_nothing(index_elements=unique)
            .returning(table.c[unique[0]])
        )
        return len(conn.execute(stmt, list(rows)).all())


# ---- fills, positions, P&L -----------------------------------------------------------------


def insert_fill(bind: Bind, fills: FillRow | Iterable[FillRow]) -> int:
    """Record fills.

    Returns
    -------
    int
        How many were new; a fill whose ``(trade_id, client_order_id)`` is already recorded is
        ignored (recovery replays fills), not an error.
    """
    rows = [
        _checked(
            _fills,
            {
                "run_id": f.run_id,
                "strategy_id": f.strategy_id,
                "trade_id": f.trade_id,
                "client_order_id": f.client_order_id,
                "ts_ns": f.ts_ns,
                "token": f.token,
                "symbol": f.symbol,
                "side": f.side.value,
                "qty": f.qty,
                "price_paise": f.price_paise,
                "charges_paise": f.charges_paise,
                "tag": f.tag,
                "settlement": f.settlement,
            },
        )
        for f in _listed(fills, FillRow, "fills")
    ]
    return _insert_new(bind, _fills, rows, ["trade_id", "client_order_id"])


def orders_of_strategy(bind: Bind, strategy_id: str) -> list[OrderRow]:
    """Every order of a strategy, whichever run sent or last managed it, oldest first (what
    recovery and a take-over reconcile: a strategy may have moved between engine tasks)."""
    stmt = (
        select(_orders)
        .where(_orders.c.strategy_id == strategy_id)
        .order_by(_orders.c.created_ns, _orders.c.client_order_id)
    )
    with _reading(bind) as conn:
        return [_order_row(_dict(r)) for r in conn.execute(stmt).mappings()]


def fills_of_strategy(bind: Bind, strategy_id: str) -> list[FillRow]:
    """Every fill of a strategy in time order, across its runs (its positions replay from
    these)."""
    cols = [c for c in _fills.c if c.name != "id"]
    stmt = (
        select(*cols)
        .where(_fills.c.strategy_id == strategy_id)
        .order_by(_fills.c.ts_ns, _fills.c.id)
    )
    with _reading(bind) as conn:
        return [FillRow(**_dict(r)) for r in conn.execute(stmt).mappings()]


def fills_of_run(bind: Bind, run_id: str, *, strategy_id: str | None = None) -> list[FillRow]:
    """The run's fills in time order."""
    cols = [c for c in _fills.c if c.name != "id"]
    stmt = select(*cols).where(_fills.c.run_id == run_id)
    if strategy_id is not None:
        stmt = stmt.where(_fills.c.strategy_id == strategy_id)
    stmt = stmt.order_by(_fills.c.ts_ns, _fills.c.id)
    with _reading(bind) as conn:
        return [FillRow(**_dict(r)) for r in conn.execute(stmt).mappings()]


def upsert_position(bind: Bind, positions: PositionRow | Iterable[PositionRow]) -> None:
    """Write positions in place (per run, strategy, token), keeping the newest
    (``updated_ns``) when an older snapshot arrives late."""
    rows = [
        _checked(
            _positions,
            {
                "run_id": p.run_id,
                "strategy_id": p.strategy_id,
                "token": p.token,
                "qty": p.qty,
                "open_cost_paise": p.open_cost_paise,
                "cash_paise": p.cash_paise,
                "charges_paise": p.charges_paise,
                "realised_paise": p.realised_paise,
                "bought_qty": p.bought_qty,
                "sold_qty": p.sold_qty,
                "mark_paise": p.mark_paise,
                "updated_ns": p.updated_ns,
            },
        )
        for p in _listed(positions, PositionRow, "positions")
    ]
    if not rows:
        return
    key = ["run_id", "strategy_id", "token"]
    with write_transaction(bind) as conn:
        stmt = _insert(conn, _positions)
        stmt = stmt.on_conflict_do_update(
            index_elements=key,
            set_={c: stmt.excluded[c] for c in _names(_positions) if c not in key},
            where=_positions.c.updated_ns <= stmt.excluded.updated_ns,
        )
        conn.execute(stmt, rows)


def positions(
    bind: Bind, run_id: str, *, strategy_id: str | None = None, open_only: bool = False
) -> list[PositionRow]:
    """The run's positions (``open_only``: qty != 0), by strategy then token."""
    cols = [c for c in _positions.c if c.name != "realised_paise"]
    stmt = select(*cols).where(_positions.c.run_id == run_id)
    if strategy_id is not None:
        stmt = stmt.where(_positions.c.strategy_id == strategy_id)
    if open_only:
        stmt = stmt.where(_positions.c.qty != 0)
    stmt = stmt.order_by(_positions.c.strategy_id, _positions.c.token)
    with _reading(bind) as conn:
        return [PositionRow(**_dict(r)) for r in conn.execute(stmt).mappings()]


def insert_pnl_snapshot(bind: Bind, snapshots: PnlSnapshotRow | Iterable[PnlSnapshotRow]) -> None:
    """Record P&L snapshots (one per strategy per minute: ``ts_ns`` the minute). Writing the
    same (run, strategy, ts_ns) again replaces its values."""
    rows = [
        _checked(
            _pnl,
            {
                "run_id": s.run_id,
                "strategy_id": s.strategy_id,
                "ts_ns": s.ts_ns,
                "realised_paise": s.realised_paise,
                "unrealised_paise": s.unrealised_paise,
                "charges_paise": s.charges_paise,
                "net_paise": s.net_paise,
            },
        )
        for s in _listed(snapshots, PnlSnapshotRow, "snapshots")
    ]
    if not rows:
        return
    key = ["run_id", "strategy_id", "ts_ns"]
    with write_transaction(bind) as conn:
        stmt = _insert(conn, _pnl)
        stmt = stmt.on_conflict_do_update(
            index_elements=key,
            set_={c: stmt.excluded[c] for c in _names(_pnl) if c not in key},
        )
        conn.execute(stmt, rows)


def latest_pnl(bind: Bind, *, run_id: str | None = None) -> list[PnlSnapshotRow]:
    """Each strategy's latest P&L snapshot (of the run, or across runs), by strategy id."""
    ranked = select(
        _pnl,
        func.row_number()
        .over(
            partition_by=_pnl.c.strategy_id,
            order_by=(_pnl.c.ts_ns.desc(), _pnl.c.run_id.desc()),
        )
        .label("rank"),
    )
    if run_id is not None:
        ranked = ranked.where(_pnl.c.run_id == run_id)
    sub = ranked.subquery()
    stmt = (
        select(*[sub.c[c] for c in _names(_pnl)]).where(sub.c.rank == 1).order_by(sub.c.strategy_id)
    )
    with _reading(bind) as conn:
        return [PnlSnapshotRow(**_dict(r)) for r in conn.execute(stmt).mappings()]


def pnl_history(
    bind: Bind,
    strategy_id: str,
    *,
    run_id: str | None = None,
    from_ns: int | None = None,
    to_ns: int | None = None,
) -> list[PnlSnapshotRow]:
    """A strategy's P&L snapshots in time order (``from_ns <= ts_ns <= to_ns``)."""
    stmt = select(_pnl).where(_pnl.c.strategy_id == strategy_id)
    if run_id is not None:
        stmt = stmt.where(_pnl.c.run_id == run_id)
    if from_ns is not None:
        stmt = stmt.where(_pnl.c.ts_ns >= from_ns)
    if to_ns is not None:
        stmt = stmt.where(_pnl.c.ts_ns <= to_ns)
    stmt = stmt.order_by(_pnl.c.ts_ns, _pnl.c.run_id)
    with _reading(bind) as conn:
        return [PnlSnapshotRow(**_dict(r)) for r in conn.execute(stmt).mappings()]


# ---- risk, commands, audit, backtests ------------------------------------------------------


def insert_risk_event(bind: Bind, events: RiskEventRow | Iterable[RiskEventRow]) -> int:
    """Record risk decisions (order denials).

    Returns
    -------
    int
        How many were new; a denial already recorded (same client order id, code and time)
        is ignored.
    """
    rows = [
        _checked(
            _risk,
            {
                "ts_ns": e.ts_ns,
                "run_id": e.run_id,
                "strategy_id": e.strategy_id,
                "client_order_id": e.client_order_id,
                "code": e.code,
                "reason": e.reason,
            },
        )
        for e in _listed(events, RiskEventRow, "events")
    ]
    return _insert_new(bind, _risk, rows, ["client_order_id", "code", "ts_ns"])


def risk_events(
    bind: Bind,
    *,
    strategy_id: str | None = None,
    since_ns: int | None = None,
    limit: int = 1_000,
) -> list[RiskEventRow]:
    """Recent risk events, newest first."""
    stmt = select(*[c for c in _risk.c if c.name != "id"])
    if strategy_id is not None:
        stmt = stmt.where(_risk.c.strategy_id == strategy_id)
    if since_ns is not None:
        stmt = stmt.where(_risk.c.ts_ns >= since_ns)
    stmt = stmt.order_by(_risk.c.ts_ns.desc(), _risk.c.id.desc()).limit(_limit(limit))
    with _reading(bind) as conn:
        return [RiskEventRow(**_dict(r)) for r in conn.execute(stmt).mappings()]


def _limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValidationError("limit", limit, "must be an integer >= 1")
    return limit


def post_command(bind: Bind, command: Command, *, issued_ns: int) -> int:
    """Queue a command for the engine (the dashboard and the CLI call this).

    Parameters
    ----------
    command
        An engine command (``KillSwitch``, ``SquareOff``, ``Pause``, ``Resume``,
        ``StopStrategy``, ``StopEngine``); its ``issued_by`` says who asked.
    issued_ns
        When [UTC epoch ns].

    Returns
    -------
    int
        The command's id.
    """
    kind, strategy_id, payload = command_fields(command)
    values = _checked(
        _commands,
        {
            "kind": kind,
            "strategy_id": strategy_id,
            "payload": payload,
            "issued_by": command.issued_by,
            "issued_ns": check_int("issued_ns", issued_ns, minimum=0),
        },
    )
    with write_transaction(bind) as conn:
        new_id: int = conn.execute(
            _insert(conn, _commands).returning(_commands.c.id), values
        ).scalar_one()
    return new_id


def pending_commands(
    bind: Bind, *, strategy_ids: Collection[str] | None = None, limit: int = 100
) -> list[CommandRow]:
    """Commands not yet acted on, oldest first (the engine polls this).

    ``strategy_ids``: only commands for these strategies and those for all strategies
    (``strategy_id`` NULL); ``None``: every pending command.
    """
    stmt = select(_commands).where(_commands.c.acted_ns.is_(None))
    if strategy_ids is not None:
        cond: ColumnElement[bool] = _commands.c.strategy_id.is_(None)
        if strategy_ids:
            cond = or_(cond, _commands.c.strategy_id.in_(sorted(strategy_ids)))
        stmt = stmt.where(cond)
    stmt = stmt.order_by(_commands.c.id).limit(_limit(limit))
    with _reading(bind) as conn:
        return [CommandRow(**_dict(r)) for r in conn.execute(stmt).mappings()]


def mark_command_acted(
    bind: Bind, command_id: int, *, acted_ns: int, acted_by: str, result: str
) -> bool:
    """Record that the engine acted on a command, and the result.

    Returns
    -------
    bool
        True if this call marked it; False if it was already marked (another engine task
        acted first) or does not exist.
    """
    check_int("command_id", command_id, minimum=1)
    check_int("acted_ns", acted_ns, minimum=0)
    check_str("acted_by", acted_by)
    values = _checked(
        _commands,
        {
            "acted_ns": acted_ns,
            "acted_by": acted_by,
            "result": check_str("result", result, empty=True),
        },
        partial=True,
    )
    with write_transaction(bind) as conn:
        done = conn.execute(
            update(_commands)
            .where(_commands.c.id == command_id, _commands.c.acted_ns.is_(None))
            .values(**values)
        )
        return done.rowcount == 1


def get_command(bind: Bind, command_id: int) -> CommandRow | None:
    """One command by id, or ``None``."""
    with _reading(bind) as conn:
        row = conn.execute(select(_commands).where(_commands.c.id == command_id)).mappings().first()
    return None if row is None else CommandRow(**_dict(row))


def audit(
    bind: Bind, *, ts_ns: int, actor: str, action: str, details: Mapping[str, Any] | None = None
) -> int:
    """Append an audit entry: ``actor`` (a user, "engine", "cli") did ``action`` at ``ts_ns``.

    Returns
    -------
    int
        The entry's id.
    """
    values = _checked(
        _audit,
        {
            "ts_ns": check_int("ts_ns", ts_ns, minimum=0),
            "actor": check_str("actor", actor),
            "action": check_str("action", action),
            "details": check_json("details", {} if details is None else details),
        },
    )
    with write_transaction(bind) as conn:
        new_id: int = conn.execute(
            _insert(conn, _audit).returning(_audit.c.id), values
        ).scalar_one()
    return new_id


def audit_entries(
    bind: Bind, *, since_ns: int | None = None, actor: str | None = None, limit: int = 1_000
) -> list[AuditRow]:
    """Audit entries, newest first."""
    stmt = select(_audit)
    if since_ns is not None:
        stmt = stmt.where(_audit.c.ts_ns >= since_ns)
    if actor is not None:
        stmt = stmt.where(_audit.c.actor == actor)
    stmt = stmt.order_by(_audit.c.ts_ns.desc(), _audit.c.id.desc()).limit(_limit(limit))
    with _reading(bind) as conn:
        return [AuditRow(**_dict(r)) for r in conn.execute(stmt).mappings()]


def record_backtest_run(bind: Bind, run: BacktestRunRow) -> str:
    """Record a backtest (insert, or update the row with the same id: call it at the start
    and again with the metrics at the end).

    Returns
    -------
    str
        The run's id.
    """
    if not isinstance(run, BacktestRunRow):
        raise ValidationError("run", run, "must be a BacktestRunRow")
    values = _checked(
        _backtests,
        {
            "id": run.id,
            "params": dict(run.params),
            "started_ns": run.started_ns,
            "finished_ns": run.finished_ns,
            "metrics": None if run.metrics is None else dict(run.metrics),
            "output_dir": run.output_dir,
        },
    )
    with write_transaction(bind) as conn:
        stmt = _insert(conn, _backtests)
        stmt = stmt.on_conflict_do_update(
            index_elements=["id"],
            set_={c: stmt.excluded[c] for c in _names(_backtests) if c != "id"},
        )
        conn.execute(stmt, values)
    return run.id


def new_backtest_id() -> str:
    """A fresh backtest id (32 hex digits)."""
    return uuid.uuid4().hex


def get_backtest_run(bind: Bind, backtest_id: str) -> BacktestRunRow | None:
    """One backtest, or ``None``."""
    with _reading(bind) as conn:
        row = (
            conn.execute(select(_backtests).where(_backtests.c.id == backtest_id))
            .mappings()
            .first()
        )
    return None if row is None else BacktestRunRow(**_dict(row))
