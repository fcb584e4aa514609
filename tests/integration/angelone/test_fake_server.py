"""The fake Angel One through the REAL smartapi-python client: login with a TOTP, orders into
the paper exchange and back out of the order/trade books, market data, both websockets with
their binary/JSON payloads checked against the synthetic market, and each fault mode as the
client sees it."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pyotp
import pytest
import requests

from algoengine.backtest.runner import open_feed
from algoengine.brokers.angelone.fake_server import FakeAngelOne
from algoengine.domain.instruments import Instrument, InstrumentKind
from algoengine.market.scrip_master import parse_scrip_master
from algoengine.settings import Settings

from .conftest import API_KEY, CLIENT, DAY, MPIN, TOTP_SECRET, SmartApiModules


def quoted_option(fake: FakeAngelOne) -> tuple[Instrument, int, int]:
    """An option with a two-sided quote: (instrument, bid, ask) in paise."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with fake.venue._lock:
            b = fake.venue.board
            for inst in fake.venue.universe:
                i = fake.venue._index[inst.token]
                bid, ask = int(b.bid[i]), int(b.ask[i])
                if inst.kind is InstrumentKind.OPTION and bid > 50 * inst.tick_paise and ask > 0:
                    return inst, bid, ask
        time.sleep(0.05)
    raise AssertionError("no quoted option")


def atm_option(fake: FakeAngelOne) -> Instrument:
    """A quoted option whose strike is nearest its index (it stays in the quoted window)."""
    with fake.venue._lock:
        b = fake.venue.board
        spot = {
            i.underlying: int(b.ltp[fake.venue._index[i.token]])
            for i in fake.venue.universe
            if i.kind is InstrumentKind.INDEX
        }
        quoted = [
            i
            for i in fake.venue.universe
            if i.kind is InstrumentKind.OPTION
            and int(b.ask[fake.venue._index[i.token]]) > 0
            and int(b.bid[fake.venue._index[i.token]]) > 0
        ]
    return min(quoted, key=lambda i: (abs((i.strike_paise or 0) - spot[i.underlying]), i.expiry))


def order_params(inst: Instrument, tag: str, **kw: Any) -> dict[str, Any]:
    p: dict[str, Any] = {
        "variety": "NORMAL",
        "tradingsymbol": inst.symbol,
        "symboltoken": inst.token,
        "transactiontype": "BUY",
        "exchange": "NFO",
        "ordertype": "LIMIT",
        "producttype": "CARRYFORWARD",
        "duration": "DAY",
        "price": "0",
        "quantity": str(inst.lot_size),
        "ordertag": tag,
    }
    p.update(kw)
    return p


def book_row(api: Any, orderid: str) -> dict[str, Any]:
    book = api.orderBook()
    assert book["status"] is True, book
    rows = [r for r in book["data"] or [] if r["orderid"] == orderid]
    assert len(rows) == 1
    return rows[0]


def wait_for(predicate: Any, timeout_s: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def control(fake: FakeAngelOne, body: Any, method: str = "POST") -> tuple[int, Any]:
    req = urllib.request.Request(
        fake.root_url + "/__fake__/faults",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# ---- login and tokens ----------------------------------------------------------------------------


def test_login_with_totp_profile_and_logs_stay_in_cwd(connect: Any, client_cwd: Any) -> None:
    api = connect(login=False)
    answer = api.generateSession(CLIENT, MPIN, pyotp.TOTP(TOTP_SECRET).now())
    assert answer["status"] is True
    data = answer["data"]
    assert data["clientcode"] == CLIENT
    assert data["jwtToken"].startswith("Bearer ") and len(data["jwtToken"]) > 40
    assert data["refreshToken"] and data["feedToken"]
    assert api.getProfile(api.refresh_token)["data"]["clientcode"] == CLIENT
    # the client's log (with secrets) goes to this private folder -- or, once the adapter has
    # loaded the client in this process, to the adapter's own private folder: never to the
    # original working directory (the client_cwd fixture checks that)


def test_bad_totp_and_bad_mpin(connect: Any) -> None:
    api = connect(login=False)
    now = pyotp.TOTP(TOTP_SECRET).now()
    wrong = f"{(int(now) + 1) % 1_000_000:06d}"
    answer = api.generateSession(CLIENT, MPIN, wrong)
    assert answer["status"] is False and answer["errorcode"] == "AB1050"
    answer = api.generateSession(CLIENT, "0000", now)
    assert answer["status"] is False and answer["errorcode"] == "AB1000"
    assert api.access_token is None


def test_secure_routes_check_token_and_key(connect: Any, smartapi: SmartApiModules) -> None:
    api = connect(login=False)
    answer = api.orderBook()
    assert answer == {
        "success": False,
        "message": "Invalid Token",
        "errorCode": "AG8003",
        "data": "",
    }
    api.setAccessToken("not-a-token")
    assert api.orderBook()["errorCode"] == "AG8001"
    good = connect()
    good.privateKey = "wrong"
    assert good.orderBook()["errorCode"] == "AG8004"


def test_refresh_then_logout_invalidates(connect: Any) -> None:
    api = connect()
    old = api.access_token
    answer = api.generateToken(api.refresh_token)
    assert answer["status"] is True and api.access_token != old
    assert api.orderBook()["status"] is True
    stale = connect(login=False)
    stale.setAccessToken(old)
    assert stale.orderBook()["errorCode"] == "AG8001"
    assert api.terminateSession(CLIENT)["status"] is True
    assert api.orderBook()["errorCode"] == "AG8001"


# ---- orders --------------------------------------------------------------------------------------


def test_place_modify_cancel_in_order_book(connect: Any, fake: FakeAngelOne) -> None:
    api = connect()
    inst, bid, _ = quoted_option(fake)
    far = bid - 40 * inst.tick_paise  # rests well under the bid
    answer = api.placeOrderFullResponse(order_params(inst, "PMC1", price=f"{far / 100:.2f}"))
    assert answer["status"] is True and answer["message"] == "SUCCESS"
    orderid, unique = answer["data"]["orderid"], answer["data"]["uniqueorderid"]
    assert orderid.isdigit() and len(orderid) == 15 and len(unique) == 36
    row = wait_for(lambda: (r := book_row(api, orderid))["status"] == "open" and r)
    assert row["ordertag"] == "PMC1" and row["uniqueorderid"] == unique
    assert row["quantity"] == str(inst.lot_size) and row["filledshares"] == "0"
    assert row["price"] == pytest.approx(far / 100)
    assert fake.venue.exchange.order("PMC1") is not None  # ordertag is the client order id

    lower = far - 2 * inst.tick_paise
    mod = api.modifyOrder(order_params(inst, "PMC1", orderid=orderid, price=f"{lower / 100:.2f}"))
    assert mod["status"] is True and mod["data"]["orderid"] == orderid
    wait_for(lambda: book_row(api, orderid)["price"] == pytest.approx(lower / 100))

    cancel = api.cancelOrder(orderid, "NORMAL")
    assert cancel["status"] is True
    row = wait_for(lambda: (r := book_row(api, orderid))["status"] == "cancelled" and r)
    assert row["orderstatus"] == "cancelled" and row["unfilledshares"] == str(inst.lot_size)

    assert api.cancelOrder("999", "NORMAL")["errorcode"] == "AB1013"
    bad = api.placeOrderFullResponse(order_params(inst, "X" * 25, price="1"))
    assert bad["status"] is False and bad["errorcode"] == "AB4008"
    bad = api.placeOrderFullResponse(order_params(inst, "BADV", variety="WEIRD", price="1"))
    assert bad["errorcode"] == "AB1008"
    bad = api.placeOrderFullResponse(order_params(inst, "BADT", symboltoken="1", price="1"))
    assert bad["errorcode"] == "AB4006"


def test_fill_reaches_trade_book_positions_and_rms(connect: Any, fake: FakeAngelOne) -> None:
    api = connect()
    inst, _, _ = quoted_option(fake)
    answer = api.placeOrderFullResponse(order_params(inst, "FILL1", ordertype="MARKET"))
    orderid = answer["data"]["orderid"]
    row = wait_for(lambda: (r := book_row(api, orderid))["status"] == "complete" and r)
    assert row["filledshares"] == str(inst.lot_size) and row["averageprice"] > 0
    trades = api.tradeBook()
    mine = [t for t in trades["data"] if t["orderid"] == orderid]
    assert sum(int(t["fillsize"]) for t in mine) == inst.lot_size
    assert mine[0]["tradingsymbol"] == inst.symbol and mine[0]["transactiontype"] == "BUY"
    positions = api.position()["data"]
    pos = [p for p in positions if p["symboltoken"] == inst.token]
    assert int(pos[0]["netqty"]) >= inst.lot_size and pos[0]["producttype"] == "CARRYFORWARD"
    rms = api.rmsLimit()
    assert rms["status"] is True and float(rms["data"]["net"]) > 0


# ---- market data ---------------------------------------------------------------------------------


def test_ltp_quote_candles_search_and_scrip_master(connect: Any, fake: FakeAngelOne) -> None:
    api = connect()
    inst, _, _ = quoted_option(fake)
    i = fake.venue._index[inst.token]
    before = int(fake.venue.board.ltp[i])
    ltp = api.ltpData("NFO", inst.symbol, inst.token)
    after = int(fake.venue.board.ltp[i])
    assert ltp["status"] is True
    assert round(ltp["data"]["ltp"] * 100) in (before, after)

    full = api.getMarketData("FULL", {"NFO": [inst.token, "1"]})
    q = full["data"]["fetched"][0]
    assert q["symbolToken"] == inst.token and q["ltp"] > 0
    assert (
        len(q["depth"]["buy"]) == 5
        and q["depth"]["buy"][0]["price"] < q["depth"]["sell"][0]["price"]
    )
    assert full["data"]["unfetched"][0]["symbolToken"] == "1"
    assert set(api.getMarketData("LTP", {"NFO": [inst.token]})["data"]["fetched"][0]) == {
        "exchange",
        "tradingSymbol",
        "symbolToken",
        "ltp",
    }

    index = next(i for i in fake.venue.universe if i.kind is InstrumentKind.INDEX)
    candles = api.getCandleData(
        {
            "exchange": "NSE",
            "symboltoken": index.token,
            "interval": "ONE_MINUTE",
            "fromdate": f"{DAY} 09:15",
            "todate": f"{DAY} 15:30",
        }
    )
    rows = candles["data"]
    assert candles["status"] is True and len(rows) >= 10
    assert rows[0][0] == f"{DAY}T09:15:00+05:30"
    assert rows[1][0] == f"{DAY}T09:16:00+05:30"
    for _, o, h, lo, c, v in rows:
        assert lo <= min(o, c) <= max(o, c) <= h and v >= 0
    five = api.getCandleData(
        {
            "exchange": "NSE",
            "symboltoken": index.token,
            "interval": "FIVE_MINUTE",
            "fromdate": f"{DAY} 09:15",
            "todate": f"{DAY} 15:30",
        }
    )["data"]
    first = five[0][0]
    assert first[14:16] in ("15", "20", "25", "30", "35")  # buckets from the open, 5 min wide
    in_first = [
        r
        for r in rows
        if r[0][:14] == first[:14] and int(first[14:16]) <= int(r[0][14:16]) < int(first[14:16]) + 5
    ]
    assert five[0][2] == max(r[2] for r in in_first) and five[0][4] == in_first[-1][4]
    too_long = api.getCandleData(
        {
            "exchange": "NFO",
            "symboltoken": inst.token,
            "interval": "ONE_MINUTE",
            "fromdate": "2026-09-01 09:15",
            "todate": f"{DAY} 15:30",
        }
    )
    assert too_long["status"] is False and "30 days" in too_long["message"]

    found = api.searchScrip("NFO", inst.symbol[:-2])
    assert any(r["symboltoken"] == inst.token for r in found["data"])

    with urllib.request.urlopen(fake.scrip_master_url, timeout=5) as r:
        master = json.loads(r.read())
    assert all(isinstance(v, str) for row in master for v in row.values())
    contracts = Settings().market.synthetic.contracts
    assert len(parse_scrip_master(master, contracts)) == len(fake.venue.universe)


# ---- websockets ----------------------------------------------------------------------------------


def test_market_websocket_ticks_decode_to_synthetic_market(
    connect: Any, fake: FakeAngelOne, smartapi: SmartApiModules
) -> None:
    api = connect()
    quoted_option(fake)
    inst = atm_option(fake)
    index = next(i for i in fake.venue.universe if i.kind is InstrumentKind.INDEX)
    ticks: list[dict[str, Any]] = []
    closed = threading.Event()

    class Feed(smartapi.SmartWebSocketV2):  # type: ignore[misc,name-defined]
        ROOT_URI = fake.feed_url

        def on_open(self, wsapp: Any) -> None:
            self.subscribe("t1", 3, [{"exchangeType": 2, "tokens": [inst.token]}])
            self.subscribe("t2", 1, [{"exchangeType": 1, "tokens": [index.token]}])

        def on_data(self, wsapp: Any, data: Any) -> None:
            ticks.append(data)

        def on_error(self, *args: Any) -> None:
            closed.set()

        def on_close(self, *args: Any) -> None:
            closed.set()

    Feed.input_request_dict = {}  # the library shares subscriptions between instances
    ws = Feed(
        "Bearer " + api.access_token,
        API_KEY,
        CLIENT,
        api.feed_token,
        max_retry_attempt=0,
        retry_delay=0,
    )
    t = threading.Thread(target=ws.connect, daemon=True)
    t.start()
    wait_for(lambda: len([x for x in ticks if x["token"] == inst.token]) >= 3, 10)
    wait_for(lambda: any(x["token"] == index.token for x in ticks), 5)

    # every tick is the synthetic market's value at the tick's exchange time
    feed, _, _, _ = open_feed(Settings(), DAY, DAY)
    last_ms = max(x["exchange_timestamp"] for x in ticks)
    seen: dict[tuple[str, int], tuple[int, int, int]] = {}
    pos = {fake.venue._index[inst.token]: inst.token, fake.venue._index[index.token]: index.token}
    for s in feed:
        if s.ts_ns // 1_000_000 > last_ms:
            break
        for k, ix in enumerate(s.idx):
            if int(ix) in pos:
                key = (pos[int(ix)], s.ts_ns // 1_000_000)
                seen[key] = (int(s.ltp_paise[k]), int(s.bid_paise[k]), int(s.ask_paise[k]))
    snaps = [x for x in ticks if x["token"] == inst.token]
    for x in ticks:
        ltp, bid, ask = seen[(x["token"], x["exchange_timestamp"])]
        assert x["last_traded_price"] == ltp
    for x in snaps:
        _, bid, ask = seen[(x["token"], x["exchange_timestamp"])]
        assert x["subscription_mode"] == 3 and x["exchange_type"] == 2
        assert x["best_5_buy_data"][0]["price"] == bid
        assert x["best_5_sell_data"][0]["price"] == ask
        assert len(x["best_5_buy_data"]) == 5
    assert [x["sequence_number"] for x in ticks] == sorted(x["sequence_number"] for x in ticks)
    assert any(x["subscription_mode"] == 1 and x["exchange_type"] == 1 for x in ticks)

    # the drop fault closes the socket under the client
    fake.add_fault({"kind": "drop_market_ws"})
    assert closed.wait(5)
    ws.close_connection()
    t.join(5)


def test_order_update_websocket_statuses(
    connect: Any, fake: FakeAngelOne, smartapi: SmartApiModules
) -> None:
    api = connect()
    inst, bid, _ = quoted_option(fake)
    messages: list[dict[str, Any]] = []
    closed = threading.Event()

    class Updates(smartapi.SmartWebSocketOrderUpdate):  # type: ignore[misc,name-defined]
        WEBSOCKET_URI = fake.order_feed_url
        MAX_CONNECTION_RETRY_ATTEMPTS = 0

        def on_data(self, wsapp: Any, message: Any, data_type: Any, flag: Any) -> None:
            messages.append(json.loads(message))

        def on_close(self, wsapp: Any, code: Any, msg: Any) -> None:
            closed.set()

    ws = Updates("Bearer " + api.access_token, API_KEY, CLIENT, api.feed_token)
    t = threading.Thread(target=ws.connect, daemon=True)
    t.start()
    wait_for(lambda: messages)
    assert messages[0]["order-status"] == "AB00" and messages[0]["user-id"] == CLIENT

    price = bid - 40 * inst.tick_paise
    orderid = api.placeOrder(order_params(inst, "OWS1", price=f"{price / 100:.2f}"))
    wait_for(lambda: book_row(api, orderid)["status"] == "open")
    api.modifyOrder(
        order_params(inst, "OWS1", orderid=orderid, price=f"{(price - inst.tick_paise) / 100:.2f}")
    )
    api.cancelOrder(orderid, "NORMAL")

    def codes() -> list[str]:
        return [m["order-status"] for m in messages if m["orderData"].get("orderid") == orderid]

    wait_for(lambda: "AB02" in codes())
    got = codes()
    assert got[0] in ("AB09", "AB01") and "AB01" in got
    assert got.index("AB01") < got.index("AB04") < got.index("AB02")
    last = [m for m in messages if m["order-status"] == "AB02"][-1]["orderData"]
    assert last["ordertag"] == "OWS1" and last["orderstatus"] == "cancelled"

    fake.add_fault({"kind": "drop_order_ws"})
    assert closed.wait(5)
    t.join(5)


def test_websocket_refuses_bad_feed_token(connect: Any, fake: FakeAngelOne) -> None:
    import websocket

    api = connect()
    with pytest.raises(websocket.WebSocketBadStatusException):
        websocket.create_connection(
            fake.feed_url,
            header={
                "Authorization": api.access_token,
                "x-api-key": API_KEY,
                "x-client-code": CLIENT,
                "x-feed-token": "wrong",
            },
            timeout=5,
        )
    ok = websocket.create_connection(
        fake.feed_url,
        header={
            "Authorization": api.access_token,
            "x-api-key": API_KEY,
            "x-client-code": CLIENT,
            "x-feed-token": api.feed_token,
        },
        timeout=5,
    )
    ok.send("ping")
    assert ok.recv() == "pong"
    ok.close()


# ---- faults --------------------------------------------------------------------------------------


def test_timeout_with_order_placed_but_answer_lost(connect: Any, fake: FakeAngelOne) -> None:
    api = connect(timeout=1)
    inst, bid, _ = quoted_option(fake)
    status, _ = control(fake, {"kind": "delay", "route": "placeOrder", "seconds": 2.5})
    assert status == 200
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.placeOrder(
            order_params(inst, "LOST1", price=f"{(bid - 40 * inst.tick_paise) / 100:.2f}")
        )
    book = api.orderBook()["data"]
    assert [r["ordertag"] for r in book].count("LOST1") == 1  # found by ordertag: no re-send

    control(fake, {"kind": "delay", "route": "placeOrder", "seconds": 1.5, "process": False})
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.placeOrder(order_params(inst, "GONE1", price="1"))
    assert "GONE1" not in [r["ordertag"] for r in api.orderBook()["data"]]


def test_error_codes_reject_and_rate_limit(
    connect: Any, fake: FakeAngelOne, smartapi: SmartApiModules
) -> None:
    api = connect()
    inst, _bid, _ = quoted_option(fake)
    control(fake, {"kind": "error", "route": "getOrderBook", "code": "AB1004"})
    first = api.orderBook()
    assert first["status"] is False and first["errorcode"] == "AB1004"
    assert api.orderBook()["status"] is True  # only the next call

    control(fake, {"kind": "error", "route": "placeOrder", "code": "AB2001"})
    answer = api.placeOrderFullResponse(order_params(inst, "E2001", price="1"))
    assert answer["errorcode"] == "AB2001"
    assert "E2001" not in [r["ordertag"] for r in api.orderBook()["data"]]

    control(fake, {"kind": "reject", "reason": "RMS:Margin Exceeds"})
    answer = api.placeOrderFullResponse(order_params(inst, "REJ1", price="1"))
    assert answer["status"] is True
    row = book_row(api, answer["data"]["orderid"])
    assert row["status"] == "rejected" and row["text"] == "RMS:Margin Exceeds"

    control(fake, {"kind": "rate_limit", "route": "getPosition"})
    with pytest.raises(smartapi.exceptions.DataException, match="exceeding access rate"):
        api.position()
    assert api.position()["status"] is True

    control(fake, {"kind": "rate_limits", "enabled": True})
    time.sleep(1.0)
    api.tradeBook()
    with pytest.raises(smartapi.exceptions.DataException):
        api.tradeBook()  # 1 per second


def test_expired_token_then_refresh(connect: Any, fake: FakeAngelOne) -> None:
    api = connect()
    control(fake, {"kind": "expire_token"})
    answer = api.orderBook()
    assert answer["success"] is False and answer["errorCode"] == "AG8002"
    assert api.generateToken(api.refresh_token)["status"] is True
    assert api.orderBook()["status"] is True


def test_control_api_validates(fake: FakeAngelOne) -> None:
    status, answer = control(fake, {"kind": "explode"})
    assert status == 400 and answer["field"] == "kind"
    status, answer = control(fake, {"kind": "delay", "seconds": -1})
    assert status == 400 and answer["field"] == "seconds"
    status, answer = control(fake, [{"kind": "error", "route": "quote", "count": 2}])
    assert status == 200 and answer["faults"][0]["count"] == 2
    status, answer = control(fake, None, method="DELETE")
    assert status == 200 and answer["faults"] == []
