"""Charges on NSE index options trades, with dated rates, in integer paise.

What a fill costs beyond its premium, as an Angel One contract note shows it:

=============  ===================================================  ===========================
component      base                                                 default rate
=============  ===================================================  ===========================
brokerage      per executed order (first fill only)                 Rs 20 (Angel One, F&O)
STT            premium turnover of a **sell** fill                  0.1 %; 0.15 % from 2026-04-01
exchange txn   premium turnover, both sides                         0.03503 % (NSE options)
SEBI fee       premium turnover, both sides                         Rs 10 per crore (1e-6)
stamp duty     premium turnover of a **buy** fill                   0.003 %
GST            brokerage + exchange txn + SEBI fee (of this fill)   18 %
=============  ===================================================  ===========================

Premium turnover is ``price_paise * qty``. Exercise at expiry (:meth:`ChargesModel.
exercise_charges`): STT on the intrinsic value of long options that expire in the money,
0.125 % (0.15 % from 2026-04-01); nothing else (index options settle in cash; brokers that
charge for exercise can be modelled by the caller).

Rounding (documented, deterministic): every component of a fill is rounded **half up to the
paisa on its own**, from the exact product (rates are taken as the decimals they are written
as, ``0.0003503`` is 3503 / 10**7, and computed in integers: no float rounding); brokerage is
per order, charged whole on the order's first fill; GST is computed on the sum of this fill's
rounded brokerage, exchange and SEBI components and rounded half up. ``total`` is the sum of
the rounded components. (Contract notes round some components per order or per day, to the
rupee; per-fill paise rounding differs from them by at most a few paise per fill.)

Rates are dated: :class:`ChargesModel` holds a list of :class:`ChargeRates`, each in force
from its ``effective_from`` date until the next one; :data:`DEFAULT_RATES` has the set in
force from 2024-10-01 and the set from 2026-04-01 (Budget 2026: STT on option premium 0.15 %,
on exercise 0.15 %). A day before the earliest set is a configuration error: add the rates
that applied then.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from fractions import Fraction

from algoengine.domain.orders import Side
from algoengine.errors import ConfigurationError, ValidationError

__all__ = ["DEFAULT_RATES", "ChargeRates", "Charges", "ChargesModel"]

_PARTS = ("brokerage", "stt", "exchange_txn", "sebi", "stamp", "gst")
_RATE_FIELDS = (
    "stt_sell_rate",
    "exchange_txn_rate",
    "sebi_fee_rate",
    "stamp_duty_buy_rate",
    "gst_rate",
    "exercise_stt_rate",
)


@dataclass(frozen=True, kw_only=True, slots=True)
class ChargeRates:
    """The charges in force from one date (rates are fractions: 0.001 is 0.1 %).

    Parameters
    ----------
    effective_from
        First day (IST trading date) these rates apply to.
    brokerage_per_order_paise
        Flat brokerage per executed order, paise (Angel One F&O: Rs 20 = 2000). >= 0.
    stt_sell_rate
        Securities transaction tax on the premium of option sells (0.001 before 2026-04-01,
        0.0015 from then).
    exchange_txn_rate
        Exchange transaction charge on premium, both sides (NSE options: 0.0003503).
    sebi_fee_rate
        SEBI turnover fee on premium, both sides (Rs 10 per crore: 1e-6).
    stamp_duty_buy_rate
        Stamp duty on the premium of buys (0.00003).
    gst_rate
        GST on brokerage + exchange transaction charge + SEBI fee (0.18).
    exercise_stt_rate
        STT on the intrinsic value of long options exercised at expiry (0.00125 before
        2026-04-01, 0.0015 from then).

    Every rate is a finite number in [0, 1]; bad values raise ValidationError naming the field.
    """

    effective_from: date
    brokerage_per_order_paise: int = 2_000
    stt_sell_rate: float = 0.001
    exchange_txn_rate: float = 0.0003503
    sebi_fee_rate: float = 0.000001
    stamp_duty_buy_rate: float = 0.00003
    gst_rate: float = 0.18
    exercise_stt_rate: float = 0.00125

    def __post_init__(self) -> None:
        d = self.effective_from
        if not isinstance(d, date) or isinstance(d, datetime):
            raise ValidationError("effective_from", d, "must be a datetime.date")
        b = self.brokerage_per_order_paise
        if not isinstance(b, int) or isinstance(b, bool) or b < 0:
            raise ValidationError("brokerage_per_order_paise", b, "must be an integer >= 0")
        for name in _RATE_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ValidationError(name, value, "must be a number")
            if not (math.isfinite(value) and 0 <= value <= 1):
                raise ValidationError(name, value, "must be a fraction in [0, 1]")
            object.__setattr__(self, name, float(value))


DEFAULT_RATES: tuple[ChargeRates, ...] = (
    ChargeRates(effective_from=date(2024, 10, 1)),
    ChargeRates(effective_from=date(2026, 4, 1), stt_sell_rate=0.0015, exercise_stt_rate=0.0015),
)
"""Angel One + NSE index options: from 2024-10-01 (STT 0.1 % on sells, NSE 0.03503 %) and
from 2026-04-01 (Budget 2026: STT 0.15 % on sells and on exercise)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Charges:
    """The charges of one fill (or one exercise), each in paise; ``total`` is their sum."""

    brokerage: int = 0
    stt: int = 0
    exchange_txn: int = 0
    sebi: int = 0
    stamp: int = 0
    gst: int = 0
    total: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "total", sum(getattr(self, p) for p in _PARTS))

    def __add__(self, other: Charges) -> Charges:
        """Component-wise sum (e.g. the charges of a whole order or day)."""
        if not isinstance(other, Charges):
            return NotImplemented
        return Charges(**{p: getattr(self, p) + getattr(other, p) for p in _PARTS})


def _exact(rate: float) -> tuple[int, int]:
    """A rate as the decimal it is written as, numerator / denominator (0.0003503 ->
    3503 / 10**7; ``repr`` of a float is its shortest round-tripping decimal)."""
    q = Fraction(repr(rate))
    return q.numerator, q.denominator


def _round_half_up(amount: int, ratio: tuple[int, int]) -> int:
    """amount * n / d rounded half up to an integer (amount >= 0)."""
    n, d = ratio
    return (2 * amount * n + d) // (2 * d)


@dataclass(frozen=True, slots=True)
class _Exact:
    rates: ChargeRates
    stt: tuple[int, int]
    exchange_txn: tuple[int, int]
    sebi: tuple[int, int]
    stamp: tuple[int, int]
    gst: tuple[int, int]
    exercise_stt: tuple[int, int]


class ChargesModel:
    """Charges of fills and exercises on any date, from dated rate sets.

    Parameters
    ----------
    rates
        One or more :class:`ChargeRates` with distinct ``effective_from`` dates (any order).
        Default :data:`DEFAULT_RATES`.
    """

    def __init__(self, rates: Sequence[ChargeRates] = DEFAULT_RATES) -> None:
        if isinstance(rates, ChargeRates) or not isinstance(rates, Sequence):
            raise ValidationError("rates", rates, "must be a sequence of ChargeRates")
        if not rates:
            raise ValidationError("rates", rates, "must hold at least one ChargeRates")
        for i, r in enumerate(rates):
            if not isinstance(r, ChargeRates):
                raise ValidationError(f"rates[{i}]", r, "must be a ChargeRates")
        ordered = sorted(rates, key=lambda r: r.effective_from)
        for a, b in itertools.pairwise(ordered):
            if a.effective_from == b.effective_from:
                raise ValidationError(
                    "rates", rates, f"two sets take effect on {a.effective_from.isoformat()}"
                )
        self.rates: tuple[ChargeRates, ...] = tuple(ordered)
        self._dates = [r.effective_from for r in ordered]
        self._exact = [
            _Exact(
                rates=r,
                stt=_exact(r.stt_sell_rate),
                exchange_txn=_exact(r.exchange_txn_rate),
                sebi=_exact(r.sebi_fee_rate),
                stamp=_exact(r.stamp_duty_buy_rate),
                gst=_exact(r.gst_rate),
                exercise_stt=_exact(r.exercise_stt_rate),
            )
            for r in ordered
        ]

    def _on(self, day: object) -> _Exact:
        if not isinstance(day, date) or isinstance(day, datetime):
            raise ValidationError("day", day, "must be a datetime.date")
        i = bisect.bisect_right(self._dates, day) - 1
        if i < 0:
            raise ConfigurationError(
                f"no charge rates in force on {day.isoformat()}: the earliest set takes effect "
                f"on {self._dates[0].isoformat()}; add a ChargeRates for that period"
            )
        return self._exact[i]

    def rates_on(self, day: date) -> ChargeRates:
        """The rate set in force on ``day``."""
        return self._on(day).rates

    def fill_charges(
        self,
        side: Side | str,
        price_paise: int,
        qty: int,
        day: date,
        first_fill_of_order: bool,
    ) -> Charges:
        """Charges of one fill.

        Parameters
        ----------
        side
            :class:`~algoengine.domain.orders.Side` (or ``"BUY"`` / ``"SELL"``).
        price_paise
            Fill price (premium per unit), paise, >= 0.
        qty
            Units filled, > 0.
        day
            Trading date (IST) of the fill: picks the rates.
        first_fill_of_order
            True for the order's first fill: it carries the order's brokerage (and its GST).

        Returns
        -------
        Charges
            Each component rounded half up to the paisa (module docstring).
        """
        try:
            s = Side(side)
        except ValueError:
            raise ValidationError("side", side, "must be Side.BUY or Side.SELL") from None
        for name, value, lo in (("price_paise", price_paise, 0), ("qty", qty, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < lo:
                raise ValidationError(name, value, f"must be an integer >= {lo}")
        if not isinstance(first_fill_of_order, bool):
            raise ValidationError("first_fill_of_order", first_fill_of_order, "must be a bool")
        x = self._on(day)
        turnover = price_paise * qty
        brokerage = x.rates.brokerage_per_order_paise if first_fill_of_order else 0
        exchange_txn = _round_half_up(turnover, x.exchange_txn)
        sebi = _round_half_up(turnover, x.sebi)
        return Charges(
            brokerage=brokerage,
            stt=_round_half_up(turnover, x.stt) if s is Side.SELL else 0,
            exchange_txn=exchange_txn,
            sebi=sebi,
            stamp=_round_half_up(turnover, x.stamp) if s is Side.BUY else 0,
            gst=_round_half_up(brokerage + exchange_txn + sebi, x.gst),
        )

    def exercise_charges(self, intrinsic_value_paise: int, day: date) -> Charges:
        """Charges of long options exercised at expiry: STT on their intrinsic value.

        Parameters
        ----------
        intrinsic_value_paise
            Total intrinsic value exercised (intrinsic per unit x units), paise, >= 0.
        day
            Expiry date (IST): picks the rates.
        """
        v = intrinsic_value_paise
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ValidationError("intrinsic_value_paise", v, "must be an integer >= 0")
        return Charges(stt=_round_half_up(v, self._on(day).exercise_stt))
