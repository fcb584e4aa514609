"""Angel One's instrument master (``OpenAPIScripMaster.json``) to and from :class:`Instrument`.

The file is a JSON array of objects whose values are all strings::

    {"token": "58784", "symbol": "NIFTY28OCT2524400CE", "name": "NIFTY",
     "expiry": "28OCT2025", "strike": "2440000.000000", "lotsize": "75",
     "instrumenttype": "OPTIDX", "exch_seg": "NFO", "tick_size": "5.000000"}

``strike`` and ``tick_size`` are rupees x 100, i.e. paise (``"5.000000"`` is Rs 0.05);
``lotsize`` is in units; ``expiry`` is ``DDMONYYYY``. CE/PE is only the end of ``symbol``.

What is read
------------
- ``exch_seg`` ``NFO``, ``instrumenttype`` ``OPTIDX``: an option; ``FUTIDX``: a future. The
  underlying is ``name``; rows of underlyings without a :class:`ContractSpec` are skipped.
- ``exch_seg`` ``NSE`` with a token that is some spec's ``spot_token`` (``instrumenttype``
  ``AMXIDX`` or empty): the index; its underlying is that spec's. Lot size 1, freeze 1.
- Every other row is skipped.

A row of a wanted type that is malformed raises :class:`ValidationError` naming the field
(``"strike"``, ``"expiry"``, ...) with the row's token in the message. ``freeze_qty`` is not in
the master: it comes from the underlying's spec.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from algoengine.domain.instruments import Instrument, InstrumentKind, OptionType
from algoengine.errors import ValidationError
from algoengine.market.contracts import ContractSpec, contracts_by_underlying

__all__ = [
    "load_scrip_master",
    "parse_scrip_master",
    "save_scrip_master",
    "to_scrip_master",
]

_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_MONTHS = {m: i + 1 for i, m in enumerate(_MONTH_NAMES)}
_EXPIRY_RE = re.compile(r"^(\d{2})([A-Z]{3})(\d{4})$")
# a non-negative decimal with an all-zero fraction (the master writes 6 decimals)
_WHOLE_RE = re.compile(r"^\s*(-?\d+)(?:\.(\d*))?\s*$")
_INDEX_TYPES = ("AMXIDX", "")


def _bad(field: str, value: object, token: str, message: str) -> ValidationError:
    return ValidationError(field, value, f"row token {token!r}: {message}")


def _get(row: Mapping[str, Any], field: str, token: str) -> str:
    value = row.get(field)
    if not isinstance(value, str):
        raise _bad(field, value, token, "missing or not a string")
    return value


def _whole(row: Mapping[str, Any], field: str, token: str, *, minimum: int) -> int:
    """A field written as a decimal with a zero fraction ("2440000.000000") as an int."""
    text = _get(row, field, token)
    m = _WHOLE_RE.match(text)
    if m is None or (m.group(2) and m.group(2).strip("0")):
        raise _bad(field, text, token, "must be a whole number (e.g. '2440000.000000')")
    value = int(m.group(1))
    if value < minimum:
        raise _bad(field, text, token, f"must be >= {minimum}")
    return value


def _expiry(row: Mapping[str, Any], token: str) -> date:
    text = _get(row, "expiry", token)
    m = _EXPIRY_RE.match(text.strip().upper())
    month = _MONTHS.get(m.group(2)) if m else None
    if m is None or month is None:
        raise _bad("expiry", text, token, "must be DDMONYYYY, e.g. '28OCT2025'")
    try:
        return date(int(m.group(3)), month, int(m.group(1)))
    except ValueError:
        raise _bad("expiry", text, token, "not a calendar date") from None


def _instrument(token: str, **kwargs: Any) -> Instrument:
    try:
        return Instrument(token=token, **kwargs)
    except ValidationError as exc:
        raise _bad(exc.field, exc.value, token, exc.message) from None


def _parse_row(
    row: Mapping[str, Any], specs: Mapping[str, ContractSpec], spots: Mapping[str, ContractSpec]
) -> Instrument | None:
    seg = row.get("exch_seg")
    itype = row.get("instrumenttype")
    token_obj = row.get("token")
    if seg == "NSE" and isinstance(token_obj, str) and token_obj in spots:
        if itype not in _INDEX_TYPES:
            return None
        spec = spots[token_obj]
        token = token_obj
        symbol = _get(row, "symbol", token)
        # indices are not traded: a missing, zero or negative tick means the spec's
        tick = spec.spot_tick_paise
        m = _WHOLE_RE.match(str(row.get("tick_size", "")))
        if m is not None and not (m.group(2) or "").strip("0") and int(m.group(1)) > 0:
            tick = int(m.group(1))
        return _instrument(
            token,
            symbol=symbol,
            exchange="NSE",
            underlying=spec.underlying,
            kind=InstrumentKind.INDEX,
            expiry=None,
            strike_paise=None,
            option_type=None,
            lot_size=1,
            tick_paise=tick,
            freeze_qty=1,
        )
    if seg != "NFO" or itype not in ("OPTIDX", "FUTIDX"):
        return None
    name = row.get("name")
    spec_or_none = specs.get(name) if isinstance(name, str) else None
    if spec_or_none is None:
        return None
    spec = spec_or_none
    if not isinstance(token_obj, str) or not token_obj.strip():
        raise ValidationError("token", token_obj, f"a {itype} row of {name} needs a token")
    token = token_obj
    symbol = _get(row, "symbol", token)
    expiry = _expiry(row, token)
    lot = _whole(row, "lotsize", token, minimum=1)
    tick = _whole(row, "tick_size", token, minimum=1)
    if itype == "FUTIDX":
        return _instrument(
            token,
            symbol=symbol,
            exchange="NFO",
            underlying=spec.underlying,
            kind=InstrumentKind.FUTURE,
            expiry=expiry,
            strike_paise=None,
            option_type=None,
            lot_size=lot,
            tick_paise=tick,
            freeze_qty=spec.freeze_qty,
        )
    strike = _whole(row, "strike", token, minimum=1)
    suffix = symbol.strip()[-2:].upper()
    if suffix not in ("CE", "PE"):
        raise _bad("symbol", symbol, token, "an option symbol must end in CE or PE")
    return _instrument(
        token,
        symbol=symbol,
        exchange="NFO",
        underlying=spec.underlying,
        kind=InstrumentKind.OPTION,
        expiry=expiry,
        strike_paise=strike,
        option_type=OptionType(suffix),
        lot_size=lot,
        tick_paise=tick,
        freeze_qty=spec.freeze_qty,
    )


def parse_scrip_master(
    rows: Iterable[Mapping[str, Any]],
    contracts: Mapping[str, ContractSpec] | Iterable[ContractSpec],
) -> list[Instrument]:
    """The index options, index futures and indices of ``rows`` (the master's objects).

    Parameters
    ----------
    rows
        The master's JSON objects (all values strings).
    contracts
        The specs of the underlyings to keep (by underlying, or an iterable of specs); they
        give the freeze quantity and the index tokens.

    Returns
    -------
    list[Instrument]
        In the order of the rows.

    Raises
    ------
    ValidationError
        for a malformed row of a wanted type, naming the field; the message names the token.
    """
    specs = contracts_by_underlying(contracts)
    spots = {s.spot_token: s for s in specs.values()}
    out: list[Instrument] = []
    for n, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ValidationError("rows", row, f"row {n} is not an object")
        inst = _parse_row(row, specs, spots)
        if inst is not None:
            out.append(inst)
    return out


def _decimal6(value: int) -> str:
    return f"{value}.000000"


def to_scrip_master(instruments: Iterable[Instrument]) -> list[dict[str, str]]:
    """The master's rows for ``instruments`` (what :func:`parse_scrip_master` reads back)."""
    out: list[dict[str, str]] = []
    for inst in instruments:
        if not isinstance(inst, Instrument):
            raise ValidationError("instruments", inst, "must hold Instrument objects")
        expiry = ""
        if inst.expiry is not None:
            e = inst.expiry
            expiry = f"{e.day:02d}{_MONTH_NAMES[e.month - 1]}{e.year:04d}"
        if inst.kind is InstrumentKind.OPTION:
            itype, strike = "OPTIDX", _decimal6(inst.strike_paise or 0)
        elif inst.kind is InstrumentKind.FUTURE:
            itype, strike = "FUTIDX", "-1.000000"
        else:
            itype, strike = "AMXIDX", "0.000000"
        out.append(
            {
                "token": inst.token,
                "symbol": inst.symbol,
                "name": inst.underlying,
                "expiry": expiry,
                "strike": strike,
                "lotsize": str(inst.lot_size),
                "instrumenttype": itype,
                "exch_seg": inst.exchange,
                "tick_size": _decimal6(inst.tick_paise),
            }
        )
    return out


def load_scrip_master(
    path: str | Path, contracts: Mapping[str, ContractSpec] | Iterable[ContractSpec]
) -> list[Instrument]:
    """Read an ``OpenAPIScripMaster.json`` file; see :func:`parse_scrip_master`.

    Raises ValidationError (field ``"path"``) if the file is not a JSON array.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValidationError("path", str(p), f"not valid JSON: {exc}") from None
    if not isinstance(data, list):
        raise ValidationError("path", str(p), "the scrip master must be a JSON array")
    return parse_scrip_master(data, contracts)


def save_scrip_master(path: str | Path, instruments: Iterable[Instrument]) -> None:
    """Write ``instruments`` as an ``OpenAPIScripMaster.json`` file."""
    Path(path).write_text(json.dumps(to_scrip_master(instruments)), encoding="utf-8")
