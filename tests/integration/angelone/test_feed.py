"""The instrument master (download, one-day cache, stale fallback) and the supervised market
feed (AngelOneFeed over the REAL SmartWebSocketV2) against the fake Angel One: ticks decode to
the synthetic market, the L2 book holds the snapshot's 5 levels, a dropped socket is re-made
and resubscribed, a stale feed is reported and cleared."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from algoengine.backtest.runner import open_feed
from algoengine.brokers.angelone.adapter import AngelOneBroker
from algoengine.brokers.angelone.credentials import AngelOneCredentials, AngelOneEndpoints
from algoengine.brokers.angelone.fake_server import FakeAngelOne, tick_packet
from algoengine.brokers.angelone.feed import AngelOneFeed, FeedAuth, FeedMode, Tick, decode_tick
from algoengine.brokers.angelone.instruments import fetch_scrip_master, load_instrument_master
from algoengine.domain.instruments import InstrumentKind
from algoengine.domain.market_data import MarketSlice, Universe
from algoengine.errors import ConfigurationError, TemporaryBrokerError, ValidationError
from algoengine.settings import Settings

from .conftest import API_KEY, CLIENT, DAY, MPIN, TOTP_SECRET, SmartApiModules
from .test_fake_server import atm_option, quoted_option, wait_for

CREDS = AngelOneCredentials(api_key=API_KEY, client_code=CLIENT, mpin=MPIN, totp_secret=TOTP_SECRET)
DEAD_URL = "http://127.0.0.1:9/OpenAPIScripMaster.json"  # nothing listens on port 9


def endpoints(fake: FakeAngelOne) -> AngelOneEndpoints:
    return AngelOneEndpoints(
        root_url=fake.root_url,
        feed_url=fake.feed_url,
        order_feed_url=fake.order_feed_url,
        scrip_master_url=fake.scrip_master_url,
    )


@pytest.fixture
def broker(smartapi: SmartApiModules, fake: FakeAngelOne, client_cwd: Path) -> Iterator[Any]:
    b = AngelOneBroker(CREDS, list(fake.venue.universe), endpoints=endpoints(fake), timeout_s=2.0)
    b.login()
    yield b
    b.close()


@pytest.fixture
def feeds() -> Iterator[Callable[..., AngelOneFeed]]:
    made: list[AngelOneFeed] = []

    def make(*args: Any, **kw: Any) -> AngelOneFeed:
        f = AngelOneFeed(*args, **kw)
        made.append(f)
        return f

    yield make
    for f in made:
        f.stop()


def consume(feed: AngelOneFeed, out: list[MarketSlice]) -> threading.Thread:
    t = threading.Thread(target=lambda: out.extend(feed), daemon=True)
    t.start()
    return t


# ---- the instrument master -------------------------------------------------------------------


def test_master_downloads_caches_and_builds_universe(
    fake: FakeAngelOne, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a proxy in the environment must not be used for loopback
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    cache = tmp_path / "cache" / "master.json"
    contracts = Settings().market.synthetic.contracts
    got = load_instrument_master(contracts, url=fake.scrip_master_url, cache_path=cache)
    assert got.source == "download" and got.warning is None and cache.exists()
    want = [
        i.token
        for i in fake.venue.universe
        if i.kind in (InstrumentKind.INDEX, InstrumentKind.OPTION)
    ]
    assert [i.token for i in got.universe] == want
    assert got.universe.by_token(want[-1]) == fake.venue.universe.by_token(want[-1])
    assert {i.kind for i in got.universe} == {InstrumentKind.INDEX, InstrumentKind.OPTION}

    # fresh: no download at all (the URL is dead)
    again = load_instrument_master(contracts, url=DEAD_URL, cache_path=cache)
    assert again.source == "cache" and len(again.universe) == len(got.universe)

    # the nearest expiries only
    today = min(i.expiry for i in got.universe if i.expiry is not None)
    near = load_instrument_master(contracts, url=DEAD_URL, cache_path=cache, today=today)
    for name, spec in (
        contracts.items() if isinstance(contracts, dict) else ((c.underlying, c) for c in contracts)
    ):
        assert len(near.universe.expiries(name)) <= spec.expiries_listed


def test_master_stale_cache_refetches_or_falls_back(fake: FakeAngelOne, tmp_path: Path) -> None:
    cache = tmp_path / "master.json"
    first = fetch_scrip_master(url=fake.scrip_master_url, cache_path=cache)
    mtime = cache.stat().st_mtime
    day = 86_400.0
    # a day later: stale, so it downloads again (and rewrites the cache)
    os.utime(cache, (mtime - 2 * day, mtime - 2 * day))
    again = fetch_scrip_master(url=fake.scrip_master_url, cache_path=cache)
    assert again.source == "download" and again.rows == first.rows
    assert cache.stat().st_mtime > mtime - day
    # stale and the download fails: the cache, said so
    os.utime(cache, (mtime - 2 * day, mtime - 2 * day))
    old = fetch_scrip_master(url=DEAD_URL, cache_path=cache, timeout_s=2)
    assert old.source == "stale-cache" and old.rows == first.rows
    assert old.warning is not None and "unreachable" in old.warning and "h ago" in old.warning
    # too old to fall back on, or no cache at all: the failure
    with pytest.raises(TemporaryBrokerError, match="unreachable"):
        fetch_scrip_master(url=DEAD_URL, cache_path=cache, max_stale_s=day, timeout_s=2)
    with pytest.raises(TemporaryBrokerError):
        fetch_scrip_master(url=DEAD_URL, cache_path=tmp_path / "none.json", timeout_s=2)
    # a cache written yesterday (IST) is stale even if younger than max_age_s
    os.utime(cache, (mtime, mtime))
    assert fetch_scrip_master(url=DEAD_URL, cache_path=cache).source == "cache"
    assert (
        fetch_scrip_master(url=DEAD_URL, cache_path=cache, now_s=mtime + day - 1).source
        == "stale-cache"
    )


def test_master_refuses_bad_answers_and_arguments(fake: FakeAngelOne, tmp_path: Path) -> None:
    cache = tmp_path / "m.json"
    with pytest.raises(TemporaryBrokerError, match="JSON array"):
        fetch_scrip_master(url=fake.root_url + "/__fake__/state", cache_path=cache)
    assert not cache.exists()  # nothing bad is cached
    with pytest.raises(TemporaryBrokerError, match="HTTP 404"):
        fetch_scrip_master(url=fake.root_url + "/__fake__/nothing", cache_path=cache)
    for kw, name in (
        ({"url": "ftp://x/y"}, "url"),
        ({"max_age_s": 0}, "max_age_s"),
        ({"timeout_s": -1}, "timeout_s"),
        ({"max_stale_s": True}, "max_stale_s"),
    ):
        args: dict[str, Any] = {"url": fake.scrip_master_url, "cache_path": cache, **kw}
        with pytest.raises(ValidationError) as err:
            fetch_scrip_master(**args)
        assert err.value.field == name
    with pytest.raises(ConfigurationError, match="no options"):
        from algoengine.market.contracts import ContractSpec

        spec = next(iter(Settings().market.synthetic.contracts))
        spec = (
            spec if isinstance(spec, ContractSpec) else Settings().market.synthetic.contracts[spec]
        )
        import dataclasses

        other = dataclasses.replace(spec, underlying="NOSUCH", spot_token="1")
        load_instrument_master([other], url=fake.scrip_master_url, cache_path=cache)


# ---- decoding ---------------------------------------------------------------------------------


def test_decode_tick_matches_the_client_parser(
    fake: FakeAngelOne, smartapi: SmartApiModules, client_cwd: Path
) -> None:
    quoted_option(fake)
    inst = atm_option(fake)
    index = next(i for i in fake.venue.universe if i.kind is InstrumentKind.INDEX)
    parser = smartapi.SmartWebSocketV2("Bearer x", "k", "c", "f")
    with fake.venue._lock:
        packets = [tick_packet(fake, inst.token, m, 7) for m in (1, 2, 3)]
        packets.append(tick_packet(fake, index.token, 1, 8))
    for p in packets:
        mine, theirs = decode_tick(p), parser._parse_binary_data(p)
        assert mine.token == theirs["token"] and mine.mode == theirs["subscription_mode"]
        assert mine.seq == theirs["sequence_number"]
        assert mine.ts_ns == theirs["exchange_timestamp"] * 1_000_000
        assert mine.ltp_paise == theirs["last_traded_price"]
        if mine.mode >= 2:
            assert mine.volume == theirs["volume_trade_for_the_day"]
        if mine.mode == 3:
            assert mine.oi == theirs["open_interest"]
            assert [(lv["price"], lv["quantity"]) for lv in theirs["best_5_buy_data"]] == list(
                mine.bids
            )
            assert [(lv["price"], lv["quantity"]) for lv in theirs["best_5_sell_data"]] == list(
                mine.asks
            )
            assert len(mine.bids) == 5 and mine.bid_paise < mine.ask_paise
        else:
            assert mine.bids == () and mine.bid_paise == 0
    with pytest.raises(ValidationError) as err:
        decode_tick(packets[0][:50])
    assert err.value.field == "packet"
    with pytest.raises(ValidationError):
        decode_tick(b"\x03" + packets[0][1:])  # says SNAP_QUOTE, has 51 bytes


# ---- the feed ---------------------------------------------------------------------------------


def test_feed_ticks_slices_and_depth(
    broker: AngelOneBroker, fake: FakeAngelOne, feeds: Callable[..., AngelOneFeed]
) -> None:
    quoted_option(fake)
    inst = atm_option(fake)
    index = next(i for i in fake.venue.universe if i.kind is InstrumentKind.INDEX)
    universe = Universe(fake.venue.universe)
    ticks: list[Tick] = []
    feed = feeds(
        broker,
        universe,
        [inst.token, index.token],
        feed_url=fake.feed_url,
        on_tick=ticks.append,
    )
    slices: list[MarketSlice] = []
    t = consume(feed, slices)
    wait_for(lambda: len([x for x in ticks if x.token == inst.token]) >= 3, 10)
    wait_for(lambda: any(x.token == index.token for x in ticks), 5)
    time.sleep(0.3)
    feed.stop()
    t.join(5)
    assert not t.is_alive()  # the iteration ended with stop()
    assert feed.opens == 1 and feed.decode_errors == 0

    # every tick is the synthetic market's value at its exchange time
    synth, _, _, _ = open_feed(Settings(), DAY, DAY)
    last_ms = max(x.ts_ns for x in ticks) // 1_000_000
    seen: dict[tuple[str, int], tuple[int, int, int]] = {}
    pos = {fake.venue._index[inst.token]: inst.token, fake.venue._index[index.token]: index.token}
    for s in synth:
        if s.ts_ns // 1_000_000 > last_ms:
            break
        for k, ix in enumerate(s.idx):
            if int(ix) in pos:
                seen[(pos[int(ix)], s.ts_ns // 1_000_000)] = (
                    int(s.ltp_paise[k]),
                    int(s.bid_paise[k]),
                    int(s.ask_paise[k]),
                )
    for x in ticks:
        ltp, bid, ask = seen[(x.token, x.ts_ns // 1_000_000)]
        assert x.ltp_paise == ltp and x.mode == FeedMode.SNAP_QUOTE
        if x.token == inst.token:
            assert (x.bid_paise, x.ask_paise) == (bid, ask) and len(x.bids) == 5

    # slices: the latest tick per instrument since the last slice, time never going back
    assert slices and all(len(s) >= 1 for s in slices)
    assert [s.ts_ns for s in slices] == sorted(s.ts_ns for s in slices)
    flat = [
        (s.ts_ns, int(s.idx[k]), int(s.ltp_paise[k]), int(s.bid_paise[k]), int(s.ask_paise[k]))
        for s in slices
        for k in range(len(s))
    ]
    by_value = {
        (universe.index_of(x.token), x.ltp_paise, x.bid_paise, x.ask_paise): x.ts_ns for x in ticks
    }
    for ts, ix, ltp, bid, ask in flat:
        assert by_value[(ix, ltp, bid, ask)] <= ts
    last_opt = next(x for x in reversed(ticks) if x.token == inst.token)
    in_slices = [r for r in flat if r[1] == universe.index_of(inst.token)]
    assert in_slices[-1][2:] == (last_opt.ltp_paise, last_opt.bid_paise, last_opt.ask_paise)

    # the L2 book holds the last snapshot's 5 levels a side
    bid_px, bid_q, ask_px, ask_q = feed.depth(inst.token)
    assert np.round(np.asarray(bid_px) * 100).astype(int).tolist() == [p for p, _ in last_opt.bids]
    assert np.asarray(bid_q).tolist() == [q for _, q in last_opt.bids]
    assert np.round(np.asarray(ask_px) * 100).astype(int).tolist() == [p for p, _ in last_opt.asks]
    assert np.asarray(ask_q).tolist() == [q for _, q in last_opt.asks]
    assert feed.book(inst.token).levels("buy") == 5
    with pytest.raises(ValidationError):
        feed.depth("nope")


def test_feed_reconnects_and_resubscribes_after_drop(
    broker: AngelOneBroker, fake: FakeAngelOne, feeds: Callable[..., AngelOneFeed]
) -> None:
    quoted_option(fake)
    inst = atm_option(fake)
    index = next(i for i in fake.venue.universe if i.kind is InstrumentKind.INDEX)
    ticks: list[Tick] = []
    feed = feeds(
        broker,
        Universe(fake.venue.universe),
        [inst.token, index.token],
        feed_url=fake.feed_url,
        on_tick=ticks.append,
    )
    feed.start()
    wait_for(lambda: feed.opens == 1 and len(ticks) >= 2, 10)
    fake.add_fault({"kind": "drop_market_ws"})
    dropped_at = time.monotonic()
    wait_for(lambda: feed.opens == 2, 5)
    assert time.monotonic() - dropped_at < 2.5  # the first backoff is 0.5 s
    n = len(ticks)
    wait_for(lambda: len([x for x in ticks[n:] if x.token == inst.token]) >= 2, 10)
    with fake._lock:
        conns = [c for c in fake._ws if c.kind == "market" and not c.closed.is_set()]
        subs = [sorted(c.subs) for c in conns]
    assert subs == [sorted([(inst.token, 3), (index.token, 3)])]  # one connection, once each
    assert feed.connected
    feed.stop()
    assert not feed.connected


def test_feed_stale_then_fresh_with_a_new_session(
    broker: AngelOneBroker, fake: FakeAngelOne, feeds: Callable[..., AngelOneFeed]
) -> None:
    quoted_option(fake)
    inst = atm_option(fake)
    calls: list[str] = []
    feed = feeds(
        broker,
        Universe(fake.venue.universe),
        [inst.token],
        feed_url=fake.feed_url,
        stale_after_s=0.6,
        backoff_max_s=1.0,
        on_stale=lambda: calls.append("stale"),
        on_fresh=lambda: calls.append("fresh"),
    )
    feed.start()
    wait_for(lambda: feed.ticks >= 1, 10)
    assert calls == [] and not feed.stale
    # the session expires and the socket drops: reconnects are refused (401), no ticks
    fake.add_fault({"kind": "expire_token"})
    fake.add_fault({"kind": "drop_market_ws"})
    wait_for(lambda: calls == ["stale"], 5)
    assert feed.stale and not feed.connected
    attempts = feed.attempts
    wait_for(lambda: feed.attempts >= attempts + 2, 5)  # it keeps trying, with backoff
    broker.login()  # a new session: the feed reads its tokens on the next attempt
    wait_for(lambda: calls == ["stale", "fresh"], 8)
    assert not feed.stale and feed.connected and feed.stale_count == 1


def test_feed_no_staleness_while_session_closed(
    fake: FakeAngelOne, feeds: Callable[..., AngelOneFeed], smartapi: SmartApiModules
) -> None:
    is_open = [False]
    calls: list[str] = []

    def no_session() -> FeedAuth:
        raise ConfigurationError("not logged in")

    feed = feeds(
        no_session,
        Universe(fake.venue.universe),
        feed_url=fake.feed_url,
        stale_after_s=0.3,
        session_open=lambda: is_open[0],
        on_stale=lambda: calls.append("stale"),
        on_fresh=lambda: calls.append("fresh"),
        backoff_initial_s=0.1,
        backoff_max_s=0.2,
    )
    slices: list[MarketSlice] = []
    t = consume(feed, slices)
    time.sleep(0.8)
    assert calls == [] and feed.opens == 0 and slices == []
    is_open[0] = True
    wait_for(lambda: calls == ["stale"], 3)
    is_open[0] = False  # the session closes: not stale any more
    wait_for(lambda: calls == ["stale", "fresh"], 3)
    feed.stop()
    t.join(5)
    assert not t.is_alive()


def test_feed_heartbeat_slices_and_argument_checks(
    fake: FakeAngelOne, feeds: Callable[..., AngelOneFeed], smartapi: SmartApiModules
) -> None:
    u = Universe(fake.venue.universe)

    def no_session() -> FeedAuth:
        raise ConfigurationError("not logged in")

    feed = feeds(no_session, u, feed_url=fake.feed_url, heartbeat_s=0.2, batch_interval_s=0.05)
    slices: list[MarketSlice] = []
    t = consume(feed, slices)
    time.sleep(0.7)
    feed.stop()
    t.join(5)
    assert 2 <= len(slices) <= 5 and all(len(s) == 0 for s in slices)
    assert [s.ts_ns for s in slices] == sorted(s.ts_ns for s in slices)

    auth = FeedAuth(jwt="j", api_key="k", client_code="c", feed_token="f")
    assert "'j'" not in repr(auth) and "'f'" not in repr(auth) and auth.bearer == "Bearer j"
    for kw, name in (
        ({"tokens": ["nope"]}, "token"),
        ({"tokens": []}, "tokens"),
        ({"tokens": "123"}, "tokens"),
        ({"mode": 7}, "mode"),
        ({"batch_interval_s": 0}, "batch_interval_s"),
        ({"stale_after_s": -1}, "stale_after_s"),
        ({"backoff_initial_s": 2, "backoff_max_s": 1}, "backoff_max_s"),
        ({"heartbeat_s": float("nan")}, "heartbeat_s"),
    ):
        with pytest.raises(ValidationError) as err:
            AngelOneFeed(auth, u, feed_url=fake.feed_url, **kw)
        assert err.value.field == name, kw
    with pytest.raises(ValidationError) as err:
        AngelOneFeed(auth, list(u), feed_url=fake.feed_url)  # type: ignore[arg-type]
    assert err.value.field == "universe"
    with pytest.raises(ConfigurationError):
        AngelOneFeed(auth, u, feed_url="http://not-a-ws")
    with pytest.raises(ConfigurationError):
        FeedAuth(jwt="", api_key="k", client_code="c", feed_token="f")


# ---- the order-update websocket in the adapter ------------------------------------------------


def test_order_update_websocket_supervised(
    smartapi: SmartApiModules, fake: FakeAngelOne, client_cwd: Path
) -> None:
    from algoengine.domain.events import OrderFilled
    from algoengine.domain.orders import OrderRequest, OrderType, Side

    broker = AngelOneBroker(
        CREDS,
        list(fake.venue.universe),
        endpoints=endpoints(fake),
        timeout_s=2.0,
        poll_interval_s=5.0,
        order_updates=True,
    )
    broker.login()
    try:
        updates = broker._updates
        assert updates is not None
        wait_for(lambda: updates.opens == 1 and broker.order_update_count >= 1, 5)  # AB00
        inst = atm_option(fake)
        req = OrderRequest(
            client_order_id=f"OU{time.time_ns() % 10**9:09d}",
            instrument_token=inst.token,
            side=Side.SELL,
            order_type=OrderType.MARKET,
            qty=inst.lot_size,
            price_paise=None,
            strategy_id="test",
        )
        t0 = time.monotonic()
        broker.submit(req, time.time_ns())
        events = broker.drain_events()
        while not any(isinstance(e, OrderFilled) for e in events):
            assert time.monotonic() - t0 < 4.0, events  # the poll interval is 5 s
            time.sleep(0.02)
            events.extend(broker.drain_events())
        wait_for(lambda: broker.order_update_count >= 2, 3)  # AB00 + this order's updates

        # the socket drops: it is re-made, and updates keep coming
        fake.add_fault({"kind": "drop_order_ws"})
        wait_for(lambda: updates.opens == 2, 5)
    finally:
        broker.close()
    assert broker._updates is None and not updates._thread.is_alive()  # type: ignore[union-attr]
