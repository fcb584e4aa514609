"""A micro market for engine tests: NIFTY and a few options, hand-made minute bars."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

import numpy as np

from algoengine.brokers.paper import PaperExchange, PaperExchangeConfig
from algoengine.domain.instruments import Instrument, InstrumentKind, OptionType
from algoengine.domain.market_data import MarketSlice, Universe

IST = timezone(timedelta(hours=5, minutes=30))
EXPIRY = date(2026, 1, 6)  # a Tuesday
DAY1 = date(2026, 1, 5)
LOT = 65
FREEZE = 1800


def ist_ns(day: date, hh: int, mm: int, ss: int = 0) -> int:
    return int(datetime.combine(day, time(hh, mm, ss), IST).timestamp()) * 1_000_000_000


def option(strike: int, cp: str, token: str, expiry: date = EXPIRY) -> Instrument:
    return Instrument(
        token=token,
        symbol=f"NIFTY{expiry:%d%b%y}".upper() + f"{strike}{cp}",
        exchange="NFO",
        underlying="NIFTY",
        kind=InstrumentKind.OPTION,
        expiry=expiry,
        strike_paise=strike * 100,
        option_type=OptionType(cp),
        lot_size=LOT,
        tick_paise=5,
        freeze_qty=FREEZE,
    )


def universe() -> Universe:
    spot = Instrument(
        token="99926000",
        symbol="Nifty 50",
        exchange="NSE",
        underlying="NIFTY",
        kind=InstrumentKind.INDEX,
        expiry=None,
        strike_paise=None,
        option_type=None,
        lot_size=1,
        tick_paise=5,
        freeze_qty=1,
    )
    return Universe(
        [
            spot,
            option(24000, "CE", "1001"),
            option(24000, "PE", "1002"),
            option(24100, "CE", "1003"),
            option(24100, "PE", "1004"),
            option(23900, "PE", "1006"),
            option(24200, "CE", "1005"),
            option(24300, "CE", "1007"),
            option(23800, "PE", "1008"),
            option(23700, "PE", "1009"),
        ]
    )


class Calendar:
    """Sessions 09:15-15:30 IST every weekday; trading-time years to expiry."""

    def session_close_ns(self, day: date) -> int:
        return ist_ns(day, 15, 30)

    def years_to_expiry(self, ts_ns: int, expiry: date) -> float:
        close = ist_ns(expiry, 15, 30)
        return max(0.0, (close - ts_ns) / 1e9 / (252 * 375 * 60))


@dataclass
class Row:
    """One instrument's minute: OHLC (paise) and the closing quote's half spread."""

    idx: int
    o: int
    h: int
    lo: int
    c: int
    half: int = 50
    qty: int = 1300


def bar_slice(ts_ns: int, rows: Sequence[Row]) -> MarketSlice:
    n = len(rows)
    a = lambda xs: np.asarray(xs, dtype=np.int64)  # noqa: E731
    bid = [max(r.c - r.half, 0) if r.idx else 0 for r in rows]
    ask = [r.c + r.half if r.idx else 0 for r in rows]
    qty = [r.qty if r.idx else 0 for r in rows]
    return MarketSlice(
        ts_ns=ts_ns,
        idx=np.asarray([r.idx for r in rows], dtype=np.int32),
        ltp_paise=a([r.c for r in rows]),
        bid_paise=a(bid),
        bid_qty=a(qty),
        ask_paise=a(ask),
        ask_qty=a(qty),
        volume=np.zeros(n, dtype=np.int64),
        oi=np.zeros(n, dtype=np.int64),
        bar_close=True,
        open_paise=a([r.o for r in rows]),
        high_paise=a([r.h for r in rows]),
        low_paise=a([r.lo for r in rows]),
    )


def flat(idx: int, price: int, half: int = 50) -> Row:
    return Row(idx, price, price, price, price, half)


def exchange(u: Universe, **kw: object) -> PaperExchange:
    cfg = PaperExchangeConfig(**kw)  # type: ignore[arg-type]
    return PaperExchange(cfg, list(u))
