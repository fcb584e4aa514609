"""The Strategy API: what a strategy implements and what it may ask of the engine.

A strategy is a class with callbacks; the engine calls them from its one event loop, so a
strategy never needs a lock. Everything it does goes through its :class:`StrategyContext`:
orders go through the risk engine and the OMS, time is the engine's clock (simulated in a
backtest), and market data is what the feed has shown so far. The same strategy code runs in
backtest, paper and live mode.

An exception raised by a callback is caught by the engine, logged with the strategy id and
counted; it never stops the engine (see ``Engine``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Protocol

from algoengine.domain.events import OrderEvent, OrderFillEvent
from algoengine.domain.market_data import Bar, MarketSlice, Universe
from algoengine.domain.orders import OrderType, Side, TimeInForce

if TYPE_CHECKING:
    from algoengine.engine.oms import ManagedOrder
    from algoengine.engine.portfolio import PnL, Position

__all__ = ["Strategy", "StrategyContext"]


class StrategyContext(Protocol):
    """The engine, as one strategy sees it."""

    strategy_id: str
    universe: Universe

    def now_ns(self) -> int:
        """Engine time (UTC epoch ns)."""
        ...

    def today(self) -> date:
        """The IST trading date of ``now_ns``."""
        ...

    def ltp_paise(self, idx: int) -> int:
        """Last traded price of an instrument (0 if none yet)."""
        ...

    def mid_paise(self, idx: int) -> int:
        """Mid of the best bid and ask, or the last price if one side is missing (0: none)."""
        ...

    def bid_ask_paise(self, idx: int) -> tuple[int, int]:
        """Best bid and ask (0 where a side is empty)."""
        ...

    def spot_paise(self, underlying: str) -> int:
        """The underlying index's last value (0 before the first quote)."""
        ...

    def chain(self, underlying: str, expiry: date) -> object:
        """The option chain view of one expiry (IVs, Greeks, ATM, strike by delta/premium)."""
        ...

    def expiries(self, underlying: str) -> list[date]:
        """Expiries quoted today (nearest first)."""
        ...

    def years_to_expiry(self, expiry: date) -> float:
        """Time to the expiry's close in trading years."""
        ...

    def greeks_of(self, idx: Sequence[int]) -> tuple[list[float], list[float], list[float]]:
        """(delta, vega, iv) per unit of the given options at the current quotes."""
        ...

    def position(self, idx: int) -> Position | None:
        """This strategy's position in an instrument."""
        ...

    def positions(self) -> list[Position]:
        """This strategy's open positions."""
        ...

    def pnl(self) -> PnL:
        """This strategy's P&L."""
        ...

    def place(
        self,
        idx: int,
        side: Side,
        qty: int,
        order_type: OrderType = OrderType.MARKET,
        *,
        price_paise: int | None = None,
        trigger_price_paise: int | None = None,
        tif: TimeInForce = TimeInForce.DAY,
        tag: str = "",
        square_off: bool = False,
    ) -> list[str]:
        """Send an order (units, not lots); returns the client order ids of its slices."""
        ...

    def cancel(self, client_order_id: str) -> bool: ...

    def modify(
        self,
        client_order_id: str,
        *,
        qty: int | None = None,
        price_paise: int | None = None,
        trigger_price_paise: int | None = None,
    ) -> bool: ...

    def cancel_all(self) -> int: ...

    def link_oco(self, first_id: str, second_id: str) -> None: ...

    def order(self, client_order_id: str) -> ManagedOrder | None: ...

    def open_orders(self) -> list[ManagedOrder]: ...

    def orders(self) -> list[ManagedOrder]:
        """Every order of this strategy the OMS knows (finished ones too), oldest first."""
        ...

    def set_timer(self, at_ns: int, name: str) -> None:
        """Call ``on_timer(ctx, name)`` at ``at_ns`` (engine time)."""
        ...

    def square_off(self, reason: str) -> None:
        """Cancel this strategy's orders and close its positions (shorts bought back before
        longs are sold)."""
        ...

    def stop(self, reason: str) -> None:
        """Stop this strategy: its open orders are cancelled, ``on_stop`` is called."""
        ...


class Strategy:
    """Base class of strategies: override what you need. ``strategy_id`` names it in orders,
    logs and the journal."""

    def __init__(self, strategy_id: str) -> None:
        self.strategy_id = strategy_id

    def on_start(self, ctx: StrategyContext) -> None:
        """Once, before the first market data."""

    def on_recover(self, ctx: StrategyContext) -> None:
        """Once, after ``on_start``, when the engine took over a crashed run: rebuild the
        strategy's own state from ``ctx.positions()`` and ``ctx.open_orders()`` (the engine
        has reconciled both with the broker). The default does nothing."""

    def on_session_start(self, ctx: StrategyContext, day: date) -> None:
        """At each session's first market data."""

    def on_slice(self, ctx: StrategyContext, market: MarketSlice) -> None:
        """Every market update (a tick batch, or a minute bar close)."""

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        """Each completed minute bar of an underlying index."""

    def on_order_update(self, ctx: StrategyContext, event: OrderEvent, order: ManagedOrder) -> None:
        """Every status change of one of this strategy's orders (fills too)."""

    def on_fill(self, ctx: StrategyContext, fill: OrderFillEvent, order: ManagedOrder) -> None:
        """Every fill of one of this strategy's orders (after ``on_order_update``)."""

    def on_timer(self, ctx: StrategyContext, name: str) -> None:
        """A timer set with ``ctx.set_timer`` is due."""

    def on_session_end(self, ctx: StrategyContext, day: date) -> None:
        """After the session's last market data, before expiry settlement."""

    def on_stop(self, ctx: StrategyContext) -> None:
        """Once, when the strategy stops (end of run, a stop command, a risk stop)."""
