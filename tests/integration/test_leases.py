"""Strategy leases on SQLite and a real PostgreSQL 15: the protocol step by step with an
injected clock, then several real worker processes killed, stopped and resumed at random
against one PostgreSQL (never two owners, none orphaned, tokens only grow, stale writes
refused)."""

from __future__ import annotations

import itertools
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from algoengine.errors import ConfigurationError, ValidationError
from algoengine.persistence import repositories as repo
from algoengine.persistence.db import make_engine, upgrade
from algoengine.persistence.leases import (
    Lease,
    LeaseLostError,
    LeaseManager,
    LeaseStoreError,
    assert_fenced,
    fenced_transaction,
    lease_states,
)
from tests.integration.conftest import PostgresServer

NS = 1_000_000_000
T0 = 1_893_456_000 * NS  # 2030-01-01 [UTC epoch ns]
TTL_S = 5.0
TTL = 5 * NS
MARGIN = 1 * NS  # ttl / 5
IDS = ["condor", "strangle", "straddle"]


class FakeClock:
    """One clock for the table's times and the local validity, moved by the test."""

    def __init__(self, start: int = T0) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now

    def advance(self, ns: int) -> None:
        self.now += ns


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def manager(engine: Engine, owner: str, clock: FakeClock, **kw: object) -> LeaseManager:
    return LeaseManager(
        engine,
        owner,
        ttl_s=TTL_S,
        clock=clock,
        local_clock=clock,
        database_clock=False,
        **{"initial_take": None, **kw},  # type: ignore[arg-type]
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# ---- the protocol, step by step (SQLite and PostgreSQL) -------------------------------------


def test_ensure_creates_unowned_rows_once(migrated: Engine, clock: FakeClock) -> None:
    a = manager(migrated, "task-a", clock)
    assert a.ensure(IDS) == 3
    assert a.ensure([*IDS, "condor"]) == 0  # idempotent, duplicates ignored
    assert manager(migrated, "task-b", clock).ensure(["condor", "ratio"]) == 1
    states = lease_states(migrated)
    assert [s.strategy_id for s in states] == ["condor", "ratio", "straddle", "strangle"]
    assert all(s.owner is None and s.fencing_token == 0 for s in states)
    assert a.strategies == ("condor", "straddle", "strangle")  # not "ratio": a does not run it


def test_acquire_takes_free_leases_with_new_tokens(migrated: Engine, clock: FakeClock) -> None:
    a, b = manager(migrated, "task-a", clock), manager(migrated, "task-b", clock)
    a.ensure(IDS)
    b.ensure(IDS)
    got = a.acquire()
    assert [x.strategy_id for x in got] == sorted(IDS)  # alone: a takes everything
    assert all(x.fencing_token == 1 and x.owner == "task-a" for x in got)
    assert all(x.expires_ns == T0 + TTL and x.valid_until_ns == T0 + TTL - MARGIN for x in got)
    assert all(a.still_valid(x) for x in got)
    assert b.acquire() == []  # nothing free, nothing expired
    assert not any(b.still_valid(x) for x in got)  # not b's leases
    row = lease_states(migrated, ["condor"])[0]
    assert (row.owner, row.fencing_token, row.expires_ns, row.heartbeat_ns) == (
        "task-a",
        1,
        T0 + TTL,
        T0,
    )
    assert a.acquire() == []  # already holds them
    assert a.held() == got


def test_acquire_takes_at_most_the_fair_share(migrated: Engine, clock: FakeClock) -> None:
    ids = [f"s{i}" for i in range(8)]
    a, b, c = (manager(migrated, f"task-{x}", clock) for x in "abc")
    for m in (a, b, c):
        m.ensure(ids)
    assert len(a.acquire(max_count=3)) == 3
    assert len(b.acquire()) == 4  # live: a, b -> ceil(8 / 2) = 4
    assert len(c.acquire()) == 1  # live: a, b, c -> share 3, but only 1 is free
    assert a.acquire() == []  # a holds 3 = ceil(8 / 3)
    owners = [s.owner for s in lease_states(migrated)]
    assert sorted(owners) == ["task-a"] * 3 + ["task-b"] * 4 + ["task-c"]  # type: ignore[type-var]
    # b dies: after its leases expire, the survivors split its 4 within their shares
    clock.advance(TTL // 2)
    a.renew(a.held())
    c.renew(c.held())
    clock.advance(TTL // 2 + 1)  # b's leases expired (expires_ns < now), a's and c's not
    assert len(c.acquire()) == 3  # live: a, c -> ceil(8 / 2) = 4, holds 1
    assert len(a.acquire()) == 1  # holds 3, share 4
    assert {s.owner for s in lease_states(migrated)} == {"task-a", "task-c"}
    assert a.acquire(max_count=0) == []


def test_first_acquire_takes_one_so_tasks_starting_together_split_fairly(
    migrated: Engine, clock: FakeClock
) -> None:
    ids = [f"s{i}" for i in range(8)]
    tasks = [manager(migrated, f"task-{i}", clock, initial_take=1) for i in range(3)]
    for m in tasks:
        m.ensure(ids)
    assert [len(m.acquire()) for m in tasks] == [1, 1, 1]  # each shows up as an owner
    assert [len(m.acquire()) for m in tasks] == [2, 2, 1]  # then ceil(8 / 3) = 3 each, at most
    assert [len(m.held()) for m in tasks] == [3, 3, 2]
    late = manager(migrated, "task-late", clock, initial_take=1)
    late.ensure(ids)
    assert late.acquire() == []  # nothing free: an idle task waits for a lease to free up
    tasks[0].release_all()
    # live: task-1, task-2 and itself -> share 3 (its first call, which found the others
    # visible, is spent)
    assert len(late.acquire()) == 3


def test_validity_ends_a_margin_before_the_table_expiry(migrated: Engine, clock: FakeClock) -> None:
    a, b = manager(migrated, "task-a", clock), manager(migrated, "task-b", clock)
    a.ensure(IDS)
    b.ensure(IDS)
    (lease, *_) = a.acquire()
    assert a.still_valid(lease, T0 + TTL - MARGIN - 1)
    assert not a.still_valid(lease, T0 + TTL - MARGIN)
    clock.advance(TTL - MARGIN)
    assert not a.still_valid(lease)  # a stops acting ...
    clock.advance(MARGIN)  # ... a whole margin before the expiry: expires_ns == now
    assert b.acquire() == []  # not expired yet (expires_ns < now is)
    clock.advance(1)
    taken = b.acquire()
    assert [(x.strategy_id, x.fencing_token) for x in taken] == [(s, 2) for s in sorted(IDS)]
    # a's heartbeat comes too late: the leases are reported lost and stay invalid
    assert a.renew(a.held()) == []
    assert a.held() == []
    assert not a.still_valid(lease, clock.now - TTL)  # whatever the time: lost
    assert all(b.still_valid(x) for x in taken)


def test_renew_extends_the_expiry_and_the_local_validity(
    migrated: Engine, clock: FakeClock
) -> None:
    a = manager(migrated, "task-a", clock)
    a.ensure(IDS)
    first = a.acquire()
    clock.advance(3 * NS)
    renewed = a.renew(first)
    assert [(x.strategy_id, x.fencing_token) for x in renewed] == [
        (x.strategy_id, 1) for x in first
    ]
    assert all(x.expires_ns == clock.now + TTL for x in renewed)
    assert lease_states(migrated, ["condor"])[0].heartbeat_ns == clock.now
    # the older objects of the same acquisition are valid as long as the last renewal says
    assert a.still_valid(first[0], T0 + TTL - MARGIN + 1)
    assert a.still_valid(first[0], clock.now + TTL - MARGIN - 1)
    assert not a.still_valid(first[0], clock.now + TTL - MARGIN)
    # an expired lease nobody took is still ours (same token: nobody acted under it)
    clock.advance(3 * TTL)
    assert not a.still_valid(first[0])
    again = a.renew(renewed)
    assert len(again) == 3 and all(a.still_valid(x) for x in again)
    assert {s.fencing_token for s in lease_states(migrated)} == {1}


def test_release_hands_over_at_once(migrated: Engine, clock: FakeClock) -> None:
    a, b = manager(migrated, "task-a", clock), manager(migrated, "task-b", clock)
    a.ensure(IDS)
    b.ensure(IDS)
    held = a.acquire()
    assert a.release(held[:1]) == 1
    assert not a.still_valid(held[0]) and a.still_valid(held[1])
    taken = b.acquire()  # no time passed
    assert [(x.strategy_id, x.fencing_token) for x in taken] == [(held[0].strategy_id, 2)]
    assert a.release(held[:1]) == 0  # already someone else's
    assert a.renew(held[:1]) == []
    assert a.release_all() == 2
    assert a.held() == [] and a.release([]) == 0 and a.renew([]) == []
    row = lease_states(migrated, [held[1].strategy_id])[0]
    assert (row.owner, row.fencing_token, row.expires_ns) == (None, 1, T0)


def test_a_stale_writer_is_fenced_off(migrated: Engine, clock: FakeClock) -> None:
    a, b = manager(migrated, "task-a", clock), manager(migrated, "task-b", clock)
    a.ensure(["condor"])
    b.ensure(["condor"])
    (old,) = a.acquire()
    with fenced_transaction(migrated, old) as conn:
        repo.audit(conn, ts_ns=clock.now, actor="task-a", action="order", details={"n": 1})
    clock.advance(TTL + 1)
    (new,) = b.acquire()
    # a was paused: it still has its lease object and tries to write with token 1
    with pytest.raises(LeaseLostError) as err, fenced_transaction(migrated, [old]) as conn:
        repo.audit(conn, ts_ns=clock.now, actor="task-a", action="order", details={"n": 2})
    assert (err.value.strategy_id, err.value.fencing_token) == ("condor", 1)
    assert (err.value.holder, err.value.holder_token) == ("task-b", 2)
    assert "task-b" in str(err.value)
    # a write that fails the check inside the body is rolled back with the whole transaction
    with (
        pytest.raises(LeaseLostError),
        fenced_transaction(migrated, new, idle_timeout_s=None) as conn,
    ):
        repo.audit(conn, ts_ns=clock.now, actor="task-b", action="order", details={"n": 3})
        assert_fenced(conn, "condor", "task-a", 1)
    with fenced_transaction(migrated, new) as conn:
        assert_fenced(conn, "condor", "task-b", 2)
        repo.audit(conn, ts_ns=clock.now, actor="task-b", action="order", details={"n": 4})
    assert [e.details["n"] for e in repo.audit_entries(migrated)] == [4, 1]
    with migrated.begin() as conn:
        with pytest.raises(LeaseLostError, match="no lease row"):
            assert_fenced(conn, "unknown", "task-b", 2)
        with pytest.raises(ValidationError) as bad:
            assert_fenced(conn, "condor", "task-b", "2")  # type: ignore[arg-type]
        assert bad.value.field == "token"
    b.release([new])
    with pytest.raises(LeaseLostError, match="released"), fenced_transaction(migrated, new):
        pass  # nobody holds it


def test_concurrent_acquirers_never_share_a_strategy(migrated: Engine) -> None:
    ids = [f"s{i}" for i in range(8)]
    # no first-call limit: every task tries to take all 8 at once
    managers = [
        LeaseManager(migrated, f"task-{i}", ttl_s=30.0, initial_take=None) for i in range(6)
    ]
    managers[0].ensure(ids)
    barrier = threading.Barrier(len(managers))
    results: dict[str, list[Lease]] = {}

    def run(m: LeaseManager) -> None:
        m.ensure(ids)
        barrier.wait()
        results[m.owner] = m.acquire()

    threads = [threading.Thread(target=run, args=(m,)) for m in managers]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    taken = [x.strategy_id for got in results.values() for x in got]
    assert len(results) == 6
    assert len(taken) == len(set(taken))  # never two owners
    states = {s.strategy_id: s for s in lease_states(migrated)}
    for owner, got in results.items():
        for lease in got:
            assert states[lease.strategy_id].owner == owner
            assert states[lease.strategy_id].fencing_token == lease.fencing_token == 1
    # whatever is left free is taken by the next round
    for m in managers:
        m.acquire()
    assert all(s.owner is not None for s in lease_states(migrated))


def test_bad_arguments_are_named(migrated: Engine, clock: FakeClock) -> None:
    def field(call: object, *args: object, **kw: object) -> str:
        with pytest.raises(ValidationError) as err:
            call(*args, **kw)  # type: ignore[operator]
        return err.value.field

    assert field(LeaseManager, "sqlite://", "a") == "bind"
    assert field(LeaseManager, migrated, "") == "owner"
    assert field(LeaseManager, migrated, "x" * 129) == "owner"
    assert field(LeaseManager, migrated, "a", ttl_s=0) == "ttl_s"
    assert field(LeaseManager, migrated, "a", ttl_s=float("nan")) == "ttl_s"
    assert field(LeaseManager, migrated, "a", ttl_s=True) == "ttl_s"
    assert field(LeaseManager, migrated, "a", ttl_s=1.0, safety_margin_s=1.0) == "safety_margin_s"
    assert field(LeaseManager, migrated, "a", clock=5) == "clock"
    assert field(LeaseManager, migrated, "a", local_clock=None) == "local_clock"
    assert field(LeaseManager, migrated, "a", initial_take=0) == "initial_take"
    assert field(LeaseManager, migrated, "a", database_clock="yes") == "database_clock"
    a = manager(migrated, "task-a", clock)
    with pytest.raises(ConfigurationError, match="ensure"):
        a.acquire()
    assert field(a.ensure, "condor") == "strategy_ids"
    assert field(a.ensure, ["ok", ""]) == "strategy_ids[1]"
    assert field(a.ensure, ["x" * 65]) == "strategy_ids[0]"
    assert field(a.ensure, [3]) == "strategy_ids[0]"
    a.ensure(IDS)
    assert field(a.acquire, -1) == "max_count"
    assert field(a.acquire, 1.0) == "max_count"
    b = manager(migrated, "task-b", clock)
    b.ensure(IDS)
    theirs = b.acquire()
    assert field(a.renew, theirs) == "leases[0]"
    assert field(a.release, [theirs[0], "x"]) == "leases[0]"
    assert field(a.renew, [object()]) == "leases[0]"
    with pytest.raises(ValidationError) as err, fenced_transaction(migrated, ["x"]):  # type: ignore[list-item]
        pass
    assert err.value.field == "leases[0]"
    assert not a.still_valid(theirs[0])
    broken = LeaseManager(migrated, "task-c", clock=lambda: -1, database_clock=False)
    broken.ensure(IDS)
    assert field(broken.acquire) == "clock()"


def test_sqlite_has_no_database_clock(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite'}")
    try:
        with pytest.raises(ConfigurationError, match="PostgreSQL"):
            LeaseManager(engine, "a", database_clock=True)
        assert not LeaseManager(engine, "a").database_clock
    finally:
        engine.dispose()


# ---- PostgreSQL only ------------------------------------------------------------------------


@pytest.fixture
def pg(postgres_server: PostgresServer) -> Iterator[tuple[str, Engine]]:
    """A fresh PostgreSQL database with the schema: its URL and an engine."""
    name = f"algoengine_leases_{uuid.uuid4().hex[:12]}"
    url = postgres_server.create_database(name)
    engine = make_engine(url)
    try:
        upgrade(engine)
        yield url, engine
    finally:
        engine.dispose()
        postgres_server.drop_database(name)


def test_postgres_expiry_follows_the_database_clock(pg: tuple[str, Engine]) -> None:
    _, engine = pg
    frozen = FakeClock(start=0)  # a wall clock stuck at 1970: not used on PostgreSQL
    a = LeaseManager(engine, "task-a", ttl_s=0.4, clock=frozen)
    b = LeaseManager(engine, "task-b", ttl_s=0.4, clock=frozen)
    assert a.database_clock
    a.ensure(["condor"])
    b.ensure(["condor"])
    before = time.time_ns()
    (lease,) = a.acquire()
    after = time.time_ns()
    assert before + 400_000_000 - 50_000_000 <= lease.expires_ns <= after + 400_000_000 + 50_000_000
    assert a.still_valid(lease) and b.acquire() == []
    time.sleep(0.32)  # past the local validity (0.4 - 0.08), before the expiry
    assert not a.still_valid(lease)
    time.sleep(0.15)
    (taken,) = b.acquire()
    assert taken.fencing_token == 2 and b.still_valid(taken)
    assert a.renew([lease]) == []


def test_a_paused_fenced_writer_cannot_hold_a_takeover_back(pg: tuple[str, Engine]) -> None:
    _, engine = pg
    clock = FakeClock()
    a, b = manager(engine, "task-a", clock), manager(engine, "task-b", clock)
    a.ensure(["condor"])
    b.ensure(["condor"])
    (lease,) = a.acquire()
    clock.advance(TTL + 1)  # expired: b may take it, but a is inside a fenced write
    with (
        pytest.raises(DBAPIError, match="idle-in-transaction"),
        fenced_transaction(engine, lease, idle_timeout_s=0.2) as conn,
    ):
        assert b.acquire() == []  # the row is locked FOR SHARE: skipped, not waited for
        time.sleep(0.6)  # a is "paused" inside its transaction
        (taken,) = b.acquire()  # the server ended a's session: the takeover goes through
        assert taken.fencing_token == 2
        repo.audit(conn, ts_ns=clock.now, actor="task-a", action="order")  # too late
    assert repo.audit_entries(engine) == []


def test_unreachable_database_is_a_lease_store_error() -> None:
    url = f"postgresql+psycopg://task:s3cret@127.0.0.1:{_free_port()}/algo"
    engine = make_engine(url, connect_timeout_s=1)
    try:
        m = LeaseManager(engine, "task-a", ttl_s=1.0)
        with pytest.raises(LeaseStoreError) as err:
            m.ensure(["condor"])
        assert "s3cret" not in str(err.value) and "***" in str(err.value)
        assert m.strategies == ()
    finally:
        engine.dispose()


# ---- several real processes, killed at random ------------------------------------------------

WORKER = Path(__file__).with_name("lease_worker.py")
N_WORKERS = 4
N_STRATEGIES = 8
CHAOS_TTL_S = 1.5
CHAOS_S = 15.0
#: Allowed hand-over delay beyond the ttl: one acquire period (ttl / 3) plus scheduling
#: slack on a loaded 2-core machine.
HANDOVER_SLACK_S = CHAOS_TTL_S / 3 + 1.5


@dataclass
class Worker:
    owner: str
    log: Path
    proc: subprocess.Popen[bytes]
    stderr: BinaryIO


@dataclass
class Interval:
    owner: str
    strategy_id: str
    token: int
    first_ns: int  # first instant still_valid said True
    last_ns: int  # last instant it said True
    until_ns: int  # the latest local validity it knew (or its release): the bound it relied on


def _spawn(url: str, folder: Path, index: int) -> Worker:
    owner = f"w{index}"
    log = folder / f"{owner}.log"
    stderr = (folder / f"{owner}.err").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            str(WORKER),
            url,
            owner,
            str(log),
            "--ttl",
            str(CHAOS_TTL_S),
            "--strategies",
            str(N_STRATEGIES),
            "--max-runtime",
            "90",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    return Worker(owner=owner, log=log, proc=proc, stderr=stderr)


def _intervals(workers: list[Worker]) -> tuple[list[Interval], dict[str, list[int]], int]:
    """Belief intervals per (owner, strategy, token), every still_valid instant per strategy,
    and the number of refused fenced writes."""
    spans: dict[tuple[str, str, int], Interval] = {}
    released: dict[tuple[str, str, int], int] = {}
    points: dict[str, list[int]] = defaultdict(list)
    refused = 0
    for w in workers:
        if not w.log.exists():  # started and stopped before it got going
            continue
        for line in w.log.read_text().splitlines():
            parts = line.split()
            if not parts:
                continue
            kind = parts[0]
            if kind == "V" and len(parts) == 5:
                sid, token, t, until = parts[1], int(parts[2]), int(parts[3]), int(parts[4])
                points[sid].append(t)
                key = (w.owner, sid, token)
                span = spans.get(key)
                if span is None:
                    spans[key] = Interval(w.owner, sid, token, t, t, until)
                else:
                    span.last_ns = max(span.last_ns, t)
                    span.until_ns = max(span.until_ns, until)
            elif kind == "R" and len(parts) == 4:
                released[(w.owner, parts[1], int(parts[2]))] = int(parts[3])
            elif kind == "F":
                refused += 1
    for key, t in released.items():
        if key in spans:
            spans[key].until_ns = min(spans[key].until_ns, t)
    return list(spans.values()), points, refused


@pytest.mark.slow
def test_workers_killed_at_random_never_share_and_never_orphan(
    pg: tuple[str, Engine], tmp_path: Path
) -> None:
    url, engine = pg
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE lease_test_writes (id BIGSERIAL PRIMARY KEY, strategy_id TEXT "
                "NOT NULL, owner TEXT NOT NULL, token BIGINT NOT NULL, t_ns BIGINT NOT NULL)"
            )
        )
    rng = random.Random(int(os.environ.get("ALGOENGINE_LEASE_SEED", "20240605")))
    workers: list[Worker] = []
    running: list[Worker] = []
    actions: list[tuple[str, str, int]] = []  # (kind, owner, monotonic ns)
    paused: list[tuple[Worker, float]] = []  # resume at monotonic s
    try:
        for i in range(N_WORKERS):
            w = _spawn(url, tmp_path, i)
            workers.append(w)
            running.append(w)
        # wait until every strategy has an owner
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            states = lease_states(engine)
            if len(states) == N_STRATEGIES and all(s.owner for s in states):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the workers did not take every strategy within 20 s")
        time.sleep(0.2)  # every holder has logged a still_valid instant
        spread_at_start = sorted(Counter(s.owner for s in lease_states(engine)).values())
        chaos_start = time.monotonic_ns()
        end = time.monotonic() + CHAOS_S
        n_pauses = 0
        next_action = time.monotonic() + rng.uniform(0.6, 1.4)
        while time.monotonic() < end:
            now = time.monotonic()
            for w, at in list(paused):
                if now >= at:
                    w.proc.send_signal(signal.SIGCONT)
                    actions.append(("cont", w.owner, time.monotonic_ns()))
                    paused.remove((w, at))
            if now >= next_action:
                next_action = now + rng.uniform(0.6, 1.4)
                holders = {s.owner for s in lease_states(engine) if s.owner}
                candidates = [w for w in running if all(w is not p for p, _ in paused)]
                holding = [w for w in candidates if w.owner in holders]
                # mostly a task holding leases (a hand-over), sometimes an idle one
                victim = rng.choice(holding if holding and rng.random() < 0.8 else candidates)
                # a pause is only interesting for a holder; the first three holders chosen
                # as victims after 2 s are paused, the others killed or stopped cleanly
                kind = rng.choices(["kill", "term"], weights=[3, 1])[0]
                if n_pauses < 3 and victim.owner in holders and now - chaos_start / 1e9 > 2:
                    kind = "stop"
                if kind == "stop":
                    n_pauses += 1
                    victim.proc.send_signal(signal.SIGSTOP)
                    paused.append((victim, now + CHAOS_TTL_S + 1.0))
                    actions.append(("stop", victim.owner, time.monotonic_ns()))
                    continue
                victim.proc.send_signal(signal.SIGKILL if kind == "kill" else signal.SIGTERM)
                actions.append((kind, victim.owner, time.monotonic_ns()))
                running.remove(victim)
                fresh = _spawn(url, tmp_path, len(workers))
                workers.append(fresh)
                running.append(fresh)
            time.sleep(0.02)
        for w, _ in paused:
            w.proc.send_signal(signal.SIGCONT)
        time.sleep(0.3)  # the resumed ones look at their leases once more
        chaos_end = time.monotonic_ns() - 200_000_000
    finally:
        for w in workers:
            if w.proc.poll() is None:
                w.proc.send_signal(signal.SIGCONT)
                w.proc.kill()
        for w in workers:
            w.proc.wait(10)
            w.stderr.close()

    intervals, points, refused = _intervals(workers)
    kinds = [a[0] for a in actions]
    assert kinds.count("kill") + kinds.count("term") >= 5, actions
    assert kinds.count("stop") >= 1, actions
    by_strategy: dict[str, list[Interval]] = defaultdict(list)
    for span in intervals:
        by_strategy[span.strategy_id].append(span)
    assert sorted(by_strategy) == sorted(f"s{i}" for i in range(N_STRATEGIES))

    max_gap = 0
    for sid, spans in by_strategy.items():
        spans.sort(key=lambda s: s.first_ns)
        for prev, nxt in itertools.pairwise(spans):
            # (a) never two owners: what one believed ended before the next began, and even
            # the validity it relied on (its deadline, or its release) ended before
            assert prev.last_ns < nxt.first_ns, (sid, prev, nxt)
            assert prev.until_ns <= nxt.first_ns, (sid, prev, nxt)
            # (c) fencing tokens strictly increase across owners
            assert nxt.token > prev.token, (sid, prev, nxt)
        # (b) never orphaned: between any two instants at which some worker held the
        # strategy (and from the start of the chaos to its end) no gap beyond ttl + slack
        ts = sorted(t for t in points[sid] if chaos_start <= t <= chaos_end)
        edges = [chaos_start, *ts, chaos_end]
        gap = max(b - a for a, b in itertools.pairwise(edges))
        max_gap = max(max_gap, gap)
        assert gap <= (CHAOS_TTL_S + HANDOVER_SLACK_S) * NS, (sid, gap / NS, actions)

    # the fenced writes the database accepted: per strategy in commit order, tokens never go
    # back, and each token belongs to the one owner that held it
    owner_of = {(s.strategy_id, s.token): s.owner for s in intervals}
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT strategy_id, owner, token FROM lease_test_writes ORDER BY id")
        ).all()
    assert rows, "no fenced write was accepted"
    last: dict[str, int] = {}
    for sid, owner, token in rows:
        assert token >= last.get(sid, 0), (sid, owner, token, last[sid])
        last[sid] = token
        assert owner_of.get((sid, token), owner) == owner
    # the paused workers came back with stale leases and were refused
    assert refused >= 1
    final = {s.strategy_id: s.fencing_token for s in lease_states(engine)}
    for sid, spans in by_strategy.items():
        assert final[sid] >= max(s.token for s in spans)
    counts = {k: kinds.count(k) for k in sorted(set(kinds))}
    print(
        f"\nlease chaos: {len(workers)} workers, actions {counts}, "
        f"{len(intervals)} ownership intervals, {len(rows)} fenced writes accepted, "
        f"{refused} refused, longest hand-over gap {max_gap / 1e9:.3f} s, "
        f"leases per task at the start {spread_at_start}"
    )
