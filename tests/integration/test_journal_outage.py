"""The journal through a real PostgreSQL outage: the server of the test is stopped
(``pg_ctl stop -m fast``) while a thread keeps journaling orders, events and fills, then
started again; and a spool left by a journal closed during an outage is replayed by the next
one at its start. Every record ends up in the database exactly once and the spool empty."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from algoengine.domain.events import OrderAccepted, OrderEvent, OrderFilled, OrderPartiallyFilled
from algoengine.domain.instruments import Instrument, InstrumentKind, OptionType
from algoengine.domain.orders import OrderRequest, OrderStatus, OrderType, Side
from algoengine.engine.engine import FillRecord
from algoengine.engine.oms import ManagedOrder, OrderManager, ThrottleConfig
from algoengine.persistence.db import make_engine, upgrade
from algoengine.persistence.journal import SPOOL_FILE, Journal

from .conftest import StoppablePostgres

SID = "straddle"
CE = Instrument(
    token="58784",
    symbol="NIFTY06JAN2624000CE",
    exchange="NFO",
    underlying="NIFTY",
    kind=InstrumentKind.OPTION,
    expiry=date(2026, 1, 6),
    strike_paise=2_400_000,
    option_type=OptionType.CE,
    lot_size=65,
    tick_paise=5,
    freeze_qty=1800,
)
T0 = 1_767_000_000_000_000_000


class NullVenue:
    def submit(self, request: OrderRequest, ts_ns: int) -> None:
        pass

    def cancel(self, client_order_id: str, ts_ns: int) -> None:
        pass

    def modify(self, client_order_id: str, ts_ns: int, **change: int | None) -> None:
        pass


@dataclass
class Producer:
    """Trades through the real OMS and journals as the engine does: each order as sent, every
    event it applies (with the order's state) and every fill. Times each put."""

    journal: Journal
    run_code: str
    orders: int = 0
    events: int = 0
    fills: int = 0
    max_put_s: float = 0.0
    oms: OrderManager = field(init=False)

    def __post_init__(self) -> None:
        self.oms = OrderManager(
            NullVenue(),
            check=None,
            sink=self._on_event,
            run_code=self.run_code,
            throttle=ThrottleConfig(orders_per_second=10**6, cancels_per_second=10**6),
        )

    def _timed(self, put: Callable[[], None]) -> None:
        t = time.perf_counter()
        put()
        self.max_put_s = max(self.max_put_s, time.perf_counter() - t)

    def _on_event(self, event: OrderEvent, order: ManagedOrder) -> None:
        self._timed(lambda: self.journal.put_event(event, order))
        self.events += 1
        if isinstance(event, OrderPartiallyFilled | OrderFilled):
            fill = FillRecord(
                ts_ns=event.ts_ns,
                strategy_id=order.strategy_id,
                client_order_id=order.client_order_id,
                token=CE.token,
                symbol=CE.symbol,
                side=order.side,
                qty=event.qty,
                price_paise=event.price_paise,
                charges_paise=20,
                tag=order.tag,
                trade_id=event.trade_id,
            )
            self._timed(lambda: self.journal.put_fill(fill))
            self.fills += 1

    def trade(self, n_fills: int = 2) -> None:
        ts = T0 + self.orders * 1_000_000
        (cid,) = self.oms.submit(
            strategy_id=SID,
            idx=1,
            instrument=CE,
            side=Side.SELL,
            qty=CE.lot_size * n_fills,
            order_type=OrderType.LIMIT,
            price_paise=10_000,
            ts_ns=ts,
        )
        order = self.oms.orders[cid]
        self._timed(lambda: self.journal.put_order(order))
        self.orders += 1
        events: list[OrderEvent] = [
            OrderAccepted(
                ts_ns=ts + 1, client_order_id=cid, venue_order_id=cid, status=OrderStatus.OPEN
            )
        ]
        for k in range(n_fills):
            cls = OrderFilled if k == n_fills - 1 else OrderPartiallyFilled
            events.append(
                cls(
                    ts_ns=ts + 2 + k,
                    client_order_id=cid,
                    venue_order_id=cid,
                    trade_id=f"{cid}-{k}",
                    instrument_token=CE.token,
                    side=Side.SELL,
                    qty=CE.lot_size,
                    price_paise=10_000 - k,
                    filled_qty=CE.lot_size * (k + 1),
                    remaining_qty=CE.lot_size * (n_fills - k - 1),
                )
            )
        self.oms.on_events(events, ts)


def count(db: Engine, sql: str) -> int:
    with db.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def wait_for(what: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s: {message}")
        time.sleep(0.02)


def spool_rows(spool: Path) -> int:
    path = spool / SPOOL_FILE
    return path.read_bytes().count(b"\n") if path.exists() else 0


def assert_all_stored_once(db: Engine, run_id: str, p: Producer) -> None:
    where = f"run_id = '{run_id}'"
    assert count(db, f"SELECT count(*) FROM orders WHERE {where}") == p.orders
    assert count(db, f"SELECT count(*) FROM orders WHERE {where} AND status = 'FILLED'") == (
        p.orders
    )
    # order_events has no run_id: join through the orders
    events = "FROM order_events e JOIN orders o USING (client_order_id) WHERE o." + where.strip()
    assert count(db, f"SELECT count(*) {events}") == p.events
    assert count(db, f"SELECT count(DISTINCT (e.client_order_id, e.seq)) {events}") == p.events
    assert count(db, f"SELECT count(*) FROM fills WHERE {where}") == p.fills
    assert count(db, f"SELECT count(DISTINCT trade_id) FROM fills WHERE {where}") == p.fills
    # each order's history is complete: seq 1..n without a gap
    assert (
        count(
            db,
            f"SELECT count(*) FROM (SELECT client_order_id, max(seq) m, count(*) c {events} "
            "GROUP BY client_order_id) h WHERE m <> c",
        )
        == 0
    )


def test_trading_through_a_database_stop_and_start_loses_nothing(
    stoppable_postgres: StoppablePostgres, tmp_path: Path
) -> None:
    pg = stoppable_postgres
    url = pg.create_database("journal_outage")
    upgrade(url)
    db = make_engine(url, connect_timeout_s=2)
    spool = tmp_path / "spool"
    j = Journal(db, run_id="outage", mode="paper", spool_dir=spool, on_outage="stop_opening")
    j.put_run_start(SID, started_ns=T0, config={"lots": 2})
    p = Producer(j, run_code="OUT")
    stop = threading.Event()

    def produce() -> None:
        while not stop.is_set():
            p.trade()
            time.sleep(0.002)

    producer = threading.Thread(target=produce, name="producer")
    producer.start()
    try:
        wait_for(lambda: j.metrics().batches > 5, 10, "the journal writes while the server is up")
        assert j.healthy

        pg.stop("fast")
        wait_for(lambda: not j.healthy, 10, "the journal notices the outage")
        assert not j.allow_new_positions()
        during = p.orders
        wait_for(lambda: spool_rows(spool) > 500, 20, "the spool grows while the server is down")
        wait_for(lambda: p.orders > during + 100, 20, "trading goes on")
        assert not j.healthy and j.backlog > 0

        pg.start()
        time.sleep(0.5)  # trading goes on while the journal catches up
    finally:
        stop.set()
        producer.join(30)
    assert j.wait_healthy(30), j.metrics()
    assert j.flush(30)
    assert j.healthy and j.allow_new_positions()
    m = j.metrics()
    assert j.close(30)

    assert_all_stored_once(db, "outage", p)
    assert (spool / SPOOL_FILE).stat().st_size == 0
    assert m.outages >= 1 and m.replays >= 1 and m.spooled > 500 and m.backlog == 0
    assert m.replayed >= m.spooled  # a replay interrupted by the outage may be redone
    assert m.dead_lettered == 0
    # the loop never waited on the database
    assert p.max_put_s < 0.25, f"a put took {p.max_put_s * 1000:.1f} ms"
    db.dispose()


def test_a_spool_left_during_an_outage_is_replayed_by_the_next_journal_at_start(
    stoppable_postgres: StoppablePostgres, tmp_path: Path
) -> None:
    pg = stoppable_postgres
    url = pg.create_database("journal_restart")
    upgrade(url)
    spool = tmp_path / "spool"
    # the test server runs without synchronous commits: "fast" (a clean shutdown) keeps the
    # schema just made, which "immediate" might not
    pg.stop("fast")

    first = Journal(url, run_id="before", mode="live", spool_dir=spool)
    first.put_run_start(SID, started_ns=T0)
    p = Producer(first, run_code="BEF")
    for _ in range(200):
        p.trade(n_fills=3)
    assert first.flush(30)
    assert not first.healthy and first.backlog == spool_rows(spool) > 0
    assert first.metrics().batches == 0
    assert first.close(30)  # the server is still down: the spool stays on disk
    left = spool_rows(spool)
    assert left == first.metrics().spooled

    pg.start()
    second = Journal(url, run_id="after", mode="live", spool_dir=spool)
    assert second.backlog == left
    second.put_run_start(SID, started_ns=T0 + 10**12)
    q = Producer(second, run_code="AFT")
    q.trade()
    assert second.wait_healthy(30), second.metrics()
    assert second.close(30)
    assert second.metrics().replays == 1 and second.metrics().replayed == left

    db = make_engine(url)
    try:
        assert_all_stored_once(db, "before", p)
        assert_all_stored_once(db, "after", q)
        # the old run's rows went in before anything of the new run
        with db.connect() as conn:
            runs = (
                conn.execute(
                    text(
                        "SELECT o.run_id FROM order_events e JOIN orders o USING "
                        "(client_order_id) ORDER BY e.id"
                    )
                )
                .scalars()
                .all()
            )
        assert runs == ["before"] * p.events + ["after"] * q.events
    finally:
        db.dispose()
    assert (spool / SPOOL_FILE).stat().st_size == 0
