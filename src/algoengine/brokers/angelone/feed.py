"""The live market feed from Angel One: SmartWebSocketV2 under our own supervisor.

:class:`AngelOneFeed` runs the official client's ``SmartWebSocketV2`` in a thread of its own and
supervises it, because the client's own retry loop cannot be trusted (ANGELONE.md: its
``on_close`` raises under websocket-client 1.9, it stops silently after ``max_retry_attempt``,
subscriptions are shared between instances and re-subscribing duplicates them). So:

- the client runs with ``max_retry_attempt=0``; every connection is a NEW client instance with
  its own subscription table, and subscribes on open (a reconnect resubscribes exactly once);
- when a connection ends (dropped, refused, closed) the supervisor reconnects after a backoff
  of ``backoff_initial_s`` doubling to ``backoff_max_s``, reset by a connection that opened;
  the session tokens are read again before every attempt (a refreshed session is picked up);
- the binary ticks are decoded here (:func:`decode_tick`, little-endian, prices paise: the
  client's own parser reads the OI change as an int64) into rows, and the 5-level depth of a
  SNAP_QUOTE tick replaces that instrument's compiled :class:`~algoengine.orderbook.L2Book`
  (:meth:`AngelOneFeed.depth`);
- iterating the feed yields :class:`~algoengine.domain.market_data.MarketSlice` objects, one
  every ``batch_interval_s`` holding the latest tick of each instrument that ticked since the
  last slice; ``ts_ns`` is the newest exchange time among them (never earlier than the slice
  before). With ``heartbeat_s`` set, a silent market yields an empty slice that often, so that
  the engine's loop still runs its commands (a Pause posted by ``on_stale``) and timers;
- a watchdog calls ``on_stale()`` when no tick has arrived for ``stale_after_s`` while
  ``session_open()`` says the market is open (and drops the connection, which may be silently
  dead, so that it is re-made), and ``on_fresh()`` when ticks come again (or the session
  closes). The callbacks run in the watchdog's thread: they should only post to the engine.
- :meth:`AngelOneFeed.stop` closes the socket, ends the threads and ends the iteration.

Bid/ask columns are filled from SNAP_QUOTE depth only (0 in LTP/QUOTE mode, which carry no
best prices). Nothing logged here holds a token or a key.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any

import numpy as np

from algoengine.brokers.angelone.adapter import close_websocket, load_smartapi
from algoengine.brokers.angelone.credentials import AngelOneEndpoints
from algoengine.domain.instruments import InstrumentKind
from algoengine.domain.market_data import MarketSlice, Universe
from algoengine.errors import ConfigurationError, ValidationError
from algoengine.orderbook import L2Book, OrderBookError

if TYPE_CHECKING:
    from algoengine.brokers.angelone.adapter import AngelOneBroker

__all__ = [
    "MAX_TOKENS",
    "AngelOneFeed",
    "FeedAuth",
    "FeedMode",
    "Tick",
    "decode_tick",
]

log = logging.getLogger(__name__)

#: Angel One's limit of token subscriptions on one SmartStream session.
MAX_TOKENS = 1000

_HEAD = struct.Struct("<BB25sqqq")  # mode, exchange type, token, seq, exchange ms, ltp
_QUOTE = struct.Struct("<qqqddqqqq")  # ltq, atp, volume, buy qty, sell qty, o, h, l, c
_SNAP = struct.Struct("<qqd")  # last trade time, oi, oi change (f64)
_LEVEL = struct.Struct("<HqqH")  # buy/sell flag, qty, price, orders
_LTP_LEN, _QUOTE_LEN, _SNAP_LEN = 51, 123, 379
_DEPTH_AT = 147


class FeedMode(IntEnum):
    """SmartWebSocketV2 subscription modes."""

    LTP = 1
    QUOTE = 2
    SNAP_QUOTE = 3


@dataclass(frozen=True, kw_only=True, slots=True)
class FeedAuth:
    """What the market websocket's handshake needs; ``repr`` shows the client code only.

    Parameters
    ----------
    jwt
        The session's access token (``"Bearer ..."`` or bare).
    api_key
        The SmartAPI app's key.
    client_code
        The account's client code.
    feed_token
        The session's feed token.
    """

    jwt: str = field(repr=False)
    api_key: str = field(repr=False)
    client_code: str
    feed_token: str = field(repr=False)

    def __post_init__(self) -> None:
        for name in ("jwt", "api_key", "client_code", "feed_token"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ConfigurationError(f"Angel One feed: {name} is missing (not logged in?)")

    @property
    def bearer(self) -> str:
        """``"Bearer <jwt>"``."""
        return self.jwt if self.jwt.startswith("Bearer ") else "Bearer " + self.jwt

    @classmethod
    def from_broker(cls, broker: AngelOneBroker) -> FeedAuth:
        """The logged-in broker's current session (ConfigurationError if it has none)."""
        return cls(
            jwt=broker.access_token or "",
            api_key=broker.credentials.api_key,
            client_code=broker.credentials.client_code,
            feed_token=broker.feed_token or "",
        )


@dataclass(frozen=True, slots=True)
class Tick:
    """One decoded SmartWebSocketV2 packet. Prices paise, quantities units, time UTC epoch ns.

    ``bids``/``asks`` are the depth levels ``(price_paise, qty)`` best first (SNAP_QUOTE only;
    empty levels left out); ``bid_paise``/``ask_paise`` are the best of them (0 if none).
    ``volume`` and ``oi`` are 0 in LTP mode.
    """

    token: str
    mode: int
    exchange_type: int
    seq: int
    ts_ns: int
    ltp_paise: int
    volume: int = 0
    oi: int = 0
    bids: tuple[tuple[int, int], ...] = ()
    asks: tuple[tuple[int, int], ...] = ()

    @property
    def bid_paise(self) -> int:
        return self.bids[0][0] if self.bids else 0

    @property
    def bid_qty(self) -> int:
        return self.bids[0][1] if self.bids else 0

    @property
    def ask_paise(self) -> int:
        return self.asks[0][0] if self.asks else 0

    @property
    def ask_qty(self) -> int:
        return self.asks[0][1] if self.asks else 0


def decode_tick(data: bytes) -> Tick:
    """Decode one binary SmartWebSocketV2 packet (LTP 51 bytes, QUOTE 123, SNAP_QUOTE 379).

    Raises
    ------
    ValidationError
        ``data`` is not such a packet (field ``"packet"``).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValidationError("packet", type(data).__name__, "must be bytes")
    n = len(data)
    if n < _LTP_LEN:
        raise ValidationError("packet", n, f"too short: {n} bytes, an LTP packet has {_LTP_LEN}")
    mode, xtype, raw_token, seq, ts_ms, ltp = _HEAD.unpack_from(data, 0)
    need = {1: _LTP_LEN, 2: _QUOTE_LEN, 3: _SNAP_LEN}.get(mode)
    if need is None or n < need:
        raise ValidationError("packet", n, f"mode {mode} packet of {n} bytes")
    token = bytes(raw_token).split(b"\0", 1)[0].decode("ascii", errors="replace")
    volume = oi = 0
    bids: list[tuple[int, int]] = []
    asks: list[tuple[int, int]] = []
    if mode >= 2:
        volume = _QUOTE.unpack_from(data, _LTP_LEN)[2]
    if mode == 3:
        oi = _SNAP.unpack_from(data, _QUOTE_LEN)[1]
        for k in range(10):
            flag, qty, price, _ = _LEVEL.unpack_from(data, _DEPTH_AT + k * _LEVEL.size)
            if qty > 0 and price > 0:
                (bids if flag else asks).append((int(price), int(qty)))
        bids.sort(key=lambda lv: -lv[0])
        asks.sort(key=lambda lv: lv[0])
    return Tick(
        token=token,
        mode=int(mode),
        exchange_type=int(xtype),
        seq=int(seq),
        ts_ns=int(ts_ms) * 1_000_000,
        ltp_paise=int(ltp),
        volume=int(volume),
        oi=int(oi),
        bids=tuple(bids),
        asks=tuple(asks),
    )


_Row = tuple[int, int, int, int, int, int, int, int]  # idx ltp bid bidq ask askq volume oi


def _positive(name: str, value: object, top: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= top:
        raise ValidationError(name, value, f"must be a number of seconds in (0, {top:g}]")
    return float(value)


class AngelOneFeed:
    """Angel One's market feed as an iterator of :class:`MarketSlice` (module docstring).

    Parameters
    ----------
    auth
        The session: a logged-in :class:`AngelOneBroker` (its tokens are read again before
        every connection), a :class:`FeedAuth`, or a callable returning one.
    universe
        The engine's universe; slices index into it.
    tokens
        The instruments to subscribe (default: the whole universe; at most :data:`MAX_TOKENS`).
    mode
        The subscription mode of every token (SNAP_QUOTE: LTP, quote and 5-level depth).
    feed_url
        The market websocket (default: ``ANGEL_ONE_FEED_URL``, else Angel One's).
    batch_interval_s
        How often a slice of the ticks since the last one is yielded [s].
    stale_after_s
        No tick for this long while the session is open makes the feed stale [s].
    session_open
        Whether the market is open now (default: always); no staleness while closed.
    on_stale, on_fresh
        Called (watchdog thread) when the feed goes stale and when it is fresh again.
    backoff_initial_s, backoff_max_s
        Reconnection delay: the first, doubling up to the last [s].
    heartbeat_s
        If set, an empty slice is yielded after this long without ticks [s] (so that the
        engine's loop runs commands and timers while the market is silent).
    reconnect_on_stale
        Drop the connection when the feed goes stale (and every ``4 * stale_after_s`` while it
        stays stale), in case it is silently dead.
    on_tick
        Called with every decoded tick of a subscribed instrument, in the socket's thread
        (recorders, tests); it must be quick and must not raise.
    now_ns
        The engine's clock (UTC epoch ns; default: the wall clock): a heartbeat slice carries
        its time, never earlier than the last slice's, so that an engine on an accelerated or
        anchored clock is never sent to wait for a wall-clock instant of its own future.

    Raises
    ------
    ValidationError
        A malformed argument (names it).
    """

    def __init__(
        self,
        auth: AngelOneBroker | FeedAuth | Callable[[], FeedAuth],
        universe: Universe,
        tokens: Sequence[str] | None = None,
        *,
        mode: FeedMode = FeedMode.SNAP_QUOTE,
        feed_url: str | None = None,
        batch_interval_s: float = 0.2,
        stale_after_s: float = 5.0,
        session_open: Callable[[], bool] | None = None,
        on_stale: Callable[[], None] | None = None,
        on_fresh: Callable[[], None] | None = None,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 10.0,
        heartbeat_s: float | None = None,
        reconnect_on_stale: bool = True,
        on_tick: Callable[[Tick], None] | None = None,
        now_ns: Callable[[], int] | None = None,
    ) -> None:
        if not isinstance(universe, Universe):
            raise ValidationError("universe", type(universe).__name__, "must be a Universe")
        if isinstance(auth, FeedAuth):
            fixed = auth
            self._auth: Callable[[], FeedAuth] = lambda: fixed
        elif hasattr(auth, "credentials") and hasattr(auth, "feed_token"):
            broker = auth
            self._auth = lambda: FeedAuth.from_broker(broker)  # type: ignore[arg-type]
        elif callable(auth):
            self._auth = auth
        else:
            raise ValidationError("auth", type(auth).__name__, "must be a broker or FeedAuth")
        try:
            self.mode = FeedMode(mode)
        except ValueError:
            raise ValidationError("mode", mode, "must be 1 (LTP), 2 (QUOTE) or 3 (SNAP)") from None
        wanted = list(universe.instruments) if tokens is None else None
        if wanted is None:
            if isinstance(tokens, str) or not isinstance(tokens, Sequence):
                raise ValidationError("tokens", tokens, "must be a sequence of token strings")
            wanted = [universe.by_token(str(t)) for t in dict.fromkeys(tokens)]
        if not wanted:
            raise ValidationError("tokens", tokens, "must name at least one instrument")
        if len(wanted) > MAX_TOKENS:
            raise ValidationError("tokens", len(wanted), f"Angel One allows {MAX_TOKENS} tokens")
        self.universe = universe
        self.tokens: tuple[str, ...] = tuple(i.token for i in wanted)
        self.feed_url = feed_url or AngelOneEndpoints.from_env().feed_url
        AngelOneEndpoints(feed_url=self.feed_url)  # validates the URL (ConfigurationError)
        self.batch_interval_s = _positive("batch_interval_s", batch_interval_s, 60.0)
        self.stale_after_s = _positive("stale_after_s", stale_after_s, 3600.0)
        self.backoff_initial_s = _positive("backoff_initial_s", backoff_initial_s, 60.0)
        self.backoff_max_s = _positive("backoff_max_s", backoff_max_s, 600.0)
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValidationError("backoff_max_s", backoff_max_s, "must be >= backoff_initial_s")
        self.heartbeat_s = (
            None if heartbeat_s is None else _positive("heartbeat_s", heartbeat_s, 3600.0)
        )
        self.reconnect_on_stale = bool(reconnect_on_stale)
        self._session_open = session_open or (lambda: True)
        self._on_stale = on_stale
        self._on_fresh = on_fresh
        self._on_tick = on_tick
        self._now_ns = now_ns or time.time_ns
        self._books: dict[str, L2Book] = {}
        for inst in wanted:
            self._books[inst.token] = L2Book(inst.tick_paise / 100.0)
        self._xtype = {
            i.token: 1 if i.exchange == "NSE" or i.kind is InstrumentKind.INDEX else 2
            for i in wanted
        }
        self._lock = threading.Lock()
        self._book_lock = threading.Lock()
        self._stopping = threading.Event()
        self._pending: dict[int, _Row] = {}
        self._pending_ts = 0
        self._last_ts = 0
        self._last_tick = 0.0  # monotonic time of the last tick
        self._baseline = 0.0  # staleness counts from max(last tick, baseline)
        self._client: Any = None
        self._open = False
        self._stale = False
        self._threads: list[threading.Thread] = []
        # observability (tests, status)
        self.attempts = 0  # connection attempts
        self.opens = 0  # connections that opened (each subscribed once)
        self.ticks = 0
        self.decode_errors = 0
        self.stale_count = 0

    # ---- life -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the supervisor and the watchdog threads (idempotent)."""
        if self._threads:
            return
        if self._stopping.is_set():
            raise ConfigurationError("Angel One feed: a stopped feed cannot start again")
        load_smartapi()
        self._baseline = time.monotonic()
        for name, target in (
            ("angelone-feed", self._supervise),
            ("angelone-feed-watch", self._watch),
        ):
            t = threading.Thread(target=target, name=name, daemon=True)
            self._threads.append(t)
            t.start()

    def stop(self, timeout_s: float = 15.0) -> None:
        """Close the socket, end the threads and the iteration (idempotent)."""
        self._stopping.set()
        deadline = time.monotonic() + timeout_s
        for t in self._threads:
            while t.is_alive() and time.monotonic() < deadline:
                self._close_client()
                t.join(0.1)
            if t.is_alive():
                log.warning("angel one feed: a thread did not stop", extra={"thread_name": t.name})

    close = stop

    def __enter__(self) -> AngelOneFeed:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def connected(self) -> bool:
        """True while a connection is open and subscribed."""
        return self._open

    @property
    def stale(self) -> bool:
        """True between ``on_stale`` and ``on_fresh``."""
        return self._stale

    # ---- the market ----------------------------------------------------------------------

    def __iter__(self) -> Iterator[MarketSlice]:
        """Slices of the ticks since the last one, every ``batch_interval_s``, until
        :meth:`stop` (starts the feed if needed)."""
        self.start()
        step = self.batch_interval_s
        next_at = time.monotonic() + step
        last_yield = time.monotonic()
        while not self._stopping.wait(max(0.0, next_at - time.monotonic())):
            now = time.monotonic()
            next_at = max(next_at + step, now + step / 4)
            with self._lock:
                rows, self._pending = self._pending, {}
                ts = max(self._pending_ts, self._last_ts)
            if rows:
                last_yield = now
                self._last_ts = ts
                yield self._slice(ts, list(rows.values()))
            elif self.heartbeat_s is not None and now - last_yield >= self.heartbeat_s:
                ts = max(self._last_ts, int(self._now_ns()))
                last_yield = now
                self._last_ts = ts
                yield self._slice(ts, [])

    @staticmethod
    def _slice(ts_ns: int, rows: list[_Row]) -> MarketSlice:
        a = np.asarray(sorted(rows), dtype=np.int64).reshape(-1, 8)
        return MarketSlice(
            ts_ns=ts_ns,
            idx=a[:, 0].astype(np.int32),
            ltp_paise=a[:, 1].copy(),
            bid_paise=a[:, 2].copy(),
            bid_qty=a[:, 3].copy(),
            ask_paise=a[:, 4].copy(),
            ask_qty=a[:, 5].copy(),
            volume=a[:, 6].copy(),
            oi=a[:, 7].copy(),
        )

    def depth(self, token: str, n: int = 5) -> tuple[Any, Any, Any, Any]:
        """The instrument's depth now: ``(bid_px, bid_qty, ask_px, ask_qty)`` arrays, best
        first, prices in rupees as the L2 book gives them (copies, safe from any thread).

        Raises
        ------
        ValidationError
            ``token`` is not subscribed.
        """
        book = self._books.get(token)
        if book is None:
            raise ValidationError("token", token, "not subscribed by this feed")
        with self._book_lock:
            out: tuple[Any, Any, Any, Any] = book.depth(n)
        return out

    def book(self, token: str) -> L2Book:
        """The instrument's compiled L2 book (updated by the feed's thread: read it through
        :meth:`depth` from other threads)."""
        book = self._books.get(token)
        if book is None:
            raise ValidationError("token", token, "not subscribed by this feed")
        return book

    # ---- the connection ------------------------------------------------------------------

    def _supervise(self) -> None:
        delay = self.backoff_initial_s
        while not self._stopping.is_set():
            opened_before = self.opens
            try:
                auth = self._auth()
                client = self._make_client(auth)
            except Exception as exc:  # no session now: try again after the backoff
                log.warning("angel one feed: cannot connect", extra={"error": str(exc)})
                client = None
            if client is not None:
                with self._lock:
                    self._client = client
                self.attempts += 1
                if not self._stopping.is_set():
                    try:
                        client.connect()
                    except Exception as exc:
                        log.warning("angel one feed: connection failed", extra={"error": str(exc)})
                with self._lock:
                    self._client = None
                    self._open = False
            if self._stopping.is_set():
                break
            if self.opens > opened_before:
                delay = self.backoff_initial_s
            log.info("angel one feed: reconnecting", extra={"delay_s": delay})
            if self._stopping.wait(delay):
                break
            delay = min(delay * 2.0, self.backoff_max_s)

    def _make_client(self, auth: FeedAuth) -> Any:
        lib = load_smartapi()
        feed = self

        class _Client(lib.SmartWebSocketV2):  # type: ignore[misc, name-defined]
            # run_forever joins its ping thread on close after at most one interval: a short
            # one lets stop() finish in time (the library's is 10 s)
            HEART_BEAT_INTERVAL = 3

            ROOT_URI = self.feed_url

            def on_open(self, wsapp: Any) -> None:
                feed._on_open(self)

            def _on_data(self, wsapp: Any, data: Any, data_type: int, flag: Any) -> None:
                if data_type == 2:
                    feed._on_packet(data)
                else:
                    feed._on_text(data)

            def _on_close(self, wsapp: Any, *args: Any) -> None:  # the library's raises
                feed._open = False

            def on_error(self, *args: Any) -> None:
                log.info("angel one feed: connection ended", extra={"reason": str(args[:1])})

        client = _Client(
            auth.bearer,
            auth.api_key,
            auth.client_code,
            auth.feed_token,
            max_retry_attempt=0,
            retry_delay=0,
        )
        client.input_request_dict = {}  # per instance: the class's is shared by all
        return client

    def _on_open(self, client: Any) -> None:
        if self._stopping.is_set():
            client.close_connection()
            return
        by_type: dict[int, list[str]] = {}
        for tok in self.tokens:
            by_type.setdefault(self._xtype[tok], []).append(tok)
        token_list = [{"exchangeType": x, "tokens": toks} for x, toks in sorted(by_type.items())]
        try:
            client.subscribe(f"ae{self.opens % 10_000_000:07d}", int(self.mode), token_list)
        except Exception as exc:
            log.warning("angel one feed: subscribe failed", extra={"error": str(exc)})
            client.close_connection()
            return
        self.opens += 1
        self._open = True
        log.info(
            "angel one feed: connected and subscribed",
            extra={"tokens": len(self.tokens), "mode": self.mode.name, "opens": self.opens},
        )

    def _close_client(self) -> None:
        with self._lock:
            client = self._client
        if client is not None:
            client.RESUBSCRIBE_FLAG = False  # what close_connection sets, before the close
            client.DISCONNECT_FLAG = True
            close_websocket(client)  # from this thread: shut down first (see its docstring)

    def _on_text(self, data: Any) -> None:
        text = data.decode(errors="replace") if isinstance(data, bytes) else str(data)
        if text != "pong":
            log.warning("angel one feed: server message", extra={"text": text[:300]})

    def _on_packet(self, data: bytes) -> None:
        try:
            tick = decode_tick(data)
        except ValidationError as exc:
            self.decode_errors += 1
            log.warning("angel one feed: undecodable packet", extra={"error": str(exc)})
            return
        book = self._books.get(tick.token)
        if book is None:
            return  # not ours
        idx = self.universe.index_of(tick.token)
        if tick.mode == 3:
            bids = np.asarray(tick.bids, dtype=np.int64).reshape(-1, 2)
            asks = np.asarray(tick.asks, dtype=np.int64).reshape(-1, 2)
            try:
                with self._book_lock:
                    book.apply_snapshot(
                        bids[:, 0] / 100.0, bids[:, 1], asks[:, 0] / 100.0, asks[:, 1]
                    )
            except OrderBookError as exc:
                self.decode_errors += 1
                log.warning(
                    "angel one feed: depth refused by the book",
                    extra={"token": tick.token, "error": str(exc)},
                )
        row: _Row = (
            idx,
            tick.ltp_paise,
            tick.bid_paise,
            tick.bid_qty,
            tick.ask_paise,
            tick.ask_qty,
            tick.volume,
            tick.oi,
        )
        with self._lock:
            self._pending[idx] = row
            if tick.ts_ns > self._pending_ts:
                self._pending_ts = tick.ts_ns
            self._last_tick = time.monotonic()
            self.ticks += 1
        if self._on_tick is not None:
            try:
                self._on_tick(tick)
            except Exception:
                log.exception("angel one feed: on_tick failed")

    # ---- staleness -----------------------------------------------------------------------

    def _watch(self) -> None:
        check = min(0.05, self.stale_after_s / 4)
        was_open = True
        last_forced = 0.0
        stale_since = 0.0
        while not self._stopping.wait(check):
            now = time.monotonic()
            try:
                is_open = bool(self._session_open())
            except Exception as exc:
                log.warning("angel one feed: session_open failed", extra={"error": str(exc)})
                is_open = True
            if not is_open or not was_open:
                self._baseline = now  # no staleness while closed; a grace after the open
            was_open = is_open
            silent = now - max(self._last_tick, self._baseline)
            if self._stale:
                if self._last_tick > stale_since or not is_open:
                    self._stale = False
                    log.warning("angel one feed: fresh again")
                    self._call(self._on_fresh, "on_fresh")
                elif self.reconnect_on_stale and now - last_forced >= 4 * self.stale_after_s:
                    last_forced = now
                    self._close_client()
            elif is_open and silent >= self.stale_after_s:
                self._stale = True
                self.stale_count += 1
                stale_since = now
                log.warning("angel one feed: stale", extra={"silent_s": round(silent, 2)})
                self._call(self._on_stale, "on_stale")
                if self.reconnect_on_stale:
                    last_forced = now
                    self._close_client()

    @staticmethod
    def _call(fn: Callable[[], None] | None, name: str) -> None:
        if fn is None:
            return
        try:
            fn()
        except Exception:
            log.exception("angel one feed: callback failed", extra={"callback": name})
