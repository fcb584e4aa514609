"""One instrument's book in the paper exchange: the feed's liquidity plus our resting orders.

The market's displayed depth lives in the same compiled L3 book (:class:`OrderBook`) as our
orders, as synthetic orders with negative ids, so that price-time priority decides what fills
when, and our order knows how much stands ahead of it. Prices in the book are integer ticks
(``price_paise // tick_paise``; the book runs with ``tick_size=1.0``); quantities are units.

Model (the rules :class:`~algoengine.brokers.paper.PaperExchange` documents):

- A depth snapshot sets each displayed level's synthetic quantity. Levels shown are reconciled;
  levels no longer shown within the snapshot's range are emptied; when a side shows all of its
  ``depth_levels`` levels, levels beyond its last one are kept (the snapshot says nothing about
  them). A decrease shrinks the level's synthetic orders as the :class:`QueueModel` says (a
  shrink keeps queue priority); an increase joins the tail of the level, behind our orders. The
  decreases of both sides run before the increases, and an increase that crosses one of our
  resting orders trades with it at our price (the market moved through our limit).
- A trade print at price ``p`` for ``q`` units is a synthetic IOC order of ``q`` at limit ``p``
  against whichever side has liquidity at or better than ``p``: it takes the queue FIFO, so our
  order at ``p`` fills only once the quantity ahead of it has gone, and an order of ours at a
  better price than ``p`` fills first.
- Liquidity consumption (optional, on by default): displayed quantity that traded with our
  orders is remembered per level, and later snapshots show that much less there, until the
  level shrinks below it or disappears. Without it, a resting order crossing a level that the
  feed keeps showing would trade again with every snapshot (our trades never reach the real
  market, so it keeps showing the same quantity).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from algoengine.brokers.paper.config import QueueModel
from algoengine.domain.instruments import Instrument
from algoengine.domain.orders import Side
from algoengine.orderbook import OrderBook

__all__ = ["InstrumentBook", "Trade"]

_Level = tuple[int, int]  # (side sign: +1 bid / -1 ask, price in ticks)


class Trade(NamedTuple):
    """A match in the book: ids (> 0 ours, < 0 synthetic), price in ticks, qty in units."""

    taker_id: int
    maker_id: int
    price_ticks: int
    qty: int


@dataclass(slots=True)
class _IdSource:
    """Hands out the synthetic order ids (-1, -2, ...), shared by all books of an exchange."""

    last: int = 0

    def next(self) -> int:
        self.last -= 1
        return self.last


def _book_side(sign: int) -> str:
    return "buy" if sign > 0 else "sell"


class InstrumentBook:
    """The L3 book of one instrument with the feed's liquidity as synthetic orders."""

    def __init__(
        self,
        instrument: Instrument,
        *,
        queue_model: QueueModel,
        depth_levels: int,
        liquidity_consumption: bool,
        ids: _IdSource,
    ) -> None:
        self.instrument = instrument
        self._book: Any = OrderBook(tick_size=1.0)
        self._queue_model = queue_model
        self._depth_levels = depth_levels
        self._consumption = liquidity_consumption
        self._ids = ids
        self._syn_qty: dict[int, int] = {}  # synthetic id -> remaining units
        self._syn_level: dict[int, _Level] = {}  # synthetic id -> its level
        self._levels: dict[_Level, list[int]] = {}  # level -> synthetic ids, queue order
        self._side_ticks: dict[int, list[int]] = {1: [], -1: []}  # sign -> level ticks, sorted
        self._consumed: dict[_Level, int] = {}  # level -> displayed units we traded with
        self._ours: set[int] = set()  # our resting order ids
        self.last_trade_ticks: int | None = None
        self.feed_mid_ticks: int | None = None

    # ---- queries -------------------------------------------------------------------------------

    def has_liquidity(self, taker_side: Side) -> bool:
        """True if a taker on ``taker_side`` has anything to trade against."""
        best = self._book.best_ask() if taker_side is Side.BUY else self._book.best_bid()
        return best is not None

    def is_resting(self, order_id: int) -> bool:
        """True if our order ``order_id`` rests in the book."""
        return order_id in self._ours

    def queue_ahead(self, order_id: int) -> int:
        """Units resting ahead of our order at its price."""
        return int(self._book.queue_ahead(order_id))

    def depth(self, n: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """(bids, asks) as ``(price_ticks, qty)`` best first, synthetic and ours together."""
        bid_px, bid_qty, ask_px, ask_qty = self._book.depth(n)
        bids = [(round(float(p)), int(q)) for p, q in zip(bid_px, bid_qty, strict=True)]
        asks = [(round(float(p)), int(q)) for p, q in zip(ask_px, ask_qty, strict=True)]
        return bids, asks

    def displayed_qty(self, sign: int, ticks: int) -> int:
        """Synthetic (market) units at a level."""
        return sum(self._syn_qty[i] for i in self._levels.get((sign, ticks), ()))

    # ---- our orders ----------------------------------------------------------------------------

    def place(
        self, order_id: int, side: Side, qty: int, price_ticks: int | None, *, ioc: bool
    ) -> list[Trade]:
        """Add our order (``price_ticks=None``: market; the caller checked there is liquidity).

        Returns the trades in execution order; a limit remainder rests unless ``ioc``.
        """
        if price_ticks is None:
            raw = self._book.add(order_id, side.value, qty)
        else:
            tif = "IOC" if ioc else "DAY"
            raw = self._book.add(order_id, side.value, qty, float(price_ticks), tif)
        trades = self._absorb(raw, None)
        if order_id in self._book:
            self._ours.add(order_id)
        return trades

    def cancel(self, order_id: int) -> None:
        """Remove our resting order."""
        self._book.cancel(order_id)
        self._ours.discard(order_id)

    def modify(self, order_id: int, qty: int, price_ticks: int) -> list[Trade]:
        """Change our resting order (``qty`` = new remaining units); may trade if it crosses."""
        trades = self._absorb(self._book.modify(order_id, qty, float(price_ticks)), None)
        if order_id not in self._book:
            self._ours.discard(order_id)
        return trades

    def forget(self, order_id: int) -> None:
        """Our order filled completely: it left the book."""
        self._ours.discard(order_id)

    # ---- market input --------------------------------------------------------------------------

    def apply_trade(self, price_ticks: int, qty: int) -> list[Trade]:
        """A trade print: take ``qty`` from the side resting at or through ``price_ticks``."""
        self.last_trade_ticks = price_ticks
        ask = self._book.best_ask()
        bid = self._book.best_bid()
        if ask is not None and price_ticks >= round(float(ask[0])):
            side = "buy"
        elif bid is not None and price_ticks <= round(float(bid[0])):
            side = "sell"
        else:
            return []  # a print inside the spread: nothing displayed to take
        taker = self._ids.next()
        return self._absorb(self._book.add(taker, side, qty, float(price_ticks), "IOC"), None)

    def apply_depth(
        self, bids: Sequence[tuple[int, int]], asks: Sequence[tuple[int, int]]
    ) -> list[Trade]:
        """Reconcile the synthetic liquidity with a snapshot (``(price_ticks, qty > 0)`` levels,
        best first, not crossed). Returns trades with our resting orders that it crosses."""
        self.feed_mid_ticks = (bids[0][0] + asks[0][0]) // 2 if bids and asks else None
        increases: list[tuple[_Level, int]] = []
        for sign, shown in ((1, bids), (-1, asks)):
            increases.extend(self._reconcile_side(sign, shown))
        trades: list[Trade] = []
        for level, qty in increases:
            trades.extend(self._add_synthetic(level, qty))
        return trades

    # ---- internals -----------------------------------------------------------------------------

    def _reconcile_side(
        self, sign: int, shown: Sequence[tuple[int, int]]
    ) -> list[tuple[_Level, int]]:
        """Shrink this side's levels to the snapshot; return the increases to apply."""
        target = dict(shown)
        whole_side = len(shown) < self._depth_levels
        last = shown[-1][0] if shown else 0

        def gone(level: _Level) -> bool:  # not shown, and within what the snapshot covers
            if level[0] != sign or level[1] in target:
                return False
            return whole_side or (level[1] >= last if sign > 0 else level[1] <= last)

        for level in [lv for lv in self._consumed if gone(lv)]:
            del self._consumed[level]
        side_ticks = self._side_ticks[sign]
        if whole_side:
            candidates = list(side_ticks)
        elif sign > 0:  # bids: the snapshot covers its last level and everything above it
            candidates = side_ticks[bisect.bisect_left(side_ticks, last) :]
        else:  # asks: its last level and everything below it
            candidates = side_ticks[: bisect.bisect_right(side_ticks, last)]
        for t in candidates:
            if t not in target:
                level = (sign, t)
                self._shrink(level, self.displayed_qty(*level))
        increases: list[tuple[_Level, int]] = []
        for ticks, qty in shown:
            level = (sign, ticks)
            want = self._target(level, qty)
            have = self.displayed_qty(sign, ticks)
            if want < have:
                self._shrink(level, have - want)
            elif want > have:
                increases.append((level, want - have))
        return increases

    def _target(self, level: _Level, shown_qty: int) -> int:
        """Synthetic units a level should hold when the feed shows ``shown_qty``."""
        consumed = self._consumed.get(level)
        if consumed is None:
            return shown_qty
        consumed = min(consumed, shown_qty)
        if consumed:
            self._consumed[level] = consumed
        else:
            del self._consumed[level]
        return shown_qty - consumed

    def _shrink(self, level: _Level, decrease: int) -> None:
        """Take ``decrease`` units off a level's synthetic orders, per the queue model."""
        ids = list(self._levels[level])
        qtys = [self._syn_qty[i] for i in ids]
        cuts = [0] * len(ids)
        if self._queue_model is QueueModel.PROPORTIONAL:
            total = sum(qtys)
            cuts = [decrease * q // total for q in qtys]
            left = decrease - sum(cuts)
            order = range(len(ids) - 1, -1, -1)  # rounding remainder from the back
        elif self._queue_model is QueueModel.FROM_BACK:
            left = decrease
            order = range(len(ids) - 1, -1, -1)
        else:
            left = decrease
            order = range(len(ids))
        for k in order:
            if left == 0:
                break
            take = min(left, qtys[k] - cuts[k])
            cuts[k] += take
            left -= take
        for sid, q, cut in zip(ids, qtys, cuts, strict=True):
            if cut == 0:
                continue
            if cut == q:
                self._book.cancel(sid)
                self._drop_synthetic(sid)
            else:
                self._book.modify(sid, q - cut)  # a decrease keeps queue priority
                self._syn_qty[sid] = q - cut

    def _add_synthetic(self, level: _Level, qty: int) -> list[Trade]:
        """Add displayed units at the tail of a level (trading with our crossing orders)."""
        sign, ticks = level
        ids = self._levels.get(level)
        if ids and self._is_level_tail(level, ids[-1]):
            # The level's last order is synthetic: grow it (it moves to the tail, where it is).
            sid = ids[-1]
            self._syn_qty[sid] += qty
            self._book.modify(sid, self._syn_qty[sid])
            return []
        sid = self._ids.next()
        raw = self._book.add(sid, _book_side(sign), qty, float(ticks), "DAY")
        trades = self._absorb(raw, level)
        got = self._book.get(sid)
        if got is not None:
            self._syn_qty[sid] = int(got[2])
            self._syn_level[sid] = level
            ids = self._levels.get(level)
            if ids is None:
                ids = self._levels[level] = []
                bisect.insort(self._side_ticks[level[0]], level[1])
            ids.append(sid)
        return trades

    def _is_level_tail(self, level: _Level, sid: int) -> bool:
        """True if none of our orders rests behind synthetic order ``sid`` at its level."""
        position = self.queue_ahead(sid)
        for oid in self._ours:
            got = self._book.get(oid)
            if got is None:
                continue
            same_side = (got[0] == "buy") == (level[0] > 0)
            if same_side and round(float(got[1])) == level[1] and self.queue_ahead(oid) > position:
                return False
        return True

    def _absorb(self, raw: Any, taker_level: _Level | None) -> list[Trade]:
        """Book the book's fills: shrink synthetic makers, remember consumed liquidity.

        ``taker_level`` is the level of a synthetic taker that shows displayed liquidity (an
        increase), whose trades with our orders consume it; None for our orders and prints.
        """
        trades: list[Trade] = []
        for f in raw:
            t = Trade(int(f.taker_id), int(f.maker_id), int(f.price_ticks), int(f.qty))
            trades.append(t)
            if self._consumption:
                if t.taker_id > 0 and t.maker_id < 0:
                    lv = self._syn_level[t.maker_id]
                    self._consumed[lv] = self._consumed.get(lv, 0) + t.qty
                elif t.taker_id < 0 and t.maker_id > 0 and taker_level is not None:
                    self._consumed[taker_level] = self._consumed.get(taker_level, 0) + t.qty
            if t.maker_id < 0:
                left = self._syn_qty[t.maker_id] - t.qty
                if left == 0:
                    self._drop_synthetic(t.maker_id)
                else:
                    self._syn_qty[t.maker_id] = left
        return trades

    def _drop_synthetic(self, sid: int) -> None:
        del self._syn_qty[sid]
        level = self._syn_level.pop(sid)
        ids = self._levels[level]
        ids.remove(sid)
        if not ids:
            del self._levels[level]
            side_ticks = self._side_ticks[level[0]]
            del side_ticks[bisect.bisect_left(side_ticks, level[1])]
