"""Pre-trade risk checks: the compiled checker, its limits and its reason codes.

The public face of :mod:`algoengine._ext.risk`. The engine keeps one :class:`RiskChecker` per
trading account, feeds it the state it needs (fills, working orders, portfolio Greeks, daily
P&L, kill switch, session) and asks it about every new order before the order manager sends
it. A check never raises for an order: it returns a :class:`RiskReason` code (``OK`` = 0),
which becomes an ``OrderDenied`` event (STYLE.md item 9).

Units
-----
Prices and values are integer paise, quantities integer units (not lots), times UTC epoch
nanoseconds. ``side`` is +1 (buy) or -1 (sell) (:attr:`algoengine.domain.orders.Side.sign`).
Greeks are the engine's: ``delta_per_unit`` / ``vega_per_unit`` are one unit's delta and vega
(:mod:`algoengine.greeks`: vega per 1.0 of volatility), and the portfolio totals it sets with
``set_portfolio_greeks`` are sums of per-unit Greeks times signed units in the same units. An
order's contribution is ``greek_per_unit * side * qty``.

The checks, in the order they run (the first failing one is reported)
--------------------------------------------------------------------
1. ``KILL_SWITCH``: the kill switch is on and the order is not marked ``square_off=True``.
2. ``MARKET_CLOSED``: ``enforce_market_hours`` and not ``open_ns <= ts_ns < close_ns`` of the
   session set for the day with ``set_session`` (none set yet: every order is outside).
3. ``QTY_NOT_POSITIVE``: ``qty <= 0``.
4. ``QTY_NOT_LOT_MULTIPLE``: ``qty % lot_size != 0``.
5. ``PRICE_OFF_TICK``: a limit order's price is negative or not a multiple of ``tick_paise``.
   A market order passes ``price_paise == 0``.
6. ``MAX_LOTS_PER_ORDER``: ``qty / lot_size > max_lots_per_order``.
7. ``SQUARE_OFF_NOT_REDUCING``: a ``square_off`` order that is not *reducing* (below). The
   kill-switch bypass cannot open or reverse a position.
8. ``DAILY_LOSS_LIMIT``: the daily P&L set by the engine is ``<= -max_daily_loss_paise`` and
   the order is not reducing.
9. ``PRICE_BAND``: a limit order with ``|price - ref| * 10_000 > price_band_bps * ref``.
   No reference price yet (``ref_price_paise == 0``): passes. Market orders: not checked.
10. ``MAX_OPEN_ORDERS``: ``max_open_orders`` orders are already working.
11. ``MAX_ORDER_VALUE``: ``qty * price > max_order_value_paise``, with the reference price for
    a market order (no reference price: value 0, passes; the engine should not send market
    orders without a quote).
12. ``MAX_LOTS_PER_INSTRUMENT``: a non-reducing order with
    ``|position + side * (open qty of that side + qty)| / lot_size > max_lots_per_instrument``.
13. ``MAX_DELTA``: ``|delta + delta_per_unit * side * qty| > max_abs_delta`` **and** larger than
    ``|delta|`` before the order: an order that lowers the portfolio's exposure always passes,
    even above the limit (the way out must never be blocked).
14. ``MAX_VEGA``: the same for vega.
15. ``RATE_LIMIT``: ``max_orders_per_second`` orders were accepted within the last second:
    the order at ``ts_ns`` is refused when the accepted order ``max_orders_per_second`` places
    back has ``ts_ns - t < 1 s``. At most that many accepted orders fall in any half-open
    one-second window. Timestamps should not go backwards (an earlier one is refused while
    the window is full).

*Reducing*: against the position (a sell when long, a buy when short) and, together with
the working orders on the same side, not past flat: ``side * position < 0`` and
``open qty of that side + qty <= |position|``.

``square_off=True`` (set by the engine for kill-switch and end-of-day square-offs) passes the
kill switch and skips the exposure limits: daily loss, order value, lots per instrument,
delta and vega. It still needs market hours, a valid qty and price, ``max_lots_per_order``
(slice it, as for the exchange's freeze quantity), the price band, ``max_open_orders`` (cancel
the working orders first) and the rate limit (a regulatory limit), and it must be reducing.

State and the engine's calls
----------------------------
``RiskChecker(limits, n_instruments)`` keeps per instrument (by universe index ``idx``) the
signed position and the open buy / sell quantity of working orders, plus the number of working
orders, the portfolio delta and vega, the daily P&L, the kill switch, the session and the
rate window. The engine calls:

- ``check(idx, side, qty, price_paise, ref_price_paise, lot_size, tick_paise, delta_per_unit,
  vega_per_unit, ts_ns, square_off=False) -> int``: the reason code. **A passed check counts
  as sent**: the order is recorded in the rate window at once. Nothing else changes.
- ``on_order_open(idx, side, qty)`` when the order is working, ``on_fill(idx, signed_qty)`` for
  each fill of a working order (position moves, the open qty of its side shrinks),
  ``on_order_done(idx, side, remaining_qty)`` when it ends (filled: 0; cancelled, rejected or
  expired: what was left); a modification is ``on_order_done`` + ``on_order_open``.
- ``set_position(idx, qty)`` for positions no working order explains (start of day,
  reconciliation, exercise and assignment).
- ``set_portfolio_greeks(delta, vega)``, ``set_daily_pnl(paise)``, ``set_kill_switch(on)``,
  ``set_session(open_ns, close_ns)`` as they change; ``reset_day()`` at the start of a day
  (daily P&L to 0 and the rate window emptied; positions, working orders, Greeks, the kill
  switch and the session are kept: the session must be set for the new day).

Batch: ``check_batch(...)`` takes the same arguments as numpy arrays (or scalars applied to
every order) and returns int8 codes, in one call with a nogil loop. Orders are checked in
sequence and each accepted one is recorded in the rate window (kept) and, for the rest of the
batch only, counts as working (open-order count, open qty of its side) with its delta and vega
added to the portfolio (undone at the end), exactly as if the engine had called
``on_order_open`` and added its Greeks after each accepted order. Multi-leg entries (a
straddle's two legs) are checked together this way. A call has a fixed cost of about 1.5 us
(argument conversion), so below a few dozen orders ``check`` per order is cheaper; columns
that are already C-contiguous int64 / float64 / bool arrays are used in place.

Bad input
---------
Limits are validated when built (:class:`RiskLimits`; the checker checks them again) and bad
values raise :class:`~algoengine.errors.ValidationError` naming the field. The engine-supplied
arguments of a check (``idx`` in range, ``side`` +-1, ``lot_size`` in [1, 10**6],
``tick_paise`` in [1, 10**12], ``ref_price_paise`` in [0, 10**12], finite Greeks, ``ts_ns``
>= 0) raise ValidationError too (in a batch, naming the row; the checker is then as before the
call). The order's own ``qty`` and ``price_paise`` never raise: any int64 gets a reason code.
Integer arguments take Python or numpy integers; a float, a bool or a value outside int64
raises ValidationError (a float quantity is never truncated). State updates that contradict
the state (a fill larger than the open qty of its side, an order done when none is working)
raise ValidationError and change nothing.

Threads: one checker belongs to the engine's event loop. ``check_batch`` releases the GIL;
do not use the same checker from two threads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from algoengine._ext import load as _load
from algoengine.errors import ValidationError

_k = _load("risk")

if TYPE_CHECKING:  # the stub's types for the engine's code
    from algoengine._ext.risk import RiskChecker
else:
    RiskChecker = _k.RiskChecker

__all__ = ["RiskChecker", "RiskLimits", "RiskReason", "describe"]


class RiskReason(IntEnum):
    """Why a check refused an order (``OK`` = 0 passes). Values are the kernel's codes, in the
    order the checks run."""

    OK = _k.OK
    KILL_SWITCH = _k.KILL_SWITCH
    MARKET_CLOSED = _k.MARKET_CLOSED
    QTY_NOT_POSITIVE = _k.QTY_NOT_POSITIVE
    QTY_NOT_LOT_MULTIPLE = _k.QTY_NOT_LOT_MULTIPLE
    PRICE_OFF_TICK = _k.PRICE_OFF_TICK
    MAX_LOTS_PER_ORDER = _k.MAX_LOTS_PER_ORDER
    SQUARE_OFF_NOT_REDUCING = _k.SQUARE_OFF_NOT_REDUCING
    DAILY_LOSS_LIMIT = _k.DAILY_LOSS_LIMIT
    PRICE_BAND = _k.PRICE_BAND
    MAX_OPEN_ORDERS = _k.MAX_OPEN_ORDERS
    MAX_ORDER_VALUE = _k.MAX_ORDER_VALUE
    MAX_LOTS_PER_INSTRUMENT = _k.MAX_LOTS_PER_INSTRUMENT
    MAX_DELTA = _k.MAX_DELTA
    MAX_VEGA = _k.MAX_VEGA
    RATE_LIMIT = _k.RATE_LIMIT

    @property
    def message(self) -> str:
        """One line saying what the rule is (no values: see :func:`describe`)."""
        return _MESSAGES[self]


_MESSAGES: dict[RiskReason, str] = {
    RiskReason.OK: "passed every check",
    RiskReason.KILL_SWITCH: "kill switch is on: only square-off orders pass",
    RiskReason.MARKET_CLOSED: "outside the trading session",
    RiskReason.QTY_NOT_POSITIVE: "qty must be positive",
    RiskReason.QTY_NOT_LOT_MULTIPLE: "qty must be a multiple of the lot size",
    RiskReason.PRICE_OFF_TICK: "limit price must be positive and on the tick grid",
    RiskReason.MAX_LOTS_PER_ORDER: "more lots than max_lots_per_order",
    RiskReason.SQUARE_OFF_NOT_REDUCING: "a square-off order must reduce the position, "
    "without reversing it",
    RiskReason.DAILY_LOSS_LIMIT: "daily loss limit reached: only reducing orders pass",
    RiskReason.PRICE_BAND: "limit price outside the band around the reference price",
    RiskReason.MAX_OPEN_ORDERS: "max_open_orders orders are already working",
    RiskReason.MAX_ORDER_VALUE: "order value above max_order_value_paise",
    RiskReason.MAX_LOTS_PER_INSTRUMENT: "position + working orders + order above "
    "max_lots_per_instrument",
    RiskReason.MAX_DELTA: "portfolio |delta| would exceed max_abs_delta",
    RiskReason.MAX_VEGA: "portfolio |vega| would exceed max_abs_vega",
    RiskReason.RATE_LIMIT: "max_orders_per_second orders already accepted in the last second",
}

_INT_LIMITS: dict[str, tuple[int, int]] = {
    "max_lots_per_order": (1, _k.MAX_LOTS),
    "max_lots_per_instrument": (1, _k.MAX_LOTS),
    "max_order_value_paise": (1, _k.MAX_PAISE),
    "price_band_bps": (0, _k.MAX_BAND_BPS),
    "max_open_orders": (1, _k.MAX_OPEN_ORDERS_LIMIT),
    "max_orders_per_second": (1, _k.MAX_ORDERS_PER_SECOND_LIMIT),
    "max_daily_loss_paise": (1, _k.MAX_PAISE),
}


@dataclass(frozen=True, kw_only=True, slots=True)
class RiskLimits:
    """The limits of a :class:`RiskChecker`.

    The defaults suit a retail premium seller on NIFTY / BANKNIFTY weekly options with about
    Rs 5-10 lakh of margin: a few lots per order and per strike, a daily stop at Rs 25,000.

    Parameters
    ----------
    max_lots_per_order
        Lots in one order (default 10: 750 NIFTY units at a lot of 75, under the exchange's
        freeze quantity). In [1, 10**6].
    max_lots_per_instrument
        Lots of |position + same-side working orders + order| in one contract, checked for
        orders that are not reducing (default 20). In [1, 10**6].
    max_order_value_paise
        ``qty * price`` (market orders: the reference price) of one order, paise (default
        Rs 5,00,000 = 50_000_000). In [1, 10**18].
    price_band_bps
        Limit prices must lie within this many basis points of the reference price (default
        2000: 20 %, the paper exchange's default band; weekly options move fast). 0: only the
        reference price itself. In [0, 100_000].
    max_open_orders
        Working orders at once (default 20). In [1, 10**6].
    max_abs_delta
        Portfolio |delta| after the order, in underlying units (sum of per-unit delta x signed
        units; default 300.0: Rs 300 per index point, four NIFTY futures lots). ``math.inf``:
        no limit.
    max_abs_vega
        Portfolio |vega| after the order, rupees per 1.0 of volatility (default 2_000_000.0:
        Rs 20,000 per volatility point). ``math.inf``: no limit.
    max_orders_per_second
        Accepted orders in any one-second window (default 10: SEBI's threshold for retail
        algorithmic orders per exchange segment). In [1, 100_000].
    max_daily_loss_paise
        Daily mark-to-market loss at which only reducing orders pass, paise (default
        Rs 25,000 = 2_500_000). In [1, 10**18].
    enforce_market_hours
        Refuse orders outside the session set with ``set_session`` (default True).
    """

    max_lots_per_order: int = 10
    max_lots_per_instrument: int = 20
    max_order_value_paise: int = 50_000_000
    price_band_bps: int = 2_000
    max_open_orders: int = 20
    max_abs_delta: float = 300.0
    max_abs_vega: float = 2_000_000.0
    max_orders_per_second: int = 10
    max_daily_loss_paise: int = 2_500_000
    enforce_market_hours: bool = True

    def __post_init__(self) -> None:
        for name, (lo, hi) in _INT_LIMITS.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValidationError(name, value, "must be an integer")
            if not lo <= value <= hi:
                raise ValidationError(name, value, f"must be in [{lo}, {hi}]")
        for name in ("max_abs_delta", "max_abs_vega"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ValidationError(name, value, "must be a number")
            if math.isnan(value) or value < 0:
                raise ValidationError(name, value, "must be >= 0 (math.inf: no limit)")
            object.__setattr__(self, name, float(value))
        if not isinstance(self.enforce_market_hours, bool):
            raise ValidationError("enforce_market_hours", self.enforce_market_hours, "a bool")


def describe(
    code: int,
    checker: Any,
    *,
    idx: int,
    side: int,
    qty: int,
    price_paise: int,
    ref_price_paise: int,
    lot_size: int,
    tick_paise: int,
    delta_per_unit: float,
    vega_per_unit: float,
    ts_ns: int,
    square_off: bool = False,
) -> str:
    """Say why ``checker`` gave ``code`` for this order, naming the limit and the values.

    Call it right after the check that refused the order (a refused check changes nothing,
    so the checker still holds the state the check saw). For logs and ``OrderDenied`` events;
    never on the hot path.

    Parameters
    ----------
    code
        The reason code returned by ``check`` (or an entry of ``check_batch``'s codes; then
        the state seen by that order included the batch's earlier accepted orders).
    checker
        The :class:`RiskChecker` (or the reference checker of the tests).
    idx, side, qty, price_paise, ref_price_paise, lot_size, tick_paise, delta_per_unit,
    vega_per_unit, ts_ns, square_off
        The order, as passed to ``check``.

    Returns
    -------
    str
        ``"<REASON>: <rule> (<values>)"``.
    """
    reason = RiskReason(code)
    lim: RiskLimits = checker.limits
    pos = checker.position(idx)
    open_same = checker.open_qty(idx, side)
    lots = qty / lot_size if lot_size else float("nan")
    detail: str
    if reason is RiskReason.OK:
        detail = f"{qty} units ({lots:g} lots) at {price_paise} paise"
    elif reason is RiskReason.KILL_SWITCH:
        detail = "kill switch engaged"
    elif reason is RiskReason.MARKET_CLOSED:
        o, c = checker.session
        detail = f"ts_ns {ts_ns} not in session [{o}, {c})" if c else "no session set for today"
    elif reason is RiskReason.QTY_NOT_POSITIVE:
        detail = f"qty {qty}"
    elif reason is RiskReason.QTY_NOT_LOT_MULTIPLE:
        detail = f"qty {qty} is not a multiple of lot size {lot_size}"
    elif reason is RiskReason.PRICE_OFF_TICK:
        detail = f"price {price_paise} paise, tick {tick_paise} paise"
    elif reason is RiskReason.MAX_LOTS_PER_ORDER:
        detail = f"{lots:g} lots > max_lots_per_order {lim.max_lots_per_order}"
    elif reason is RiskReason.SQUARE_OFF_NOT_REDUCING:
        detail = f"side {side:+d}, qty {qty}, position {pos}, working same-side qty {open_same}"
    elif reason is RiskReason.DAILY_LOSS_LIMIT:
        detail = (
            f"daily P&L {checker.daily_pnl_paise} paise <= -max_daily_loss_paise "
            f"{lim.max_daily_loss_paise}; the order is not reducing (position {pos})"
        )
    elif reason is RiskReason.PRICE_BAND:
        dev = abs(price_paise - ref_price_paise) * 10_000 / ref_price_paise
        detail = (
            f"price {price_paise} paise is {dev:.1f} bps from reference {ref_price_paise} "
            f"> price_band_bps {lim.price_band_bps}"
        )
    elif reason is RiskReason.MAX_OPEN_ORDERS:
        detail = f"{checker.open_orders} working >= max_open_orders {lim.max_open_orders}"
    elif reason is RiskReason.MAX_ORDER_VALUE:
        px = price_paise if price_paise > 0 else ref_price_paise
        detail = (
            f"qty {qty} x {px} paise = {qty * px} paise > max_order_value_paise "
            f"{lim.max_order_value_paise}"
        )
    elif reason is RiskReason.MAX_LOTS_PER_INSTRUMENT:
        after = abs(pos + side * (open_same + qty))
        detail = (
            f"|position {pos} + {side:+d} x (working {open_same} + order {qty})| = {after} "
            f"units = {after / lot_size:g} lots > max_lots_per_instrument "
            f"{lim.max_lots_per_instrument}"
        )
    elif reason is RiskReason.MAX_DELTA:
        before = checker.portfolio_delta
        after_d = before + delta_per_unit * float(side * qty)
        detail = (
            f"|delta| {abs(before):g} -> {abs(after_d):g} > max_abs_delta {lim.max_abs_delta:g}"
        )
    elif reason is RiskReason.MAX_VEGA:
        before = checker.portfolio_vega
        after_v = before + vega_per_unit * float(side * qty)
        detail = f"|vega| {abs(before):g} -> {abs(after_v):g} > max_abs_vega {lim.max_abs_vega:g}"
    else:  # RATE_LIMIT
        n = checker.orders_in_window(ts_ns)
        detail = (
            f"{n} orders accepted in the second before {ts_ns} >= max_orders_per_second "
            f"{lim.max_orders_per_second}"
        )
    return f"{reason.name}: {reason.message} ({detail})"
