"""The paper exchange: a deterministic, clock-driven simulation of NSE F&O behind Angel One.

Nothing here reads the wall clock or starts a thread. The caller (backtest runner or paper-mode
loop) drives it with UTC epoch-ns timestamps that never go backwards:

- market input: :meth:`PaperExchange.on_depth` (an L2 snapshot) and
  :meth:`PaperExchange.on_trade` (a trade print); for a feed packet carrying both, call
  ``on_trade`` first;
- our requests: :meth:`~PaperExchange.submit`, :meth:`~PaperExchange.cancel`,
  :meth:`~PaperExchange.modify`, which reach the exchange ``order_latency_ns`` later (the book
  at arrival decides);
- :meth:`~PaperExchange.advance` moves time without input;
- :meth:`~PaperExchange.drain_events` returns the order events whose report has arrived
  (``report_latency_ns`` after the exchange produced them). Event ``ts_ns`` is exchange time.

Requests and market input at the same timestamp run in call order; requests due at or before a
market input's timestamp run before it.

Order life (the same event sequence the Angel One adapter reports; see
:mod:`algoengine.domain.events`):

- On arrival an order is checked, in this order: duplicate client order id, unknown instrument,
  market closed, lot size, freeze quantity, tick size, stop-limit price against its trigger
  (buy: price >= trigger; sell: price <= trigger), price band (limit and trigger prices), trigger
  already crossed by the last trade (buy stop: LTP >= trigger; sell stop: LTP <= trigger), and a
  market order with nothing on the other side. A refused order gets ``OrderRejected`` with the
  rule's :class:`~algoengine.domain.events.RejectCode` and a reason naming it; nothing follows.
- Otherwise ``OrderAccepted``: status OPEN (limit, market) or TRIGGER_PENDING (stop-loss).
- A limit or market order trades at once against the book (resting prices, best first, FIFO);
  each trade is an ``OrderPartiallyFilled`` or the final ``OrderFilled`` with an exchange trade
  id. A limit remainder rests (DAY) or is cancelled (IOC: ``OrderCancelled("IOC remainder")``);
  a market remainder is cancelled (``"market order remainder"``). Angel One turns market orders
  into limit orders with a protection price; here a market order simply takes what is displayed.
- A stop order waits until a trade print reaches its trigger, then ``OrderTriggered`` and it
  works as a limit (STOPLOSS_LIMIT, at its price) or market (STOPLOSS_MARKET) order; a triggered
  market order with nothing to take is cancelled (``"no liquidity"``).
- Resting orders fill when trade prints consume the queue ahead of them, or when the displayed
  market moves through their price (filled at the order's price); see
  :mod:`algoengine.brokers.paper.liquidity` for the queue model.
- ``cancel`` gives ``OrderCancelled("user")``; ``modify`` gives ``OrderModified`` (then any trades
  if the new price crosses; a price change or a quantity increase loses queue priority, a
  decrease keeps it). Either, for an order that is unknown or no longer working, or a change
  that breaks a rule, gives ``OrderCancelRejected`` / ``OrderModifyRejected`` and changes
  nothing. ``modify`` takes the new total quantity, as Angel One does.
- At the close every working order is cancelled (``"market closed"``).

Our trades never reach the real market: the feed's liquidity is not depleted beyond the
liquidity-consumption rule, and our fills do not move the last traded price (only prints do).
Self-trade prevention is not modelled: our own orders can trade with each other.

The exchange raises :class:`~algoengine.errors.ValidationError` only for malformed calls (wrong
types, time going backwards, an unknown token or a crossed snapshot from the feed).
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from algoengine.brokers.paper.config import PaperExchangeConfig
from algoengine.brokers.paper.liquidity import InstrumentBook, Trade, _IdSource
from algoengine.brokers.paper.session import MarketHours, ist_date
from algoengine.domain.events import (
    CancelReason,
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
from algoengine.domain.instruments import Instrument
from algoengine.domain.orders import (
    OrderRequest,
    OrderStatus,
    OrderStatusReport,
    OrderType,
    Side,
    TimeInForce,
    next_status,
)
from algoengine.errors import ValidationError

__all__ = ["PaperExchange"]

log = logging.getLogger(__name__)

_Rule = tuple[RejectCode, str]


@dataclass(slots=True, eq=False)
class _Order:
    """The exchange's record of one of our orders (mutable; never leaves this module)."""

    request: OrderRequest
    venue_order_id: str
    book_id: int
    qty: int
    price_paise: int | None
    trigger_price_paise: int | None
    ts_ns: int
    status: OrderStatus = OrderStatus.SUBMITTED
    filled_qty: int = 0
    triggered: bool = False

    @property
    def token(self) -> str:
        return self.request.instrument_token

    @property
    def remaining_qty(self) -> int:
        return self.qty - self.filled_qty

    @property
    def is_market(self) -> bool:
        """True if it works (or will work) as a market order."""
        return self.request.order_type in (OrderType.MARKET, OrderType.STOPLOSS_MARKET)

    @property
    def pending_trigger(self) -> bool:
        return self.request.order_type.is_stop and not self.triggered

    def report(self) -> OrderStatusReport:
        r = self.request
        return OrderStatusReport(
            client_order_id=r.client_order_id,
            venue_order_id=self.venue_order_id,
            instrument_token=r.instrument_token,
            side=r.side,
            order_type=r.order_type,
            tif=r.tif,
            qty=self.qty,
            filled_qty=self.filled_qty,
            price_paise=self.price_paise,
            trigger_price_paise=self.trigger_price_paise,
            status=self.status,
            ts_ns=self.ts_ns,
        )


def _check_ts(ts_ns: object) -> int:
    if not isinstance(ts_ns, int) or isinstance(ts_ns, bool) or ts_ns < 0:
        raise ValidationError("ts_ns", ts_ns, "must be an integer >= 0 (UTC epoch ns)")
    return ts_ns


class PaperExchange:
    """A simulated exchange on the compiled order book; implements the Broker protocol.

    Parameters
    ----------
    config
        Latencies, market hours, price bands and fill-model options (defaults if ``None``).
    instruments
        The instruments it lists; more can be added with :meth:`add_instrument`.
    """

    def __init__(
        self, config: PaperExchangeConfig | None = None, instruments: Iterable[Instrument] = ()
    ) -> None:
        self.config = config if config is not None else PaperExchangeConfig()
        if not isinstance(self.config, PaperExchangeConfig):
            raise ValidationError("config", config, "must be a PaperExchangeConfig")
        c = self.config
        self._hours = MarketHours(
            open_time=c.market_open,
            close_time=c.market_close,
            weekdays=c.trading_weekdays,
            closed_dates=c.closed_dates,
        )
        self._now_ns = 0
        self._seq = itertools.count()
        self._actions: list[tuple[int, int, Callable[[], None]]] = []
        self._outbox: list[tuple[int, int, OrderEvent]] = []
        self._books: dict[str, InstrumentBook] = {}
        self._synthetic_ids = _IdSource()
        self._orders: dict[str, _Order] = {}  # client order id -> order, arrival order
        self._by_book_id: dict[int, _Order] = {}
        self._stops: dict[str, dict[int, _Order]] = {}  # token -> pending stops, arrival order
        self._closes: set[int] = set()  # session closes already scheduled
        self._next_book_id = 0
        self._next_venue_seq = 0
        self._next_trade_id = 0
        for instrument in instruments:
            self.add_instrument(instrument)

    # ---- set-up and queries ------------------------------------------------------------------

    def add_instrument(self, instrument: Instrument) -> None:
        """List an instrument (a second listing of the same token must be identical)."""
        if not isinstance(instrument, Instrument):
            raise ValidationError("instrument", instrument, "must be an Instrument")
        known = self._books.get(instrument.token)
        if known is not None:
            if known.instrument != instrument:
                raise ValidationError("instrument", instrument, "token already listed otherwise")
            return
        self._books[instrument.token] = InstrumentBook(
            instrument,
            queue_model=self.config.queue_model,
            depth_levels=self.config.depth_levels,
            liquidity_consumption=self.config.liquidity_consumption,
            ids=self._synthetic_ids,
        )
        self._stops[instrument.token] = {}

    @property
    def now_ns(self) -> int:
        """The exchange clock: the latest timestamp it was given (UTC epoch ns)."""
        return self._now_ns

    def open_orders(self) -> list[OrderStatusReport]:
        """Working orders (trigger pending, open, partially filled), oldest first."""
        return [o.report() for o in self._orders.values() if o.status.is_working]

    def order(self, client_order_id: str) -> OrderStatusReport | None:
        """The exchange's view of an order that has arrived, or ``None``."""
        o = self._orders.get(client_order_id)
        return None if o is None else o.report()

    def queue_ahead(self, client_order_id: str) -> int | None:
        """Units ahead of a resting order at its price (``None`` if it is not resting)."""
        o = self._orders.get(client_order_id)
        if o is None:
            return None
        book = self._books.get(o.token)
        if book is None or not book.is_resting(o.book_id):
            return None
        return book.queue_ahead(o.book_id)

    def last_price_paise(self, token: str) -> int | None:
        """The last trade print's price (``None`` before the first print)."""
        book = self._book(token)
        ticks = book.last_trade_ticks
        return None if ticks is None else ticks * book.instrument.tick_paise

    def depth(
        self, token: str, levels: int = 5
    ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """(bids, asks) of the exchange's book, ``(price_paise, qty)`` best first: the
        displayed market and our resting orders together."""
        book = self._book(token)
        tick = book.instrument.tick_paise
        bids, asks = book.depth(levels)
        return [(p * tick, q) for p, q in bids], [(p * tick, q) for p, q in asks]

    # ---- the clock ---------------------------------------------------------------------------

    def advance(self, ts_ns: int) -> None:
        """Move the clock to ``ts_ns``, running every request and close due by then."""
        self._advance(ts_ns)

    def drain_events(self) -> list[OrderEvent]:
        """Order events whose report has arrived by now, in the order they happened."""
        out: list[OrderEvent] = []
        while self._outbox and self._outbox[0][0] <= self._now_ns:
            out.append(heapq.heappop(self._outbox)[2])
        return out

    def _advance(self, ts_ns: int) -> None:
        ts = _check_ts(ts_ns)
        if ts < self._now_ns:
            raise ValidationError("ts_ns", ts, f"time went backwards (now {self._now_ns})")
        self._run_due(ts)
        self._now_ns = ts

    def _run_due(self, until_ns: int) -> None:
        while self._actions and self._actions[0][0] <= until_ns:
            at, _, action = heapq.heappop(self._actions)
            self._now_ns = at
            action()

    def _schedule(self, at_ns: int, action: Callable[[], None]) -> None:
        heapq.heappush(self._actions, (at_ns, next(self._seq), action))

    def _emit(self, event: OrderEvent, order: _Order | None = None) -> None:
        if order is not None and event.status_trigger is not None:
            order.status = next_status(
                order.status, event.status_trigger, client_order_id=event.client_order_id
            )
            order.ts_ns = event.ts_ns
        deliver_at = event.ts_ns + self.config.report_latency_ns
        heapq.heappush(self._outbox, (deliver_at, next(self._seq), event))

    # ---- market input ------------------------------------------------------------------------

    def on_depth(
        self,
        token: str,
        bids: Sequence[tuple[int, int]],
        asks: Sequence[tuple[int, int]],
        ts_ns: int,
    ) -> None:
        """An L2 snapshot of ``token``: ``(price_paise, qty)`` levels, best first.

        Levels with qty 0 are ignored (empty depth slots). Raises ValidationError for a price
        off the tick grid or not positive, a negative qty, levels out of order or a crossed
        snapshot.
        """
        book = self._book(token)
        tick = book.instrument.tick_paise
        bid_levels = _levels("bids", bids, tick, descending=True)
        ask_levels = _levels("asks", asks, tick, descending=False)
        if bid_levels and ask_levels and bid_levels[0][0] >= ask_levels[0][0]:
            raise ValidationError("asks", asks, "the snapshot is crossed (best bid >= best ask)")
        self._advance(ts_ns)
        self._book_trades(book, book.apply_depth(bid_levels, ask_levels))

    def on_trade(self, token: str, price_paise: int, qty: int, ts_ns: int) -> None:
        """A trade print of ``qty`` units at ``price_paise`` on ``token``.

        It takes the displayed queue at and through its price (so our resting orders fill in
        queue order), sets the last traded price, and triggers stop orders it reaches.
        """
        book = self._book(token)
        tick = book.instrument.tick_paise
        if not isinstance(price_paise, int) or price_paise <= 0 or price_paise % tick:
            raise ValidationError("price_paise", price_paise, f"must be > 0, a multiple of {tick}")
        if not isinstance(qty, int) or qty <= 0:
            raise ValidationError("qty", qty, "must be a positive integer")
        self._advance(ts_ns)
        self._book_trades(book, book.apply_trade(price_paise // tick, qty))
        self._check_triggers(book, price_paise)

    # ---- requests ----------------------------------------------------------------------------

    def submit(self, request: OrderRequest, ts_ns: int) -> None:
        """Send an order; it arrives ``order_latency_ns`` later."""
        if not isinstance(request, OrderRequest):
            raise ValidationError("request", request, "must be an OrderRequest")
        self._advance(ts_ns)
        self._schedule(self._now_ns + self.config.order_latency_ns, lambda: self._arrive(request))
        self._run_due(self._now_ns)

    def cancel(self, client_order_id: str, ts_ns: int) -> None:
        """Ask to cancel a working order; the request arrives ``order_latency_ns`` later."""
        if not isinstance(client_order_id, str):
            raise ValidationError("client_order_id", client_order_id, "must be a str")
        self._advance(ts_ns)
        at = self._now_ns + self.config.order_latency_ns
        self._schedule(at, lambda: self._arrive_cancel(client_order_id))
        self._run_due(self._now_ns)

    def modify(
        self,
        client_order_id: str,
        ts_ns: int,
        *,
        qty: int | None = None,
        price_paise: int | None = None,
        trigger_price_paise: int | None = None,
    ) -> None:
        """Ask to change a working order; ``qty`` is the new total quantity (units), ``None``
        keeps a field. The request arrives ``order_latency_ns`` later."""
        if not isinstance(client_order_id, str):
            raise ValidationError("client_order_id", client_order_id, "must be a str")
        for name, value in (
            ("qty", qty),
            ("price_paise", price_paise),
            ("trigger_price_paise", trigger_price_paise),
        ):
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value <= 0
            ):
                raise ValidationError(name, value, "must be None or a positive integer")
        self._advance(ts_ns)
        at = self._now_ns + self.config.order_latency_ns
        self._schedule(
            at, lambda: self._arrive_modify(client_order_id, qty, price_paise, trigger_price_paise)
        )
        self._run_due(self._now_ns)

    # ---- arrival at the exchange -------------------------------------------------------------

    def _arrive(self, request: OrderRequest) -> None:
        now = self._now_ns
        self._next_venue_seq += 1
        venue_id = f"{ist_date(now):%y%m%d}{self._next_venue_seq:09d}"
        cid = request.client_order_id
        if cid in self._orders:
            self._emit(
                OrderRejected(
                    ts_ns=now,
                    client_order_id=cid,
                    venue_order_id=venue_id,
                    code=RejectCode.DUPLICATE_CLIENT_ORDER_ID,
                    reason=f"duplicate client order id {cid!r}",
                )
            )
            return
        book = self._books.get(request.instrument_token)
        self._next_book_id += 1
        order = _Order(
            request=request,
            venue_order_id=venue_id,
            book_id=self._next_book_id,
            qty=request.qty,
            price_paise=request.price_paise,
            trigger_price_paise=request.trigger_price_paise,
            ts_ns=now,
        )
        self._orders[cid] = order
        rule = self._check_arrival(order, book)
        if rule is not None:
            code, reason = rule
            log.info(
                "order rejected",
                extra={
                    "client_order_id": cid,
                    "reason": reason,
                    "strategy_id": request.strategy_id,
                },
            )
            self._emit(
                OrderRejected(
                    ts_ns=now,
                    client_order_id=cid,
                    venue_order_id=venue_id,
                    code=code,
                    reason=reason,
                ),
                order,
            )
            return
        assert book is not None
        self._by_book_id[order.book_id] = order
        self._schedule_close(now)
        if order.pending_trigger:
            self._emit(
                OrderAccepted(
                    ts_ns=now,
                    client_order_id=cid,
                    venue_order_id=venue_id,
                    status=OrderStatus.TRIGGER_PENDING,
                ),
                order,
            )
            self._stops[order.token][order.book_id] = order
            return
        self._emit(
            OrderAccepted(
                ts_ns=now, client_order_id=cid, venue_order_id=venue_id, status=OrderStatus.OPEN
            ),
            order,
        )
        self._work(book, order)

    def _check_arrival(self, order: _Order, book: InstrumentBook | None) -> _Rule | None:
        r = order.request
        if book is None:
            return RejectCode.UNKNOWN_INSTRUMENT, f"unknown instrument token {r.instrument_token!r}"
        if self.config.enforce_market_hours and not self._hours.is_open(self._now_ns):
            return RejectCode.MARKET_CLOSED, "market closed"
        rule = self._check_rules(
            book, r.side, order.qty, order.price_paise, order.trigger_price_paise
        )
        if rule is not None:
            return rule
        if r.order_type is OrderType.MARKET and not book.has_liquidity(r.side):
            return RejectCode.NO_LIQUIDITY, "market order with no liquidity on the other side"
        return None

    def _check_rules(
        self,
        book: InstrumentBook,
        side: Side,
        qty: int,
        price_paise: int | None,
        trigger_paise: int | None,
    ) -> _Rule | None:
        """The exchange's order rules; ``trigger_paise`` only for a stop awaiting its trigger."""
        inst = book.instrument
        if qty % inst.lot_size:
            return RejectCode.LOT_SIZE, (
                f"quantity {qty} is not a multiple of the lot size {inst.lot_size}"
            )
        if qty > inst.freeze_qty:
            return RejectCode.FREEZE_QTY, (
                f"quantity {qty} is above the freeze quantity {inst.freeze_qty}"
            )
        for name, value in (("price", price_paise), ("trigger price", trigger_paise)):
            if value is not None and value % inst.tick_paise:
                return RejectCode.TICK_SIZE, (
                    f"{name} {value} paise is not a multiple of the tick {inst.tick_paise} paise"
                )
        if price_paise is not None and trigger_paise is not None:
            if side is Side.BUY and price_paise < trigger_paise:
                return RejectCode.TRIGGER_PRICE, (
                    f"buy stop-loss price {price_paise} is below its trigger {trigger_paise}"
                )
            if side is Side.SELL and price_paise > trigger_paise:
                return RejectCode.TRIGGER_PRICE, (
                    f"sell stop-loss price {price_paise} is above its trigger {trigger_paise}"
                )
        bps = self.config.band_bps(inst.token)
        reference = self._reference_paise(book)
        if bps is not None and reference is not None:
            low = -(-reference * (10_000 - bps) // 10_000)  # ceil
            high = reference * (10_000 + bps) // 10_000
            for name, value in (("price", price_paise), ("trigger price", trigger_paise)):
                if value is not None and not low <= value <= high:
                    return RejectCode.PRICE_BAND, (
                        f"{name} {value} paise is outside the price band {low}-{high} paise"
                    )
        last = self.last_price_paise(inst.token)
        if trigger_paise is not None and last is not None and _crossed(side, trigger_paise, last):
            return RejectCode.TRIGGER_CROSSED, (
                f"trigger price {trigger_paise} already crossed: last traded price {last}"
            )
        return None

    @staticmethod
    def _reference_paise(book: InstrumentBook) -> int | None:
        ticks = book.last_trade_ticks if book.last_trade_ticks is not None else book.feed_mid_ticks
        return None if ticks is None else ticks * book.instrument.tick_paise

    def _work(self, book: InstrumentBook, order: _Order) -> None:
        """Put an accepted (or just triggered) order to work in the book."""
        r = order.request
        cid = r.client_order_id
        if order.is_market and not book.has_liquidity(r.side):
            self._cancel(order, CancelReason.NO_LIQUIDITY)
            return
        ticks = None if order.is_market else _ticks(book, order)
        trades = book.place(
            order.book_id, r.side, order.remaining_qty, ticks, ioc=r.tif is TimeInForce.IOC
        )
        self._book_trades(book, trades)
        if order.status.is_working and not book.is_resting(order.book_id):
            reason = (
                CancelReason.MARKET_REMAINDER if order.is_market else CancelReason.IOC_REMAINDER
            )
            log.debug("remainder cancelled", extra={"client_order_id": cid, "reason": reason})
            self._cancel(order, reason)

    def _book_trades(self, book: InstrumentBook, trades: list[Trade]) -> None:
        """Report the trades that involve our orders (ids > 0), one trade id per match."""
        tick = book.instrument.tick_paise
        for t in trades:
            ours = [i for i in (t.taker_id, t.maker_id) if i > 0]
            if not ours:
                continue
            self._next_trade_id += 1
            trade_id = f"{self._next_trade_id:08d}"
            for book_id in ours:
                self._fill(book, self._by_book_id[book_id], trade_id, t.qty, t.price_ticks * tick)

    def _fill(
        self, book: InstrumentBook, order: _Order, trade_id: str, qty: int, price_paise: int
    ) -> None:
        order.filled_qty += qty
        r = order.request
        kind = OrderFilled if order.remaining_qty == 0 else OrderPartiallyFilled
        self._emit(
            kind(
                ts_ns=self._now_ns,
                client_order_id=r.client_order_id,
                venue_order_id=order.venue_order_id,
                trade_id=trade_id,
                instrument_token=r.instrument_token,
                side=r.side,
                qty=qty,
                price_paise=price_paise,
                filled_qty=order.filled_qty,
                remaining_qty=order.remaining_qty,
            ),
            order,
        )
        if order.remaining_qty == 0:
            book.forget(order.book_id)

    def _cancel(self, order: _Order, reason: str) -> None:
        self._emit(
            OrderCancelled(
                ts_ns=self._now_ns,
                client_order_id=order.request.client_order_id,
                venue_order_id=order.venue_order_id,
                reason=reason,
                filled_qty=order.filled_qty,
                cancelled_qty=order.remaining_qty,
            ),
            order,
        )

    def _withdraw(self, order: _Order) -> None:
        """Take a working order off the book or out of the trigger table."""
        if order.pending_trigger:
            del self._stops[order.token][order.book_id]
        else:
            book = self._books[order.token]
            if book.is_resting(order.book_id):
                book.cancel(order.book_id)

    def _check_triggers(self, book: InstrumentBook, last_paise: int) -> None:
        stops = self._stops[book.instrument.token]
        hit = [
            o for o in stops.values() if _crossed(o.request.side, o.trigger_price_paise, last_paise)
        ]
        for order in hit:
            del stops[order.book_id]
            order.triggered = True
            self._emit(
                OrderTriggered(
                    ts_ns=self._now_ns,
                    client_order_id=order.request.client_order_id,
                    venue_order_id=order.venue_order_id,
                    last_price_paise=last_paise,
                ),
                order,
            )
            self._work(book, order)

    def _arrive_cancel(self, client_order_id: str) -> None:
        order = self._orders.get(client_order_id)
        rule = _not_working(order, client_order_id)
        if rule is not None:
            self._emit(
                OrderCancelRejected(
                    ts_ns=self._now_ns,
                    client_order_id=client_order_id,
                    venue_order_id=None if order is None else order.venue_order_id,
                    code=rule[0],
                    reason=rule[1],
                )
            )
            return
        assert order is not None
        self._withdraw(order)
        self._cancel(order, CancelReason.USER)

    def _arrive_modify(
        self, client_order_id: str, qty: int | None, price: int | None, trigger: int | None
    ) -> None:
        order = self._orders.get(client_order_id)
        rule = _not_working(order, client_order_id)
        if rule is None:
            assert order is not None
            rule = self._check_modify(order, qty, price, trigger)
        if rule is not None:
            self._emit(
                OrderModifyRejected(
                    ts_ns=self._now_ns,
                    client_order_id=client_order_id,
                    venue_order_id=None if order is None else order.venue_order_id,
                    code=rule[0],
                    reason=rule[1],
                )
            )
            return
        assert order is not None
        if qty is not None:
            order.qty = qty
        if price is not None:
            order.price_paise = price
        if trigger is not None:
            order.trigger_price_paise = trigger
        self._emit(
            OrderModified(
                ts_ns=self._now_ns,
                client_order_id=client_order_id,
                venue_order_id=order.venue_order_id,
                qty=order.qty,
                price_paise=order.price_paise,
                trigger_price_paise=order.trigger_price_paise,
            ),
            order,
        )
        if order.pending_trigger:
            return
        book = self._books[order.token]
        trades = book.modify(order.book_id, order.remaining_qty, _ticks(book, order))
        self._book_trades(book, trades)

    def _check_modify(
        self, order: _Order, qty: int | None, price: int | None, trigger: int | None
    ) -> _Rule | None:
        if qty is None and price is None and trigger is None:
            return RejectCode.INVALID_MODIFY, "nothing to modify"
        if price is not None and not order.request.order_type.has_limit_price:
            return RejectCode.INVALID_MODIFY, f"a {order.request.order_type} order has no price"
        if trigger is not None and not order.pending_trigger:
            return RejectCode.INVALID_MODIFY, "the order has no pending trigger price"
        new_qty = order.qty if qty is None else qty
        if new_qty <= order.filled_qty:
            return RejectCode.INVALID_MODIFY, (
                f"quantity {new_qty} is not above the filled quantity {order.filled_qty}"
            )
        new_price = order.price_paise if price is None else price
        new_trigger = order.trigger_price_paise if trigger is None else trigger
        book = self._books[order.token]
        return self._check_rules(
            book,
            order.request.side,
            new_qty,
            new_price,
            new_trigger if order.pending_trigger else None,
        )

    def _schedule_close(self, now_ns: int) -> None:
        if not self.config.enforce_market_hours:
            return
        close = self._hours.close_ns(now_ns)
        if close not in self._closes:
            self._closes.add(close)
            self._schedule(close, self._close_session)

    def _close_session(self) -> None:
        for order in [o for o in self._orders.values() if o.status.is_working]:
            self._withdraw(order)
            self._cancel(order, CancelReason.MARKET_CLOSED)

    def _book(self, token: str) -> InstrumentBook:
        book = self._books.get(token)
        if book is None:
            raise ValidationError("token", token, "no instrument with this token is listed")
        return book


def _ticks(book: InstrumentBook, order: _Order) -> int:
    assert order.price_paise is not None
    return order.price_paise // book.instrument.tick_paise


def _crossed(side: Side, trigger_paise: int | None, last_paise: int) -> bool:
    """True if a last trade at ``last_paise`` reaches a stop's trigger."""
    if trigger_paise is None:
        return False
    return last_paise >= trigger_paise if side is Side.BUY else last_paise <= trigger_paise


def _not_working(order: _Order | None, client_order_id: str) -> _Rule | None:
    if order is None:
        return RejectCode.UNKNOWN_ORDER, f"no order with client order id {client_order_id!r}"
    if not order.status.is_working:
        return RejectCode.ORDER_NOT_OPEN, f"the order is {order.status.value}, not working"
    return None


def _levels(
    name: str, levels: Sequence[tuple[int, int]], tick: int, *, descending: bool
) -> list[tuple[int, int]]:
    """Validate a snapshot side; return ``(price_ticks, qty)`` for the levels with qty > 0."""
    out: list[tuple[int, int]] = []
    try:
        pairs = [(p, q) for p, q in levels]
    except (TypeError, ValueError):
        raise ValidationError(name, levels, "must be a sequence of (price_paise, qty)") from None
    for price, qty in pairs:
        if not isinstance(qty, int) or isinstance(qty, bool) or qty < 0:
            raise ValidationError(name, levels, f"qty {qty!r} must be an integer >= 0")
        if qty == 0:
            continue
        if not isinstance(price, int) or isinstance(price, bool) or price <= 0 or price % tick:
            raise ValidationError(name, levels, f"price {price!r}: > 0, a multiple of {tick}")
        ticks = price // tick
        if out and (ticks >= out[-1][0] if descending else ticks <= out[-1][0]):
            raise ValidationError(name, levels, "levels must be distinct and best first")
        out.append((ticks, qty))
    return out
