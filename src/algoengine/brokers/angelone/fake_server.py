"""A fake Angel One (SmartAPI) on 127.0.0.1, for tests and for trying live mode here.

:class:`FakeAngelOne` speaks the REST routes, envelopes, error shapes and websocket protocols
of Angel One's SmartAPI (as ``smartapi-python`` 1.5.5 uses them; ``shared/ANGELONE.md``) over
one stdlib ``ThreadingHTTPServer``. Orders go to the paper exchange of a
:class:`~algoengine.brokers.paper.server.PaperVenueServer` (composed, not copied: its exchange,
its synthetic market of the day on an accelerated :class:`~algoengine.engine.clock.RealClock`
and its quote board). The venue also serves its own paper JSON API on another free port
(:attr:`FakeAngelOne.venue`'s ``url``), which tests may use to look at the exchange directly.

Units on the Angel One wire are Angel One's: prices in rupees (JSON numbers, or strings in the
order/trade/position books), quantities in units; the binary ticks carry paise.

Routes (``S`` = ``/rest/secure/angelbroking``; every ``S`` route checks
``Authorization: Bearer <jwt>`` and ``X-PrivateKey``)::

    POST /rest/auth/angelbroking/user/v1/loginByPassword   {clientcode, password, totp}
    POST /rest/auth/angelbroking/jwt/v1/generateTokens     {refreshToken}
    GET  S/user/v1/getProfile      POST S/user/v1/logout    GET S/user/v1/getRMS
    POST S/order/v1/placeOrder | modifyOrder | cancelOrder
    GET  S/order/v1/getOrderBook | getTradeBook | getPosition
    POST S/order/v1/getLtpData | searchScrip   POST S/market/v1/quote
    POST S/historical/v1/getCandleData
    GET  <scrip_master_path>   (no auth; default /OpenAPI_File/files/OpenAPIScripMaster.json)
    GET  /smart-stream         market-feed websocket (SmartWebSocketV2)
    GET  /smart-order-update   order-update websocket (SmartWebSocketOrderUpdate)

Envelopes: success ``{"status": true, "message": "SUCCESS", "errorcode": "", "data": ...}``;
failure ``{"status": false, "message": ..., "errorcode": "AB....", "data": null}``; gateway
auth failures ``{"success": false, "message": ..., "errorCode": "AG800x", "data": ""}`` with
HTTP 401 (AG8001 invalid token, AG8002 expired, AG8003 missing, AG8004 bad API key).

Orders: ``ordertag`` is the exchange's client order id (when a tag is missing or was used
before, as Angel One allows, the exchange gets a generated id and the book still shows the
tag: a blind re-send after a timeout makes a duplicate, as at Angel One). ``orderid`` is 15
digits, ``uniqueorderid`` a UUID. Book statuses: ``"open pending"`` (received, not arrived),
``"open"``, ``"trigger pending"``, ``"complete"``, ``"cancelled"``, ``"rejected"`` (``text``
is the reason). The order-update websocket sends ``{"user-id", "status-code": "200",
"order-status": "AB..", "error-message", "orderData": <book record>}``: AB00 on connect, AB09
open pending, AB01 open, AB10 trigger pending, AB05 complete, AB02 cancelled, AB03 rejected,
AB04 modified (``orderstatus`` ``"modified"``).

Market feed: JSON ``{"correlationID", "action": 1|0, "params": {"mode": 1|2|3, "tokenList":
[{"exchangeType": 1|2, "tokens": [...]}]}}``; binary little-endian packets (LTP 51 bytes,
QUOTE 123, SNAP_QUOTE 379, byte offsets of ANGELONE.md), one at subscription and then whenever
the instrument's quote changes (polled every 20 ms of real time). A text ``"ping"`` is
answered ``"pong"``; websocket ping frames get pong frames. The SNAP_QUOTE depth is five
buy entries (flag 1) then five sell entries (flag 0); OI change is a float64 (the client
library unpacks it as int64: ignore that field).

Control API (no auth; JSON)::

    POST   /__fake__/faults   one fault object or a list of them -> {"ok": true, "faults": [...]}
    GET    /__fake__/faults   -> {"faults": [...], "rate_limits": bool}
    DELETE /__fake__/faults   clear all pending faults
    GET    /__fake__/state    -> {"now_ns", "day", "orders", "urls"}

Faults (``route`` is the last path segment, e.g. ``"placeOrder"``, or ``"*"``; ``count``
defaults to 1)::

    {"kind": "delay", "route", "seconds", "count", "process": true}
        sleep ``seconds`` before answering; with ``process`` the request is carried out first
        (the order is placed but the client's timeout loses the answer), else the connection
        is closed with no answer and nothing done.
    {"kind": "error", "route", "code": "AB1004"|"AB2001"|..., "count", "message"?}
    {"kind": "reject", "reason", "count"}      the next orders are rejected with that text
    {"kind": "expire_token"}                   every issued jwt expires now (AG8002)
    {"kind": "rate_limit", "route", "count"}   the plain-text HTTP 403 rate-limit page
    {"kind": "drop_market_ws"} / {"kind": "drop_order_ws"}   close those websockets now
    {"kind": "mute_market_ws", "seconds"}      market websockets stay open but send no tick
                                               for that long (a silently stalled feed)
    {"kind": "rate_limits", "enabled": bool}   enforce Angel One's per-route limits (per s)

Run it as ``python -m algoengine.brokers.angelone.fake_server --api-key K --client-code C
--mpin 1234 --totp-secret BASE32 [--day D --speed S --port P --config FILE]``: it prints its
URLs (flushed) and serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import logging
import math
import queue
import secrets
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from algoengine.backtest.runner import paper_day
from algoengine.brokers.angelone.adapter import CANDLE_INTERVALS
from algoengine.brokers.angelone.ratelimit import RATE_LIMITS_PER_S  # Angel One's limits
from algoengine.brokers.paper.server import PaperVenueServer
from algoengine.domain.instruments import Instrument, InstrumentKind
from algoengine.domain.market_data import MarketSlice
from algoengine.domain.orders import (
    OrderRequest,
    OrderStatus,
    OrderStatusReport,
    OrderType,
    Side,
    TimeInForce,
)
from algoengine.errors import AlgoEngineError, ConfigurationError, ValidationError
from algoengine.market.scrip_master import to_scrip_master
from algoengine.market.synthetic import depth_levels
from algoengine.settings import Settings, load_settings

__all__ = ["RATE_LIMITS_PER_S", "FakeAngelOne", "main"]

log = logging.getLogger(__name__)

IST = timezone(timedelta(hours=5, minutes=30))
NS_PER_MIN = 60_000_000_000
_MAX_BODY = 256 * 1024
_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_POLL_S = 0.02
SECURE = "/rest/secure/angelbroking"
LOGIN = "/rest/auth/angelbroking/user/v1/loginByPassword"
TOKENS = "/rest/auth/angelbroking/jwt/v1/generateTokens"
RATE_LIMIT_PAGE = "Access denied because of exceeding access rate"


INTERVALS = CANDLE_INTERVALS  # Angel One's table, shared with the adapter

_BOOK_STATUS = {
    OrderStatus.NEW: "open pending",
    OrderStatus.SUBMITTED: "open pending",
    OrderStatus.TRIGGER_PENDING: "trigger pending",
    OrderStatus.OPEN: "open",
    OrderStatus.PARTIALLY_FILLED: "open",
    OrderStatus.FILLED: "complete",
    OrderStatus.CANCELLED: "cancelled",
    OrderStatus.REJECTED: "rejected",
}
_CODE_OF_STATUS = {
    "open pending": "AB09",
    "open": "AB01",
    "trigger pending": "AB10",
    "complete": "AB05",
    "cancelled": "AB02",
    "rejected": "AB03",
    "modified": "AB04",
}
_VARIETIES = ("NORMAL", "STOPLOSS", "ROBO", "AMO")
_PRODUCTS = ("DELIVERY", "CARRYFORWARD", "MARGIN", "INTRADAY", "BO")
_FAULT_KINDS = (
    "delay",
    "error",
    "reject",
    "expire_token",
    "rate_limit",
    "mute_market_ws",
    "drop_market_ws",
    "drop_order_ws",
    "rate_limits",
)


class _ApiError(Exception):
    """An Angel One error answer: the envelope with ``status: false``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _GatewayError(Exception):
    """A gateway (AG...) error: the other shape, HTTP 401."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class _Fault:
    kind: str
    route: str = "*"
    count: int = 1
    seconds: float = 0.0
    process: bool = True
    code: str = "AB1004"
    message: str = ""
    reason: str = ""

    def wire(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "route": self.route,
            "count": self.count,
            "seconds": self.seconds,
            "process": self.process,
            "code": self.code,
            "message": self.message,
            "reason": self.reason,
        }


@dataclass(slots=True)
class _Order:
    """What Angel One knows of an order beyond the exchange's report."""

    orderid: str
    uniqueorderid: str
    cid: str
    ordertag: str
    variety: str
    tradingsymbol: str
    symboltoken: str
    exchange: str
    producttype: str
    duration: str
    transactiontype: str
    ordertype: str
    qty: int
    price_paise: int | None
    trigger_paise: int | None
    created_ns: int
    text: str = ""
    rejected: bool = False  # refused by the fake (a reject fault), never sent
    updated_ns: int = 0


@dataclass(slots=True)
class _Bar:
    open: int
    high: int
    low: int
    close: int
    volume: int


@dataclass(slots=True)
class _Session:
    jwt: str
    refresh: str
    feed: str
    expired: bool = False


@dataclass(slots=True)
class _WsConn:
    kind: str  # "market" | "order"
    sock: socket.socket
    send_lock: threading.Lock = field(default_factory=threading.Lock)
    closed: threading.Event = field(default_factory=threading.Event)
    outbox: queue.Queue[str] = field(default_factory=queue.Queue)
    subs: dict[tuple[str, int], int] = field(default_factory=dict)  # (token, mode) -> sent ts
    seq: int = 0
    jwt: str = ""  # the session it authenticated with (dropped when that session logs out)

    def send(self, opcode: int, payload: bytes) -> bool:
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
        try:
            with self.send_lock:
                self.sock.sendall(head + payload)
            return True
        except OSError:
            self.closed.set()
            return False

    def drop(self) -> None:
        self.closed.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)


class _Venue(PaperVenueServer):
    """The paper venue with two hooks: minute bars for candles, order events for the fake."""

    owner: FakeAngelOne | None = None

    def _apply_slice(self, m: MarketSlice) -> None:
        super()._apply_slice(m)
        if self.owner is not None:
            self.owner._record_slice(m)

    def _collect(self) -> None:
        n = len(self._events)
        super()._collect()
        if self.owner is not None:
            for event in self._events[n:]:
                self.owner._on_event(event)


class FakeAngelOne:
    """A fake Angel One SmartAPI: REST, market websocket and order-update websocket (see the
    module docstring for the routes, the protocol and the control API).

    Parameters
    ----------
    settings
        Configures the paper exchange and the market (as for :class:`PaperVenueServer`).
    day
        The session to play (IST date; a trading day of the market).
    speed
        Simulated seconds per real second (> 0).
    anchor_wall_ns
        The real moment [UTC epoch ns] at which the simulated clock shows the session's open.
    api_key, client_code, mpin, totp_secret
        The one account the fake knows (``totp_secret`` base32, 26+ characters).
    host, port
        Where to listen (``port=0``: a free port).
    scrip_master_path
        The URL path of the instrument master JSON.
    funds_paise
        The account's cash for getRMS [paise].
    enforce_rate_limits
        Answer the 403 rate-limit page past :data:`RATE_LIMITS_PER_S` from the start.

    Raises
    ------
    ValidationError
        A malformed argument (names it).
    ConfigurationError
        ``day`` is not a trading day, or the market cannot be opened.
    """

    def __init__(
        self,
        settings: Settings,
        day: date,
        *,
        speed: float,
        anchor_wall_ns: int,
        api_key: str,
        client_code: str,
        mpin: str,
        totp_secret: str,
        host: str = "127.0.0.1",
        port: int = 0,
        scrip_master_path: str = "/OpenAPI_File/files/OpenAPIScripMaster.json",
        funds_paise: int = 100_000_000,
        enforce_rate_limits: bool = False,
    ) -> None:
        import pyotp

        for name, value in (
            ("api_key", api_key),
            ("client_code", client_code),
            ("mpin", mpin),
            ("totp_secret", totp_secret),
        ):
            if not isinstance(value, str) or not value:
                raise ValidationError(name, "***", "must be a non-empty string")
        try:
            base64.b32decode(totp_secret.upper() + "=" * (-len(totp_secret) % 8))
        except ValueError:
            raise ValidationError("totp_secret", "***", "must be base32") from None
        if len(totp_secret) < 26:
            raise ValidationError("totp_secret", "***", "must be 26+ base32 characters")
        if not isinstance(scrip_master_path, str) or not scrip_master_path.startswith("/"):
            raise ValidationError("scrip_master_path", scrip_master_path, "must start with /")
        if not isinstance(funds_paise, int) or isinstance(funds_paise, bool) or funds_paise < 0:
            raise ValidationError("funds_paise", funds_paise, "must be an integer >= 0")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ValidationError("port", port, "must be an integer in 0..65535")
        self.venue = _Venue(settings, day, speed=speed, anchor_wall_ns=anchor_wall_ns, host=host)
        self.venue.owner = self
        self.day = day
        self.api_key = api_key
        self.client_code = client_code
        self._mpin = mpin
        self._totp = pyotp.TOTP(totp_secret)
        self.scrip_master_path = scrip_master_path
        self.funds_paise = funds_paise
        self._address = (host, port)
        self._instruments: dict[str, Instrument] = {i.token: i for i in self.venue.universe}
        self._by_symbol: dict[str, Instrument] = {i.symbol: i for i in self.venue.universe}
        self._lock = threading.Lock()  # the fake's own state (never held while taking venue's)
        self._sessions: dict[str, _Session] = {}  # jwt -> session
        self._refresh: dict[str, _Session] = {}
        self._orders: dict[str, _Order] = {}  # orderid -> order
        self._by_cid: dict[str, _Order] = {}
        self._order_seq = 0
        self._faults: list[_Fault] = []
        self._rate_limits = bool(enforce_rate_limits)
        self._hits: dict[str, deque[float]] = {}
        self._bars: dict[int, dict[int, _Bar]] = {}  # universe index -> minute start -> bar
        self._day_ohlc: dict[int, list[int]] = {}  # index -> [open, high, low]
        self._last_volume: dict[int, int] = {}
        self._texts: dict[str, str] = {}  # cid -> reject reason
        self._ws: list[_WsConn] = []
        self._muted_until = 0.0  # monotonic: no ticks are sent before it (mute_market_ws)
        self._http: _FakeHttpServer | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    # ---- life ---------------------------------------------------------------------------------

    def start(self) -> tuple[str, int]:
        """Listen, start the venue's market; returns ``(host, port)``.

        Raises
        ------
        ConfigurationError
            The address cannot be listened on.
        """
        if self._stopped:
            raise ConfigurationError("fake angel one: a stopped server cannot start again")
        if self._http is None:
            try:
                self._http = _FakeHttpServer(self._address, _Handler, fake=self)
            except OSError as exc:
                raise ConfigurationError(f"port: cannot listen on {self._address}: {exc}") from exc
            self.venue.start()
            self._thread = threading.Thread(
                target=self._http.serve_forever,
                kwargs={"poll_interval": 0.1},
                name="fake-angelone",
                daemon=True,
            )
            self._thread.start()
        return self.address

    def stop(self) -> None:
        """Stop serving, close every websocket and stop the venue (idempotent)."""
        self._stopped = True
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        with self._lock:
            conns = list(self._ws)
        for c in conns:
            c.drop()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        self.venue.stop()

    def __enter__(self) -> FakeAngelOne:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` listened on."""
        if self._http is None:
            return self._address
        host, port = self._http.server_address[:2]
        return str(host), int(port)

    @property
    def root_url(self) -> str:
        """REST root for ``SmartConnect(root=...)``."""
        host, port = self.address
        return f"http://{host}:{port}"

    @property
    def feed_url(self) -> str:
        """Market websocket URL (``SmartWebSocketV2.ROOT_URI``)."""
        host, port = self.address
        return f"ws://{host}:{port}/smart-stream"

    @property
    def order_feed_url(self) -> str:
        """Order-update websocket URL (``SmartWebSocketOrderUpdate.WEBSOCKET_URI``)."""
        host, port = self.address
        return f"ws://{host}:{port}/smart-order-update"

    @property
    def scrip_master_url(self) -> str:
        """The instrument master's URL."""
        return self.root_url + self.scrip_master_path

    def now_ns(self) -> int:
        """The simulated time [UTC epoch ns]."""
        return self.venue.now_ns()

    def show_quote(self, token: str, bid_paise: int, ask_paise: int, qty: int = 1_000) -> None:
        """The market moves: the instrument's book shows this quote now (until the market's
        next slice of it), so that resting orders it crosses fill at once, and their updates
        go out on the order websocket as any fill's do. For scenarios whose timing a test
        must control (a fill that happens later than the order, at a known moment).

        Raises
        ------
        ValidationError
            An unknown token or a malformed price or quantity (names it).
        """
        v = self.venue
        idx = v._index.get(token)
        if idx is None:
            raise ValidationError("token", token, "not an instrument of this market")
        for name, value in (("bid_paise", bid_paise), ("ask_paise", ask_paise), ("qty", qty)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValidationError(name, value, "must be an integer > 0")
        if bid_paise >= ask_paise:
            raise ValidationError("ask_paise", ask_paise, "must be above bid_paise")
        with v._lock:
            now = v._catch_up()
            v._feeder.show_quote(idx, now, bid_paise, qty, ask_paise, qty)
            v._collect()

    # ---- faults -------------------------------------------------------------------------------

    def add_fault(self, spec: object) -> None:
        """Arm a fault (the control API's JSON object; see the module docstring).

        Raises
        ------
        ValidationError
            A malformed fault (names the field).
        """
        if not isinstance(spec, dict):
            raise ValidationError("fault", spec, "must be a JSON object")
        kind = spec.get("kind")
        if kind not in _FAULT_KINDS:
            raise ValidationError("kind", kind, f"must be one of {', '.join(_FAULT_KINDS)}")
        route = spec.get("route", "*")
        if not isinstance(route, str) or not route:
            raise ValidationError("route", route, "must be a route name or '*'")
        count = spec.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ValidationError("count", count, "must be an integer >= 1")
        seconds = spec.get("seconds", 0.0)
        if (
            not isinstance(seconds, int | float)
            or isinstance(seconds, bool)
            or not math.isfinite(seconds)
            or not 0 <= seconds <= 120
        ):
            raise ValidationError("seconds", seconds, "must be a number in [0, 120]")
        process = spec.get("process", True)
        if not isinstance(process, bool):
            raise ValidationError("process", process, "must be true or false")
        code = spec.get("code", "AB1004")
        if not isinstance(code, str) or not code:
            raise ValidationError("code", code, "must be an error code such as 'AB1004'")
        message = spec.get("message", "")
        reason = spec.get("reason", "")
        if not isinstance(message, str):
            raise ValidationError("message", message, "must be a string")
        if not isinstance(reason, str):
            raise ValidationError("reason", reason, "must be a string")
        if kind == "reject" and not reason:
            raise ValidationError("reason", reason, "a reject fault needs a reason text")
        if kind == "rate_limits":
            enabled = spec.get("enabled")
            if not isinstance(enabled, bool):
                raise ValidationError("enabled", enabled, "must be true or false")
            with self._lock:
                self._rate_limits = enabled
            return
        if kind == "expire_token":
            with self._lock:
                for s in self._sessions.values():
                    s.expired = True
            return
        if kind == "mute_market_ws":
            with self._lock:
                self._muted_until = time.monotonic() + float(seconds)
            return
        if kind in ("drop_market_ws", "drop_order_ws"):
            want = "market" if kind == "drop_market_ws" else "order"
            with self._lock:
                conns = [c for c in self._ws if c.kind == want]
            for c in conns:
                c.drop()
            return
        fault = _Fault(
            kind=kind,
            route=route,
            count=count,
            seconds=float(seconds),
            process=process,
            code=code,
            message=message,
            reason=reason,
        )
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        """Disarm every pending fault (rate limits keep their switch)."""
        with self._lock:
            self._faults.clear()

    def _take_fault(self, route: str, kinds: tuple[str, ...]) -> _Fault | None:
        with self._lock:
            for f in self._faults:
                if f.kind in kinds and f.route in (route, "*"):
                    f.count -= 1
                    if f.count <= 0:
                        self._faults.remove(f)
                    return f
        return None

    def _rate_limited(self, route: str) -> bool:
        limit = RATE_LIMITS_PER_S.get(route)
        if limit is None:
            return False
        now = time.monotonic()
        with self._lock:
            if not self._rate_limits:
                return False
            hits = self._hits.setdefault(route, deque())
            while hits and now - hits[0] >= 1.0:
                hits.popleft()
            if len(hits) >= limit:
                return True
            hits.append(now)
            return False

    # ---- the market hooks (venue lock held) ---------------------------------------------------

    def _record_slice(self, m: MarketSlice) -> None:
        idx = m.idx
        ltp = m.ltp_paise
        if m.bar_close and m.open_paise is not None and m.high_paise is not None:
            assert m.low_paise is not None
            start = m.ts_ns - NS_PER_MIN
            for k in range(len(idx)):
                i, close = int(idx[k]), int(ltp[k])
                if close <= 0:
                    continue
                o, h, lo = int(m.open_paise[k]), int(m.high_paise[k]), int(m.low_paise[k])
                vol = self._volume_delta(i, int(m.volume[k]))
                self._bars.setdefault(i, {})[start] = _Bar(
                    o, max(h, close), min(lo, close), close, vol
                )
                self._day(i, o, max(h, close), min(lo, close))
            return
        start = m.ts_ns - m.ts_ns % NS_PER_MIN
        for k in range(len(idx)):
            i, price = int(idx[k]), int(ltp[k])
            if price <= 0:
                continue
            vol = self._volume_delta(i, int(m.volume[k]))
            bars = self._bars.setdefault(i, {})
            bar = bars.get(start)
            if bar is None:
                bars[start] = _Bar(price, price, price, price, vol)
            else:
                bar.high, bar.low = max(bar.high, price), min(bar.low, price)
                bar.close = price
                bar.volume += vol
            self._day(i, price, price, price)

    def _volume_delta(self, i: int, cumulative: int) -> int:
        before = self._last_volume.get(i, 0)
        self._last_volume[i] = cumulative
        return max(cumulative - before, 0)

    def _day(self, i: int, o: int, h: int, lo: int) -> None:
        d = self._day_ohlc.get(i)
        if d is None:
            self._day_ohlc[i] = [o, h, lo]
        else:
            d[1], d[2] = max(d[1], h), min(d[2], lo)

    def _on_event(self, event: dict[str, Any]) -> None:
        payload = event.get("payload", {})
        cid = str(payload.get("client_order_id", ""))
        kind = str(event.get("kind", ""))
        if kind == "OrderRejected":
            self._texts[cid] = str(payload.get("reason", ""))
        with self._lock:
            order = self._by_cid.get(cid)
        if order is None:
            return
        order.updated_ns = int(payload.get("ts_ns", order.updated_ns))
        if kind in ("OrderModifyRejected", "OrderCancelRejected"):
            return
        report = self.venue._report(cid)
        status = "modified" if kind == "OrderModified" else self._status(order, report)
        self._push_order(order, report, status)

    # ---- orders -------------------------------------------------------------------------------

    @staticmethod
    def _status(order: _Order, report: OrderStatusReport | None) -> str:
        if order.rejected or report is None:
            return "rejected" if order.rejected else "open pending"
        return _BOOK_STATUS[report.status]

    def _push_order(self, order: _Order, report: OrderStatusReport | None, status: str) -> None:
        message = json.dumps(
            {
                "user-id": self.client_code,
                "status-code": "200",
                "order-status": _CODE_OF_STATUS.get(status, "AB01"),
                "error-message": order.text or self._texts.get(order.cid, ""),
                "orderData": self._record(order, report, status),
            }
        )
        with self._lock:
            conns = [c for c in self._ws if c.kind == "order" and not c.closed.is_set()]
        for c in conns:
            c.outbox.put(message)

    def _record(
        self, order: _Order, report: OrderStatusReport | None, status: str | None = None
    ) -> dict[str, Any]:
        """An order-book record (Angel One's field names; numbers partly strings)."""
        inst = self._instruments.get(order.symboltoken)
        filled, avg = self._fills(order.cid)
        qty = report.qty if report is not None else order.qty
        price = report.price_paise if report is not None else order.price_paise
        trigger = report.trigger_price_paise if report is not None else order.trigger_paise
        state = status or self._status(order, report)
        text = order.text or self._texts.get(order.cid, "")
        cancelled = qty - filled if state == "cancelled" else 0
        when = _angel_time(order.updated_ns or order.created_ns)
        return {
            "variety": order.variety,
            "ordertype": order.ordertype,
            "producttype": order.producttype,
            "duration": order.duration,
            "price": _rupees(price or 0),
            "triggerprice": _rupees(trigger or 0),
            "quantity": str(qty),
            "disclosedquantity": "0",
            "squareoff": 0.0,
            "stoploss": 0.0,
            "trailingstoploss": 0.0,
            "tradingsymbol": order.tradingsymbol,
            "transactiontype": order.transactiontype,
            "exchange": order.exchange,
            "symboltoken": order.symboltoken,
            "ordertag": order.ordertag,
            "instrumenttype": _itype(inst),
            "strikeprice": _rupees(inst.strike_paise or 0) if inst and inst.strike_paise else -1.0,
            "optiontype": inst.option_type.value if inst and inst.option_type else "",
            "expirydate": _expiry(inst),
            "lotsize": str(inst.lot_size) if inst else "1",
            "cancelsize": str(cancelled),
            "averageprice": avg,
            "filledshares": str(filled),
            "unfilledshares": str(max(qty - filled, 0)),
            "orderid": order.orderid,
            "text": text,
            "status": state,
            "orderstatus": state,
            "updatetime": when,
            "exchtime": when if report is not None else "",
            "exchorderupdatetime": when if report is not None else "",
            "fillid": "",
            "filltime": "",
            "parentorderid": "",
            "uniqueorderid": order.uniqueorderid,
            "exchangeorderid": report.venue_order_id if report is not None else "",
        }

    def _fills(self, cid: str) -> tuple[int, float]:
        qty = value = 0
        for t in self.venue._trades:
            if t.client_order_id == cid:
                qty += t.qty
                value += t.qty * t.price_paise
        return qty, round(value / qty / 100.0, 2) if qty else 0.0

    def _new_order(self, body: dict[str, Any]) -> _Order:
        variety = _field(body, "variety", "AB1008", str).upper()
        if variety not in _VARIETIES:
            raise _ApiError("AB1008", f"Invalid variety: {variety}")
        token = _field(body, "symboltoken", "AB4006", str)
        inst = self._instruments.get(token)
        if inst is None:
            raise _ApiError("AB4006", f"Invalid symboltoken: {token}")
        symbol = str(body.get("tradingsymbol", inst.symbol))
        if symbol != inst.symbol:
            raise _ApiError("AB1009", f"Symbol not found: {symbol}")
        product = _field(body, "producttype", "AB1012", str).upper()
        if product not in _PRODUCTS:
            raise _ApiError("AB1012", f"Invalid product type: {product}")
        tag = str(body.get("ordertag", "") or "")
        if len(tag) >= 20:
            raise _ApiError("AB4008", "ordertag length should be less than 20 characters")
        side = _field(body, "transactiontype", "AB1004", str).upper()
        otype = _field(body, "ordertype", "AB1004", str).upper()
        duration = str(body.get("duration", "DAY")).upper()
        if side not in ("BUY", "SELL"):
            raise _ApiError("AB1004", f"Invalid transactiontype: {side}")
        if otype not in OrderType.__members__:
            raise _ApiError("AB1004", f"Invalid ordertype: {otype}")
        if duration not in ("DAY", "IOC"):
            raise _ApiError("AB1004", f"Invalid duration: {duration}")
        qty = _number(body, "quantity", integer=True)
        price = _paise(body, "price") if OrderType(otype).has_limit_price else None
        trigger = _paise(body, "triggerprice") if OrderType(otype).is_stop else None
        with self._lock:
            self._order_seq += 1
            n = self._order_seq
            orderid = f"{self.day:%y%m%d}{n:09d}"
            cid = tag if tag and _ok_cid(tag) and tag not in self._by_cid else f"FA{orderid}"
            order = _Order(
                orderid=orderid,
                uniqueorderid=str(uuid.uuid4()),
                cid=cid,
                ordertag=tag,
                variety=variety,
                tradingsymbol=inst.symbol,
                symboltoken=token,
                exchange=str(body.get("exchange", inst.exchange)).upper(),
                producttype=product,
                duration=duration,
                transactiontype=side,
                ordertype=otype,
                qty=int(qty),
                price_paise=price,
                trigger_paise=trigger,
                created_ns=self.venue.now_ns(),
            )
        return order

    def _place(self, body: dict[str, Any]) -> dict[str, Any]:
        order = self._new_order(body)
        request: OrderRequest | None = None
        reject = self._take_fault("placeOrder", ("reject",))
        if reject is not None:
            order.rejected, order.text = True, reject.reason
        else:
            try:
                request = OrderRequest(
                    client_order_id=order.cid,
                    instrument_token=order.symboltoken,
                    side=Side(order.transactiontype),
                    order_type=OrderType(order.ordertype),
                    qty=order.qty,
                    price_paise=order.price_paise,
                    trigger_price_paise=order.trigger_paise,
                    tif=TimeInForce(order.duration),
                    strategy_id="angelone",
                )
            except ValidationError as exc:
                raise _ApiError("AB1004", f"Invalid {exc.field}: {exc}") from None
        with self._lock:
            self._orders[order.orderid] = order
            self._by_cid[order.cid] = order
        if request is not None:
            self.venue._submit(request)
        with self.venue._lock:
            report = self.venue._report(order.cid)
            if report is None or report.status is OrderStatus.SUBMITTED:
                self._push_order(order, report, self._status(order, report))
            if order.rejected:
                self._push_order(order, None, "rejected")
        log.info("fake angel one: order placed", extra={"client_order_id": order.cid})
        return {
            "script": order.tradingsymbol,
            "orderid": order.orderid,
            "uniqueorderid": order.uniqueorderid,
        }

    def _find(self, body: dict[str, Any]) -> _Order:
        orderid = _field(body, "orderid", "AB1013", str)
        with self._lock:
            order = self._orders.get(orderid)
        if order is None:
            raise _ApiError("AB1013", f"Order not found: {orderid}")
        return order

    def _modify(self, body: dict[str, Any]) -> dict[str, Any]:
        order = self._find(body)
        if order.rejected:
            raise _ApiError("AB1004", "Order is rejected: cannot modify")
        otype = OrderType(
            str(body.get("ordertype", order.ordertype)).upper()
            if str(body.get("ordertype", order.ordertype)).upper() in OrderType.__members__
            else order.ordertype
        )
        qty = int(_number(body, "quantity", integer=True)) if "quantity" in body else None
        price = _paise(body, "price") if "price" in body and otype.has_limit_price else None
        trigger = _paise(body, "triggerprice") if "triggerprice" in body and otype.is_stop else None
        self.venue._modify(order.cid, qty, price, trigger)
        return {"orderid": order.orderid, "uniqueorderid": order.uniqueorderid}

    def _cancel(self, body: dict[str, Any]) -> dict[str, Any]:
        order = self._find(body)
        if not order.rejected:
            self.venue._cancel(order.cid)
        return {"orderid": order.orderid, "uniqueorderid": order.uniqueorderid}

    def _order_book(self) -> list[dict[str, Any]] | None:
        with self._lock:
            orders = list(self._orders.values())
        with self.venue._lock:
            self.venue._catch_up()
            rows = [self._record(o, self.venue._report(o.cid)) for o in orders]
        return rows or None

    def _trade_book(self) -> list[dict[str, Any]] | None:
        with self._lock:
            by_cid = dict(self._by_cid)
        with self.venue._lock:
            self.venue._catch_up()
            trades = list(self.venue._trades)
        rows = []
        for t in trades:
            order = by_cid.get(t.client_order_id)
            if order is None:
                continue
            inst = self._instruments.get(t.instrument_token)
            rows.append(
                {
                    "exchange": order.exchange,
                    "producttype": order.producttype,
                    "tradingsymbol": order.tradingsymbol,
                    "instrumenttype": _itype(inst),
                    "symbolgroup": "XX",
                    "strikeprice": _rupees(inst.strike_paise or 0) if inst else -1.0,
                    "optiontype": inst.option_type.value if inst and inst.option_type else "",
                    "expirydate": _expiry(inst),
                    "marketlot": str(inst.lot_size) if inst else "1",
                    "precision": "2",
                    "multiplier": "-1",
                    "tradevalue": _rupees(t.qty * t.price_paise),
                    "transactiontype": t.side.value,
                    "fillprice": _rupees(t.price_paise),
                    "fillsize": str(t.qty),
                    "orderid": order.orderid,
                    "fillid": t.trade_id,
                    "filltime": _ist(t.ts_ns).strftime("%H:%M:%S"),
                }
            )
        return rows or None

    def _positions(self) -> list[dict[str, Any]] | None:
        with self._lock:
            by_cid = dict(self._by_cid)
        with self.venue._lock:
            self.venue._catch_up()
            trades = list(self.venue._trades)
            ltps = {tok: int(self.venue.board.ltp[i]) for tok, i in self.venue._index.items()}
        acc: dict[tuple[str, str], list[int]] = {}  # (token, product) -> bq, bv, sq, sv
        for t in trades:
            order = by_cid.get(t.client_order_id)
            product = order.producttype if order else "CARRYFORWARD"
            a = acc.setdefault((t.instrument_token, product), [0, 0, 0, 0])
            if t.side is Side.BUY:
                a[0] += t.qty
                a[1] += t.qty * t.price_paise
            else:
                a[2] += t.qty
                a[3] += t.qty * t.price_paise
        rows = []
        for (token, product), (bq, bv, sq, sv) in acc.items():
            inst = self._instruments[token]
            net = bq - sq
            ltp = ltps.get(token, 0)
            matched = min(bq, sq)
            realised = (sv / sq - bv / bq) * matched if matched else 0.0
            open_value = (bv / bq if net > 0 else sv / sq if net < 0 else 0.0) * abs(net)
            unrealised = (ltp * net - math.copysign(open_value, net)) if net else 0.0
            rows.append(
                {
                    "exchange": inst.exchange,
                    "symboltoken": token,
                    "producttype": product,
                    "tradingsymbol": inst.symbol,
                    "symbolname": inst.underlying,
                    "instrumenttype": _itype(inst),
                    "strikeprice": f"{(inst.strike_paise or 0) / 100:.2f}",
                    "optiontype": inst.option_type.value if inst.option_type else "",
                    "expirydate": _expiry(inst),
                    "lotsize": str(inst.lot_size),
                    "buyqty": str(bq),
                    "sellqty": str(sq),
                    "buyamount": f"{bv / 100:.2f}",
                    "sellamount": f"{sv / 100:.2f}",
                    "buyavgprice": f"{bv / bq / 100:.2f}" if bq else "0.00",
                    "sellavgprice": f"{sv / sq / 100:.2f}" if sq else "0.00",
                    "netqty": str(net),
                    "netvalue": f"{(sv - bv) / 100:.2f}",
                    "netprice": f"{open_value / abs(net) / 100:.2f}" if net else "0.00",
                    "ltp": f"{ltp / 100:.2f}",
                    "realised": f"{realised / 100:.2f}",
                    "unrealised": f"{unrealised / 100:.2f}",
                    "pnl": f"{(realised + unrealised) / 100:.2f}",
                    "cfbuyqty": "0",
                    "cfsellqty": "0",
                }
            )
        return rows or None

    def _rms(self) -> dict[str, Any]:
        rows = self._positions() or []
        realised = sum(float(r["realised"]) for r in rows)
        unrealised = sum(float(r["unrealised"]) for r in rows)
        net = self.funds_paise / 100 + realised
        return {
            "net": f"{net:.4f}",
            "availablecash": f"{net:.4f}",
            "availableintradaypayin": "0.0000",
            "availablelimitmargin": "0.0000",
            "collateral": "0.0000",
            "m2munrealized": f"{unrealised:.4f}",
            "m2mrealized": f"{realised:.4f}",
            "utiliseddebits": "0.0000",
            "utilisedspan": None,
            "utilisedoptionpremium": None,
            "utilisedholdingsales": None,
            "utilisedexposure": None,
            "utilisedturnover": None,
            "utilisedpayout": "0.0000",
        }

    # ---- market data --------------------------------------------------------------------------

    def _quote_fields(self, token: str, mode: str) -> dict[str, Any]:
        inst = self._instruments[token]
        i = self.venue._index[token]
        b = self.venue.board
        ltp = int(b.ltp[i])
        o, h, lo = self._day_ohlc.get(i, [ltp, ltp, ltp])
        out: dict[str, Any] = {
            "exchange": inst.exchange,
            "tradingSymbol": inst.symbol,
            "symbolToken": token,
            "ltp": _rupees(ltp),
        }
        if mode in ("OHLC", "FULL"):
            out.update(open=_rupees(o), high=_rupees(h), low=_rupees(lo), close=_rupees(o))
        if mode == "FULL":
            bids, asks = self._depth(inst, i)
            ts = int(b.last_ts_ns[i])
            out.update(
                lastTradeQty=inst.lot_size,
                exchFeedTime=_ist(ts).strftime("%d-%b-%Y %H:%M:%S"),
                exchTradeTime=_ist(ts).strftime("%d-%b-%Y %H:%M:%S"),
                netChange=_rupees(ltp - o),
                percentChange=round((ltp - o) / o * 100, 2) if o else 0.0,
                avgPrice=_rupees(ltp),
                tradeVolume=int(b.volume[i]),
                opnInterest=int(b.oi[i]),
                lowerCircuit=_rupees(max(ltp // 2, 0)),
                upperCircuit=_rupees(ltp * 2),
                totBuyQuan=int(b.bid_qty[i]),
                totSellQuan=int(b.ask_qty[i]),
                **{"52WeekLow": _rupees(lo), "52WeekHigh": _rupees(h)},
                depth={
                    "buy": [{"price": _rupees(p), "quantity": q, "orders": 1} for p, q in bids],
                    "sell": [{"price": _rupees(p), "quantity": q, "orders": 1} for p, q in asks],
                },
            )
        return out

    def _depth(
        self, inst: Instrument, i: int
    ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        b = self.venue.board
        bids, asks = depth_levels(
            int(b.bid[i]),
            int(b.bid_qty[i]),
            int(b.ask[i]),
            int(b.ask_qty[i]),
            tick_paise=inst.tick_paise,
            lot_size=inst.lot_size,
        )
        pad = [(0, 0)] * 5
        return (bids + pad)[:5], (asks + pad)[:5]

    def _ltp(self, body: dict[str, Any]) -> dict[str, Any]:
        token = _field(body, "symboltoken", "AB4006", str)
        inst = self._instruments.get(token)
        if inst is None:
            raise _ApiError("AB4006", f"Invalid symboltoken: {token}")
        with self.venue._lock:
            self.venue._catch_up()
            q = self._quote_fields(token, "OHLC")
        return {
            "exchange": inst.exchange,
            "tradingsymbol": inst.symbol,
            "symboltoken": token,
            "open": q["open"],
            "high": q["high"],
            "low": q["low"],
            "close": q["close"],
            "ltp": q["ltp"],
        }

    def _market_quote(self, body: dict[str, Any]) -> dict[str, Any]:
        mode = _field(body, "mode", "AB1004", str).upper()
        if mode not in ("LTP", "OHLC", "FULL"):
            raise _ApiError("AB1004", f"Invalid mode: {mode}")
        tokens = body.get("exchangeTokens")
        if not isinstance(tokens, dict) or not all(isinstance(v, list) for v in tokens.values()):
            raise _ApiError("AB1004", "exchangeTokens must be {exchange: [tokens]}")
        fetched, unfetched = [], []
        with self.venue._lock:
            self.venue._catch_up()
            for exchange, toks in tokens.items():
                for tok in toks:
                    inst = self._instruments.get(str(tok))
                    if inst is None or inst.exchange != exchange:
                        unfetched.append(
                            {
                                "exchange": exchange,
                                "symbolToken": str(tok),
                                "message": "Invalid Token",
                                "errorCode": "AB4006",
                            }
                        )
                    else:
                        fetched.append(self._quote_fields(str(tok), mode))
        return {"fetched": fetched, "unfetched": unfetched}

    def _candles(self, body: dict[str, Any]) -> list[list[Any]]:
        token = _field(body, "symboltoken", "AB4006", str)
        if token not in self._instruments:
            raise _ApiError("AB4006", f"Invalid symboltoken: {token}")
        interval = _field(body, "interval", "AB1004", str).upper()
        if interval not in INTERVALS:
            raise _ApiError("AB1004", f"Invalid interval: {interval}")
        start, end = _when(body, "fromdate"), _when(body, "todate")
        minutes, max_days = INTERVALS[interval]
        if end < start:
            raise _ApiError("AB1004", "todate must not be before fromdate")
        if end - start > max_days * 86_400 * 10**9:
            raise _ApiError("AB1004", f"{interval}: at most {max_days} days per request")
        i = self.venue._index[token]
        with self.venue._lock:
            now = self.venue._catch_up()
            bars = sorted((self._bars.get(i) or {}).items())
        open_ns = int(self.venue.clock.start_ns)
        out: dict[int, _Bar] = {}
        for t, bar in bars:
            if t + NS_PER_MIN > now:  # not finished yet
                continue
            bucket = open_ns + (t - open_ns) // (minutes * NS_PER_MIN) * minutes * NS_PER_MIN
            if not start <= bucket <= end:
                continue
            agg = out.get(bucket)
            if agg is None:
                out[bucket] = _Bar(bar.open, bar.high, bar.low, bar.close, bar.volume)
            else:
                agg.high, agg.low = max(agg.high, bar.high), min(agg.low, bar.low)
                agg.close = bar.close
                agg.volume += bar.volume
        return [
            [
                _ist(t).isoformat(),
                _rupees(b.open),
                _rupees(b.high),
                _rupees(b.low),
                _rupees(b.close),
                b.volume,
            ]
            for t, b in sorted(out.items())
        ]

    def _search(self, body: dict[str, Any]) -> list[dict[str, str]]:
        exchange = _field(body, "exchange", "AB1004", str).upper()
        text = _field(body, "searchscrip", "AB1004", str).upper()
        return [
            {"exchange": i.exchange, "tradingsymbol": i.symbol, "symboltoken": i.token}
            for i in self.venue.universe
            if i.exchange == exchange and text in i.symbol.upper()
        ]

    # ---- auth ---------------------------------------------------------------------------------

    def _login(self, body: dict[str, Any]) -> dict[str, Any]:
        code = str(body.get("clientcode", ""))
        pin = str(body.get("password", ""))
        totp = str(body.get("totp", ""))
        if code != self.client_code or not secrets.compare_digest(pin, self._mpin):
            raise _ApiError("AB1000", "Invalid clientcode or password")
        if not (len(totp) == 6 and totp.isdigit() and self._totp.verify(totp, valid_window=1)):
            raise _ApiError("AB1050", "Invalid totp")
        return self._new_session()

    def _new_session(self) -> dict[str, Any]:
        s = _Session(
            jwt=secrets.token_urlsafe(48),
            refresh=secrets.token_urlsafe(48),
            feed=secrets.token_urlsafe(32),
        )
        with self._lock:
            self._sessions[s.jwt] = s
            self._refresh[s.refresh] = s
        return {"jwtToken": s.jwt, "refreshToken": s.refresh, "feedToken": s.feed}

    def _generate_tokens(self, body: dict[str, Any]) -> dict[str, Any]:
        refresh = str(body.get("refreshToken", ""))
        with self._lock:
            old = self._refresh.pop(refresh, None)
            if old is not None:
                self._sessions.pop(old.jwt, None)
        if old is None:
            raise _ApiError("AB8050", "Invalid refresh token")
        return self._new_session()

    def _check_auth(self, headers: Any) -> _Session:
        if headers.get("X-PrivateKey") != self.api_key:
            raise _GatewayError("AG8004", "Invalid API Key")
        auth = str(headers.get("Authorization") or "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            raise _GatewayError("AG8003", "Invalid Token")
        with self._lock:
            s = self._sessions.get(auth[7:].strip())
        if s is None:
            raise _GatewayError("AG8001", "Invalid Token")
        if s.expired:
            raise _GatewayError("AG8002", "Token Expired")
        return s

    def _logout(self, session: _Session) -> str:
        """End the session; its websockets are closed (their tokens are no longer valid)."""
        with self._lock:
            self._sessions.pop(session.jwt, None)
            self._refresh.pop(session.refresh, None)
            conns = [c for c in self._ws if c.jwt == session.jwt]
        for c in conns:
            c.drop()
        return ""

    @property
    def session_count(self) -> int:
        """Sessions logged in and not logged out (expired ones included)."""
        with self._lock:
            return len(self._sessions)

    def _ws_auth(self, headers: Any) -> bool:
        jwt = _bearer(headers)
        with self._lock:
            s = self._sessions.get(jwt)
        return (
            s is not None
            and not s.expired
            and headers.get("x-api-key") == self.api_key
            and headers.get("x-client-code") == self.client_code
            and headers.get("x-feed-token") == s.feed
        )

    # ---- REST dispatch ------------------------------------------------------------------------

    def _secure_routes(self) -> dict[str, Callable[[dict[str, Any], _Session], Any]]:
        return {
            "/user/v1/getProfile": lambda b, s: self._profile(),
            "/user/v1/logout": lambda b, s: self._logout(s),
            "/user/v1/getRMS": lambda b, s: self._rms(),
            "/order/v1/placeOrder": lambda b, s: self._place(b),
            "/order/v1/modifyOrder": lambda b, s: self._modify(b),
            "/order/v1/cancelOrder": lambda b, s: self._cancel(b),
            "/order/v1/getOrderBook": lambda b, s: self._order_book(),
            "/order/v1/getTradeBook": lambda b, s: self._trade_book(),
            "/order/v1/getPosition": lambda b, s: self._positions(),
            "/order/v1/getLtpData": lambda b, s: self._ltp(b),
            "/order/v1/searchScrip": lambda b, s: self._search(b),
            "/market/v1/quote": lambda b, s: self._market_quote(b),
            "/historical/v1/getCandleData": lambda b, s: self._candles(b),
        }

    def _profile(self) -> dict[str, Any]:
        return {
            "clientcode": self.client_code,
            "name": "FAKE USER",
            "email": "",
            "mobileno": "",
            "exchanges": ["nse_cm", "nse_fo"],
            "products": ["MARGIN", "MIS", "NRML", "CNC"],
            "lastlogintime": "",
            "brokerid": "B2C",
        }

    def _state(self) -> dict[str, Any]:
        with self._lock:
            n = len(self._orders)
        return {
            "now_ns": self.now_ns(),
            "day": self.day.isoformat(),
            "orders": n,
            "urls": {
                "root": self.root_url,
                "feed": self.feed_url,
                "order_feed": self.order_feed_url,
                "scrip_master": self.scrip_master_url,
                "paper_venue": self.venue.url,
            },
        }


# ---- helpers ---------------------------------------------------------------------------------


def _bearer(headers: Any) -> str:
    auth = str(headers.get("Authorization") or "")
    return auth[7:].strip() if auth.startswith("Bearer ") else auth.strip()


def _ok_cid(tag: str) -> bool:
    return all(c.isascii() and (c.isalnum() or c in "_-") for c in tag)


def _field(body: dict[str, Any], name: str, code: str, kind: type[str]) -> str:
    value = body.get(name)
    if not isinstance(value, kind) or not value:
        raise _ApiError(code, f"Invalid {name}: {value!r}")
    return value


def _number(body: dict[str, Any], name: str, *, integer: bool = False) -> float:
    value = body.get(name)
    try:
        x = (
            float(value)
            if isinstance(value, str | int | float) and not isinstance(value, bool)
            else math.nan
        )
    except ValueError:
        x = math.nan
    if not math.isfinite(x) or x < 0 or (integer and (x != int(x) or x <= 0)):
        raise _ApiError("AB1004", f"Invalid {name}: {value!r}")
    return x


def _paise(body: dict[str, Any], name: str) -> int:
    return round(_number(body, name) * 100)


def _rupees(paise: int | float) -> float:
    return round(float(paise) / 100.0, 2)


def _ist(ts_ns: int) -> datetime:
    return datetime.fromtimestamp(ts_ns / 1e9, IST).replace(microsecond=0)


def _angel_time(ts_ns: int) -> str:
    return _ist(ts_ns).strftime("%d-%b-%Y %H:%M:%S")


def _when(body: dict[str, Any], name: str) -> int:
    text = _field(body, name, "AB1004", str)
    try:
        dt = datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=IST)
    except ValueError:
        raise _ApiError("AB1004", f"Invalid {name}: {text!r} (YYYY-MM-DD HH:MM)") from None
    return int(dt.timestamp()) * 10**9


def _itype(inst: Instrument | None) -> str:
    if inst is None:
        return ""
    return {InstrumentKind.OPTION: "OPTIDX", InstrumentKind.FUTURE: "FUTIDX"}.get(
        inst.kind, "AMXIDX"
    )


def _expiry(inst: Instrument | None) -> str:
    if inst is None or inst.expiry is None:
        return ""
    return inst.expiry.strftime("%d%b%Y").upper()


def _envelope(data: Any) -> dict[str, Any]:
    return {"status": True, "message": "SUCCESS", "errorcode": "", "data": data}


# ---- binary ticks ----------------------------------------------------------------------------


def tick_packet(fake: FakeAngelOne, token: str, mode: int, seq: int) -> bytes:
    """The SmartWebSocketV2 binary packet of ``token`` in ``mode`` (1, 2, 3) from the board
    (venue lock held). Little-endian; prices paise."""
    inst = fake._instruments[token]
    i = fake.venue._index[token]
    b = fake.venue.board
    ltp = int(b.ltp[i])
    ts_ms = int(b.last_ts_ns[i]) // 1_000_000
    xtype = 1 if inst.kind is InstrumentKind.INDEX else 2
    out = struct.pack("<BB25sqqq", mode, xtype, token.encode()[:25], seq, ts_ms, ltp)
    if mode == 1:
        return out
    o, h, lo = fake._day_ohlc.get(i, [ltp, ltp, ltp])
    out += struct.pack(
        "<qqqddqqqq",
        inst.lot_size,
        ltp,
        int(b.volume[i]),
        float(b.bid_qty[i]),
        float(b.ask_qty[i]),
        o,
        h,
        lo,
        o,
    )
    if mode == 2:
        return out
    out += struct.pack("<qqd", ts_ms // 1000, int(b.oi[i]), 0.0)
    bids, asks = fake._depth(inst, i)
    for flag, levels in ((1, bids), (0, asks)):
        for price, qty in levels:
            out += struct.pack("<HqqH", flag, qty, price, 1 if qty else 0)
    out += struct.pack("<qqqq", ltp * 2, max(ltp // 2, 0), h, lo)
    return out


# ---- HTTP ------------------------------------------------------------------------------------


class _FakeHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        *,
        fake: FakeAngelOne,
    ) -> None:
        self.fake = fake
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    server: _FakeHttpServer
    timeout = 30.0
    server_version = "fake-angelone"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        fake = self.server.fake
        path = urllib.parse.urlsplit(self.path).path.rstrip("/")
        try:
            body = self._body()
        except _ApiError as exc:
            self._json(
                400, {"status": False, "message": exc.message, "errorcode": exc.code, "data": None}
            )
            return
        if path.startswith("/__fake__/"):
            self._control(method, path, body)
            return
        if path in ("/smart-stream", "/smart-order-update") and method == "GET":
            self._websocket("market" if path == "/smart-stream" else "order")
            return
        if path == fake.scrip_master_path and method == "GET":
            self._json(200, to_scrip_master(fake.venue.universe))
            return
        route = path.rsplit("/", 1)[-1]
        if fake._rate_limited(route) or fake._take_fault(route, ("rate_limit",)) is not None:
            self._text(403, RATE_LIMIT_PAGE)
            return
        delay = fake._take_fault(route, ("delay",))
        if delay is not None and not delay.process:
            time.sleep(delay.seconds)
            self.close_connection = True
            return
        error = fake._take_fault(route, ("error",))
        try:
            if error is not None:
                raise _ApiError(error.code, error.message or _MESSAGES.get(error.code, "Error"))
            status, answer = 200, _envelope(self._dispatch(method, path, body))
        except _ApiError as exc:
            status, answer = (
                200,
                {"status": False, "message": exc.message, "errorcode": exc.code, "data": None},
            )
        except _GatewayError as exc:
            status, answer = (
                401,
                {"success": False, "message": exc.message, "errorCode": exc.code, "data": ""},
            )
        except (AlgoEngineError, ValueError) as exc:
            status, answer = (
                200,
                {"status": False, "message": str(exc)[:300], "errorcode": "AB1004", "data": None},
            )
        except Exception as exc:  # a bug must not take the server down
            log.exception("fake angel one: request failed", extra={"path": path})
            status, answer = (
                500,
                {
                    "status": False,
                    "message": f"internal error: {exc}",
                    "errorcode": "AB2001",
                    "data": None,
                },
            )
        if delay is not None:
            time.sleep(delay.seconds)
        self._json(status, answer)

    def _dispatch(self, method: str, path: str, body: Any) -> Any:
        fake = self.server.fake
        data = body if isinstance(body, dict) else {}
        if path == LOGIN:
            if self.headers.get("X-PrivateKey") != fake.api_key:
                raise _GatewayError("AG8004", "Invalid API Key")
            return fake._login(data)
        if path == TOKENS:
            if self.headers.get("X-PrivateKey") != fake.api_key:
                raise _GatewayError("AG8004", "Invalid API Key")
            return fake._generate_tokens(data)
        if path.startswith(SECURE):
            handler = fake._secure_routes().get(path[len(SECURE) :])
            if handler is not None:
                session = fake._check_auth(self.headers)
                return handler(data, session)
        raise _ApiError("AB1004", f"No such route: {method} {path}")

    def _control(self, method: str, path: str, body: Any) -> None:
        fake = self.server.fake
        try:
            if path == "/__fake__/faults" and method == "POST":
                for spec in body if isinstance(body, list) else [body]:
                    fake.add_fault(spec)
            elif path == "/__fake__/faults" and method == "DELETE":
                fake.clear_faults()
            elif path == "/__fake__/state" and method == "GET":
                self._json(200, fake._state())
                return
            elif path != "/__fake__/faults" or method != "GET":
                self._json(404, {"error": f"no endpoint {method} {path}", "field": "path"})
                return
        except ValidationError as exc:
            self._json(400, {"error": str(exc), "field": exc.field})
            return
        with fake._lock:
            faults = [f.wire() for f in fake._faults]
            limits = fake._rate_limits
        self._json(200, {"ok": True, "faults": faults, "rate_limits": limits})

    def _body(self) -> Any:
        text = self.headers.get("Content-Length")
        if text is None:
            return None
        try:
            n = int(text)
        except ValueError:
            raise _ApiError("AB1004", "Content-Length is not a number") from None
        if not 0 <= n <= _MAX_BODY:
            raise _ApiError("AB1004", "body too long")
        raw = self.rfile.read(n) if n else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise _ApiError("AB1004", "body is not JSON") from None

    def _json(self, status: int, answer: Any) -> None:
        self._send(status, json.dumps(answer).encode(), "application/json")

    def _text(self, status: int, text: str) -> None:
        self._send(status, text.encode(), "text/plain")

    def _send(self, status: int, data: bytes, ctype: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            log.debug("fake angel one: client gone before the answer")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http " + format % args)

    # ---- websockets ---------------------------------------------------------------------------

    def _websocket(self, kind: str) -> None:
        fake = self.server.fake
        key = self.headers.get("Sec-WebSocket-Key")
        if not key or (self.headers.get("Upgrade") or "").lower() != "websocket":
            self._text(400, "websocket upgrade expected")
            return
        if not fake._ws_auth(self.headers):
            self._text(401, "Unauthorized")
            self.close_connection = True
            return
        accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        self.connection.settimeout(None)
        conn = _WsConn(kind=kind, sock=self.connection, jwt=_bearer(self.headers))
        with fake._lock:
            fake._ws.append(conn)
        sender = threading.Thread(
            target=_ws_sender, args=(fake, conn), name=f"fake-angelone-ws-{kind}", daemon=True
        )
        sender.start()
        if kind == "order":
            conn.outbox.put(
                json.dumps(
                    {
                        "user-id": fake.client_code,
                        "status-code": "200",
                        "order-status": "AB00",
                        "error-message": "",
                        "orderData": {},
                    }
                )
            )
        try:
            self._ws_read(fake, conn)
        finally:
            conn.drop()
            with fake._lock:
                if conn in fake._ws:
                    fake._ws.remove(conn)
            sender.join(timeout=2.0)

    def _ws_read(self, fake: FakeAngelOne, conn: _WsConn) -> None:
        while not conn.closed.is_set():
            frame = _read_frame(self.rfile)
            if frame is None:
                return
            opcode, payload = frame
            if opcode == 0x8:
                conn.send(0x8, payload[:2])
                return
            if opcode == 0x9:
                conn.send(0xA, payload)
            elif opcode == 0x1:
                text = payload.decode(errors="replace")
                if text == "ping":
                    conn.send(0x1, b"pong")
                elif conn.kind == "market":
                    _subscribe(fake, conn, text)


def _read_exact(rfile: Any, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        try:
            chunk = rfile.read(n - len(data))
        except (OSError, ValueError):
            return None
        if not chunk:
            return None
        data += chunk
    return data


def _read_frame(rfile: Any) -> tuple[int, bytes] | None:
    """One (possibly fragmented) message: (opcode, payload); None when the peer is gone."""
    opcode: int | None = None
    message = b""
    while True:
        head = _read_exact(rfile, 2)
        if head is None:
            return None
        fin, op = head[0] & 0x80, head[0] & 0x0F
        masked, n = head[1] & 0x80, head[1] & 0x7F
        if n == 126:
            ext = _read_exact(rfile, 2)
            if ext is None:
                return None
            n = struct.unpack("!H", ext)[0]
        elif n == 127:
            ext = _read_exact(rfile, 8)
            if ext is None:
                return None
            n = struct.unpack("!Q", ext)[0]
        if n > _MAX_BODY:
            return None
        mask = _read_exact(rfile, 4) if masked else b"\0\0\0\0"
        payload = _read_exact(rfile, n) if n else b""
        if mask is None or payload is None:
            return None
        if masked:
            payload = (
                bytes(
                    np.frombuffer(payload, np.uint8) ^ np.resize(np.frombuffer(mask, np.uint8), n)
                )
                if n
                else b""
            )
        if op >= 0x8:  # control frames are never fragmented
            return op, payload
        if op != 0:
            opcode = op
        message += payload
        if fin:
            return (opcode or 0x1), message


def _subscribe(fake: FakeAngelOne, conn: _WsConn, text: str) -> None:
    try:
        req = json.loads(text)
        action = int(req["action"])
        mode = int(req["params"]["mode"])
        token_list = req["params"]["tokenList"]
        tokens = [str(t) for entry in token_list for t in entry["tokens"]]
    except (ValueError, KeyError, TypeError):
        conn.send(
            0x1,
            json.dumps(
                {
                    "correlationID": "",
                    "errorCode": "E1002",
                    "errorMessage": "Invalid Request Payload",
                }
            ).encode(),
        )
        return
    if mode not in (1, 2, 3):
        conn.send(
            0x1,
            json.dumps(
                {
                    "correlationID": req.get("correlationID", ""),
                    "errorCode": "E1003",
                    "errorMessage": "Invalid Subscription Mode",
                }
            ).encode(),
        )
        return
    with fake._lock:
        for tok in tokens:
            if tok not in fake._instruments:
                continue
            if action == 1:
                conn.subs[(tok, mode)] = -1
            else:
                conn.subs.pop((tok, mode), None)


def _ws_sender(fake: FakeAngelOne, conn: _WsConn) -> None:
    try:
        _ws_send_loop(fake, conn)
    except Exception:  # a bug must not leave a silent, half-dead connection
        log.exception("fake angel one: websocket sender failed")
        conn.drop()


def _ws_send_loop(fake: FakeAngelOne, conn: _WsConn) -> None:
    while not conn.closed.is_set():
        try:
            text = conn.outbox.get(timeout=_POLL_S)
        except queue.Empty:
            text = None
        if text is not None:
            if not conn.send(0x1, text.encode()):
                return
            continue
        if conn.kind != "market":
            continue
        packets: list[bytes] = []
        with fake._lock:
            subs = list(conn.subs.items())
            muted = time.monotonic() < fake._muted_until
        if not subs or muted:
            continue
        with fake.venue._lock:
            fake.venue._catch_up()
            board = fake.venue.board
            for (tok, mode), sent in subs:
                i = fake.venue._index[tok]
                ts = int(board.last_ts_ns[i])
                if ts == 0 or ts == sent:
                    continue
                conn.seq += 1
                packets.append(tick_packet(fake, tok, mode, conn.seq))
                with fake._lock:
                    if (tok, mode) in conn.subs:
                        conn.subs[(tok, mode)] = ts
        for p in packets:
            if not conn.send(0x2, p):
                return


_MESSAGES = {
    "AB1004": "Something Went Wrong, Please Try After Sometime",
    "AB2001": "Internal Error, Please try after sometime",
    "AB1000": "Invalid Username or Password",
    "AB1050": "Invalid totp",
}


# ---- the command line ------------------------------------------------------------------------


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m algoengine.brokers.angelone.fake_server",
        description="Run a fake Angel One SmartAPI (REST + websockets) on 127.0.0.1.",
    )
    p.add_argument("--api-key", required=True)
    p.add_argument("--client-code", required=True)
    p.add_argument("--mpin", required=True)
    p.add_argument("--totp-secret", required=True, help="base32, 26+ characters")
    p.add_argument("--day", type=_date, help="the session (default: paper.day, or today/next)")
    p.add_argument("--speed", type=float, help="simulated seconds per real second")
    p.add_argument("--anchor-wall-ns", type=int, help="UTC epoch ns of the open (default: now)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--config", help="configuration file (TOML or YAML)")
    p.add_argument("--seed", type=int, help="seed of the synthetic market")
    p.add_argument("--rate-limits", action="store_true", help="enforce per-route rate limits")
    p.add_argument("--log-level", default="WARNING")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; 0, or 2 for bad arguments or configuration."""
    from algoengine.brokers.paper.server import _calendar
    from algoengine.observability.logs import configure_logging

    args = _parser().parse_args(argv)
    configure_logging(args.log_level)
    done = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        done.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            settings = load_settings(args.config)
            if args.seed is not None:
                settings = settings.with_seed(args.seed)
            day = args.day or settings.paper.day
            if day is None:
                day = paper_day(_calendar(settings), datetime.now(IST).date())
            fake = FakeAngelOne(
                settings,
                day,
                speed=args.speed if args.speed is not None else settings.paper.speed,
                anchor_wall_ns=args.anchor_wall_ns
                if args.anchor_wall_ns is not None
                else time.time_ns(),
                api_key=args.api_key,
                client_code=args.client_code,
                mpin=args.mpin,
                totp_secret=args.totp_secret,
                host=args.host,
                port=args.port,
                enforce_rate_limits=args.rate_limits,
            )
            fake.start()
        except (AlgoEngineError, ValueError) as exc:
            print(f"fake angel one: error: {exc}", file=sys.stderr)
            return 2
        print(f"root {fake.root_url}", flush=True)
        print(f"feed {fake.feed_url}", flush=True)
        print(f"order_feed {fake.order_feed_url}", flush=True)
        print(f"scrip_master {fake.scrip_master_url}", flush=True)
        print(f"control {fake.root_url}/__fake__/faults", flush=True)
        try:
            while not done.wait(0.5):
                pass
        finally:
            fake.stop()
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    raise SystemExit(main())
