"""Contract specifications of the index derivatives we trade, and their trading symbols.

A :class:`ContractSpec` says how the exchange lists the options of one underlying: lot size,
freeze quantity, tick, strike step, expiry weekdays, plus what the synthetic market needs to
simulate it (how many expiries and strikes are quoted, the initial spot and its volatility).
Lot sizes, freeze quantities and expiry weekdays change by exchange circular: the values in
:data:`DEFAULT_CONTRACTS` are defaults that configuration overrides (``dataclasses.replace``
or :meth:`ContractSpec.from_mapping`); no other module may hard-code them.

Trading symbols follow Angel One's scrip master: ``NIFTY28OCT2524400CE`` (name, expiry as
DDMONYY, strike in rupees, CE/PE) and ``NIFTY28OCT25FUT``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import date
from types import MappingProxyType
from typing import Any

from algoengine.domain.instruments import Instrument, InstrumentKind, OptionType
from algoengine.errors import ValidationError

__all__ = [
    "DEFAULT_CONTRACTS",
    "ContractSpec",
    "contracts_by_underlying",
    "future_symbol",
    "option_symbol",
]

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def _check_int(name: str, value: object, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(name, value, "must be an integer")
    if value < minimum:
        raise ValidationError(name, value, f"must be >= {minimum}")
    return value


def _check_weekday(name: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 6:
        raise ValidationError(name, value, "must be a weekday 0 (Monday) .. 6 (Sunday) or None")


def _check_str(name: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(name, value, "must be a non-empty string")


@dataclass(frozen=True, kw_only=True, slots=True)
class ContractSpec:
    """How the options (and futures) of one underlying are listed and quoted.

    Parameters
    ----------
    underlying
        The underlying's name as in trading symbols, e.g. ``"NIFTY"``.
    spot_token, spot_symbol
        The index instrument's token and symbol, e.g. ``"99926000"``, ``"Nifty 50"``.
    exchange
        The derivatives segment, ``"NFO"``.
    spot_exchange
        The index's segment, ``"NSE"``.
    lot_size
        Units per lot (>= 1).
    freeze_qty
        The largest order in units the exchange accepts (>= ``lot_size``).
    tick_paise
        Option/future price tick in paise (5 = Rs 0.05).
    spot_tick_paise
        The index's price resolution in paise (1: indices are computed to Rs 0.01).
    strike_step_paise
        Distance between listed strikes in paise (NIFTY 5,000 = 50 points).
    weekly_expiry_weekday
        Weekday (Monday = 0) of weekly expiries, or ``None`` if there are none.
    monthly_expiry_weekday
        Monthly expiries fall on the LAST such weekday of the month; ``None`` if none. At
        least one of the two weekdays must be set.
    expiries_listed
        How many of the nearest expiries are quoted (>= 1).
    strikes_each_side
        How many strikes are quoted on each side of the at-the-money strike (>= 1).
    initial_spot_paise
        The synthetic market's starting index level in paise.
    annual_vol
        The synthetic index's volatility per sqrt(year) of trading time (0.13 = 13%); also
        the default at-the-money implied volatility of its options.
    """

    underlying: str
    spot_token: str
    spot_symbol: str
    exchange: str = "NFO"
    spot_exchange: str = "NSE"
    lot_size: int
    freeze_qty: int
    tick_paise: int = 5
    spot_tick_paise: int = 1
    strike_step_paise: int
    weekly_expiry_weekday: int | None
    monthly_expiry_weekday: int | None
    expiries_listed: int
    strikes_each_side: int
    initial_spot_paise: int
    annual_vol: float

    def __post_init__(self) -> None:
        for name in ("underlying", "spot_token", "spot_symbol", "exchange", "spot_exchange"):
            _check_str(name, getattr(self, name))
        lot = _check_int("lot_size", self.lot_size, 1)
        _check_int("freeze_qty", self.freeze_qty, lot)
        tick = _check_int("tick_paise", self.tick_paise, 1)
        _check_int("spot_tick_paise", self.spot_tick_paise, 1)
        step = _check_int("strike_step_paise", self.strike_step_paise, 1)
        if step % tick:
            raise ValidationError(
                "strike_step_paise", step, f"must be a multiple of tick_paise ({tick})"
            )
        _check_weekday("weekly_expiry_weekday", self.weekly_expiry_weekday)
        _check_weekday("monthly_expiry_weekday", self.monthly_expiry_weekday)
        if self.weekly_expiry_weekday is None and self.monthly_expiry_weekday is None:
            raise ValidationError(
                "monthly_expiry_weekday", None, "a contract needs weekly or monthly expiries"
            )
        _check_int("expiries_listed", self.expiries_listed, 1)
        _check_int("strikes_each_side", self.strikes_each_side, 1)
        _check_int("initial_spot_paise", self.initial_spot_paise, 1)
        vol = self.annual_vol
        if (
            not isinstance(vol, int | float)
            or isinstance(vol, bool)
            or not math.isfinite(vol)
            or not 0.0 < vol < 5.0
        ):
            raise ValidationError("annual_vol", vol, "must be a number in (0, 5)")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ContractSpec:
        """Build a spec from configuration (a TOML/YAML table); unknown keys are an error.

        Raises
        ------
        ValidationError
            naming an unknown key or the first field that breaks a rule.
        """
        if not isinstance(data, Mapping):
            raise ValidationError("contract", data, "must be a mapping")
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise ValidationError(str(key), data[key], "unknown contract field")
        try:
            return cls(**dict(data))
        except TypeError as exc:  # a required field is missing
            raise ValidationError("contract", dict(data), str(exc)) from None

    def spot_instrument(self) -> Instrument:
        """The index instrument (lot 1, freeze 1, tick ``spot_tick_paise``)."""
        return Instrument(
            token=self.spot_token,
            symbol=self.spot_symbol,
            exchange=self.spot_exchange,
            underlying=self.underlying,
            kind=InstrumentKind.INDEX,
            expiry=None,
            strike_paise=None,
            option_type=None,
            lot_size=1,
            tick_paise=self.spot_tick_paise,
            freeze_qty=1,
        )

    def option_instrument(
        self, token: str, expiry: date, strike_paise: int, option_type: OptionType
    ) -> Instrument:
        """An option of this contract with the Angel One trading symbol."""
        return Instrument(
            token=token,
            symbol=option_symbol(self.underlying, expiry, strike_paise, option_type),
            exchange=self.exchange,
            underlying=self.underlying,
            kind=InstrumentKind.OPTION,
            expiry=expiry,
            strike_paise=strike_paise,
            option_type=option_type,
            lot_size=self.lot_size,
            tick_paise=self.tick_paise,
            freeze_qty=self.freeze_qty,
        )

    def future_instrument(self, token: str, expiry: date) -> Instrument:
        """A future of this contract with the Angel One trading symbol."""
        return Instrument(
            token=token,
            symbol=future_symbol(self.underlying, expiry),
            exchange=self.exchange,
            underlying=self.underlying,
            kind=InstrumentKind.FUTURE,
            expiry=expiry,
            strike_paise=None,
            option_type=None,
            lot_size=self.lot_size,
            tick_paise=self.tick_paise,
            freeze_qty=self.freeze_qty,
        )


def contracts_by_underlying(
    contracts: Mapping[str, ContractSpec] | Iterable[ContractSpec],
) -> dict[str, ContractSpec]:
    """Normalise specs given as a mapping or an iterable to ``{underlying: spec}``.

    Raises ValidationError for a non-spec, a key that differs from the spec's underlying, or
    two specs of one underlying.
    """
    items = list(contracts.values()) if isinstance(contracts, Mapping) else list(contracts)
    if isinstance(contracts, Mapping):
        for key, spec in contracts.items():
            if isinstance(spec, ContractSpec) and key != spec.underlying:
                raise ValidationError("contracts", key, f"key differs from {spec.underlying!r}")
    out: dict[str, ContractSpec] = {}
    for spec in items:
        if not isinstance(spec, ContractSpec):
            raise ValidationError("contracts", spec, "must hold ContractSpec objects")
        if spec.underlying in out:
            raise ValidationError("contracts", spec.underlying, "duplicate underlying")
        out[spec.underlying] = spec
    return out


def _ddmonyy(expiry: date) -> str:
    return f"{expiry.day:02d}{_MONTHS[expiry.month - 1]}{expiry.year % 100:02d}"


def option_symbol(
    underlying: str, expiry: date, strike_paise: int, option_type: OptionType | str
) -> str:
    """Angel One's trading symbol of an option: ``NIFTY28OCT2524400CE``.

    The strike is written in rupees, without a fraction when it is whole (``24400``), else
    with its paise (``24412.5``).
    """
    rupees, paise = divmod(strike_paise, 100)
    strike = str(rupees) if paise == 0 else f"{rupees}.{paise:02d}".rstrip("0")
    return f"{underlying}{_ddmonyy(expiry)}{strike}{OptionType(option_type).value}"


def future_symbol(underlying: str, expiry: date) -> str:
    """Angel One's trading symbol of a future: ``NIFTY28OCT25FUT``."""
    return f"{underlying}{_ddmonyy(expiry)}FUT"


#: Defaults as of late 2025 (NSE circulars); configuration overrides them.
DEFAULT_CONTRACTS: Mapping[str, ContractSpec] = MappingProxyType(
    {
        "NIFTY": ContractSpec(
            underlying="NIFTY",
            spot_token="99926000",
            spot_symbol="Nifty 50",
            lot_size=65,
            freeze_qty=1800,
            strike_step_paise=5_000,
            weekly_expiry_weekday=1,
            monthly_expiry_weekday=1,
            expiries_listed=3,
            strikes_each_side=20,
            initial_spot_paise=2_450_000,
            annual_vol=0.13,
        ),
        "BANKNIFTY": ContractSpec(
            underlying="BANKNIFTY",
            spot_token="99926009",
            spot_symbol="Nifty Bank",
            lot_size=30,
            freeze_qty=600,
            strike_step_paise=10_000,
            weekly_expiry_weekday=None,
            monthly_expiry_weekday=1,
            expiries_listed=2,
            strikes_each_side=20,
            initial_spot_paise=5_500_000,
            annual_vol=0.15,
        ),
    }
)
