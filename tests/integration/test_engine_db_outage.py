"""The engine trades through a database outage: a real PostgreSQL is stopped and started
while a session runs. With ``on_outage = keep_trading`` it goes on as usual and, once the
server is back, the database holds exactly what the engine did; with ``stop_opening`` it
refuses new positions (``JOURNAL_OUTAGE``) while the database is away and takes them again
after."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest

from algoengine.backtest.runner import assemble, open_feed
from algoengine.domain.market_data import MarketSlice
from algoengine.persistence import repositories as repo
from algoengine.persistence.db import make_engine, upgrade
from algoengine.persistence.journal import Journal
from algoengine.settings import Settings

from .conftest import StoppablePostgres

DAY = date(2026, 11, 10)


def wait_for(what: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s: {message}")
        time.sleep(0.02)


def ist(settings_open_ns: int, minutes_after_open: int) -> int:
    return settings_open_ns + minutes_after_open * 60 * 10**9


@pytest.mark.parametrize("on_outage", ["keep_trading", "stop_opening"])
def test_a_session_through_a_postgres_outage(
    stoppable_postgres: StoppablePostgres, tmp_path: Path, on_outage: str
) -> None:
    pg = stoppable_postgres
    url = pg.create_database(f"outage_{on_outage}")
    upgrade(url)
    db = make_engine(url, connect_timeout_s=2)
    settings = Settings()
    feed, universe, calendar, _ = open_feed(settings, DAY, DAY)
    slices = list(feed)
    journal = Journal(
        db, run_id="OUT1", mode="paper", spool_dir=tmp_path / "spool", on_outage=on_outage
    )
    engine = assemble(settings, universe, calendar, run_code="OUT1", journal=journal)
    opened = calendar.session_open_ns(DAY)
    down_at, up_at = ist(opened, 3), ist(opened, 15)  # 09:18 .. 09:30: the entry is at 09:20

    def market() -> Iterator[MarketSlice]:
        for m in slices:
            if m.ts_ns == down_at:
                pg.stop("fast")
                wait_for(lambda: not journal.healthy, 15, "the journal notices the outage")
            if m.ts_ns == up_at:
                pg.start()
                wait_for(lambda: journal.healthy, 30, "the journal replays its spool")
            yield m

    engine.run(market())
    assert journal.close(timeout=60)
    m = journal.metrics()
    assert m.healthy and m.backlog == 0 and m.outages >= 1 and m.dead_lettered == 0

    # the database holds exactly what the engine did, once
    orders = {o.client_order_id: o for o in repo.orders_of_run(db, "OUT1")}
    assert set(orders) == set(engine.oms.orders)
    for cid, o in engine.oms.orders.items():
        assert (orders[cid].status, orders[cid].filled_qty) == (o.status, o.filled_qty)
        assert [r.to_event() for r in repo.order_events(db, cid)] == o.events
    stored = [(f.client_order_id, f.qty, f.price_paise) for f in repo.fills_of_run(db, "OUT1")]
    assert sorted(stored) == sorted((f.client_order_id, f.qty, f.price_paise) for f in engine.fills)

    entries = [o for o in engine.oms.orders.values() if o.tag.startswith("entry")]
    if on_outage == "keep_trading":
        # the 09:20 entry went out during the outage and was filled
        assert entries and all(o.created_ns < up_at and o.filled_qty == o.qty for o in entries)
    else:
        # refused while the database was away; the denials are stored too
        denied = [o for o in entries if o.reason and "database unreachable" in o.reason]
        assert denied and all(o.created_ns < up_at for o in denied)
        codes = {e.code for e in repo.risk_events(db) if e.run_id == "OUT1"}
        assert "JOURNAL_OUTAGE" in codes
    assert not engine.portfolio.open_positions()  # the day ended flat either way
