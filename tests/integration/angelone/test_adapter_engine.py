"""Live mode end to end against the fake Angel One: the engine (runner.assemble with the
default straddle) trades a short accelerated session through AngelOneBroker and the REAL
smartapi-python client; once cleanly and once with faults (placeOrder timing out after placing
the order, AB2001, the order-book 403, the token expiring mid-run). Every order the engine sent
is in Angel One's book exactly once, under its ordertag; fills and positions agree."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from algoengine.backtest.runner import assemble, open_feed
from algoengine.brokers.angelone.adapter import AngelOneBroker
from algoengine.brokers.angelone.fake_server import FakeAngelOne
from algoengine.domain.orders import OrderStatus
from algoengine.engine.clock import RealClock
from algoengine.engine.commands import StopEngine
from algoengine.settings import Settings

from .conftest import API_KEY, CLIENT, DAY, MPIN, TOTP_SECRET, SmartApiModules
from .test_adapter import CREDS, endpoints

SPEED = 120.0  # a session minute is 0.5 s
MINUTES = 22  # 09:15-09:37: the straddle enters at 09:20


def run_session(faults: list[dict[str, Any]], expire_at_s: float | None) -> dict[str, Any]:
    settings = Settings()
    feed, universe, calendar, _ = open_feed(settings, DAY, DAY)
    open_ns = calendar.session_open_ns(DAY)
    anchor = time.time_ns() + 1_000_000_000
    fake = FakeAngelOne(
        Settings(),
        DAY,
        speed=SPEED,
        anchor_wall_ns=anchor,
        api_key=API_KEY,
        client_code=CLIENT,
        mpin=MPIN,
        totp_secret=TOTP_SECRET,
    )
    fake.start()
    timer: threading.Timer | None = None
    try:
        for f in faults:
            fake.add_fault(f)
        broker = AngelOneBroker(
            CREDS, list(universe), endpoints=endpoints(fake), timeout_s=1.0, poll_interval_s=0.2
        )
        broker.login()
        clock = RealClock(speed=SPEED, start_ns=open_ns, anchor_wall_ns=anchor)
        engine = assemble(settings, universe, calendar, venue=broker, clock=clock, run_code="LV1")
        if expire_at_s is not None:
            timer = threading.Timer(expire_at_s, fake.add_fault, [{"kind": "expire_token"}])
            timer.start()
        end = open_ns + MINUTES * 60_000_000_000
        # the engine would wait for the session's close on the venue's clock: stop it instead
        # (working orders stay at the broker, as on a SIGTERM)
        stopper = threading.Timer(
            MINUTES * 60 / SPEED + 1.5,
            lambda: engine.post(StopEngine(reason="test over", issued_by="test")),
        )
        stopper.start()
        try:
            engine.run(m for m in feed if m.ts_ns <= end)
        finally:
            stopper.cancel()
        time.sleep(1.1)
        book = broker._book()
        positions = broker.positions()
        out = {"engine": engine, "broker": broker, "book": book, "positions": positions}
        broker.close()
        return out
    finally:
        if timer is not None:
            timer.cancel()
        fake.stop()


def check(result: dict[str, Any]) -> None:
    engine, book = result["engine"], result["book"]
    sent = {cid: o for cid, o in engine.oms.orders.items() if o.status is not OrderStatus.NEW}
    assert sent, "the straddle placed no order"
    tags = Counter(r["ordertag"] for r in book)
    assert all(n == 1 for n in tags.values()), f"duplicates: {tags}"
    assert set(tags) == set(sent), (set(tags), set(sent))  # none lost, none extra
    entries = [f for f in engine.fills if f.client_order_id and f.side.value == "SELL"]
    assert len(entries) >= 2  # the two short legs filled
    for f in engine.fills:  # every fill the engine counted is a trade at the broker
        row = next(r for r in book if r["ordertag"] == f.client_order_id)
        assert int(row["filledshares"]) > 0
    # positions: the engine's and the broker's net quantities agree
    mine: Counter[str] = Counter()
    for f in engine.fills:
        mine[f.token] += f.qty if f.side.value == "BUY" else -f.qty
    theirs = {p["symboltoken"]: int(p["netqty"]) for p in result["positions"]}
    assert {t: q for t, q in mine.items() if q} == {t: q for t, q in theirs.items() if q}


def test_straddle_session_through_angel_one(smartapi: SmartApiModules, client_cwd: Path) -> None:
    result = run_session([], None)
    check(result)
    assert result["broker"].lookups == 0


def test_straddle_session_survives_faults(smartapi: SmartApiModules, client_cwd: Path) -> None:
    faults = [
        {"kind": "delay", "route": "placeOrder", "seconds": 1.5, "process": True},
        {"kind": "error", "route": "placeOrder", "code": "AB2001"},
        {"kind": "rate_limit", "route": "getOrderBook", "count": 2},
    ]
    result = run_session(faults, expire_at_s=5.0)
    check(result)
    broker = result["broker"]
    assert broker.lookups >= 2  # after the timeout and after AB2001
    assert broker.refreshes >= 1  # the token expired mid-run


@pytest.fixture(autouse=True)
def _no_logs_left(client_cwd: Path) -> None:
    assert not (client_cwd / "logs").exists()
