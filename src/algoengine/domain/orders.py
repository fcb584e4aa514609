"""Orders: sides, types, time in force, the order status state machine, and order requests.

The status machine is a table ``(status, trigger) -> status`` (STYLE.md item 10). A trigger is
what happened to the order: the OMS submitted it, the venue accepted it, it filled, and so on;
every order event names its trigger (``OrderEvent.status_trigger``), so the OMS moves an order
with ``order.status = next_status(order.status, event.status_trigger)``. A missing row raises
:class:`~algoengine.domain.errors.InvalidTransitionError`.

::

    NEW --SUBMIT--> SUBMITTED --ACCEPT--> OPEN --PARTIAL_FILL--> PARTIALLY_FILLED --FILL--> FILLED
                      |  \\--ACCEPT_TRIGGER_PENDING--> TRIGGER_PENDING --TRIGGER--> OPEN
                      \\--REJECT--> REJECTED
    NEW --REJECT--> REJECTED (denied by risk), NEW --CANCEL--> CANCELLED (before it was sent);
    working statuses (TRIGGER_PENDING, OPEN, PARTIALLY_FILLED) --CANCEL--> CANCELLED,
    --MODIFY--> themselves.

A venue normally reports the acceptance before any fill; the table also lets a SUBMITTED order
fill or be cancelled directly, because a live broker may report a marketable order as complete
(or an IOC order as cancelled) without an "open" report first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from algoengine.domain._checks import check_enum, check_int, check_optional_int, check_str
from algoengine.domain.errors import InvalidTransitionError, ValidationError

__all__ = [
    "CLIENT_ORDER_ID_MAX_LEN",
    "TRANSITIONS",
    "OrderRequest",
    "OrderStatus",
    "OrderStatusReport",
    "OrderType",
    "Side",
    "StatusTrigger",
    "TimeInForce",
    "can_transition",
    "next_status",
]

#: Angel One's ``ordertag`` (our client order id) holds at most 20 characters.
CLIENT_ORDER_ID_MAX_LEN = 20
_CLIENT_ORDER_ID = re.compile(rf"[A-Za-z0-9_-]{{1,{CLIENT_ORDER_ID_MAX_LEN}}}")


class Side(StrEnum):
    """Buy or sell (Angel One ``transactiontype``)."""

    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell."""
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        """The other side."""
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    """Order types, with Angel One's names (``ordertype``)."""

    MARKET = "MARKET"
    LIMIT = "LIMIT"
    STOPLOSS_LIMIT = "STOPLOSS_LIMIT"
    STOPLOSS_MARKET = "STOPLOSS_MARKET"

    @property
    def is_stop(self) -> bool:
        """True for the stop-loss types (they wait for their trigger price)."""
        return self in (OrderType.STOPLOSS_LIMIT, OrderType.STOPLOSS_MARKET)

    @property
    def has_limit_price(self) -> bool:
        """True for the types that carry a limit price (LIMIT, STOPLOSS_LIMIT)."""
        return self in (OrderType.LIMIT, OrderType.STOPLOSS_LIMIT)


class TimeInForce(StrEnum):
    """Angel One ``duration``: DAY rests until filled, cancelled or the close; IOC never rests."""

    DAY = "DAY"
    IOC = "IOC"


class OrderStatus(StrEnum):
    """Where an order is in its life."""

    NEW = "NEW"
    SUBMITTED = "SUBMITTED"
    TRIGGER_PENDING = "TRIGGER_PENDING"
    OPEN = "OPEN"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"

    @property
    def is_terminal(self) -> bool:
        """True for FILLED, CANCELLED and REJECTED: nothing more can happen."""
        return self in _TERMINAL

    @property
    def is_working(self) -> bool:
        """True while the venue holds the order (trigger pending, open, partially filled)."""
        return self in _WORKING


_TERMINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED})
_WORKING = frozenset({OrderStatus.TRIGGER_PENDING, OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED})


class StatusTrigger(StrEnum):
    """What moves an order between statuses (a column of :data:`TRANSITIONS`)."""

    SUBMIT = "SUBMIT"  # the OMS sent it to the venue
    ACCEPT = "ACCEPT"  # the venue put it on the book
    ACCEPT_TRIGGER_PENDING = "ACCEPT_TRIGGER_PENDING"  # the venue holds a stop order
    TRIGGER = "TRIGGER"  # a stop's trigger price was reached
    PARTIAL_FILL = "PARTIAL_FILL"
    FILL = "FILL"  # the last fill: nothing remains
    MODIFY = "MODIFY"
    CANCEL = "CANCEL"
    REJECT = "REJECT"


def _table() -> Mapping[tuple[OrderStatus, StatusTrigger], OrderStatus]:
    S, T = OrderStatus, StatusTrigger
    rows: dict[tuple[OrderStatus, StatusTrigger], OrderStatus] = {
        (S.NEW, T.SUBMIT): S.SUBMITTED,
        (S.NEW, T.REJECT): S.REJECTED,  # refused before it left (risk, validation)
        (S.NEW, T.CANCEL): S.CANCELLED,  # cancelled while waiting in the OMS throttle
        (S.SUBMITTED, T.ACCEPT): S.OPEN,
        (S.SUBMITTED, T.ACCEPT_TRIGGER_PENDING): S.TRIGGER_PENDING,
        (S.SUBMITTED, T.REJECT): S.REJECTED,
        (S.SUBMITTED, T.PARTIAL_FILL): S.PARTIALLY_FILLED,
        (S.SUBMITTED, T.FILL): S.FILLED,
        (S.SUBMITTED, T.CANCEL): S.CANCELLED,
        (S.TRIGGER_PENDING, T.TRIGGER): S.OPEN,
        (S.TRIGGER_PENDING, T.MODIFY): S.TRIGGER_PENDING,
        (S.TRIGGER_PENDING, T.CANCEL): S.CANCELLED,
        (S.OPEN, T.PARTIAL_FILL): S.PARTIALLY_FILLED,
        (S.OPEN, T.FILL): S.FILLED,
        (S.OPEN, T.MODIFY): S.OPEN,
        (S.OPEN, T.CANCEL): S.CANCELLED,
        (S.PARTIALLY_FILLED, T.PARTIAL_FILL): S.PARTIALLY_FILLED,
        (S.PARTIALLY_FILLED, T.FILL): S.FILLED,
        (S.PARTIALLY_FILLED, T.MODIFY): S.PARTIALLY_FILLED,
        (S.PARTIALLY_FILLED, T.CANCEL): S.CANCELLED,
    }
    return MappingProxyType(rows)


#: The order status machine: ``(status, trigger) -> new status``. Absent rows are illegal.
TRANSITIONS: Mapping[tuple[OrderStatus, StatusTrigger], OrderStatus] = _table()


def can_transition(status: OrderStatus, trigger: StatusTrigger) -> bool:
    """True if the table has a row for ``(status, trigger)``."""
    return (status, trigger) in TRANSITIONS


def next_status(
    status: OrderStatus, trigger: StatusTrigger, *, client_order_id: str | None = None
) -> OrderStatus:
    """The status after ``trigger`` happens to an order in ``status``.

    Raises
    ------
    InvalidTransitionError
        if the table has no such row (e.g. a fill of a cancelled order); ``client_order_id``
        is put in the error for the log line.
    """
    try:
        return TRANSITIONS[(status, trigger)]
    except KeyError:
        raise InvalidTransitionError(status, trigger, client_order_id) from None


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderRequest:
    """An order as the OMS sends it to a venue (Angel One ``placeOrder`` fields).

    Parameters
    ----------
    client_order_id
        Our id for the order, sent as Angel One's ``ordertag``: 1 to 20 characters of
        ``A-Z a-z 0-9 _ -``. Unique per order: a restart reconciles through it.
    instrument_token
        The instrument's exchange token.
    side
        Buy or sell.
    order_type
        MARKET, LIMIT, STOPLOSS_LIMIT or STOPLOSS_MARKET.
    qty
        Quantity in units (not lots), positive.
    price_paise
        Limit price in paise: required for LIMIT and STOPLOSS_LIMIT, absent otherwise.
    trigger_price_paise
        Trigger price in paise: required for the stop-loss types, absent otherwise.
    tif
        DAY (default) or IOC.
    strategy_id
        The strategy that owns the order.

    Raises
    ------
    ValidationError
        naming the field, for a wrong type or a price that the order type does not allow.
        Exchange rules (lot size, tick, freeze quantity, price band, the relation between limit
        and trigger prices) are the venue's: it answers them with a rejection event.
    """

    client_order_id: str
    instrument_token: str
    side: Side
    order_type: OrderType
    qty: int
    price_paise: int | None = None
    trigger_price_paise: int | None = None
    tif: TimeInForce = TimeInForce.DAY
    strategy_id: str

    def __post_init__(self) -> None:
        check_str("client_order_id", self.client_order_id, max_len=CLIENT_ORDER_ID_MAX_LEN)
        if not _CLIENT_ORDER_ID.fullmatch(self.client_order_id):
            raise ValidationError(
                "client_order_id", self.client_order_id, "only A-Z, a-z, 0-9, '_' and '-'"
            )
        check_str("instrument_token", self.instrument_token)
        check_enum("side", self.side, Side)
        order_type = check_enum("order_type", self.order_type, OrderType)
        check_int("qty", self.qty, minimum=1)
        price = check_optional_int("price_paise", self.price_paise, minimum=1)
        trigger = check_optional_int("trigger_price_paise", self.trigger_price_paise, minimum=1)
        check_enum("tif", self.tif, TimeInForce)
        check_str("strategy_id", self.strategy_id)
        if order_type.has_limit_price and price is None:
            raise ValidationError("price_paise", price, f"a {order_type} order needs a price")
        if not order_type.has_limit_price and price is not None:
            raise ValidationError("price_paise", price, f"a {order_type} order takes no price")
        if order_type.is_stop and trigger is None:
            raise ValidationError(
                "trigger_price_paise", trigger, f"a {order_type} order needs a trigger price"
            )
        if not order_type.is_stop and trigger is not None:
            raise ValidationError(
                "trigger_price_paise", trigger, f"a {order_type} order takes no trigger price"
            )


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderStatusReport:
    """A venue's view of one order at a moment (its order book row), for reconciliation.

    ``qty`` is the order's total quantity (after any modification), ``filled_qty`` what has
    traded; prices in paise; ``ts_ns`` the venue time of the last change (UTC epoch ns).
    """

    client_order_id: str
    venue_order_id: str
    instrument_token: str
    side: Side
    order_type: OrderType
    tif: TimeInForce
    qty: int
    filled_qty: int
    price_paise: int | None
    trigger_price_paise: int | None
    status: OrderStatus
    ts_ns: int

    @property
    def remaining_qty(self) -> int:
        """Units still to fill."""
        return self.qty - self.filled_qty
