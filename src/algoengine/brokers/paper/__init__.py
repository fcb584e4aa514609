"""The paper exchange: a simulated NSE F&O venue on the compiled order book.

See :mod:`algoengine.brokers.paper.exchange` for the order life and
:mod:`algoengine.brokers.paper.liquidity` for the fill model.
"""

from algoengine.brokers.paper.config import PaperExchangeConfig, QueueModel
from algoengine.brokers.paper.exchange import PaperExchange
from algoengine.brokers.paper.session import MarketHours, ist_date

__all__ = ["MarketHours", "PaperExchange", "PaperExchangeConfig", "QueueModel", "ist_date"]
