"""The latest quote of every instrument of a universe, updated slice by slice.

:class:`QuoteBoard` keeps one int64 array per field over the universe's indices, so that a
slice is applied with one vectorized assignment per field and an option chain reads its
quotes with one fancy index. Prices are paise, quantities units; 0 means unknown (or an empty
side of the book).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from algoengine.domain.market_data import MarketSlice, Universe
from algoengine.errors import ValidationError

__all__ = ["Quote", "QuoteBoard"]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


class Quote(NamedTuple):
    """One instrument's latest quote: prices paise, quantities units, ``ts_ns`` UTC epoch ns
    of the slice that last updated it (0: never)."""

    ltp_paise: int
    bid_paise: int
    bid_qty: int
    ask_paise: int
    ask_qty: int
    volume: int
    oi: int
    ts_ns: int

    @property
    def two_sided(self) -> bool:
        """True if both a bid and an ask are shown."""
        return self.bid_paise > 0 and self.ask_paise > 0

    @property
    def mid_paise(self) -> float:
        """The midpoint (may be half a paise); NaN without a two-sided quote."""
        if self.bid_paise > 0 and self.ask_paise > 0:
            return (self.bid_paise + self.ask_paise) / 2.0
        return float("nan")


class QuoteBoard:
    """The latest quote per universe index.

    Attributes
    ----------
    ltp, bid, ask
        Last traded price, best bid and best ask in paise (int64, one per universe index).
    bid_qty, ask_qty
        Units shown at the best bid/ask.
    volume, oi
        The day's cumulative volume and the open interest, units.
    last_ts_ns
        ``ts_ns`` of the slice that last updated each index (0: never).
    ts_ns
        ``ts_ns`` of the last slice applied (0 before the first).
    """

    def __init__(self, universe: Universe) -> None:
        if not isinstance(universe, Universe):
            raise ValidationError("universe", universe, "must be a Universe")
        self.universe = universe
        n = len(universe)
        self._n = n
        self.ltp: I64 = np.zeros(n, dtype=np.int64)
        self.bid: I64 = np.zeros(n, dtype=np.int64)
        self.bid_qty: I64 = np.zeros(n, dtype=np.int64)
        self.ask: I64 = np.zeros(n, dtype=np.int64)
        self.ask_qty: I64 = np.zeros(n, dtype=np.int64)
        self.volume: I64 = np.zeros(n, dtype=np.int64)
        self.oi: I64 = np.zeros(n, dtype=np.int64)
        self.last_ts_ns: I64 = np.zeros(n, dtype=np.int64)
        self.ts_ns = 0

    def __len__(self) -> int:
        return self._n

    def apply(self, slice_: MarketSlice) -> None:
        """Set the quotes of the slice's instruments (a few microseconds for 500 rows).

        Raises ValidationError if the slice indexes outside the universe (nothing is changed
        then).
        """
        ix = slice_.idx.astype(np.intp)
        if len(ix) and (int(ix.min()) < 0 or int(ix.max()) >= self._n):
            raise ValidationError("idx", slice_.idx, f"indices must be in [0, {self._n})")
        self.ltp[ix] = slice_.ltp_paise
        self.bid[ix] = slice_.bid_paise
        self.bid_qty[ix] = slice_.bid_qty
        self.ask[ix] = slice_.ask_paise
        self.ask_qty[ix] = slice_.ask_qty
        self.volume[ix] = slice_.volume
        self.oi[ix] = slice_.oi
        self.last_ts_ns[ix] = slice_.ts_ns
        self.ts_ns = slice_.ts_ns

    def _check(self, i: int) -> int:
        if not isinstance(i, int | np.integer) or not 0 <= i < self._n:
            raise ValidationError("index", i, f"must be a universe index in [0, {self._n})")
        return int(i)

    def ltp_paise(self, i: int) -> int:
        """Last traded price of index ``i`` in paise (0: unknown)."""
        return int(self.ltp[self._check(i)])

    def mid_paise(self, i: int) -> float:
        """Midpoint of index ``i``'s quote in paise (may be half a paise); NaN without a
        two-sided quote."""
        i = self._check(i)
        bid, ask = int(self.bid[i]), int(self.ask[i])
        if bid > 0 and ask > 0:
            return (bid + ask) / 2.0
        return float("nan")

    def mids_paise(self, indices: npt.NDArray[np.integer]) -> F64:
        """Midpoints of ``indices`` in paise (float64); NaN where not two-sided."""
        bid = self.bid[indices]
        ask = self.ask[indices]
        mid: F64 = (bid + ask) * 0.5
        mid[(bid <= 0) | (ask <= 0)] = np.nan
        return mid

    def quote(self, i: int) -> Quote:
        """Everything known about index ``i``."""
        i = self._check(i)
        return Quote(
            int(self.ltp[i]),
            int(self.bid[i]),
            int(self.bid_qty[i]),
            int(self.ask[i]),
            int(self.ask_qty[i]),
            int(self.volume[i]),
            int(self.oi[i]),
            int(self.last_ts_ns[i]),
        )
