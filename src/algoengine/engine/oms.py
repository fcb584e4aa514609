"""Order management: the engine's book of our orders, between strategies and the broker.

What it does, in order, for an order a strategy asks for:

1. slices it into exchange-acceptable pieces: quantities above the instrument's freeze quantity
   become several orders, each at most the freeze quantity and a whole number of lots (exits
   and square-offs too);
2. gives each piece a client order id (Angel One's ``ordertag``: at most 20 characters, unique
   per run and across restarts: the run code is part of it);
3. runs the pre-trade check (the risk engine) on each piece: a refused piece becomes
   ``OrderDenied`` (status NEW -> REJECTED) with the reason, and never leaves;
4. queues the piece in the throttle, which sends at most ``orders_per_second`` new orders and
   modifications per exchange segment in any one-second window (SEBI's retail threshold is 10)
   and at most ``cancels_per_second`` cancellations: nothing is dropped, pieces wait their turn;
5. tracks every venue event through the status table (``domain.orders.TRANSITIONS``): an event
   the table does not allow is logged with the client order id and dropped, never applied.

Linked exits: two orders can be linked one-cancels-other (a stop-loss and a target). When one
fills completely the other is cancelled; when one fills partly the other is reduced to the
quantity still open, so the pair never closes more than the position.

The OMS holds no position or P&L; the engine hands fills to the portfolio and the risk engine.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from algoengine.domain.events import (
    OrderCancelled,
    OrderDenied,
    OrderEvent,
    OrderFillEvent,
    OrderModified,
)
from algoengine.domain.instruments import Instrument
from algoengine.domain.orders import (
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    can_transition,
    next_status,
)
from algoengine.errors import TemporaryBrokerError, ValidationError

__all__ = [
    "ManagedOrder",
    "OrderManager",
    "OrderVenue",
    "PreTradeCheck",
    "ThrottleConfig",
]

log = logging.getLogger(__name__)

NS_PER_S = 1_000_000_000


class OrderVenue(Protocol):
    """The broker side the OMS talks to (the Broker protocol's request half)."""

    def submit(self, request: OrderRequest, ts_ns: int) -> None: ...

    def cancel(self, client_order_id: str, ts_ns: int) -> None: ...

    def modify(
        self,
        client_order_id: str,
        ts_ns: int,
        *,
        qty: int | None = None,
        price_paise: int | None = None,
        trigger_price_paise: int | None = None,
    ) -> None: ...


class PreTradeCheck(Protocol):
    """The risk engine as the OMS sees it: None to pass, else (code, reason)."""

    def check(self, order: ManagedOrder, ts_ns: int) -> tuple[str, str] | None: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class ThrottleConfig:
    """Order-rate limits per exchange segment.

    Parameters
    ----------
    orders_per_second
        New orders and modifications in any one-second window (SEBI retail threshold: 10; the
        broker allows 20).
    cancels_per_second
        Cancellations in any one-second window (the broker's limit: 20).
    """

    orders_per_second: int = 10
    cancels_per_second: int = 20

    def __post_init__(self) -> None:
        for name in ("orders_per_second", "cancels_per_second"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValidationError(name, value, "must be an integer >= 1")


@dataclass(slots=True, eq=False)
class ManagedOrder:
    """One order (or one slice of a sliced order) as the engine knows it."""

    client_order_id: str
    strategy_id: str
    idx: int  # universe index
    instrument: Instrument
    side: Side
    order_type: OrderType
    qty: int
    price_paise: int | None
    trigger_price_paise: int | None
    tif: TimeInForce
    tag: str
    created_ns: int
    square_off: bool = False
    parent_id: str | None = None  # the first slice's id when sliced
    status: OrderStatus = OrderStatus.NEW
    filled_qty: int = 0
    filled_value_paise: int = 0  # sum of price * qty over fills
    venue_order_id: str | None = None
    reason: str | None = None
    updated_ns: int = 0
    oco_id: str | None = None
    cancel_requested: bool = False
    events: list[OrderEvent] = field(default_factory=list)
    trade_ids: set[str] = field(default_factory=set)  # fills applied (a redelivery is dropped)
    resend: bool = False  # a send failed in transit: the same request goes again

    @property
    def remaining_qty(self) -> int:
        return self.qty - self.filled_qty

    @property
    def avg_price_paise(self) -> float:
        """Average fill price (0.0 before any fill)."""
        return self.filled_value_paise / self.filled_qty if self.filled_qty else 0.0

    @property
    def is_open(self) -> bool:
        """Not in a terminal status (it may still be waiting in the throttle)."""
        return not self.status.is_terminal

    def request(self) -> OrderRequest:
        return OrderRequest(
            client_order_id=self.client_order_id,
            instrument_token=self.instrument.token,
            side=self.side,
            order_type=self.order_type,
            qty=self.qty,
            price_paise=self.price_paise,
            trigger_price_paise=self.trigger_price_paise,
            tif=self.tif,
            strategy_id=self.strategy_id,
        )


@dataclass(slots=True)
class _Window:
    """At most ``limit`` sends in any one-second window."""

    limit: int
    sent: deque[int] = field(default_factory=deque)

    def next_free_ns(self, now_ns: int) -> int:
        while self.sent and self.sent[0] <= now_ns - NS_PER_S:
            self.sent.popleft()
        if len(self.sent) < self.limit:
            return now_ns
        return self.sent[-self.limit] + NS_PER_S

    def take(self, now_ns: int) -> None:
        self.sent.append(now_ns)


# kinds of queued actions
_SUBMIT, _MODIFY, _CANCEL = 0, 1, 2


class OrderManager:
    """Our orders, their slicing, ids, pre-trade checks, throttle and status.

    Parameters
    ----------
    venue
        Where orders go (the paper exchange or the Angel One adapter).
    check
        The pre-trade check run on every new order slice (``None``: none).
    sink
        Called with ``(event, order)`` for every event the OMS applies or makes
        (``OrderDenied``, local cancellations, and the venue's events): the engine routes them
        to the portfolio, the risk engine, the journal and the owning strategy.
    run_code
        Up to 8 characters of ``[A-Za-z0-9]`` identifying this run; client order ids are
        ``<run_code><seq>`` so that two runs never share one.
    throttle
        Rate limits per exchange segment.
    on_sent
        Called with each order (status SUBMITTED) just before it is handed to the venue.
    """

    def __init__(
        self,
        venue: OrderVenue,
        *,
        check: PreTradeCheck | None,
        sink: Callable[[OrderEvent, ManagedOrder], None],
        run_code: str,
        throttle: ThrottleConfig | None = None,
        on_sent: Callable[[ManagedOrder], None] | None = None,
    ) -> None:
        if not (isinstance(run_code, str) and run_code.isalnum() and 1 <= len(run_code) <= 8):
            raise ValidationError("run_code", run_code, "1-8 letters or digits")
        self._venue = venue
        self._check = check
        self._sink = sink
        self._run_code = run_code
        self._throttle = throttle or ThrottleConfig()
        self._on_sent = on_sent  # told of each order just before it goes to the venue
        self._retry_at = 0  # after a venue failure, nothing is sent before this (engine ns)
        self._backoff_ns = 0
        self._seq = 0
        self.orders: dict[str, ManagedOrder] = {}
        self._open: dict[str, ManagedOrder] = {}  # orders not yet terminal, oldest first
        self._queue: deque[tuple[int, ManagedOrder, dict[str, int | None]]] = deque()
        self._windows: dict[tuple[str, int], _Window] = {}

    # ---- queries ---------------------------------------------------------------------------

    def get(self, client_order_id: str) -> ManagedOrder | None:
        return self.orders.get(client_order_id)

    def open_orders(self, strategy_id: str | None = None) -> list[ManagedOrder]:
        """Orders not yet in a terminal status, oldest first."""
        return [
            o for o in self._open.values() if strategy_id is None or o.strategy_id == strategy_id
        ]

    def pending_actions(self) -> int:
        """Actions waiting in the throttle."""
        return len(self._queue)

    def next_release_ns(self, now_ns: int) -> int | None:
        """When the throttle can send its next queued action (None: nothing queued)."""
        if not self._queue:
            return None
        kind, order, _ = self._queue[0]
        return max(self._window(order, kind).next_free_ns(now_ns), self._retry_at)

    def adopt(self, order: ManagedOrder) -> None:
        """Track an order this OMS did not create (recovery after a crash: the order was
        sent by the previous process and is known by its client order id)."""
        self.orders[order.client_order_id] = order
        if order.is_open:
            self._open[order.client_order_id] = order

    def forget_strategy(self, strategy_id: str) -> int:
        """Stop tracking a strategy's orders (another engine task owns them now): they
        leave the throttle queue unsent if still queued, and later events for them are
        dropped as unknown. Returns how many open orders were forgotten."""
        self._queue = deque(q for q in self._queue if q[1].strategy_id != strategy_id)
        gone = [cid for cid, o in self.orders.items() if o.strategy_id == strategy_id]
        n = 0
        for cid in gone:
            n += cid in self._open
            self._open.pop(cid, None)
            del self.orders[cid]
        return n

    # ---- requests --------------------------------------------------------------------------

    def submit(
        self,
        *,
        strategy_id: str,
        idx: int,
        instrument: Instrument,
        side: Side,
        qty: int,
        order_type: OrderType,
        ts_ns: int,
        price_paise: int | None = None,
        trigger_price_paise: int | None = None,
        tif: TimeInForce = TimeInForce.DAY,
        tag: str = "",
        square_off: bool = False,
    ) -> list[str]:
        """Ask for an order; returns the client order ids of its slices (denied ones included:
        their ``OrderDenied`` has gone to the sink)."""
        if not isinstance(qty, int) or isinstance(qty, bool) or qty <= 0:
            raise ValidationError("qty", qty, "must be a positive integer (units)")
        if qty % instrument.lot_size:
            raise ValidationError(
                "qty", qty, f"must be a multiple of the lot size {instrument.lot_size}"
            )
        ids: list[str] = []
        parent: str | None = None
        for piece in self.slices(qty, instrument):
            order = ManagedOrder(
                client_order_id=self._next_id(),
                strategy_id=strategy_id,
                idx=idx,
                instrument=instrument,
                side=side,
                order_type=order_type,
                qty=piece,
                price_paise=price_paise,
                trigger_price_paise=trigger_price_paise,
                tif=tif,
                tag=tag,
                created_ns=ts_ns,
                square_off=square_off,
                parent_id=parent,
                updated_ns=ts_ns,
            )
            parent = parent or order.client_order_id
            self.orders[order.client_order_id] = order
            self._open[order.client_order_id] = order
            ids.append(order.client_order_id)
            denied = self._check.check(order, ts_ns) if self._check is not None else None
            if denied is not None:
                code, reason = denied
                log.info(
                    "order denied",
                    extra={
                        "client_order_id": order.client_order_id,
                        "strategy_id": strategy_id,
                        "reason": reason,
                    },
                )
                self._apply(
                    OrderDenied(
                        ts_ns=ts_ns,
                        client_order_id=order.client_order_id,
                        venue_order_id=None,
                        code=code,
                        reason=reason,
                    ),
                    order,
                )
                continue
            self._queue.append((_SUBMIT, order, {}))
        self.release(ts_ns)
        return ids

    @staticmethod
    def slices(qty: int, instrument: Instrument) -> list[int]:
        """Split ``qty`` into pieces of at most the freeze quantity, each whole lots."""
        lot = instrument.lot_size
        max_piece = instrument.freeze_qty // lot * lot
        pieces = [max_piece] * (qty // max_piece)
        if qty % max_piece:
            pieces.append(qty % max_piece)
        return pieces

    def cancel(self, client_order_id: str, ts_ns: int) -> bool:
        """Ask to cancel an open order. An order still waiting in the throttle is cancelled
        here and never sent. Returns False if the order is unknown or already finished."""
        order = self.orders.get(client_order_id)
        if order is None or not order.is_open or order.cancel_requested:
            return False
        order.cancel_requested = True
        if order.status is OrderStatus.NEW:  # never sent: drop it from the queue
            self._queue = deque(q for q in self._queue if q[1] is not order)
            self._apply(
                OrderCancelled(
                    ts_ns=ts_ns,
                    client_order_id=client_order_id,
                    venue_order_id=None,
                    reason="cancelled before it was sent",
                    filled_qty=0,
                    cancelled_qty=order.qty,
                ),
                order,
            )
            return True
        self._queue.append((_CANCEL, order, {}))
        self.release(ts_ns)
        return True

    def modify(
        self,
        client_order_id: str,
        ts_ns: int,
        *,
        qty: int | None = None,
        price_paise: int | None = None,
        trigger_price_paise: int | None = None,
    ) -> bool:
        """Ask to change an open order (``qty`` is the new total quantity, as Angel One takes
        it). Returns False if the order is unknown or finished."""
        order = self.orders.get(client_order_id)
        if order is None or not order.is_open or order.cancel_requested:
            return False
        change = {
            "qty": qty,
            "price_paise": price_paise,
            "trigger_price_paise": trigger_price_paise,
        }
        if order.status is OrderStatus.NEW:  # still queued: change it before it goes
            if qty is not None:
                order.qty = qty
            if price_paise is not None:
                order.price_paise = price_paise
            if trigger_price_paise is not None:
                order.trigger_price_paise = trigger_price_paise
            return True
        self._queue.append((_MODIFY, order, change))
        self.release(ts_ns)
        return True

    def cancel_all(self, ts_ns: int, strategy_id: str | None = None) -> int:
        """Cancel every open order (of one strategy); returns how many were asked."""
        n = 0
        for order in self.open_orders(strategy_id):
            n += self.cancel(order.client_order_id, ts_ns)
        return n

    def link_oco(self, first_id: str, second_id: str) -> None:
        """Link two open orders one-cancels-other (see the module docstring)."""
        a, b = self.orders.get(first_id), self.orders.get(second_id)
        if a is None or b is None:
            raise ValidationError(
                "client_order_id", first_id if a is None else second_id, "unknown"
            )
        a.oco_id, b.oco_id = b.client_order_id, a.client_order_id

    # ---- the throttle ----------------------------------------------------------------------

    def release(self, now_ns: int) -> int:
        """Send the queued actions the rate limits allow at ``now_ns``, in order; returns how
        many were sent. (FIFO: an action waits behind an earlier one of any kind.)"""
        sent = 0
        if now_ns < self._retry_at:
            return 0
        while self._queue:
            kind, order, change = self._queue[0]
            window = self._window(order, kind)
            if window.next_free_ns(now_ns) > now_ns:
                break
            self._queue.popleft()
            try:
                if kind == _SUBMIT:
                    if order.status is not OrderStatus.NEW and not order.resend:
                        continue
                    window.take(now_ns)
                    if not order.resend:
                        self._apply_local(order, now_ns)
                        if self._on_sent is not None:
                            self._on_sent(order)  # journaled as sent before any answer
                    self._venue.submit(order.request(), now_ns)
                    order.resend = False
                elif kind == _CANCEL:
                    if not order.is_open:
                        continue
                    window.take(now_ns)
                    self._venue.cancel(order.client_order_id, now_ns)
                else:
                    if not order.is_open:
                        continue
                    window.take(now_ns)
                    self._venue.modify(order.client_order_id, now_ns, **change)
            except TemporaryBrokerError as exc:
                # the request may or may not have arrived: send the SAME request again later
                # (same client order id; the venue treats a repeat as one order)
                if kind == _SUBMIT:
                    order.resend = True
                self._queue.appendleft((kind, order, change))
                self._backoff_ns = min(max(2 * self._backoff_ns, 200_000_000), 5 * NS_PER_S)
                self._retry_at = now_ns + self._backoff_ns
                log.warning(
                    "venue unreachable: will retry",
                    extra={"client_order_id": order.client_order_id, "error": str(exc)},
                )
                break
            self._backoff_ns = 0
            sent += 1
        return sent

    def _window(self, order: ManagedOrder, kind: int) -> _Window:
        key = (order.instrument.exchange, _CANCEL if kind == _CANCEL else _SUBMIT)
        w = self._windows.get(key)
        if w is None:
            limit = (
                self._throttle.cancels_per_second
                if kind == _CANCEL
                else self._throttle.orders_per_second
            )
            w = self._windows[key] = _Window(limit)
        return w

    def _apply_local(self, order: ManagedOrder, ts_ns: int) -> None:
        from algoengine.domain.orders import StatusTrigger

        order.status = next_status(
            order.status, StatusTrigger.SUBMIT, client_order_id=order.client_order_id
        )
        order.updated_ns = ts_ns

    # ---- venue events ----------------------------------------------------------------------

    def on_events(self, events: Iterable[OrderEvent], ts_ns: int) -> None:
        """Apply the venue's events in order."""
        for event in events:
            order = self.orders.get(event.client_order_id)
            if order is None:
                log.warning(
                    "event for an unknown order dropped",
                    extra={"client_order_id": event.client_order_id, "event": type(event).__name__},
                )
                continue
            if isinstance(event, OrderFillEvent):
                if event.trade_id in order.trade_ids:  # delivered twice (replay, reconnect)
                    log.info(
                        "duplicate fill dropped",
                        extra={
                            "client_order_id": order.client_order_id,
                            "trade_id": event.trade_id,
                        },
                    )
                    continue
                order.trade_ids.add(event.trade_id)
            self._apply(event, order)
            if isinstance(event, OrderFillEvent) and order.oco_id is not None:
                self._on_linked_fill(order, ts_ns)

    def _apply(self, event: OrderEvent, order: ManagedOrder) -> None:
        trigger = event.status_trigger
        if trigger is not None:
            if not can_transition(order.status, trigger):
                log.error(
                    "illegal order transition dropped",
                    extra={
                        "client_order_id": order.client_order_id,
                        "status": order.status.value,
                        "trigger": trigger.value,
                        "event": type(event).__name__,
                    },
                )
                return
            order.status = next_status(order.status, trigger)
            if order.status.is_terminal:
                self._open.pop(order.client_order_id, None)
        if event.venue_order_id is not None:
            order.venue_order_id = event.venue_order_id
        if isinstance(event, OrderFillEvent):
            order.filled_qty += event.qty
            order.filled_value_paise += event.qty * event.price_paise
        elif isinstance(event, OrderModified):
            order.qty = event.qty
            order.price_paise = event.price_paise
            order.trigger_price_paise = event.trigger_price_paise
        reason = getattr(event, "reason", None)
        if isinstance(reason, str) and trigger is not None:
            order.reason = reason
        order.updated_ns = event.ts_ns
        order.events.append(event)
        self._sink(event, order)

    def _on_linked_fill(self, order: ManagedOrder, ts_ns: int) -> None:
        other = self.orders.get(order.oco_id or "")
        if other is None or not other.is_open:
            return
        if order.remaining_qty == 0 or not order.is_open:
            self.cancel(other.client_order_id, ts_ns)
            return
        left = order.remaining_qty  # the position the pair still protects
        if other.remaining_qty > left:
            self.modify(other.client_order_id, ts_ns, qty=other.filled_qty + left)

    # ---- ids -------------------------------------------------------------------------------

    def _next_id(self) -> str:
        self._seq += 1
        cid = f"{self._run_code}{self._seq:06d}"
        if len(cid) > 20:
            raise ValidationError("client_order_id", cid, "ran out of ids for this run")
        return cid
