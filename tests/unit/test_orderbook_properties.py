"""Random op streams (hypothesis, state-machine style) for ``algoengine.orderbook``.

A stream is a list of up to 300 ops on a small price range (11 ticks; buys in the lower 8,
sells in the upper 8) and a small id pool (60 ids), so a book of ~20 orders builds up, orders
cross, rest, queue up (FIFO) and get their ids reused all the time; cancels and
modifies mostly target resting orders, sometimes unknown ids; a few ops are deliberately bad
(each with exactly one fault, so the expected error code is unambiguous).

After EVERY op the book under test is checked
* against the pure-Python oracle (compiled runs only): same error code, same fills (ids, price
  ticks, qty, order), same cancel result, same best bid/ask, depth(10) of both sides, len, and
  get() and queue_ahead() of every resting order;
* against an independent bookkeeping model that does not match orders itself but validates
  every fill as it is reported: the maker is the head (earliest arrival) of the best opposite
  level, the price is the maker's and within the taker's limit, the qty is min(taker left,
  maker left), and matching stopped only when the taker was filled, the other side was empty
  or its best price was beyond the limit. Then: never crossed at rest, get()/queue_ahead()/
  best/levels/resting_qty agree with the model (FIFO = arrival order), and quantity is
  conserved: per order, submitted (add qty + increases by modify) == resting + filled +
  cancelled (cancel, IOC/market remainder, decreases by modify), and over the whole book
  sum(submitted) == resting + filled-as-taker + filled-as-maker + cancelled, each fill counted
  once for its taker and once for its maker.
Finally the same concrete ops run through ``apply`` in random chunks on a fresh book: the codes
and fills equal the per-call results and the final book is the same.

The oracle itself is run through the same stream checks (model only), with fewer examples.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from tests.reference import orderbook as ref
from tests.unit.test_orderbook import (
    ERR_BAD_PRICE,
    ERR_BAD_QTY,
    ERR_BAD_SIDE,
    ERR_DUPLICATE_ID,
    ERR_NO_LIQUIDITY,
    ERR_UNKNOWN_ID,
    OK,
    OP_ADD,
    OP_ADD_IOC,
    OP_CANCEL,
    OP_MARKET,
    OP_MODIFY,
    assert_same_book,
    batch_rows,
    best_key,
    book_state,
    call,
    check_fill_prices,
    compiled_module,
    fkey,
)

TICK = 0.05
LO, NTICKS = 2000, 11  # prices 100.00 .. 100.50
POOL = 60  # ids 1..60 for orders that may rest
FRESH0 = 1_000_000  # ids for market orders and faulty adds: never resting
MAX_OPS = 300


def price_of(ticks: int) -> float:
    return round(ticks * TICK, 2)


# ============================================================================
# stream: integers decoded into op intents, resolved against the model when run
# ============================================================================
OP_INT = st.integers(0, 2**40)
STREAM = st.integers(0, MAX_OPS).flatmap(lambda n: st.lists(OP_INT, min_size=n, max_size=n))
CHUNK_SEED = st.integers(0, 2**32 - 1)


@dataclass
class Op:
    """A concrete op: the per-call form and the equivalent OP_DTYPE row."""

    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    row: tuple[int, int, int, int, int]
    # what the model needs
    side: int = 0  # +1/-1 (0 if bad or not an add)
    qty: int | None = None
    ticks: int | None = None  # limit / new price; None = market / keep
    ioc: bool = False
    fault: int = OK  # expected error for a deliberately bad op (model re-derives it)

    def __str__(self) -> str:
        args = ", ".join(
            [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        )
        return f"{self.method}({args})"


def decode(x: int, model: Model, fresh: int) -> Op | None:
    """Integer -> concrete op, given the current resting orders (model). 0 decodes to a plain
    limit buy, so shrinking simplifies ops."""
    kind, x = x % 32, x // 32
    pool_id, x = x % POOL + 1, x // POOL
    side, x = (1, -1)[x % 2], x // 2
    qty, x = x % 20 + 1, x // 20
    # buys in [LO, LO+7], sells in [LO+3, LO+10]: a book builds up and still crosses often
    ticks, x = LO + x % 8 + (3 if side == -1 else 0), x // 8
    misc, x = x % 8, x // 8
    variant, x = x % 4, x // 4
    resting = sorted(model.orders)
    target = resting[x % len(resting)] if resting else None
    sname = "buy" if side == 1 else "sell"

    def add(oid: int, tif: str, ticks_: int | None) -> Op:
        op = OP_MARKET if ticks_ is None else (OP_ADD_IOC if tif == "IOC" else OP_ADD)
        price = None if ticks_ is None else price_of(ticks_)
        kwargs = {"tif": tif} if ticks_ is not None else {}
        return Op(
            "add",
            (oid, sname, qty, price),
            kwargs,
            (op, side, oid, ticks_ or 0, qty),
            side=side,
            qty=qty,
            ticks=ticks_,
            ioc=(tif == "IOC"),
        )

    if kind <= 19:  # limit orders with pool ids (dup when the id rests)
        return add(pool_id, "GTC" if kind < 16 else ("DAY", "DAY", "IOC", "IOC")[kind - 16], ticks)
    if kind == 20:  # market order, fresh id
        return add(fresh, "GTC", None)
    if kind <= 22:  # cancel: a resting order, sometimes a pool id (maybe unknown)
        oid = target if (target is not None and misc < 6) else pool_id
        return Op("cancel", (oid,), {}, (OP_CANCEL, 0, oid, 0, 0))
    if kind <= 26:  # modify: qty only / price only / both / neither
        oid = target if (target is not None and misc < 6) else pool_id
        new_qty = qty if variant in (0, 2) else None
        new_ticks = ticks if variant in (1, 2) else None
        cur = model.orders.get(oid)
        row_qty = new_qty if new_qty is not None else (cur.qty if cur is not None else 1)
        return Op(
            "modify",
            (oid,),
            {"qty": new_qty, "price": None if new_ticks is None else price_of(new_ticks)},
            (OP_MODIFY, 0, oid, new_ticks or 0, row_qty),
            qty=new_qty,
            ticks=new_ticks,
        )
    if kind <= 28:  # a bad add (fresh id, exactly one fault)
        op = add(fresh, "GTC", ticks)
        args, row = list(op.args), list(op.row)
        if misc == 0:
            args[2], row[4], op.fault = 0, 0, ERR_BAD_QTY
        elif misc == 1:
            args[2], row[4], op.fault = -qty, -qty, ERR_BAD_QTY
        elif misc == 2:
            args[3], row[3], op.fault = price_of(ticks) + 0.02, -1, ERR_BAD_PRICE
        elif misc == 3:
            args[3], row[3], op.fault = 0.0, 0, ERR_BAD_PRICE
        elif misc == 4:
            args[3], row[3], op.fault = -price_of(ticks), -ticks, ERR_BAD_PRICE
        elif misc == 5:
            args[1], row[1], op.fault = "hold", 0, ERR_BAD_SIDE
        elif misc == 6:
            op.kwargs, row[1], op.fault = {"tif": "FOK"}, 3, ERR_BAD_SIDE
        else:
            args[2], row[4], op.fault = 0, 0, ERR_BAD_QTY
            if model.best(-side) is not None:  # a market order with qty 0 (not also illiquid)
                args[3], row[0], row[3] = None, OP_MARKET, 0
                op.kwargs = {}
        op.args, op.row = tuple(args), tuple(row)  # type: ignore[assignment]
        return op
    if kind == 29:  # a bad modify of a resting order (exactly one fault)
        if target is None:
            return None
        if misc % 4 == 0:
            return Op(
                "modify", (target,), {"qty": 0}, (OP_MODIFY, 0, target, 0, 0), fault=ERR_BAD_QTY
            )
        if misc % 4 == 1:
            return Op(
                "modify",
                (target,),
                {"qty": -qty},
                (OP_MODIFY, 0, target, 0, -qty),
                fault=ERR_BAD_QTY,
            )
        cur = model.orders[target]
        if misc % 4 == 2:
            return Op(
                "modify",
                (target,),
                {"price": price_of(ticks) + 0.01},
                (OP_MODIFY, 0, target, -1, cur.qty),
                fault=ERR_BAD_PRICE,
            )
        return Op(
            "modify",
            (target,),
            {"qty": qty, "price": -price_of(ticks)},
            (OP_MODIFY, 0, target, -ticks, qty),
            fault=ERR_BAD_PRICE,
        )
    if kind == 30:  # add with the id of a resting order
        if target is None:
            return add(pool_id, "GTC", ticks)
        return add(target, "IOC" if misc < 3 else "GTC", ticks)
    return add(pool_id, "GTC", ticks)  # kind 31


# ============================================================================
# the bookkeeping model
# ============================================================================
@dataclass
class MOrder:
    side: int
    ticks: int
    qty: int
    seq: int  # arrival at the tail of its level


@dataclass
class Model:
    orders: dict[int, MOrder] = field(default_factory=dict)
    seq: int = 0
    # conservation, per live order and for the whole book
    submitted: dict[int, int] = field(default_factory=dict)
    filled: dict[int, int] = field(default_factory=dict)
    cancelled: dict[int, int] = field(default_factory=dict)
    total_submitted: int = 0
    total_taker: int = 0
    total_maker: int = 0
    total_cancelled: int = 0

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def best(self, side: int) -> int | None:
        prices = [o.ticks for o in self.orders.values() if o.side == side]
        if not prices:
            return None
        return max(prices) if side == 1 else min(prices)

    def head(self, side: int, ticks: int) -> int:
        return min(
            (o.seq, oid) for oid, o in self.orders.items() if o.side == side and o.ticks == ticks
        )[1]

    def expected_code(self, op: Op) -> int:
        if op.fault != OK:
            return op.fault
        oid = op.args[0]
        if op.method == "add":
            if oid in self.orders:
                return ERR_DUPLICATE_ID
            if op.ticks is None and self.best(-op.side) is None:
                return ERR_NO_LIQUIDITY
            return OK
        return OK if oid in self.orders else ERR_UNKNOWN_ID

    def _match(self, taker: int, side: int, qty: int, limit: int | None, fills: list) -> int:
        """Validate reported fills one by one; returns the taker's unfilled qty."""
        for f in fills:
            t_id, m_id, p, q = f
            assert t_id == taker, f
            best = self.best(-side)
            assert best is not None, f"fill {f} with the other side empty"
            if limit is not None:
                assert (best <= limit) if side == 1 else (best >= limit), (f, limit)
            assert p == best, f"fill {f} not at the best opposite price {best}"
            head = self.head(-side, best)
            assert m_id == head, f"fill {f}: FIFO head of level {best} is {head}"
            maker = self.orders[m_id]
            assert q == min(qty, maker.qty) and q > 0, (f, qty, maker.qty)
            qty -= q
            maker.qty -= q
            self.filled[m_id] += q
            self.filled[taker] = self.filled.get(taker, 0) + q
            self.total_taker += q
            self.total_maker += q
            if maker.qty == 0:
                self._retire(m_id)
        # matching stopped for a reason
        if qty > 0:
            best = self.best(-side)
            assert best is None or (
                limit is not None and ((best > limit) if side == 1 else (best < limit))
            ), f"taker {taker} stopped with {qty} left while {best} was marketable"
        return qty

    def _retire(self, oid: int) -> None:
        """An order left the book: its own books must balance."""
        assert self.submitted[oid] == self.filled[oid] + self.cancelled[oid], oid
        self.orders.pop(oid, None)  # a taker that never rested is not in orders
        for d in (self.submitted, self.filled, self.cancelled):
            del d[oid]

    def _enter(self, oid: int, side: int, qty: int, limit: int | None, ioc: bool, fills: list):
        """A taker enters (new order or re-priced order): match, then rest or cancel."""
        left = self._match(oid, side, qty, limit, fills)
        if left and limit is not None and not ioc:
            self.orders[oid] = MOrder(side, limit, left, self._next_seq())
        elif left:
            self.cancelled[oid] += left
            self.total_cancelled += left
        if oid not in self.orders:
            self._retire(oid)

    def apply(self, op: Op, result: Any) -> None:
        oid = op.args[0]
        if op.method == "add":
            self.submitted[oid], self.filled[oid], self.cancelled[oid] = op.qty, 0, 0
            self.total_submitted += op.qty
            self._enter(oid, op.side, op.qty, op.ticks, op.ioc or op.ticks is None, fkey(result))
        elif op.method == "cancel":
            o = self.orders[oid]
            assert result == o.qty, f"cancel returned {result}, expected {o.qty}"
            self.cancelled[oid] += o.qty
            self.total_cancelled += o.qty
            o.qty = 0
            self._retire(oid)
        else:  # modify
            o = self.orders[oid]
            new_qty = o.qty if op.qty is None else op.qty
            new_ticks = o.ticks if op.ticks is None else op.ticks
            delta = new_qty - o.qty
            if delta > 0:
                self.submitted[oid] += delta
                self.total_submitted += delta
            else:
                self.cancelled[oid] -= delta
                self.total_cancelled -= delta
            if new_ticks == o.ticks:
                assert result == [], result
                if delta > 0:
                    o.seq = self._next_seq()
                o.qty = new_qty
            else:
                del self.orders[oid]
                self._enter(oid, o.side, new_qty, new_ticks, False, fkey(result))

    def check_book(self, book: Any) -> None:
        """Everything the book shows agrees with the model; invariants."""
        assert len(book) == len(self.orders)
        levels: dict[tuple[int, int], list[tuple[int, int, int]]] = defaultdict(list)
        for oid, o in self.orders.items():
            levels[(o.side, o.ticks)].append((o.seq, oid, o.qty))
            assert self.submitted[oid] == o.qty + self.filled[oid] + self.cancelled[oid], oid
        for (side, ticks), queue in levels.items():
            queue.sort()
            ahead = 0
            for _, oid, qty in queue:
                got = book.get(oid)
                assert got is not None, oid
                assert (got[0], round(got[1] / TICK), got[2]) == (
                    "buy" if side == 1 else "sell",
                    ticks,
                    qty,
                ), (oid, got)
                assert book.queue_ahead(oid) == ahead, (oid, "queue_ahead")
                ahead += qty
        bid, ask = self.best(1), self.best(-1)
        if bid is not None and ask is not None:
            assert bid < ask, f"crossed at rest: {bid} >= {ask}"
        for side, best, got in ((1, bid, book.best_bid()), (-1, ask, book.best_ask())):
            exp = None if best is None else (best, sum(q for _, _, q in levels[(side, best)]))
            assert best_key(got, TICK) == exp, (side, got, exp)
        resting = {1: 0, -1: 0}
        for o in self.orders.values():
            resting[o.side] += o.qty
        assert book.resting_qty("buy") == resting[1] and book.resting_qty("sell") == resting[-1]
        assert book.levels("buy") == sum(1 for s, _ in levels if s == 1)
        assert book.levels("sell") == sum(1 for s, _ in levels if s == -1)
        # quantity conservation over the whole stream (each fill: once taker, once maker)
        assert self.total_submitted == (
            resting[1] + resting[-1] + self.total_taker + self.total_maker + self.total_cancelled
        )


# ============================================================================
# the runner
# ============================================================================
def run_stream(
    book: Any,
    oracle: ref.OrderBook | None,
    stream: list[int],
    chunk_seed: int,
    log: Callable[[str], None] = note,
) -> None:
    model = Model()
    ops: list[Op] = []
    codes: list[int] = []
    fills: list[tuple[int, ...]] = []
    fresh = FRESH0
    for x in stream:
        op = decode(x, model, fresh)
        if op is None:
            continue
        fresh += 1
        i = len(ops)
        ops.append(op)
        log(f"op {i}: {op}")
        code, res = call(book, op.method, *op.args, **op.kwargs)
        if oracle is not None:
            exp_code, exp_res = call(oracle, op.method, *op.args, **op.kwargs)
            assert code == exp_code, f"op {i} {op}: code {code}, oracle {exp_code}"
            if op.method == "cancel":
                assert res == exp_res, f"op {i} {op}: cancel returned {res}, oracle {exp_res}"
            elif code == OK:
                assert fkey(res) == fkey(exp_res), (
                    f"op {i} {op}: fills {fkey(res)} != {fkey(exp_res)}"
                )
        assert code == model.expected_code(op), f"op {i} {op}: code {code}"
        if code == OK:
            if op.method != "cancel":
                assert isinstance(res, list)
                check_fill_prices(res, TICK)
                fills += [(i, *k) for k in fkey(res)]
            model.apply(op, res)
        codes.append(code)
        model.check_book(book)
        if oracle is not None:
            assert_same_book(book, oracle, n=10, what=f"after op {i} {op}")

    # the same ops through apply, in random chunks, on a fresh book
    batch = type(book)(TICK)
    arr = np.array([op.row for op in ops], dtype=ref.OP_DTYPE)
    rng = random.Random(chunk_seed)
    got_codes: list[int] = []
    got_fills: list[tuple[int, ...]] = []
    lo = 0
    while lo < len(arr) or lo == 0:
        hi = min(len(arr), lo + rng.choice([1, 2, 5, 17, 64, 300]))
        r = batch.apply(arr[lo:hi])
        got_codes += np.asarray(r.codes).tolist()
        got_fills += batch_rows(r, lo)
        lo = hi
        if hi >= len(arr):
            break
    assert got_codes == codes, "apply codes differ from the per-call codes"
    assert got_fills == fills, "apply fills differ from the per-call fills"
    ids = list(range(1, POOL + 1))
    assert book_state(batch, ids) == book_state(book, ids), "apply: final book differs"


SETTINGS = dict(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@settings(max_examples=250, **SETTINGS)
@given(stream=STREAM, chunk_seed=CHUNK_SEED)
def test_compiled_matches_reference_on_random_streams(stream: list[int], chunk_seed: int) -> None:
    C = compiled_module()
    run_stream(C.OrderBook(TICK), ref.OrderBook(TICK), stream, chunk_seed)


@settings(max_examples=80, **SETTINGS)
@given(stream=STREAM, chunk_seed=CHUNK_SEED)
def test_reference_invariants_on_random_streams(stream: list[int], chunk_seed: int) -> None:
    run_stream(ref.OrderBook(TICK), None, stream, chunk_seed)


def test_stream_decoder_covers_everything() -> None:
    """The op mix of a long stream reaches every outcome (a check of the generator)."""
    rnd = random.Random(5)
    stream = [rnd.randrange(2**40) for _ in range(3000)]
    model = Model()
    book = ref.OrderBook(TICK)
    seen: dict[tuple[str, int], int] = defaultdict(int)
    n_fills = 0
    for i, x in enumerate(stream):
        op = decode(x, model, FRESH0 + i)
        if op is None:
            continue
        code, res = call(book, op.method, *op.args, **op.kwargs)
        seen[(op.method, code)] += 1
        if code == OK:
            if op.method != "cancel":
                n_fills += len(res)
            model.apply(op, res)
    for key in [
        ("add", OK),
        ("add", ERR_DUPLICATE_ID),
        ("add", ERR_BAD_QTY),
        ("add", ERR_BAD_PRICE),
        ("add", ERR_BAD_SIDE),
        ("cancel", OK),
        ("cancel", ERR_UNKNOWN_ID),
        ("modify", OK),
        ("modify", ERR_UNKNOWN_ID),
        ("modify", ERR_BAD_QTY),
        ("modify", ERR_BAD_PRICE),
    ]:
        assert seen[key] >= 5, (key, dict(seen))
    assert n_fills > 300
    assert len(book) > 5


@pytest.mark.parametrize("impl", ["reference", "compiled"])
def test_market_no_liquidity_in_stream(impl: str) -> None:
    """ERR_NO_LIQUIDITY through the stream runner (rare in random streams)."""
    M = ref if impl == "reference" else compiled_module()
    # market buy on an empty book, then a sell rests, then the market buy fills
    x_market_buy = 20
    x_limit_sell = 0 + 32 * (0 + POOL * 1)  # kind 0, pool id 1, side sell
    stream = [x_market_buy, x_limit_sell, x_market_buy]
    run_stream(M.OrderBook(TICK), None, stream, 0, log=lambda s: None)
