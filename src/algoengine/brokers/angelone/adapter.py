"""The Angel One broker: :class:`AngelOneBroker`, the engine's venue over SmartAPI.

It drives the official ``smartapi-python`` client (``SmartConnect``) and answers the engine's
Broker protocol (``submit``/``cancel``/``modify``/``drain_events``/``open_orders``) plus what
recovery asks (``order(cid)``, ``trades()``) and what ``broker status`` shows (``profile``,
``funds``, ``positions``).

Semantics:

- Our client order id is Angel One's ``ordertag``; the broker's ``orderid`` is kept per client
  order id (``cancel``/``modify`` need it) and is every event's ``venue_order_id``.
- ``submit`` places the order (``placeOrderFullResponse``) and returns; the outcome arrives as
  events. After a timeout, a dropped connection or a server error (AB1004, AB2001) the order
  may or may not exist: the order book is searched by ``ordertag`` and, if the order is there,
  it is adopted; only if it is not there does ``submit`` raise
  :class:`~algoengine.errors.TemporaryBrokerError` (the OMS re-sends the same request after a
  backoff, and the re-send searches again before placing). Never a duplicate. AB1004/AB2001
  are retried ``max_server_retries`` times, then the order is rejected with the broker's text.
- Events come from polling ``getOrderBook`` then ``getTradeBook`` (Angel One allows each once a
  second; :class:`~algoengine.brokers.angelone.ratelimit.RateLimiter`), at most every
  ``poll_interval_s`` and only while we have orders not yet final. Status changes and new trades
  become ``OrderAccepted``, ``OrderTriggered``, ``OrderModified``, ``OrderPartiallyFilled``,
  ``OrderFilled``, ``OrderCancelled`` and ``OrderRejected`` (with the broker's ``text``), each
  once (fills by ``fillid``).
- An expired or invalid session (AG8001/AG8002/AG8003) is refreshed with the refresh token (or
  by a new login) and the call repeated once. An order whose answer was an AG800x was not
  placed; the repeat places it once.
- The plain-text HTTP 403 ("exceeding access rate") penalises that endpoint's bucket and raises
  :class:`~algoengine.brokers.angelone.errors.RateLimitedError` (temporary).
- :meth:`AngelOneBroker.close` logs out (SEBI: no session carried over).

The client is imported lazily, once (:func:`load_smartapi`), with its import-time call to
``api.ipify.org`` stopped, and its log files (which hold the API key, the PIN and TOTP on a
failed login, tokens on transport errors) go to a private temporary folder, deleted at exit;
its stderr logger is switched off. Nothing we log contains a secret.

Not thread-safe: one thread (the engine's loop) uses a broker.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import partial
from types import ModuleType, SimpleNamespace
from typing import Any

from algoengine.brokers.angelone.credentials import AngelOneCredentials, AngelOneEndpoints
from algoengine.brokers.angelone.errors import (
    AngelOneApiError,
    AngelOneServerError,
    NotFoundError,
    RateLimitedError,
    RefreshTokenError,
    RequestRefusedError,
    SessionExpiredError,
    error_for,
)
from algoengine.brokers.angelone.ratelimit import RateLimiter
from algoengine.brokers.paper.remote import VenueTrade
from algoengine.domain.events import (
    OrderAccepted,
    OrderCancelled,
    OrderCancelRejected,
    OrderEvent,
    OrderFilled,
    OrderModified,
    OrderModifyRejected,
    OrderPartiallyFilled,
    OrderRejected,
    OrderTriggered,
    RejectCode,
)
from algoengine.domain.instruments import Instrument, InstrumentKind
from algoengine.domain.orders import (
    OrderRequest,
    OrderStatus,
    OrderStatusReport,
    OrderType,
    Side,
    TimeInForce,
)
from algoengine.errors import BrokerError, TemporaryBrokerError, ValidationError

__all__ = [
    "CANDLE_INTERVALS",
    "QUOTE_TOKENS_PER_CALL",
    "AngelOneBroker",
    "Candle",
    "Quote",
    "SmartApiClasses",
    "load_smartapi",
    "paise_to_rupees",
]

log = logging.getLogger(__name__)

IST = timezone(timedelta(hours=5, minutes=30))
_RATE_LIMIT_TEXT = "exceeding access rate"
_NOT_YET = frozenset(
    {"open pending", "validation pending", "put order req received", "modify validation pending"}
)
_WORKING = frozenset({"open", "trigger pending", "modify pending", "modified", "after market"})


#: Candle intervals Angel One serves: (minutes per candle, most days per request).
CANDLE_INTERVALS: dict[str, tuple[int, int]] = {
    "ONE_MINUTE": (1, 30),
    "THREE_MINUTE": (3, 60),
    "FIVE_MINUTE": (5, 100),
    "TEN_MINUTE": (10, 100),
    "FIFTEEN_MINUTE": (15, 200),
    "THIRTY_MINUTE": (30, 200),
    "ONE_HOUR": (60, 400),
    "ONE_DAY": (375, 2000),
}
#: Tokens per getMarketData request (Angel One's limit).
QUOTE_TOKENS_PER_CALL = 50


@dataclass(frozen=True, slots=True)
class Quote:
    """One instrument's quote (``getMarketData``), prices in paise; depth best first as
    ``(price_paise, qty)`` (FULL mode only; empty otherwise)."""

    token: str
    symbol: str
    ltp_paise: int
    open_paise: int = 0
    high_paise: int = 0
    low_paise: int = 0
    close_paise: int = 0
    volume: int = 0
    oi: int = 0
    bids: tuple[tuple[int, int], ...] = ()
    asks: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Candle:
    """One historical candle (``getCandleData``): its start [UTC epoch ns], prices paise."""

    ts_ns: int
    open_paise: int
    high_paise: int
    low_paise: int
    close_paise: int
    volume: int


# ---- the client library, contained -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SmartApiClasses:
    """The client's classes and exceptions (loaded once by :func:`load_smartapi`)."""

    SmartConnect: Any
    SmartWebSocketV2: Any
    SmartWebSocketOrderUpdate: Any
    DataException: type[Exception]
    RequestException: type[Exception]
    log_dir: str


_LOAD_LOCK = threading.Lock()
_LOADED: SmartApiClasses | None = None


class _NoNetworkError(OSError):
    pass


def _refuse_get(url: Any, *args: Any, **kwargs: Any) -> Any:
    raise _NoNetworkError(f"smartapi import-time request to {url!r} refused")


def load_smartapi() -> SmartApiClasses:
    """Import ``smartapi-python`` once with its import-time network call refused, and aim its
    log files at a private temporary folder (removed at exit) with its stderr logger off."""
    global _LOADED
    with _LOAD_LOCK:
        if _LOADED is not None:
            return _LOADED
        import requests  # type: ignore[import-untyped, unused-ignore]

        real_get = requests.get
        requests.get = _refuse_get  # the class body does `from requests import get` first
        try:
            import logzero  # type: ignore[import-untyped, unused-ignore]
            import SmartApi.smartConnect as connect_mod  # type: ignore[import-untyped, unused-ignore]  # noqa: N813
            import SmartApi.smartExceptions as exc_mod  # type: ignore[import-untyped, unused-ignore]  # noqa: N813
            import SmartApi.smartWebSocketOrderUpdate as order_ws_mod  # type: ignore[import-untyped, unused-ignore]  # noqa: N813
            import SmartApi.smartWebSocketV2 as ws_mod  # type: ignore[import-untyped, unused-ignore]  # noqa: N813
        finally:
            requests.get = real_get
        log_dir = tempfile.mkdtemp(prefix="algoengine-smartapi-")  # mode 0700
        atexit.register(shutil.rmtree, log_dir, True)
        for mod in (connect_mod, ws_mod, order_ws_mod):
            _contain_logs(mod, log_dir, logzero)
        logzero.logfile(None, disableStderrLogger=True)
        _quiet(logzero, (connect_mod, ws_mod, order_ws_mod))
        _LOADED = SmartApiClasses(
            SmartConnect=connect_mod.SmartConnect,
            SmartWebSocketV2=ws_mod.SmartWebSocketV2,
            SmartWebSocketOrderUpdate=order_ws_mod.SmartWebSocketOrderUpdate,
            DataException=exc_mod.DataException,
            RequestException=requests.RequestException,
            log_dir=log_dir,
        )
        return _LOADED


def _quiet(logzero: Any, mods: Sequence[ModuleType]) -> None:
    """The client's logger reaches only its private file: not stderr, not our handlers (its
    lines hold the API key and the bearer token)."""
    for lg in (logzero.logger, *(getattr(m, "logger", None) for m in mods)):
        if isinstance(lg, logging.Logger):
            lg.propagate = False


def _contain_logs(mod: ModuleType, log_dir: str, logzero: Any) -> None:
    """The module writes ``os.path.join("logs", date)`` relative to the working directory and
    points logzero at it: give it an ``os`` and a ``logzero`` that put them under ``log_dir``
    and never on stderr."""

    def join(first: str, *rest: str) -> str:
        if first == "logs":
            return os.path.join(log_dir, first, *rest)
        return os.path.join(first, *rest)

    def logfile(filename: str | None, **kwargs: Any) -> None:
        kwargs["disableStderrLogger"] = True
        logzero.logfile(filename, **kwargs)
        _quiet(logzero, (mod,))

    mod.os = SimpleNamespace(  # type: ignore[attr-defined]
        path=SimpleNamespace(join=join), makedirs=os.makedirs
    )
    mod.logzero = SimpleNamespace(logfile=logfile)  # type: ignore[attr-defined]


# ---- units -------------------------------------------------------------------------------------


def close_websocket(client: Any) -> None:
    """Close a SmartAPI websocket client's connection from another thread, for sure.

    websocket-client's ``WebSocketApp.close`` closes the socket's file descriptor from the
    calling thread; if ``run_forever``'s thread is not inside ``epoll_wait`` at that instant,
    it enters it afterwards on a descriptor the kernel has already dropped from the epoll
    set, with no timeout, and hangs for good (seen here: a forced reconnect of a stalled
    feed never happened). Shutting the socket down instead wakes that thread with an end of
    file, and it closes the socket itself. Only a socket not made yet is closed the
    library's way."""
    import socket

    wsapp = getattr(client, "wsapp", None)
    if wsapp is None:
        return
    wsapp.keep_running = False
    raw = getattr(getattr(wsapp, "sock", None), "sock", None)
    if raw is not None:
        try:
            raw.shutdown(socket.SHUT_RDWR)
            return
        except OSError:
            pass  # not connected yet: close it the library's way
    try:
        wsapp.close()
    except Exception as exc:  # a close racing the connection's own thread
        log.debug("websocket close failed", extra={"error": type(exc).__name__})


def _quote(row: Any) -> Quote | None:
    """A ``getMarketData`` row as a :class:`Quote` (None if malformed: logged)."""
    try:
        depth = row.get("depth") or {}

        def levels(side: str) -> tuple[tuple[int, int], ...]:
            return tuple(
                (_paise(x["price"]), _int(x["quantity"]))
                for x in depth.get(side) or []
                if _int(x.get("quantity")) > 0
            )

        return Quote(
            token=str(row["symbolToken"]),
            symbol=str(row.get("tradingSymbol") or ""),
            ltp_paise=_paise(row["ltp"]),
            open_paise=_paise(row.get("open") or 0),
            high_paise=_paise(row.get("high") or 0),
            low_paise=_paise(row.get("low") or 0),
            close_paise=_paise(row.get("close") or 0),
            volume=_int(row.get("tradeVolume") or 0),
            oi=_int(row.get("opnInterest") or 0),
            bids=levels("buy"),
            asks=levels("sell"),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        log.warning("angel one: malformed quote", extra={"error": type(exc).__name__})
        return None


def _candle(row: Any) -> Candle | None:
    """A ``getCandleData`` row ``[time, o, h, l, c, v]`` (None if malformed: logged)."""
    try:
        ts = datetime.fromisoformat(str(row[0]))
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=IST)
        return Candle(
            ts_ns=int(ts.timestamp()) * 1_000_000_000,
            open_paise=_paise(row[1]),
            high_paise=_paise(row[2]),
            low_paise=_paise(row[3]),
            close_paise=_paise(row[4]),
            volume=_int(row[5]),
        )
    except (IndexError, TypeError, ValueError) as exc:
        log.warning("angel one: malformed candle", extra={"error": type(exc).__name__})
        return None


def _ist_today() -> date:
    return datetime.now(IST).date()


def paise_to_rupees(paise: int) -> str:
    """``12345`` -> ``"123.45"`` (exact; Angel One takes rupees)."""
    sign = "-" if paise < 0 else ""
    p = abs(int(paise))
    return f"{sign}{p // 100}.{p % 100:02d}"


def _paise(value: Any) -> int:
    """Rupees (a number or a string) -> paise."""
    try:
        return round(float(value) * 100)
    except (TypeError, ValueError):
        return 0


def _int(value: Any) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return 0


def _ist_ns(text: Any, fallback_ns: int) -> int:
    if isinstance(text, str) and text:
        try:
            dt = datetime.strptime(text, "%d-%b-%Y %H:%M:%S").replace(tzinfo=IST)
        except ValueError:
            return fallback_ns
        return int(dt.timestamp()) * 1_000_000_000
    return fallback_ns


# ---- per-order state ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Track:
    """What we know of one of our orders at the broker."""

    cid: str
    token: str
    side: Side
    order_type: OrderType
    tif: TimeInForce
    qty: int
    price_paise: int | None
    trigger_paise: int | None
    orderid: str | None = None
    accepted: bool = False
    waiting_trigger: bool = False
    final: bool = False
    filled: int = 0
    fills: set[str] = field(default_factory=set)
    want: tuple[int, int | None, int | None] | None = None  # a modification asked for
    want_polls: int = 0
    uncertain: bool = False  # placed or not? search the book by ordertag before a re-send
    server_errors: int = 0
    day_ns: int = 0  # IST midnight of the order's day (for trade-book times)

    @property
    def variety(self) -> str:
        return "STOPLOSS" if self.order_type.is_stop else "NORMAL"


def _status_of(row: Mapping[str, Any]) -> str:
    return str(row.get("orderstatus") or row.get("status") or "").strip().lower()


# ---- the broker --------------------------------------------------------------------------------


class AngelOneBroker:
    """The engine's venue at Angel One (see the module docstring).

    Parameters
    ----------
    credentials
        API key, client code, MPIN and TOTP secret.
    instruments
        The instruments we may trade (the engine's universe): token -> symbol and exchange.
    endpoints
        Angel One's addresses (default: from the ``ANGEL_ONE_*_URL`` environment, else
        production's).
    timeout_s
        Seconds a REST call may take before it counts as timed out (the client's timeout).
    poll_interval_s
        Least time between two order-book/trade-book polls [s].
    product
        ``producttype`` for derivatives (``CARRYFORWARD``: NRML, positions kept overnight).
    max_server_retries
        Times an order answered AB1004/AB2001 is re-sent before it is rejected.
    limiter
        Client-side rate limits (default: Angel One's, :data:`RATE_LIMITS_PER_S`).
    order_updates
        Also listen to the order-update websocket (``endpoints.order_feed_url``) from
        :meth:`login` to :meth:`close`: every update (AB00..AB11) makes the next
        :meth:`drain_events` poll the books at once instead of after ``poll_interval_s``.
        The websocket runs in its own supervised thread (reconnects with a backoff of 0.5 s
        doubling to 10 s); the polling stays as the safety net.
    today
        Today's IST date (default: the wall clock's). A session logged in on an earlier day is
        never used: the next call logs it out and logs in afresh first (SEBI: no session is
        carried over into a trading day); orders in flight stay tracked.

    Raises
    ------
    ValidationError
        A malformed argument (names it).
    """

    def __init__(
        self,
        credentials: AngelOneCredentials,
        instruments: Sequence[Instrument],
        *,
        endpoints: AngelOneEndpoints | None = None,
        timeout_s: float = 7.0,
        poll_interval_s: float = 1.0,
        product: str = "CARRYFORWARD",
        max_server_retries: int = 3,
        limiter: RateLimiter | None = None,
        order_updates: bool = False,
        today: Callable[[], date] | None = None,
    ) -> None:
        if not isinstance(credentials, AngelOneCredentials):
            raise ValidationError("credentials", type(credentials).__name__, "must be credentials")
        if not isinstance(timeout_s, int | float) or not 0 < timeout_s <= 120:
            raise ValidationError("timeout_s", timeout_s, "must be a number in (0, 120] seconds")
        if not isinstance(poll_interval_s, int | float) or not 0 <= poll_interval_s <= 60:
            raise ValidationError("poll_interval_s", poll_interval_s, "must be in [0, 60] seconds")
        if product not in ("CARRYFORWARD", "INTRADAY", "MARGIN", "DELIVERY"):
            raise ValidationError("product", product, "must be CARRYFORWARD, INTRADAY, ...")
        if not isinstance(max_server_retries, int) or max_server_retries < 0:
            raise ValidationError("max_server_retries", max_server_retries, "must be an int >= 0")
        self.credentials = credentials
        self.endpoints = endpoints or AngelOneEndpoints.from_env()
        self.timeout_s = float(timeout_s)
        self.poll_interval_s = float(poll_interval_s)
        self.product = product
        self.max_server_retries = max_server_retries
        self.limiter = limiter or RateLimiter()
        self._instruments: dict[str, Instrument] = {i.token: i for i in instruments}
        self._lib: SmartApiClasses | None = None
        self._api: Any = None
        self._logged_in = False
        self._tracks: dict[str, _Track] = {}
        self._by_orderid: dict[str, str] = {}
        self._pending: list[OrderEvent] = []
        self._next_poll = 0.0
        self._last_book: list[dict[str, Any]] = []
        self._last_trades: list[dict[str, Any]] = []
        self.refreshes = 0  # sessions refreshed or re-established (observability, tests)
        self.lookups = 0  # order-book searches by ordertag after an uncertain placeOrder
        self.order_updates = bool(order_updates)
        self._updates: _OrderUpdates | None = None
        self.order_update_count = 0  # order-update messages received (observability, tests)
        self._today = today or _ist_today
        self.session_day: date | None = None  # the IST date of the current session's login
        self.day_logins = 0  # sessions replaced because a new day began (observability, tests)

    # ---- session ---------------------------------------------------------------------------

    @property
    def logged_in(self) -> bool:
        """True between :meth:`login` and :meth:`close`."""
        return self._logged_in

    def login(self) -> None:
        """Log in (client code, MPIN, TOTP); creates the client on first use.

        Raises
        ------
        AuthenticationError
            Wrong credentials, a bad TOTP, a blocked client (the broker's code and message).
        TemporaryBrokerError
            Angel One could not be reached.
        """
        if self._api is None:
            self._lib = load_smartapi()
            self._api = self._lib.SmartConnect(
                api_key=self.credentials.api_key,
                root=self.endpoints.root_url,
                timeout=self.timeout_s,
            )
        creds = self.credentials
        answer = self._raw(
            "loginByPassword",
            lambda: self._api.generateSession(creds.client_code, creds.mpin, creds.totp()),
        )
        self._check(answer, "loginByPassword")
        self._logged_in = True
        self.session_day = self._today()
        log.info("angel one: logged in", extra={"client_code": creds.client_code})
        if self.order_updates and self._updates is None:
            self._updates = _OrderUpdates(self)
            self._updates.start()

    def close(self) -> None:
        """Log out (terminate the session at Angel One); safe to call twice."""
        if self._updates is not None:
            self._updates.stop()
            self._updates = None
        if not self._logged_in or self._api is None:
            return
        self._logged_in = False
        try:
            answer = self._raw(
                "logout", lambda: self._api.terminateSession(self.credentials.client_code)
            )
            self._check(answer, "logout")
        except BrokerError as exc:
            log.warning("angel one: logout failed", extra={"error": str(exc)})
        self._api.setAccessToken(None)
        self._api.setRefreshToken(None)
        self._api.setFeedToken(None)
        log.info("angel one: logged out", extra={"client_code": self.credentials.client_code})

    logout = close

    def __enter__(self) -> AngelOneBroker:
        self.login()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def feed_token(self) -> str | None:
        """The session's feed token (market websocket), None before login."""
        return None if self._api is None else self._api.getfeedToken()

    @property
    def access_token(self) -> str | None:
        """The session's jwt (never log it)."""
        return None if self._api is None else self._api.access_token

    def _order_update(self, message: Any) -> None:
        """An order-update websocket message (its thread): poll at the next drain."""
        try:
            data = json.loads(message)
        except (TypeError, ValueError):
            return
        code = str(data.get("order-status") or "") if isinstance(data, dict) else ""
        if code.startswith("AB") and code[2:].isdigit() and int(code[2:]) <= 11:
            self.order_update_count += 1
            if code != "AB00":
                self._next_poll = 0.0  # a float store: the loop's thread polls next time

    def _refresh(self) -> None:
        """A new session: the refresh token first, a new login if it is refused."""
        self.refreshes += 1
        refresh = self._api.refresh_token
        if refresh:
            try:
                answer = self._raw("generateTokens", lambda: self._api.generateToken(refresh))
                data = self._check(answer, "generateTokens")
                if isinstance(data, dict) and data.get("refreshToken"):
                    self._api.setRefreshToken(data["refreshToken"])
                log.info("angel one: session refreshed")
                return
            except (RefreshTokenError, SessionExpiredError, AngelOneServerError) as exc:
                log.warning("angel one: refresh refused, logging in", extra={"error": str(exc)})
        self.login()

    # ---- calls -----------------------------------------------------------------------------

    def _raw(self, route: str, call: Callable[[], Any], *, wait_s: float = 5.0) -> Any:
        """One client call under the rate limit; transport failures as typed errors."""
        assert self._lib is not None
        if not self.limiter.acquire(route, timeout_s=wait_s):
            raise RateLimitedError(route)
        try:
            return call()
        except self._lib.RequestException as exc:
            raise TemporaryBrokerError(
                f"{route}: Angel One unreachable ({type(exc).__name__})", code="TIMEOUT"
            ) from None
        except self._lib.DataException as exc:
            if _RATE_LIMIT_TEXT in str(exc).lower():
                self.limiter.penalize(route, 1.0)
                raise RateLimitedError(route) from None
            raise AngelOneServerError("the answer is not JSON", code=None, route=route) from None
        except (TypeError, KeyError, AttributeError) as exc:  # the client on a malformed answer
            raise AngelOneServerError(
                f"malformed answer ({type(exc).__name__})", code=None, route=route
            ) from None

    @staticmethod
    def _check(answer: Any, route: str) -> Any:
        """The ``data`` of a success envelope; the typed error otherwise."""
        if not isinstance(answer, dict):
            raise AngelOneServerError("no answer", code=None, route=route)
        if answer.get("status") is True:
            return answer.get("data")
        code = answer.get("errorcode") or answer.get("errorCode") or None
        raise error_for(str(code) if code else None, str(answer.get("message") or ""), route=route)

    def _new_day(self) -> None:
        """A new trading day began under a session of an earlier one: log it out and log in
        afresh (orders, their tracks and the order-update websocket carry on)."""
        old = self.session_day
        log.info(
            "angel one: new day, logging out and in again",
            extra={"session_day": str(old), "today": str(self._today())},
        )
        try:
            answer = self._raw(
                "logout", lambda: self._api.terminateSession(self.credentials.client_code)
            )
            self._check(answer, "logout")
        except BrokerError as exc:  # the old session may be dead already: log in regardless
            log.warning("angel one: logout of the old day failed", extra={"error": str(exc)})
        self.login()
        self.day_logins += 1

    def _call(self, route: str, call: Callable[[], Any], *, wait_s: float = 5.0) -> Any:
        """A secure call: refreshes the session once on AG8001-AG8003 and repeats; a session
        of an earlier day is replaced first."""
        if not self._logged_in:
            raise BrokerError(f"{route}: not logged in to Angel One")
        if self.session_day != self._today():
            self._new_day()
        try:
            return self._check(self._raw(route, call, wait_s=wait_s), route)
        except SessionExpiredError:
            self._refresh()
            return self._check(self._raw(route, call, wait_s=wait_s), route)

    # ---- the Broker protocol ---------------------------------------------------------------

    def submit(self, request: OrderRequest, ts_ns: int) -> None:
        """Place an order (``ordertag`` = its client order id). Refusals become
        ``OrderRejected`` events; see the module docstring for timeouts and retries.

        Raises
        ------
        TemporaryBrokerError
            The order could not be placed now and is not at the broker: re-send it later.
        """
        if not isinstance(request, OrderRequest):
            raise ValidationError("request", request, "must be an OrderRequest")
        cid = request.client_order_id
        track = self._tracks.get(cid)
        if track is not None and track.orderid is not None:
            return  # placed already (a re-send after a lost answer): never twice
        inst = self._instruments.get(request.instrument_token)
        if inst is None:
            self._reject(cid, ts_ns, RejectCode.UNKNOWN_INSTRUMENT, "instrument not tradable")
            return
        if track is None:
            track = self._tracks[cid] = _Track(
                cid=cid,
                token=inst.token,
                side=request.side,
                order_type=request.order_type,
                tif=request.tif,
                qty=request.qty,
                price_paise=request.price_paise,
                trigger_paise=request.trigger_price_paise,
            )
        if track.uncertain and self._find(track):
            return
        params = self._order_params(request, inst)
        try:
            data = self._call("placeOrder", lambda: self._api.placeOrderFullResponse(dict(params)))
        except RateLimitedError:
            raise  # refused at the gate: nothing placed
        except TemporaryBrokerError as exc:
            track.uncertain = True
            if isinstance(exc, AngelOneServerError):
                track.server_errors += 1
            try:
                if self._find(track):
                    return
            except TemporaryBrokerError:
                raise exc from None  # still uncertain: the re-send searches first
            if isinstance(exc, AngelOneServerError) and (
                track.server_errors > self.max_server_retries
            ):
                track.uncertain = False
                self._reject(cid, ts_ns, RejectCode.OTHER, exc.message)
                return
            raise
        except AngelOneApiError as exc:
            code = exc.reject_code if isinstance(exc, RequestRefusedError) else RejectCode.OTHER
            self._reject(cid, ts_ns, code, exc.message)
            return
        orderid = str(data.get("orderid") or "") if isinstance(data, dict) else ""
        if not orderid:
            track.uncertain = True
            if not self._find(track):
                raise AngelOneServerError("no orderid in the answer", code=None, route="placeOrder")
            return
        self._adopt(track, orderid)
        log.info(
            "angel one: order placed",
            extra={"client_order_id": cid, "strategy_id": request.strategy_id, "orderid": orderid},
        )

    def cancel(self, client_order_id: str, ts_ns: int) -> None:
        """Cancel a working order (outcome: ``OrderCancelled`` from the book, or
        ``OrderCancelRejected``)."""
        track = self._tracks.get(client_order_id)
        if track is not None and track.orderid is None and track.uncertain:
            self._find(track)
        if track is None or track.orderid is None:
            self._refuse(OrderCancelRejected, client_order_id, ts_ns, None, None)
            return
        orderid = track.orderid
        try:  # (a temporary failure propagates: the OMS sends the cancel again)
            self._call("cancelOrder", lambda: self._api.cancelOrder(orderid, track.variety))
        except AngelOneApiError as exc:
            self._refuse(OrderCancelRejected, client_order_id, ts_ns, orderid, exc)
        self._next_poll = 0.0

    def modify(
        self,
        client_order_id: str,
        ts_ns: int,
        *,
        qty: int | None = None,
        price_paise: int | None = None,
        trigger_price_paise: int | None = None,
    ) -> None:
        """Change a working order; ``qty`` is the new total (units), prices paise, ``None``
        keeps a field (outcome: ``OrderModified`` once the book shows it, or
        ``OrderModifyRejected``)."""
        track = self._tracks.get(client_order_id)
        if track is None or track.orderid is None:
            self._refuse(OrderModifyRejected, client_order_id, ts_ns, None, None)
            return
        inst = self._instruments[track.token]
        new = (
            qty if qty is not None else track.qty,
            price_paise if price_paise is not None else track.price_paise,
            trigger_price_paise if trigger_price_paise is not None else track.trigger_paise,
        )
        params: dict[str, Any] = {
            "variety": track.variety,
            "orderid": track.orderid,
            "ordertype": track.order_type.value,
            "producttype": self._product(inst),
            "duration": track.tif.value,
            "price": paise_to_rupees(new[1]) if new[1] is not None else "0",
            "quantity": str(new[0]),
            "tradingsymbol": inst.symbol,
            "symboltoken": inst.token,
            "exchange": inst.exchange,
        }
        if track.order_type.is_stop and new[2] is not None:
            params["triggerprice"] = paise_to_rupees(new[2])
        try:  # (a temporary failure propagates: the OMS sends the change again)
            self._call("modifyOrder", lambda: self._api.modifyOrder(dict(params)))
        except AngelOneApiError as exc:
            self._refuse(OrderModifyRejected, client_order_id, ts_ns, track.orderid, exc)
            return
        track.want = new
        track.want_polls = 0
        self._next_poll = 0.0

    def drain_events(self) -> list[OrderEvent]:
        """The order events since the last call: refusals noted locally, then whatever a
        poll of the books (when due and the rate limits allow) shows. A failed poll is logged
        and tried again next time; it never loses an event."""
        now = time.monotonic()
        if (
            now >= self._next_poll
            and self._logged_in
            and self._has_live_orders()
            and self.limiter.bucket("getOrderBook").wait_s() <= 0
        ):
            self._next_poll = now + self.poll_interval_s
            try:
                self._poll()
            except BrokerError as exc:
                level = logging.WARNING if isinstance(exc, TemporaryBrokerError) else logging.ERROR
                log.log(level, "angel one: order book poll failed", extra={"error": str(exc)})
        events, self._pending = self._pending, []
        return events

    def open_orders(self) -> list[OrderStatusReport]:
        """Our working orders at the broker now (every order with an ``ordertag``), oldest
        first."""
        rows = self._book()
        out = [self._report(r) for r in rows]
        return [r for r in out if r is not None and r.status.is_working]

    # ---- reconciliation and status ---------------------------------------------------------

    def order(self, client_order_id: str) -> OrderStatusReport | None:
        """The broker's view of one order (found by ``ordertag``), or None if it has none."""
        for row in self._book():
            if str(row.get("ordertag") or "") == client_order_id:
                report = self._report(row)
                if report is not None:
                    if client_order_id not in self._tracks:
                        self._track_from_report(report)
                    return report
        return None

    def trades(self) -> list[VenueTrade]:
        """The day's trade book, our orders only (those with an ``ordertag``), in order."""
        book = {str(r.get("orderid")): r for r in self._book()}
        rows = self._call("getTradeBook", lambda: self._api.tradeBook()) or []
        out: list[VenueTrade] = []
        for t in rows:
            order = book.get(str(t.get("orderid")))
            if order is None or not order.get("ordertag"):
                continue
            out.append(
                VenueTrade(
                    client_order_id=str(order["ordertag"]),
                    trade_id=str(t.get("fillid")),
                    instrument_token=str(order.get("symboltoken")),
                    side=Side(str(t.get("transactiontype")).upper()),
                    qty=_int(t.get("fillsize")),
                    price_paise=_paise(t.get("fillprice")),
                    ts_ns=self._fill_ns(t, _ist_ns(order.get("updatetime"), 0)),
                )
            )
        return out

    def profile(self) -> dict[str, Any]:
        """The account's profile (``getProfile``; client code, name, exchanges)."""
        data = self._call("getProfile", lambda: self._api.getProfile(self._api.refresh_token))
        return dict(data) if isinstance(data, dict) else {}

    def funds(self) -> dict[str, Any]:
        """The account's funds and margins (``getRMS``; rupees as Angel One gives them)."""
        data = self._call("getRMS", lambda: self._api.rmsLimit())
        return dict(data) if isinstance(data, dict) else {}

    def positions(self) -> list[dict[str, Any]]:
        """The day's positions (``getPosition``; Angel One's rows)."""
        data = self._call("getPosition", lambda: self._api.position())
        return list(data) if isinstance(data, list) else []

    # ---- market data over REST --------------------------------------------------------------

    def _instrument(self, token: object) -> Instrument:
        inst = self._instruments.get(str(token)) if isinstance(token, str) else None
        if inst is None:
            raise ValidationError("token", token, "not an instrument of this broker's universe")
        return inst

    def ltp(self, token: str) -> int:
        """The instrument's last traded price [paise] (``getLtpData``).

        Raises
        ------
        ValidationError
            ``token`` is not one of ours.
        AngelOneApiError
            The broker refused (its code and message).
        """
        inst = self._instrument(token)
        data = self._call(
            "getLtpData", lambda: self._api.ltpData(inst.exchange, inst.symbol, inst.token)
        )
        if not isinstance(data, dict) or "ltp" not in data:
            raise AngelOneServerError("no ltp in the answer", code=None, route="getLtpData")
        return _paise(data["ltp"])

    def quotes(self, tokens: Sequence[str], mode: str = "FULL") -> dict[str, Quote]:
        """Quotes by token (``getMarketData``, :data:`QUOTE_TOKENS_PER_CALL` tokens a call):
        ``LTP``, ``OHLC`` or ``FULL`` (with 5-level depth, volume and OI). Tokens the broker
        could not quote are left out (logged).

        Raises
        ------
        ValidationError
            A token not ours, a bad mode (names it).
        """
        mode = mode.upper() if isinstance(mode, str) else mode
        if mode not in ("LTP", "OHLC", "FULL"):
            raise ValidationError("mode", mode, "must be LTP, OHLC or FULL")
        if isinstance(tokens, str):
            raise ValidationError("tokens", tokens, "must be a sequence of tokens")
        insts = [self._instrument(t) for t in dict.fromkeys(tokens)]
        out: dict[str, Quote] = {}
        for k in range(0, len(insts), QUOTE_TOKENS_PER_CALL):
            by_exchange: dict[str, list[str]] = {}
            for inst in insts[k : k + QUOTE_TOKENS_PER_CALL]:
                by_exchange.setdefault(inst.exchange, []).append(inst.token)
            data = self._call("quote", partial(self._api.getMarketData, mode, by_exchange))
            data = data if isinstance(data, dict) else {}
            for row in data.get("fetched") or []:
                q = _quote(row)
                if q is not None:
                    out[q.token] = q
            for miss in data.get("unfetched") or []:
                log.warning("angel one: no quote", extra={"detail": str(miss)[:200]})
        return out

    def candles(self, token: str, interval: str, start: datetime, end: datetime) -> list[Candle]:
        """Historical candles of ``interval`` over [start, end] (aware datetimes, or naive
        IST), oldest first; the range is cut into requests of at most the interval's days
        per request (:data:`CANDLE_INTERVALS`), each under the 3/s limit.

        Raises
        ------
        ValidationError
            A token not ours, an unknown interval, ``end`` before ``start`` (names it).
        """
        inst = self._instrument(token)
        if interval not in CANDLE_INTERVALS:
            raise ValidationError("interval", interval, f"must be one of {list(CANDLE_INTERVALS)}")
        for name, value in (("start", start), ("end", end)):
            if not isinstance(value, datetime):
                raise ValidationError(name, value, "must be a datetime")
        lo = (start if start.tzinfo else start.replace(tzinfo=IST)).astimezone(IST)
        hi = (end if end.tzinfo else end.replace(tzinfo=IST)).astimezone(IST)
        if hi < lo:
            raise ValidationError("end", end, "must not be before start")
        minutes, max_days = CANDLE_INTERVALS[interval]
        step = timedelta(minutes=minutes)
        out: dict[int, Candle] = {}
        chunk_lo = lo
        while chunk_lo <= hi:
            chunk_hi = min(hi, chunk_lo + timedelta(days=max_days))
            params = {
                "exchange": inst.exchange,
                "symboltoken": inst.token,
                "interval": interval,
                "fromdate": chunk_lo.strftime("%Y-%m-%d %H:%M"),
                "todate": chunk_hi.strftime("%Y-%m-%d %H:%M"),
            }
            rows = self._call(
                "getCandleData", partial(self._api.getCandleData, params), wait_s=10.0
            )
            for row in rows or []:
                c = _candle(row)
                if c is not None:
                    out[c.ts_ns] = c  # a candle on a chunk's edge comes once
            chunk_lo = chunk_hi + step
        return [out[t] for t in sorted(out)]

    # ---- internals -------------------------------------------------------------------------

    def _product(self, inst: Instrument) -> str:
        return "DELIVERY" if inst.kind is InstrumentKind.INDEX else self.product

    def _order_params(self, request: OrderRequest, inst: Instrument) -> dict[str, Any]:
        otype = request.order_type
        params: dict[str, Any] = {
            "variety": "STOPLOSS" if otype.is_stop else "NORMAL",
            "tradingsymbol": inst.symbol,
            "symboltoken": inst.token,
            "transactiontype": request.side.value,
            "exchange": inst.exchange,
            "ordertype": otype.value,
            "producttype": self._product(inst),
            "duration": request.tif.value,
            "price": (
                paise_to_rupees(request.price_paise)
                if otype.has_limit_price and request.price_paise is not None
                else "0"
            ),
            "quantity": str(request.qty),
            "ordertag": request.client_order_id,
        }
        if otype.is_stop and request.trigger_price_paise is not None:
            params["triggerprice"] = paise_to_rupees(request.trigger_price_paise)
        return params

    def _refuse(
        self,
        kind: type[OrderCancelRejected] | type[OrderModifyRejected],
        cid: str,
        ts_ns: int,
        orderid: str | None,
        exc: AngelOneApiError | None,
    ) -> None:
        """A cancel or modify refused: by Angel One (``exc``: its reason), or here because
        the order is not known at Angel One (``exc`` None)."""
        if exc is None:
            code, reason = RejectCode.UNKNOWN_ORDER, "no such order at Angel One"
        else:
            code = RejectCode.UNKNOWN_ORDER if isinstance(exc, NotFoundError) else RejectCode.OTHER
            reason = exc.message
        self._pending.append(
            kind(ts_ns=ts_ns, client_order_id=cid, venue_order_id=orderid, code=code, reason=reason)
        )

    def _reject(self, cid: str, ts_ns: int, code: RejectCode, reason: str) -> None:
        track = self._tracks.get(cid)
        if track is not None:
            track.final = True
        log.warning("angel one: order rejected", extra={"client_order_id": cid, "reason": reason})
        self._pending.append(
            OrderRejected(
                ts_ns=ts_ns, client_order_id=cid, venue_order_id=None, code=code, reason=reason
            )
        )

    def _adopt(self, track: _Track, orderid: str) -> None:
        track.orderid = orderid
        track.uncertain = False
        self._by_orderid[orderid] = track.cid
        self._next_poll = 0.0

    def _has_live_orders(self) -> bool:
        return any(not t.final for t in self._tracks.values())

    def _book(self, *, wait_s: float = 5.0) -> list[dict[str, Any]]:
        rows = self._call("getOrderBook", lambda: self._api.orderBook(), wait_s=wait_s)
        self._last_book = [r for r in rows or [] if isinstance(r, dict)]
        return self._last_book

    def _find(self, track: _Track) -> bool:
        """Search the order book for the order by ``ordertag``; adopt it if there."""
        self.lookups += 1
        for row in self._book(wait_s=max(2.5, self.poll_interval_s * 2.5)):
            if str(row.get("ordertag") or "") == track.cid and row.get("orderid"):
                orderid = str(row["orderid"])
                if orderid in self._by_orderid and self._by_orderid[orderid] != track.cid:
                    continue
                log.info(
                    "angel one: order found by its ordertag after an uncertain placeOrder",
                    extra={"client_order_id": track.cid, "orderid": orderid},
                )
                self._adopt(track, orderid)
                return True
        return False

    def _track_from_report(self, r: OrderStatusReport) -> None:
        t = _Track(
            cid=r.client_order_id,
            token=r.instrument_token,
            side=r.side,
            order_type=r.order_type,
            tif=r.tif,
            qty=r.qty,
            price_paise=r.price_paise,
            trigger_paise=r.trigger_price_paise,
        )
        self._adopt(t, r.venue_order_id)
        self._tracks[t.cid] = t

    def _report(self, row: Mapping[str, Any]) -> OrderStatusReport | None:
        tag = str(row.get("ordertag") or "")
        if not tag or not row.get("orderid"):
            return None
        status = _status_of(row)
        filled = _int(row.get("filledshares"))
        mapped = {
            "open": OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.OPEN,
            "modified": OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.OPEN,
            "trigger pending": OrderStatus.TRIGGER_PENDING,
            "complete": OrderStatus.FILLED,
            "cancelled": OrderStatus.CANCELLED,
            "rejected": OrderStatus.REJECTED,
        }.get(status, OrderStatus.SUBMITTED)
        try:
            otype = OrderType(str(row.get("ordertype")).upper())
            price = _paise(row.get("price"))
            trigger = _paise(row.get("triggerprice"))
            return OrderStatusReport(
                client_order_id=tag,
                venue_order_id=str(row["orderid"]),
                instrument_token=str(row.get("symboltoken")),
                side=Side(str(row.get("transactiontype")).upper()),
                order_type=otype,
                tif=TimeInForce(str(row.get("duration") or "DAY").upper()),
                qty=_int(row.get("quantity")),
                filled_qty=filled,
                price_paise=price if otype.has_limit_price and price > 0 else None,
                trigger_price_paise=trigger if otype.is_stop and trigger > 0 else None,
                status=mapped,
                ts_ns=_ist_ns(row.get("updatetime"), 0),
            )
        except (ValueError, ValidationError) as exc:
            log.error(
                "angel one: unreadable order-book row",
                extra={"orderid": row.get("orderid"), "error": str(exc)},
            )
            return None

    def _fill_ns(self, trade: Mapping[str, Any], day_or_ts_ns: int) -> int:
        """A trade-book ``filltime`` (``HH:MM:SS`` IST) on the order's day."""
        text = str(trade.get("filltime") or "")
        try:
            h, m, s = (int(x) for x in text.split(":"))
        except ValueError:
            return day_or_ts_ns
        day = datetime.fromtimestamp(day_or_ts_ns / 1e9, IST).date() if day_or_ts_ns else None
        if day is None:
            return 0
        dt = datetime(day.year, day.month, day.day, h, m, s, tzinfo=IST)
        return int(dt.timestamp()) * 1_000_000_000

    def _poll(self) -> None:
        """One look at the order book, then the trade book; new events into ``_pending``."""
        rows = self._call("getOrderBook", lambda: self._api.orderBook(), wait_s=0.2)
        book = [r for r in rows or [] if isinstance(r, dict)]
        self._last_book = book
        live = [t for t in self._tracks.values() if not t.final]
        # orders whose answer was lost: their ordertag in the book adopts them
        for t in live:
            if t.orderid is None and t.uncertain:
                for row in book:
                    oid = str(row.get("orderid") or "")
                    if (
                        str(row.get("ordertag") or "") == t.cid
                        and oid
                        and oid not in self._by_orderid
                    ):
                        self._adopt(t, oid)
                        break
        trades: list[dict[str, Any]] = []
        if any(t.orderid is not None for t in live):
            if self.limiter.bucket("getTradeBook").wait_s() <= 0.3:
                got = self._call("getTradeBook", lambda: self._api.tradeBook(), wait_s=0.5)
                trades = [r for r in got or [] if isinstance(r, dict)]
                self._last_trades = trades
            else:
                trades = []  # fills next time: the order book's complete waits for them
        by_order: dict[str, list[dict[str, Any]]] = {}
        for tr in trades:
            by_order.setdefault(str(tr.get("orderid")), []).append(tr)
        for row in book:
            cid = self._by_orderid.get(str(row.get("orderid")))
            track = self._tracks.get(cid) if cid is not None else None
            if track is None or track.final:
                continue
            self._translate(track, row, by_order.get(str(row.get("orderid")), []), bool(trades))

    def _translate(
        self, t: _Track, row: Mapping[str, Any], fills: list[dict[str, Any]], have_trades: bool
    ) -> None:
        status = _status_of(row)
        ts = _ist_ns(row.get("updatetime"), 0) or time.time_ns()
        oid = t.orderid
        text = str(row.get("text") or "")
        out = self._pending
        if status == "rejected":
            t.final = True
            out.append(
                OrderRejected(
                    ts_ns=ts,
                    client_order_id=t.cid,
                    venue_order_id=oid,
                    code=RejectCode.OTHER,
                    reason=text or "rejected by Angel One",
                )
            )
            return
        if status in _NOT_YET or not status:
            return
        if not t.accepted:
            t.accepted = True
            t.waiting_trigger = t.order_type.is_stop
            out.append(
                OrderAccepted(
                    ts_ns=ts,
                    client_order_id=t.cid,
                    venue_order_id=oid,
                    status=OrderStatus.TRIGGER_PENDING if t.waiting_trigger else OrderStatus.OPEN,
                )
            )
        filled_in_book = _int(row.get("filledshares"))
        if t.waiting_trigger and (status in ("open", "complete", "modified") or filled_in_book > 0):
            t.waiting_trigger = False
            out.append(
                OrderTriggered(
                    ts_ns=ts,
                    client_order_id=t.cid,
                    venue_order_id=oid,
                    last_price_paise=t.trigger_paise or _paise(row.get("triggerprice")),
                )
            )
        if t.want is not None:
            now = (
                _int(row.get("quantity")),
                _paise(row.get("price")),
                _paise(row.get("triggerprice")),
            )
            want_q, want_p, want_tr = t.want
            done = (
                now[0] == want_q
                and (want_p is None or now[1] == want_p or not t.order_type.has_limit_price)
                and (want_tr is None or now[2] == want_tr or not t.order_type.is_stop)
            )
            if done:
                t.qty, t.price_paise, t.trigger_paise = t.want
                t.want = None
                out.append(
                    OrderModified(
                        ts_ns=ts,
                        client_order_id=t.cid,
                        venue_order_id=oid,
                        qty=t.qty,
                        price_paise=t.price_paise,
                        trigger_price_paise=t.trigger_paise,
                    )
                )
            elif status in ("complete", "cancelled") or t.want_polls >= 3:
                t.want = None
                out.append(
                    OrderModifyRejected(
                        ts_ns=ts,
                        client_order_id=t.cid,
                        venue_order_id=oid,
                        code=RejectCode.INVALID_MODIFY
                        if status not in ("complete", "cancelled")
                        else RejectCode.ORDER_NOT_OPEN,
                        reason=text or "the modification did not take effect",
                    )
                )
            else:
                t.want_polls += 1
        day_ns = _ist_ns(row.get("updatetime"), 0)
        for f in fills:
            fid = str(f.get("fillid") or "")
            if not fid or fid in t.fills:
                continue
            qty = _int(f.get("fillsize"))
            if qty <= 0:
                continue
            t.fills.add(fid)
            t.filled += qty
            price = _paise(f.get("fillprice"))
            cls = OrderFilled if t.filled >= t.qty else OrderPartiallyFilled
            out.append(
                cls(
                    ts_ns=self._fill_ns(f, day_ns) or ts,
                    client_order_id=t.cid,
                    venue_order_id=oid,
                    trade_id=fid,
                    instrument_token=t.token,
                    side=t.side,
                    qty=qty,
                    price_paise=price,
                    filled_qty=t.filled,
                    remaining_qty=max(t.qty - t.filled, 0),
                )
            )
            if t.filled >= t.qty:
                t.final = True
                return
        if status == "cancelled" and t.filled >= filled_in_book:
            t.final = True
            out.append(
                OrderCancelled(
                    ts_ns=ts,
                    client_order_id=t.cid,
                    venue_order_id=oid,
                    reason=text or "cancelled",
                    filled_qty=t.filled,
                    cancelled_qty=max(t.qty - t.filled, 0),
                )
            )
        elif status == "complete" and t.filled >= t.qty:
            t.final = True


class _OrderUpdates:
    """The order-update websocket (``SmartWebSocketOrderUpdate``) under a supervisor: a new
    client per connection with the library's own retries off, reconnect after 0.5 s doubling
    to 10 s (reset by a connection that opened); the session's tokens are read before every
    attempt. Messages go to :meth:`AngelOneBroker._order_update`."""

    def __init__(self, broker: AngelOneBroker) -> None:
        self.broker = broker
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._client: Any = None
        self._thread: threading.Thread | None = None
        self.opens = 0
        self.attempts = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="angelone-orders", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 15.0) -> None:
        # (a close that lands during the websocket handshake is only seen once the handshake
        # is over, and run_forever then joins its ping thread: allow for both)
        self._stopping.set()
        deadline = time.monotonic() + timeout_s
        while self._thread is not None and self._thread.is_alive():
            with self._lock:
                client = self._client
            if client is not None:
                close_websocket(client)
            self._thread.join(0.1)
            if time.monotonic() > deadline:
                log.warning("angel one: the order-update thread did not stop")
                break

    def _run(self) -> None:
        delay = 0.5
        while not self._stopping.is_set():
            opened = self.opens
            try:
                client = self._make()
            except Exception as exc:
                log.warning("angel one: order updates cannot connect", extra={"error": str(exc)})
                client = None
            if client is not None:
                with self._lock:
                    self._client = client
                self.attempts += 1
                try:
                    client.connect()
                except Exception as exc:
                    log.warning("angel one: order updates failed", extra={"error": str(exc)})
                with self._lock:
                    self._client = None
            if self.opens > opened:
                delay = 0.5
            if self._stopping.wait(delay):
                break
            delay = min(delay * 2.0, 10.0)

    def _make(self) -> Any:
        broker = self.broker
        lib = broker._lib or load_smartapi()
        jwt, feed = broker.access_token, broker.feed_token
        if not jwt or not feed:
            raise BrokerError("not logged in")
        outer = self

        class _Client(lib.SmartWebSocketOrderUpdate):  # type: ignore[misc, name-defined]
            WEBSOCKET_URI = broker.endpoints.order_feed_url
            MAX_CONNECTION_RETRY_ATTEMPTS = 0
            # run_forever's ping thread is joined on close after at most one interval: a short
            # one lets the supervisor stop within its timeout (the library's is 10 s)
            HEARTBEAT_INTERVAL_SECONDS = 3

            def on_open(self, wsapp: Any) -> None:
                outer.opens += 1
                if outer._stopping.is_set():
                    wsapp.close()

            def on_data(self, wsapp: Any, message: Any, data_type: Any, flag: Any) -> None:
                broker._order_update(message)

            def on_close(self, wsapp: Any, *args: Any) -> None:  # no library retry
                pass

            def on_error(self, wsapp: Any, error: Any) -> None:
                log.info("angel one: order updates ended", extra={"reason": type(error).__name__})

        bearer = jwt if jwt.startswith("Bearer ") else "Bearer " + jwt
        return _Client(bearer, broker.credentials.api_key, broker.credentials.client_code, feed)
