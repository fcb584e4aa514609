"""ChainView: implied vols and Greeks per strike, ATM, selection by delta and premium."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest

from algoengine import greeks
from algoengine.domain import OptionType
from algoengine.domain.market_data import MarketSlice, Universe
from algoengine.errors import ValidationError
from algoengine.market import (
    DEFAULT_CONTRACTS,
    ChainView,
    QuoteBoard,
    SyntheticMarket,
    TradingCalendar,
)

IST = timezone(timedelta(hours=5, minutes=30))
SPEC = DEFAULT_CONTRACTS["NIFTY"]
EXPIRY = date(2025, 10, 14)
CAL = TradingCalendar()
TS = int(datetime(2025, 10, 7, 12, 0, tzinfo=IST).timestamp()) * 10**9
RATE = 0.065
STRIKES = [2_400_000 + 5_000 * k for k in range(21)]  # 24000 .. 25000


def make_universe(drop_pe_at: int | None = None) -> Universe:
    insts = [SPEC.spot_instrument()]
    token = 1000
    for K in STRIKES:
        for ot in (OptionType.CE, OptionType.PE):
            if ot is OptionType.PE and drop_pe_at == K:
                continue
            insts.append(SPEC.option_instrument(str(token), EXPIRY, K, ot))
            token += 1
    # another expiry, which the view must ignore
    insts.append(SPEC.option_instrument("9999", date(2025, 10, 21), 2_450_000, OptionType.CE))
    return Universe(insts)


def sigma_of(K: float, S: float) -> float:
    return 0.12 + 0.2 * max(0.0, (S - K) / S)  # a put skew


def quote_board(u: Universe, spot: int, *, half_spread: int = 5) -> QuoteBoard:
    """Quotes at exact BSM prices (no rounding) +/- half_spread paise."""
    T = CAL.years_to_expiry(TS, EXPIRY)
    rows = [(0, spot, 0, 0, 0, 0)]
    for i in range(1, len(u)):
        inst = u[i]
        assert inst.strike_paise is not None and inst.option_type is not None
        if inst.expiry != EXPIRY:
            continue
        sig = sigma_of(inst.strike_paise, spot)
        p = greeks.price(
            inst.option_type.value, float(spot), float(inst.strike_paise), T, RATE, sig
        )
        fair = round(p)
        rows.append((i, fair, fair - half_spread, 65, fair + half_spread, 65))
    board = QuoteBoard(u)
    board.apply(MarketSlice.from_rows(TS, rows))
    return board


def test_ivs_and_greeks_per_strike() -> None:
    u = make_universe()
    spot = 2_461_000
    board = quote_board(u, spot)
    view = ChainView.build(u, board, "NIFTY", EXPIRY, TS, CAL, RATE)
    assert view.ready and len(view) == 21
    assert list(view.strikes_paise) == STRIKES
    T = CAL.years_to_expiry(TS, EXPIRY)
    assert view.years_to_expiry == T and view.spot_paise == spot
    assert view.forward_paise == pytest.approx(spot * math.exp(RATE * T))
    for j, K in enumerate(STRIKES):
        want = sigma_of(K, spot)
        assert view.ce_iv[j] == pytest.approx(want, abs=2e-4)
        assert view.pe_iv[j] == pytest.approx(want, abs=2e-4)
        g = greeks.greeks("c", float(spot), float(K), T, RATE, float(view.ce_iv[j]))
        assert view.ce_delta[j] == pytest.approx(g.delta, rel=1e-9)
        assert view.ce_gamma[j] == pytest.approx(g.gamma, rel=1e-9)
        assert view.ce_vega[j] == pytest.approx(g.vega, rel=1e-9)
        assert view.ce_theta[j] == pytest.approx(g.theta, rel=1e-9)
        assert view.pe_delta[j] == pytest.approx(view.ce_delta[j] - 1.0, abs=2e-3)
    assert (np.diff(view.ce_delta) < 0).all() and (np.diff(view.pe_delta) < 0).all()


def test_atm_is_the_strike_nearest_the_forward() -> None:
    u = make_universe()
    # spot 24,620: nearest strike 24,600, but the forward (~24,644) is nearest 24,650
    board = quote_board(u, 2_462_000)
    view = ChainView.build(u, board, "NIFTY", EXPIRY, TS, CAL, RATE)
    assert view.forward_paise > 2_462_500
    assert view.atm_strike() == 2_465_000
    assert view.atm_strike("spot") == 2_460_000
    with pytest.raises(ValidationError):
        view.atm_strike("future")  # type: ignore[arg-type]


def test_strike_by_delta_and_by_premium() -> None:
    u = make_universe()
    board = quote_board(u, 2_450_000)
    view = ChainView.build(u, board, "NIFTY", EXPIRY, TS, CAL, RATE)
    for ot, deltas in (("CE", view.ce_delta), ("PE", view.pe_delta)):
        for target in (0.1, 0.25, 0.5):
            k = view.strike_by_delta(target, ot)
            j = STRIKES.index(k)  # type: ignore[arg-type]
            assert abs(abs(deltas[j]) - target) == pytest.approx(
                np.min(np.abs(np.abs(deltas) - target))
            )
    assert view.strike_by_delta(0.25, OptionType.PE) < 2_450_000  # type: ignore[operator]
    assert view.strike_by_delta(0.25, "CE") > 2_450_000  # type: ignore[operator]
    target = 5_000.0  # Rs 50
    k = view.strike_by_premium(target, "PE")
    j = STRIKES.index(k)  # type: ignore[arg-type]
    assert abs(view.pe_mid_paise[j] - target) == np.nanmin(np.abs(view.pe_mid_paise - target))
    for bad in (0.0, 1.0, -0.2, float("nan")):
        with pytest.raises(ValidationError):
            view.strike_by_delta(bad, "CE")
    with pytest.raises(ValidationError):
        view.strike_by_premium(-5, "CE")
    with pytest.raises(ValidationError) as err:
        view.strike_by_delta(0.25, "XX")
    assert err.value.field == "option_type"


def test_index_of_and_missing_instruments() -> None:
    u = make_universe(drop_pe_at=2_450_000)
    board = quote_board(u, 2_450_000)
    view = ChainView.build(u, board, "NIFTY", EXPIRY, TS, CAL, RATE)
    j = STRIKES.index(2_450_000)
    assert view.pe_index[j] == -1 and math.isnan(view.pe_iv[j]) and math.isnan(view.pe_delta[j])
    ce = view.index_of(2_450_000, "CE")
    assert u[ce].strike_paise == 2_450_000 and u[ce].option_type is OptionType.CE
    assert view.index_of(2_455_000, OptionType.PE) == int(view.pe_index[j + 1])
    with pytest.raises(ValidationError):
        view.index_of(2_450_000, "PE")
    with pytest.raises(ValidationError) as err:
        view.index_of(2_452_500, "CE")
    assert err.value.field == "strike_paise"


def test_one_sided_quotes_get_greeks_from_the_smile() -> None:
    u = make_universe()
    board = quote_board(u, 2_450_000)
    j = STRIKES.index(2_480_000)
    i = int(ChainView(u, "NIFTY", EXPIRY, CAL, rate=RATE).ce_index[j])
    board.apply(MarketSlice.from_rows(TS, [(i, 1000, 0, 0, 1005, 65)]))  # no bid
    view = ChainView.build(u, board, "NIFTY", EXPIRY, TS, CAL, RATE)
    assert math.isnan(view.ce_mid_paise[j]) and math.isnan(view.ce_iv[j])
    # the OTM call's smile vol falls back to the put's IV at that strike
    assert view.ce_sigma[j] == view.pe_iv[j]
    assert 0.0 < view.ce_delta[j] < 0.5
    # stale quotes can be excluded
    aged = ChainView.build(
        u, board, "NIFTY", EXPIRY, TS + 60 * 10**9, CAL, RATE, max_quote_age_ns=0
    )
    assert np.isnan(aged.ce_iv).all()


def test_not_ready_before_the_index_and_limits_at_expiry() -> None:
    u = make_universe()
    empty = QuoteBoard(u)
    view = ChainView.build(u, empty, "NIFTY", EXPIRY, TS, CAL, RATE)
    assert not view.ready and view.atm_strike() is None
    assert view.strike_by_delta(0.3, "CE") is None and view.strike_by_premium(100, "PE") is None
    board = quote_board(u, 2_450_000)
    close = CAL.session_close_ns(EXPIRY)
    view.update(board, close)
    assert view.years_to_expiry == 0.0
    j = STRIKES.index(2_400_000)
    assert view.ce_delta[j] == 1.0 and view.pe_delta[j] == 0.0 and view.ce_gamma[j] == 0.0


def test_bad_construction() -> None:
    u = make_universe()
    with pytest.raises(ValidationError) as err:
        ChainView(u, "BANKNIFTY", EXPIRY, CAL, rate=RATE)
    assert err.value.field == "underlying"
    with pytest.raises(ValidationError) as err:
        ChainView(u, "NIFTY", date(2025, 10, 28), CAL, rate=RATE)
    assert err.value.field == "expiry"
    with pytest.raises(ValidationError) as err:
        ChainView(u, "NIFTY", EXPIRY, CAL, rate=float("nan"))
    assert err.value.field == "rate"
    view = ChainView(u, "NIFTY", EXPIRY, CAL, rate=RATE)
    with pytest.raises(ValidationError):
        view.update(QuoteBoard(make_universe()), TS)


def test_on_a_synthetic_market(
    bars_market: SyntheticMarket, bars_slices: list[MarketSlice]
) -> None:
    board = QuoteBoard(bars_market.universe)
    e = date(2025, 10, 14)
    view = ChainView(bars_market.universe, "NIFTY", e, bars_market.calendar, rate=0.065)
    for s in bars_slices[:120]:
        board.apply(s)
        view.update(board, s.ts_ns)
    atm = view.atm_strike()
    assert atm is not None
    j = int(np.searchsorted(view.strikes_paise, atm))
    assert 0.4 < view.ce_delta[j] < 0.6 and -0.6 < view.pe_delta[j] < -0.4
    k25 = view.strike_by_delta(0.25, "CE")
    assert k25 is not None and k25 > atm
