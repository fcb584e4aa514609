"""The paper venue over HTTP: :class:`RemoteVenue`, a Broker that talks to a
:class:`~algoengine.brokers.paper.server.PaperVenueServer` in another process, and the JSON wire
format both sides share.

Why: the paper exchange inside the engine dies with the engine. Run as its own process it
keeps the order book, the working orders and the trade book through an engine crash, so a
restarted engine can reconcile with it by client order id, as it would with Angel One.

Semantics the engine should know:

- ``submit``, ``cancel`` and ``modify`` return once the server has the request (HTTP 202):
  the outcome (accepted, rejected, filled, ...) arrives later as events through
  :meth:`RemoteVenue.drain_events`, which must be polled (the server never calls back).
- The server numbers every order event it produces from 1 (``seq``). ``drain_events`` reads
  from its cursor on and moves it; :meth:`RemoteVenue.snapshot` gives the open orders and the
  trade book together with the ``seq`` they include, so that recovery can reconcile from the
  snapshot and :meth:`RemoteVenue.seek` the cursor past what it already accounts for.
- A re-sent ``submit`` identical to one the server already has is acknowledged and not
  worked twice (a retry after a timeout is safe); a *different* order with a known client
  order id is passed to the exchange, which rejects it as ``DUPLICATE_CLIENT_ORDER_ID``.
- Every answer names the server's ``session`` (a random id per server process). If it
  changes the server was restarted and its books are gone: every later call raises
  :class:`~algoengine.errors.BrokerError`.
- Errors: no connection, a timeout or a 5xx answer raise
  :class:`~algoengine.errors.TemporaryBrokerError` (retrying is the caller's decision); a 4xx
  answer raises :class:`VenueRequestError` (a :class:`~algoengine.errors.BrokerError`) with the
  server's message and the offending ``field``.

There is no ``on_depth``: the server shows its exchange the market itself, and the engine must
not try to feed a remote venue. Not thread-safe: one thread (the engine's loop) uses it.

Units on the wire as everywhere: prices paise, quantities units, times UTC epoch ns;
enumerations as their string values.
"""

from __future__ import annotations

import http.client
import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, NoReturn, TypeVar

from algoengine.domain.events import OrderEvent, OrderFillEvent
from algoengine.domain.orders import (
    CLIENT_ORDER_ID_MAX_LEN,
    OrderRequest,
    OrderStatus,
    OrderStatusReport,
    OrderType,
    Side,
    TimeInForce,
)
from algoengine.errors import BrokerError, TemporaryBrokerError, ValidationError
from algoengine.persistence.records import EVENT_KINDS, OrderEventRow, event_payload

__all__ = [
    "RemoteVenue",
    "VenueRequestError",
    "VenueSnapshot",
    "VenueTrade",
    "check_client_order_id",
    "event_from_wire",
    "event_to_wire",
    "modify_from_wire",
    "modify_to_wire",
    "report_from_wire",
    "report_to_wire",
    "request_from_wire",
    "request_to_wire",
    "trade_from_wire",
    "trade_to_wire",
]

E = TypeVar("E", bound=Enum)


# ---- values ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class VenueTrade:
    """One fill of one of our orders in the venue's trade book.

    Parameters
    ----------
    client_order_id
        Our order's id.
    trade_id
        The exchange's trade id (shared by both orders when two of ours trade together).
    instrument_token, side
        What was traded, from our order's side.
    qty
        Units of this fill.
    price_paise
        Its price [paise].
    ts_ns
        Exchange time of the fill [UTC epoch ns].
    """

    client_order_id: str
    trade_id: str
    instrument_token: str
    side: Side
    qty: int
    price_paise: int
    ts_ns: int

    @classmethod
    def from_fill(cls, event: OrderFillEvent) -> VenueTrade:
        """The trade-book row of a fill event."""
        return cls(
            client_order_id=event.client_order_id,
            trade_id=event.trade_id,
            instrument_token=event.instrument_token,
            side=event.side,
            qty=event.qty,
            price_paise=event.price_paise,
            ts_ns=event.ts_ns,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class VenueSnapshot:
    """The venue's books at one instant, consistent with its event log.

    Parameters
    ----------
    open_orders
        Working orders (trigger pending, open, partially filled), oldest first.
    trades
        Every fill so far, in the order they happened.
    last_seq
        The ``seq`` of the newest event the books include: events after it are not in them.
    now_ns
        The venue's simulated time [UTC epoch ns].
    """

    open_orders: tuple[OrderStatusReport, ...]
    trades: tuple[VenueTrade, ...]
    last_seq: int
    now_ns: int


class VenueRequestError(BrokerError):
    """The server refused a request (HTTP 4xx): ``status`` is the HTTP status and ``field``
    the request field it named (``None`` if it named none)."""

    def __init__(self, message: str, *, status: int, field: str | None = None) -> None:
        self.status = status
        self.field = field
        super().__init__(message, code=f"HTTP {status}")


# ---- the wire format -------------------------------------------------------------------------


def _object(name: str, data: object) -> Mapping[str, Any]:
    if not isinstance(data, Mapping) or not all(isinstance(k, str) for k in data):
        raise ValidationError(name, data, "must be a JSON object")
    return data


def _fields(
    name: str, data: object, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> Mapping[str, Any]:
    """``data`` as a JSON object with exactly these keys (the optional ones may be absent)."""
    obj = _object(name, data)
    for key in obj:
        if key not in required and key not in optional:
            raise ValidationError(key, obj[key], "unknown field")
    for key in required:
        if key not in obj:
            raise ValidationError(key, None, "required")
    return obj


def _enum(field: str, value: object, enum: type[E]) -> E:
    if isinstance(value, enum):
        return value
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in enum)
        raise ValidationError(field, value, f"must be one of {allowed}") from None


def _int(field: str, value: object, *, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(field, value, "must be an integer")
    if value < minimum:
        raise ValidationError(field, value, f"must be >= {minimum}")
    return value


def _opt_int(field: str, value: object, *, minimum: int = 0) -> int | None:
    return None if value is None else _int(field, value, minimum=minimum)


def modify_to_wire(
    qty: int | None, price_paise: int | None, trigger_price_paise: int | None
) -> dict[str, Any]:
    """A modification as JSON data (the body of ``POST /orders/<cid>/modify``)."""
    return {"qty": qty, "price_paise": price_paise, "trigger_price_paise": trigger_price_paise}


def modify_from_wire(data: object) -> tuple[int | None, int | None, int | None]:
    """``(qty, price_paise, trigger_price_paise)`` of a modify body (each may be absent or
    null: unchanged); ValidationError naming the field otherwise."""
    obj = _fields(
        "body", {} if data is None else data, (), ("qty", "price_paise", "trigger_price_paise")
    )
    return (
        _opt_int("qty", obj.get("qty"), minimum=1),
        _opt_int("price_paise", obj.get("price_paise"), minimum=1),
        _opt_int("trigger_price_paise", obj.get("trigger_price_paise"), minimum=1),
    )


def _str(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, value, "must be a string")
    return value


def request_to_wire(request: OrderRequest) -> dict[str, Any]:
    """An order request as JSON data (the body of ``POST /orders``)."""
    return {
        "client_order_id": request.client_order_id,
        "instrument_token": request.instrument_token,
        "side": request.side.value,
        "order_type": request.order_type.value,
        "qty": request.qty,
        "price_paise": request.price_paise,
        "trigger_price_paise": request.trigger_price_paise,
        "tif": request.tif.value,
        "strategy_id": request.strategy_id,
    }


def request_from_wire(data: object) -> OrderRequest:
    """The order request of a ``POST /orders`` body.

    Raises
    ------
    ValidationError
        naming the field: not an object, an unknown or missing field, a wrong type or value
        (the :class:`~algoengine.domain.orders.OrderRequest` rules).
    """
    obj = _fields(
        "body",
        data,
        ("client_order_id", "instrument_token", "side", "order_type", "qty", "strategy_id"),
        ("price_paise", "trigger_price_paise", "tif"),
    )
    return OrderRequest(
        client_order_id=_str("client_order_id", obj["client_order_id"]),
        instrument_token=_str("instrument_token", obj["instrument_token"]),
        side=_enum("side", obj["side"], Side),
        order_type=_enum("order_type", obj["order_type"], OrderType),
        qty=_int("qty", obj["qty"], minimum=1),
        price_paise=_opt_int("price_paise", obj.get("price_paise"), minimum=1),
        trigger_price_paise=_opt_int(
            "trigger_price_paise", obj.get("trigger_price_paise"), minimum=1
        ),
        tif=_enum("tif", obj.get("tif", TimeInForce.DAY.value), TimeInForce),
        strategy_id=_str("strategy_id", obj["strategy_id"]),
    )


_REPORT_FIELDS = (
    "client_order_id",
    "venue_order_id",
    "instrument_token",
    "side",
    "order_type",
    "tif",
    "qty",
    "filled_qty",
    "price_paise",
    "trigger_price_paise",
    "status",
    "ts_ns",
)


def report_to_wire(report: OrderStatusReport) -> dict[str, Any]:
    """An order status report as JSON data."""
    out: dict[str, Any] = {}
    for name in _REPORT_FIELDS:
        value = getattr(report, name)
        out[name] = value.value if isinstance(value, Enum) else value
    return out


def report_from_wire(data: object) -> OrderStatusReport:
    """The order status report of :func:`report_to_wire`'s JSON data (ValidationError naming
    the field if it does not fit)."""
    obj = _fields("order", data, _REPORT_FIELDS)
    return OrderStatusReport(
        client_order_id=_str("client_order_id", obj["client_order_id"]),
        venue_order_id=_str("venue_order_id", obj["venue_order_id"]),
        instrument_token=_str("instrument_token", obj["instrument_token"]),
        side=_enum("side", obj["side"], Side),
        order_type=_enum("order_type", obj["order_type"], OrderType),
        tif=_enum("tif", obj["tif"], TimeInForce),
        qty=_int("qty", obj["qty"]),
        filled_qty=_int("filled_qty", obj["filled_qty"]),
        price_paise=_opt_int("price_paise", obj["price_paise"]),
        trigger_price_paise=_opt_int("trigger_price_paise", obj["trigger_price_paise"]),
        status=_enum("status", obj["status"], OrderStatus),
        ts_ns=_int("ts_ns", obj["ts_ns"]),
    )


_TRADE_FIELDS = (
    "client_order_id",
    "trade_id",
    "instrument_token",
    "side",
    "qty",
    "price_paise",
    "ts_ns",
)


def trade_to_wire(trade: VenueTrade) -> dict[str, Any]:
    """A trade-book row as JSON data."""
    return {
        "client_order_id": trade.client_order_id,
        "trade_id": trade.trade_id,
        "instrument_token": trade.instrument_token,
        "side": trade.side.value,
        "qty": trade.qty,
        "price_paise": trade.price_paise,
        "ts_ns": trade.ts_ns,
    }


def trade_from_wire(data: object) -> VenueTrade:
    """The trade-book row of :func:`trade_to_wire`'s JSON data."""
    obj = _fields("trade", data, _TRADE_FIELDS)
    return VenueTrade(
        client_order_id=_str("client_order_id", obj["client_order_id"]),
        trade_id=_str("trade_id", obj["trade_id"]),
        instrument_token=_str("instrument_token", obj["instrument_token"]),
        side=_enum("side", obj["side"], Side),
        qty=_int("qty", obj["qty"], minimum=1),
        price_paise=_int("price_paise", obj["price_paise"]),
        ts_ns=_int("ts_ns", obj["ts_ns"]),
    )


def event_to_wire(seq: int, event: OrderEvent) -> dict[str, Any]:
    """The ``seq``-th order event of the venue as JSON data: ``{"seq", "kind", "payload"}``
    (the payload as :func:`algoengine.persistence.records.event_payload` writes it)."""
    return {"seq": seq, "kind": type(event).__name__, "payload": event_payload(event)}


def event_from_wire(data: object) -> tuple[int, OrderEvent]:
    """``(seq, event)`` from :func:`event_to_wire`'s JSON data (ValidationError naming the
    field if it does not fit an order event)."""
    obj = _fields("event", data, ("seq", "kind", "payload"))
    seq = _int("seq", obj["seq"], minimum=1)
    kind = _str("kind", obj["kind"])
    if kind not in EVENT_KINDS:
        raise ValidationError("kind", kind, "not an order event class")
    payload = _object("payload", obj["payload"])
    row = OrderEventRow(
        client_order_id=_str("payload.client_order_id", payload.get("client_order_id")),
        seq=seq,
        kind=kind,
        ts_ns=_int("payload.ts_ns", payload.get("ts_ns")),
        payload=payload,
    )
    return seq, row.to_event()


def check_client_order_id(value: object) -> str:
    """``value`` if it can be a client order id (1-20 of ``A-Z a-z 0-9 _ -``)."""
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= CLIENT_ORDER_ID_MAX_LEN
        or not all(c.isascii() and (c.isalnum() or c in "_-") for c in value)
    ):
        raise ValidationError(
            "client_order_id",
            value,
            f"must be 1-{CLIENT_ORDER_ID_MAX_LEN} characters of A-Z, a-z, 0-9, '_' and '-'",
        )
    return value


# ---- the client ------------------------------------------------------------------------------


class RemoteVenue:
    """The Broker protocol over HTTP, against a paper venue server (see the module docstring).

    Parameters
    ----------
    base_url
        The server's address, e.g. ``"http://127.0.0.1:8765"`` (what the server prints).
    timeout_s
        Seconds a request may take (connect and answer) before it fails with
        :class:`~algoengine.errors.TemporaryBrokerError`.

    Raises
    ------
    ValidationError
        ``base_url`` is not an http(s) URL, or ``timeout_s`` is not a positive number.
    """

    def __init__(self, base_url: str, *, timeout_s: float = 5.0) -> None:
        parts = urllib.parse.urlsplit(base_url) if isinstance(base_url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValidationError("base_url", base_url, "must be an http:// or https:// URL")
        if (
            not isinstance(timeout_s, int | float)
            or isinstance(timeout_s, bool)
            or not math.isfinite(timeout_s)
            or timeout_s <= 0
        ):
            raise ValidationError("timeout_s", timeout_s, "must be a number of seconds > 0")
        self.base_url = base_url.rstrip("/")
        self.timeout_s = float(timeout_s)
        self._cursor = 0
        self._session: str | None = None
        # never through an HTTP proxy from the environment: the venue is local
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # ---- the Broker protocol ------------------------------------------------------------------

    def submit(self, request: OrderRequest, ts_ns: int) -> None:
        """Send a new order (``ts_ns`` is ignored: the server stamps it with its own clock,
        the same simulated time). The outcome arrives as events."""
        if not isinstance(request, OrderRequest):
            raise ValidationError("request", request, "must be an OrderRequest")
        self._call("POST", "/orders", request_to_wire(request))

    def cancel(self, client_order_id: str, ts_ns: int) -> None:
        """Ask the venue to cancel a working order (outcome: ``OrderCancelled`` or
        ``OrderCancelRejected``)."""
        cid = check_client_order_id(client_order_id)
        self._call("POST", f"/orders/{cid}/cancel", {})

    def modify(
        self,
        client_order_id: str,
        ts_ns: int,
        *,
        qty: int | None = None,
        price_paise: int | None = None,
        trigger_price_paise: int | None = None,
    ) -> None:
        """Ask the venue to change a working order: ``qty`` the new total quantity (units),
        prices in paise; ``None`` keeps a field (outcome: ``OrderModified`` or
        ``OrderModifyRejected``)."""
        cid = check_client_order_id(client_order_id)
        body = modify_to_wire(qty, price_paise, trigger_price_paise)
        self._call("POST", f"/orders/{cid}/modify", body)

    def drain_events(self) -> list[OrderEvent]:
        """The order events the venue produced since the cursor, in order; moves the cursor
        past them (one HTTP request)."""
        pairs, last = self._events(self._cursor)
        self._cursor = last
        return [e for _, e in pairs]

    def open_orders(self) -> list[OrderStatusReport]:
        """The venue's working orders now, oldest first."""
        data = self._call("GET", "/orders")
        return [report_from_wire(o) for o in self._list(data, "orders")]

    # ---- reconciliation -----------------------------------------------------------------------

    @property
    def cursor(self) -> int:
        """The ``seq`` of the last event :meth:`drain_events` returned (0: none yet)."""
        return self._cursor

    def seek(self, seq: int) -> None:
        """Set the cursor: the next :meth:`drain_events` returns the events after ``seq``
        (recovery: after reconciling from a :meth:`snapshot` taken at ``last_seq``)."""
        self._cursor = _int("seq", seq)

    def events_since(self, seq: int) -> list[tuple[int, OrderEvent]]:
        """``(seq, event)`` for every event after ``seq``, in order (the cursor stays)."""
        pairs, _ = self._events(_int("seq", seq))
        return pairs

    def order(self, client_order_id: str) -> OrderStatusReport | None:
        """The venue's view of one order, or ``None`` if it never received it. An order the
        server has received but the exchange has not yet (``order_latency_ns``) is reported
        SUBMITTED with an empty ``venue_order_id``."""
        cid = check_client_order_id(client_order_id)
        try:
            data = self._call("GET", f"/orders/{cid}")
        except VenueRequestError as exc:
            if exc.status == 404 and exc.field == "client_order_id":
                return None
            raise
        return report_from_wire(_object("answer", data).get("order"))

    def trades(self) -> list[VenueTrade]:
        """The venue's trade book: every fill of our orders so far, in order."""
        data = self._call("GET", "/trades")
        return [trade_from_wire(t) for t in self._list(data, "trades")]

    def snapshot(self) -> VenueSnapshot:
        """Open orders and the trade book at one instant, with the event ``seq`` they include
        (one request: the two books are consistent with each other and with the event log)."""
        data = _object("answer", self._call("GET", "/book"))
        return VenueSnapshot(
            open_orders=tuple(report_from_wire(o) for o in self._list(data, "orders")),
            trades=tuple(trade_from_wire(t) for t in self._list(data, "trades")),
            last_seq=_int("last", data.get("last")),
            now_ns=_int("now_ns", data.get("now_ns")),
        )

    def now_ns(self) -> int:
        """The venue's simulated time [UTC epoch ns] (``GET /health``)."""
        data = _object("answer", self._call("GET", "/health"))
        return _int("now_ns", data.get("now_ns"))

    # ---- HTTP ---------------------------------------------------------------------------------

    def _events(self, after: int) -> tuple[list[tuple[int, OrderEvent]], int]:
        data = _object("answer", self._call("GET", f"/events?after={after}"))
        try:
            last = _int("last", data.get("last"))
            pairs = [event_from_wire(e) for e in self._list(data, "events")]
        except ValidationError as exc:
            raise BrokerError(f"malformed events from the paper venue: {exc}") from None
        expected = list(range(after + 1, last + 1))
        if [s for s, _ in pairs] != expected:
            raise BrokerError(f"the paper venue's events after {after} are not {after + 1}..{last}")
        return pairs, last

    @staticmethod
    def _list(data: object, key: str) -> list[Any]:
        value = _object("answer", data).get(key)
        if not isinstance(value, list):
            raise BrokerError(f"malformed answer from the paper venue: no list {key!r}")
        return value

    def _call(self, method: str, path: str, body: object | None = None) -> Any:
        """One request; the decoded JSON answer (see the module docstring for the errors)."""
        url = self.base_url + path
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self._opener.open(req, timeout=self.timeout_s) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            self._raise_for(exc, method, path)
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise TemporaryBrokerError(
                f"paper venue {self.base_url} unreachable ({method} {path}): {reason}"
            ) from exc
        try:
            answer = json.loads(raw)
        except ValueError:
            raise BrokerError(f"paper venue answered {method} {path} with no JSON") from None
        self._check_session(answer)
        return answer

    def _raise_for(self, exc: urllib.error.HTTPError, method: str, path: str) -> NoReturn:
        try:
            answer = json.loads(exc.read())
        except (ValueError, OSError, http.client.HTTPException):
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        message = str(answer.get("error") or exc.reason)
        field = answer.get("field")
        if exc.code >= 500:
            raise TemporaryBrokerError(f"paper venue failed {method} {path}: {message}") from None
        raise VenueRequestError(
            message, status=exc.code, field=field if isinstance(field, str) else None
        ) from None

    def _check_session(self, answer: object) -> None:
        session = answer.get("session") if isinstance(answer, dict) else None
        if not isinstance(session, str):
            return
        if self._session is None:
            self._session = session
        elif session != self._session:
            raise BrokerError(
                f"the paper venue restarted (session {session}, was {self._session}): "
                "its order book, trade book and event log are gone"
            )
