"""Configuration of the paper exchange."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from enum import StrEnum
from types import MappingProxyType

from algoengine.errors import ValidationError

__all__ = ["PaperExchangeConfig", "QueueModel"]


class QueueModel(StrEnum):
    """Where a price level's displayed quantity went when it shrank without a trade print
    (cancellations by other traders), relative to our resting orders at that level.

    PROPORTIONAL (default)
        Every displayed order at the level shrinks by its share of the decrease: the expected
        outcome when any displayed unit is equally likely to be cancelled. The quantity ahead
        of us shrinks by ``decrease * ahead / displayed``.
    FROM_BACK
        The newest quantity is cancelled first: the queue ahead of us shrinks only once
        everything behind us is gone. Pessimistic.
    FROM_FRONT
        The oldest quantity is cancelled first. Optimistic.
    """

    PROPORTIONAL = "proportional"
    FROM_BACK = "from_back"
    FROM_FRONT = "from_front"


def _no_bands() -> Mapping[str, int | None]:
    return MappingProxyType({})


@dataclass(frozen=True, kw_only=True, slots=True)
class PaperExchangeConfig:
    """Settings of :class:`~algoengine.brokers.paper.PaperExchange`.

    Parameters
    ----------
    order_latency_ns
        Time from ``submit``/``cancel``/``modify`` to the request's arrival at the exchange; the
        book at arrival decides. >= 0.
    report_latency_ns
        Time from an exchange event to its delivery by ``drain_events``. >= 0.
    enforce_market_hours
        Reject orders arriving outside the session and cancel working orders at the close.
    market_open, market_close
        The continuous session in IST (UTC+05:30): orders are accepted from ``market_open``
        (inclusive) to ``market_close`` (exclusive). Default 09:15-15:30.
    trading_weekdays
        Weekdays (Monday = 0) with a session. Default Monday-Friday.
    closed_dates
        Exchange holidays (IST dates) on which no session runs.
    price_band_bps
        Default price band, in basis points either side of the reference price (the last trade,
        or the mid of the last depth snapshot before any trade); limit and trigger prices
        outside it are rejected. ``None``: no band. Default 5000 (50 %), a stand-in for NSE's
        operating ranges; set per instrument from the exchange's published bands.
    price_band_bps_by_token
        Per-instrument bands (token -> bps or ``None`` for none), overriding the default.
    queue_model
        How cancellations at a level are placed relative to our orders (:class:`QueueModel`).
    liquidity_consumption
        Remember displayed quantity our orders traded with, so that a level the feed keeps
        showing unchanged is not traded again with every snapshot (our trades never reach the
        real market): a later snapshot's level counts that much less, until it shrinks below
        it or disappears. Off: every snapshot's quantity is available in full.
    depth_levels
        Levels a side of a depth snapshot shows when full (Angel One: 5). A side showing
        fewer levels is taken as the whole side; a full side says nothing about prices beyond
        its last level, so displayed liquidity there is kept.
    """

    order_latency_ns: int = 0
    report_latency_ns: int = 0
    enforce_market_hours: bool = True
    market_open: time = time(9, 15)
    market_close: time = time(15, 30)
    trading_weekdays: frozenset[int] = frozenset(range(5))
    closed_dates: frozenset[date] = frozenset()
    price_band_bps: int | None = 5000
    price_band_bps_by_token: Mapping[str, int | None] = field(default_factory=_no_bands)
    queue_model: QueueModel = QueueModel.PROPORTIONAL
    liquidity_consumption: bool = True
    depth_levels: int = 5

    def __post_init__(self) -> None:
        for name in ("order_latency_ns", "report_latency_ns"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValidationError(name, value, "must be an integer >= 0")
        if not isinstance(self.enforce_market_hours, bool):
            raise ValidationError("enforce_market_hours", self.enforce_market_hours, "a bool")
        for name in ("market_open", "market_close"):
            value = getattr(self, name)
            if not isinstance(value, time) or value.tzinfo is not None:
                raise ValidationError(name, value, "must be a naive datetime.time (IST)")
        if self.market_open >= self.market_close:
            raise ValidationError("market_close", self.market_close, "must be after market_open")
        weekdays = frozenset(self.trading_weekdays)
        if not all(isinstance(d, int) and 0 <= d <= 6 for d in weekdays):
            raise ValidationError("trading_weekdays", self.trading_weekdays, "weekdays 0..6")
        object.__setattr__(self, "trading_weekdays", weekdays)
        closed = frozenset(self.closed_dates)
        if not all(isinstance(d, date) for d in closed):
            raise ValidationError("closed_dates", self.closed_dates, "must hold datetime.date")
        object.__setattr__(self, "closed_dates", closed)
        _check_band("price_band_bps", self.price_band_bps)
        bands = dict(self.price_band_bps_by_token)
        for token, bps in bands.items():
            _check_band(f"price_band_bps_by_token[{token!r}]", bps)
        object.__setattr__(self, "price_band_bps_by_token", MappingProxyType(bands))
        if not isinstance(self.liquidity_consumption, bool):
            raise ValidationError("liquidity_consumption", self.liquidity_consumption, "a bool")
        if not isinstance(self.queue_model, QueueModel):
            raise ValidationError("queue_model", self.queue_model, "must be a QueueModel")
        if not isinstance(self.depth_levels, int) or self.depth_levels < 1:
            raise ValidationError("depth_levels", self.depth_levels, "must be an integer >= 1")

    def band_bps(self, token: str) -> int | None:
        """The price band of an instrument, in bps (``None``: no band)."""
        return self.price_band_bps_by_token.get(token, self.price_band_bps)


def _check_band(name: str, bps: object) -> None:
    if bps is None:
        return
    if not isinstance(bps, int) or isinstance(bps, bool) or not 0 < bps < 10_000:
        raise ValidationError(name, bps, "must be None or an integer in 1..9999 (bps)")
