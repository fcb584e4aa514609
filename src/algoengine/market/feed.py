"""The interface of a market-data feed: what the engine iterates in backtests and replays."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Protocol, runtime_checkable

from algoengine.domain.market_data import MarketSlice, Universe

__all__ = ["MarketFeed"]


@runtime_checkable
class MarketFeed(Protocol):
    """A source of :class:`MarketSlice` objects in time order over a fixed :class:`Universe`.

    :class:`~algoengine.market.synthetic.SyntheticMarket` and
    :class:`~algoengine.market.replay.ReplayFeed` satisfy it. Iterating twice gives the same
    slices again.
    """

    @property
    def universe(self) -> Universe:
        """The instruments the slices index into."""
        ...

    @property
    def trading_days(self) -> list[date]:
        """The IST trading days the feed covers, in order."""
        ...

    def __iter__(self) -> Iterator[MarketSlice]:
        """The slices, in ``ts_ns`` order."""
        ...
