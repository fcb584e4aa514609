"""ContractSpec: defaults, validation, configuration and trading symbols."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from algoengine.domain import InstrumentKind, OptionType
from algoengine.errors import ValidationError
from algoengine.market import (
    DEFAULT_CONTRACTS,
    ContractSpec,
    contracts_by_underlying,
    future_symbol,
    option_symbol,
)


def test_defaults() -> None:
    nifty, bank = DEFAULT_CONTRACTS["NIFTY"], DEFAULT_CONTRACTS["BANKNIFTY"]
    assert (nifty.lot_size, nifty.freeze_qty, nifty.weekly_expiry_weekday) == (65, 1800, 1)
    assert (nifty.spot_token, nifty.spot_symbol, nifty.strike_step_paise) == (
        "99926000",
        "Nifty 50",
        5_000,
    )
    assert (bank.lot_size, bank.freeze_qty, bank.weekly_expiry_weekday) == (30, 600, None)
    assert (bank.monthly_expiry_weekday, bank.spot_token, bank.strike_step_paise) == (
        1,
        "99926009",
        10_000,
    )
    spot = nifty.spot_instrument()
    assert spot.kind is InstrumentKind.INDEX and spot.exchange == "NSE"
    assert (spot.lot_size, spot.freeze_qty, spot.expiry) == (1, 1, None)


def test_symbols_follow_angel_one() -> None:
    assert option_symbol("NIFTY", date(2025, 10, 28), 2_440_000, "CE") == "NIFTY28OCT2524400CE"
    assert option_symbol("BANKNIFTY", date(2025, 11, 25), 5_500_000, OptionType.PE) == (
        "BANKNIFTY25NOV2555000PE"
    )
    assert option_symbol("NIFTY", date(2025, 1, 2), 2_441_250, "PE") == "NIFTY02JAN2524412.5PE"
    assert future_symbol("NIFTY", date(2025, 10, 28)) == "NIFTY28OCT25FUT"
    inst = DEFAULT_CONTRACTS["NIFTY"].option_instrument(
        "58784", date(2025, 10, 28), 2_440_000, OptionType.CE
    )
    assert inst.symbol == "NIFTY28OCT2524400CE" and inst.freeze_qty == 1800
    fut = DEFAULT_CONTRACTS["NIFTY"].future_instrument("1", date(2025, 10, 28))
    assert fut.kind is InstrumentKind.FUTURE and fut.symbol == "NIFTY28OCT25FUT"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"lot_size": 0}, "lot_size"),
        ({"freeze_qty": 10}, "freeze_qty"),
        ({"strike_step_paise": 5_001}, "strike_step_paise"),
        ({"weekly_expiry_weekday": 7}, "weekly_expiry_weekday"),
        ({"weekly_expiry_weekday": None, "monthly_expiry_weekday": None}, "monthly_expiry_weekday"),
        ({"expiries_listed": 0}, "expiries_listed"),
        ({"annual_vol": -0.1}, "annual_vol"),
        ({"annual_vol": float("nan")}, "annual_vol"),
        ({"underlying": ""}, "underlying"),
        ({"lot_size": True}, "lot_size"),
    ],
)
def test_bad_specs_name_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        dataclasses.replace(DEFAULT_CONTRACTS["NIFTY"], **change)  # type: ignore[arg-type]
    assert err.value.field == field


def test_from_mapping_overrides_and_rejects_unknown_keys() -> None:
    data = {
        f.name: getattr(DEFAULT_CONTRACTS["NIFTY"], f.name)
        for f in dataclasses.fields(ContractSpec)
    }
    data["lot_size"] = 75
    assert ContractSpec.from_mapping(data).lot_size == 75
    with pytest.raises(ValidationError) as err:
        ContractSpec.from_mapping({**data, "lotsize": 75})
    assert err.value.field == "lotsize"
    del data["lot_size"]
    with pytest.raises(ValidationError, match="lot_size"):
        ContractSpec.from_mapping(data)


def test_contracts_by_underlying() -> None:
    specs = contracts_by_underlying(DEFAULT_CONTRACTS.values())
    assert list(specs) == ["NIFTY", "BANKNIFTY"]
    assert contracts_by_underlying(DEFAULT_CONTRACTS) == specs
    with pytest.raises(ValidationError):
        contracts_by_underlying([DEFAULT_CONTRACTS["NIFTY"]] * 2)
    with pytest.raises(ValidationError):
        contracts_by_underlying({"BANKNIFTY": DEFAULT_CONTRACTS["NIFTY"]})
