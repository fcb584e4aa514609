"""The paper exchange as its own process, so that an engine can crash and find its orders.

:class:`PaperVenueServer` owns a :class:`~algoengine.brokers.paper.PaperExchange` listing the
universe of one day's market (the one :func:`~algoengine.backtest.runner.open_feed` builds from
the settings: synthetic, or a replay) and plays that day on a
:class:`~algoengine.engine.clock.RealClock` (``speed`` simulated seconds per real second, the
session's open at the real moment ``anchor_wall_ns``). An engine given a RealClock with the same
open, speed and anchor shares its simulated time, and trades against it through
:class:`~algoengine.brokers.paper.remote.RemoteVenue`.

The market, as in the engine (:mod:`algoengine.engine.venue_feed`): a background thread applies
each slice once the clock has passed its time, to a quote board of the server's own, and shows
the exchange the slices of the instruments in which orders work (a bar's path when its range
could touch one of them). A new order first brings its instrument's book up to date with the
board's latest quote, as ``Engine.place`` does. Every request also catches the market up to
now first, so an order sent right after a slice meets that slice's market. All exchange access
is under one lock (the exchange is not thread-safe). Time in the exchange is the server's
clock; the ``ts_ns`` a client passes is not used.

HTTP JSON API (stdlib ``ThreadingHTTPServer``; no authentication: bind to 127.0.0.1)::

    POST /orders                  OrderRequest fields -> 202 {"ok": true, "duplicate": false}
    POST /orders/<cid>/cancel     -> 202 {"ok": true}
    POST /orders/<cid>/modify     {qty, price_paise, trigger_price_paise} -> 202 {"ok": true}
    GET  /events?after=<seq>      -> {"events": [{"seq", "kind", "payload"}], "last": n}
    GET  /orders                  -> {"orders": [report, ...], "last": n}   (working orders)
    GET  /orders/<cid>            -> {"order": report, "last": n}, or 404
    GET  /trades                  -> {"trades": [trade, ...], "last": n}
    GET  /book                    -> {"orders": [...], "trades": [...], "last": n, "now_ns": t}
    GET  /health                  -> {"ok": true, "now_ns": t, "last": n, "day": "YYYY-MM-DD"}

Every answer carries ``"session"`` (random per process). ``last`` is the ``seq`` of the newest
order event (events are numbered from 1 and kept for the whole session), so every book comes
with the point of the event log it includes. Outcomes of requests (accepted, rejected, filled,
cancel or modify refused) are events, never HTTP errors: HTTP errors are for malformed requests
(400 ``{"error", "field"}``, the field the :class:`~algoengine.errors.ValidationError` names),
unknown orders in ``GET /orders/<cid>`` (404), unknown paths (404) and wrong methods (405). An
identical re-sent ``POST /orders`` is acknowledged with ``"duplicate": true`` and not worked
again; a different order with a known client order id goes to the exchange, which rejects it.

Run it as ``python -m algoengine.brokers.paper.server --day 2026-11-03 --speed 300
--anchor-wall-ns N --port P [--config FILE]``: it prints ``listening on http://127.0.0.1:P``
(flushed) and serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

from algoengine.backtest.runner import open_feed, paper_day
from algoengine.brokers.paper.exchange import PaperExchange
from algoengine.brokers.paper.remote import (
    VenueTrade,
    check_client_order_id,
    event_to_wire,
    modify_from_wire,
    report_to_wire,
    request_from_wire,
    trade_to_wire,
)
from algoengine.domain.events import OrderFillEvent
from algoengine.domain.market_data import MarketSlice
from algoengine.domain.orders import (
    OrderRequest,
    OrderStatus,
    OrderStatusReport,
    OrderType,
    Side,
)
from algoengine.engine.clock import RealClock
from algoengine.engine.venue_feed import VenueFeeder
from algoengine.errors import AlgoEngineError, ConfigurationError, ValidationError
from algoengine.market.calendar import TradingCalendar
from algoengine.market.quotes import QuoteBoard
from algoengine.settings import Settings, load_settings

__all__ = ["PaperVenueServer", "main"]

log = logging.getLogger(__name__)

_TICK_S = 0.01  # real seconds between market steps when no slice is due sooner
_MAX_BODY = 64 * 1024  # bytes


@dataclass(slots=True)
class _Working:
    """What :func:`could_touch` needs of a working order."""

    side: Side
    order_type: OrderType
    price_paise: int | None
    trigger_price_paise: int | None


class _HttpError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


Answer = tuple[int, dict[str, Any]]


class PaperVenueServer:
    """The paper exchange behind an HTTP JSON API, on its own clock (see the module docstring).

    Parameters
    ----------
    settings
        ``settings.exchange`` configures the exchange; ``settings.market`` gives the market.
    day
        The session to play (IST date; must be a trading day of the market).
    speed
        Simulated seconds per real second (> 0).
    anchor_wall_ns
        The real moment [UTC epoch ns] at which the simulated clock shows the session's open.
    host, port
        Where to listen (``port=0``: a free port; :meth:`start` says which).

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
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if not isinstance(settings, Settings):
            raise ValidationError("settings", settings, "must be a Settings")
        if not isinstance(day, date) or isinstance(day, datetime):
            raise ValidationError("day", day, "must be a datetime.date")
        if (
            not isinstance(speed, int | float)
            or isinstance(speed, bool)
            or not math.isfinite(speed)
            or speed <= 0
        ):
            raise ValidationError("speed", speed, "must be a finite number > 0")
        if not isinstance(anchor_wall_ns, int) or isinstance(anchor_wall_ns, bool):
            raise ValidationError("anchor_wall_ns", anchor_wall_ns, "must be an integer (ns)")
        if not isinstance(host, str) or not host:
            raise ValidationError("host", host, "must be a host name or address")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ValidationError("port", port, "must be an integer in 0..65535")
        if not _calendar(settings).is_trading_day(day):
            raise ConfigurationError(f"day: {day} is not a trading day (weekend or holiday)")
        feed, universe, calendar, days = open_feed(settings, day, day)
        if day not in days:
            raise ConfigurationError(f"day: {day} is not a trading day of the market")
        self.day = day
        self.universe = universe
        self.session_id = uuid.uuid4().hex[:16]
        self.clock = RealClock(
            speed=float(speed),
            start_ns=calendar.session_open_ns(day),
            anchor_wall_ns=anchor_wall_ns,
        )
        self.exchange = PaperExchange(settings.exchange, list(universe))
        self.board = QuoteBoard(universe)
        self._tokens = [inst.token for inst in universe]
        self._index = {token: i for i, token in enumerate(self._tokens)}
        self._feeder = VenueFeeder(self.exchange, self._tokens, universe.tick_paise)
        self._feed: Iterator[MarketSlice] = iter(feed)
        self._next: MarketSlice | None = next(self._feed, None)  # builds the day's market now
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []  # seq n at index n - 1
        self._trades: list[VenueTrade] = []
        self._received: dict[str, tuple[OrderRequest, int]] = {}  # cid -> (request, when)
        self._live: dict[str, OrderRequest] = {}  # orders not known to have finished
        self._stop = threading.Event()
        self._address = (host, port)
        self._http: _HttpServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopped = False

    # ---- life ---------------------------------------------------------------------------------

    def start(self) -> tuple[str, int]:
        """Listen and start the market thread; returns ``(host, port)`` listened on.

        Raises
        ------
        ConfigurationError
            The address cannot be listened on (port taken, unknown host).
        """
        if self._stopped:
            raise ConfigurationError("paper venue: a stopped server cannot start again")
        if self._http is None:
            try:
                self._http = _HttpServer(self._address, _Handler, venue=self)
            except OSError as exc:
                host, port = self._address
                raise ConfigurationError(f"port: cannot listen on {host}:{port}: {exc}") from exc
            market = threading.Thread(target=self._run_market, name="paper-venue-market")
            serve = threading.Thread(
                target=self._http.serve_forever, kwargs={"poll_interval": 0.1}, name="paper-venue"
            )
            self._threads = [market, serve]
            for t in self._threads:
                t.daemon = True
                t.start()
            log.info(
                "paper venue listening",
                extra={"url": self.url, "day": str(self.day), "speed": self.clock.speed},
            )
        return self.address

    def stop(self) -> None:
        """Stop serving and the market thread (idempotent); the books are dropped with it."""
        self._stopped = True
        self._stop.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        for t in self._threads:
            t.join(timeout=5.0)
        self._threads = []

    def __enter__(self) -> PaperVenueServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` listened on (the requested ones before :meth:`start`)."""
        if self._http is None:
            return self._address
        host, port = self._http.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        """The base URL for :class:`~algoengine.brokers.paper.remote.RemoteVenue`."""
        host, port = self.address
        return f"http://{host}:{port}"

    def now_ns(self) -> int:
        """The simulated time [UTC epoch ns]."""
        return self.clock.now_ns()

    # ---- the market ---------------------------------------------------------------------------

    def _run_market(self) -> None:
        while not self._stop.is_set():
            due: int | None = None
            try:
                with self._lock:
                    self._catch_up()
                    due = self._next.ts_ns if self._next is not None else None
            except Exception:  # the market thread must not die: log and go on
                log.exception("paper venue: market step failed")
            wait = _TICK_S if due is None else min(_TICK_S, self.clock.real_delay_s(due))
            self._stop.wait(max(wait, 0.0005))

    def _now(self) -> int:
        """Now for the exchange: the clock, never behind the exchange (lock held)."""
        return max(self.clock.now_ns(), self.exchange.now_ns)

    def _catch_up(self) -> int:
        """Apply the slices due by now, move the exchange to now and collect its events
        (lock held); returns now."""
        now = self._now()
        while self._next is not None and self._next.ts_ns <= now:
            m = self._next
            try:
                self._apply_slice(m)
            except AlgoEngineError as exc:  # a bad slice is skipped, not fatal
                log.error(
                    "paper venue: slice not applied", extra={"ts_ns": m.ts_ns, "error": str(exc)}
                )
            self._next = next(self._feed, None)
        self.exchange.advance(now)
        self._collect()
        return now

    def _apply_slice(self, m: MarketSlice) -> None:
        """The board takes the slice; the exchange is shown the instruments we work orders
        in (the engine's ``_show_venue``)."""
        ts = max(m.ts_ns, self.exchange.now_ns)
        self.board.apply(m)
        self._feeder.show_slice(m, ts, self._working())

    def _working(self) -> dict[int, list[_Working]]:
        """Orders received and not finished, by universe index (forgets finished ones)."""
        out: dict[int, list[_Working]] = {}
        for cid, request in list(self._live.items()):
            report = self.exchange.order(cid)
            if report is not None and report.status.is_terminal:
                del self._live[cid]
                continue
            idx = self._index.get(request.instrument_token)
            if idx is None:
                continue
            now = report if report is not None else request  # request: not arrived yet
            out.setdefault(idx, []).append(
                _Working(
                    side=request.side,
                    order_type=request.order_type,
                    price_paise=now.price_paise,
                    trigger_price_paise=now.trigger_price_paise,
                )
            )
        return out

    def _collect(self) -> None:
        """Number the exchange's new events and book the fills (lock held)."""
        for event in self.exchange.drain_events():
            seq = len(self._events) + 1
            self._events.append(event_to_wire(seq, event))
            if isinstance(event, OrderFillEvent):
                self._trades.append(VenueTrade.from_fill(event))
            log.debug(
                "order event",
                extra={
                    "seq": seq,
                    "event": type(event).__name__,
                    "client_order_id": event.client_order_id,
                },
            )

    # ---- requests (each under the lock) -------------------------------------------------------

    def _submit(self, request: OrderRequest) -> bool:
        """Send an order (False: an identical one was received before; nothing is sent)."""
        cid = request.client_order_id
        with self._lock:
            seen = self._received.get(cid)
            if seen is not None and seen[0] == request:
                return False
            now = self._catch_up()
            idx = self._index.get(request.instrument_token)
            if idx is not None:  # the book must show the market the order meets
                b = self.board
                self._feeder.show_quote(
                    idx,
                    now,
                    int(b.bid[idx]),
                    int(b.bid_qty[idx]),
                    int(b.ask[idx]),
                    int(b.ask_qty[idx]),
                    unless_shown=True,
                )
            if seen is None:
                self._received[cid] = (request, now)
                self._live[cid] = request
            self.exchange.submit(request, now)
            self._collect()
        log.info(
            "order received",
            extra={"client_order_id": cid, "strategy_id": request.strategy_id},
        )
        return True

    def _cancel(self, client_order_id: str) -> None:
        with self._lock:
            now = self._catch_up()
            self.exchange.cancel(client_order_id, now)
            self._collect()

    def _modify(
        self, client_order_id: str, qty: int | None, price: int | None, trigger: int | None
    ) -> None:
        with self._lock:
            now = self._catch_up()
            self.exchange.modify(
                client_order_id, now, qty=qty, price_paise=price, trigger_price_paise=trigger
            )
            self._collect()

    def _report(self, client_order_id: str) -> OrderStatusReport | None:
        """The exchange's report; SUBMITTED for one received but not yet arrived (lock held)."""
        report = self.exchange.order(client_order_id)
        if report is not None:
            return report
        seen = self._received.get(client_order_id)
        if seen is None:
            return None
        r, ts = seen
        return OrderStatusReport(
            client_order_id=r.client_order_id,
            venue_order_id="",
            instrument_token=r.instrument_token,
            side=r.side,
            order_type=r.order_type,
            tif=r.tif,
            qty=r.qty,
            filled_qty=0,
            price_paise=r.price_paise,
            trigger_price_paise=r.trigger_price_paise,
            status=OrderStatus.SUBMITTED,
            ts_ns=ts,
        )

    # ---- the HTTP API -------------------------------------------------------------------------

    def _route(self, method: str, target: str, body: object | None) -> Answer:
        parts = urllib.parse.urlsplit(target)
        path = [urllib.parse.unquote(p) for p in parts.path.split("/") if p]
        query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        n = len(path)
        reader = self._readers.get(parts.path.rstrip("/"))
        if reader is not None:
            _method(method, "GET")
            return reader(self, query)
        if path == ["orders"]:
            if method == "POST":
                duplicate = not self._submit(request_from_wire(body))
                return 202, {"ok": True, "duplicate": duplicate}
            _method(method, "GET", "POST")
            with self._lock:
                self._catch_up()
                orders = [report_to_wire(r) for r in self.exchange.open_orders()]
                return 200, {"orders": orders, "last": len(self._events)}
        if n == 2 and path[0] == "orders":
            _method(method, "GET")
            cid = check_client_order_id(path[1])
            with self._lock:
                self._catch_up()
                report = self._report(cid)
                last = len(self._events)
            if report is None:
                raise _HttpError(404, f"no order with client order id {cid!r}", "client_order_id")
            return 200, {"order": report_to_wire(report), "last": last}
        if n == 3 and path[0] == "orders" and path[2] in ("cancel", "modify"):
            _method(method, "POST")
            cid = check_client_order_id(path[1])
            if path[2] == "cancel":
                if body is not None and body != {}:
                    raise ValidationError("body", body, "a cancel takes no fields")
                self._cancel(cid)
            else:
                self._modify(cid, *modify_from_wire(body))
            return 202, {"ok": True}
        raise _HttpError(404, f"no endpoint {parts.path!r}", "path")

    def _get_health(self, query: dict[str, list[str]]) -> Answer:
        with self._lock:
            now = self._catch_up()
            last = len(self._events)
        return 200, {"ok": True, "now_ns": now, "last": last, "day": self.day.isoformat()}

    def _get_events(self, query: dict[str, list[str]]) -> Answer:
        after = _query_int(query, "after")
        with self._lock:
            self._catch_up()
            last = len(self._events)
            if after > last:
                raise ValidationError("after", after, f"beyond the last event ({last})")
            events = self._events[after:]
        return 200, {"events": events, "last": last}

    def _get_trades(self, query: dict[str, list[str]]) -> Answer:
        with self._lock:
            self._catch_up()
            trades = list(self._trades)
            last = len(self._events)
        return 200, {"trades": [trade_to_wire(t) for t in trades], "last": last}

    def _get_book(self, query: dict[str, list[str]]) -> Answer:
        with self._lock:
            now = self._catch_up()
            orders = self.exchange.open_orders()
            trades = list(self._trades)
            last = len(self._events)
        return 200, {
            "orders": [report_to_wire(r) for r in orders],
            "trades": [trade_to_wire(t) for t in trades],
            "last": last,
            "now_ns": now,
        }

    _readers: ClassVar[dict[str, Callable[[PaperVenueServer, dict[str, list[str]]], Answer]]] = {
        "/health": _get_health,
        "/events": _get_events,
        "/trades": _get_trades,
        "/book": _get_book,
    }


def _calendar(settings: Settings) -> TradingCalendar:
    """The market's trading calendar (the one :func:`open_feed` uses)."""
    syn = settings.market.synthetic
    return TradingCalendar(syn.holidays, open_time=syn.open_time, close_time=syn.close_time)


def _method(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise _HttpError(405, f"method {method} not allowed here (use {', '.join(allowed)})")


def _query_int(query: dict[str, list[str]], name: str) -> int:
    values = query.get(name)
    if not values:
        return 0
    text = values[-1]
    if not text.isascii() or not text.isdigit():
        raise ValidationError(name, text, "must be an integer >= 0")
    return int(text)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        *,
        venue: PaperVenueServer,
    ) -> None:
        self.venue = venue
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer
    timeout = 10.0  # a client that stalls mid-request loses its connection, not a thread
    server_version = "algoengine-paper-venue"

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def _handle(self, method: str) -> None:
        venue = self.server.venue
        try:
            body = self._body()
            status, answer = venue._route(method, self.path, body)
        except ValidationError as exc:
            status, answer = 400, {"error": _short(str(exc)), "field": exc.field}
        except _HttpError as exc:
            status, answer = exc.status, {"error": exc.message, "field": exc.field}
        except Exception as exc:  # a bug must not take the server down: 500, logged
            log.exception("paper venue: request failed", extra={"path": self.path})
            status, answer = 500, {"error": f"internal error: {type(exc).__name__}: {exc}"}
        answer["session"] = venue.session_id
        self._send(status, answer)

    def _body(self) -> object | None:
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            return None
        try:
            length = int(length_text)
        except ValueError:
            raise _HttpError(400, "Content-Length is not a number", "body") from None
        if length < 0 or length > _MAX_BODY:
            raise _HttpError(413, f"body longer than {_MAX_BODY} bytes", "body")
        if length == 0:
            return None
        raw = self.rfile.read(length)
        try:
            data: object = json.loads(raw)
        except ValueError:
            raise ValidationError(
                "body", _short(raw.decode(errors="replace")), "not JSON"
            ) from None
        return data

    def _send(self, status: int, answer: dict[str, Any]) -> None:
        data = json.dumps(answer).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client went away
            log.debug("paper venue: client gone before the answer", extra={"path": self.path})

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http " + format % args)


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


# ---- the command line --------------------------------------------------------------------------


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m algoengine.brokers.paper.server",
        description="Run the paper exchange as its own process (HTTP JSON API).",
    )
    p.add_argument("--day", type=_date, help="the session (default: paper.day, or today/next)")
    p.add_argument("--speed", type=float, help="simulated seconds per real second")
    p.add_argument(
        "--anchor-wall-ns",
        type=int,
        help="UTC epoch ns at which the simulated clock shows the open (default: now)",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0: a free port")
    p.add_argument("--config", help="configuration file (TOML or YAML); default: built-in")
    p.add_argument("--seed", type=int, help="seed of the synthetic market")
    p.add_argument("--log-level", default="WARNING")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; exit status 0, or 2 for bad arguments or configuration."""
    from algoengine.observability.logs import configure_logging

    args = _parser().parse_args(argv)
    configure_logging(args.log_level)
    done = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        done.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return _serve(args, done)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve(args: argparse.Namespace, done: threading.Event) -> int:
    try:
        settings = load_settings(args.config)
        if args.seed is not None:
            settings = settings.with_seed(args.seed)
        day = args.day or settings.paper.day
        if day is None:
            ist_today = datetime.now(timezone(timedelta(hours=5, minutes=30))).date()
            day = paper_day(_calendar(settings), ist_today)
        server = PaperVenueServer(
            settings,
            day,
            speed=args.speed if args.speed is not None else settings.paper.speed,
            anchor_wall_ns=args.anchor_wall_ns
            if args.anchor_wall_ns is not None
            else time.time_ns(),
            host=args.host,
            port=args.port,
        )
        host, port = server.start()
    except (AlgoEngineError, ValueError) as exc:
        print(f"paper venue: error: {exc}", file=sys.stderr)
        return 2
    print(f"listening on http://{host}:{port}", flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        server.stop()
    log.info("paper venue stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
