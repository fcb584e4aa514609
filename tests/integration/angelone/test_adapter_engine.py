"""Live mode end to end against the fake Angel One: the engine (runner.assemble with the
default straddle) trades a short accelerated session through AngelOneBroker and the REAL
smartapi-python client; once cleanly, once with faults (placeOrder timing out after placing
the order, AB2001, the order-book 403, the token expiring mid-run), and once driven by the
market websocket with both websockets dropped and the market one stalled (stale: opening
orders refused until it is fresh). Every order the engine sent is in Angel One's book exactly
once, under its ordertag; fills and positions agree."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from algoengine.backtest.runner import assemble, live_session_feed, open_feed
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


def start_fake(anchor_wall_ns: int) -> FakeAngelOne:
    """The fake Angel One on the session's accelerated clock, started."""
    fake = FakeAngelOne(
        Settings(),
        DAY,
        speed=SPEED,
        anchor_wall_ns=anchor_wall_ns,
        api_key=API_KEY,
        client_code=CLIENT,
        mpin=MPIN,
        totp_secret=TOTP_SECRET,
    )
    fake.start()
    return fake


def run_session(faults: list[dict[str, Any]], expire_at_s: float | None) -> dict[str, Any]:
    settings = Settings()
    feed, universe, calendar, _ = open_feed(settings, DAY, DAY)
    open_ns = calendar.session_open_ns(DAY)
    anchor = time.time_ns() + 1_000_000_000
    fake = start_fake(anchor)
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


def test_straddle_session_survives_server_errors_and_rejections(
    smartapi: SmartApiModules, client_cwd: Path
) -> None:
    """AB1004 on four placeOrder calls in a row (more than the three re-sends allowed: the
    order is rejected here with Angel One's message, never placed) and a broker rejection
    with its reason (RMS): both orders end REJECTED in the engine with the broker's words;
    the rejected one is in Angel One's book once, the other not at all; nothing doubled."""
    reason = "RMS:Margin Exceeds,Required:1200.00, Available:0.00"
    faults = [
        {"kind": "error", "route": "placeOrder", "code": "AB1004", "count": 4},
        {"kind": "reject", "reason": reason, "count": 1},
    ]
    result = run_session(faults, None)
    engine, book = result["engine"], result["book"]
    sent = {cid: o for cid, o in engine.oms.orders.items() if o.status is not OrderStatus.NEW}
    tags = Counter(r["ordertag"] for r in book)
    assert all(n == 1 for n in tags.values()), f"duplicates: {tags}"
    rejected = [o for o in sent.values() if o.status is OrderStatus.REJECTED]
    never_placed = [o for o in rejected if o.client_order_id not in tags]
    assert len(never_placed) == 1 and "Something Went Wrong" in (never_placed[0].reason or "")
    by_broker = [o for o in rejected if o.client_order_id in tags]
    assert [o.reason for o in by_broker] == [reason]
    row = next(r for r in book if r["ordertag"] == by_broker[0].client_order_id)
    assert row["status"] == "rejected" and row["text"] == reason
    assert set(tags) == set(sent) - {never_placed[0].client_order_id}  # none lost, none extra
    mine: Counter[str] = Counter()
    for f in engine.fills:
        mine[f.token] += f.qty if f.side.value == "BUY" else -f.qty
    theirs = {p["symboltoken"]: int(p["netqty"]) for p in result["positions"]}
    assert {t: q for t, q in mine.items() if q} == {t: q for t, q in theirs.items() if q}


def test_live_feed_session_survives_websocket_drops_and_a_stall(
    smartapi: SmartApiModules, client_cwd: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The engine on the market websocket (``--market live``'s wiring) and the order-update
    websocket, polling only every 1.5 s: both sockets are dropped twice and the market one
    goes silent for 4 s while connected. The feed re-connects and re-subscribes each time,
    the stall makes the engine refuse opening orders (MarketStale) until ticks return, and no
    order is doubled or lost."""
    settings = Settings()
    _, universe, calendar, _ = open_feed(settings, DAY, DAY)
    open_ns = calendar.session_open_ns(DAY)
    anchor = time.time_ns() + 1_000_000_000
    fake = start_fake(anchor)
    timers: list[threading.Timer] = []
    stale_seen: list[bool] = []
    try:
        broker = AngelOneBroker(
            CREDS,
            list(universe),
            endpoints=endpoints(fake),
            timeout_s=1.0,
            poll_interval_s=1.5,
            order_updates=True,
        )
        broker.login()
        clock = RealClock(speed=SPEED, start_ns=open_ns, anchor_wall_ns=anchor)
        engine = assemble(settings, universe, calendar, venue=broker, clock=clock, run_code="LW1")
        session = live_session_feed(
            broker, engine, clock, calendar, DAY, fake.feed_url, stale_after_s=1.0
        )
        # seconds after now: the open at 1 s, the straddle's entry (09:20) at 3.5 s
        schedule: list[tuple[float, Any]] = [
            (4.5, lambda: fake.add_fault({"kind": "drop_order_ws"})),
            (5.0, lambda: fake.add_fault({"kind": "drop_market_ws"})),
            # silent 6-10 s: stale from about 7 s (1 s without a tick), fresh after 10 s
            (6.0, lambda: fake.add_fault({"kind": "mute_market_ws", "seconds": 4.0})),
            (9.0, lambda: engine.call_soon(lambda: stale_seen.append(engine.market_stale))),
            (12.0, lambda: engine.call_soon(lambda: stale_seen.append(engine.market_stale))),
            (12.5, lambda: fake.add_fault({"kind": "drop_market_ws"})),
            (12.6, lambda: fake.add_fault({"kind": "drop_order_ws"})),
            (14.5, lambda: engine.post(StopEngine(reason="test over", issued_by="test"))),
        ]
        for at, fn in schedule:
            timers.append(threading.Timer(at, fn))
        for t in timers:
            t.start()
        with caplog.at_level("WARNING", logger="algoengine.engine.engine"):
            try:
                engine.run(session)
            finally:
                session.stop()
        time.sleep(1.1)
        result = {
            "engine": engine,
            "broker": broker,
            "book": broker._book(),
            "positions": broker.positions(),
        }
        updates = broker._updates
        assert updates is not None and updates.opens >= 3  # dropped twice, re-made each time
        broker.close()
    finally:
        for t in timers:
            t.cancel()
        fake.stop()
    check(result)
    feed = session.feed
    assert feed.opens >= 4  # first, after a drop, after the stall's forced close, after a drop
    assert feed.stale_count >= 1 and not feed.stale
    assert stale_seen == [True, False]  # refused openings during the stall, not after
    said = [r.getMessage() for r in caplog.records]
    assert "market stale: opening orders refused" in said and "market fresh again" in said
    assert engine.slices_processed > 20


@pytest.fixture(autouse=True)
def _no_logs_left(client_cwd: Path) -> None:
    assert not (client_cwd / "logs").exists()
