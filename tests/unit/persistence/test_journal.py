"""The journal on SQLite files: a real engine run ends up in the tables, batching, flush and
close, order within a table, an outage (a real SQLite lock held by another connection) spooled
and replayed, a spool left by an earlier process replayed at start, records that can never be
stored, and bad input.

The engine is attached through a small adapter (a subclass forwarding what the engine does to
the journal); the lead wires the engine itself.
"""

from __future__ import annotations

import json
import math
import socket
import sqlite3
from collections.abc import Iterator
from datetime import date, time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine as SqlEngine
from sqlalchemy import event, text

from algoengine.domain.events import (
    OrderAccepted,
    OrderDenied,
    OrderEvent,
    OrderFilled,
    OrderPartiallyFilled,
)
from algoengine.domain.orders import OrderRequest, OrderStatus, OrderType, Side
from algoengine.engine.engine import Engine, EngineConfig
from algoengine.engine.oms import ManagedOrder, OrderManager, ThrottleConfig
from algoengine.engine.portfolio import PnL, Position
from algoengine.errors import ConfigurationError, ValidationError
from algoengine.persistence import repositories as repo
from algoengine.persistence.db import make_engine, upgrade
from algoengine.persistence.journal import (
    DEAD_LETTER_FILE,
    SPOOL_FILE,
    Journal,
    JournalClosedError,
    OnOutage,
)
from algoengine.persistence.records import OrderRow, RunStatus
from algoengine.strategies.premium import PremiumSelling, PremiumSellingConfig

from ..engine._micro import EXPIRY, Calendar, bar_slice, exchange, flat, ist_ns, option, universe

RUN = "run-1"
SID = "s1"
INST = option(24000, "CE", "1001")
T0 = 1_767_000_000_000_000_000


# ---- fixtures and helpers ------------------------------------------------------------------


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "journal.sqlite"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def db(db_path: Path) -> Iterator[SqlEngine]:
    eng = make_engine(f"sqlite:///{db_path}")
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return tmp_path / "spool"


def journal(url_or_engine: str | SqlEngine, spool: Path, **kw: Any) -> Journal:
    kw.setdefault("run_id", RUN)
    kw.setdefault("mode", "paper")
    return Journal(url_or_engine, spool_dir=spool, **kw)


def count(db: SqlEngine, table: str) -> int:
    with db.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


class NullVenue:
    def submit(self, request: OrderRequest, ts_ns: int) -> None:
        pass

    def cancel(self, client_order_id: str, ts_ns: int) -> None:
        pass

    def modify(self, client_order_id: str, ts_ns: int, **change: int | None) -> None:
        pass


class Trader:
    """The real OMS, its events journaled as the engine's sink would, fed by the test."""

    def __init__(self, j: Journal, run_code: str = "J") -> None:
        self.journal = j
        self.oms = OrderManager(
            NullVenue(),
            check=None,
            sink=j.put_event,
            run_code=run_code,
            throttle=ThrottleConfig(orders_per_second=10**6, cancels_per_second=10**6),
        )
        self.events = 0

    def trade(self, fills: int, ts_ns: int, strategy_id: str = SID) -> ManagedOrder:
        """An order accepted and filled in ``fills`` fills of one lot: fills + 1 events."""
        lot = INST.lot_size
        (cid,) = self.oms.submit(
            strategy_id=strategy_id,
            idx=1,
            instrument=INST,
            side=Side.SELL,
            qty=lot * fills,
            order_type=OrderType.LIMIT,
            price_paise=10_000,
            ts_ns=ts_ns,
        )
        order = self.oms.orders[cid]
        self.journal.put_order(order)  # as sent
        events: list[OrderEvent] = [
            OrderAccepted(
                ts_ns=ts_ns + 1,
                client_order_id=cid,
                venue_order_id=f"V{cid}",
                status=OrderStatus.OPEN,
            )
        ]
        for k in range(fills):
            cls = OrderFilled if k == fills - 1 else OrderPartiallyFilled
            events.append(
                cls(
                    ts_ns=ts_ns + 2 + k,
                    client_order_id=cid,
                    venue_order_id=f"V{cid}",
                    trade_id=f"{cid}-{k}",
                    instrument_token=INST.token,
                    side=Side.SELL,
                    qty=lot,
                    price_paise=10_000 + k,
                    filled_qty=lot * (k + 1),
                    remaining_qty=lot * (fills - k - 1),
                )
            )
        self.oms.on_events(events, ts_ns)
        self.events += len(events)
        return order


def spool_lines(spool: Path) -> list[dict[str, Any]]:
    path = spool / SPOOL_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens there once the socket is closed


# ---- a real engine run ---------------------------------------------------------------------


class DenyOnePiece:
    """A pre-trade check that refuses the second slice of the put entry."""

    def check(self, order: ManagedOrder, ts_ns: int) -> tuple[str, str] | None:
        if order.tag == "entry PE" and order.qty == 845:
            return "MAX_LOTS", "845 units is more than this test allows"
        return None


def expiry_day() -> list[Any]:
    t, stop, feed = ist_ns(EXPIRY, 9, 16), ist_ns(EXPIRY, 15, 29), []
    while t <= stop:
        feed.append(bar_slice(t, [flat(0, 2_415_000), flat(1, 15_200), flat(2, 300)]))
        t += 60_000_000_000
    return feed


def test_a_real_engine_run_ends_up_in_the_tables(db: SqlEngine, spool: Path) -> None:
    j = journal(db, spool, batch_max=64)
    cfg = PremiumSellingConfig(
        strategy_id="straddle",
        leg_stop_loss_pct=30.0,
        lots=40,  # sliced: 1755 + 845 units
        hold_to_expiry=True,
        exit_time=time(15, 25),
    )
    u = universe()
    e = Engine(  # the engine wires the journal itself (see Engine's ``journal``)
        journal=j,
        universe=u,
        venue=exchange(u),
        strategies=[PremiumSelling(cfg)],
        calendar=Calendar(),
        config=EngineConfig(run_code="T"),
        risk=DenyOnePiece(),
    )
    e.run(expiry_day())
    assert j.close()

    # orders: every slice, in its final state
    orders = {o.client_order_id: o for o in repo.orders_of_run(db, RUN)}
    assert set(orders) == set(e.oms.orders)
    for cid, o in e.oms.orders.items():
        row = orders[cid]
        assert (row.status, row.qty, row.filled_qty, row.filled_value_paise, row.tag) == (
            o.status,
            o.qty,
            o.filled_qty,
            o.filled_value_paise,
            o.tag,
        )
        assert row.venue_order_id == o.venue_order_id
        # the event journal gives back exactly the OMS's history, in order
        events = repo.order_events(db, cid)
        assert [r.seq for r in events] == list(range(1, len(o.events) + 1))
        assert [r.to_event() for r in events] == o.events
    statuses = sorted(o.status.value for o in orders.values())
    assert statuses.count("REJECTED") == 1 and statuses.count("CANCELLED") == 5

    # fills, settlements included
    fills = repo.fills_of_run(db, RUN)
    assert [(f.client_order_id, f.qty, f.price_paise, f.settlement) for f in fills] == [
        (f.client_order_id, f.qty, f.price_paise, f.settlement) for f in e.fills
    ]
    assert sum(f.settlement for f in fills) == 2

    # positions as the portfolio has them at the end
    stored = {p.token: p for p in repo.positions(db, RUN)}
    for pos in e.portfolio.of():
        p = stored[pos.token]
        assert (p.qty, p.cash_paise, p.open_cost_paise, p.mark_paise, p.bought_qty) == (
            pos.qty,
            pos.cash_paise,
            pos.open_cost_paise,
            pos.mark_paise,
            pos.bought_qty,
        )

    # the denial, the P&L per minute, the run
    (risk,) = repo.risk_events(db)
    assert (risk.code, risk.strategy_id, risk.run_id) == ("MAX_LOTS", "straddle", RUN)
    assert orders[risk.client_order_id or ""].status is OrderStatus.REJECTED
    (pnl,) = repo.latest_pnl(db, run_id=RUN)
    assert pnl.net_paise == e.portfolio.pnl("straddle").net == e.equity[-1][1]
    assert count(db, "pnl_snapshots") == len({ts - ts % 60_000_000_000 for ts, _ in e.equity})
    run = repo.get_run(db, RUN, "straddle")
    assert run is not None
    assert run.status is RunStatus.STOPPED
    assert run.config["strategy_id"] == "straddle" and run.config["lots"] == 40
    assert run.stop_reason == "feed ended"

    m = j.metrics()
    assert m.healthy and m.backlog == 0 and m.dead_lettered == 0 and m.outages == 0
    assert m.rows_written["order_events"] == sum(len(o.events) for o in e.oms.orders.values())
    assert not (spool / SPOOL_FILE).exists()


# ---- batching, flush, close, order ---------------------------------------------------------


def test_records_are_written_in_batches_of_one_transaction(db: SqlEngine, spool: Path) -> None:
    commits: list[int] = []
    event.listen(db, "commit", lambda conn: commits.append(1))
    j = journal(db, spool, batch_max=200, flush_interval_s=0.2)
    j.put_run_start(SID, started_ns=T0)
    trader = Trader(j)
    for k in range(100):
        trader.trade(fills=5, ts_ns=T0 + k * 1_000)  # 100 orders, 600 events
    assert j.flush(10.0)
    assert count(db, "order_events") == 600
    assert count(db, "orders") == 100
    m = j.metrics()
    assert m.records == 1 + 100 + 600  # the run, the orders as sent, the events
    # every event carries its order's state: 600 event rows + 700 order snapshots + 1 run,
    # coalesced per batch to one snapshot per order, at most 200 rows per transaction
    assert len(commits) == m.batches
    assert m.rows_written["order_events"] == 600
    assert 100 <= m.rows_written["orders"] < 700
    rows = sum(m.rows_written.values())
    assert math.ceil(rows / 200) <= m.batches <= math.ceil(rows / 200) + 3
    assert m.batches < m.records / 50
    j.close()


def test_flush_returns_once_everything_put_is_written(db: SqlEngine, spool: Path) -> None:
    j = journal(db, spool, flush_interval_s=5.0)  # left alone, it would wait 5 s
    j.put_run_start(SID, started_ns=T0)
    Trader(j).trade(fills=3, ts_ns=T0)
    assert j.queued > 0
    assert j.flush(2.0)  # flush wakes the writer
    assert count(db, "order_events") == 4
    assert j.queued == 0


def test_close_writes_what_is_queued_stops_the_writer_and_refuses_more(
    db: SqlEngine, spool: Path
) -> None:
    j = journal(db, spool, flush_interval_s=5.0)
    j.put_run_start(SID, started_ns=T0)
    trader = Trader(j)
    trader.trade(fills=2, ts_ns=T0)
    assert j.close(5.0)
    assert count(db, "order_events") == 3
    assert j.close()  # again: nothing to do
    assert j.flush(0.1)
    with pytest.raises(JournalClosedError):
        j.put_run_start("other", started_ns=T0)
    with pytest.raises(JournalClosedError):
        trader.trade(fills=1, ts_ns=T0 + 10)
    # the folder's lock is released: another journal may use it
    journal(db, spool).close()


def test_rows_keep_their_order_within_a_table_across_batches(db: SqlEngine, spool: Path) -> None:
    j = journal(db, spool, batch_max=3)
    j.put_run_start(SID, started_ns=T0)
    trader = Trader(j)
    first = trader.trade(fills=25, ts_ns=T0)
    second = trader.trade(fills=4, ts_ns=T0 + 10**6)
    assert j.close()
    with db.connect() as conn:
        ids = conn.execute(text("SELECT client_order_id, seq FROM order_events ORDER BY id")).all()
    assert [tuple(r) for r in ids] == [(first.client_order_id, s) for s in range(1, 27)] + [
        (second.client_order_id, s) for s in range(1, 6)
    ]
    row = repo.get_order(db, first.client_order_id)
    assert row is not None
    assert (row.status, row.filled_qty) == (OrderStatus.FILLED, 25 * INST.lot_size)
    m = j.metrics()
    assert m.rows_written["order_events"] == 31
    assert m.batches >= math.ceil(sum(m.rows_written.values()) / 3)  # at most 3 rows each


def test_an_older_snapshot_never_overwrites_a_newer_one(db: SqlEngine, spool: Path) -> None:
    j = journal(db, spool)
    j.put_run_start(SID, started_ns=T0)
    order = Trader(j).trade(fills=2, ts_ns=T0)
    assert j.flush()
    stale = repo.get_order(db, order.client_order_id)
    assert stale is not None
    j.put(
        OrderRow(
            **{
                **{f: getattr(stale, f) for f in stale.__slots__},
                "status": OrderStatus.OPEN,
                "filled_qty": 0,
                "filled_value_paise": 0,
                "updated_ns": T0 + 1,
            }
        )
    )
    pos = Position(strategy_id=SID, idx=1, token=INST.token, qty=-65, mark_paise=100)
    j.put_position(pos, T0 + 50)
    pos.qty = 0
    j.put_position(pos, T0 + 60)  # the copy was taken at put: the -65 above is kept apart
    j.put_position(Position(strategy_id=SID, idx=1, token=INST.token, qty=-999), T0 + 55)
    assert j.close()
    row = repo.get_order(db, order.client_order_id)
    assert row is not None and row.status is OrderStatus.FILLED
    (p,) = repo.positions(db, RUN)
    assert (p.qty, p.updated_ns) == (0, T0 + 60)


def test_pnl_is_one_snapshot_per_minute_the_latest(db: SqlEngine, spool: Path) -> None:
    j = journal(db, spool)
    j.put_run_start(SID, started_ns=T0)
    minute = 60_000_000_000
    base = T0 - T0 % minute
    for k in range(6):  # three in each of two minutes
        net = 100 * k
        j.put_pnl(PnL(net, 0, 0, net, net), strategy_id=SID, ts_ns=base + k * 20_000_000_000)
    assert j.close()
    history = repo.pnl_history(db, SID, run_id=RUN)
    assert [(s.ts_ns, s.net_paise) for s in history] == [(base, 200), (base + minute, 500)]


def test_a_strategy_without_a_run_start_still_gets_its_rows(db: SqlEngine, spool: Path) -> None:
    j = journal(db, spool)
    Trader(j).trade(fills=1, ts_ns=T0, strategy_id="forgotten")
    assert j.close()
    run = repo.get_run(db, RUN, "forgotten")
    assert run is not None and run.started_ns == T0 and run.config == {}
    assert count(db, "order_events") == 2
    assert j.metrics().dead_lettered == 0


def test_commands_acted_on_are_marked(db: SqlEngine, spool: Path) -> None:
    from algoengine.engine.commands import KillSwitch

    cmd_id = repo.post_command(db, KillSwitch(on=True, issued_by="ops"), issued_ns=T0)
    j = journal(db, spool)
    j.put_command_acted(cmd_id, acted_ns=T0 + 5, acted_by="task-1", result="engaged")
    j.put_command_acted(cmd_id, acted_ns=T0 + 9, acted_by="task-1", result="again")
    assert j.close()
    cmd = repo.get_command(db, cmd_id)
    assert cmd is not None and (cmd.acted_ns, cmd.result) == (T0 + 5, "engaged")
    assert repo.pending_commands(db) == []


# ---- outages -------------------------------------------------------------------------------


def test_a_locked_database_is_spooled_and_replayed_when_it_frees(
    db_path: Path, spool: Path
) -> None:
    db = make_engine(f"sqlite:///{db_path}", busy_timeout_ms=20)
    j = journal(db, spool, on_outage=OnOutage.STOP_OPENING)
    j.put_run_start(SID, started_ns=T0)
    trader = Trader(j)
    trader.trade(fills=2, ts_ns=T0)
    assert j.flush() and j.healthy and j.allow_new_positions()

    # another connection takes the write lock: every write of the journal fails
    locker = sqlite3.connect(db_path, isolation_level=None, timeout=0)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        trader.trade(fills=3, ts_ns=T0 + 1_000)
        assert j.flush(5.0)
        assert not j.healthy
        assert not j.allow_new_positions()
        lines = spool_lines(spool)
        assert j.backlog == len(lines) > 0
        assert {line["t"] for line in lines} >= {"orders", "order_events"}
        trader.trade(fills=4, ts_ns=T0 + 2_000)  # more while down: spooled after
        assert j.flush(5.0)
        assert len(spool_lines(spool)) == j.backlog > len(lines)
        seqs = [
            (line["r"]["client_order_id"], line["r"]["seq"])
            for line in spool_lines(spool)
            if line["t"] == "order_events"
        ]
        assert seqs == sorted(seqs)  # in order
        m = j.metrics()
        assert m.outages == 1 and m.spooled == j.backlog
        assert m.last_error is not None and "locked" in m.last_error
    finally:
        locker.execute("COMMIT")
        locker.close()

    assert j.wait_healthy(10.0)
    assert j.allow_new_positions()
    assert j.backlog == 0
    assert (spool / SPOOL_FILE).stat().st_size == 0
    assert count(db, "order_events") == trader.events == 3 + 4 + 5
    m = j.metrics()
    assert m.replays == 1 and m.replayed == m.spooled
    assert j.close()
    db.dispose()


def test_rows_stay_in_memory_while_the_spool_cannot_be_written_either(
    db_path: Path, spool: Path
) -> None:
    db = make_engine(f"sqlite:///{db_path}", busy_timeout_ms=20)
    j = journal(db, spool)
    j.put_run_start(SID, started_ns=T0)
    trader = Trader(j)
    trader.trade(fills=1, ts_ns=T0)
    assert j.flush() and j.healthy
    (spool / SPOOL_FILE).mkdir()  # where the spool goes, a folder: appending to it fails
    locker = sqlite3.connect(db_path, isolation_level=None, timeout=0)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        trader.trade(fills=3, ts_ns=T0 + 1_000)
        assert j.flush(5.0)
        m = j.metrics()
        assert not m.healthy and m.backlog > 0 and m.spooled == 0
        assert m.last_error is not None and m.last_error.startswith("spool")
    finally:
        locker.execute("COMMIT")
        locker.close()
    # the database is back first: what was held in memory goes straight to it, in order
    assert j.wait_healthy(10.0)
    assert count(db, "order_events") == trader.events == 2 + 4
    (spool / SPOOL_FILE).rmdir()
    assert j.close()
    db.dispose()


def test_a_spool_left_by_a_journal_closed_during_an_outage_is_replayed_at_the_next_start(
    db: SqlEngine, spool: Path
) -> None:
    down = f"postgresql+psycopg://algo:s3cret-pw@127.0.0.1:{closed_port()}/algo"
    a = journal(down, spool, run_id="run-a", on_outage="stop_opening")
    a.put_run_start(SID, started_ns=T0)
    trader = Trader(a, run_code="A")
    for k in range(5):
        trader.trade(fills=2, ts_ns=T0 + k)
    assert a.flush(10.0)
    assert not a.healthy and not a.allow_new_positions()
    m = a.metrics()
    assert m.batches == 0 and m.backlog == m.spooled > 0
    assert m.last_error is not None
    assert "s3cret-pw" not in m.last_error and "***" in m.last_error
    assert a.close(10.0)  # the database is still down: the spool stays
    left = spool_lines(spool)
    assert len(left) == m.spooled

    b = journal(db, spool, run_id="run-b")
    assert b.backlog == len(left) and not b.healthy
    b.put_run_start(SID, started_ns=T0 + 10**9)
    Trader(b, run_code="B").trade(fills=1, ts_ns=T0 + 10**9)
    assert b.wait_healthy(10.0)
    assert b.close()
    assert count(db, "order_events") == 5 * 3 + 2
    assert len(repo.orders_of_run(db, "run-a")) == 5
    assert len(repo.orders_of_run(db, "run-b")) == 1
    with db.connect() as conn:  # the old run's rows went in before the new run's
        runs = (
            conn.execute(
                text(
                    "SELECT o.run_id FROM order_events e JOIN orders o "
                    "USING (client_order_id) ORDER BY e.id"
                )
            )
            .scalars()
            .all()
        )
    assert runs == ["run-a"] * 15 + ["run-b"] * 2
    assert b.metrics().replays == 1 and b.metrics().replayed == len(left)
    assert (spool / SPOOL_FILE).stat().st_size == 0


def test_a_line_torn_by_a_crash_is_dropped_and_the_rest_replayed(
    db: SqlEngine, spool: Path
) -> None:
    spool.mkdir()
    run = {
        "run_id": "old",
        "strategy_id": SID,
        "mode": "live",
        "started_ns": T0,
        "config": {},
        "status": "running",
        "stopped_ns": None,
        "stop_reason": None,
        "owner": None,
        "fencing_token": None,
    }
    good = json.dumps({"t": "strategy_runs", "r": run}) + "\n"
    (spool / SPOOL_FILE).write_text(good + '{"t": "orders", "r": {"client_or')
    j = journal(db, spool)
    assert j.backlog == 1
    assert j.wait_healthy(5.0)
    assert j.close()
    got = repo.get_run(db, "old", SID)
    assert got is not None and got.mode.value == "live"
    assert j.metrics().replayed == 1 and j.metrics().dead_lettered == 0


def test_a_replay_of_rows_already_written_changes_nothing(db: SqlEngine, spool: Path) -> None:
    j = journal(db, spool, run_id="twice")
    j.put_run_start(SID, started_ns=T0)
    Trader(j).trade(fills=3, ts_ns=T0)
    assert j.close()
    before = {t: count(db, t) for t in ("strategy_runs", "orders", "order_events", "fills")}
    # the same rows again, as a replay after a partial write would bring them
    with db.connect() as conn:
        rows = conn.execute(text("SELECT * FROM order_events ORDER BY id")).mappings().all()
    spool.mkdir(exist_ok=True)
    lines = [
        json.dumps(
            {
                "t": "order_events",
                "r": {
                    "client_order_id": r["client_order_id"],
                    "seq": r["seq"],
                    "kind": r["kind"],
                    "ts_ns": r["ts_ns"],
                    "payload": json.loads(r["payload"])
                    if isinstance(r["payload"], str)
                    else r["payload"],
                },
            }
        )
        for r in rows
    ]
    (spool / SPOOL_FILE).write_text("\n".join(lines) + "\n")
    j2 = journal(db, spool, run_id="again")
    assert j2.wait_healthy(5.0) and j2.close()
    assert {t: count(db, t) for t in before} == before


# ---- what can never be stored --------------------------------------------------------------


def test_a_row_the_database_refuses_is_dead_lettered_and_the_rest_written(
    db: SqlEngine, spool: Path
) -> None:
    j = journal(db, spool, flush_interval_s=1.0)
    j.put_run_start(SID, started_ns=T0)
    good = Trader(j).trade(fills=1, ts_ns=T0)
    row = repo_row(good)
    j.put(OrderRow(**{**row, "client_order_id": "TOO-LONG", "symbol": "X" * 200}))
    j.put_position(Position(strategy_id=SID, idx=1, token="1001"), -5)  # a bad time
    assert j.close()
    assert repo.get_order(db, good.client_order_id) is not None
    assert repo.get_order(db, "TOO-LONG") is None
    assert count(db, "order_events") == 2
    m = j.metrics()
    assert m.dead_lettered == 2 and m.healthy and m.outages == 0
    dead = [json.loads(x) for x in (spool / DEAD_LETTER_FILE).read_text().splitlines()]
    # the record no row could be made of (found on conversion), then the row the database
    # layer refused (found on writing)
    assert dead[0]["record"] == "position" and "updated_ns" in dead[0]["error"]
    assert dead[1]["table"] == "orders" and "orders.symbol" in dead[1]["error"]
    assert dead[1]["row"]["client_order_id"] == "TOO-LONG"


def repo_row(order: ManagedOrder) -> dict[str, Any]:
    return {
        "client_order_id": order.client_order_id,
        "run_id": RUN,
        "strategy_id": order.strategy_id,
        "token": INST.token,
        "symbol": INST.symbol,
        "exchange": INST.exchange,
        "side": order.side,
        "order_type": order.order_type,
        "tif": order.tif,
        "qty": order.qty,
        "price_paise": order.price_paise,
        "trigger_price_paise": None,
        "status": order.status,
        "created_ns": order.created_ns,
        "updated_ns": order.updated_ns,
    }


# ---- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"run_id": ""}, "run_id"),
        ({"run_id": "r" * 65}, "run_id"),
        ({"mode": "demo"}, "mode"),
        ({"batch_max": 0}, "batch_max"),
        ({"flush_interval_s": 0}, "flush_interval_s"),
        ({"flush_interval_s": float("nan")}, "flush_interval_s"),
        ({"on_outage": "panic"}, "on_outage"),
        ({"ping_interval_s": -1}, "ping_interval_s"),
    ],
)
def test_bad_settings_name_the_field(
    db: SqlEngine, spool: Path, kw: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError, match=field):
        journal(db, spool, **kw)


def test_an_in_memory_database_or_a_busy_spool_folder_is_refused(
    db: SqlEngine, spool: Path
) -> None:
    with pytest.raises(ConfigurationError, match="in-memory"):
        journal("sqlite://", spool)
    j = journal(db, spool)
    try:
        with pytest.raises(ConfigurationError, match="in use by another journal"):
            journal(db, spool)
    finally:
        j.close()
    (spool.parent / "a-file").write_text("")
    with pytest.raises(ConfigurationError, match="spool_dir"):
        journal(db, spool.parent / "a-file" / "sub")


def test_puts_of_the_wrong_thing_name_it(db: SqlEngine, spool: Path) -> None:
    j = journal(db, spool)
    try:
        with pytest.raises(ValidationError, match="order"):
            j.put_order("T000001")  # type: ignore[arg-type]
        order = Trader(j).trade(fills=1, ts_ns=T0)
        foreign = OrderDenied(
            ts_ns=T0,
            client_order_id=order.client_order_id,
            venue_order_id=None,
            code="X",
            reason="",
        )
        with pytest.raises(ValidationError, match="event"):
            j.put_event(foreign, order)
        with pytest.raises(ValidationError, match="row"):
            j.put({"client_order_id": "x"})  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="config"):
            j.put_run_start(SID, started_ns=T0, config={"when": date(2026, 1, 5)})
        with pytest.raises(ValidationError, match="status"):
            j.put_run_stop(stopped_ns=T0, status="running")
        with pytest.raises(ValidationError, match="command_id"):
            j.put_command_acted(0, acted_ns=T0, acted_by="t", result="")
    finally:
        j.close()
