"""Tests for ``algoengine.orderbook`` (compiled L3 price-time-priority book and L2 book).

Layout
------
1. Example-based tests of every operation, run against BOTH the pure-Python oracle
   (``tests/reference/orderbook.py``) and the compiled book (fixture ``M``: the module under
   test), so the oracle is checked by the same examples.
2. Batch ``apply`` == the same ops through the per-call methods (fills, codes, final book).
3. ``L2Book``: snapshot + updates vs the dict-based oracle, avg_fill_price, bad input.
4. Large random streams through ``apply``, compiled vs oracle: 200k ops on a narrow price
   range (deep queues), 100k ops with a drifting price and far-away orders (a wide book).
5. Contract edges: the 1e-9-tick grid tolerance, level totals beyond int64.
Random op streams with hypothesis (state machine style, invariants after every op) live in
``test_orderbook_properties.py``; the helpers they share are defined here.

Prices in the examples use tick_size 0.05 unless said otherwise; the book holds integer ticks,
so fills and depth are compared on ticks and float prices with a 1e-12 relative tolerance.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.reference import orderbook as ref

try:  # the compiled module may not be built yet: every test using it then fails (not skips)
    from algoengine import orderbook as _ob_mod

    _IMPORT_ERROR: Exception | None = None
except Exception as exc:  # pragma: no cover - only when the build is missing
    _ob_mod, _IMPORT_ERROR = None, exc

OK = ref.OK
ERR_DUPLICATE_ID = ref.ERR_DUPLICATE_ID
ERR_UNKNOWN_ID = ref.ERR_UNKNOWN_ID
ERR_BAD_QTY = ref.ERR_BAD_QTY
ERR_BAD_PRICE = ref.ERR_BAD_PRICE
ERR_BAD_SIDE = ref.ERR_BAD_SIDE
ERR_NO_LIQUIDITY = ref.ERR_NO_LIQUIDITY
ERR_BAD_OP = ref.ERR_BAD_OP
OP_ADD, OP_ADD_IOC, OP_MARKET, OP_CANCEL, OP_MODIFY = (
    ref.OP_ADD,
    ref.OP_ADD_IOC,
    ref.OP_MARKET,
    ref.OP_CANCEL,
    ref.OP_MODIFY,
)
CONSTANTS = {
    "OK": 0,
    "ERR_DUPLICATE_ID": -1,
    "ERR_UNKNOWN_ID": -2,
    "ERR_BAD_QTY": -3,
    "ERR_BAD_PRICE": -4,
    "ERR_BAD_SIDE": -5,
    "ERR_NO_LIQUIDITY": -6,
    "ERR_BAD_OP": -7,
    "OP_ADD": 0,
    "OP_ADD_IOC": 1,
    "OP_MARKET": 2,
    "OP_CANCEL": 3,
    "OP_MODIFY": 4,
}
CONTRACT_OP_FIELDS = [("op", "u1"), ("side", "i1"), ("id", "i8"), ("price", "i8"), ("qty", "i8")]
TICK = 0.05
RTOL = 1e-12


def compiled_module() -> Any:
    if _ob_mod is None:
        pytest.fail(f"cannot import algoengine.orderbook: {_IMPORT_ERROR!r}")
    return _ob_mod


@pytest.fixture(params=["reference", "compiled"])
def M(request: pytest.FixtureRequest) -> Any:  # noqa: N802
    """The module under test: the oracle itself or the compiled book's public face."""
    return ref if request.param == "reference" else compiled_module()


@pytest.fixture
def C() -> Any:  # noqa: N802
    """The compiled module only."""
    return compiled_module()


# ============================================================================
# helpers (also used by test_orderbook_properties.py)
# ============================================================================
def fkey(fills: Iterable[Any]) -> list[tuple[int, int, int, int]]:
    """Fills -> [(taker_id, maker_id, price_ticks, qty)] (exact integers)."""
    return [(int(f.taker_id), int(f.maker_id), int(f.price_ticks), int(f.qty)) for f in fills]


def check_fill_prices(fills: Iterable[Any], tick: float) -> None:
    for f in fills:
        assert f.price == pytest.approx(f.price_ticks * tick, rel=RTOL), f


def call(book: Any, method: str, *args: Any, **kwargs: Any) -> tuple[int, Any]:
    """(OK, result) or (error code, None); an error without ``.code`` propagates."""
    try:
        return OK, getattr(book, method)(*args, **kwargs)
    except ValueError as exc:
        if not hasattr(exc, "code"):
            raise
        return int(exc.code), None


def px_to_ticks(px: np.ndarray, tick: float) -> list[int]:
    return np.rint(np.asarray(px, dtype=np.float64) / tick).astype(np.int64).tolist()


def depth_ticks(book: Any, n: int = 1000) -> tuple[list[int], list[int], list[int], list[int]]:
    bp, bq, ap, aq = book.depth(n)
    t = book.tick_size
    return px_to_ticks(bp, t), bq.tolist(), px_to_ticks(ap, t), aq.tolist()


def best_key(best: tuple[float, int] | None, tick: float) -> tuple[int, int] | None:
    if best is None:
        return None
    p, q = best
    assert p == pytest.approx(round(p / tick) * tick, rel=RTOL)
    return round(p / tick), int(q)


def book_state(book: Any, ids: Iterable[int] = ()) -> dict[str, Any]:
    """Everything observable about a book (for 'unchanged' checks within one implementation)."""
    bp, bq, ap, aq = book.depth(1000)
    state: dict[str, Any] = {
        "len": len(book),
        "depth": (bp.tolist(), bq.tolist(), ap.tolist(), aq.tolist()),
        "best": (book.best_bid(), book.best_ask()),
        "resting": (book.resting_qty("buy"), book.resting_qty("sell")),
        "levels": (book.levels("buy"), book.levels("sell")),
    }
    for i in ids:
        state[f"get{i}"] = book.get(i)
        state[f"in{i}"] = i in book
        if i in book:
            state[f"qa{i}"] = book.queue_ahead(i)
    return state


def assert_same_book(book: Any, oracle: ref.OrderBook, *, n: int = 1000, what: str = "") -> None:
    """The book under test shows the same state as the oracle: depth(n) both sides, best
    bid/ask, len, and get/queue_ahead of every order resting in the oracle."""
    tick = oracle.tick_size
    assert depth_ticks(book, n) == depth_ticks(oracle, n), what
    assert best_key(book.best_bid(), tick) == best_key(oracle.best_bid(), tick), what
    assert best_key(book.best_ask(), tick) == best_key(oracle.best_ask(), tick), what
    assert len(book) == len(oracle), what
    for side, levels in oracle._levels.items():
        name = "buy" if side == 1 else "sell"
        for ticks, level in levels.items():
            ahead = 0  # queue_ahead of every order of the level in one pass
            for o in level.orders:
                got = book.get(o.id)
                assert got is not None, f"{what}: order {o.id} missing"
                assert (got[0], round(got[1] / tick), got[2]) == (name, ticks, o.qty), (
                    what,
                    o.id,
                    got,
                )
                assert book.queue_ahead(o.id) == ahead, (what, o.id, "queue_ahead")
                ahead += o.qty


def side_name(side: int) -> str:
    return {1: "buy", -1: "sell"}.get(int(side), f"side{int(side)}")


def run_per_call(book: Any, ops: np.ndarray) -> tuple[list[int], list[tuple[int, ...]]]:
    """Run OP_DTYPE rows through the per-call methods: (codes, [(op_index, taker, maker,
    price_ticks, qty)]). A side other than +-1 becomes an unknown side string."""
    tick = book.tick_size
    codes: list[int] = []
    fills: list[tuple[int, ...]] = []
    for i, (op, side, oid, price, qty) in enumerate(ops.tolist()):
        if op in (OP_ADD, OP_ADD_IOC):
            tif = "IOC" if op == OP_ADD_IOC else "GTC"
            code, res = call(book, "add", oid, side_name(side), qty, price * tick, tif)
        elif op == OP_MARKET:
            code, res = call(book, "add", oid, side_name(side), qty, None)
        elif op == OP_CANCEL:
            code, res = call(book, "cancel", oid)
            res = None
        elif op == OP_MODIFY:
            code, res = call(book, "modify", oid, qty, None if price == 0 else price * tick)
        else:
            code, res = ERR_BAD_OP, None
        codes.append(code)
        for f in res or ():
            fills.append((i, *fkey([f])[0]))
    return codes, fills


def batch_rows(res: Any, offset: int = 0) -> list[tuple[int, ...]]:
    return list(
        zip(
            (np.asarray(res.fill_op) + offset).tolist(),
            np.asarray(res.taker_id).tolist(),
            np.asarray(res.maker_id).tolist(),
            np.asarray(res.price_ticks).tolist(),
            np.asarray(res.qty).tolist(),
            strict=True,
        )
    )


def make_ops(M: Any, rows: Sequence[tuple[int, int, int, int, int]]) -> np.ndarray:
    return np.array([tuple(r) for r in rows], dtype=M.OP_DTYPE)


def assert_error(M: Any, code: int, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    with pytest.raises(M.OrderBookError) as ei:
        fn(*args, **kwargs)
    assert isinstance(ei.value, ValueError)
    assert ei.value.code == code, (ei.value.code, str(ei.value))
    return ei.value


def sample_book(M: Any) -> Any:
    """Bids 100.00 (ids 1:10, 2:5), 99.95 (3:7), 99.80 (4:2); asks 100.10 (5:4, 6:6),
    100.15 (7:3), 100.50 (8:9)."""
    b = M.OrderBook(TICK)
    for oid, side, qty, price in [
        (1, "buy", 10, 100.00),
        (2, "buy", 5, 100.00),
        (3, "buy", 7, 99.95),
        (4, "buy", 2, 99.80),
        (5, "sell", 4, 100.10),
        (6, "sell", 6, 100.10),
        (7, "sell", 3, 100.15),
        (8, "sell", 9, 100.50),
    ]:
        assert b.add(oid, side, qty, price) == []
    return b


SAMPLE_IDS = range(1, 12)


# ============================================================================
# 0. module surface
# ============================================================================
def test_constants_and_dtype_match_contract(M: Any) -> None:
    for name, value in CONSTANTS.items():
        assert getattr(M, name) == value, name
    dt = np.dtype(M.OP_DTYPE)
    assert [(name, dt.fields[name][0]) for name in dt.names] == [
        (name, np.dtype(f)) for name, f in CONTRACT_OP_FIELDS
    ]
    assert issubclass(M.OrderBookError, ValueError)


def test_reference_constants_match_compiled(C: Any) -> None:
    for name in CONSTANTS:
        assert getattr(ref, name) == getattr(C, name), name
    assert np.dtype(ref.OP_DTYPE) == np.dtype(C.OP_DTYPE)  # the same layout too


def test_tick_size_property(M: Any) -> None:
    assert M.OrderBook().tick_size == 0.05
    assert M.OrderBook(0.25).tick_size == 0.25
    assert M.L2Book().tick_size == 0.05
    b = M.OrderBook(0.05)
    with pytest.raises(AttributeError):
        b.tick_size = 0.1


def test_fill_object(M: Any) -> None:
    b = M.OrderBook(TICK)
    b.add(1, "sell", 5, 101.35)
    (f,) = b.add(2, "buy", 3, 101.40)
    assert (f.taker_id, f.maker_id, f.price_ticks, f.qty) == (2, 1, 2027, 3)
    assert f.price == pytest.approx(101.35, rel=RTOL)
    assert isinstance(f.taker_id, int) and isinstance(f.maker_id, int)
    assert isinstance(f.price, float) and isinstance(f.price_ticks, int)
    assert isinstance(f.qty, int)
    taker, maker, price, qty = f
    assert (taker, maker, qty) == (2, 1, 3) and price == f.price
    for attr in ("taker_id", "maker_id", "price", "price_ticks", "qty"):
        with pytest.raises(AttributeError):
            setattr(f, attr, 0)
    (g,) = b.add(3, "buy", 3, 101.40)  # another fill: the 2 left of order 1
    assert fkey([g]) == [(3, 1, 2027, 2)] and f != g
    b2 = M.OrderBook(TICK)
    b2.add(1, "sell", 5, 101.35)
    (f2,) = b2.add(2, "buy", 3, 101.40)
    assert f == f2


# ============================================================================
# 1. operations
# ============================================================================
def test_limit_order_rests(M: Any) -> None:
    b = M.OrderBook(TICK)
    assert len(b) == 0 and 1 not in b
    assert b.best_bid() is None and b.best_ask() is None
    assert b.spread() is None and b.mid() is None
    assert b.add(1, "buy", 10, 100.00) == []
    assert len(b) == 1 and 1 in b and 2 not in b
    assert b.get(1) == ("buy", pytest.approx(100.0, rel=RTOL), 10)
    assert b.best_bid() == (pytest.approx(100.0, rel=RTOL), 10)
    assert b.best_ask() is None and b.spread() is None and b.mid() is None
    assert b.add(2, "buy", 5, 100.00) == []
    assert b.add(3, "sell", 4, 100.25, tif="DAY") == []
    assert b.best_bid() == (pytest.approx(100.0, rel=RTOL), 15)
    assert b.best_ask() == (pytest.approx(100.25, rel=RTOL), 4)
    assert b.get(3) == ("sell", pytest.approx(100.25, rel=RTOL), 4)
    assert b.queue_ahead(1) == 0 and b.queue_ahead(2) == 10 and b.queue_ahead(3) == 0
    assert b.resting_qty("buy") == 15 and b.resting_qty("sell") == 4
    assert b.levels("buy") == 1 and b.levels("sell") == 1


def test_upper_case_sides(M: Any) -> None:
    b = M.OrderBook(TICK)
    b.add(1, "BUY", 3, 99.0)
    b.add(2, "SELL", 4, 101.0)
    assert b.get(1)[0] == "buy" and b.get(2)[0] == "sell"
    assert b.resting_qty("BUY") == 3 and b.levels("SELL") == 1


def test_crossing_limit_partial_fills_across_levels_at_maker_prices(M: Any) -> None:
    b = sample_book(M)
    # buy 12 @ 100.15: all of 5 (4 @ 100.10) and 6 (6 @ 100.10), then 2 of 7 (3 @ 100.15)
    fills = b.add(20, "buy", 12, 100.15)
    assert fkey(fills) == [(20, 5, 2002, 4), (20, 6, 2002, 6), (20, 7, 2003, 2)]
    check_fill_prices(fills, TICK)
    assert [f.price for f in fills] == pytest.approx([100.10, 100.10, 100.15], rel=RTOL)
    assert 20 not in b and 5 not in b and 6 not in b
    assert b.get(7) == ("sell", pytest.approx(100.15, rel=RTOL), 1)
    assert b.best_ask() == (pytest.approx(100.15, rel=RTOL), 1)
    # remainder rests at its limit, not at the last fill price
    fills = b.add(21, "buy", 6, 100.20)
    assert fkey(fills) == [(21, 7, 2003, 1)]
    assert b.get(21) == ("buy", pytest.approx(100.20, rel=RTOL), 5)
    assert b.best_bid() == (pytest.approx(100.20, rel=RTOL), 5)
    assert b.best_ask() == (pytest.approx(100.50, rel=RTOL), 9)
    assert b.spread() == pytest.approx(0.30, rel=1e-9)


def test_sell_limit_fills_best_bids_first(M: Any) -> None:
    b = sample_book(M)
    fills = b.add(30, "sell", 20, 99.95)
    assert fkey(fills) == [(30, 1, 2000, 10), (30, 2, 2000, 5), (30, 3, 1999, 5)]
    assert b.get(3) == ("buy", pytest.approx(99.95, rel=RTOL), 2)
    assert 30 not in b  # fully filled
    fills = b.add(31, "sell", 5, 99.95)  # only 2 left at 99.95; 99.80 is beyond the limit
    assert fkey(fills) == [(31, 3, 1999, 2)]
    assert b.get(31) == ("sell", pytest.approx(99.95, rel=RTOL), 3)
    assert b.best_bid() == (pytest.approx(99.80, rel=RTOL), 2)
    assert b.best_ask() == (pytest.approx(99.95, rel=RTOL), 3)


def test_limit_at_exactly_best_opposite_price_crosses(M: Any) -> None:
    b = sample_book(M)
    assert fkey(b.add(40, "buy", 1, 100.10)) == [(40, 5, 2002, 1)]
    assert fkey(b.add(41, "sell", 1, 100.00)) == [(41, 1, 2000, 1)]
    assert b.add(42, "buy", 1, 100.05) == [] and b.get(42)[2] == 1  # inside the spread: rests


def test_fifo_within_level(M: Any) -> None:
    b = M.OrderBook(TICK)
    for oid, qty in [(11, 2), (12, 3), (13, 4), (14, 1)]:
        b.add(oid, "sell", qty, 50.00)
    assert [b.queue_ahead(i) for i in (11, 12, 13, 14)] == [0, 2, 5, 9]
    fills = b.add(1, "buy", 6, None)
    assert fkey(fills) == [(1, 11, 1000, 2), (1, 12, 1000, 3), (1, 13, 1000, 1)]
    assert b.get(13) == ("sell", pytest.approx(50.0, rel=RTOL), 3)
    assert b.queue_ahead(13) == 0 and b.queue_ahead(14) == 3
    b.add(15, "sell", 5, 50.00)  # joins the tail
    assert b.queue_ahead(15) == 4
    assert fkey(b.add(2, "buy", 5, 50.00)) == [(2, 13, 1000, 3), (2, 14, 1000, 1), (2, 15, 1000, 1)]


def test_market_order_fills_and_remainder_is_cancelled(M: Any) -> None:
    b = sample_book(M)
    fills = b.add(50, "buy", 100, None)
    assert fkey(fills) == [
        (50, 5, 2002, 4),
        (50, 6, 2002, 6),
        (50, 7, 2003, 3),
        (50, 8, 2010, 9),
    ]
    check_fill_prices(fills, TICK)
    assert 50 not in b and b.get(50) is None
    assert b.best_ask() is None and b.levels("sell") == 0 and b.resting_qty("sell") == 0
    assert len(b) == 4  # the bids are untouched
    fills = b.add(51, "sell", 12, tif="IOC")  # market with tif given: still a market order
    assert fkey(fills) == [(51, 1, 2000, 10), (51, 2, 2000, 2)]
    assert 51 not in b and b.get(2)[2] == 3


def test_market_order_without_liquidity_is_rejected(M: Any) -> None:
    b = M.OrderBook(TICK)
    assert_error(M, ERR_NO_LIQUIDITY, b.add, 1, "buy", 5, None)
    assert len(b) == 0 and 1 not in b
    b.add(2, "buy", 5, 100.0)  # liquidity on the same side does not help a buy
    before = book_state(b, [1, 2])
    assert_error(M, ERR_NO_LIQUIDITY, b.add, 1, "buy", 5, None)
    assert book_state(b, [1, 2]) == before
    assert fkey(b.add(3, "sell", 2, None)) == [(3, 2, 2000, 2)]  # the other way fills


def test_ioc_remainder_is_cancelled(M: Any) -> None:
    b = sample_book(M)
    fills = b.add(60, "buy", 15, 100.10, tif="IOC")
    assert fkey(fills) == [(60, 5, 2002, 4), (60, 6, 2002, 6)]
    assert 60 not in b and b.best_ask() == (pytest.approx(100.15, rel=RTOL), 3)
    # IOC that does not cross: no fills, not an error, nothing rests
    before = book_state(b, SAMPLE_IDS)
    assert b.add(61, "buy", 5, 100.05, tif="IOC") == []
    assert 61 not in b and book_state(b, SAMPLE_IDS) == before
    e = M.OrderBook(TICK)
    assert e.add(1, "sell", 5, 100.0, tif="IOC") == [] and len(e) == 0


def test_day_is_gtc(M: Any) -> None:
    b = sample_book(M)
    fills = b.add(70, "buy", 12, 100.10, tif="DAY")
    assert fkey(fills) == [(70, 5, 2002, 4), (70, 6, 2002, 6)]
    assert b.get(70) == ("buy", pytest.approx(100.10, rel=RTOL), 2)


def test_cancel_returns_remaining_qty(M: Any) -> None:
    b = sample_book(M)
    b.add(80, "buy", 3, 100.10)  # takes 3 of order 5 (4)
    assert b.cancel(5) == 1
    assert 5 not in b and b.get(5) is None
    assert b.best_ask() == (pytest.approx(100.10, rel=RTOL), 6)
    assert b.cancel(2) == 5  # from the tail of a level
    assert b.best_bid() == (pytest.approx(100.0, rel=RTOL), 10)
    b.add(81, "buy", 4, 100.00)
    b.add(82, "buy", 6, 100.00)
    assert b.cancel(81) == 4  # from the middle: the order of the others is kept
    assert b.queue_ahead(1) == 0 and b.queue_ahead(82) == 10
    assert b.cancel(4) == 2  # last order of a level: the level goes
    assert b.levels("buy") == 2
    assert_error(M, ERR_UNKNOWN_ID, b.cancel, 4)
    assert_error(M, ERR_UNKNOWN_ID, b.cancel, 999)
    assert b.cancel(6) == 6 and b.best_ask() == (pytest.approx(100.15, rel=RTOL), 3)
    assert isinstance(b.cancel(7), int)


def test_id_can_be_reused_after_fill_or_cancel(M: Any) -> None:
    b = M.OrderBook(TICK)
    b.add(1, "sell", 2, 10.0)
    b.add(2, "buy", 2, 10.0)  # fills 1 completely
    assert 1 not in b and 2 not in b
    assert b.add(1, "buy", 3, 9.0) == []
    assert b.cancel(1) == 3
    assert b.add(1, "sell", 4, 11.0) == [] and b.get(1) == ("sell", pytest.approx(11.0), 4)


def test_modify_qty_down_keeps_priority(M: Any) -> None:
    b = M.OrderBook(TICK)
    b.add(1, "sell", 10, 100.00)
    b.add(2, "sell", 5, 100.00)
    b.add(3, "sell", 2, 100.00)
    assert b.queue_ahead(2) == 10
    assert b.modify(1, qty=4) == []
    assert b.get(1) == ("sell", pytest.approx(100.0, rel=RTOL), 4)
    assert b.queue_ahead(1) == 0 and b.queue_ahead(2) == 4 and b.queue_ahead(3) == 9
    assert b.best_ask() == (pytest.approx(100.0, rel=RTOL), 11)
    assert b.resting_qty("sell") == 11
    assert fkey(b.add(9, "buy", 6, None)) == [(9, 1, 2000, 4), (9, 2, 2000, 2)]


def test_modify_qty_up_loses_priority(M: Any) -> None:
    b = M.OrderBook(TICK)
    b.add(1, "buy", 10, 100.00)
    b.add(2, "buy", 5, 100.00)
    assert b.modify(1, qty=12) == []
    assert b.get(1) == ("buy", pytest.approx(100.0, rel=RTOL), 12)
    assert b.queue_ahead(2) == 0 and b.queue_ahead(1) == 5
    assert b.best_bid() == (pytest.approx(100.0, rel=RTOL), 17)
    assert fkey(b.add(9, "sell", 7, None)) == [(9, 2, 2000, 5), (9, 1, 2000, 2)]


def test_modify_price_change_loses_priority(M: Any) -> None:
    b = M.OrderBook(TICK)
    b.add(1, "sell", 3, 100.00)
    b.add(2, "sell", 4, 100.05)
    b.add(3, "sell", 5, 100.05)
    assert b.modify(1, price=100.05) == []
    assert b.get(1) == ("sell", pytest.approx(100.05, rel=RTOL), 3)
    assert b.levels("sell") == 1  # the old level is gone
    assert [b.queue_ahead(i) for i in (2, 3, 1)] == [0, 4, 9]
    # a price change away and back also goes to the tail
    assert b.modify(2, price=100.10) == [] and b.modify(2, price=100.05) == []
    assert [b.queue_ahead(i) for i in (3, 1, 2)] == [0, 5, 8]
    # price and qty together (qty down, price change: still loses priority)
    assert b.modify(3, qty=1, price=100.05) == []  # same price, qty down: keeps its place
    assert b.queue_ahead(3) == 0
    assert b.modify(3, qty=2, price=100.20) == []
    assert b.get(3) == ("sell", pytest.approx(100.20, rel=RTOL), 2)
    assert fkey(b.add(9, "buy", 20, None)) == [
        (9, 1, 2001, 3),
        (9, 2, 2001, 4),
        (9, 3, 2004, 2),
    ]


def test_modify_noop_keeps_priority(M: Any) -> None:
    b = M.OrderBook(TICK)
    b.add(1, "buy", 5, 99.00)
    b.add(2, "buy", 5, 99.00)
    assert b.modify(1, qty=5) == []
    assert b.modify(1, price=99.00) == []
    assert b.modify(1, qty=5, price=99.00) == []
    assert b.modify(1) == []
    assert b.queue_ahead(1) == 0 and b.queue_ahead(2) == 5
    assert b.get(1) == ("buy", pytest.approx(99.0, rel=RTOL), 5)


def test_modify_to_crossing_price_fills(M: Any) -> None:
    b = M.OrderBook(TICK)
    b.add(1, "buy", 10, 99.95)
    b.add(2, "sell", 4, 100.05)
    b.add(3, "sell", 3, 100.10)
    b.add(4, "sell", 8, 100.20)
    fills = b.modify(1, price=100.10)
    assert fkey(fills) == [(1, 2, 2001, 4), (1, 3, 2002, 3)]
    check_fill_prices(fills, TICK)
    assert b.get(1) == ("buy", pytest.approx(100.10, rel=RTOL), 3)  # remainder rests
    assert b.best_bid() == (pytest.approx(100.10, rel=RTOL), 3)
    assert b.best_ask() == (pytest.approx(100.20, rel=RTOL), 8)
    # with a new qty, fully filled: gone from the book
    fills = b.modify(1, qty=5, price=100.20)
    assert fkey(fills) == [(1, 4, 2004, 5)]
    assert 1 not in b and len(b) == 1 and b.get(4)[2] == 3


def test_modify_errors_leave_book_unchanged(M: Any) -> None:
    b = sample_book(M)
    before = book_state(b, SAMPLE_IDS)
    assert_error(M, ERR_UNKNOWN_ID, b.modify, 99, qty=3)
    assert_error(M, ERR_UNKNOWN_ID, b.modify, 99, price=100.0)
    assert_error(M, ERR_BAD_QTY, b.modify, 1, qty=0)
    assert_error(M, ERR_BAD_QTY, b.modify, 1, qty=-4)
    assert_error(M, ERR_BAD_PRICE, b.modify, 1, price=100.02)
    assert_error(M, ERR_BAD_PRICE, b.modify, 1, price=0.0)
    assert_error(M, ERR_BAD_PRICE, b.modify, 1, price=-100.0)
    assert_error(M, ERR_BAD_PRICE, b.modify, 5, qty=2, price=float("nan"))
    assert_error(M, ERR_BAD_QTY, b.modify, 5, qty=0, price=100.10)
    assert book_state(b, SAMPLE_IDS) == before


def test_depth_arrays(M: Any) -> None:
    b = M.OrderBook(TICK)
    e = b.depth()
    assert len(e) == 4
    assert [a.dtype for a in e] == [np.float64, np.int64, np.float64, np.int64]
    assert all(len(a) == 0 for a in e)
    for i in range(7):
        b.add(100 + i, "buy", i + 1, 99.0 - 0.05 * i)
        b.add(200 + i, "sell", 10 * (i + 1), 101.0 + 0.10 * i)
    b.add(300, "buy", 4, 99.0)  # aggregated into the best level
    bp, bq, ap, aq = b.depth()
    assert [a.dtype for a in (bp, bq, ap, aq)] == [np.float64, np.int64, np.float64, np.int64]
    assert all(isinstance(a, np.ndarray) and a.ndim == 1 for a in (bp, bq, ap, aq))
    assert len(bp) == len(bq) == len(ap) == len(aq) == 5  # default n = 5
    np.testing.assert_allclose(bp, [99.0, 98.95, 98.90, 98.85, 98.80], rtol=RTOL)
    assert bq.tolist() == [5, 2, 3, 4, 5]
    np.testing.assert_allclose(ap, [101.0, 101.1, 101.2, 101.3, 101.4], rtol=RTOL)
    assert aq.tolist() == [10, 20, 30, 40, 50]
    bp, bq, ap, aq = b.depth(3)
    assert len(bp) == len(bq) == len(ap) == len(aq) == 3
    bp, bq, ap, aq = b.depth(100)
    assert len(bp) == len(ap) == 7
    assert bq.tolist() == [5, 2, 3, 4, 5, 6, 7]
    assert np.all(np.diff(bp) < 0) and np.all(np.diff(ap) > 0)
    b.cancel(200)
    bp, bq, ap, aq = b.depth(2)
    np.testing.assert_allclose(ap, [101.1, 101.2], rtol=RTOL)
    assert all(len(a) == 0 for a in b.depth(0))
    # one side only
    s = M.OrderBook(TICK)
    s.add(1, "sell", 3, 5.0)
    bp, bq, ap, aq = s.depth(5)
    assert len(bp) == len(bq) == 0 and aq.tolist() == [3]
    assert bp.dtype == np.float64 and bq.dtype == np.int64


def test_spread_and_mid(M: Any) -> None:
    b = sample_book(M)
    assert b.spread() == pytest.approx(0.10, rel=1e-9)
    assert b.mid() == pytest.approx(100.05, rel=RTOL)
    b.add(90, "buy", 1, 100.05)
    assert b.spread() == pytest.approx(0.05, rel=1e-9)
    assert b.mid() == pytest.approx(100.075, rel=RTOL)
    assert isinstance(b.spread(), float) and isinstance(b.mid(), float)
    for i in (5, 6, 7, 8):
        b.cancel(i)
    assert b.spread() is None and b.mid() is None


def test_queue_ahead(M: Any) -> None:
    b = sample_book(M)
    assert b.queue_ahead(1) == 0 and b.queue_ahead(2) == 10 and b.queue_ahead(6) == 4
    b.add(10, "buy", 3, 100.00)
    assert b.queue_ahead(10) == 15
    b.add(11, "sell", 4, 100.00)  # takes 4 of order 1 (head)
    assert b.queue_ahead(2) == 6 and b.queue_ahead(10) == 11
    assert_error(M, ERR_UNKNOWN_ID, b.queue_ahead, 999)
    assert_error(M, ERR_UNKNOWN_ID, b.queue_ahead, 11)  # fully filled taker never rested


def test_avg_fill_price(M: Any) -> None:
    b = sample_book(M)
    before = book_state(b, SAMPLE_IDS)
    assert b.avg_fill_price("buy", 4) == pytest.approx(100.10, rel=RTOL)
    assert b.avg_fill_price("buy", 10) == pytest.approx(100.10, rel=RTOL)
    assert b.avg_fill_price("buy", 12) == pytest.approx((10 * 100.10 + 2 * 100.15) / 12, rel=RTOL)
    total = 10 * 100.10 + 3 * 100.15 + 9 * 100.50
    assert b.avg_fill_price("buy", 22) == pytest.approx(total / 22, rel=RTOL)
    assert b.avg_fill_price("buy", 23) is None  # not enough liquidity
    assert b.avg_fill_price("sell", 15) == pytest.approx(100.0, rel=RTOL)
    exp = (15 * 100.0 + 7 * 99.95 + 1 * 99.80) / 23
    assert b.avg_fill_price("SELL", 23) == pytest.approx(exp, rel=RTOL)
    assert b.avg_fill_price("sell", 25) is None
    assert book_state(b, SAMPLE_IDS) == before  # a query
    assert M.OrderBook(TICK).avg_fill_price("buy", 1) is None
    assert_error(M, ERR_BAD_SIDE, b.avg_fill_price, "hold", 1)


def test_get_len_contains_resting_levels(M: Any) -> None:
    b = sample_book(M)
    assert len(b) == 8
    assert all(i in b for i in range(1, 9)) and 9 not in b and 0 not in b
    assert b.get(4) == ("buy", pytest.approx(99.80, rel=RTOL), 2)
    assert b.get(8) == ("sell", pytest.approx(100.50, rel=RTOL), 9)
    assert b.get(9) is None
    side, price, qty = b.get(8)
    assert isinstance(side, str) and isinstance(price, float) and isinstance(qty, int)
    assert b.resting_qty("buy") == 24 and b.resting_qty("sell") == 22
    assert b.levels("buy") == 3 and b.levels("sell") == 3
    assert_error(M, ERR_BAD_SIDE, b.resting_qty, "both")
    assert_error(M, ERR_BAD_SIDE, b.levels, "x")


def test_tick_conversion(M: Any) -> None:
    b = M.OrderBook(0.05)
    b.add(1, "buy", 1, 101.35)
    assert b.get(1)[1] == pytest.approx(101.35, rel=RTOL)
    assert b.best_bid()[0] == pytest.approx(101.35, rel=RTOL)
    b.add(2, "buy", 1, 101.35 + 1e-12)  # within 1e-9 ticks of the grid: same level
    assert b.levels("buy") == 1 and b.best_bid()[1] == 2
    b.add(3, "buy", 1, 0.05)  # one tick
    assert b.levels("buy") == 2
    for bad in (
        101.32,
        101.35 + 1e-6,
        101.375,
        0.0,
        -0.05,
        -101.35,
        0.02,
        float("nan"),
        float("inf"),
    ):
        before = book_state(b, [1, 2, 3, 4])
        assert_error(M, ERR_BAD_PRICE, b.add, 4, "buy", 1, bad)
        assert book_state(b, [1, 2, 3, 4]) == before
    q = M.OrderBook(0.25)
    q.add(1, "sell", 2, 100.25)
    assert q.get(1)[1] == pytest.approx(100.25, rel=RTOL)
    assert_error(M, ERR_BAD_PRICE, q.add, 2, "sell", 2, 100.10)
    r = M.OrderBook(1.0)
    r.add(1, "sell", 2, 24350.0)
    assert_error(M, ERR_BAD_PRICE, r.add, 2, "sell", 2, 24350.5)
    (f,) = r.add(3, "buy", 1, 24351.0)
    assert f.price_ticks == 24350 and f.price == 24350.0
    s = M.OrderBook(0.05)
    s.add(1, "sell", 1, 101.35)
    assert s.add(2, "buy", 1, 101.35)[0].price_ticks == 2027


ADD_ERRORS = [
    # (code, args, kwargs, field named in the message)
    (ERR_DUPLICATE_ID, (1, "buy", 1, 99.0), {}, "id"),
    (ERR_DUPLICATE_ID, (5, "buy", 1, 99.0), {}, "id"),  # a resting sell id, other side
    (ERR_DUPLICATE_ID, (5, "buy", 1, 100.10), {"tif": "IOC"}, "id"),  # would cross
    (ERR_DUPLICATE_ID, (1, "sell", 1, None), {}, "id"),  # market order, liquidity present
    (ERR_BAD_QTY, (20, "buy", 0, 99.0), {}, "qty"),
    (ERR_BAD_QTY, (20, "sell", -5, 101.0), {}, "qty"),
    (ERR_BAD_QTY, (20, "sell", 0, 100.0), {}, "qty"),  # would cross
    (ERR_BAD_QTY, (20, "buy", 0, None), {}, "qty"),  # market
    (ERR_BAD_QTY, (20, "buy", -1, 101.0), {"tif": "IOC"}, "qty"),
    (ERR_BAD_PRICE, (20, "buy", 1, 99.02), {}, "price"),
    (ERR_BAD_PRICE, (20, "buy", 1, 100.12), {}, "price"),  # would cross if on grid
    (ERR_BAD_PRICE, (20, "buy", 1, 0.0), {}, "price"),
    (ERR_BAD_PRICE, (20, "sell", 1, -100.0), {}, "price"),
    (ERR_BAD_PRICE, (20, "sell", 1, 100.0), {"tif": "IOC"}, None),  # control: not an error
    (ERR_BAD_SIDE, (20, "hold", 1, 99.0), {}, "side"),
    (ERR_BAD_SIDE, (20, "", 1, 99.0), {}, "side"),
    (ERR_BAD_SIDE, (20, "b", 1, None), {}, "side"),
    (ERR_BAD_SIDE, (20, "buy", 1, 99.0), {"tif": "FOK"}, "tif"),
    (ERR_BAD_SIDE, (20, "buy", 1, 100.10), {"tif": "GTD"}, "tif"),
    (ERR_BAD_SIDE, (20, "sell", 1, None), {"tif": "XYZ"}, "tif"),
]


@pytest.mark.parametrize(("code", "args", "kwargs", "field"), ADD_ERRORS)
def test_add_errors_leave_book_unchanged(M: Any, code, args, kwargs, field) -> None:
    b = sample_book(M)
    before = book_state(b, [*SAMPLE_IDS, 20])
    if field is None:  # control case
        b.add(*args, **kwargs)
        assert book_state(b, [*SAMPLE_IDS, 20]) != before
        return
    err = assert_error(M, code, b.add, *args, **kwargs)
    assert field in str(err).lower(), str(err)
    assert book_state(b, [*SAMPLE_IDS, 20]) == before
    # and the book still works normally afterwards
    assert fkey(b.add(21, "buy", 1, None)) == [(21, 5, 2002, 1)]


def test_no_liquidity_error_leaves_book_unchanged(M: Any) -> None:
    b = M.OrderBook(TICK)
    for i in range(3):
        b.add(i, "sell", 2, 100.0 + i)
    before = book_state(b, range(5))
    assert_error(M, ERR_NO_LIQUIDITY, b.add, 4, "sell", 1, None)
    assert book_state(b, range(5)) == before


def test_cancel_unknown_leaves_book_unchanged(M: Any) -> None:
    b = sample_book(M)
    b.add(20, "buy", 10, 100.10)  # fills 5 fully, 6 partly
    before = book_state(b, SAMPLE_IDS)
    for oid in (5, 20, 123456, -1):
        assert_error(M, ERR_UNKNOWN_ID, b.cancel, oid)
    assert book_state(b, SAMPLE_IDS) == before


# ============================================================================
# 2. batch apply == per-call methods
# ============================================================================
BATCH_SCENARIO = [
    # op, side, id, price (ticks), qty
    (OP_ADD, 1, 1, 2000, 10),
    (OP_ADD, 1, 2, 2000, 5),
    (OP_ADD, 1, 3, 1999, 7),
    (OP_ADD, -1, 4, 2002, 4),
    (OP_ADD, -1, 5, 2002, 6),
    (OP_ADD, -1, 6, 2003, 3),
    (OP_ADD, -1, 1, 2005, 3),  # duplicate id
    (OP_ADD, 1, 7, 2003, 12),  # crosses two levels, 2 rest? 4+6+2=12: fully filled
    (OP_ADD_IOC, -1, 8, 1999, 20),  # 10+5+5, remainder cancelled
    (OP_MARKET, 1, 9, 0, 3),  # 1 @ 2003, remainder cancelled (OK)
    (OP_MARKET, 1, 10, 77, 1),  # no asks left: ERR_NO_LIQUIDITY, price ignored
    (OP_CANCEL, 0, 3, 0, 0),  # cancel remaining 2 of order 3
    (OP_CANCEL, 0, 3, 0, 0),  # unknown now
    (OP_ADD, 1, 11, 1990, 5),
    (OP_ADD, 1, 12, 1990, 6),
    (OP_MODIFY, 0, 11, 0, 2),  # qty down, keeps priority
    (OP_MODIFY, 0, 12, 1990, 6),  # no-op
    (OP_ADD, -1, 13, 1995, 4),
    (OP_MODIFY, 0, 13, 1990, 4),  # crosses: fills 11 (2) then 12 (2)
    (OP_MODIFY, 0, 999, 0, 3),  # unknown id
    (OP_MODIFY, 0, 12, 0, 0),  # bad qty
    (OP_MODIFY, 0, 12, -5, 3),  # bad price
    (OP_ADD, 1, 14, 0, 3),  # bad price
    (OP_ADD, 1, 15, -7, 3),  # bad price
    (OP_ADD, 1, 16, 1990, 0),  # bad qty
    (OP_ADD_IOC, -1, 17, 1990, -3),  # bad qty
    (OP_MARKET, -1, 18, 0, 0),  # bad qty
    (OP_ADD, 0, 19, 1990, 3),  # bad side
    (OP_ADD, 2, 20, 1990, 3),  # bad side
    (OP_MARKET, -2, 21, 0, 3),  # bad side
    (7, 1, 22, 1990, 3),  # bad op
    (255, 1, 23, 1990, 3),  # bad op
    (OP_ADD, -1, 24, 1991, 8),
    (OP_MODIFY, 0, 12, 0, 9),  # qty up: loses priority (alone at its level anyway)
    (OP_ADD, 1, 25, 1990, 2),
    (OP_MODIFY, 0, 24, 1990, 8),  # price change: crosses 12 (9, ahead of 25): 8 of it
    (OP_ADD, 1, 12, 1980, 1),  # 12 still rests (1 left): duplicate id
    (OP_ADD, 1, 24, 1980, 1),  # 24 was filled completely: the id can be used again
]


def test_batch_scenario_expected(M: Any) -> None:
    """The scenario above, with its expected codes written out (checks the oracle too)."""
    b = M.OrderBook(TICK)
    res = b.apply(make_ops(M, BATCH_SCENARIO))
    codes = np.asarray(res.codes).tolist()
    exp_codes = [OK] * len(BATCH_SCENARIO)
    for i, c in {
        6: ERR_DUPLICATE_ID,
        10: ERR_NO_LIQUIDITY,
        12: ERR_UNKNOWN_ID,
        19: ERR_UNKNOWN_ID,
        20: ERR_BAD_QTY,
        21: ERR_BAD_PRICE,
        22: ERR_BAD_PRICE,
        23: ERR_BAD_PRICE,
        24: ERR_BAD_QTY,
        25: ERR_BAD_QTY,
        26: ERR_BAD_QTY,
        27: ERR_BAD_SIDE,
        28: ERR_BAD_SIDE,
        29: ERR_BAD_SIDE,
        30: ERR_BAD_OP,
        31: ERR_BAD_OP,
        36: ERR_DUPLICATE_ID,
    }.items():
        exp_codes[i] = c
    assert codes == exp_codes
    assert batch_rows(res) == [
        (7, 7, 4, 2002, 4),
        (7, 7, 5, 2002, 6),
        (7, 7, 6, 2003, 2),
        (8, 8, 1, 2000, 10),
        (8, 8, 2, 2000, 5),
        (8, 8, 3, 1999, 5),
        (9, 9, 6, 2003, 1),
        (18, 13, 11, 1990, 2),
        (18, 13, 12, 1990, 2),
        (35, 24, 12, 1990, 8),
    ]
    assert depth_ticks(b) == ([1990, 1980], [3, 1], [], [])
    assert len(b) == 3 and b.get(12)[2] == 1 and b.get(25)[2] == 2 and b.get(24)[2] == 1
    assert b.queue_ahead(25) == 1


def test_apply_equals_per_call(M: Any) -> None:
    ops = make_ops(M, BATCH_SCENARIO)
    a, b = M.OrderBook(TICK), M.OrderBook(TICK)
    codes, fills = run_per_call(a, ops)
    res = b.apply(ops)
    assert np.asarray(res.codes).tolist() == codes
    assert batch_rows(res) == fills
    assert book_state(a, range(30)) == book_state(b, range(30))


def test_apply_result_types_and_empty(M: Any) -> None:
    b = sample_book(M)
    res = b.apply(np.zeros(0, dtype=M.OP_DTYPE))
    for name in ("codes", "fill_op", "taker_id", "maker_id", "price_ticks", "qty"):
        assert isinstance(getattr(res, name), np.ndarray) and len(getattr(res, name)) == 0
    res = b.apply(make_ops(M, [(OP_MARKET, 1, 50, 0, 5), (OP_CANCEL, 0, 1, 0, 0)]))
    assert res.codes.dtype == np.int8 and res.codes.tolist() == [OK, OK]
    for name in ("fill_op", "taker_id", "maker_id", "price_ticks", "qty"):
        assert getattr(res, name).dtype == np.int64, name
    assert batch_rows(res) == [(0, 50, 5, 2002, 4), (0, 50, 6, 2002, 1)]


def test_apply_cancel_ignores_side_price_qty(M: Any) -> None:
    b = sample_book(M)
    res = b.apply(make_ops(M, [(OP_CANCEL, 7, 1, -5, -1), (OP_CANCEL, -128, 5, 0, 0)]))
    assert res.codes.tolist() == [OK, OK] and 1 not in b and 5 not in b


def test_apply_modify_price_zero_keeps_price(M: Any) -> None:
    b = sample_book(M)
    res = b.apply(make_ops(M, [(OP_MODIFY, 0, 1, 0, 3), (OP_MODIFY, 0, 2, 0, 8)]))
    assert res.codes.tolist() == [OK, OK] and len(res.qty) == 0
    assert b.get(1) == ("buy", pytest.approx(100.0, rel=RTOL), 3)
    assert b.queue_ahead(1) == 0 and b.queue_ahead(2) == 3  # 2 went up: still behind 1


def test_apply_bad_ops_leave_book_unchanged(M: Any) -> None:
    b = sample_book(M)
    before = book_state(b, SAMPLE_IDS)
    bad = [
        (OP_ADD, 1, 1, 1990, 1),
        (OP_ADD, 1, 30, 1990, 0),
        (OP_ADD, 1, 30, 0, 1),
        (OP_ADD, 1, 30, -2002, 1),
        (OP_ADD, 3, 30, 2002, 1),
        (OP_ADD_IOC, 0, 30, 2002, 1),
        (OP_MARKET, 1, 8, 0, 1),
        (OP_MARKET, 1, 30, 0, -1),
        (OP_CANCEL, 0, 30, 0, 0),
        (OP_MODIFY, 0, 30, 0, 1),
        (OP_MODIFY, 0, 1, 0, 0),
        (OP_MODIFY, 0, 1, -1, 5),
        (5, 1, 30, 2002, 1),
        (6, -1, 31, 2000, 1),
        (200, 1, 32, 2000, 1),
    ]
    res = b.apply(make_ops(M, bad))
    assert res.codes.tolist() == [
        ERR_DUPLICATE_ID,
        ERR_BAD_QTY,
        ERR_BAD_PRICE,
        ERR_BAD_PRICE,
        ERR_BAD_SIDE,
        ERR_BAD_SIDE,
        ERR_DUPLICATE_ID,
        ERR_BAD_QTY,
        ERR_UNKNOWN_ID,
        ERR_UNKNOWN_ID,
        ERR_BAD_QTY,
        ERR_BAD_PRICE,
        ERR_BAD_OP,
        ERR_BAD_OP,
        ERR_BAD_OP,
    ]
    assert len(res.qty) == 0
    assert book_state(b, SAMPLE_IDS) == before
    e = M.OrderBook(TICK)
    res = e.apply(make_ops(M, [(OP_MARKET, 1, 1, 0, 5), (OP_MARKET, -1, 2, 0, 5)]))
    assert res.codes.tolist() == [ERR_NO_LIQUIDITY, ERR_NO_LIQUIDITY] and len(e) == 0


def test_apply_in_chunks_equals_one_call(M: Any) -> None:
    ops = make_ops(M, BATCH_SCENARIO)
    whole = M.OrderBook(TICK)
    res = whole.apply(ops)
    parts = M.OrderBook(TICK)
    codes: list[int] = []
    rows: list[tuple[int, ...]] = []
    for lo, hi in [(0, 3), (3, 4), (4, 4), (4, 20), (20, len(ops))]:
        r = parts.apply(ops[lo:hi])
        codes += r.codes.tolist()
        rows += batch_rows(r, lo)
    assert codes == res.codes.tolist() and rows == batch_rows(res)
    assert book_state(whole, range(30)) == book_state(parts, range(30))


def test_apply_accepts_packed_contract_layout(M: Any) -> None:
    """An array built from the contract's field list (packed, no alignment) works the same."""
    aligned = make_ops(M, BATCH_SCENARIO)
    packed = np.array([tuple(r) for r in BATCH_SCENARIO], dtype=CONTRACT_OP_FIELDS)
    a, b = M.OrderBook(TICK), M.OrderBook(TICK)
    ra, rb = a.apply(aligned), b.apply(packed)
    assert ra.codes.tolist() == rb.codes.tolist() and batch_rows(ra) == batch_rows(rb)
    assert book_state(a, range(30)) == book_state(b, range(30))


# ============================================================================
# 3. L2Book
# ============================================================================
def l2_state(book: Any) -> tuple[Any, ...]:
    t = book.tick_size
    return (
        depth_ticks(book, 1000),
        best_key(book.best_bid(), t),
        best_key(book.best_ask(), t),
        book.levels("buy"),
        book.levels("sell"),
    )


ANGEL_BIDS = ([24350.0, 24349.95, 24349.5, 24349.0, 24348.05], [75, 150, 0, 300, 25])
ANGEL_ASKS = ([24350.5, 24350.55, 24351.0, 24352.0, 24360.0], [50, 75, 100, 1500, 25])


def test_l2_snapshot_and_queries(M: Any) -> None:
    b = M.L2Book(TICK)
    assert b.best_bid() is None and b.best_ask() is None and b.spread() is None
    assert b.mid() is None and b.levels("buy") == 0 and b.avg_fill_price("buy", 1) is None
    assert all(len(a) == 0 for a in b.depth())
    b.apply_snapshot(*ANGEL_BIDS, *ANGEL_ASKS)
    assert b.levels("buy") == 4 and b.levels("sell") == 5  # qty 0 level ignored
    assert b.best_bid() == (pytest.approx(24350.0, rel=RTOL), 75)
    assert b.best_ask() == (pytest.approx(24350.5, rel=RTOL), 50)
    assert b.spread() == pytest.approx(0.5, rel=1e-9)
    assert b.mid() == pytest.approx(24350.25, rel=RTOL)
    bp, bq, ap, aq = b.depth(10)
    assert [a.dtype for a in (bp, bq, ap, aq)] == [np.float64, np.int64, np.float64, np.int64]
    np.testing.assert_allclose(bp, [24350.0, 24349.95, 24349.0, 24348.05], rtol=RTOL)
    assert bq.tolist() == [75, 150, 300, 25]
    np.testing.assert_allclose(ap, ANGEL_ASKS[0], rtol=RTOL)
    assert aq.tolist() == ANGEL_ASKS[1]
    assert len(b.depth(3)[0]) == 3 and len(b.depth()[2]) == 5
    exp = (50 * 24350.5 + 75 * 24350.55 + 75 * 24351.0) / 200
    assert b.avg_fill_price("buy", 200) == pytest.approx(exp, rel=RTOL)
    assert b.avg_fill_price("buy", 1750) == pytest.approx(
        np.dot(ANGEL_ASKS[0], ANGEL_ASKS[1]) / 1750, rel=RTOL
    )
    assert b.avg_fill_price("buy", 1751) is None
    assert b.avg_fill_price("sell", 100) == pytest.approx((75 * 24350 + 25 * 24349.95) / 100)
    # numpy input, unsorted levels
    c = M.L2Book(TICK)
    c.apply_snapshot(
        np.array([99.0, 99.5]), np.array([1, 2]), np.array([101.0, 100.5]), np.array([3, 4])
    )
    assert l2_state(c)[0] == ([1990, 1980], [2, 1], [2010, 2020], [4, 3])
    # a new snapshot replaces everything
    c.apply_snapshot([98.0], [7], [], [])
    assert l2_state(c)[0] == ([1960], [7], [], [])
    c.clear()
    assert l2_state(c) == (([], [], [], []), None, None, 0, 0)


def test_l2_updates(M: Any) -> None:
    b = M.L2Book(TICK)
    b.apply_snapshot([100.0, 99.95], [10, 20], [100.05, 100.10], [5, 6])
    b.update("buy", 100.0, 12)  # set, not add
    b.update("sell", 100.05, 0)  # remove
    b.update("sell", 100.20, 9)  # new level
    b.update("buy", 99.50, 0)  # remove a level that is not there: no-op
    b.update("BUY", 99.90, 1)
    assert l2_state(b) == (
        ([2000, 1999, 1998], [12, 20, 1], [2002, 2004], [6, 9]),
        (2000, 12),
        (2002, 6),
        3,
        2,
    )


def test_l2_bad_input_leaves_book_unchanged(M: Any) -> None:
    b = M.L2Book(TICK)
    b.apply_snapshot(*ANGEL_BIDS, *ANGEL_ASKS)
    before = l2_state(b)
    bad_snaps = [
        ([24350.02], [1], [24351.0], [1]),  # bid price off grid
        ([24350.0], [1], [24351.01], [1]),  # ask price off grid
        ([24350.0, 24349.0], [1, -1], [24351.0], [1]),  # negative qty
        ([24350.0], [1], [24351.0], [-5]),
        ([-24350.0], [1], [24351.0], [1]),  # negative price
        ([0.0], [1], [24351.0], [1]),  # zero price
    ]
    for snap in bad_snaps:
        with pytest.raises(M.OrderBookError):
            b.apply_snapshot(*snap)
        assert l2_state(b) == before, snap
    with pytest.raises(ValueError):  # arrays of different lengths
        b.apply_snapshot([24350.0, 24349.0], [1], [24351.0], [1])
    assert l2_state(b) == before
    assert_error(M, ERR_BAD_PRICE, b.update, "buy", 24350.01, 5)
    assert_error(M, ERR_BAD_PRICE, b.update, "buy", -5.0, 5)
    assert_error(M, ERR_BAD_QTY, b.update, "sell", 24350.5, -1)
    assert_error(M, ERR_BAD_SIDE, b.update, "hold", 24350.5, 1)
    assert_error(M, ERR_BAD_SIDE, b.levels, "hold")
    assert_error(M, ERR_BAD_SIDE, b.avg_fill_price, "hold", 1)
    assert l2_state(b) == before


def test_l2_snapshot_error_codes(M: Any) -> None:
    b = M.L2Book(TICK)
    assert_error(M, ERR_BAD_PRICE, b.apply_snapshot, [100.01], [1], [], [])
    assert_error(M, ERR_BAD_QTY, b.apply_snapshot, [100.0], [-1], [], [])


L2_PRICES = st.integers(1990, 2010)
L2_LEVELS = st.dictionaries(L2_PRICES, st.integers(0, 50), max_size=8)
L2_UPDATES = st.lists(
    st.tuples(st.sampled_from(["buy", "sell"]), L2_PRICES, st.integers(0, 50)), max_size=40
)


@settings(max_examples=100, deadline=None, database=None)
@given(bids=L2_LEVELS, asks=L2_LEVELS, updates=L2_UPDATES, qty=st.integers(1, 200))
def test_l2_random_vs_dict(bids, asks, updates, qty) -> None:
    """Compiled L2Book and the oracle vs a plain dict {ticks: qty} per side."""
    C = compiled_module()
    books = [C.L2Book(TICK), ref.L2Book(TICK)]
    model = {
        "buy": {t: q for t, q in bids.items() if q},
        "sell": {t: q for t, q in asks.items() if q},
    }
    for b in books:
        b.apply_snapshot(
            [t * TICK for t in bids],
            list(bids.values()),
            [t * TICK for t in asks],
            list(asks.values()),
        )
    for step in range(len(updates) + 1):
        if step:
            side, t, q = updates[step - 1]
            for b in books:
                b.update(side, t * TICK, q)
            if q:
                model[side][t] = q
            else:
                model[side].pop(t, None)
        bt = sorted(model["buy"], reverse=True)
        at = sorted(model["sell"])
        exp_depth = (bt, [model["buy"][t] for t in bt], at, [model["sell"][t] for t in at])
        for b in books:
            assert depth_ticks(b) == exp_depth
            assert b.levels("buy") == len(bt) and b.levels("sell") == len(at)
            assert best_key(b.best_bid(), TICK) == ((bt[0], model["buy"][bt[0]]) if bt else None)
            assert best_key(b.best_ask(), TICK) == ((at[0], model["sell"][at[0]]) if at else None)
            if bt and at:
                assert b.mid() == pytest.approx((bt[0] + at[0]) * TICK / 2, rel=RTOL)
                assert b.spread() == pytest.approx((at[0] - bt[0]) * TICK, rel=1e-9, abs=1e-9)
            else:
                assert b.mid() is None and b.spread() is None
            for side, levels in (
                ("buy", [(t, model["sell"][t]) for t in at]),
                ("sell", [(t, model["buy"][t]) for t in bt]),
            ):
                left, notional = qty, 0
                for t, q in levels:
                    take = min(left, q)
                    notional += t * take
                    left -= take
                got = b.avg_fill_price(side, qty)
                if left:
                    assert got is None
                else:
                    assert got == pytest.approx(notional * TICK / qty, rel=RTOL)


# ============================================================================
# 4. large random stream through apply: compiled vs oracle
# ============================================================================
def random_ops(
    n: int, seed: int, *, n_ids: int = 1_000_000, mid: int | np.ndarray = 2000, far: float = 0.0
) -> np.ndarray:
    """A busy random stream: 45% limit, 8% IOC, 4% market, 25% cancel, 15% modify, 3% faults.

    Buys are priced in [mid-30, mid+4] and sells in [mid-4, mid+30] ticks, so a deep book builds
    up and new orders cross often. Cancels and modifies mostly target the id of an op a few
    hundred ops back (often still resting), sometimes a random id (mostly unknown). ``mid`` may
    be an array (a drifting price); a fraction ``far`` of the orders is priced 100..5000 ticks
    away from mid, on its passive side (they rest long: a wide book). Faulty ops
    use fresh ids (never resting), so each op has at most one fault; market orders also use
    fresh ids (their only possible fault is ERR_NO_LIQUIDITY)."""
    rng = np.random.default_rng(seed)
    ops = np.zeros(n, dtype=ref.OP_DTYPE)
    u = rng.random(n)
    kind = np.select(
        [u < 0.45, u < 0.53, u < 0.57, u < 0.82, u < 0.97],
        [OP_ADD, OP_ADD_IOC, OP_MARKET, OP_CANCEL, OP_MODIFY],
        default=255,  # fault marker
    )
    ops["op"] = np.where(kind == 255, OP_ADD, kind)
    side = rng.choice(np.array([1, -1], dtype=np.int8), n)
    ops["side"] = side
    ops["id"] = rng.integers(1, n_ids + 1, n)
    ops["price"] = np.where(
        side > 0, rng.integers(mid - 30, mid + 5, n), rng.integers(mid - 4, mid + 31, n)
    )
    is_far = rng.random(n) < far
    ops["price"][is_far] = (mid - side * rng.integers(100, 5001, n))[is_far]
    ops["qty"] = rng.integers(1, 50, n)
    fresh = 10**9 + np.arange(n)
    is_market = kind == OP_MARKET
    ops["id"][is_market] = fresh[is_market]
    ops["price"][is_market] = rng.integers(-5, 5, int(is_market.sum()))  # ignored
    is_cm = (kind == OP_CANCEL) | (kind == OP_MODIFY)
    back = np.maximum(np.arange(n) - rng.integers(1, 400, n), 0)
    target = is_cm & (rng.random(n) < 0.85)
    ops["id"][target] = ops["id"][back[target]]
    is_mod = kind == OP_MODIFY
    keep = is_mod & (rng.random(n) < 0.5)
    ops["price"][keep] = 0  # keep the price
    ops["side"][is_mod] = 0
    is_cancel = kind == OP_CANCEL
    ops["side"][is_cancel] = 0
    ops["price"][is_cancel] = 0
    ops["qty"][is_cancel] = 0
    faults = np.flatnonzero(kind == 255)
    ops["id"][faults] = fresh[faults]
    which = rng.integers(0, 6, len(faults))
    f = ops[faults]
    f["qty"][which == 0] = 0
    f["qty"][which == 1] = -rng.integers(1, 10, int((which == 1).sum()))
    f["price"][which == 2] = 0
    f["price"][which == 3] = -rng.integers(1, 3000, int((which == 3).sum()))
    f["side"][which == 4] = rng.choice(
        np.array([0, 2, -2, 127], dtype=np.int8), int((which == 4).sum())
    )
    f["op"][which == 5] = rng.choice(
        np.array([5, 6, 100, 255], dtype=np.uint8), int((which == 5).sum())
    )
    ops[faults] = f
    return ops


def test_random_ops_generator_covers_every_code() -> None:
    ops = random_ops(20000, 7)
    res = ref.OrderBook(TICK).apply(ops)
    codes = res.codes
    for c in (
        ERR_DUPLICATE_ID,
        ERR_UNKNOWN_ID,
        ERR_BAD_QTY,
        ERR_BAD_PRICE,
        ERR_BAD_SIDE,
        ERR_BAD_OP,
        OK,
    ):
        assert (codes == c).sum() > 10, c
    assert len(res.qty) > 1000


def test_large_random_stream_compiled_vs_reference(C: Any) -> None:
    n = 200_000
    ops = random_ops(n, 20240601)
    oracle = ref.OrderBook(TICK)
    t0 = time.perf_counter()
    exp = oracle.apply(ops)
    t_ref = time.perf_counter() - t0
    book = C.OrderBook(TICK)
    t0 = time.perf_counter()
    got = book.apply(ops)
    t_c = time.perf_counter() - t0
    print(f"apply {n} ops: reference {t_ref:.3f} s, compiled {t_c:.4f} s")
    assert np.array_equal(np.asarray(got.codes), exp.codes)
    for name in ("fill_op", "taker_id", "maker_id", "price_ticks", "qty"):
        g, e = np.asarray(getattr(got, name)), getattr(exp, name)
        assert len(g) == len(e) and np.array_equal(g, e), name
    assert int(np.asarray(got.qty).sum()) == int(exp.qty.sum())
    assert_same_book(book, oracle, n=100_000)
    assert book.resting_qty("buy") == oracle.resting_qty("buy")
    assert book.resting_qty("sell") == oracle.resting_qty("sell")
    assert book.levels("buy") == oracle.levels("buy")
    assert book.levels("sell") == oracle.levels("sell")
    # the same stream in uneven chunks gives the same result
    chunked = C.OrderBook(TICK)
    rows_codes = []
    total = 0
    bounds = [0, 1, 1000, 1001, 77_777, 150_000, n]
    for lo, hi in itertools.pairwise(bounds):
        r = chunked.apply(ops[lo:hi])
        rows_codes.append(np.asarray(r.codes))
        total += int(np.asarray(r.qty).sum())
    assert np.array_equal(np.concatenate(rows_codes), exp.codes)
    assert total == int(exp.qty.sum())
    assert depth_ticks(chunked, 100_000) == depth_ticks(oracle, 100_000)
    assert len(chunked) == len(oracle)


def test_drifting_prices_stream_compiled_vs_reference(C: Any) -> None:
    """The price walks over ~40k ticks and some orders rest far away: the compiled book's
    price ladder has to move and grow its window many times."""
    n = 100_000
    rng = np.random.default_rng(99)
    mid = 30_000 + np.cumsum(rng.integers(-3, 4, n) * rng.integers(0, 8, n))
    assert mid.min() > 6000
    ops = random_ops(n, 4242, mid=mid, far=0.03)
    oracle = ref.OrderBook(TICK)
    exp = oracle.apply(ops)
    book = C.OrderBook(TICK)
    got = book.apply(ops)
    assert np.array_equal(np.asarray(got.codes), exp.codes)
    for name in ("fill_op", "taker_id", "maker_id", "price_ticks", "qty"):
        assert np.array_equal(np.asarray(getattr(got, name)), getattr(exp, name)), name
    assert_same_book(book, oracle, n=100_000)
    assert oracle.levels("buy") > 100 and oracle.levels("sell") > 100  # a wide book
    b = depth_ticks(oracle)
    assert b[0][0] - b[0][-1] > 5000 and b[2][-1] - b[2][0] > 5000


def test_price_grid_tolerance(M: Any) -> None:
    """The contract: a price is rejected unless it is within 1e-9 ticks of the grid."""
    b = M.OrderBook(0.05)
    b.add(1, "buy", 1, 101.35 + 1e-12)  # 2e-11 ticks off: accepted
    b.add(2, "buy", 1, 24350.05 * (1 + 1e-16))  # float noise of a computed price: accepted
    before = book_state(b, [1, 2, 3])
    for off in (1e-7, -1e-7, 1e-8):  # 2e-6, -2e-6, 2e-7 ticks off the grid
        assert_error(M, ERR_BAD_PRICE, b.add, 3, "buy", 1, 101.35 + off)
        assert_error(M, ERR_BAD_PRICE, b.modify, 1, price=101.35 + off)
    assert book_state(b, [1, 2, 3]) == before
    l2 = M.L2Book(0.05)
    assert_error(M, ERR_BAD_PRICE, l2.update, "buy", 101.35 + 1e-7, 5)
    assert l2.levels("buy") == 0


def test_huge_quantities_never_wrap(M: Any) -> None:
    """Level totals must not silently overflow int64: either the order that would overflow
    is refused (ERR_BAD_QTY, book unchanged) or the totals are exact."""
    b = M.OrderBook(TICK)
    big = 2**62
    b.add(1, "buy", big, 100.0)
    try:
        b.add(2, "buy", big, 100.0)
    except M.OrderBookError as exc:
        assert exc.code == ERR_BAD_QTY
        assert len(b) == 1 and b.best_bid()[1] == big
        return
    assert b.resting_qty("buy") == 2 * big
    assert b.best_bid()[1] == 2 * big
