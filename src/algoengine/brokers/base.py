"""The Broker protocol: what the engine asks of a venue (paper exchange or Angel One).

Requests go in with the caller's clock time ``ts_ns`` (UTC epoch ns); a venue answers only with
order events (:mod:`algoengine.domain.events`), which the caller drains. A venue never raises
for an order it refuses (that is an ``OrderRejected``, ``OrderCancelRejected`` or
``OrderModifyRejected`` event); it raises :class:`~algoengine.errors.ValidationError` for a
malformed call and :class:`~algoengine.errors.BrokerError` when it cannot reach the broker.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from algoengine.domain.events import OrderEvent
from algoengine.domain.orders import OrderRequest, OrderStatusReport

__all__ = ["Broker"]


@runtime_checkable
class Broker(Protocol):
    """A venue that works our orders."""

    def submit(self, request: OrderRequest, ts_ns: int) -> None:
        """Send a new order. The outcome arrives as events."""
        ...

    def cancel(self, client_order_id: str, ts_ns: int) -> None:
        """Ask the venue to cancel a working order."""
        ...

    def modify(
        self,
        client_order_id: str,
        ts_ns: int,
        *,
        qty: int | None = None,
        price_paise: int | None = None,
        trigger_price_paise: int | None = None,
    ) -> None:
        """Ask the venue to change a working order. ``qty`` is the new total quantity (units);
        ``None`` keeps a field as it is."""
        ...

    def open_orders(self) -> list[OrderStatusReport]:
        """The venue's working orders now (for reconciliation), oldest first."""
        ...

    def drain_events(self) -> list[OrderEvent]:
        """The order events delivered since the last call, in order."""
        ...
