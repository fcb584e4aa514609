"""Pure-Python reference implementation (test oracle and benchmark baseline) of the order book.

Implements the same API as :mod:`algoengine.orderbook` (contract: ``OrderBook``, ``L2Book``,
``Fill``, ``BatchResult``, ``OrderBookError``, ``OP_DTYPE`` and the ``OP_*`` / ``ERR_*``
constants) with plain dicts, deques and ``bisect`` on sorted lists of integer tick prices.
Everything is written for clarity, not speed.

Model
-----
* Prices are integer ticks inside. A float price is converted with ``round(price / tick_size)``
  and rejected (``ERR_BAD_PRICE``) when it is not within 1e-9 ticks of the grid, not finite,
  or ``<= 0``. Ticks are converted back to floats as ``ticks / round(1 / tick_size)`` when
  ``1 / tick_size`` is an integer (the nearest double of the decimal price: 2002 ticks of 0.05
  -> 100.1, not 100.10000000000001), else ``ticks * tick_size``.
* Each side is a dict ``ticks -> _Level`` (a FIFO deque of resting orders plus the level's
  total qty) and an ascending sorted list of the non-empty tick prices: the best bid is the
  last element of the bid list, the best ask the first element of the ask list.
* An incoming (taker) order matches against the opposite side best price first, FIFO within a
  level, at the maker's price, while its limit allows (a market order has no limit). The
  remainder of a GTC/DAY limit order rests at the tail of its level; the remainder of an IOC or
  market order is cancelled. A market order that finds the opposite side empty is rejected
  (``ERR_NO_LIQUIDITY``) and changes nothing.
* ``modify(id, qty, price)``: ``qty`` is the new remaining quantity. Same price and a smaller
  qty keeps queue priority; a larger qty or any price change moves the order to the tail of
  its (new) level, and a new price that crosses matches like a new limit order with the same
  id (any remainder rests). Same price and same qty is a no-op.
* Every check runs before anything changes, so the book is unchanged after any error.
  Check order (the contract does not define it; it only shows when one request has several
  faults): the same as the compiled book. ``add``: side, tif (for market orders too, as the
  contract says), price (off grid or <= 0), qty,
  duplicate id, then liquidity for a market order; ``modify``: unknown id, price, qty. In
  ``apply`` (price already in ticks): add — side, qty, price <= 0, duplicate id, liquidity;
  modify — unknown id, qty, price < 0.
* Sides "buy"/"sell"/"BUY"/"SELL" (and "Buy"/"Sell"), tifs "GTC"/"DAY"/"IOC" (and lower case):
  the contract's spellings plus the extra ones the compiled book takes.
* No limits beyond the contract: quantities are Python ints (totals never overflow) and any
  positive on-grid price is accepted (the compiled book refuses a price that would make one
  side span more than 2**22 ticks).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "ERR_BAD_OP",
    "ERR_BAD_PRICE",
    "ERR_BAD_QTY",
    "ERR_BAD_SIDE",
    "ERR_DUPLICATE_ID",
    "ERR_NO_LIQUIDITY",
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

OK = 0
ERR_DUPLICATE_ID = -1
ERR_UNKNOWN_ID = -2
ERR_BAD_QTY = -3
ERR_BAD_PRICE = -4
ERR_BAD_SIDE = -5
ERR_NO_LIQUIDITY = -6
ERR_BAD_OP = -7

OP_ADD = 0
OP_ADD_IOC = 1
OP_MARKET = 2
OP_CANCEL = 3
OP_MODIFY = 4

# align=True like the compiled module (the C struct layout); apply() also takes the packed
# layout of the same fields (converted by field name).
OP_DTYPE = np.dtype(
    [("op", "u1"), ("side", "i1"), ("id", "i8"), ("price", "i8"), ("qty", "i8")], align=True
)

BUY = 1
SELL = -1
# the contract's spellings plus the ones the compiled book also takes
_SIDE_NAMES = {"buy": BUY, "BUY": BUY, "Buy": BUY, "sell": SELL, "SELL": SELL, "Sell": SELL}
_TIFS = {"GTC": False, "DAY": False, "IOC": True, "gtc": False, "day": False, "ioc": True}
_GRID_TOL = 1e-9  # ticks


class OrderBookError(ValueError):
    """A rejected request; ``code`` is one of the negative ``ERR_*`` constants."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution: ``taker_id`` traded ``qty`` with resting ``maker_id`` at the maker's price."""

    taker_id: int
    maker_id: int
    price: float
    qty: int
    price_ticks: int

    def __iter__(self) -> Iterator[Any]:
        return iter((self.taker_id, self.maker_id, self.price, self.qty))


@dataclass(frozen=True)
class BatchResult:
    """Result of :meth:`OrderBook.apply`: one code per op and one row per fill."""

    codes: np.ndarray  # int8
    fill_op: np.ndarray  # int64
    taker_id: np.ndarray  # int64
    maker_id: np.ndarray  # int64
    price_ticks: np.ndarray  # int64
    qty: np.ndarray  # int64


# ---------------------------------------------------------------------------------------------
# helpers shared by OrderBook and L2Book


def _to_ticks(price: Any, tick_size: float) -> int:
    """Float price -> integer ticks, or OrderBookError(ERR_BAD_PRICE)."""
    try:
        p = float(price)
    except (TypeError, ValueError):
        raise OrderBookError(ERR_BAD_PRICE, f"price must be a number, got {price!r}") from None
    if not math.isfinite(p) or p <= 0.0:
        raise OrderBookError(ERR_BAD_PRICE, f"price must be finite and > 0, got {price!r}")
    x = p / tick_size
    ticks = round(x)
    if abs(x - ticks) > _GRID_TOL or ticks <= 0:
        raise OrderBookError(
            ERR_BAD_PRICE, f"price {price!r} is not on the tick grid (tick_size={tick_size})"
        )
    return int(ticks)


def _parse_side(side: Any) -> int:
    s = _SIDE_NAMES.get(side) if isinstance(side, str) else None
    if s is None:
        raise OrderBookError(ERR_BAD_SIDE, f"side must be 'buy' or 'sell', got {side!r}")
    return s


def _parse_tif(tif: Any) -> bool:
    ioc = _TIFS.get(tif) if isinstance(tif, str) else None
    if ioc is None:
        raise OrderBookError(ERR_BAD_SIDE, f"tif must be 'GTC', 'DAY' or 'IOC', got {tif!r}")
    return ioc


def _check_tick_size(tick_size: Any) -> float:
    t = float(tick_size)
    if not math.isfinite(t) or t <= 0.0:
        raise ValueError(f"tick_size must be finite and > 0, got {tick_size!r}")
    return t


def _check_qty(qty: Any, name: str = "qty") -> int:
    q = int(qty)
    if q <= 0:
        raise OrderBookError(ERR_BAD_QTY, f"{name} must be > 0, got {qty!r}")
    return q


def _empty_depth() -> tuple[np.ndarray, np.ndarray]:
    return np.empty(0, dtype=np.float64), np.empty(0, dtype=np.int64)


class _Queries:
    """Queries common to OrderBook and L2Book, written against two primitives:
    ``_side_levels(side, n)`` -> [(ticks, total qty), ...] best first, and ``_nlevels(side)``."""

    _tick: float
    _per: float  # ticks per price unit when 1/tick_size is an integer, else 0

    def _set_tick(self, tick_size: Any) -> None:
        self._tick = _check_tick_size(tick_size)
        n = round(1.0 / self._tick)
        self._per = float(n) if n >= 1 and abs(1.0 / self._tick - n) <= 1e-9 * n else 0.0

    def _px(self, ticks: Any) -> Any:
        """Integer ticks (int or int64 array) -> float price(s)."""
        return ticks / self._per if self._per else ticks * self._tick

    @property
    def tick_size(self) -> float:
        return self._tick

    def _side_levels(self, side: int, n: int | None) -> list[tuple[int, int]]:
        raise NotImplementedError

    def _nlevels(self, side: int) -> int:
        raise NotImplementedError

    def _best(self, side: int) -> tuple[float, int] | None:
        lv = self._side_levels(side, 1)
        if not lv:
            return None
        ticks, qty = lv[0]
        return self._px(ticks), qty

    def best_bid(self) -> tuple[float, int] | None:
        return self._best(BUY)

    def best_ask(self) -> tuple[float, int] | None:
        return self._best(SELL)

    def spread(self) -> float | None:
        b, a = self._side_levels(BUY, 1), self._side_levels(SELL, 1)
        if not b or not a:
            return None
        return self._px(a[0][0] - b[0][0])

    def mid(self) -> float | None:
        b, a = self._side_levels(BUY, 1), self._side_levels(SELL, 1)
        if not b or not a:
            return None
        return self._px(a[0][0] + b[0][0]) / 2.0

    def depth(self, n: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        n = int(n)
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        out: list[np.ndarray] = []
        for side in (BUY, SELL):
            lv = self._side_levels(side, n) if n > 0 else []
            if not lv:
                out.extend(_empty_depth())
                continue
            out.append(self._px(np.array([t for t, _ in lv], dtype=np.int64)))
            out.append(np.array([q for _, q in lv], dtype=np.int64))
        return out[0], out[1], out[2], out[3]

    def levels(self, side: str) -> int:
        return self._nlevels(_parse_side(side))

    def avg_fill_price(self, side: str, qty: int) -> float | None:
        """Average price for a taker of ``qty`` on ``side`` ("buy" consumes asks), or None."""
        s = _parse_side(side)
        want = _check_qty(qty)
        left, notional = want, 0
        for ticks, lvl_qty in self._side_levels(-s, None):
            q = min(left, lvl_qty)
            notional += ticks * q
            left -= q
            if left == 0:
                return self._px(notional) / want
        return None


# ---------------------------------------------------------------------------------------------
# L3 book


class _Order:
    __slots__ = ("id", "qty", "side", "ticks")

    def __init__(self, order_id: int, side: int, ticks: int, qty: int) -> None:
        self.id = order_id
        self.side = side
        self.ticks = ticks
        self.qty = qty


class _Level:
    __slots__ = ("orders", "qty")

    def __init__(self) -> None:
        self.orders: deque[_Order] = deque()
        self.qty = 0


class OrderBook(_Queries):
    """Price-time-priority limit order book for one instrument (reference implementation)."""

    def __init__(self, tick_size: float = 0.05) -> None:
        self._set_tick(tick_size)
        self._orders: dict[int, _Order] = {}
        # side -> {ticks: _Level}; side -> ascending list of the non-empty ticks
        self._levels: dict[int, dict[int, _Level]] = {BUY: {}, SELL: {}}
        self._prices: dict[int, list[int]] = {BUY: [], SELL: []}

    # -- internals on integer ticks --------------------------------------------------------

    def _best_ticks(self, side: int) -> int | None:
        prices = self._prices[side]
        if not prices:
            return None
        return prices[-1] if side == BUY else prices[0]

    def _rest(self, order: _Order) -> None:
        """Append an order at the tail of its level."""
        levels = self._levels[order.side]
        level = levels.get(order.ticks)
        if level is None:
            level = levels[order.ticks] = _Level()
            bisect.insort(self._prices[order.side], order.ticks)
        level.orders.append(order)
        level.qty += order.qty
        self._orders[order.id] = order

    def _unrest(self, order: _Order) -> None:
        """Remove a resting order from the book."""
        levels = self._levels[order.side]
        level = levels[order.ticks]
        level.orders.remove(order)
        level.qty -= order.qty
        if not level.orders:
            self._drop_level(order.side, order.ticks)
        del self._orders[order.id]

    def _drop_level(self, side: int, ticks: int) -> None:
        del self._levels[side][ticks]
        prices = self._prices[side]
        del prices[bisect.bisect_left(prices, ticks)]

    def _match(
        self, taker_id: int, side: int, qty: int, limit: int | None
    ) -> tuple[list[Fill], int]:
        """Match a taker against the opposite side; returns (fills, unfilled qty)."""
        fills: list[Fill] = []
        opp = -side
        while qty > 0:
            best = self._best_ticks(opp)
            if best is None:
                break
            if limit is not None and (best > limit if side == BUY else best < limit):
                break
            level = self._levels[opp][best]
            while qty > 0 and level.orders:
                maker = level.orders[0]
                q = min(qty, maker.qty)
                fills.append(Fill(taker_id, maker.id, self._px(best), q, best))
                qty -= q
                maker.qty -= q
                level.qty -= q
                if maker.qty == 0:
                    level.orders.popleft()
                    del self._orders[maker.id]
            if not level.orders:
                self._drop_level(opp, best)
        return fills, qty

    def _add(self, order_id: int, side: int, qty: int, ticks: int | None, ioc: bool) -> list[Fill]:
        """ticks=None is a market order. Side must already be valid."""
        if qty <= 0:
            raise OrderBookError(ERR_BAD_QTY, f"qty must be > 0, got {qty}")
        if ticks is not None and ticks <= 0:
            raise OrderBookError(ERR_BAD_PRICE, f"price must be > 0 ticks, got {ticks}")
        if order_id in self._orders:
            raise OrderBookError(ERR_DUPLICATE_ID, f"order_id {order_id} is already resting")
        if ticks is None and not self._prices[-side]:
            raise OrderBookError(ERR_NO_LIQUIDITY, "market order: no liquidity on the other side")
        fills, left = self._match(order_id, side, qty, ticks)
        if left > 0 and ticks is not None and not ioc:
            self._rest(_Order(order_id, side, ticks, left))
        return fills

    def _cancel(self, order_id: int) -> int:
        order = self._orders.get(order_id)
        if order is None:
            raise OrderBookError(ERR_UNKNOWN_ID, f"order_id {order_id} is not resting")
        self._unrest(order)
        return order.qty

    def _modify(self, order_id: int, qty: int | None, ticks: int | None) -> list[Fill]:
        """qty=None keeps the qty, ticks=None keeps the price."""
        order = self._orders.get(order_id)
        if order is None:
            raise OrderBookError(ERR_UNKNOWN_ID, f"order_id {order_id} is not resting")
        if qty is not None and qty <= 0:
            raise OrderBookError(ERR_BAD_QTY, f"qty must be > 0, got {qty}")
        if ticks is not None and ticks <= 0:
            raise OrderBookError(ERR_BAD_PRICE, f"price must be > 0 ticks, got {ticks}")
        new_qty = order.qty if qty is None else qty
        new_ticks = order.ticks if ticks is None else ticks
        if new_ticks == order.ticks:
            if new_qty < order.qty:  # keeps its place in the queue
                self._levels[order.side][order.ticks].qty -= order.qty - new_qty
                order.qty = new_qty
            elif new_qty > order.qty:  # to the tail of the same level
                self._unrest(order)
                order.qty = new_qty
                self._rest(order)
            return []
        # price change: leave the book, then enter again like a new limit order (same id)
        self._unrest(order)
        fills, left = self._match(order_id, order.side, new_qty, new_ticks)
        if left > 0:
            self._rest(_Order(order_id, order.side, new_ticks, left))
        return fills

    # -- public face -------------------------------------------------------------------------

    def add(
        self, order_id: int, side: str, qty: int, price: float | None = None, tif: str = "GTC"
    ) -> list[Fill]:
        s = _parse_side(side)
        ioc = _parse_tif(tif)
        ticks = None if price is None else _to_ticks(price, self._tick)
        return self._add(int(order_id), s, int(qty), ticks, ioc)

    def cancel(self, order_id: int) -> int:
        return self._cancel(int(order_id))

    def modify(
        self, order_id: int, qty: int | None = None, price: float | None = None
    ) -> list[Fill]:
        order_id = int(order_id)
        if order_id not in self._orders:
            raise OrderBookError(ERR_UNKNOWN_ID, f"order_id {order_id} is not resting")
        ticks = None if price is None else _to_ticks(price, self._tick)
        return self._modify(order_id, None if qty is None else int(qty), ticks)

    def queue_ahead(self, order_id: int) -> int:
        order = self._orders.get(int(order_id))
        if order is None:
            raise OrderBookError(ERR_UNKNOWN_ID, f"order_id {order_id} is not resting")
        ahead = 0
        for o in self._levels[order.side][order.ticks].orders:
            if o is order:
                return ahead
            ahead += o.qty
        raise AssertionError("resting order missing from its level")  # pragma: no cover

    def get(self, order_id: int) -> tuple[str, float, int] | None:
        order = self._orders.get(int(order_id))
        if order is None:
            return None
        return ("buy" if order.side == BUY else "sell"), self._px(order.ticks), order.qty

    def __len__(self) -> int:
        return len(self._orders)

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._orders

    def resting_qty(self, side: str) -> int:
        return sum(lv.qty for lv in self._levels[_parse_side(side)].values())

    def _side_levels(self, side: int, n: int | None) -> list[tuple[int, int]]:
        prices = self._prices[side]
        ordered = reversed(prices) if side == BUY else iter(prices)
        levels = self._levels[side]
        out = []
        for ticks in ordered:
            if n is not None and len(out) >= n:
                break
            out.append((ticks, levels[ticks].qty))
        return out

    def _nlevels(self, side: int) -> int:
        return len(self._prices[side])

    # -- batch ---------------------------------------------------------------------------------

    def apply(self, ops: np.ndarray) -> BatchResult:
        """Run a structured array of OP_DTYPE ops; never raises for a bad op (result codes)."""
        ops = np.asarray(ops)
        if ops.dtype != OP_DTYPE:
            try:
                ops = ops.astype(OP_DTYPE)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"ops: expected an array of OP_DTYPE records: {exc}") from None
        if ops.ndim != 1:
            raise ValueError("ops: expected a 1-d array of OP_DTYPE records")
        codes = np.zeros(len(ops), dtype=np.int8)
        f_op: list[int] = []
        f_taker: list[int] = []
        f_maker: list[int] = []
        f_px: list[int] = []
        f_qty: list[int] = []
        for i, (op, side, oid, price, qty) in enumerate(ops.tolist()):
            fills: list[Fill] = []
            try:
                if op in (OP_ADD, OP_ADD_IOC, OP_MARKET):
                    if side not in (BUY, SELL):
                        raise OrderBookError(ERR_BAD_SIDE, f"side must be +1 or -1, got {side}")
                    ticks = None if op == OP_MARKET else price
                    fills = self._add(oid, side, qty, ticks, op == OP_ADD_IOC)
                elif op == OP_CANCEL:
                    self._cancel(oid)
                elif op == OP_MODIFY:
                    # price 0 keeps the price; a negative price is rejected by _modify
                    fills = self._modify(oid, qty, price if price != 0 else None)
                else:
                    raise OrderBookError(ERR_BAD_OP, f"unknown op code {op}")
            except OrderBookError as exc:
                codes[i] = exc.code
                continue
            for f in fills:
                f_op.append(i)
                f_taker.append(f.taker_id)
                f_maker.append(f.maker_id)
                f_px.append(f.price_ticks)
                f_qty.append(f.qty)
        i64 = np.int64
        return BatchResult(
            codes,
            np.array(f_op, dtype=i64),
            np.array(f_taker, dtype=i64),
            np.array(f_maker, dtype=i64),
            np.array(f_px, dtype=i64),
            np.array(f_qty, dtype=i64),
        )


# ---------------------------------------------------------------------------------------------
# L2 book


class L2Book(_Queries):
    """Aggregated depth (price level -> total qty) maintained from a feed (reference)."""

    def __init__(self, tick_size: float = 0.05) -> None:
        self._set_tick(tick_size)
        self._book: dict[int, dict[int, int]] = {BUY: {}, SELL: {}}

    def apply_snapshot(self, bid_px: Any, bid_qty: Any, ask_px: Any, ask_qty: Any) -> None:
        new: dict[int, dict[int, int]] = {BUY: {}, SELL: {}}
        for side, px, qty in ((BUY, bid_px, bid_qty), (SELL, ask_px, ask_qty)):
            px_l = np.asarray(px, dtype=np.float64).reshape(-1).tolist()
            qty_l = np.asarray(qty).reshape(-1).tolist()
            if len(px_l) != len(qty_l):
                raise OrderBookError(
                    ERR_BAD_QTY,
                    f"price and qty arrays differ in length ({len(px_l)} != {len(qty_l)})",
                )
            for p, q in zip(px_l, qty_l, strict=True):
                q = int(q)
                if q < 0:
                    raise OrderBookError(ERR_BAD_QTY, f"qty must be >= 0, got {q}")
                t = _to_ticks(p, self._tick)
                if q > 0:
                    new[side][t] = q
        self._book = new

    def update(self, side: str, price: float, qty: int) -> None:
        s = _parse_side(side)
        t = _to_ticks(price, self._tick)
        q = int(qty)
        if q < 0:
            raise OrderBookError(ERR_BAD_QTY, f"qty must be >= 0, got {qty!r}")
        if q == 0:
            self._book[s].pop(t, None)
        else:
            self._book[s][t] = q

    def clear(self) -> None:
        self._book = {BUY: {}, SELL: {}}

    def _side_levels(self, side: int, n: int | None) -> list[tuple[int, int]]:
        book = self._book[side]
        ordered = sorted(book, reverse=(side == BUY))
        if n is not None:
            ordered = ordered[:n]
        return [(t, book[t]) for t in ordered]

    def _nlevels(self, side: int) -> int:
        return len(self._book[side])
