"""AngelOneBroker against the fake Angel One through the REAL smartapi-python client: login and
logout, orders placed with their ordertag and their events from the books, and each fault:
placeOrder timeouts (with and without the order placed), AB2001/AB1004, a rejection with the
broker's text, the token expiring, the plain-text 403 rate limit."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from algoengine.brokers.angelone.adapter import AngelOneBroker, load_smartapi
from algoengine.brokers.angelone.credentials import AngelOneCredentials, AngelOneEndpoints
from algoengine.brokers.angelone.errors import AuthenticationError, RateLimitedError
from algoengine.brokers.angelone.fake_server import FakeAngelOne
from algoengine.domain.events import (
    OrderAccepted,
    OrderCancelled,
    OrderEvent,
    OrderFilled,
    OrderModified,
    OrderRejected,
)
from algoengine.domain.instruments import Instrument
from algoengine.domain.orders import OrderRequest, OrderStatus, OrderType, Side
from algoengine.errors import TemporaryBrokerError

from .conftest import API_KEY, CLIENT, DAY, MPIN, TOTP_SECRET, SmartApiModules
from .test_fake_server import atm_option, quoted_option, wait_for

CREDS = AngelOneCredentials(api_key=API_KEY, client_code=CLIENT, mpin=MPIN, totp_secret=TOTP_SECRET)


def endpoints(fake: FakeAngelOne) -> AngelOneEndpoints:
    return AngelOneEndpoints(
        root_url=fake.root_url,
        feed_url=fake.feed_url,
        order_feed_url=fake.order_feed_url,
        scrip_master_url=fake.scrip_master_url,
    )


@pytest.fixture
def make_broker(
    smartapi: SmartApiModules, fake: FakeAngelOne, client_cwd: Path
) -> Iterator[Callable[..., AngelOneBroker]]:
    made: list[AngelOneBroker] = []
    _FAKE.append(fake)

    def make(creds: AngelOneCredentials = CREDS, login: bool = True, **kw: Any) -> AngelOneBroker:
        kw.setdefault("timeout_s", 1.0)
        kw.setdefault("poll_interval_s", 0.1)
        b = AngelOneBroker(creds, list(fake.venue.universe), endpoints=endpoints(fake), **kw)
        made.append(b)
        if login:
            b.login()
        return b

    yield make
    for b in made:
        b.close()
    assert not (client_cwd / "logs").exists(), "the adapter's client wrote logs in the cwd"


_seq = [0]


def request(inst: Instrument, **kw: Any) -> OrderRequest:
    _seq[0] += 1
    fields: dict[str, Any] = {
        "client_order_id": f"T{int(time.time()) % 100000:05d}{_seq[0]:04d}",
        "instrument_token": inst.token,
        "side": Side.BUY,
        "order_type": OrderType.LIMIT,
        "qty": inst.lot_size,
        "price_paise": inst.tick_paise,  # replaced by a resting price in the band
        "strategy_id": "test",
    }
    fields.update(kw)
    if "price_paise" not in kw and fields["order_type"] is OrderType.LIMIT:
        fields["price_paise"] = resting_price(inst)
    return OrderRequest(**fields)


_FAKE: list[FakeAngelOne] = []


def resting_price(inst: Instrument) -> int:
    """A buy price inside the price band but well under the market: the order rests."""
    fake = _FAKE[-1]
    with fake.venue._lock:
        bid = int(fake.venue.board.bid[fake.venue._index[inst.token]])
    return max(inst.tick_paise, (bid * 7 // 10) // inst.tick_paise * inst.tick_paise)


def collect(
    broker: AngelOneBroker, done: Callable[[list[OrderEvent]], bool], timeout_s: float = 6.0
) -> list[OrderEvent]:
    events: list[OrderEvent] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        events.extend(broker.drain_events())
        if done(events):
            return events
        time.sleep(0.05)
    raise AssertionError(f"events not seen in time: {events}")


def rows_with_tag(broker: AngelOneBroker, cid: str) -> list[dict[str, Any]]:
    time.sleep(1.0)  # the order-book rate (1/s) is shared with the broker's polls
    return [r for r in broker._book() if r.get("ordertag") == cid]


# ---- login -------------------------------------------------------------------------------------


def test_login_profile_logout_and_contained_logs(
    make_broker: Callable[..., AngelOneBroker], fake: FakeAngelOne
) -> None:
    broker = make_broker()
    assert broker.logged_in
    assert broker.profile()["clientcode"] == CLIENT
    assert float(broker.funds()["net"]) > 0
    api = broker._api
    broker.close()
    assert not broker.logged_in
    assert api.access_token is None
    log_dir = Path(load_smartapi().log_dir)
    assert list(log_dir.glob("logs/*/app.log"))  # the client's file went to the private dir


def test_bad_mpin_is_an_authentication_error_without_the_secret(
    make_broker: Callable[..., AngelOneBroker],
) -> None:
    bad = AngelOneCredentials(
        api_key=API_KEY, client_code=CLIENT, mpin="9999", totp_secret=TOTP_SECRET
    )
    broker = make_broker(bad, login=False)
    with pytest.raises(AuthenticationError) as info:
        broker.login()
    assert info.value.code == "AB1000"
    assert "9999" not in str(info.value) and TOTP_SECRET not in repr(bad)
    assert "9999" not in repr(bad)


# ---- orders ------------------------------------------------------------------------------------


def test_marketable_order_fills_with_its_ordertag(
    make_broker: Callable[..., AngelOneBroker], fake: FakeAngelOne
) -> None:
    broker = make_broker()
    inst = atm_option(fake)
    req = request(inst, side=Side.SELL, order_type=OrderType.MARKET, price_paise=None)
    broker.submit(req, time.time_ns())
    events = collect(broker, lambda ev: any(isinstance(e, OrderFilled) for e in ev))
    kinds = [type(e) for e in events]
    assert kinds[0] is OrderAccepted and kinds[-1] is OrderFilled
    fill = events[-1]
    assert isinstance(fill, OrderFilled)
    assert fill.qty == inst.lot_size and fill.price_paise > 0 and fill.side is Side.SELL
    rows = rows_with_tag(broker, req.client_order_id)
    assert len(rows) == 1 and fill.venue_order_id == rows[0]["orderid"]
    assert rows[0]["producttype"] == "CARRYFORWARD"
    assert broker.drain_events() == []  # nothing twice
    report = broker.order(req.client_order_id)
    assert report is not None and report.status is OrderStatus.FILLED
    trades = [t for t in broker.trades() if t.client_order_id == req.client_order_id]
    assert [t.trade_id for t in trades] == [fill.trade_id]


def test_stop_order_accepted_modified_cancelled(
    make_broker: Callable[..., AngelOneBroker], fake: FakeAngelOne
) -> None:
    broker = make_broker()
    inst, _bid, ask = quoted_option(fake)
    trigger = (ask * 5 // 4) // inst.tick_paise * inst.tick_paise
    req = request(
        inst,
        order_type=OrderType.STOPLOSS_LIMIT,
        trigger_price_paise=trigger,
        price_paise=trigger + 5 * inst.tick_paise,
    )
    broker.submit(req, time.time_ns())
    events = collect(broker, lambda ev: any(isinstance(e, OrderAccepted) for e in ev))
    assert isinstance(events[0], OrderAccepted)
    assert events[0].status is OrderStatus.TRIGGER_PENDING
    assert [r.client_order_id for r in broker.open_orders()].count(req.client_order_id) == 1
    new_trigger = trigger + 4 * inst.tick_paise
    broker.modify(
        req.client_order_id,
        time.time_ns(),
        trigger_price_paise=new_trigger,
        price_paise=new_trigger + 5 * inst.tick_paise,
    )
    events = collect(broker, lambda ev: any(isinstance(e, OrderModified) for e in ev))
    mod = events[-1]
    assert isinstance(mod, OrderModified) and mod.trigger_price_paise == new_trigger
    broker.cancel(req.client_order_id, time.time_ns())
    events = collect(broker, lambda ev: any(isinstance(e, OrderCancelled) for e in ev))
    assert isinstance(events[-1], OrderCancelled) and events[-1].cancelled_qty == inst.lot_size


# ---- faults ------------------------------------------------------------------------------------


def test_place_timeout_with_the_order_placed_makes_exactly_one_order(
    make_broker: Callable[..., AngelOneBroker], fake: FakeAngelOne
) -> None:
    broker = make_broker()
    inst = atm_option(fake)
    fake.add_fault({"kind": "delay", "route": "placeOrder", "seconds": 2.0, "process": True})
    req = request(inst)
    broker.submit(req, time.time_ns())  # timed out, found by its ordertag: no error
    assert broker.lookups == 1
    broker.submit(req, time.time_ns())  # the OMS's re-send is a no-op
    events = collect(broker, lambda ev: any(isinstance(e, OrderAccepted) for e in ev))
    assert [type(e) for e in events] == [OrderAccepted]
    assert len(rows_with_tag(broker, req.client_order_id)) == 1


def test_place_timeout_with_nothing_placed_is_retried_once(
    make_broker: Callable[..., AngelOneBroker],
    fake: FakeAngelOne,
) -> None:
    # what our log handlers (on the root logger) receive; pytest's caplog would also attach
    # itself to the client's non-propagating logger, so it cannot tell
    seen: list[str] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = lambda record: seen.append(record.getMessage() + str(record.__dict__))  # type: ignore[method-assign]
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    broker = make_broker()
    inst = atm_option(fake)
    fake.add_fault({"kind": "delay", "route": "placeOrder", "seconds": 1.5, "process": False})
    req = request(inst)
    with pytest.raises(TemporaryBrokerError):
        broker.submit(req, time.time_ns())
    broker.submit(req, time.time_ns())  # searched first, then placed
    assert broker.lookups == 2
    assert len(rows_with_tag(broker, req.client_order_id)) == 1
    # the client logs headers on a transport error: none of it may reach our handlers
    root.removeHandler(handler)
    root.setLevel(old_level)
    text = "\n".join(seen)
    assert seen and API_KEY not in text and "Bearer" not in text
    assert str(broker.access_token) not in text


def test_ab2001_is_retried_and_ab1004_ends_in_a_rejection(
    make_broker: Callable[..., AngelOneBroker], fake: FakeAngelOne
) -> None:
    broker = make_broker(max_server_retries=2)
    inst = atm_option(fake)
    fake.add_fault({"kind": "error", "route": "placeOrder", "code": "AB2001"})
    req = request(inst)
    with pytest.raises(TemporaryBrokerError) as info:
        broker.submit(req, time.time_ns())
    assert info.value.code == "AB2001"
    broker.submit(req, time.time_ns())
    assert len(rows_with_tag(broker, req.client_order_id)) == 1

    fake.add_fault({"kind": "error", "route": "placeOrder", "code": "AB1004", "count": 3})
    req2 = request(inst)
    for _ in range(2):
        with pytest.raises(TemporaryBrokerError):
            broker.submit(req2, time.time_ns())
    broker.submit(req2, time.time_ns())  # the third AB1004: rejected with the broker's text
    events = broker.drain_events()
    rejected = [e for e in events if isinstance(e, OrderRejected)]
    assert [e.client_order_id for e in rejected] == [req2.client_order_id]
    assert rejected[0].reason  # the broker's message
    assert rows_with_tag(broker, req2.client_order_id) == []


def test_broker_rejection_carries_its_text(
    make_broker: Callable[..., AngelOneBroker], fake: FakeAngelOne
) -> None:
    broker = make_broker()
    inst = atm_option(fake)
    fake.add_fault({"kind": "reject", "reason": "RMS: margin exceeds available funds"})
    req = request(inst)
    broker.submit(req, time.time_ns())
    events = collect(broker, lambda ev: any(isinstance(e, OrderRejected) for e in ev))
    assert isinstance(events[-1], OrderRejected)
    assert events[-1].reason == "RMS: margin exceeds available funds"
    assert events[-1].venue_order_id is not None


def test_invalid_symbol_is_a_rejection_not_an_error(
    make_broker: Callable[..., AngelOneBroker], fake: FakeAngelOne
) -> None:
    broker = make_broker()
    inst = atm_option(fake)
    fake.add_fault({"kind": "error", "route": "placeOrder", "code": "AB1009"})
    req = request(inst)
    broker.submit(req, time.time_ns())
    events = broker.drain_events()
    assert len(events) == 1 and isinstance(events[0], OrderRejected)
    assert events[0].code.value == "UNKNOWN_INSTRUMENT"


def test_token_expiry_is_refreshed_without_losing_the_order(
    make_broker: Callable[..., AngelOneBroker], fake: FakeAngelOne
) -> None:
    broker = make_broker()
    inst = atm_option(fake)
    fake.add_fault({"kind": "expire_token"})
    req = request(inst)
    broker.submit(req, time.time_ns())
    assert broker.refreshes == 1
    events = collect(broker, lambda ev: any(isinstance(e, OrderAccepted) for e in ev))
    assert events and all(e.client_order_id == req.client_order_id for e in events)
    assert len(rows_with_tag(broker, req.client_order_id)) == 1


def test_rate_limit_403_backs_off_and_places_once(
    make_broker: Callable[..., AngelOneBroker], fake: FakeAngelOne
) -> None:
    broker = make_broker()
    inst = atm_option(fake)
    fake.add_fault({"kind": "rate_limit", "route": "placeOrder"})
    req = request(inst)
    with pytest.raises(RateLimitedError):
        broker.submit(req, time.time_ns())
    assert broker.limiter.bucket("placeOrder").wait_s() > 0.5  # penalised
    broker.submit(req, time.time_ns())  # waits out the penalty, then places
    assert len(rows_with_tag(broker, req.client_order_id)) == 1


def test_polls_stay_under_the_enforced_rate_limits(
    make_broker: Callable[..., AngelOneBroker], fake: FakeAngelOne
) -> None:
    fake.add_fault({"kind": "rate_limits", "enabled": True})
    broker = make_broker(poll_interval_s=0.0)
    inst = atm_option(fake)
    reqs = [request(inst) for _ in range(3)]
    for r in reqs:
        broker.submit(r, time.time_ns())
    events = collect(
        broker, lambda ev: sum(isinstance(e, OrderAccepted) for e in ev) == 3, timeout_s=8
    )
    assert sorted(e.client_order_id for e in events) == sorted(r.client_order_id for r in reqs)


# ---- the order-update websocket against polling ------------------------------------------------


def test_the_order_websocket_shows_a_later_fill_before_the_next_poll(
    make_broker: Callable[..., AngelOneBroker], fake: FakeAngelOne
) -> None:
    """Two sessions, both polling the books every 4 s; only one listens to the order-update
    websocket. Both rest a buy; the market later moves through it (both fill at that moment).
    The listening session sees its fill within about a second (the update makes its next
    drain poll at once, as soon as Angel One's 1/s order-book limit allows: 1.09-1.11 s in
    three runs here); the polling-only one at its next scheduled poll (3.99 s)."""
    listening = make_broker(poll_interval_s=4.0, order_updates=True)
    polling = make_broker(poll_interval_s=4.0)
    updates = listening._updates
    assert updates is not None
    wait_for(lambda: updates.opens == 1, 5)
    inst = atm_option(fake)
    price = resting_price(inst)
    orders = {b: request(inst, price_paise=price) for b in (listening, polling)}
    for b, req in orders.items():
        b.submit(req, time.time_ns())
    accepted: set[AngelOneBroker] = set()
    deadline = time.monotonic() + 10.0
    while len(accepted) < 2:  # each sees its order working at a poll of its own
        assert time.monotonic() < deadline, "orders not accepted in time"
        for b in orders:
            if any(isinstance(e, OrderAccepted) for e in b.drain_events()):
                accepted.add(b)
        time.sleep(0.02)
    for b in orders:
        assert not b.drain_events()  # resting: nothing more happened

    # the polling session has just polled: its next poll is about 4 s away
    t_fill = time.monotonic()
    fake.show_quote(inst.token, price - inst.tick_paise, price, qty=100 * inst.lot_size)
    seen: dict[AngelOneBroker, float] = {}
    fills: dict[AngelOneBroker, list[OrderFilled]] = {b: [] for b in orders}
    while len(seen) < 2:
        assert time.monotonic() - t_fill < 10.0, "fills not seen in time"
        for b in orders:
            got = [e for e in b.drain_events() if isinstance(e, OrderFilled)]
            if got and b not in seen:
                seen[b] = time.monotonic() - t_fill
            fills[b] += got
        time.sleep(0.02)
    for b, req in orders.items():
        [fill] = fills[b]
        assert fill.client_order_id == req.client_order_id
        assert (fill.qty, fill.price_paise) == (inst.lot_size, price)
    assert listening.order_update_count >= 2  # AB00 and at least this fill's update
    assert seen[listening] < 2.0, seen
    assert seen[polling] > 2.5, seen
    assert seen[polling] - seen[listening] > 1.5, seen


# ---- a new trading day -------------------------------------------------------------------------


def test_a_new_day_logs_the_old_session_out_and_in_again_keeping_orders(
    make_broker: Callable[..., AngelOneBroker], fake: FakeAngelOne
) -> None:
    """SEBI: no session carried over into a trading day. A session logged in yesterday is
    logged out before its first call of today and a new one logged in; the order resting
    since yesterday stays tracked (cancelled today, its cancel seen), and the order-update
    websocket, closed with the old session, comes back on the new one."""
    from datetime import date, timedelta

    today = [date(2026, 11, 3)]
    sessions_before = fake.session_count
    b = make_broker(order_updates=True, today=lambda: today[0])
    updates = b._updates
    assert updates is not None
    wait_for(lambda: updates.opens == 1, 5)
    assert fake.session_count == sessions_before + 1 and b.session_day == today[0]
    old_jwt = b.access_token
    req = request(atm_option(fake))
    b.submit(req, time.time_ns())
    collect(b, lambda ev: any(isinstance(e, OrderAccepted) for e in ev))

    today[0] += timedelta(days=1)  # midnight passes with the order resting
    b.cancel(req.client_order_id, time.time_ns())  # the first call of the new day
    assert b.day_logins == 1 and b.session_day == date(2026, 11, 4)
    assert b.access_token != old_jwt
    assert fake.session_count == sessions_before + 1  # the old one was logged out
    events = collect(b, lambda ev: any(isinstance(e, OrderCancelled) for e in ev))
    assert [type(e) for e in events] == [OrderCancelled]
    assert events[0].client_order_id == req.client_order_id
    wait_for(lambda: updates.opens == 2, 5)  # re-made on the new session's tokens
    b.cancel(req.client_order_id, time.time_ns())  # same day: no new login
    assert b.day_logins == 1


# ---- market data over REST ---------------------------------------------------------------------


def test_ltp_and_quotes_in_paise_chunked_by_fifty_tokens(
    make_broker: Callable[..., AngelOneBroker], fake: FakeAngelOne
) -> None:
    from algoengine.brokers.angelone.adapter import QUOTE_TOKENS_PER_CALL
    from algoengine.domain.instruments import InstrumentKind
    from algoengine.errors import ValidationError

    b = make_broker()
    inst, _, _ = quoted_option(fake)
    i = fake.venue._index[inst.token]
    before = int(fake.venue.board.ltp[i])
    ltp = b.ltp(inst.token)
    after = int(fake.venue.board.ltp[i])
    assert ltp in (before, after) and ltp % inst.tick_paise == 0

    options = [u for u in fake.venue.universe if u.kind is InstrumentKind.OPTION]
    tokens = [u.token for u in options[: QUOTE_TOKENS_PER_CALL + 10]]
    calls_before = b.limiter.bucket("quote").taken
    quotes = b.quotes(tokens)
    assert b.limiter.bucket("quote").taken - calls_before == 2  # 50 + 10 tokens
    assert set(quotes) == set(tokens)
    q = quotes[inst.token]
    assert q.symbol == inst.symbol and q.ltp_paise > 0
    assert len(q.bids) == 5 and len(q.asks) == 5
    assert [p for p, _ in q.bids] == sorted((p for p, _ in q.bids), reverse=True)
    assert [p for p, _ in q.asks] == sorted(p for p, _ in q.asks)
    assert q.bids[0][0] < q.asks[0][0]
    assert all(p % inst.tick_paise == 0 for p, _ in q.bids + q.asks)
    assert q.low_paise <= q.ltp_paise <= q.high_paise
    bare = b.quotes([inst.token], mode="LTP")[inst.token]
    assert bare.bids == () and bare.open_paise == 0 and bare.ltp_paise > 0

    with pytest.raises(ValidationError) as err:
        b.ltp("999999")
    assert err.value.field == "token"
    with pytest.raises(ValidationError) as err:
        b.quotes([inst.token], mode="DEPTH")
    assert err.value.field == "mode"


def test_candles_are_chunked_by_the_days_per_request_limit(
    make_broker: Callable[..., AngelOneBroker], fake: FakeAngelOne
) -> None:
    """One-minute candles over 65 days take three requests (Angel One serves at most 30 days
    of them per request, and the fake refuses more); the session's minutes come back once
    each, in order, the same as a request of the one day; five-minute candles aggregate
    them."""
    from datetime import datetime, timedelta

    from algoengine.brokers.angelone.adapter import IST
    from algoengine.domain.instruments import InstrumentKind
    from algoengine.errors import ValidationError

    b = make_broker()
    index = next(u for u in fake.venue.universe if u.kind is InstrumentKind.INDEX)
    day = datetime(DAY.year, DAY.month, DAY.day, tzinfo=IST)
    start, end = day - timedelta(days=64), day + timedelta(hours=23)
    taken = b.limiter.bucket("getCandleData").taken
    many = b.candles(index.token, "ONE_MINUTE", start, end)
    assert b.limiter.bucket("getCandleData").taken - taken == 3
    one_day = b.candles(index.token, "ONE_MINUTE", day, end)
    n = min(len(many), len(one_day))  # a minute may have closed between the two calls
    assert n >= 15 and many[:n] == one_day[:n]
    ts = [c.ts_ns for c in many]
    assert ts == sorted(set(ts)) and {b - a for a, b in itertools.pairwise(ts)} == {60 * 10**9}
    assert ts[0] == int(day.replace(hour=9, minute=15).timestamp()) * 10**9
    for c in many:
        assert c.low_paise <= min(c.open_paise, c.close_paise)
        assert c.high_paise >= max(c.open_paise, c.close_paise)
    five = b.candles(index.token, "FIVE_MINUTE", day, end)
    first = [c for c in many if c.ts_ns < five[0].ts_ns + 5 * 60 * 10**9]
    assert len(first) == 5
    assert (
        five[0].open_paise == first[0].open_paise and five[0].close_paise == first[-1].close_paise
    )
    assert five[0].high_paise == max(c.high_paise for c in first)
    assert five[0].volume == sum(c.volume for c in first)

    for kw, name in (
        ({"interval": "TWO_MINUTE"}, "interval"),
        ({"start": end, "end": start}, "end"),
        ({"token": "1"}, "token"),
    ):
        args = {"token": index.token, "interval": "ONE_MINUTE", "start": start, "end": end} | kw
        with pytest.raises(ValidationError) as err:
            b.candles(**args)
        assert err.value.field == name
