"""Recovery in one process: an engine dies mid-session (its loop is abandoned, nothing is
cleaned up), the broker lives on; a new engine rebuilds from the database, reconciles with the
broker by client order id, and carries on: no order twice, no fill lost, no position
forgotten. (The same with real processes killed with SIGKILL: tests/integration.)"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

from algoengine.backtest.runner import assemble, open_feed
from algoengine.brokers.paper import PaperExchange
from algoengine.domain.events import OrderEvent, OrderFillEvent
from algoengine.domain.market_data import MarketSlice
from algoengine.persistence.db import ensure_schema, make_engine
from algoengine.persistence.journal import Journal
from algoengine.persistence.recovery import recover
from algoengine.persistence.repositories import fills_of_run, latest_run, orders_of_run
from algoengine.settings import Settings

DAY = date(2026, 11, 10)


class Broker(PaperExchange):
    """The paper exchange plus the day's trade book (a broker keeps one)."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.book: list[dict[str, Any]] = []

    def drain_events(self) -> list[OrderEvent]:
        events = super().drain_events()
        for e in events:
            if isinstance(e, OrderFillEvent):
                self.book.append(
                    {
                        "client_order_id": e.client_order_id,
                        "trade_id": e.trade_id,
                        "qty": e.qty,
                        "price_paise": e.price_paise,
                        "ts_ns": e.ts_ns,
                    }
                )
        return events

    def trades(self) -> list[dict[str, Any]]:
        return list(self.book)


class Crash(BaseException):
    """Stands for kill -9: unwinds the loop without any of its clean-up."""


def until(slices: list[MarketSlice], stop_ns: int) -> Iterator[MarketSlice]:
    for m in slices:
        if m.ts_ns >= stop_ns:
            raise Crash
        yield m


def test_a_new_engine_takes_over_a_crashed_run(tmp_path: Path) -> None:
    settings = Settings()
    feed, universe, calendar, _ = open_feed(settings, DAY, DAY)
    slices = list(feed)
    broker = Broker(settings.exchange, list(universe))
    db = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    ensure_schema(db)

    j1 = Journal(db, run_id="RUN1", mode="paper", spool_dir=tmp_path / "s1")
    e1 = assemble(settings, universe, calendar, venue=broker, run_code="RUN1", journal=j1)
    crash_at = calendar.session_open_ns(DAY) + 45 * 60 * 10**9  # 10:00
    with contextlib.suppress(Crash):
        e1.run(until(slices, crash_at))
    j1.flush()
    j1.close()
    working_at_crash = {o.client_order_id for o in e1.oms.open_orders()}
    assert working_at_crash  # the straddle's stop-losses were working at the broker
    positions_at_crash = {(p.idx, p.qty) for p in e1.portfolio.open_positions()}
    assert positions_at_crash

    j2 = Journal(db, run_id="RUN2", mode="paper", spool_dir=tmp_path / "s2")
    e2 = assemble(settings, universe, calendar, venue=broker, run_code="RUN2", journal=j2)
    report = recover(db, broker, e2, strategy_ids=e2.strategy_ids(), new_run_id="RUN2")
    assert report.run_ids == ["RUN1"] and not report.lost
    assert {o.client_order_id for o in e2.oms.open_orders()} == working_at_crash
    assert {(p.idx, p.qty) for p in e2.portfolio.open_positions()} == positions_at_crash
    e2.run(m for m in slices if m.ts_ns >= crash_at)
    j2.close()

    # carried on: the legs were exited by the recovered strategy, nothing entered twice
    assert not e2.portfolio.open_positions()
    entries = [o for o in e2.oms.orders.values() if o.tag.startswith("entry")]
    assert len(entries) == 2  # the day's one straddle, from the first run
    assert {o.client_order_id[:4] for o in entries} == {"RUN1"}
    # no fill lost: the database holds exactly the broker's trade book
    stored = {
        (f.trade_id, f.client_order_id) for r in ("RUN1", "RUN2") for f in fills_of_run(db, r)
    }
    assert stored == {(t["trade_id"], t["client_order_id"]) for t in broker.trades()}
    assert latest_run(db, "straddle", before_run_id="RUN2").status.value == "crashed"  # type: ignore[union-attr]
    # every order id is unique across both runs, and each reached the broker at most once
    ids = [o.client_order_id for r in ("RUN1", "RUN2") for o in orders_of_run(db, r)]
    assert len(ids) == len(set(ids))
