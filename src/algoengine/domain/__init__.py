"""Value objects of trading: instruments, orders and their status machine, order events.

No I/O, and no import of the rest of the project (STYLE.md item 1). Money and prices are
integer paise, quantities integer units, times integer UTC epoch nanoseconds.
"""

from algoengine.domain.errors import AlgoEngineError, InvalidTransitionError, ValidationError
from algoengine.domain.events import (
    CancelReason,
    OrderAccepted,
    OrderCancelled,
    OrderCancelRejected,
    OrderDenied,
    OrderEvent,
    OrderFilled,
    OrderFillEvent,
    OrderModified,
    OrderModifyRejected,
    OrderPartiallyFilled,
    OrderRejected,
    OrderTriggered,
    RejectCode,
)
from algoengine.domain.instruments import Instrument, InstrumentKind, OptionType
from algoengine.domain.orders import (
    CLIENT_ORDER_ID_MAX_LEN,
    TRANSITIONS,
    OrderRequest,
    OrderStatus,
    OrderStatusReport,
    OrderType,
    Side,
    StatusTrigger,
    TimeInForce,
    can_transition,
    next_status,
)

__all__ = [
    "CLIENT_ORDER_ID_MAX_LEN",
    "TRANSITIONS",
    "AlgoEngineError",
    "CancelReason",
    "Instrument",
    "InstrumentKind",
    "InvalidTransitionError",
    "OptionType",
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
    "OrderRequest",
    "OrderStatus",
    "OrderStatusReport",
    "OrderTriggered",
    "OrderType",
    "RejectCode",
    "Side",
    "StatusTrigger",
    "TimeInForce",
    "ValidationError",
    "can_transition",
    "next_status",
]
