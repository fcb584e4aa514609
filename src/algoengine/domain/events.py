"""Order events: what a venue (the paper exchange or Angel One) reports about our orders.

Every event carries ``ts_ns`` (venue time, UTC epoch ns), ``client_order_id`` (our id, Angel
One's ``ordertag``) and ``venue_order_id`` (the venue's order id, a string of digits; ``None``
only when the venue never assigned one, e.g. a cancel request for an id it does not know).
Prices are paise, quantities units.

The sequence a venue reports for one order::

    OrderAccepted(status=OPEN) [OrderPartiallyFilled ...] (OrderFilled | OrderCancelled)
    OrderAccepted(status=TRIGGER_PENDING) OrderTriggered  ... as above
    OrderRejected                                  (refused on arrival: nothing else follows)
    OrderModified / OrderModifyRejected, OrderCancelRejected may come between, while it works.

Each event names the :class:`~algoengine.domain.orders.StatusTrigger` it applies to the order's
status machine (``status_trigger``); ``OrderModifyRejected`` and ``OrderCancelRejected`` change
nothing (``None``): a refused modification or cancellation leaves the order as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from algoengine.domain.orders import OrderStatus, Side, StatusTrigger

__all__ = [
    "CancelReason",
    "OrderAccepted",
    "OrderCancelRejected",
    "OrderCancelled",
    "OrderDenied",
    "OrderEvent",
    "OrderFillEvent",
    "OrderFilled",
    "OrderModified",
    "OrderModifyRejected",
    "OrderPartiallyFilled",
    "OrderRejected",
    "OrderTriggered",
    "RejectCode",
]


class RejectCode(StrEnum):
    """Why a venue refused an order, a modification or a cancellation (machine-readable).

    The event's ``reason`` carries the human text (the broker's own, for Angel One).
    """

    UNKNOWN_INSTRUMENT = "UNKNOWN_INSTRUMENT"
    DUPLICATE_CLIENT_ORDER_ID = "DUPLICATE_CLIENT_ORDER_ID"
    MARKET_CLOSED = "MARKET_CLOSED"
    LOT_SIZE = "LOT_SIZE"  # qty not a multiple of the lot size
    FREEZE_QTY = "FREEZE_QTY"  # qty above the freeze quantity: slice it
    TICK_SIZE = "TICK_SIZE"  # a price off the tick grid
    PRICE_BAND = "PRICE_BAND"  # a price outside the band around the reference
    TRIGGER_PRICE = "TRIGGER_PRICE"  # stop-limit price on the wrong side of its trigger
    TRIGGER_CROSSED = "TRIGGER_CROSSED"  # the last price is already through the trigger
    NO_LIQUIDITY = "NO_LIQUIDITY"  # a market order with nothing to trade against
    UNKNOWN_ORDER = "UNKNOWN_ORDER"  # cancel/modify of an id the venue does not know
    ORDER_NOT_OPEN = "ORDER_NOT_OPEN"  # cancel/modify of a filled/cancelled/rejected order
    INVALID_MODIFY = "INVALID_MODIFY"  # a modification the order cannot take
    OTHER = "OTHER"  # a broker reason with no better code


class CancelReason(StrEnum):
    """Reasons the paper exchange gives in ``OrderCancelled.reason`` (a live venue gives its own
    text; the field is a plain ``str``)."""

    USER = "user"
    IOC_REMAINDER = "IOC remainder"
    MARKET_REMAINDER = "market order remainder"
    NO_LIQUIDITY = "no liquidity"
    MARKET_CLOSED = "market closed"


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderEvent:
    """Base of the order events."""

    ts_ns: int
    client_order_id: str
    venue_order_id: str | None

    @property
    def status_trigger(self) -> StatusTrigger | None:
        """The transition this event applies to the order's status (None: no change)."""
        return None


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderAccepted(OrderEvent):
    """The venue took the order: ``status`` is OPEN (on the book) or TRIGGER_PENDING (a stop
    order waiting for its trigger)."""

    status: OrderStatus

    @property
    def status_trigger(self) -> StatusTrigger:
        if self.status is OrderStatus.TRIGGER_PENDING:
            return StatusTrigger.ACCEPT_TRIGGER_PENDING
        return StatusTrigger.ACCEPT


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderTriggered(OrderEvent):
    """A stop order's trigger was reached by a trade at ``last_price_paise``; it now works as a
    limit (STOPLOSS_LIMIT) or market (STOPLOSS_MARKET) order."""

    last_price_paise: int

    @property
    def status_trigger(self) -> StatusTrigger:
        return StatusTrigger.TRIGGER


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderFillEvent(OrderEvent):
    """A fill (base of :class:`OrderPartiallyFilled` and :class:`OrderFilled`).

    ``qty`` and ``price_paise`` are this fill's; ``filled_qty`` is the order's cumulative filled
    quantity after it and ``remaining_qty`` what is left (0 for :class:`OrderFilled`).
    ``trade_id`` is the exchange's trade id.
    """

    trade_id: str
    instrument_token: str
    side: Side
    qty: int
    price_paise: int
    filled_qty: int
    remaining_qty: int


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderPartiallyFilled(OrderFillEvent):
    """A fill that leaves some quantity working."""

    @property
    def status_trigger(self) -> StatusTrigger:
        return StatusTrigger.PARTIAL_FILL


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderFilled(OrderFillEvent):
    """The fill that completes the order."""

    @property
    def status_trigger(self) -> StatusTrigger:
        return StatusTrigger.FILL


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderCancelled(OrderEvent):
    """The order stopped working with ``cancelled_qty`` unfilled (``filled_qty`` traded).

    ``reason``: who or what cancelled it (see :class:`CancelReason` for the paper exchange's).
    """

    reason: str
    filled_qty: int
    cancelled_qty: int

    @property
    def status_trigger(self) -> StatusTrigger:
        return StatusTrigger.CANCEL


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderRejected(OrderEvent):
    """The venue refused the order on arrival; ``reason`` says which rule it broke."""

    code: RejectCode
    reason: str

    @property
    def status_trigger(self) -> StatusTrigger:
        return StatusTrigger.REJECT


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderModified(OrderEvent):
    """The venue applied a modification; the fields are the order's values after it (``qty``
    is the total quantity, as Angel One's ``modifyOrder`` takes it)."""

    qty: int
    price_paise: int | None
    trigger_price_paise: int | None

    @property
    def status_trigger(self) -> StatusTrigger:
        return StatusTrigger.MODIFY


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderModifyRejected(OrderEvent):
    """The venue refused a modification; the order is unchanged."""

    code: RejectCode
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderCancelRejected(OrderEvent):
    """The venue refused a cancellation (unknown order, or no longer working)."""

    code: RejectCode
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderDenied(OrderEvent):
    """The engine refused the order before it left (pre-trade risk, throttle shutdown, a
    stopped strategy): it never reached a venue, so ``venue_order_id`` is None.

    ``code`` is the machine-readable reason (a risk reason's name, e.g. ``"MAX_LOTS_PER_ORDER"``)
    and ``reason`` the text naming the limit and the values.
    """

    code: str
    reason: str

    @property
    def status_trigger(self) -> StatusTrigger:
        return StatusTrigger.REJECT
