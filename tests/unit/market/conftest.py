"""Shared fixtures of the market tests: a small synthetic market, generated once."""

from __future__ import annotations

from datetime import date

import pytest

from algoengine.domain.market_data import MarketSlice
from algoengine.market import SyntheticMarket, SyntheticMarketConfig

# Monday 6 - Wednesday 8 October 2025: NIFTY's weekly expiry on Tuesday the 7th is inside.
START = date(2025, 10, 6)
END = date(2025, 10, 8)
SEED = 7


@pytest.fixture(scope="session")
def bars_market() -> SyntheticMarket:
    return SyntheticMarket(SyntheticMarketConfig(seed=SEED), START, END)


@pytest.fixture(scope="session")
def bars_slices(bars_market: SyntheticMarket) -> list[MarketSlice]:
    return list(bars_market)
