# Python-facing stub of the compiled module algoengine._ext.risk (ext/risk.pyx).
from typing import Final, final

import numpy as np
import numpy.typing as npt

from algoengine.risk import RiskLimits

OK: Final[int]
KILL_SWITCH: Final[int]
MARKET_CLOSED: Final[int]
QTY_NOT_POSITIVE: Final[int]
QTY_NOT_LOT_MULTIPLE: Final[int]
PRICE_OFF_TICK: Final[int]
MAX_LOTS_PER_ORDER: Final[int]
SQUARE_OFF_NOT_REDUCING: Final[int]
DAILY_LOSS_LIMIT: Final[int]
PRICE_BAND: Final[int]
MAX_OPEN_ORDERS: Final[int]
MAX_ORDER_VALUE: Final[int]
MAX_LOTS_PER_INSTRUMENT: Final[int]
MAX_DELTA: Final[int]
MAX_VEGA: Final[int]
RATE_LIMIT: Final[int]

MAX_INSTRUMENTS: Final[int]
MAX_LOT_SIZE: Final[int]
MAX_LOTS: Final[int]
MAX_BAND_BPS: Final[int]
MAX_OPEN_ORDERS_LIMIT: Final[int]
MAX_ORDERS_PER_SECOND_LIMIT: Final[int]
MAX_QTY: Final[int]
MAX_POSITION: Final[int]
MAX_PRICE_PAISE: Final[int]
MAX_PAISE: Final[int]

# check_batch columns: int64 (idx, side, qty, price_paise, ref_price_paise, lot_size,
# tick_paise, ts_ns), float64 (delta_per_unit, vega_per_unit), bool (square_off); each a 1-d
# array or a scalar applied to every order.
_IntCol = npt.ArrayLike
_FloatCol = npt.ArrayLike

@final
class RiskChecker:
    @property
    def limits(self) -> RiskLimits: ...
    @property
    def n_instruments(self) -> int: ...
    def __new__(cls, limits: RiskLimits, n_instruments: int) -> RiskChecker: ...
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
        square_off: bool = ...,
    ) -> int: ...
    def check_batch(
        self,
        idx: _IntCol,
        side: _IntCol,
        qty: _IntCol,
        price_paise: _IntCol,
        ref_price_paise: _IntCol,
        lot_size: _IntCol,
        tick_paise: _IntCol,
        delta_per_unit: _FloatCol,
        vega_per_unit: _FloatCol,
        ts_ns: _IntCol,
        square_off: npt.ArrayLike | None = ...,
    ) -> npt.NDArray[np.int8]: ...
    def on_fill(self, idx: int, signed_qty: int) -> None: ...
    def set_position(self, idx: int, qty: int) -> None: ...
    def on_order_open(self, idx: int, side: int, qty: int) -> None: ...
    def on_order_done(self, idx: int, side: int, remaining_qty: int) -> None: ...
    def set_portfolio_greeks(self, delta: float, vega: float) -> None: ...
    def set_daily_pnl(self, paise: int) -> None: ...
    def set_kill_switch(self, on: bool) -> None: ...
    def set_session(self, open_ns: int, close_ns: int) -> None: ...
    def reset_day(self) -> None: ...
    def position(self, idx: int) -> int: ...
    def open_qty(self, idx: int, side: int) -> int: ...
    def positions(self) -> npt.NDArray[np.int64]: ...
    def orders_in_window(self, ts_ns: int) -> int: ...
    @property
    def open_orders(self) -> int: ...
    @property
    def portfolio_delta(self) -> float: ...
    @property
    def portfolio_vega(self) -> float: ...
    @property
    def daily_pnl_paise(self) -> int: ...
    @property
    def kill_switch(self) -> bool: ...
    @property
    def session(self) -> tuple[int, int]: ...
