"""The engine's risk engine: the compiled pre-trade checks fed with the engine's state.

:class:`RiskEngine` adapts :class:`algoengine.risk.RiskChecker` to the OMS's pre-trade check
and to the engine's notifications. It keeps the checker's picture of the book exact: an order
counts as working from the venue's acceptance until its terminal event, fills move the
position, settlement sets it outright; the engine gives it the day's P&L, the portfolio's
delta and vega, the kill switch and each day's session.

Per order it supplies what the kernel needs: the reference price (the instrument's mid, or its
last price), and for options the delta and vega per unit at the current quote (implied
volatility from the mid, then the Greeks: both from the compiled kernels). A refusal becomes
``(reason name, text naming the limit and the values)``, which the OMS turns into an
``OrderDenied`` event.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from algoengine.domain.instruments import InstrumentKind
from algoengine.domain.orders import OrderType, Side
from algoengine.engine.oms import ManagedOrder
from algoengine.risk import RiskChecker, RiskLimits, RiskReason, describe

__all__ = ["RiskEngine"]


class RiskEngine:
    """Pre-trade risk for one engine (see the module docstring).

    Parameters
    ----------
    limits
        The limits.
    n_instruments
        The universe's size.
    reference_price
        ``idx -> paise``: the price limits and bands are measured against (0: none yet).
    greeks_per_unit
        ``idx -> (delta, vega)`` per unit for options (0, 0 for anything else).
    session
        ``day -> (open_ns, close_ns)`` of the day's continuous session.
    """

    def __init__(
        self,
        limits: RiskLimits,
        n_instruments: int,
        *,
        reference_price: Callable[[int], int],
        greeks_per_unit: Callable[[int], tuple[float, float]],
        session: Callable[[date], tuple[int, int]],
    ) -> None:
        self.limits = limits
        self.checker = RiskChecker(limits, n_instruments)
        self._ref = reference_price
        self._greeks = greeks_per_unit
        self._session = session
        self._working: set[str] = set()  # client ids the checker counts as working
        self.denied = 0

    # ---- the OMS's pre-trade check -------------------------------------------------------

    def check(self, order: ManagedOrder, ts_ns: int) -> tuple[str, str] | None:
        inst = order.instrument
        side = 1 if order.side is Side.BUY else -1
        price = order.price_paise if order.order_type.has_limit_price else 0
        if order.order_type is OrderType.STOPLOSS_MARKET:
            price = 0
        ref = self._ref(order.idx)
        if inst.kind is InstrumentKind.OPTION:
            dpu, vpu = self._greeks(order.idx)
        elif inst.kind is InstrumentKind.FUTURE:
            dpu, vpu = 1.0, 0.0
        else:
            dpu, vpu = 0.0, 0.0
        code = self.checker.check(
            order.idx,
            side,
            order.qty,
            price or 0,
            ref,
            inst.lot_size,
            inst.tick_paise,
            dpu,
            vpu,
            ts_ns,
            order.square_off,
        )
        if code == 0:
            return None
        self.denied += 1
        args: dict[str, Any] = {
            "idx": order.idx,
            "side": side,
            "qty": order.qty,
            "price_paise": price or 0,
            "ref_price_paise": ref,
            "lot_size": inst.lot_size,
            "tick_paise": inst.tick_paise,
            "delta_per_unit": dpu,
            "vega_per_unit": vpu,
            "ts_ns": ts_ns,
            "square_off": order.square_off,
        }
        return RiskReason(code).name, describe(code, self.checker, **args)

    # ---- what the engine tells it ----------------------------------------------------------

    def start_day(self, day: date) -> None:
        self.checker.reset_day()
        open_ns, close_ns = self._session(day)
        self.checker.set_session(open_ns, close_ns)

    def on_order_open(self, idx: int, side: Side, qty: int, client_order_id: str = "") -> None:
        if qty > 0:
            self.checker.on_order_open(idx, 1 if side is Side.BUY else -1, qty)
            self._working.add(client_order_id)

    def on_order_done(
        self, idx: int, side: Side, remaining_qty: int, client_order_id: str = ""
    ) -> None:
        if client_order_id in self._working:
            self._working.discard(client_order_id)
            self.checker.on_order_done(idx, 1 if side is Side.BUY else -1, remaining_qty)

    def on_fill(self, idx: int, signed_qty: int, client_order_id: str = "") -> None:
        if client_order_id and client_order_id in self._working:
            self.checker.on_fill(idx, signed_qty)
        else:  # a fill the checker never saw working (settlement, a fill before acceptance)
            self.checker.set_position(idx, int(self.checker.position(idx)) + signed_qty)

    def set_daily_pnl(self, paise: int) -> None:
        self.checker.set_daily_pnl(paise)

    def set_portfolio_greeks(self, delta: float, vega: float) -> None:
        self.checker.set_portfolio_greeks(delta, vega)

    def set_kill_switch(self, on: bool) -> None:
        self.checker.set_kill_switch(on)
