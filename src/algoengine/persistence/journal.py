"""The engine's journal: every order, event, fill, position, P&L snapshot, risk decision and
command result goes to the database from a background thread, in batches, and survives a
database outage.

The event loop pays one O(1) queue put
-----------------------------------------
The ``put_*`` methods run on the event loop's thread. Each copies the fields of a mutable
object that may still change (of an OMS :class:`~algoengine.engine.oms.ManagedOrder`: status,
quantities, prices, venue id, reason, times; of a portfolio
:class:`~algoengine.engine.portfolio.Position`: all of them) into a tuple with one C-level
``attrgetter`` call, keeps a reference to what does not change (order events,
:class:`~algoengine.engine.portfolio.PnL`, the engine's
:class:`~algoengine.engine.engine.FillRecord`, which is never changed once recorded, and an
order's fields fixed at its creation), and appends that to an unbounded in-memory queue (a
``collections.deque``: no lock, never blocks). Measured: 0.1-0.4 us per put.
Nothing is validated or converted there: the writer thread builds the row values of
:mod:`~algoengine.persistence.records` (which validate themselves) and writes them. A record
that cannot be stored (a value a row refuses, a row the database refuses) is logged with the
field and the value and kept in the dead-letter file (below); it never stops the journal.

Batches
-------
The writer wakes every ``flush_interval_s`` (at once on :meth:`Journal.flush` and
:meth:`Journal.close`), takes what is queued and writes it in transactions of at most
``batch_max`` rows, one transaction spanning every table of the batch (the repositories join
the writer's connection). Inside a transaction the tables go in a fixed order (strategy runs
first: orders, fills, positions and P&L refer to them) and each table's rows keep their queue
order (an order's events by ``seq``). Snapshots of the same order, position or P&L minute in one
batch are coalesced to the newest, which is what the idempotent upserts would keep anyway.
Orders, fills, positions and P&L need their strategy run in ``strategy_runs``:
:meth:`Journal.put_run_start` records it with the strategy's configuration; a strategy of this
run seen without one is recorded with an empty configuration (and a warning).

Outages
-------
When a write fails with a database error (connection refused, server shut down, the SQLite
file locked or read-only: anything but a row the database refuses), the writer appends the
batch to the spool, ``<spool_dir>/journal.spool.jsonl`` (JSON lines, one row per line tagged
with its table, ``{"t": "orders", "r": {...}}``; written and ``fsync``-ed per batch), marks the
journal unhealthy (:attr:`Journal.healthy` False, :attr:`Journal.backlog` the rows held), sends
every later batch to the spool too (the database must see the rows in order), and retries the
database with backoff: 0.2 s, doubling to 5 s. When a retry succeeds the spool is replayed in
order, in batches (every journaled write is idempotent, so replaying a batch that was partly
written before the failure is safe), truncated, and the journal is healthy again. If the spool
itself cannot be written (a full disk) the rows stay in memory, in order, until the spool or the
database takes them. A healthy journal checks the database every ``ping_interval_s`` while idle,
so that an outage is noticed before the next order.

Nothing is lost: once :meth:`Journal.flush` returns True, every record put before it is in the
database or in the spool. A spool left behind (the process crashed, or was closed during an
outage) is replayed by the next :class:`Journal` on the same ``spool_dir`` at its start, before
anything new; a line torn by a crash during its write is dropped (its batch was never
acknowledged). What a crash loses is only what was still in the in-memory queue: recovery
reconciles that with the broker's books. One journal at a time uses a spool folder (a lock file,
released when the process dies).

The dead-letter file, ``<spool_dir>/journal.dead.jsonl``, keeps the records that can never be
written (one JSON object per line: the table, the row or the record, and the error), for an
operator to inspect; the journal does not read it.

Trading through an outage
-------------------------
``on_outage="keep_trading"`` (the default): the engine trades on; the journal holds the
records. ``on_outage="stop_opening"``: :meth:`Journal.allow_new_positions` answers False while
the journal is unhealthy, and the engine's pre-trade check then refuses orders that open or
add to a position (exits and square-offs still pass), until the database is back and the spool
replayed.

Metrics
-------
:meth:`Journal.metrics` gives counters: rows written per table, transactions, rows spooled,
replays, dead letters, outages, and the last error, whose text never holds the database
password (the URL is shown masked).
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import fcntl
import json
import logging
import math
import operator
import os
import threading
import time
import types
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError

from algoengine.domain.errors import AlgoEngineError
from algoengine.domain.events import OrderDenied, OrderEvent
from algoengine.errors import ConfigurationError, ValidationError
from algoengine.persistence import repositories as repo
from algoengine.persistence._checks import (
    check_enum,
    check_int,
    check_opt_str,
    check_str,
)
from algoengine.persistence.db import make_engine, masked, write_transaction
from algoengine.persistence.models import ID_LEN
from algoengine.persistence.records import (
    FillRow,
    OrderEventRow,
    OrderRow,
    PnlSnapshotRow,
    PositionRow,
    RiskEventRow,
    RunMode,
    RunStatus,
    StrategyRunRow,
)

if TYPE_CHECKING:
    from algoengine.engine.engine import FillRecord
    from algoengine.engine.oms import ManagedOrder
    from algoengine.engine.portfolio import PnL, Position

__all__ = [
    "DEAD_LETTER_FILE",
    "SPOOL_FILE",
    "CommandActedRow",
    "Journal",
    "JournalClosedError",
    "JournalMetrics",
    "JournalRow",
    "OnOutage",
    "RunStopRow",
]

log = logging.getLogger(__name__)

#: The spool's file name inside ``spool_dir``.
SPOOL_FILE = "journal.spool.jsonl"
#: The dead-letter file's name inside ``spool_dir``.
DEAD_LETTER_FILE = "journal.dead.jsonl"
_LOCK_FILE = "journal.lock"

_BACKOFF_START_S = 0.2
_BACKOFF_MAX_S = 5.0
_MINUTE_NS = 60_000_000_000


class OnOutage(StrEnum):
    """What the engine does while the journal cannot reach the database."""

    KEEP_TRADING = "keep_trading"
    STOP_OPENING = "stop_opening"


class JournalClosedError(AlgoEngineError):
    """A record was put into a journal after :meth:`Journal.close`."""


# ---- rows of the journal's own (updates, not inserts) ---------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class RunStopRow:
    """A strategy run stopped (:func:`~algoengine.persistence.repositories.record_run_stop`).

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
        One strategy (``None``: every strategy of the run still running).
    """

    run_id: str
    stopped_ns: int
    status: RunStatus = RunStatus.STOPPED
    reason: str | None = None
    strategy_id: str | None = None

    def __post_init__(self) -> None:
        check_str("run_id", self.run_id)
        check_int("stopped_ns", self.stopped_ns, minimum=0)
        status = check_enum("status", self.status, RunStatus)
        if status is RunStatus.RUNNING:
            raise ValidationError("status", status, "a stopped run cannot be 'running'")
        object.__setattr__(self, "status", status)
        if self.reason is not None:
            check_str("reason", self.reason, empty=True)
        check_opt_str("strategy_id", self.strategy_id)


@dataclass(frozen=True, kw_only=True, slots=True)
class CommandActedRow:
    """The engine acted on a command from the ``commands`` table
    (:func:`~algoengine.persistence.repositories.mark_command_acted`).

    Parameters
    ----------
    command_id
        The command's id.
    acted_ns
        When [UTC epoch ns].
    acted_by
        Which engine task.
    result
        What came of it (free text).
    """

    command_id: int
    acted_ns: int
    acted_by: str
    result: str

    def __post_init__(self) -> None:
        check_int("command_id", self.command_id, minimum=1)
        check_int("acted_ns", self.acted_ns, minimum=0)
        check_str("acted_by", self.acted_by)
        check_str("result", self.result, empty=True)


#: The row types :meth:`Journal.put` takes.
JournalRow: TypeAlias = (
    StrategyRunRow
    | OrderRow
    | OrderEventRow
    | FillRow
    | PositionRow
    | PnlSnapshotRow
    | RiskEventRow
    | CommandActedRow
    | RunStopRow
)


# ---- the tables, in the order a transaction writes them -------------------------------------


def _write_runs(conn: Connection, rows: Sequence[Any]) -> int:
    # record_run_start refuses a run already recorded; a replay must pass over it
    new: dict[tuple[str, str], Any] = {}
    for r in rows:
        key = (r.run_id, r.strategy_id)
        if key not in new and repo.get_run(conn, *key) is None:
            new[key] = r
    repo.record_run_start(conn, list(new.values()))
    return len(new)


def _newest(rows: Sequence[Any], key: Callable[[Any], object], ts: str) -> list[Any]:
    """One row per key: the last with the greatest ``ts`` (what the upsert keeps), in the
    order of first appearance."""
    best: dict[object, Any] = {}
    for r in rows:
        k = key(r)
        old = best.get(k)
        if old is None or getattr(r, ts) >= getattr(old, ts):
            best[k] = r
    return list(best.values())


def _write_orders(conn: Connection, rows: Sequence[Any]) -> int:
    rows = _newest(rows, operator.attrgetter("client_order_id"), "updated_ns")
    repo.upsert_order(conn, rows)
    return len(rows)


def _write_events(conn: Connection, rows: Sequence[Any]) -> int:
    repo.append_order_event(conn, list(rows))
    return len(rows)


def _write_fills(conn: Connection, rows: Sequence[Any]) -> int:
    repo.insert_fill(conn, list(rows))
    return len(rows)


def _write_positions(conn: Connection, rows: Sequence[Any]) -> int:
    rows = _newest(rows, operator.attrgetter("run_id", "strategy_id", "token"), "updated_ns")
    repo.upsert_position(conn, rows)
    return len(rows)


def _write_pnl(conn: Connection, rows: Sequence[Any]) -> int:
    # the same minute twice: the later snapshot wins (as the upsert would)
    best = {(r.run_id, r.strategy_id, r.ts_ns): r for r in rows}
    repo.insert_pnl_snapshot(conn, list(best.values()))
    return len(best)


def _write_risk(conn: Connection, rows: Sequence[Any]) -> int:
    repo.insert_risk_event(conn, list(rows))
    return len(rows)


def _write_acted(conn: Connection, rows: Sequence[Any]) -> int:
    for r in rows:  # already marked (a replay, another task): a no-op
        repo.mark_command_acted(
            conn, r.command_id, acted_ns=r.acted_ns, acted_by=r.acted_by, result=r.result
        )
    return len(rows)


def _write_stops(conn: Connection, rows: Sequence[Any]) -> int:
    for r in rows:  # only runs still running change: a replay is a no-op
        repo.record_run_stop(
            conn,
            r.run_id,
            stopped_ns=r.stopped_ns,
            status=r.status,
            reason=r.reason,
            strategy_id=r.strategy_id,
        )
    return len(rows)


@dataclass(frozen=True, slots=True)
class _Table:
    tag: str  # the spool's and the metrics' name
    row_type: type[Any]
    write: Callable[[Connection, Sequence[Any]], int]


_TABLES: tuple[_Table, ...] = (
    _Table("strategy_runs", StrategyRunRow, _write_runs),
    _Table("orders", OrderRow, _write_orders),
    _Table("order_events", OrderEventRow, _write_events),
    _Table("fills", FillRow, _write_fills),
    _Table("positions", PositionRow, _write_positions),
    _Table("pnl_snapshots", PnlSnapshotRow, _write_pnl),
    _Table("risk_events", RiskEventRow, _write_risk),
    _Table("commands", CommandActedRow, _write_acted),
    _Table("strategy_runs.stop", RunStopRow, _write_stops),
)
_BY_TAG: Mapping[str, _Table] = types.MappingProxyType({t.tag: t for t in _TABLES})
_BY_TYPE: Mapping[type[Any], _Table] = types.MappingProxyType({t.row_type: t for t in _TABLES})
_ROW_TYPES = tuple(_BY_TYPE)

# a row as the writer handles it: (table, row)
_Item = tuple[_Table, Any]


def _row_json(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(row):
        value = getattr(row, f.name)
        if isinstance(value, Enum):
            value = value.value
        elif isinstance(value, Mapping):
            value = dict(value)
        out[f.name] = value
    return out


def _encode(item: _Item) -> bytes:
    table, row = item
    text = json.dumps(
        {"t": table.tag, "r": _row_json(row)},
        allow_nan=False,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return text.encode() + b"\n"


def _decode(line: bytes) -> _Item:
    """A spool line back to its row; ValueError/TypeError/ValidationError if it is not one."""
    obj = json.loads(line)
    if not isinstance(obj, dict) or not isinstance(obj.get("r"), dict):
        raise ValueError("not a journal record")
    table = _BY_TAG.get(obj.get("t"))  # type: ignore[arg-type]
    if table is None:
        raise ValueError(f"unknown table {obj.get('t')!r}")
    return table, table.row_type(**obj["r"])


# ---- errors --------------------------------------------------------------------------------


def _is_outage(exc: BaseException) -> bool:
    """A failure of the database (retry later), not of the rows (which retrying cannot fix)."""
    if isinstance(exc, IntegrityError | DataError):
        return False
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, SQLAlchemyError | OSError)


class _OutageError(Exception):
    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


# ---- the loop thread's snapshots -----------------------------------------------------------

# A ManagedOrder's fields that change after it is made are copied on the loop thread; the
# others (client_order_id, strategy_id, instrument, side, order_type, tif, tag, created_ns,
# square_off, parent_id) are set when the OMS makes the order and never change, so the writer
# reads them from the order itself.
_ORDER_FIELDS = (
    "qty",
    "price_paise",
    "trigger_price_paise",
    "status",
    "updated_ns",
    "filled_qty",
    "filled_value_paise",
    "venue_order_id",
    "reason",
    "oco_id",
)
_POSITION_FIELDS = (
    "strategy_id",
    "token",
    "qty",
    "open_cost_paise",
    "cash_paise",
    "charges_paise",
    "bought_qty",
    "sold_qty",
    "mark_paise",
)
_order_snapshot = operator.attrgetter(*_ORDER_FIELDS)
_position_snapshot = operator.attrgetter(*_POSITION_FIELDS)

# queue item kinds: (kind, ...)
_K_ROW, _K_ORDER, _K_EVENT, _K_FILL, _K_POSITION, _K_PNL, _K_RISK = range(7)
_K_FLUSH, _K_STOP = 100, 101
_KIND_NAMES = {
    _K_ROW: "row",
    _K_ORDER: "order",
    _K_EVENT: "event",
    _K_FILL: "fill",
    _K_POSITION: "position",
    _K_PNL: "pnl",
    _K_RISK: "risk_event",
}


def _seq_of(event: OrderEvent, order: ManagedOrder) -> int:
    """The event's position in its order's history, from 1."""
    events = order.events
    n = len(events)
    if n and events[-1] is event:  # the engine journals an event just after it was applied
        return n
    for i in range(n - 1, -1, -1):
        if events[i] is event:
            return i + 1
    raise ValidationError("event", event, f"not in the history of order {order.client_order_id!r}")


# ---- metrics -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class JournalMetrics:
    """Counters of a :class:`Journal` since it started.

    Parameters
    ----------
    healthy
        The database takes writes and nothing is held back.
    queued
        Records waiting in memory for the writer thread.
    backlog
        Rows held for the database: in the spool, or in memory when the spool cannot be
        written.
    records
        Records the writer took from the queue.
    rows_written
        Rows sent to the database per table (replays included; after coalescing).
    batches
        Transactions committed.
    spooled
        Rows appended to the spool.
    replays
        Times the spool was replayed completely.
    replayed
        Rows replayed from the spool.
    dead_lettered
        Records that could not be stored, kept in the dead-letter file.
    outages
        Times the database became unreachable.
    last_error
        The latest database or spool error (password masked), or ``None``.
    last_error_ns
        When it happened [UTC epoch ns], or ``None``.
    """

    healthy: bool
    queued: int
    backlog: int
    records: int
    rows_written: Mapping[str, int]
    batches: int
    spooled: int
    replays: int
    replayed: int
    dead_lettered: int
    outages: int
    last_error: str | None
    last_error_ns: int | None


# ---- the journal ---------------------------------------------------------------------------


class Journal:
    """The engine's journal: records put on the loop thread, written in batches by a writer
    thread, spooled to disk while the database is unreachable (see the module docstring).

    Parameters
    ----------
    url_or_engine
        A database URL (the journal makes, and disposes of, its engine) or an engine from
        :func:`~algoengine.persistence.db.make_engine` (left open). The schema must be in
        place (:func:`~algoengine.persistence.db.ensure_schema`). An in-memory SQLite database
        cannot be shared with the writer thread and is refused.
    run_id
        This run's id: the ``run_id`` of the rows the ``put_*`` methods make.
    mode
        backtest, paper or live (the strategy runs' mode).
    spool_dir
        The folder of the spool, the dead-letter file and the lock (made if missing). A spool
        found there is replayed first.
    batch_max
        The most rows per transaction.
    flush_interval_s
        How long the writer lets records gather before it writes them [s].
    on_outage
        ``"keep_trading"`` or ``"stop_opening"``: see :meth:`allow_new_positions`.
    ping_interval_s
        While healthy and idle, check the database this often [s] (``None``: never).

    Raises
    ------
    ValidationError
        An argument out of range (named).
    ConfigurationError
        An unusable URL, an in-memory SQLite database, a spool folder that cannot be made or
        is in use by another journal.
    """

    def __init__(
        self,
        url_or_engine: str | URL | Engine,
        *,
        run_id: str,
        mode: RunMode | str,
        spool_dir: str | os.PathLike[str],
        batch_max: int = 500,
        flush_interval_s: float = 0.05,
        on_outage: OnOutage | str = OnOutage.KEEP_TRADING,
        ping_interval_s: float | None = 1.0,
    ) -> None:
        check_str("run_id", run_id)
        if len(run_id) > ID_LEN:
            raise ValidationError("run_id", run_id, f"is longer than {ID_LEN} characters")
        self.run_id = run_id
        self.mode = check_enum("mode", mode, RunMode)
        self.batch_max = check_int("batch_max", batch_max, minimum=1)
        self.flush_interval_s = _positive_seconds("flush_interval_s", flush_interval_s)
        self.on_outage = check_enum("on_outage", on_outage, OnOutage)
        self.ping_interval_s = (
            None
            if ping_interval_s is None
            else _positive_seconds("ping_interval_s", ping_interval_s)
        )
        if not isinstance(spool_dir, str | os.PathLike):
            raise ValidationError("spool_dir", spool_dir, "must be a path")

        if isinstance(url_or_engine, Engine):
            self._db, self._owns_db = url_or_engine, False
        elif isinstance(url_or_engine, str | URL):
            # a short connect timeout: a retry against an unreachable host must not hold the
            # writer long (what is put meanwhile waits in memory, not on disk)
            self._db, self._owns_db = make_engine(url_or_engine, connect_timeout_s=3), True
        else:
            raise ValidationError(
                "url_or_engine", url_or_engine, "must be a database URL or an Engine"
            )
        self._url = masked(self._db.url)
        self._password = self._db.url.password
        try:
            if self._db.dialect.name == "sqlite" and self._db.url.database in (
                None,
                "",
                ":memory:",
            ):
                raise ConfigurationError(
                    "database_url: an in-memory SQLite database cannot be journaled "
                    "(each thread would see its own); use a file"
                )
            self.spool_dir = Path(spool_dir).expanduser().resolve()
            self.spool_path = self.spool_dir / SPOOL_FILE
            self.dead_letter_path = self.spool_dir / DEAD_LETTER_FILE
            self._lock_fd = _lock_folder(self.spool_dir)
            try:
                spool_rows = _repair_spool(self.spool_path)
            except OSError as exc:
                os.close(self._lock_fd)
                raise ConfigurationError(
                    f"spool_dir: cannot read the spool {str(self.spool_path)!r}: {exc}"
                ) from None
        except BaseException:
            if self._owns_db:
                self._db.dispose()
            raise

        # the queue: filled by the loop thread, emptied by the writer
        self._q: deque[tuple[Any, ...]] = deque()
        self._wake = threading.Event()
        self._closed = False
        self._close_lock = threading.Lock()

        # the writer's state (only the writer thread changes it after start)
        self._held: list[_Item] = []  # rows for the spool, when it could not be written
        self._spool_rows = spool_rows
        self._replay_offset = 0  # bytes of the spool already replayed in this attempt
        self._db_ok = True
        self._backoff_s = _BACKOFF_START_S
        self._next_retry = 0.0  # monotonic s: a spool found at start is replayed at once
        self._last_ok = -math.inf  # ping at once: an outage at start is seen before trading
        self._runs_known: set[str] = set()  # strategies of this run with a strategy_runs row
        self._healthy = self._spool_rows == 0

        # counters
        self._records = 0
        self._rows_written: dict[str, int] = {t.tag: 0 for t in _TABLES}
        self._batches = 0
        self._spooled = 0
        self._replays = 0
        self._replayed = 0
        self._dead = 0
        self._outages = 0
        self._last_error: str | None = None
        self._last_error_ns: int | None = None

        if self._spool_rows:
            log.warning(
                "journal: replaying a spool left by an earlier run",
                extra={"spool": str(self.spool_path), "rows": self._spool_rows},
            )
        self._thread = threading.Thread(target=self._run, name="algoengine-journal", daemon=True)
        self._thread.start()
        atexit.register(self._at_exit)

    # ---- state ----------------------------------------------------------------------------

    @property
    def healthy(self) -> bool:
        """True while the database takes writes and nothing is held back for it (at start:
        True, or False while a spool found there waits, until the writer's first check of the
        database says otherwise)."""
        return self._healthy

    @property
    def backlog(self) -> int:
        """Rows held for the database (spooled, or in memory if the spool failed)."""
        return self._spool_rows + len(self._held)

    @property
    def queued(self) -> int:
        """Records put and not yet taken by the writer."""
        return len(self._q)

    def allow_new_positions(self) -> bool:
        """May the engine open (or add to) positions? Always with ``on_outage="keep_trading"``;
        with ``"stop_opening"`` only while the journal is healthy (the engine's pre-trade check
        consults this; exits and square-offs are never held back by it)."""
        return self._healthy or self.on_outage is OnOutage.KEEP_TRADING

    def metrics(self) -> JournalMetrics:
        """A snapshot of the counters (see :class:`JournalMetrics`)."""
        return JournalMetrics(
            healthy=self._healthy,
            queued=len(self._q),
            backlog=self.backlog,
            records=self._records,
            rows_written=types.MappingProxyType(dict(self._rows_written)),
            batches=self._batches,
            spooled=self._spooled,
            replays=self._replays,
            replayed=self._replayed,
            dead_lettered=self._dead,
            outages=self._outages,
            last_error=self._last_error,
            last_error_ns=self._last_error_ns,
        )

    # ---- the loop thread's side: O(1) puts ------------------------------------------------

    def put_order(self, order: ManagedOrder) -> None:
        """Journal an order's current state (say, as it is sent, before any venue event).

        ``order`` is an OMS :class:`~algoengine.engine.oms.ManagedOrder`; the fields the OMS
        changes later are copied now.
        """
        if self._closed:
            raise JournalClosedError("the journal is closed")
        try:
            snap = _order_snapshot(order)
        except AttributeError:
            raise ValidationError("order", order, "must be a ManagedOrder") from None
        self._q.append((_K_ORDER, order, snap))

    def put_event(self, event: OrderEvent, order: ManagedOrder) -> None:
        """Journal an order event the OMS has just applied, with the order's state after it
        (the engine's order-event sink calls this for every event). An ``OrderDenied`` is also
        recorded in ``risk_events``.

        ``event`` must be in ``order.events`` (its position there is the event's ``seq``).
        """
        if self._closed:
            raise JournalClosedError("the journal is closed")
        try:
            seq = _seq_of(event, order)
            snap = _order_snapshot(order)
        except AttributeError:
            raise ValidationError("order", order, "must be a ManagedOrder") from None
        self._q.append((_K_EVENT, event, seq, order, snap))

    def put_fill(self, fill: FillRecord) -> None:
        """Journal a fill (an engine :class:`~algoengine.engine.engine.FillRecord`, also an
        expiry settlement), of this run. The record is kept as it is: the engine never changes
        a fill once recorded."""
        if self._closed:
            raise JournalClosedError("the journal is closed")
        self._q.append((_K_FILL, fill))

    def put_position(self, position: Position, ts_ns: int) -> None:
        """Journal a portfolio position as it is now (its fields are copied).

        Parameters
        ----------
        position
            A :class:`~algoengine.engine.portfolio.Position`.
        ts_ns
            The time of this state [UTC epoch ns]; a later write of an older state is ignored.
        """
        if self._closed:
            raise JournalClosedError("the journal is closed")
        try:
            snap = _position_snapshot(position)
        except AttributeError:
            raise ValidationError("position", position, "must be a Position") from None
        self._q.append((_K_POSITION, snap, ts_ns))

    def put_pnl(self, pnl: PnL, *, strategy_id: str, ts_ns: int) -> None:
        """Journal a strategy's P&L (a :class:`~algoengine.engine.portfolio.PnL`, paise) as the
        snapshot of the minute holding ``ts_ns`` [UTC epoch ns]: a later put in the same minute
        replaces it, so the engine may put it on every slice."""
        if self._closed:
            raise JournalClosedError("the journal is closed")
        self._q.append((_K_PNL, pnl, strategy_id, ts_ns))

    def put_risk_event(
        self,
        event: OrderDenied,
        order: ManagedOrder | None = None,
        *,
        strategy_id: str | None = None,
    ) -> None:
        """Journal an order denial in ``risk_events`` (:meth:`put_event` already does for the
        denials the OMS applies; writing one twice is a no-op).

        The strategy is ``order``'s, else ``strategy_id``.
        """
        if self._closed:
            raise JournalClosedError("the journal is closed")
        if order is not None:
            strategy_id = order.strategy_id
        self._q.append((_K_RISK, event, strategy_id))

    def put_command_acted(
        self, command_id: int, *, acted_ns: int, acted_by: str, result: str
    ) -> None:
        """Journal that the engine acted on a command of the ``commands`` table.

        Raises
        ------
        ValidationError
            A bad value (named); checked here, as this is not a hot path.
        """
        self.put(
            CommandActedRow(
                command_id=command_id, acted_ns=acted_ns, acted_by=acted_by, result=result
            )
        )

    def put_run_start(
        self,
        strategy_id: str,
        *,
        started_ns: int,
        config: Mapping[str, Any] | None = None,
        owner: str | None = None,
        fencing_token: int | None = None,
    ) -> None:
        """Journal that a strategy starts in this run (before its orders).

        Parameters
        ----------
        strategy_id
            The strategy.
        started_ns
            When [UTC epoch ns].
        config
            Its configuration (a JSON object).
        owner, fencing_token
            Scale-out: the engine task and its lease's fencing token.

        Raises
        ------
        ValidationError
            A bad value (named).
        """
        self.put(
            StrategyRunRow(
                run_id=self.run_id,
                strategy_id=strategy_id,
                mode=self.mode,
                started_ns=started_ns,
                config={} if config is None else config,
                owner=owner,
                fencing_token=fencing_token,
            )
        )

    def put_run_stop(
        self,
        *,
        stopped_ns: int,
        status: RunStatus | str = RunStatus.STOPPED,
        reason: str | None = None,
        strategy_id: str | None = None,
    ) -> None:
        """Journal that this run's strategies (or one) stopped, at ``stopped_ns`` [UTC epoch
        ns], with ``status`` stopped, failed or crashed.

        Raises
        ------
        ValidationError
            A bad value (named).
        """
        self.put(
            RunStopRow(
                run_id=self.run_id,
                stopped_ns=stopped_ns,
                status=status,  # type: ignore[arg-type]  # validated by the row
                reason=reason,
                strategy_id=strategy_id,
            )
        )

    def put(self, row: JournalRow) -> None:
        """Journal a ready row of :mod:`~algoengine.persistence.records` (or a
        :class:`RunStopRow`, :class:`CommandActedRow`), of any run.

        Raises
        ------
        ValidationError
            ``row`` is not one of those types.
        """
        if self._closed:
            raise JournalClosedError("the journal is closed")
        if not isinstance(row, _ROW_TYPES):
            names = ", ".join(t.__name__ for t in _ROW_TYPES)
            raise ValidationError("row", row, f"must be one of {names}")
        self._q.append((_K_ROW, row))

    # ---- control --------------------------------------------------------------------------

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until everything put so far is written to the database or to the spool.

        Parameters
        ----------
        timeout
            At most this long [s] (``None``: no limit).

        Returns
        -------
        bool
            True if done; False on timeout (the writer carries on).
        """
        if self._closed or not self._thread.is_alive():  # close() flushes
            self._thread.join(timeout)
            return not self._thread.is_alive()
        done = threading.Event()
        self._q.append((_K_FLUSH, done))
        self._wake.set()
        return done.wait(timeout)

    def wait_healthy(self, timeout: float | None = 10.0) -> bool:
        """Wait until the journal is healthy (the spool replayed), polling; True if it is."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._healthy:
            if not self._thread.is_alive():
                return False
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float | None = 30.0) -> bool:
        """Flush, make one last attempt to replay the spool if there is one, and stop the
        writer. Later puts raise :class:`JournalClosedError`; closing again does nothing.

        Parameters
        ----------
        timeout
            At most this long [s] (``None``: no limit).

        Returns
        -------
        bool
            True if the writer finished in time (what it could not write is in the spool).
        """
        with self._close_lock:
            first = not self._closed
            self._closed = True
        if first:
            with contextlib.suppress(Exception):
                atexit.unregister(self._at_exit)
            self._q.append((_K_STOP, threading.Event()))
            self._wake.set()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _at_exit(self) -> None:  # pragma: no cover - runs at interpreter exit
        self.close(timeout=10.0)

    # ---- the writer thread ----------------------------------------------------------------

    def _run(self) -> None:
        try:
            stop = False
            while not stop:
                if len(self._q) < self.batch_max:
                    self._wake.wait(self._wait_s())
                self._wake.clear()
                try:
                    if self._held:
                        self._spool_held()
                    self._maintain()
                    stop = self._drain()
                except Exception:  # pragma: no cover - a bug: keep the writer alive
                    log.exception("journal: writer error")
                    time.sleep(self.flush_interval_s)
            self._drain()  # a put that raced with close() (the caller should stop first)
            if self.backlog:
                self._recover()  # one last try; what fails stays in the spool
        finally:
            try:
                os.close(self._lock_fd)  # releases the folder's lock
            finally:
                if self._owns_db:
                    self._db.dispose()

    def _wait_s(self) -> float:
        wait = self.flush_interval_s
        if not self._db_ok or self.backlog:
            wait = min(wait, max(0.0, self._next_retry - time.monotonic()))
        return wait

    def _maintain(self) -> None:
        """Retry the database when due; ping it when idle."""
        now = time.monotonic()
        if not self._db_ok or self.backlog:
            if now >= self._next_retry:
                if self.backlog:
                    self._recover()
                else:
                    self._ping()
        elif self.ping_interval_s is not None and now - self._last_ok >= self.ping_interval_s:
            self._ping()

    def _drain(self) -> bool:
        """Take what is queued and write it; True when the stop marker was reached."""
        q = self._q
        n = len(q)
        records: list[tuple[Any, ...]] = []
        stop = False
        for _ in range(n):
            item = q.popleft()
            kind = item[0]
            if kind in (_K_FLUSH, _K_STOP):
                self._write(records)
                records = []
                if kind == _K_STOP:
                    stop = True
                item[1].set()
            else:
                records.append(item)
        self._write(records)
        return stop

    # ---- records to rows ------------------------------------------------------------------

    def _write(self, records: list[tuple[Any, ...]]) -> None:
        if not records:
            return
        self._records += len(records)
        # an order's state is needed once per batch, the newest (as the upsert keeps it)
        newest: dict[int, int] = {}
        for i, record in enumerate(records):
            kind = record[0]
            if kind == _K_EVENT:
                newest[id(record[3])] = i
            elif kind == _K_ORDER:
                newest[id(record[1])] = i
        rows: list[_Item] = []
        for i, record in enumerate(records):
            kind = record[0]
            if kind == _K_ORDER and newest[id(record[1])] != i:
                continue
            try:
                self._rows_of(record, rows, kind != _K_EVENT or newest[id(record[3])] == i)
            except Exception as exc:
                self._dead_letter(
                    {"record": _KIND_NAMES.get(record[0], "?"), "value": repr(record)[:4000]},
                    exc,
                )
        self._commit(rows)

    def _rows_of(self, record: tuple[Any, ...], out: list[_Item], with_order: bool) -> None:
        """The rows of one record, appended to ``out`` (``with_order``: an event's record
        carries the newest state of its order in the batch)."""
        kind = record[0]
        run_id = self.run_id
        if kind == _K_EVENT:
            _, event, seq, managed, snap = record
            if with_order:
                out.append((_BY_TYPE[OrderRow], self._order_row(managed, snap, out)))
            out.append((_BY_TYPE[OrderEventRow], OrderEventRow.from_event(event, seq=seq)))
            if isinstance(event, OrderDenied):
                out.append(
                    (
                        _BY_TYPE[RiskEventRow],
                        RiskEventRow.from_denied(
                            event, run_id=run_id, strategy_id=managed.strategy_id
                        ),
                    )
                )
        elif kind == _K_ORDER:
            out.append((_BY_TYPE[OrderRow], self._order_row(record[1], record[2], out)))
        elif kind == _K_FILL:
            row = FillRow.from_record(record[1], run_id=run_id)
            self._need_run(row.strategy_id, row.ts_ns, out)
            out.append((_BY_TYPE[FillRow], row))
        elif kind == _K_POSITION:
            (sid, token, qty, cost, cash, charges, bought, sold, mark), ts_ns = record[1:]
            self._need_run(sid, ts_ns, out)
            out.append(
                (
                    _BY_TYPE[PositionRow],
                    PositionRow(
                        run_id=run_id,
                        strategy_id=sid,
                        token=token,
                        qty=qty,
                        open_cost_paise=cost,
                        cash_paise=cash,
                        charges_paise=charges,
                        updated_ns=ts_ns,
                        bought_qty=bought,
                        sold_qty=sold,
                        mark_paise=mark,
                    ),
                )
            )
        elif kind == _K_PNL:
            _, pnl, sid, ts_ns = record
            check_int("ts_ns", ts_ns, minimum=0)
            minute = ts_ns - ts_ns % _MINUTE_NS
            self._need_run(sid, minute, out)
            out.append(
                (
                    _BY_TYPE[PnlSnapshotRow],
                    PnlSnapshotRow.from_pnl(pnl, run_id=run_id, strategy_id=sid, ts_ns=minute),
                )
            )
        elif kind == _K_RISK:
            _, event, sid = record
            if not isinstance(event, OrderDenied):
                raise ValidationError("event", event, "must be an OrderDenied")
            out.append(
                (
                    _BY_TYPE[RiskEventRow],
                    RiskEventRow.from_denied(event, run_id=run_id, strategy_id=sid),
                )
            )
        else:  # _K_ROW
            row = record[1]
            if isinstance(row, StrategyRunRow) and row.run_id == run_id:
                self._runs_known.add(row.strategy_id)
            elif (
                isinstance(row, OrderRow | FillRow | PositionRow | PnlSnapshotRow)
                and row.run_id == run_id
            ):
                ts = row.updated_ns if isinstance(row, OrderRow | PositionRow) else row.ts_ns
                self._need_run(row.strategy_id, ts, out)
            out.append((_BY_TYPE[type(row)], row))

    def _order_row(self, order: ManagedOrder, snap: tuple[Any, ...], out: list[_Item]) -> OrderRow:
        """The row of an order: its fields fixed at creation read from it, the others from the
        copy taken at the put."""
        (
            qty,
            price,
            trigger,
            status,
            updated_ns,
            filled_qty,
            filled_value,
            venue_id,
            reason,
            oco_id,
        ) = snap
        inst = order.instrument
        created_ns = order.created_ns
        row = OrderRow(
            client_order_id=order.client_order_id,
            run_id=self.run_id,
            strategy_id=order.strategy_id,
            token=inst.token,
            symbol=inst.symbol,
            exchange=inst.exchange,
            side=order.side,
            order_type=order.order_type,
            tif=order.tif,
            qty=qty,
            price_paise=price,
            trigger_price_paise=trigger,
            status=status,
            created_ns=created_ns,
            updated_ns=max(updated_ns, created_ns),
            filled_qty=filled_qty,
            filled_value_paise=filled_value,
            venue_order_id=venue_id,
            tag=order.tag,
            reason=reason,
            square_off=order.square_off,
            parent_id=order.parent_id,
            oco_id=oco_id,
        )
        self._need_run(row.strategy_id, created_ns, out)
        return row

    def _need_run(self, strategy_id: str, ts_ns: int, out: list[_Item]) -> None:
        """Rows of this run need their strategy run: record one if none was put."""
        if strategy_id in self._runs_known:
            return
        self._runs_known.add(strategy_id)
        log.warning(
            "journal: strategy run not started through put_run_start; recorded without its "
            "configuration",
            extra={"run_id": self.run_id, "strategy_id": strategy_id},
        )
        out.append(
            (
                _BY_TYPE[StrategyRunRow],
                StrategyRunRow(
                    run_id=self.run_id,
                    strategy_id=strategy_id,
                    mode=self.mode,
                    started_ns=max(0, ts_ns) if isinstance(ts_ns, int) else 0,
                ),
            )
        )

    # ---- rows to the database -------------------------------------------------------------

    def _commit(self, rows: list[_Item]) -> None:
        """Write rows in batches, or hold them if the database is down or behind."""
        if not rows:
            return
        if not self._db_ok or self.backlog:
            self._stash(rows)
            return
        step = self.batch_max
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            done, failure = self._write_chunk(chunk)
            if failure is not None:
                self._went_down(failure)
                self._stash(rows[start + done :])
                return

    def _write_chunk(self, chunk: Sequence[_Item]) -> tuple[int, BaseException | None]:
        """Write rows in one transaction. A row the database refuses is dead-lettered (the
        others are then written one by one). Returns how many rows were dealt with, and the
        database error that stopped it (``None``: all done)."""
        try:
            self._transaction(chunk)
            return len(chunk), None
        except Exception as exc:
            if _is_outage(exc):
                return 0, exc
            if len(chunk) == 1:
                self._dead_letter({"table": chunk[0][0].tag, "row": _row_json(chunk[0][1])}, exc)
                return 1, None
        for i, item in enumerate(chunk):  # find the rows at fault
            _, failure = self._write_chunk([item])
            if failure is not None:
                return i, failure
        return len(chunk), None

    def _transaction(self, chunk: Sequence[_Item]) -> None:
        groups: dict[_Table, list[Any]] = {}
        for table, row in chunk:
            groups.setdefault(table, []).append(row)
        written: list[tuple[str, int]] = []
        with write_transaction(self._db) as conn:
            for table in _TABLES:  # the fixed order: runs first
                rows = groups.get(table)
                if rows:
                    written.append((table.tag, table.write(conn, rows)))
        self._batches += 1
        for tag, n in written:
            self._rows_written[tag] += n
        self._last_ok = time.monotonic()

    def _ping(self) -> None:
        try:
            with self._db.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except Exception as exc:
            self._went_down(exc)
            return
        self._last_ok = time.monotonic()
        if not self._db_ok:
            self._back_up()

    # ---- outages ---------------------------------------------------------------------------

    def _went_down(self, exc: BaseException) -> None:
        """A database attempt failed: note it and schedule the next."""
        self._note_error(exc)
        if self._db_ok:
            self._db_ok = False
            self._outages += 1
            self._backoff_s = _BACKOFF_START_S
            log.warning(
                "journal: database unreachable; spooling to disk and retrying",
                extra={"error": self._last_error, "spool": str(self.spool_path)},
            )
        self._next_retry = time.monotonic() + self._backoff_s
        self._backoff_s = min(self._backoff_s * 2, _BACKOFF_MAX_S)
        self._healthy = False

    def _back_up(self) -> None:
        was_down = not self._db_ok
        self._db_ok = True
        self._backoff_s = _BACKOFF_START_S
        self._next_retry = 0.0
        self._healthy = self.backlog == 0
        if was_down:
            log.warning("journal: database reachable again", extra={"database": self._url})

    def _stash(self, rows: list[_Item]) -> None:
        self._held.extend(rows)
        self._spool_held()
        self._healthy = False

    def _spool_held(self) -> None:
        """Append the rows held in memory to the spool (one write, one fsync)."""
        held = self._held
        if not held:
            return
        lines: list[bytes] = []
        kept: list[_Item] = []
        for item in held:
            try:
                lines.append(_encode(item))
                kept.append(item)
            except Exception as exc:  # not JSON data: it could never be replayed either
                self._dead_letter({"table": item[0].tag, "row": repr(item[1])[:4000]}, exc)
        held[:] = kept
        try:
            _append(self.spool_path, b"".join(lines))
        except OSError as exc:
            first = self._last_error is None or not self._last_error.startswith("spool")
            self._note_error(exc, prefix=f"spool {self.spool_path}")
            if first:
                log.error(
                    "journal: cannot write the spool; holding rows in memory",
                    extra={"error": self._last_error, "rows": len(held)},
                )
            return
        self._spool_rows += len(lines)
        self._spooled += len(lines)
        held.clear()

    def _recover(self) -> None:
        """Replay the spool, then what is held in memory; healthy again if all goes."""
        try:
            replayed = self._replay_spool()
            step = self.batch_max
            while self._held:
                chunk = self._held[:step]
                done, failure = self._write_chunk(chunk)
                del self._held[:done]
                if failure is not None:
                    raise _OutageError(failure)
        except _OutageError as outage:
            self._went_down(outage.cause)
            return
        except OSError as exc:  # the spool cannot be read: keep it, try again later
            self._note_error(exc, prefix=f"spool {self.spool_path}")
            self._next_retry = time.monotonic() + _BACKOFF_MAX_S
            return
        if replayed:
            self._replays += 1
            log.warning(
                "journal: spool replayed into the database",
                extra={"rows": replayed, "database": self._url},
            )
        self._back_up()

    def _replay_spool(self) -> int:
        """Write the spool to the database in order and empty it; the rows replayed. Raises
        :class:`_OutageError` if the database fails (the spool stays; the replay resumes where it
        stopped, or from the start after a restart: writes are idempotent)."""
        if self._spool_rows == 0:
            return 0
        total = 0
        with open(self.spool_path, "rb") as f:
            f.seek(self._replay_offset)
            pos = self._replay_offset
            chunk: list[_Item] = []
            chunk_end = pos
            for line in f:
                pos += len(line)
                try:
                    chunk.append(_decode(line))
                except Exception as exc:
                    self._dead_letter({"spool_line": line.decode(errors="replace")}, exc)
                chunk_end = pos
                if len(chunk) >= self.batch_max:
                    total += self._replay_chunk(chunk, chunk_end)
                    chunk = []
            if chunk:
                total += self._replay_chunk(chunk, chunk_end)
        with open(self.spool_path, "r+b") as f:
            f.truncate(0)
            os.fsync(f.fileno())
        self._replay_offset = 0
        self._spool_rows = 0
        return total

    def _replay_chunk(self, chunk: list[_Item], end: int) -> int:
        _, failure = self._write_chunk(chunk)
        if failure is not None:
            raise _OutageError(failure)
        self._replay_offset = end
        self._replayed += len(chunk)
        return len(chunk)

    # ---- errors ----------------------------------------------------------------------------

    def _note_error(self, exc: BaseException, *, prefix: str | None = None) -> None:
        orig = getattr(exc, "orig", None)
        text = str(orig if orig is not None else exc).strip()
        first = text.splitlines()[0] if text else ""
        message = f"{prefix or self._url}: {type(exc).__name__}: {first}"
        if self._password:
            message = message.replace(self._password, "***")
        self._last_error = message
        self._last_error_ns = time.time_ns()

    def _dead_letter(self, entry: dict[str, Any], exc: BaseException) -> None:
        """Keep a record that can never be written, and say so."""
        text = f"{type(exc).__name__}: {exc}"
        if self._password:
            text = text.replace(self._password, "***")
        entry = {**entry, "error": text, "ts_ns": time.time_ns()}
        self._dead += 1
        log.error("journal: record cannot be stored; dead-lettered", extra=entry)
        try:
            _append(
                self.dead_letter_path,
                (json.dumps(entry, ensure_ascii=False, default=repr) + "\n").encode(),
            )
        except OSError as err:
            log.error("journal: cannot write the dead-letter file", extra={"error": str(err)})


# ---- files ---------------------------------------------------------------------------------


def _positive_seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(name, value, "must be a number of seconds")
    if not math.isfinite(value) or value <= 0:
        raise ValidationError(name, value, "must be > 0 and finite")
    return float(value)


def _lock_folder(folder: Path) -> int:
    """Make the folder and hold its lock file (released when the fd closes or the process
    dies); ConfigurationError if it cannot be made or another journal holds it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ConfigurationError(
            f"spool_dir: cannot use {str(folder)!r} for the journal's spool: {exc}"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise ConfigurationError(
            f"spool_dir: {str(folder)!r} is in use by another journal; give each engine "
            "process its own spool folder"
        ) from None
    return fd


def _append(path: Path, data: bytes) -> None:
    """Append ``data`` and fsync; on failure the file is cut back to what it was."""
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        size = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)
    if created:  # the new file's name must survive a crash too
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _repair_spool(path: Path) -> int:
    """The number of rows in a spool left on disk, after cutting off a line torn by a crash
    during its write (that batch was never acknowledged)."""
    if not path.exists():
        return 0
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        log.warning(
            "journal: dropping a torn line at the end of the spool",
            extra={"spool": str(path), "bytes": len(data) - keep},
        )
        with open(path, "r+b") as f:
            f.truncate(keep)
            os.fsync(f.fileno())
        data = data[:keep]
    return data.count(b"\n")
