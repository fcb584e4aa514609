"""Tradable instruments: index options, index futures and the indices themselves.

Lot sizes, tick sizes and freeze quantities change by exchange circular: they come from the
instrument master (Angel One's scrip master) or configuration, never from code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from algoengine.domain._checks import check_enum, check_int, check_optional_int, check_str
from algoengine.domain.errors import ValidationError

__all__ = ["Instrument", "InstrumentKind", "OptionType"]


class InstrumentKind(StrEnum):
    """What an instrument is."""

    INDEX = "index"
    FUTURE = "future"
    OPTION = "option"


class OptionType(StrEnum):
    """Call or put, spelt as the exchange does (the end of the trading symbol)."""

    CE = "CE"
    PE = "PE"


@dataclass(frozen=True, kw_only=True, slots=True)
class Instrument:
    """One instrument, as the exchange defines it.

    Parameters
    ----------
    token
        The exchange token (Angel One ``symboltoken``), e.g. ``"58784"``.
    symbol
        The trading symbol, e.g. ``"NIFTY28OCT2524400CE"``.
    exchange
        The exchange segment, e.g. ``"NFO"``.
    underlying
        The underlying's name, e.g. ``"NIFTY"``.
    kind
        Index, future or option.
    expiry
        Expiry date (futures and options); ``None`` for an index.
    strike_paise
        Strike in paise (options only), e.g. ``2440000`` for 24,400.00.
    option_type
        ``OptionType.CE`` or ``OptionType.PE`` (options only).
    lot_size
        Units per lot; order quantities are in units and must be multiples of it.
    tick_paise
        Price tick in paise (5 = Rs 0.05); prices must be multiples of it.
    freeze_qty
        The largest quantity in units the exchange accepts in one order; larger orders are
        rejected (the OMS slices them). At least ``lot_size``.

    Raises
    ------
    ValidationError
        naming the first field that breaks a rule.
    """

    token: str
    symbol: str
    exchange: str
    underlying: str
    kind: InstrumentKind
    expiry: date | None
    strike_paise: int | None
    option_type: OptionType | None
    lot_size: int
    tick_paise: int
    freeze_qty: int

    def __post_init__(self) -> None:
        check_str("token", self.token)
        check_str("symbol", self.symbol)
        check_str("exchange", self.exchange)
        check_str("underlying", self.underlying)
        kind = check_enum("kind", self.kind, InstrumentKind)
        if self.expiry is not None and not isinstance(self.expiry, date):
            raise ValidationError("expiry", self.expiry, "must be a datetime.date or None")
        check_optional_int("strike_paise", self.strike_paise, minimum=1)
        if self.option_type is not None:
            check_enum("option_type", self.option_type, OptionType)
        lot = check_int("lot_size", self.lot_size, minimum=1)
        check_int("tick_paise", self.tick_paise, minimum=1)
        check_int("freeze_qty", self.freeze_qty, minimum=lot)

        if kind is InstrumentKind.OPTION:
            if self.expiry is None:
                raise ValidationError("expiry", self.expiry, "an option needs an expiry")
            if self.strike_paise is None:
                raise ValidationError("strike_paise", self.strike_paise, "an option needs one")
            if self.option_type is None:
                raise ValidationError("option_type", self.option_type, "an option needs CE or PE")
            return
        if kind is InstrumentKind.FUTURE and self.expiry is None:
            raise ValidationError("expiry", self.expiry, "a future needs an expiry")
        if kind is InstrumentKind.INDEX and self.expiry is not None:
            raise ValidationError("expiry", self.expiry, "an index has no expiry")
        if self.strike_paise is not None:
            raise ValidationError("strike_paise", self.strike_paise, f"a {kind} has no strike")
        if self.option_type is not None:
            raise ValidationError("option_type", self.option_type, f"a {kind} has no option type")

    @property
    def is_option(self) -> bool:
        """True for an option."""
        return self.kind is InstrumentKind.OPTION

    def is_on_tick(self, price_paise: int) -> bool:
        """True if ``price_paise`` is a multiple of the tick."""
        return price_paise % self.tick_paise == 0

    def is_lot_multiple(self, qty: int) -> bool:
        """True if ``qty`` (units) is a whole number of lots."""
        return qty % self.lot_size == 0
