"""Markets: contract specs, the trading calendar, the instrument master, synthetic and replayed
feeds, the quote board and option chain views.

Prices are integer paise, quantities integer units, times UTC epoch nanoseconds; days are IST
dates. See each module's docstring for its model.
"""

from algoengine.market.calendar import TradingCalendar, ist_date
from algoengine.market.chain import ChainView
from algoengine.market.contracts import (
    DEFAULT_CONTRACTS,
    ContractSpec,
    contracts_by_underlying,
    future_symbol,
    option_symbol,
)
from algoengine.market.feed import MarketFeed
from algoengine.market.quotes import Quote, QuoteBoard
from algoengine.market.replay import SLICE_COLUMNS, ReplayFeed, read_slices, write_slices
from algoengine.market.scrip_master import (
    load_scrip_master,
    parse_scrip_master,
    save_scrip_master,
    to_scrip_master,
)
from algoengine.market.synthetic import (
    ActivityModel,
    DepthModel,
    SmileConfig,
    SpotPath,
    SpreadModel,
    SyntheticMarket,
    SyntheticMarketConfig,
    depth_levels,
)

__all__ = [
    "DEFAULT_CONTRACTS",
    "SLICE_COLUMNS",
    "ActivityModel",
    "ChainView",
    "ContractSpec",
    "DepthModel",
    "MarketFeed",
    "Quote",
    "QuoteBoard",
    "ReplayFeed",
    "SmileConfig",
    "SpotPath",
    "SpreadModel",
    "SyntheticMarket",
    "SyntheticMarketConfig",
    "TradingCalendar",
    "contracts_by_underlying",
    "depth_levels",
    "future_symbol",
    "ist_date",
    "load_scrip_master",
    "option_symbol",
    "parse_scrip_master",
    "read_slices",
    "save_scrip_master",
    "to_scrip_master",
    "write_slices",
]
