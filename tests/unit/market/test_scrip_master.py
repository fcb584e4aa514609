"""Angel One's scrip master: parsing real-format rows, malformed rows, round trips."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from algoengine.domain import Instrument, InstrumentKind, OptionType
from algoengine.errors import ValidationError
from algoengine.market import (
    DEFAULT_CONTRACTS,
    SyntheticMarket,
    load_scrip_master,
    parse_scrip_master,
    save_scrip_master,
    to_scrip_master,
)


def row(**kw: str) -> dict[str, str]:
    base = {
        "token": "58784",
        "symbol": "NIFTY28OCT2524400CE",
        "name": "NIFTY",
        "expiry": "28OCT2025",
        "strike": "2440000.000000",
        "lotsize": "75",
        "instrumenttype": "OPTIDX",
        "exch_seg": "NFO",
        "tick_size": "5.000000",
    }
    base.update(kw)
    return base


ROWS = [
    row(),
    row(token="58785", symbol="NIFTY28OCT2524400PE"),
    row(
        token="52168",
        symbol="NIFTY25NOV25FUT",
        expiry="25NOV2025",
        strike="-1.000000",
        instrumenttype="FUTIDX",
        tick_size="10.000000",
    ),
    row(
        token="61234",
        symbol="BANKNIFTY25NOV2555000PE",
        name="BANKNIFTY",
        expiry="25NOV2025",
        strike="5500000.000000",
        lotsize="35",
    ),
    # the indices
    row(
        token="99926000",
        symbol="Nifty 50",
        expiry="",
        strike="0.000000",
        lotsize="1",
        instrumenttype="AMXIDX",
        exch_seg="NSE",
        tick_size="0.000000",
    ),
    row(
        token="99926009",
        symbol="Nifty Bank",
        name="BANKNIFTY",
        expiry="",
        strike="0.000000",
        lotsize="1",
        instrumenttype="",
        exch_seg="NSE",
        tick_size="0.000000",
    ),
    # skipped: an equity, an underlying without a spec, a stock option, another segment
    row(
        token="2885",
        symbol="RELIANCE-EQ",
        name="RELIANCE",
        expiry="",
        strike="-1.000000",
        lotsize="1",
        instrumenttype="",
        exch_seg="NSE",
        tick_size="10.000000",
    ),
    row(token="40000", symbol="FINNIFTY28OCT2526000CE", name="FINNIFTY"),
    row(token="40001", symbol="RELIANCE28OCT251400CE", name="RELIANCE", instrumenttype="OPTSTK"),
    row(token="40002", symbol="SENSEX28OCT2580000CE", name="SENSEX", exch_seg="BFO"),
    row(token="40003", symbol="CRUDEOIL", name="CRUDEOIL", exch_seg="MCX", instrumenttype="FUTCOM"),
]


def test_parses_options_futures_and_indices() -> None:
    out = parse_scrip_master(ROWS, DEFAULT_CONTRACTS)
    assert [i.token for i in out] == ["58784", "58785", "52168", "61234", "99926000", "99926009"]
    ce, pe, fut, bank, nifty, banknifty = out
    assert ce == Instrument(
        token="58784",
        symbol="NIFTY28OCT2524400CE",
        exchange="NFO",
        underlying="NIFTY",
        kind=InstrumentKind.OPTION,
        expiry=date(2025, 10, 28),
        strike_paise=2_440_000,
        option_type=OptionType.CE,
        lot_size=75,  # the master's lot size, not the spec's default
        tick_paise=5,
        freeze_qty=1800,  # from the spec
    )
    assert pe.option_type is OptionType.PE
    assert fut.kind is InstrumentKind.FUTURE and fut.tick_paise == 10 and fut.strike_paise is None
    assert (bank.underlying, bank.lot_size, bank.freeze_qty) == ("BANKNIFTY", 35, 600)
    assert nifty.kind is InstrumentKind.INDEX and nifty.underlying == "NIFTY"
    assert (nifty.exchange, nifty.lot_size, nifty.tick_paise, nifty.expiry) == ("NSE", 1, 1, None)
    assert banknifty.underlying == "BANKNIFTY" and banknifty.symbol == "Nifty Bank"


def test_only_configured_underlyings_are_kept() -> None:
    out = parse_scrip_master(ROWS, [DEFAULT_CONTRACTS["BANKNIFTY"]])
    assert [i.token for i in out] == ["61234", "99926009"]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"strike": "abc"}, "strike"),
        ({"strike": "2440000.500000"}, "strike"),
        ({"strike": "0.000000"}, "strike"),
        ({"expiry": "31FEB2025"}, "expiry"),
        ({"expiry": "2025-10-28"}, "expiry"),
        ({"lotsize": "0"}, "lotsize"),
        ({"lotsize": "75.5"}, "lotsize"),
        ({"tick_size": ""}, "tick_size"),
        ({"symbol": "NIFTY28OCT2524400XX"}, "symbol"),
        ({"lotsize": "5000"}, "freeze_qty"),  # a lot larger than the freeze quantity
    ],
)
def test_a_malformed_wanted_row_names_field_and_token(bad: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_scrip_master([row(token="77777", **bad)], DEFAULT_CONTRACTS)
    assert err.value.field == field
    assert "77777" in str(err.value)


def test_a_missing_field_or_non_string_is_named() -> None:
    r = row(token="77777")
    del r["expiry"]
    with pytest.raises(ValidationError) as err:
        parse_scrip_master([r], DEFAULT_CONTRACTS)
    assert err.value.field == "expiry" and "77777" in str(err.value)
    with pytest.raises(ValidationError) as err:
        parse_scrip_master([{**row(token="77777"), "lotsize": 75}], DEFAULT_CONTRACTS)
    assert err.value.field == "lotsize"
    with pytest.raises(ValidationError) as err:
        parse_scrip_master([row(token="")], DEFAULT_CONTRACTS)
    assert err.value.field == "token"
    with pytest.raises(ValidationError):
        parse_scrip_master(["not a row"], DEFAULT_CONTRACTS)  # type: ignore[list-item]


def test_round_trip() -> None:
    parsed = parse_scrip_master(ROWS, DEFAULT_CONTRACTS)
    rows = to_scrip_master(parsed)
    assert rows[0] == ROWS[0]
    assert rows[2]["expiry"] == "25NOV2025" and rows[2]["instrumenttype"] == "FUTIDX"
    assert all(isinstance(v, str) for r in rows for v in r.values())
    assert parse_scrip_master(rows, DEFAULT_CONTRACTS) == parsed


def test_files_and_the_synthetic_master_round_trip(
    tmp_path: Path, bars_market: SyntheticMarket
) -> None:
    instruments = bars_market.instrument_master()
    path = tmp_path / "OpenAPIScripMaster.json"
    save_scrip_master(path, instruments)
    assert isinstance(json.loads(path.read_text()), list)
    assert load_scrip_master(path, DEFAULT_CONTRACTS) == instruments
    sym = {i.symbol for i in instruments}
    assert "Nifty 50" in sym and "Nifty Bank" in sym
    assert any(s.startswith("NIFTY07OCT25") and s.endswith("CE") for s in sym)


def test_a_bad_file_is_a_validation_error(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text("{not json")
    with pytest.raises(ValidationError) as err:
        load_scrip_master(path, DEFAULT_CONTRACTS)
    assert err.value.field == "path"
    path.write_text('{"token": "1"}')
    with pytest.raises(ValidationError, match="array"):
        load_scrip_master(path, DEFAULT_CONTRACTS)
