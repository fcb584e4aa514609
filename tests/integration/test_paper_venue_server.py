"""The paper venue as its own process: ``python -m algoengine.brokers.paper.server`` started
in a subprocess, an engine in this process trading against it through ``RemoteVenue`` on a
shared accelerated clock, the books queried back and compared with the engine's by client
order id; bad requests answered 400 naming the field; a stalled or killed server gives
``TemporaryBrokerError``, not a hang."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from datetime import time as dtime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from algoengine.backtest.runner import assemble, open_feed
from algoengine.brokers.base import Broker
from algoengine.brokers.paper.config import PaperExchangeConfig
from algoengine.brokers.paper.remote import RemoteVenue, VenueRequestError, VenueSnapshot
from algoengine.brokers.paper.server import PaperVenueServer
from algoengine.domain.events import (
    OrderAccepted,
    OrderCancelled,
    OrderCancelRejected,
    OrderEvent,
    OrderFilled,
    OrderModified,
    OrderRejected,
    RejectCode,
)
from algoengine.domain.instruments import InstrumentKind
from algoengine.domain.market_data import MarketSlice
from algoengine.domain.orders import (
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
)
from algoengine.engine.clock import RealClock
from algoengine.engine.commands import StopEngine
from algoengine.engine.engine import Engine
from algoengine.errors import (
    BrokerError,
    ConfigurationError,
    TemporaryBrokerError,
    ValidationError,
)
from algoengine.settings import Settings
from algoengine.strategies.base import Strategy, StrategyContext
from algoengine.strategies.premium import PremiumSelling

DAY = date(2026, 11, 4)  # a Wednesday: a trading day, not a NIFTY expiry
SPEED = 300.0  # a session minute is 0.2 s
NS = 1_000_000_000
IST = timezone(timedelta(hours=5, minutes=30))
ROOT = Path(__file__).resolve().parents[2]


def ist_ns(t: dtime) -> int:
    return int(datetime.combine(DAY, t, IST).timestamp()) * NS


OPEN_NS = ist_ns(dtime(9, 15))


@dataclass
class ServerProcess:
    proc: subprocess.Popen[str]
    url: str
    anchor_wall_ns: int
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def start_server(log: Path, anchor_wall_ns: int, *extra: str) -> ServerProcess:
    """Start the server process and wait for its "listening on" line."""
    cmd = [
        sys.executable,
        "-m",
        "algoengine.brokers.paper.server",
        "--day",
        DAY.isoformat(),
        "--speed",
        str(SPEED),
        "--anchor-wall-ns",
        str(anchor_wall_ns),
        "--port",
        "0",
        *extra,
    ]
    err = log.open("w")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True)
    err.close()
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=30)
    except queue.Empty:
        proc.kill()
        proc.wait()
        pytest.fail(f"the server did not start: {log.read_text()}")
    if not line.startswith("listening on http://127.0.0.1:"):
        proc.kill()
        proc.wait()
        pytest.fail(f"unexpected first line {line!r}: {log.read_text()}")
    return ServerProcess(proc, line.split()[-1], anchor_wall_ns, log)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose session opened 3 simulated minutes ago (quotes from 09:16 on)."""
    log = tmp_path_factory.mktemp("venue") / "server.log"
    s = start_server(log, time.time_ns() - int(180 * NS / SPEED))
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of the test's own, whose session opens 1.5 s from now."""
    s = start_server(tmp_path / "server.log", time.time_ns() + int(1.5 * NS))
    try:
        yield s
    finally:
        s.stop()


def http(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, Any]:
    """A raw request: (status, decoded JSON answer)."""
    req = urllib.request.Request(url, data=body, method=method)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def market_at(ts_ns: int) -> MarketSlice:
    """The market's last bar at or before ``ts_ns`` (what the server's board shows)."""
    feed, _, _, _ = open_feed(Settings(), DAY, DAY)
    last = None
    for m in feed:
        if m.ts_ns > ts_ns:
            break
        last = m
    assert last is not None
    return last


def wait_until_sim(venue: RemoteVenue, ts_ns: int, timeout_s: float = 10.0) -> int:
    deadline = time.monotonic() + timeout_s
    while (now := venue.now_ns()) < ts_ns:
        assert time.monotonic() < deadline, "the server's clock does not move"
        time.sleep(0.02)
    return now


def drain_until(
    venue: RemoteVenue, done: Any, timeout_s: float = 5.0
) -> list[OrderEvent]:  # done: (events so far) -> bool
    got: list[OrderEvent] = []
    deadline = time.monotonic() + timeout_s
    while not done(got):
        assert time.monotonic() < deadline, f"events so far: {got}"
        got += venue.drain_events()
        time.sleep(0.01)
    return got


# ---- the API on its own ------------------------------------------------------------------------


def test_bad_requests_get_400_naming_the_field_and_the_server_carries_on(
    server: ServerProcess,
) -> None:
    good = {
        "client_order_id": "BAD1",
        "instrument_token": "100000",
        "side": "BUY",
        "order_type": "LIMIT",
        "qty": 65,
        "price_paise": 1000,
        "strategy_id": "t",
    }
    cases: list[tuple[str, str, object, int, str]] = [
        ("POST", "/orders", {**good, "qty": "ten"}, 400, "qty"),
        ("POST", "/orders", {**good, "qty": 1.5}, 400, "qty"),
        ("POST", "/orders", {**good, "qty": 0}, 400, "qty"),
        ("POST", "/orders", {k: v for k, v in good.items() if k != "side"}, 400, "side"),
        ("POST", "/orders", {**good, "side": "HOLD"}, 400, "side"),
        ("POST", "/orders", {**good, "order_type": "ICEBERG"}, 400, "order_type"),
        ("POST", "/orders", {**good, "tif": "GTC"}, 400, "tif"),
        ("POST", "/orders", {**good, "colour": "red"}, 400, "colour"),
        ("POST", "/orders", {**good, "price_paise": None}, 400, "price_paise"),
        ("POST", "/orders", {**good, "trigger_price_paise": 900}, 400, "trigger_price_paise"),
        ("POST", "/orders", {**good, "client_order_id": "has space"}, 400, "client_order_id"),
        ("POST", "/orders", [1, 2], 400, "body"),
        ("POST", "/orders", None, 400, "body"),
        ("POST", "/orders/BAD1/modify", {"qty": -5}, 400, "qty"),
        ("POST", "/orders/BAD1/modify", {"price_paise": "1"}, 400, "price_paise"),
        ("POST", "/orders/BAD1/modify", {"bogus": 1}, 400, "bogus"),
        ("POST", "/orders/BAD1/cancel", {"qty": 1}, 400, "body"),
        ("POST", "/orders/" + "X" * 21 + "/cancel", None, 400, "client_order_id"),
        ("GET", "/events?after=abc", None, 400, "after"),
        ("GET", "/events?after=-1", None, 400, "after"),
        ("GET", "/events?after=999999", None, 400, "after"),
        ("GET", "/orders/NOSUCH", None, 404, "client_order_id"),
        ("GET", "/nowhere", None, 404, "path"),
    ]
    for method, path, body, status, field in cases:
        data = None if body is None else json.dumps(body).encode()
        got, answer = http(server.url + path, method, data)
        assert (got, answer.get("field")) == (status, field), (method, path, body, answer)
        assert isinstance(answer["error"], str) and answer["error"]
    got, answer = http(server.url + "/orders", "POST", b"{not json")
    assert (got, answer["field"]) == (400, "body")
    got, answer = http(server.url + "/orders", "DELETE")
    assert got == 405
    got, answer = http(server.url + "/health")
    assert got == 200 and answer["ok"] is True and answer["day"] == DAY.isoformat()

    venue = RemoteVenue(server.url)
    with pytest.raises(VenueRequestError) as info:
        venue.modify("BAD1", 0, qty=0)
    assert isinstance(info.value, BrokerError)
    assert (info.value.status, info.value.field) == (400, "qty")
    assert "qty" in str(info.value)
    assert venue.order("NOSUCH") is None
    with pytest.raises(ValidationError) as bad:
        venue.cancel("no spaces allowed", 0)
    assert bad.value.field == "client_order_id"
    with pytest.raises(ValidationError) as bad:
        RemoteVenue("ftp://127.0.0.1:1")
    assert bad.value.field == "base_url"
    with pytest.raises(ValidationError) as bad:
        RemoteVenue(server.url, timeout_s=0)
    assert bad.value.field == "timeout_s"
    assert venue.drain_events() == []  # none of the above reached the exchange
    assert server.proc.poll() is None


def test_order_life_through_the_remote_venue(server: ServerProcess) -> None:
    venue = RemoteVenue(server.url)
    assert isinstance(venue, Broker)
    assert not hasattr(venue, "on_depth")  # the engine must not try to feed it
    venue.seek(venue.snapshot().last_seq)  # other tests' events are not ours
    now = wait_until_sim(venue, OPEN_NS + 120 * NS)
    market = market_at(now)
    _, universe, _, _ = open_feed(Settings(), DAY, DAY)
    rows = [
        k
        for k in range(len(market))
        if universe[int(market.idx[k])].kind is InstrumentKind.OPTION
        and market.bid_paise[k] > 0
        and market.ask_paise[k] > 0
    ]
    k = min(rows, key=lambda r: abs(int(market.bid_paise[r]) - 10_000))  # about Rs 100
    inst = universe[int(market.idx[k])]
    lot, tick = inst.lot_size, inst.tick_paise
    start = venue.cursor

    def req(cid: str, **kw: Any) -> OrderRequest:
        fields: dict[str, Any] = {
            "client_order_id": cid,
            "instrument_token": inst.token,
            "side": Side.SELL,
            "order_type": OrderType.MARKET,
            "qty": lot,
            "strategy_id": "api",
        }
        return OrderRequest(**{**fields, **kw})

    # a market sell trades at once against the book built from the server's board
    venue.submit(req("LIFE1"), 0)
    events = drain_until(venue, lambda got: any(isinstance(e, OrderFilled) for e in got))
    assert [type(e) for e in events] == [OrderAccepted, OrderFilled]
    fill = events[1]
    assert isinstance(fill, OrderFilled) and fill.qty == lot and fill.price_paise > 0
    trades = [t for t in venue.trades() if t.client_order_id == "LIFE1"]
    assert [(t.trade_id, t.qty, t.price_paise) for t in trades] == [
        (fill.trade_id, lot, fill.price_paise)
    ]

    # a resting buy well below the market: accepted, works, modified twice, cancelled
    price = fill.price_paise * 6 // 10 // tick * tick
    venue.submit(req("LIFE2", side=Side.BUY, order_type=OrderType.LIMIT, price_paise=price), 0)
    drain_until(venue, lambda got: any(isinstance(e, OrderAccepted) for e in got))
    assert "LIFE2" in {r.client_order_id for r in venue.open_orders()}
    report = venue.order("LIFE2")
    assert report is not None and report.status is OrderStatus.OPEN and report.qty == lot
    venue.modify("LIFE2", 0, price_paise=price - tick)
    venue.modify("LIFE2", 0, qty=2 * lot)
    mods = drain_until(venue, lambda got: sum(isinstance(e, OrderModified) for e in got) == 2)
    assert [(e.qty, e.price_paise) for e in mods if isinstance(e, OrderModified)] == [
        (lot, price - tick),
        (2 * lot, price - tick),
    ]
    venue.cancel("LIFE2", 0)
    venue.cancel("LIFE2", 0)  # no longer working: refused by the exchange, as an event
    done = drain_until(venue, lambda got: len(got) == 2)
    assert isinstance(done[0], OrderCancelled) and done[0].reason == "user"
    assert isinstance(done[1], OrderCancelRejected)
    assert done[1].code is RejectCode.ORDER_NOT_OPEN
    report = venue.order("LIFE2")
    assert report is not None and report.status is OrderStatus.CANCELLED
    assert "LIFE2" not in {r.client_order_id for r in venue.open_orders()}

    # an exchange rule broken: a rejection event, not an HTTP error
    venue.submit(req("LIFE3", qty=lot + 1), 0)
    (rejected,) = drain_until(venue, lambda got: len(got) == 1)
    assert isinstance(rejected, OrderRejected) and rejected.code is RejectCode.LOT_SIZE

    # a retried submit is acknowledged, not worked twice; a different order with a used id is
    # the exchange's duplicate
    status, answer = http(
        server.url + "/orders",
        "POST",
        json.dumps(
            {
                "client_order_id": "LIFE1",
                "instrument_token": inst.token,
                "side": "SELL",
                "order_type": "MARKET",
                "qty": lot,
                "strategy_id": "api",
            }
        ).encode(),
    )
    assert (status, answer["ok"], answer["duplicate"]) == (202, True, True)
    venue.submit(req("LIFE1", qty=2 * lot), 0)
    (dup,) = drain_until(venue, lambda got: len(got) == 1)
    assert isinstance(dup, OrderRejected) and dup.code is RejectCode.DUPLICATE_CLIENT_ORDER_ID

    # the event log: numbered from 1, kept, readable again from any point
    pairs = venue.events_since(start)
    assert [s for s, _ in pairs] == list(range(start + 1, venue.cursor + 1))
    assert venue.events_since(venue.cursor) == []
    venue.seek(start)
    assert len(venue.drain_events()) == len(pairs)


def test_a_resting_order_fills_when_the_servers_market_moves_through_it(
    server: ServerProcess,
) -> None:
    feed, universe, _, _ = open_feed(Settings(), DAY, DAY)
    bars = list(feed)
    venue = RemoteVenue(server.url)
    venue.seek(venue.snapshot().last_seq)  # other tests' events are not ours
    now = venue.now_ns()
    k0 = max(k for k, m in enumerate(bars) if m.ts_ns <= now)

    def quote(m: MarketSlice, idx: int) -> tuple[int, int, int] | None:
        hits = np.flatnonzero(m.idx == idx)
        if len(hits) == 0:
            return None
        r = int(hits[0])
        assert m.high_paise is not None
        return int(m.bid_paise[r]), int(m.ask_paise[r]), int(m.high_paise[r])

    # a sell limit above every ask the order can meet on arrival, which a bar's path a few
    # minutes on reaches (the server shows a bar's high with a quote of its spread around it)
    pick: tuple[int, int, int] | None = None
    for idx in (int(i) for i in bars[k0].idx if universe[int(i)].kind is InstrumentKind.OPTION):
        tick = universe[idx].tick_paise
        asks = [q[1] for m in bars[k0 : k0 + 2] if (q := quote(m, idx)) is not None]
        if not asks or min(asks) <= 0:
            continue
        price = max(asks) + tick
        for j in range(k0 + 2, min(k0 + 11, len(bars))):
            q = quote(bars[j], idx)
            if q is None or q[0] <= 0:
                continue
            half = max(tick, (q[1] - q[0]) // 2 // tick * tick)
            if q[2] - half >= price:
                pick = (idx, price, bars[j].ts_ns)
                break
        if pick is not None:
            break
    if pick is None:
        pytest.fail("no quoted option rises through its ask within ten minutes")
    idx, price, by_ns = pick
    inst = universe[idx]
    venue.submit(
        OrderRequest(
            client_order_id="REST1",
            instrument_token=inst.token,
            side=Side.SELL,
            order_type=OrderType.LIMIT,
            qty=inst.lot_size,
            price_paise=price,
            strategy_id="api",
        ),
        0,
    )
    events = drain_until(venue, lambda got: any(isinstance(e, OrderFilled) for e in got))
    assert [type(e) for e in events] == [OrderAccepted, OrderFilled]
    accepted, filled = events
    assert isinstance(accepted, OrderAccepted) and accepted.status is OrderStatus.OPEN
    assert isinstance(filled, OrderFilled)
    assert filled.price_paise == price and filled.qty == inst.lot_size
    assert accepted.ts_ns < filled.ts_ns <= by_ns  # it rested, then a later bar took it


# ---- an engine against the server process ------------------------------------------------------


class Scripted(Strategy):
    """A resting buy limit at 60 % of the bid from 09:21, its price modified at 09:24,
    cancelled at 09:27 and replaced by a second one, whose quantity doubles at 09:30."""

    def __init__(self) -> None:
        super().__init__("scripted")
        self.ids: dict[str, str] = {}
        self.idx = -1

    def _price(self, ctx: StrategyContext, pct: int) -> int:
        bid, _ = ctx.bid_ask_paise(self.idx)
        tick = ctx.universe[self.idx].tick_paise
        return max(tick, bid * pct // 100 // tick * tick)

    def on_slice(self, ctx: StrategyContext, market: MarketSlice) -> None:
        t = datetime.fromtimestamp(ctx.now_ns() / 1e9, IST).time()
        if "first" not in self.ids and t >= dtime(9, 21):
            rows = [
                int(market.idx[k])
                for k in range(len(market))
                if ctx.universe[int(market.idx[k])].kind is InstrumentKind.OPTION
                and market.bid_paise[k] > 0
            ]
            self.idx = min(rows, key=lambda i: abs(ctx.bid_ask_paise(i)[0] - 10_000))
            lot = ctx.universe[self.idx].lot_size
            price = self._price(ctx, 60)
            (self.ids["first"],) = ctx.place(
                self.idx, Side.BUY, lot, OrderType.LIMIT, price_paise=price, tag="first"
            )
        elif "modified" not in self.ids and t >= dtime(9, 24):
            self.ids["modified"] = self.ids["first"]
            ctx.modify(self.ids["first"], price_paise=self._price(ctx, 55))
        elif "second" not in self.ids and t >= dtime(9, 27):
            ctx.cancel(self.ids["first"])
            lot = ctx.universe[self.idx].lot_size
            (self.ids["second"],) = ctx.place(
                self.idx,
                Side.BUY,
                lot,
                OrderType.LIMIT,
                price_paise=self._price(ctx, 60),
                tag="second",
            )
        elif "doubled" not in self.ids and t >= dtime(9, 30):
            self.ids["doubled"] = self.ids["second"]
            ctx.modify(self.ids["second"], qty=2 * ctx.universe[self.idx].lot_size)


def stop_after(feed: Iterable[MarketSlice], engine: Engine, until_ns: int) -> Iterator[MarketSlice]:
    """The feed, with a StopEngine posted once it passes ``until_ns`` (as a signal would:
    working orders stay at the venue)."""
    for m in feed:
        if m.ts_ns > until_ns:
            engine.post(StopEngine(reason="test over", issued_by="test"))
            yield m
            return
        yield m


def settled(engine: Engine, venue: RemoteVenue) -> VenueSnapshot:
    """Apply the venue's events until a snapshot includes exactly what the engine has seen."""
    for _ in range(100):
        engine.oms.on_events(venue.drain_events(), engine.now_ns())
        snap = venue.snapshot()
        if snap.last_seq == venue.cursor:
            return snap
    pytest.fail("the venue never held still")


def test_engine_trades_against_the_server_process_and_the_books_agree(
    fresh_server: ServerProcess,
) -> None:
    settings = Settings()
    feed, universe, calendar, _ = open_feed(settings, DAY, DAY)
    clock = RealClock(
        speed=SPEED,
        start_ns=calendar.session_open_ns(DAY),
        anchor_wall_ns=fresh_server.anchor_wall_ns,
    )
    venue = RemoteVenue(fresh_server.url)
    straddle = PremiumSelling(settings.strategies[0])
    scripted = Scripted()
    engine = assemble(
        settings,
        universe,
        calendar,
        strategies=[straddle, scripted],
        venue=venue,
        clock=clock,
        run_code="VS1",
    )
    sim_start = max(clock.now_ns(), OPEN_NS)
    t0 = time.monotonic()
    engine.run(stop_after(feed, engine, ist_ns(dtime(9, 36))))
    real_s = time.monotonic() - t0
    # it ran on the shared accelerated clock: the 09:37 bar, which stops it, came on time
    expected_s = (ist_ns(dtime(9, 37)) - sim_start) / SPEED / NS
    assert 0.9 * expected_s < real_s < expected_s + 10.0
    snap = settled(engine, venue)

    sent = {cid: o for cid, o in engine.oms.orders.items() if o.status is not OrderStatus.NEW}
    assert len(sent) >= 6  # 2 straddle shorts, 2 stop-losses, 2 scripted limits
    # every order that left was answered by the venue, through events
    for cid, o in sent.items():
        assert o.events and isinstance(o.events[0], OrderAccepted), (cid, o.events)
        assert o.venue_order_id is not None
    # the straddle's shorts filled; fills came as events with the exchange's trade ids
    shorts = [o for o in sent.values() if o.tag.startswith("entry")]
    assert len(shorts) == 2
    assert all(o.status is OrderStatus.FILLED for o in shorts)
    assert len(straddle.legs) == 2 and all(leg.filled > 0 for leg in straddle.legs.values())

    # the venue's order book, by client order id, is the engine's
    engine_open = {o.client_order_id: o for o in engine.oms.open_orders()}
    venue_open = {r.client_order_id: r for r in snap.open_orders}
    assert engine_open.keys() == venue_open.keys()
    for cid, r in venue_open.items():
        o = engine_open[cid]
        mine = (o.status, o.qty, o.filled_qty, o.price_paise, o.trigger_price_paise)
        theirs = (r.status, r.qty, r.filled_qty, r.price_paise, r.trigger_price_paise)
        assert mine == theirs, cid
        assert o.venue_order_id == r.venue_order_id
    assert any(o.status is OrderStatus.TRIGGER_PENDING for o in engine_open.values())
    for cid, o in sent.items():
        report = venue.order(cid)
        assert report is not None, cid
        assert (report.status, report.filled_qty) == (o.status, o.filled_qty), cid

    # the scripted orders: the first modified then cancelled, the second working at 2 lots
    lot = universe[scripted.idx].lot_size
    first, second = sent[scripted.ids["first"]], sent[scripted.ids["second"]]
    assert [type(e) for e in first.events] == [OrderAccepted, OrderModified, OrderCancelled]
    assert second.status is OrderStatus.OPEN and second.qty == 2 * lot
    assert second.client_order_id in venue_open

    # the trade book is the engine's fills
    mine_fills = {
        (f.client_order_id, f.trade_id, f.qty, f.price_paise)
        for f in engine.fills
        if not f.settlement
    }
    venue_fills = {(t.client_order_id, t.trade_id, t.qty, t.price_paise) for t in snap.trades}
    assert mine_fills == venue_fills
    assert len(venue_fills) >= 2


# ---- failure -----------------------------------------------------------------------------------


def test_a_stalled_or_killed_server_gives_temporary_broker_error_not_a_hang(
    fresh_server: ServerProcess,
) -> None:
    venue = RemoteVenue(fresh_server.url, timeout_s=0.5)
    venue.now_ns()
    pid = fresh_server.proc.pid
    os.kill(pid, signal.SIGSTOP)  # alive, accepting connections (the kernel), answering nothing
    try:
        t0 = time.monotonic()
        with pytest.raises(TemporaryBrokerError):
            venue.drain_events()
        assert time.monotonic() - t0 < 3.0
    finally:
        os.kill(pid, signal.SIGCONT)
    venue.now_ns()  # it carries on

    fresh_server.proc.kill()  # kill -9
    fresh_server.proc.wait(10)
    request = OrderRequest(
        client_order_id="DEAD1",
        instrument_token="100000",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        qty=65,
        strategy_id="t",
    )
    calls = [
        lambda: venue.submit(request, 0),
        lambda: venue.cancel("DEAD1", 0),
        lambda: venue.modify("DEAD1", 0, qty=130),
        venue.drain_events,
        venue.open_orders,
        venue.trades,
        lambda: venue.order("DEAD1"),
        venue.snapshot,
    ]
    for call in calls:
        t0 = time.monotonic()
        with pytest.raises(TemporaryBrokerError):
            call()
        assert time.monotonic() - t0 < 3.0


def test_sigterm_stops_the_server_cleanly_and_bad_arguments_exit_2(tmp_path: Path) -> None:
    s = start_server(tmp_path / "server.log", time.time_ns())
    try:
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(10) == 0
    finally:
        s.stop()
    saturday = subprocess.run(
        [sys.executable, "-m", "algoengine.brokers.paper.server", "--day", "2026-11-07"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert saturday.returncode == 2
    assert "day" in saturday.stderr and "not a trading day" in saturday.stderr


# ---- the server in this process ----------------------------------------------------------------


def test_in_process_server_reports_an_order_in_flight_as_submitted() -> None:
    latency = 60 * NS  # simulated: 0.2 s real at SPEED
    settings = replace(Settings(), exchange=PaperExchangeConfig(order_latency_ns=latency))
    anchor = time.time_ns() - int(600 * NS / SPEED)  # 09:25 now
    with PaperVenueServer(settings, DAY, speed=SPEED, anchor_wall_ns=anchor) as srv:
        host, port = srv.address
        assert host == "127.0.0.1" and port > 0
        venue = RemoteVenue(srv.url)
        market = market_at(venue.now_ns())
        k = next(
            k
            for k in range(len(market))
            if srv.universe[int(market.idx[k])].kind is InstrumentKind.OPTION
            and market.bid_paise[k] > 0
        )
        inst = srv.universe[int(market.idx[k])]
        venue.submit(
            OrderRequest(
                client_order_id="FLY1",
                instrument_token=inst.token,
                side=Side.SELL,
                order_type=OrderType.MARKET,
                qty=inst.lot_size,
                strategy_id="t",
            ),
            0,
        )
        report = venue.order("FLY1")
        assert report is not None
        assert (report.status, report.venue_order_id) == (OrderStatus.SUBMITTED, "")
        events = drain_until(venue, lambda got: any(isinstance(e, OrderFilled) for e in got))
        assert [type(e) for e in events] == [OrderAccepted, OrderFilled]
        assert events[0].ts_ns >= report.ts_ns + latency
        report = venue.order("FLY1")
        assert report is not None and report.status is OrderStatus.FILLED
        threads = list(srv._threads)
    assert not any(t.is_alive() for t in threads)
    with pytest.raises(TemporaryBrokerError):
        venue.now_ns()


def test_server_arguments_are_checked() -> None:
    s = Settings()
    with pytest.raises(ValidationError) as info:
        PaperVenueServer(s, DAY, speed=0.0, anchor_wall_ns=0)
    assert info.value.field == "speed"
    with pytest.raises(ValidationError) as info:
        PaperVenueServer(s, DAY, speed=1.0, anchor_wall_ns=0, port=70_000)
    assert info.value.field == "port"
    with pytest.raises(ValidationError) as info:
        PaperVenueServer(s, DAY, speed=1.0, anchor_wall_ns=1.5)  # type: ignore[arg-type]
    assert info.value.field == "anchor_wall_ns"
    with pytest.raises(ConfigurationError, match="not a trading day"):
        PaperVenueServer(s, date(2026, 11, 8), speed=1.0, anchor_wall_ns=0)
