"""Feeding the paper exchange from the engine's market data.

The paper exchange keeps an L3 book per instrument; the engine shows it the market only where
it matters, because feeding every quote of every strike would cost more than the rest of a
backtest: an instrument's book is brought up to date (a) just before one of our orders for it
is sent and (b) on each market update while we have working orders in it.

Depth: the feed gives the best bid and ask with their quantities; levels behind them are filled
in at one-tick steps with growing quantity (``DEPTH_LEVELS`` levels a side, as Angel One shows).

Minute bars: a bar carries its open, high, low and close, and what happened inside the minute
matters for our resting orders (a stop-loss touched by the high, a target touched by the low).
When a working order could be touched by the bar's range, the exchange is shown the standard
path open -> low -> high -> close for a rising bar (close >= open) or open -> high -> low ->
close for a falling one: at each point a quote of the bar's spread centred there, then a trade
print there. A stop-loss that the high touches therefore fills against a book at the high, not
at a stale quote: conservative for a premium seller. Bars whose range touches none of our
working orders are not shown at all (nothing could happen there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from algoengine.domain.market_data import MarketSlice
from algoengine.domain.orders import OrderType, Side

__all__ = ["DEPTH_LEVELS", "SimulatedVenue", "VenueFeeder", "synthetic_depth"]

DEPTH_LEVELS = 5
Levels = list[tuple[int, int]]


class SimulatedVenue(Protocol):
    """A venue that needs to be shown the market (the paper exchange)."""

    def on_depth(
        self,
        token: str,
        bids: Sequence[tuple[int, int]],
        asks: Sequence[tuple[int, int]],
        ts_ns: int,
    ) -> None: ...

    def on_trade(self, token: str, price_paise: int, qty: int, ts_ns: int) -> None: ...

    def advance(self, ts_ns: int) -> None: ...


def synthetic_depth(
    bid_paise: int, bid_qty: int, ask_paise: int, ask_qty: int, tick_paise: int
) -> tuple[Levels, Levels]:
    """Five levels a side behind the best bid and ask (empty side: no levels)."""
    bids: Levels = []
    asks: Levels = []
    if bid_paise > 0 and bid_qty > 0:
        for k in range(DEPTH_LEVELS):
            p = bid_paise - k * tick_paise
            if p <= 0:
                break
            bids.append((p, bid_qty * (k + 1)))
    if ask_paise > 0 and ask_qty > 0:
        for k in range(DEPTH_LEVELS):
            asks.append((ask_paise + k * tick_paise, ask_qty * (k + 1)))
    return bids, asks


class _Working(Protocol):
    side: Side
    order_type: OrderType
    price_paise: int | None
    trigger_price_paise: int | None


def could_touch(orders: Sequence[_Working], low: int, high: int) -> bool:
    """True if a price path within [low, high] could trigger or fill one of the orders (a
    triggered stop-limit rests as a limit, so both of its prices count)."""
    for o in orders:
        if o.order_type is OrderType.MARKET:
            return True
        buy = o.side is Side.BUY
        t = o.trigger_price_paise
        if t is not None and ((buy and high >= t) or (not buy and low <= t)):
            return True  # buy stops trigger at or above, sell stops at or below
        p = o.price_paise
        if p is not None and ((buy and low <= p) or (not buy and high >= p)):
            return True
    return False


class VenueFeeder:
    """Shows a :class:`SimulatedVenue` the quotes of the instruments we work orders in."""

    def __init__(
        self, venue: SimulatedVenue, tokens: Sequence[str], tick_paise: npt.NDArray[np.int64]
    ) -> None:
        self.venue = venue
        self._tokens = tokens
        self._tick = tick_paise
        self._shown: dict[int, tuple[int, int, int, int, int]] = {}  # idx -> last quote shown

    def show_quote(
        self,
        idx: int,
        ts_ns: int,
        bid: int,
        bid_qty: int,
        ask: int,
        ask_qty: int,
        *,
        unless_shown: bool = False,
    ) -> None:
        """Bring one book up to date with a quote (``unless_shown``: skip it if this very
        quote was shown at this very instant: showing it again would change nothing)."""
        key = (ts_ns, bid, bid_qty, ask, ask_qty)
        if unless_shown and self._shown.get(idx) == key:
            return
        self._shown[idx] = key
        if bid > 0 and ask > 0 and bid >= ask:  # a locked/crossed feed quote: widen by a tick
            ask = bid + int(self._tick[idx])
        bids, asks = synthetic_depth(bid, bid_qty, ask, ask_qty, int(self._tick[idx]))
        self.venue.on_depth(self._tokens[idx], bids, asks, ts_ns)

    def show_bar(
        self,
        idx: int,
        ts_ns: int,
        *,
        open_: int,
        high: int,
        low: int,
        close: int,
        bid: int,
        bid_qty: int,
        ask: int,
        ask_qty: int,
        volume: int,
    ) -> None:
        """Walk the bar's path (see the module docstring), then show the closing quote."""
        tick = int(self._tick[idx])
        half = max(tick, (ask - bid) // 2 // tick * tick) if bid > 0 and ask > 0 else tick
        path = (open_, low, high, close) if close >= open_ else (open_, high, low, close)
        qty = max(bid_qty, ask_qty, 1)
        print_qty = max(1, volume // len(path)) if volume > 0 else qty
        token = self._tokens[idx]
        last = -1
        for p in path:
            if p <= 0 or p == last:
                continue
            last = p
            b = p - half
            self.show_quote(idx, ts_ns, b if b > 0 else 0, bid_qty or qty, p + half, ask_qty or qty)
            self.venue.on_trade(token, p, print_qty, ts_ns)
        self.show_quote(idx, ts_ns, bid, bid_qty, ask, ask_qty)

    def show_slice(
        self, m: MarketSlice, ts_ns: int, working: Mapping[int, Sequence[_Working]]
    ) -> None:
        """Show the venue a market slice where it matters: for each instrument with working
        orders (``idx -> orders``) that the slice quotes, the bar's path when the bar's range
        could touch one of them (bar slices), else the quote and a print at the last price."""
        for i, orders in working.items():
            hits = np.flatnonzero(m.idx == i)
            if len(hits) == 0:
                continue
            k = int(hits[0])
            if m.bar_close and m.high_paise is not None and m.low_paise is not None:
                high, low = int(m.high_paise[k]), int(m.low_paise[k])
                if not could_touch(orders, low, high):
                    continue
                assert m.open_paise is not None
                self.show_bar(
                    i,
                    ts_ns,
                    open_=int(m.open_paise[k]),
                    high=high,
                    low=low,
                    close=int(m.ltp_paise[k]),
                    bid=int(m.bid_paise[k]),
                    bid_qty=int(m.bid_qty[k]),
                    ask=int(m.ask_paise[k]),
                    ask_qty=int(m.ask_qty[k]),
                    volume=0,
                )
            else:
                self.show_quote(
                    i,
                    ts_ns,
                    int(m.bid_paise[k]),
                    int(m.bid_qty[k]),
                    int(m.ask_paise[k]),
                    int(m.ask_qty[k]),
                )
                ltp = int(m.ltp_paise[k])
                if ltp > 0:
                    self.venue.on_trade(self._tokens[i], ltp, 1, ts_ns)
