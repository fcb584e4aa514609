"""Pure-Python reference implementation (test oracle and benchmark baseline) of the risk checks.

Implements the rules of :mod:`algoengine.risk` (the face's docstring is the specification)
with the same API as the compiled ``RiskChecker``: plain lists for positions and open
quantities, a deque for the rate window, and Python's exact integers for every comparison,
written straight from the rules (``qty * price > limit``, ``|p - ref| * 10_000 > bps * ref``)
where the compiled kernel detects overflow or divides to stay inside int64. Float arithmetic
on the Greeks is the same sequence of IEEE operations as the kernel's
(``delta + dpu * float(side * qty)``), so results agree exactly.

Validation is only what the tests compare: the state updates raise ValidationError on the
same contradictions as the compiled checker (fill larger than the open qty, order done with
none working, remaining larger than the open qty), naming the same field. Engine-supplied
check arguments are asserted, not validated.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from algoengine.errors import ValidationError
from algoengine.risk import RiskLimits, RiskReason

__all__ = ["RiskChecker"]

NS_PER_S = 1_000_000_000


class RiskChecker:
    """Reference checker: same constructor, methods, properties and codes as the compiled one."""

    def __init__(self, limits: RiskLimits, n_instruments: int) -> None:
        self.limits = limits
        self.n_instruments = n_instruments
        self._pos = [0] * n_instruments
        self._open_buy = [0] * n_instruments
        self._open_sell = [0] * n_instruments
        self._open_count = 0
        self._delta = 0.0
        self._vega = 0.0
        self._pnl = 0
        self._kill = False
        self._session = (0, 0)
        self._accepted: deque[int] = deque(maxlen=limits.max_orders_per_second)

    # -- checks -------------------------------------------------------------------------------

    def _open_of(self, idx: int, side: int) -> int:
        return self._open_buy[idx] if side > 0 else self._open_sell[idx]

    def _reducing(self, idx: int, side: int, qty: int) -> bool:
        pos = self._pos[idx]
        return side * pos < 0 and self._open_of(idx, side) + qty <= abs(pos)

    def evaluate(
        self,
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
    ) -> RiskReason:
        """The reason code of an order; changes nothing."""
        assert 0 <= idx < self.n_instruments and side in (1, -1)
        assert lot_size >= 1 and tick_paise >= 1 and ref_price_paise >= 0 and ts_ns >= 0
        assert math.isfinite(delta_per_unit) and math.isfinite(vega_per_unit)
        lim = self.limits
        if self._kill and not square_off:
            return RiskReason.KILL_SWITCH
        open_ns, close_ns = self._session
        if lim.enforce_market_hours and not open_ns <= ts_ns < close_ns:
            return RiskReason.MARKET_CLOSED
        if qty <= 0:
            return RiskReason.QTY_NOT_POSITIVE
        if qty % lot_size:
            return RiskReason.QTY_NOT_LOT_MULTIPLE
        if price_paise < 0 or price_paise % tick_paise:
            return RiskReason.PRICE_OFF_TICK
        if qty > lim.max_lots_per_order * lot_size:
            return RiskReason.MAX_LOTS_PER_ORDER
        reducing = self._reducing(idx, side, qty)
        if square_off and not reducing:
            return RiskReason.SQUARE_OFF_NOT_REDUCING
        if not reducing and self._pnl <= -lim.max_daily_loss_paise:
            return RiskReason.DAILY_LOSS_LIMIT
        if (
            price_paise > 0
            and ref_price_paise > 0
            and abs(price_paise - ref_price_paise) * 10_000 > lim.price_band_bps * ref_price_paise
        ):
            return RiskReason.PRICE_BAND
        if self._open_count >= lim.max_open_orders:
            return RiskReason.MAX_OPEN_ORDERS
        if not square_off:
            px = price_paise if price_paise > 0 else ref_price_paise
            if qty * px > lim.max_order_value_paise:
                return RiskReason.MAX_ORDER_VALUE
            if not reducing:
                after = self._pos[idx] + side * (self._open_of(idx, side) + qty)
                if abs(after) > lim.max_lots_per_instrument * lot_size:
                    return RiskReason.MAX_LOTS_PER_INSTRUMENT
            d = self._delta + delta_per_unit * float(side * qty)
            if abs(d) > lim.max_abs_delta and abs(d) > abs(self._delta):
                return RiskReason.MAX_DELTA
            v = self._vega + vega_per_unit * float(side * qty)
            if abs(v) > lim.max_abs_vega and abs(v) > abs(self._vega):
                return RiskReason.MAX_VEGA
        window = self._accepted
        if len(window) == window.maxlen and ts_ns - window[0] < NS_PER_S:
            return RiskReason.RATE_LIMIT
        return RiskReason.OK

    def check(
        self,
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
    ) -> int:
        """The reason code; a passed check is recorded in the rate window."""
        code = self.evaluate(
            idx,
            side,
            qty,
            price_paise,
            ref_price_paise,
            lot_size,
            tick_paise,
            delta_per_unit,
            vega_per_unit,
            ts_ns,
            square_off,
        )
        if code == RiskReason.OK:
            self._accepted.append(ts_ns)
        return int(code)

    def check_batch(
        self,
        idx: Any,
        side: Any,
        qty: Any,
        price_paise: Any,
        ref_price_paise: Any,
        lot_size: Any,
        tick_paise: Any,
        delta_per_unit: Any,
        vega_per_unit: Any,
        ts_ns: Any,
        square_off: Any = None,
    ) -> np.ndarray:
        """Sequential checks; each accepted order is working (and its Greeks added) for the
        rest of the batch only, then those tentative effects are undone."""
        cols = [idx, side, qty, price_paise, ref_price_paise, lot_size, tick_paise, ts_ns]
        fcols = [delta_per_unit, vega_per_unit]
        sq = False if square_off is None else square_off
        n = max([np.size(c) for c in [*cols, *fcols, sq] if np.ndim(c) == 1] or [1])

        def at(c: Any, i: int) -> Any:
            return c[i] if np.ndim(c) == 1 else c

        saved = (
            list(self._open_buy),
            list(self._open_sell),
            self._open_count,
            self._delta,
            self._vega,
        )
        codes = np.empty(n, dtype=np.int8)
        for i in range(n):
            ix, s, q, p, r, lot, tick, ts = (int(at(c, i)) for c in cols)
            dpu, vpu = (float(at(c, i)) for c in fcols)
            code = self.check(ix, s, q, p, r, lot, tick, dpu, vpu, ts, bool(at(sq, i)))
            codes[i] = code
            if code == RiskReason.OK:
                self.on_order_open(ix, s, q)
                self._delta = self._delta + dpu * float(s * q)
                self._vega = self._vega + vpu * float(s * q)
        self._open_buy, self._open_sell, self._open_count, self._delta, self._vega = saved
        return codes

    # -- state updates ------------------------------------------------------------------------

    def on_fill(self, idx: int, signed_qty: int) -> None:
        if signed_qty == 0:
            raise ValidationError("signed_qty", signed_qty, "must not be 0")
        side = 1 if signed_qty > 0 else -1
        if abs(signed_qty) > self._open_of(idx, side):
            raise ValidationError("signed_qty", signed_qty, "exceeds the open qty")
        self._pos[idx] += signed_qty
        if side > 0:
            self._open_buy[idx] -= signed_qty
        else:
            self._open_sell[idx] += signed_qty

    def set_position(self, idx: int, qty: int) -> None:
        self._pos[idx] = qty

    def on_order_open(self, idx: int, side: int, qty: int) -> None:
        if side > 0:
            self._open_buy[idx] += qty
        else:
            self._open_sell[idx] += qty
        self._open_count += 1

    def on_order_done(self, idx: int, side: int, remaining_qty: int) -> None:
        if self._open_count == 0:
            raise ValidationError("idx", idx, "no working order is open")
        if remaining_qty > self._open_of(idx, side):
            raise ValidationError("remaining_qty", remaining_qty, "exceeds the open qty")
        if side > 0:
            self._open_buy[idx] -= remaining_qty
        else:
            self._open_sell[idx] -= remaining_qty
        self._open_count -= 1

    def set_portfolio_greeks(self, delta: float, vega: float) -> None:
        self._delta = float(delta)
        self._vega = float(vega)

    def set_daily_pnl(self, paise: int) -> None:
        self._pnl = paise

    def set_kill_switch(self, on: bool) -> None:
        self._kill = on

    def set_session(self, open_ns: int, close_ns: int) -> None:
        self._session = (open_ns, close_ns)

    def reset_day(self) -> None:
        self._pnl = 0
        self._accepted.clear()

    # -- queries ------------------------------------------------------------------------------

    def position(self, idx: int) -> int:
        return self._pos[idx]

    def open_qty(self, idx: int, side: int) -> int:
        return self._open_of(idx, side)

    def positions(self) -> np.ndarray:
        return np.array(self._pos, dtype=np.int64)

    def orders_in_window(self, ts_ns: int) -> int:
        return sum(1 for t in self._accepted if ts_ns - t < NS_PER_S)

    @property
    def open_orders(self) -> int:
        return self._open_count

    @property
    def portfolio_delta(self) -> float:
        return self._delta

    @property
    def portfolio_vega(self) -> float:
        return self._vega

    @property
    def daily_pnl_paise(self) -> int:
        return self._pnl

    @property
    def kill_switch(self) -> bool:
        return self._kill

    @property
    def session(self) -> tuple[int, int]:
        return self._session
