"""Strategy leases: which engine task runs which strategy, never two at once, none orphaned.

Production runs several engine tasks against one PostgreSQL. Each strategy has a row in
``strategy_leases`` (strategy id, owner, fencing token, expiry, heartbeat); a task runs a
strategy only while it holds that row's lease:

1. :meth:`LeaseManager.ensure` creates the rows (unowned) of the strategies the task can run.
2. :meth:`LeaseManager.acquire` takes unowned or expired leases, at most the task's fair
   share, in one ``UPDATE ... WHERE (owner IS NULL OR expires_ns < now) ... RETURNING``:
   owner := the task, ``fencing_token`` := token + 1, expiry := now + ttl.
3. :meth:`LeaseManager.renew` (the heartbeat, every ``ttl / 3``) pushes the expiry of the
   leases the task still holds with the same token; a lease that another task took is lost.
4. :meth:`LeaseManager.release` gives leases up at shutdown, so that another task takes them
   over at its next :meth:`~LeaseManager.acquire` instead of after the ttl.
5. Before every order, :meth:`LeaseManager.still_valid`.

In an engine task::

    leases = LeaseManager(engine, owner=task_id, ttl_s=5.0)
    leases.ensure(strategy_ids)
    # heartbeat thread, every leases.renew_interval_s (a LeaseStoreError: log, try again)
    kept = leases.renew(leases.held())      # the lost ones: stop those strategies
    new = leases.acquire()                  # start these (recover them from the journal)
    # event loop, before every order of a strategy
    if leases.still_valid(lease): ...send...
    # journal writer: the strategy's rows under its lease
    with fenced_transaction(engine, lease) as conn: ...write...
    # shutdown: stop the strategies, then
    leases.release_all()

A task that lost a lease stops the strategy without touching its orders any more (no cancels
either): the new owner rebuilds them from the journal and reconciles with the broker by client
order id.

Never two owners
----------------
Exclusivity in the database comes from single statements: acquisition, renewal and release
are each one ``UPDATE`` whose ``WHERE`` checks the row's state (PostgreSQL re-checks it on the
current row after waiting for a row lock, so two tasks can never both take a row; the
candidate rows are picked with ``FOR UPDATE SKIP LOCKED``, so concurrent acquirers take
disjoint rows without waiting). On PostgreSQL these statements run in autocommit: there is no
open transaction in which a paused process could sit on a row lock. SQLite serialises writers
(``BEGIN IMMEDIATE``): one host only.

A task must also *stop* before anyone else can start, even when it cannot reach the database
or is paused (GC, CPU starvation, SIGSTOP). So the task's own belief is measured locally:
the monotonic clock is read *before* each acquire/renew statement is sent (``t0``), and the
lease counts as valid until ``t0 + ttl - safety_margin``. The statement's ``now`` is later
than ``t0``, so the expiry in the table (``now + ttl``) is later than the local deadline by at
least the margin, and another task can only take the lease after that expiry. The margin
(default ``ttl / 5``) absorbs clock-rate differences and the time from the last
:meth:`~LeaseManager.still_valid` to the order leaving the process. A renewal that fails for
any reason leaves the local deadline where it was: the lease runs out locally first.

Which clock
-----------
Expiry times in the table come from one clock for every task, so that tasks on different hosts
cannot disagree about whether a lease has expired: on PostgreSQL the database server's clock
(``statement_timestamp()``: the time the statement arrived), on SQLite (one host) the local
wall clock ``clock`` (``time.time_ns``). ``database_clock=False`` uses ``clock`` on PostgreSQL
too (tests inject a fake clock this way). The local validity uses ``local_clock``
(``time.monotonic_ns``: wall-clock steps cannot stretch a lease). The database clock must not
step by more than the margin (run NTP in slewing mode, as RDS does).

Fair spread
-----------
A task takes at most ``ceil(n / live) - mine`` leases per :meth:`~LeaseManager.acquire`, where
``n`` is the number of strategies it runs, ``live`` the number of distinct owners of unexpired
leases among them plus itself, and ``mine`` the unexpired leases it already holds. When a task
dies, its strategies are spread over the survivors (and any idle task) as they expire.

A task that holds nothing is invisible to the others (the table has no row for it), so the
first of several tasks starting together would count itself alone and take everything. Hence
a task's *first* acquire takes at most ``initial_take`` leases (default 1): it shows up as an
owner at once, and the tasks starting together split the rest fairly at their second call, one
acquire period later (a task starting alone waits that period for the rest).

The share only limits *taking*: a task that started when the others already held everything
stays idle until a lease becomes free (a task dies or releases); nobody sheds leases to it,
since nobody can see it (a rolling restart spreads the strategies again; shedding needs a
table of live tasks, which the schema does not have yet). The counts are read just before the
``UPDATE``: two tasks acquiring at the same instant may exceed their shares, never their
exclusivity. Shares never leave a strategy orphaned: while a strategy is free, some live task
holds fewer than its share (the shares add up to at least ``n``), or an idle task sees a share
of at least one, and takes it at its next acquire.

Fencing
-------
Every acquisition increments the row's ``fencing_token`` (the row outlives releases, so a
token never repeats for a strategy). The engine stamps the token on what it journals
(``strategy_runs.fencing_token``) and writes through :func:`fenced_transaction` (or calls
:func:`assert_fenced` inside its own write transaction): the lease row is read ``FOR SHARE``
and the write is refused with :class:`LeaseLostError` unless the row still names this owner
and token. The shared row lock holds a takeover back until the write has committed, so every
write of the old owner is ordered before the new owner's acquisition, and none after it. A
writer paused inside its transaction cannot hold the takeover back for long: the transaction
sets PostgreSQL's ``idle_in_transaction_session_timeout`` (``idle_timeout_s``), so the server
ends the session, which rolls the write back and frees the row.

What to fence: the *order intents* (a new order, a modification), written before the order
goes to the broker; a task whose lease was taken can then not send at all, whatever its clock
says. What the broker reports about orders already sent (acknowledgements, fills) is a fact:
journal it without the check (the writes are idempotent, and the new owner reconciles by
client order id).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Engine,
    Table,
    and_,
    case,
    cast,
    distinct,
    extract,
    func,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from algoengine.errors import AlgoEngineError, ConfigurationError, ValidationError
from algoengine.persistence.db import masked, write_transaction
from algoengine.persistence.models import ID_LEN, NAME_LEN, Base

__all__ = [
    "Lease",
    "LeaseError",
    "LeaseLostError",
    "LeaseManager",
    "LeaseState",
    "LeaseStoreError",
    "assert_fenced",
    "fenced_transaction",
    "lease_states",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

_leases: Table = Base.metadata.tables["strategy_leases"]
_NS_PER_S = 1_000_000_000
_INT64_MAX = 2**63 - 1

#: What acquire and renew return of a row: strategy id, fencing token, expires_ns.
_Returned = tuple[str, int, int]


# ---- errors --------------------------------------------------------------------------------


class LeaseError(AlgoEngineError):
    """Root of the lease errors."""


class LeaseLostError(LeaseError):
    """A write under a lease that is no longer held by ``owner`` with ``fencing_token``.

    ``holder`` and ``holder_token`` say who holds the strategy now (``None``: nobody, or the
    strategy has no lease row).
    """

    def __init__(
        self,
        strategy_id: str,
        owner: str,
        fencing_token: int,
        *,
        holder: str | None,
        holder_token: int | None,
    ) -> None:
        self.strategy_id = strategy_id
        self.owner = owner
        self.fencing_token = fencing_token
        self.holder = holder
        self.holder_token = holder_token
        if holder_token is None:
            now = "has no lease row"
        elif holder is None:
            now = f"was released (token {holder_token})"
        else:
            now = f"is held by {holder!r} with token {holder_token}"
        super().__init__(
            f"lease of strategy {strategy_id!r} lost by {owner!r} (token {fencing_token}): it {now}"
        )


class LeaseStoreError(LeaseError):
    """The lease table could not be read or written (database unreachable, ...).

    Nothing changed locally: the leases held run out at their local validity unless a later
    renewal succeeds.
    """


# ---- values --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Lease:
    """A lease this task holds on a strategy.

    Parameters
    ----------
    strategy_id
        The strategy.
    owner
        The engine task holding it.
    fencing_token
        Grows with every acquisition of the strategy; stamp it on what is journaled.
    expires_ns
        When the lease expires in the table [UTC epoch ns, by the database's clock on
        PostgreSQL]: another task may take it after that.
    valid_until_ns
        Until when this task may act on it [ns of the manager's ``local_clock``, monotonic by
        default]: ``t0 + ttl - safety_margin``, ``t0`` read before the statement was sent.
    """

    strategy_id: str
    owner: str
    fencing_token: int
    expires_ns: int
    valid_until_ns: int


@dataclass(frozen=True, kw_only=True, slots=True)
class LeaseState:
    """One row of the lease table, as stored (for the dashboard and the tests).

    Parameters
    ----------
    strategy_id
        The strategy.
    owner
        The task holding or last holding it (``None``: never taken, or released).
    fencing_token
        The token of the last acquisition (0: never taken).
    expires_ns
        Expiry of the last acquisition or renewal, or when it was released [UTC epoch ns].
    heartbeat_ns
        Last acquisition, renewal or release [UTC epoch ns].
    """

    strategy_id: str
    owner: str | None
    fencing_token: int
    expires_ns: int
    heartbeat_ns: int


# ---- checks --------------------------------------------------------------------------------


def _check_id(name: str, value: object, max_len: int) -> str:
    if not isinstance(value, str):
        raise ValidationError(name, value, "must be a string")
    if not value.strip():
        raise ValidationError(name, value, "must not be empty")
    if len(value) > max_len:
        raise ValidationError(name, value, f"is longer than {max_len} characters")
    if "\x00" in value:
        raise ValidationError(name, value, "must not contain NUL characters")
    return value


def _check_seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(name, value, "must be a number of seconds")
    if not math.isfinite(value) or value <= 0:
        raise ValidationError(name, value, "must be finite and > 0")
    return float(value)


def _check_engine(bind: object) -> Engine:
    if not isinstance(bind, Engine):
        raise ValidationError("bind", bind, "must be a sqlalchemy Engine (from make_engine)")
    if bind.dialect.name not in ("postgresql", "sqlite"):
        raise ConfigurationError(
            f"database {masked(bind.url)}: leases need PostgreSQL or SQLite, "
            f"not {bind.dialect.name!r}"
        )
    return bind


def _check_leases(leases: Iterable[Lease], owner: str) -> list[Lease]:
    if isinstance(leases, Lease):
        leases = [leases]
    items = list(leases)
    for i, lease in enumerate(items):
        if not isinstance(lease, Lease):
            raise ValidationError(f"leases[{i}]", lease, "must be a Lease")
        if lease.owner != owner:
            raise ValidationError(
                f"leases[{i}]", lease, f"is held by {lease.owner!r}, not by {owner!r}"
            )
    return items


# ---- the manager ---------------------------------------------------------------------------


class LeaseManager:
    """Acquire, renew and release strategy leases for one engine task (see the module
    docstring for the protocol and its guarantees).

    Thread-safe: the heartbeat may run on its own thread while the event loop calls
    :meth:`still_valid` (which reads only memory: a dictionary look-up and a clock read).

    Parameters
    ----------
    bind
        The database (an engine from :func:`~algoengine.persistence.db.make_engine`) with the
        schema in place.
    owner
        This task's name, unique among the tasks (e.g. ``"<ecs task id>"`` or
        ``"<host>:<pid>"``); at most 128 characters.
    ttl_s
        Lease duration [s]: a dead task's strategies move after at most about this long.
        Renew every ``ttl_s / 3`` (:attr:`renew_interval_s`).
    safety_margin_s
        How long before the table's expiry this task stops acting on a lease it could not
        renew [s]; default ``ttl_s / 5``; ``0 < safety_margin_s < ttl_s``.
    clock
        The wall clock [UTC epoch ns] for the times written to the table when the database's
        clock is not used.
    local_clock
        The clock of the local validity [ns, monotonic]; :meth:`still_valid` reads it.
    database_clock
        Take expiry times from the database server's clock (``True``; PostgreSQL only) or from
        ``clock`` (``False``). Default: the server's clock on PostgreSQL, ``clock`` on SQLite.
    initial_take
        The most leases the first :meth:`acquire` takes (>= 1), so that tasks starting together
        see each other before they split the strategies; ``None``: no such limit.

    Raises
    ------
    ValidationError
        An argument out of its range, named.
    ConfigurationError
        A database other than PostgreSQL or SQLite, or ``database_clock=True`` on SQLite.
    """

    def __init__(
        self,
        bind: Engine,
        owner: str,
        *,
        ttl_s: float = 5.0,
        safety_margin_s: float | None = None,
        clock: Callable[[], int] = time.time_ns,
        local_clock: Callable[[], int] = time.monotonic_ns,
        database_clock: bool | None = None,
        initial_take: int | None = 1,
    ) -> None:
        self._engine = _check_engine(bind)
        self.owner = _check_id("owner", owner, NAME_LEN)
        self.ttl_s = _check_seconds("ttl_s", ttl_s)
        margin = self.ttl_s / 5 if safety_margin_s is None else safety_margin_s
        self.safety_margin_s = _check_seconds("safety_margin_s", margin)
        if self.safety_margin_s >= self.ttl_s:
            raise ValidationError("safety_margin_s", safety_margin_s, "must be < ttl_s")
        if not callable(clock):
            raise ValidationError("clock", clock, "must be callable")
        if not callable(local_clock):
            raise ValidationError("local_clock", local_clock, "must be callable")
        self._postgres = self._engine.dialect.name == "postgresql"
        if database_clock is None:
            database_clock = self._postgres
        elif not isinstance(database_clock, bool):
            raise ValidationError("database_clock", database_clock, "must be True, False or None")
        if database_clock and not self._postgres:
            raise ConfigurationError(
                "database_clock=True needs PostgreSQL; SQLite uses the local clock"
            )
        self.database_clock = database_clock
        self._clock = clock
        self._local_clock = local_clock
        self._ttl_ns = round(self.ttl_s * _NS_PER_S)
        self._valid_ns = self._ttl_ns - round(self.safety_margin_s * _NS_PER_S)
        self._strategies: tuple[str, ...] | None = None
        self._held: dict[str, Lease] = {}
        if initial_take is not None and (
            isinstance(initial_take, bool) or not isinstance(initial_take, int) or initial_take < 1
        ):
            raise ValidationError("initial_take", initial_take, "must be an integer >= 1 or None")
        self._initial_take = initial_take
        self._first_acquire = True
        self._lock = threading.Lock()

    # -- properties --

    @property
    def renew_interval_s(self) -> float:
        """How often to call :meth:`renew` [s]: ``ttl_s / 3``, so that after a failed renewal
        the next one still comes before the local validity (``ttl - margin``) runs out."""
        return self.ttl_s / 3

    @property
    def strategies(self) -> tuple[str, ...]:
        """The strategies this task runs (given to :meth:`ensure`), sorted."""
        return self._strategies or ()

    def held(self) -> list[Lease]:
        """The leases this task holds now (last acquisition or renewal), by strategy id. Some
        may no longer be :meth:`still_valid`."""
        with self._lock:
            leases = list(self._held.values())
        return sorted(leases, key=lambda lease: lease.strategy_id)

    def now_ns(self) -> int:
        """A reading of the local validity clock [ns] (what :meth:`still_valid` compares)."""
        return self._local_clock()

    # -- operations --

    def ensure(self, strategy_ids: Iterable[str]) -> int:
        """Create the lease rows (unowned, token 0) of the strategies this task runs, where
        missing, and remember them: :meth:`acquire` takes only these (several calls add up).

        Parameters
        ----------
        strategy_ids
            The strategies' ids (at most 64 characters each).

        Returns
        -------
        int
            How many rows were created (the others existed).

        Raises
        ------
        ValidationError
            An id that is not a non-empty string of at most 64 characters.
        LeaseStoreError
            The database failed.
        """
        if isinstance(strategy_ids, str):
            raise ValidationError("strategy_ids", strategy_ids, "must be a collection of ids")
        ids = [_check_id(f"strategy_ids[{i}]", s, ID_LEN) for i, s in enumerate(strategy_ids)]
        wanted = tuple(sorted(set(ids)))
        if wanted:

            def work(conn: Connection) -> int:
                table_insert = (
                    postgresql.insert(_leases) if self._postgres else sqlite.insert(_leases)
                )
                stmt = table_insert.on_conflict_do_nothing(
                    index_elements=["strategy_id"]
                ).returning(_leases.c.strategy_id)
                rows = [
                    {
                        "strategy_id": s,
                        "owner": None,
                        "fencing_token": 0,
                        "expires_ns": 0,
                        "heartbeat_ns": 0,
                    }
                    for s in wanted
                ]
                return len(conn.execute(stmt, rows).all())

            created = self._run("ensure", work)
        else:
            created = 0
        with self._lock:
            self._strategies = tuple(sorted({*(self._strategies or ()), *wanted}))
        return created

    def acquire(self, max_count: int | None = None, *, orphans: bool = False) -> list[Lease]:
        """Take unowned or expired leases of this task's strategies, up to its fair share
        (the first call: at most ``initial_take``).

        Parameters
        ----------
        max_count
            Take at most this many (>= 0); ``None``: the fair share only.
        orphans
            Instead: take every lease whose owner let it expire more than a whole ttl ago,
            beyond the fair share. The fair share spreads strategies over the live tasks, but
            must never leave one unowned: if the tasks under their share cannot take a dead
            task's strategies (none is left, or a replacement is still starting), any task
            takes them (the heartbeat asks this after its fair ``acquire``).

        Returns
        -------
        list of Lease
            The leases taken by this call (each with a new fencing token), by strategy id.

        Raises
        ------
        ConfigurationError
            :meth:`ensure` was not called.
        ValidationError
            A negative or non-integer ``max_count``.
        LeaseStoreError
            The database failed: nothing was taken.
        """
        if max_count is not None and (
            isinstance(max_count, bool) or not isinstance(max_count, int) or max_count < 0
        ):
            raise ValidationError("max_count", max_count, "must be an integer >= 0 or None")
        strategies = self._strategies
        if strategies is None:
            raise ConfigurationError("LeaseManager.acquire: call ensure(strategy_ids) first")
        if not strategies or max_count == 0:
            return []
        t = _leases
        mine = t.c.strategy_id.in_(strategies)
        with self._lock:
            t0 = self._local_clock()
            now = self._now_expr()
            live = t.c.expires_ns >= now
            first = self._first_acquire

            def work(conn: Connection) -> list[_Returned]:
                counts = conn.execute(
                    select(
                        func.count(),
                        func.count(
                            distinct(case((and_(live, t.c.owner != self.owner), t.c.owner)))
                        ),
                        func.count(case((and_(live, t.c.owner == self.owner), 1))),
                    ).where(mine)
                ).one()
                n, others, held = int(counts[0]), int(counts[1]), int(counts[2])
                quota = -(-n // (others + 1)) - held  # ceil(n / live) - mine
                if max_count is not None:
                    quota = min(quota, max_count)
                if first and self._initial_take is not None:
                    quota = min(quota, self._initial_take)
                free = or_(t.c.owner.is_(None), t.c.expires_ns < now)
                if orphans:  # expired for a whole ttl and more: nobody under share took it
                    quota = n if max_count is None else max_count
                    free = and_(t.c.owner.is_not(None), t.c.expires_ns < now - self._ttl_ns)
                if quota <= 0:
                    return []
                pick = select(t.c.strategy_id).where(mine, free).order_by(t.c.strategy_id)
                pick = pick.limit(quota)
                if self._postgres:
                    pick = pick.with_for_update(skip_locked=True)
                stmt = (
                    update(t)
                    .where(t.c.strategy_id.in_(pick.scalar_subquery()), free)
                    .values(
                        owner=self.owner,
                        fencing_token=t.c.fencing_token + 1,
                        expires_ns=now + self._ttl_ns,
                        heartbeat_ns=now,
                    )
                    .returning(t.c.strategy_id, t.c.fencing_token, t.c.expires_ns)
                )
                return [(r[0], int(r[1]), int(r[2])) for r in conn.execute(stmt)]

            rows = self._run("acquire", work)
            self._first_acquire = False
            taken = [self._lease(row, t0) for row in rows]
            for lease in taken:
                self._held[lease.strategy_id] = lease
        taken.sort(key=lambda lease: lease.strategy_id)
        for lease in taken:
            log.info(
                "lease acquired",
                extra={
                    "strategy_id": lease.strategy_id,
                    "owner": self.owner,
                    "fencing_token": lease.fencing_token,
                },
            )
        return taken

    def renew(self, leases: Iterable[Lease]) -> list[Lease]:
        """Heartbeat: push the expiry of the leases this task still holds with the same
        fencing token.

        Parameters
        ----------
        leases
            Leases of this task (from :meth:`acquire`, :meth:`renew` or :meth:`held`).

        Returns
        -------
        list of Lease
            The leases still held, with their new expiry and validity, by strategy id. A
            lease given but not returned is lost (another task took it after it expired, or
            it was released): it is no longer :meth:`still_valid`, and a warning is logged.

        Raises
        ------
        ValidationError
            An item that is not a Lease of this owner.
        LeaseStoreError
            The database failed: nothing was renewed, the local validity runs on.
        """
        items = _check_leases(leases, self.owner)
        if not items:
            return []
        t = _leases
        pairs = sorted({(lease.strategy_id, lease.fencing_token) for lease in items})
        with self._lock:
            t0 = self._local_clock()
            now = self._now_expr()
            ours = and_(
                t.c.owner == self.owner, tuple_(t.c.strategy_id, t.c.fencing_token).in_(pairs)
            )

            def work(conn: Connection) -> list[_Returned]:
                target: ColumnElement[bool] = ours
                if self._postgres:
                    # lock in strategy order, as assert_fenced does: no deadlock with a
                    # fenced journal write of the same task
                    locked = select(t.c.strategy_id).where(ours).order_by(t.c.strategy_id)
                    target = and_(
                        ours, t.c.strategy_id.in_(locked.with_for_update().scalar_subquery())
                    )
                stmt = (
                    update(t)
                    .where(target)
                    .values(expires_ns=now + self._ttl_ns, heartbeat_ns=now)
                    .returning(t.c.strategy_id, t.c.fencing_token, t.c.expires_ns)
                )
                return [(r[0], int(r[1]), int(r[2])) for r in conn.execute(stmt)]

            rows = self._run("renew", work)
            kept = [self._lease(row, t0) for row in rows]
            kept_pairs = {(lease.strategy_id, lease.fencing_token) for lease in kept}
            for lease in kept:
                self._held[lease.strategy_id] = lease
            lost = [p for p in pairs if p not in kept_pairs]
            for strategy_id, token in lost:
                current = self._held.get(strategy_id)
                if current is not None and current.fencing_token == token:
                    del self._held[strategy_id]
        for strategy_id, token in lost:
            log.warning(
                "lease lost",
                extra={"strategy_id": strategy_id, "owner": self.owner, "fencing_token": token},
            )
        kept.sort(key=lambda lease: lease.strategy_id)
        return kept

    def release(self, leases: Iterable[Lease]) -> int:
        """Give leases up (owner cleared) so that another task can take them at once.

        The leases stop being :meth:`still_valid` *before* the table is changed. Stop
        sending orders for the strategies first.

        Parameters
        ----------
        leases
            Leases of this task.

        Returns
        -------
        int
            How many were released (a lease already lost is not counted).

        Raises
        ------
        ValidationError
            An item that is not a Lease of this owner.
        LeaseStoreError
            The database failed: the leases are no longer valid here, and expire in the
            table after their ttl.
        """
        items = _check_leases(leases, self.owner)
        if not items:
            return 0
        t = _leases
        pairs = sorted({(lease.strategy_id, lease.fencing_token) for lease in items})
        with self._lock:
            for strategy_id, token in pairs:
                current = self._held.get(strategy_id)
                if current is not None and current.fencing_token == token:
                    del self._held[strategy_id]
            now = self._now_expr()
            stmt = (
                update(t)
                .where(
                    t.c.owner == self.owner,
                    tuple_(t.c.strategy_id, t.c.fencing_token).in_(pairs),
                )
                .values(owner=None, expires_ns=now, heartbeat_ns=now)
                .returning(t.c.strategy_id)
            )
            released = len(self._run("release", lambda conn: list(conn.execute(stmt).all())))
        log.info(
            "leases released",
            extra={"owner": self.owner, "strategy_ids": [p[0] for p in pairs], "count": released},
        )
        return released

    def release_all(self) -> int:
        """Release every lease this task holds (shutdown). Returns how many were released."""
        return self.release(self.held())

    def still_valid(self, lease: Lease, now_ns: int | None = None) -> bool:
        """May this task act on ``lease`` (send orders for its strategy) now?

        True only while this task holds the lease with the same token (not lost, not
        released) and ``now_ns`` is before the local validity of the last successful
        acquisition or renewal (``t0 + ttl - safety_margin``, see the module docstring).

        Parameters
        ----------
        lease
            A lease of this task (an older object of the same acquisition will do: the last
            renewal counts).
        now_ns
            A reading of ``local_clock`` [ns]; default: read it now.
        """
        if not isinstance(lease, Lease) or lease.owner != self.owner:
            return False
        current = self._held.get(lease.strategy_id)
        if current is None or current.fencing_token != lease.fencing_token:
            return False
        now = self._local_clock() if now_ns is None else now_ns
        return now < current.valid_until_ns

    # -- plumbing --

    def _now_expr(self) -> ColumnElement[int]:
        """The statement's "now" [UTC epoch ns]: the server's clock or ours (a parameter)."""
        if self.database_clock:
            # statement_timestamp(): when the statement arrived, stable within it (microsecond
            # resolution); EXTRACT gives numeric on PostgreSQL >= 14, exact
            return cast(extract("epoch", func.statement_timestamp()) * _NS_PER_S, BigInteger)
        now = self._clock()
        if isinstance(now, bool) or not isinstance(now, int) or not 0 <= now <= _INT64_MAX:
            raise ValidationError("clock()", now, "must return UTC epoch ns as an int")
        return literal(now, BigInteger)

    def _lease(self, row: _Returned, t0: int) -> Lease:
        return Lease(
            strategy_id=row[0],
            owner=self.owner,
            fencing_token=row[1],
            expires_ns=row[2],
            valid_until_ns=t0 + self._valid_ns,
        )

    def _run(self, what: str, work: Callable[[Connection], T]) -> T:
        """Run ``work`` on its own connection: autocommit on PostgreSQL (each statement is its
        own transaction: no lock outlives a statement), a write transaction on SQLite."""
        try:
            if self._postgres:
                with self._engine.connect() as conn:
                    auto = conn.execution_options(isolation_level="AUTOCOMMIT")
                    return work(auto)
            with write_transaction(self._engine) as conn:
                return work(conn)
        except SQLAlchemyError as exc:
            orig = getattr(exc, "orig", None)
            text = str(orig if orig is not None else exc).strip()
            first = text.splitlines()[0] if text else ""
            raise LeaseStoreError(
                f"lease {what} for {self.owner!r} failed on {masked(self._engine.url)}: "
                f"{type(exc).__name__}: {first}"
            ) from exc


# ---- fencing -------------------------------------------------------------------------------


def assert_fenced(conn: Connection, strategy_id: str, owner: str, token: int) -> None:
    """Refuse a write unless ``owner`` still holds ``strategy_id``'s lease with ``token``.

    Call it inside the transaction that writes (orders, events, fills of the strategy), before
    the writes. On PostgreSQL the lease row is read ``FOR SHARE``: a takeover (an ``UPDATE``
    of the row) waits until this transaction ends, so the writes commit before any new owner
    acquires, or the check fails. On SQLite the write transaction (``BEGIN IMMEDIATE``)
    already excludes every other writer. An expired lease that nobody took yet passes: no
    one else has acted under it.

    Parameters
    ----------
    conn
        A connection inside the write transaction.
    strategy_id, owner, token
        The lease the writer believes it holds.

    Raises
    ------
    LeaseLostError
        The row names another owner or token, or nobody, or does not exist.
    """
    _check_id("strategy_id", strategy_id, ID_LEN)
    _check_id("owner", owner, NAME_LEN)
    if isinstance(token, bool) or not isinstance(token, int):
        raise ValidationError("token", token, "must be an integer")
    rows = _lock_rows(conn, [strategy_id])
    _check_row(rows.get(strategy_id), strategy_id, owner, token)


def _lock_rows(conn: Connection, strategy_ids: Sequence[str]) -> dict[str, tuple[str | None, int]]:
    t = _leases
    stmt = (
        select(t.c.strategy_id, t.c.owner, t.c.fencing_token)
        .where(t.c.strategy_id.in_(sorted(set(strategy_ids))))
        .order_by(t.c.strategy_id)
    )
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(read=True)  # FOR SHARE, rows locked in strategy order
    return {row[0]: (row[1], int(row[2])) for row in conn.execute(stmt)}


def _check_row(
    row: tuple[str | None, int] | None, strategy_id: str, owner: str, token: int
) -> None:
    if row is None:
        raise LeaseLostError(strategy_id, owner, token, holder=None, holder_token=None)
    holder, holder_token = row
    if holder != owner or holder_token != token:
        raise LeaseLostError(strategy_id, owner, token, holder=holder, holder_token=holder_token)


@contextmanager
def fenced_transaction(
    bind: Engine | Connection,
    leases: Lease | Collection[Lease],
    *,
    idle_timeout_s: float | None = 1.0,
) -> Iterator[Connection]:
    """A write transaction that commits only under the given leases (see
    :func:`assert_fenced`): the leases are checked (rows locked in strategy order) before the
    body runs; any error rolls everything back.

    Parameters
    ----------
    bind
        An engine (own transaction) or a connection (its transaction is joined).
    leases
        The lease or leases the writes are made under.
    idle_timeout_s
        PostgreSQL: end the session if this transaction sits idle longer than this [s]
        (``idle_in_transaction_session_timeout``), so that a paused process cannot hold a
        lease row's lock and delay a takeover; ``None``: the server's setting.

    Raises
    ------
    LeaseLostError
        A lease is no longer held: nothing is written.
    """
    items = [leases] if isinstance(leases, Lease) else list(leases)
    for i, lease in enumerate(items):
        if not isinstance(lease, Lease):
            raise ValidationError(f"leases[{i}]", lease, "must be a Lease")
    timeout_ms = None
    if idle_timeout_s is not None:
        timeout_ms = max(1, round(_check_seconds("idle_timeout_s", idle_timeout_s) * 1000))
    with write_transaction(bind) as conn:
        if timeout_ms is not None and conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SET LOCAL idle_in_transaction_session_timeout = {timeout_ms}")
        rows = _lock_rows(conn, [lease.strategy_id for lease in items])
        for lease in items:
            _check_row(
                rows.get(lease.strategy_id), lease.strategy_id, lease.owner, lease.fencing_token
            )
        yield conn


# ---- reading -------------------------------------------------------------------------------


def lease_states(
    bind: Engine | Connection, strategy_ids: Collection[str] | None = None
) -> list[LeaseState]:
    """The lease table as stored, by strategy id (``strategy_ids``: only these)."""
    stmt = select(_leases).order_by(_leases.c.strategy_id)
    if strategy_ids is not None:
        stmt = stmt.where(_leases.c.strategy_id.in_(sorted(strategy_ids)))

    def read(conn: Connection) -> list[LeaseState]:
        return [LeaseState(**dict(row)) for row in conn.execute(stmt).mappings()]

    if isinstance(bind, Connection):
        return read(bind)
    with bind.connect() as conn:
        return read(conn)
