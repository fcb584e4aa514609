"""Limit order books: the compiled L3 matching book and the L2 depth book.

The public face of :mod:`algoengine._ext.orderbook`.

- :class:`OrderBook` is an order-level (L3) book of one instrument with price-time priority:
  a marketable order fills against resting orders at the resting price, best price first,
  FIFO within a level, with partial fills; IOC remainders are cancelled; a market order that
  finds nothing to hit is rejected, never left resting. ``modify`` keeps queue priority for a
  quantity decrease at the same price; a price change or quantity increase loses it. The
  simulated exchange (:mod:`algoengine.brokers.paper`) is built on it.
- :class:`L2Book` holds aggregated depth (price level -> quantity) from a feed's snapshots and
  level updates, and answers the same queries.

Prices are integer ticks inside; the methods take and return float prices and convert with the
book's ``tick_size`` (0.05 for NSE options), refusing a price off the grid. Quantities are
integer units (not lots).

Errors: a refused operation raises :class:`OrderBookError` (a ``ValueError``) whose ``code`` is
one of the ``ERR_*`` constants and whose message names the field; the book is unchanged.

Batch: :meth:`OrderBook.apply` takes a numpy array of :data:`OP_DTYPE` records (``op``, ``side``
+1/-1, ``id``, ``price`` in ticks, ``qty``), applies all of them without the GIL, and returns a
:class:`BatchResult` with a result code per op and the fills as arrays. Replays and backtests
use it; a bad op gets a code instead of an exception.
"""

from __future__ import annotations

from algoengine._ext import load as _load

_k = _load("orderbook")

OrderBook = _k.OrderBook
L2Book = _k.L2Book
Fill = _k.Fill
BatchResult = _k.BatchResult
OrderBookError = _k.OrderBookError
OP_DTYPE = _k.OP_DTYPE
OP_ADD: int = _k.OP_ADD
OP_ADD_IOC: int = _k.OP_ADD_IOC
OP_MARKET: int = _k.OP_MARKET
OP_CANCEL: int = _k.OP_CANCEL
OP_MODIFY: int = _k.OP_MODIFY
OK: int = _k.OK
ERR_DUPLICATE_ID: int = _k.ERR_DUPLICATE_ID
ERR_UNKNOWN_ID: int = _k.ERR_UNKNOWN_ID
ERR_BAD_QTY: int = _k.ERR_BAD_QTY
ERR_BAD_PRICE: int = _k.ERR_BAD_PRICE
ERR_BAD_SIDE: int = _k.ERR_BAD_SIDE
ERR_NO_LIQUIDITY: int = _k.ERR_NO_LIQUIDITY
ERR_BAD_OP: int = _k.ERR_BAD_OP
ERR_NO_MEMORY: int = _k.ERR_NO_MEMORY

__all__ = [
    "ERR_BAD_OP",
    "ERR_BAD_PRICE",
    "ERR_BAD_QTY",
    "ERR_BAD_SIDE",
    "ERR_DUPLICATE_ID",
    "ERR_NO_LIQUIDITY",
    "ERR_NO_MEMORY",
    "ERR_UNKNOWN_ID",
    "OK",
    "OP_ADD",
    "OP_ADD_IOC",
    "OP_CANCEL",
    "OP_DTYPE",
    "OP_MARKET",
    "OP_MODIFY",
    "BatchResult",
    "Fill",
    "L2Book",
    "OrderBook",
    "OrderBookError",
]
