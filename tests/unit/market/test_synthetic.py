"""The synthetic market: determinism, quote sanity, chain shape, smile, expiry, ticks mode."""

from __future__ import annotations

import dataclasses
import itertools
import math
from datetime import date

import numpy as np
import numpy.typing as npt
import pytest

from algoengine.brokers.paper import PaperExchange
from algoengine.domain.market_data import MarketSlice
from algoengine.errors import ValidationError
from algoengine.market import (
    DEFAULT_CONTRACTS,
    ChainView,
    MarketFeed,
    QuoteBoard,
    SmileConfig,
    SyntheticMarket,
    SyntheticMarketConfig,
    depth_levels,
)
from tests.unit.market.conftest import END, SEED, START

I64 = npt.NDArray[np.int64]
MIN_NS = 60 * 10**9


def same(a: MarketSlice, b: MarketSlice) -> bool:
    if (a.ts_ns, a.bar_close) != (b.ts_ns, b.bar_close):
        return False
    for name in ("idx", "ltp_paise", "bid_paise", "bid_qty", "ask_paise", "ask_qty", "volume"):
        if not np.array_equal(getattr(a, name), getattr(b, name)):
            return False
    for name in ("oi", "open_paise", "high_paise", "low_paise"):
        x, y = getattr(a, name), getattr(b, name)
        if (x is None) != (y is None) or (x is not None and not np.array_equal(x, y)):
            return False
    return True


def rows(slices: list[MarketSlice], name: str) -> I64:
    return np.concatenate([getattr(s, name) for s in slices])


# ---- determinism and shape -------------------------------------------------------------------


def test_same_seed_same_market_and_other_seed_other_market() -> None:
    day = date(2025, 10, 6)
    a = list(SyntheticMarket(SyntheticMarketConfig(seed=5), day, day))
    b = list(SyntheticMarket(SyntheticMarketConfig(seed=5), day, day))
    c = list(SyntheticMarket(SyntheticMarketConfig(seed=6), day, day))
    assert len(a) == len(b) == 375
    assert all(same(x, y) for x, y in zip(a, b, strict=True))
    assert not all(same(x, y) for x, y in zip(a, c, strict=True))


def test_iterating_twice_gives_the_same_slices(
    bars_market: SyntheticMarket, bars_slices: list[MarketSlice]
) -> None:
    again = list(bars_market)
    assert len(again) == len(bars_slices)
    assert all(same(x, y) for x, y in zip(again, bars_slices, strict=True))


def test_a_market_is_a_feed(bars_market: SyntheticMarket) -> None:
    assert isinstance(bars_market, MarketFeed)
    assert bars_market.trading_days == [date(2025, 10, 6), date(2025, 10, 7), date(2025, 10, 8)]


def test_one_bar_slice_per_session_minute_at_its_close(
    bars_market: SyntheticMarket, bars_slices: list[MarketSlice]
) -> None:
    cal = bars_market.calendar
    expected = [
        cal.session_open_ns(day) + (m + 1) * MIN_NS
        for day in bars_market.trading_days
        for m in range(375)
    ]
    assert [s.ts_ns for s in bars_slices] == expected
    assert all(s.bar_close and s.open_paise is not None for s in bars_slices)
    # the last bar of a day closes at 15:30
    assert bars_slices[374].ts_ns == cal.session_close_ns(START)


def test_universe(bars_market: SyntheticMarket) -> None:
    u = bars_market.universe
    assert "99926000" in u and "99926009" in u
    assert u.expiries("NIFTY") == [
        date(2025, 10, 7),
        date(2025, 10, 14),
        date(2025, 10, 21),
        date(2025, 10, 28),
    ]
    assert u.expiries("BANKNIFTY") == [date(2025, 10, 28), date(2025, 11, 25)]
    tokens = [i.token for i in u]
    assert len(set(tokens)) == len(tokens)
    for inst in u:
        if inst.is_option:
            spec = DEFAULT_CONTRACTS[inst.underlying]
            assert inst.lot_size == spec.lot_size and inst.freeze_qty == spec.freeze_qty
            assert inst.strike_paise is not None and inst.strike_paise % spec.strike_step_paise == 0


# ---- quotes ----------------------------------------------------------------------------------


def test_quotes_are_sane_on_the_tick_grid(
    bars_market: SyntheticMarket, bars_slices: list[MarketSlice]
) -> None:
    u = bars_market.universe
    idx = rows(bars_slices, "idx")
    ltp, bid, ask = (
        rows(bars_slices, "ltp_paise"),
        rows(bars_slices, "bid_paise"),
        rows(bars_slices, "ask_paise"),
    )
    bq, aq = rows(bars_slices, "bid_qty"), rows(bars_slices, "ask_qty")
    op, hi, lo = (
        rows(bars_slices, "open_paise"),
        rows(bars_slices, "high_paise"),
        rows(bars_slices, "low_paise"),
    )
    opt = u.is_option[idx]
    tick, lot = u.tick_paise[idx], u.lot_size[idx]
    o = opt
    for arr in (ltp, bid, ask, op, hi, lo):
        assert (arr[o] % tick[o] == 0).all()
    assert (bid[o] >= 0).all() and (ask[o] >= tick[o]).all()
    two = o & (bid > 0)
    assert (bid[two] < ask[two]).all()  # never crossed or locked
    assert ((bid[o] == 0) == (bq[o] == 0)).all()
    assert (aq[o] > 0).all() and (bq[o] % lot[o] == 0).all() and (aq[o] % lot[o] == 0).all()
    assert (ltp[o] >= np.maximum(bid[o], tick[o])).all() and (ltp[o] <= ask[o]).all()
    assert (lo[o] >= tick[o]).all()
    assert (lo <= np.minimum(op, ltp)).all() and (hi >= np.maximum(op, ltp)).all()
    assert (bid > 0).mean() > 0.95  # nearly every option has a two-sided quote
    # indices: last price only
    s = ~opt
    assert (bid[s] == 0).all() and (ask[s] == 0).all() and (bq[s] == 0).all()
    assert (rows(bars_slices, "volume")[s] == 0).all()


def test_the_index_follows_its_path(
    bars_market: SyntheticMarket, bars_slices: list[MarketSlice]
) -> None:
    for k, name in enumerate(("NIFTY", "BANKNIFTY")):
        path = bars_market.spot_path(name)
        steps = len(path.ts_ns) // 3 // 375
        closes = path.spot_paise[steps - 1 :: steps]
        spot_rows = [(s.idx == k).nonzero()[0][0] for s in bars_slices]
        ltps = np.array([s.ltp_paise[r] for s, r in zip(bars_slices, spot_rows, strict=True)])
        assert np.array_equal(ltps, closes)
        assert np.array_equal(path.ts_ns[steps - 1 :: steps], [s.ts_ns for s in bars_slices])
        # a minute's high/low cover its path steps
        s1 = bars_slices[1]
        minute = path.spot_paise[steps : 2 * steps]
        assert s1.high_paise is not None and s1.low_paise is not None
        assert s1.high_paise[k] == max(minute.max(), closes[0])
        assert s1.low_paise[k] == min(minute.min(), closes[0])
        assert bars_market.spot_close_paise(name, START) == closes[374]


def test_quoted_strikes_are_within_the_window_of_listed_expiries(
    bars_market: SyntheticMarket, bars_slices: list[MarketSlice]
) -> None:
    u = bars_market.universe
    cal = bars_market.calendar
    for s in bars_slices[::37]:
        day = cal.trading_days(START, END)[
            (s.ts_ns - cal.session_open_ns(START)) // 86_400_000_000_000
        ]
        for k, name in enumerate(("NIFTY", "BANKNIFTY")):
            spec = DEFAULT_CONTRACTS[name]
            spot = s.ltp_paise[s.idx == k][0]
            atm = round(spot / spec.strike_step_paise) * spec.strike_step_paise
            mine = s.idx[
                (u.underlying_code[s.idx] == u.underlying_codes()[name]) & u.is_option[s.idx]
            ]
            width = spec.strikes_each_side * spec.strike_step_paise
            assert (np.abs(u.strike_paise[mine] - atm) <= width).all()
            listed = cal.listed_expiries(spec, day)
            assert {date.fromordinal(int(o)) for o in u.expiry_ordinal[mine]} == set(listed)
            assert len(mine) == len(listed) * (2 * spec.strikes_each_side + 1) * 2


def test_chain_prices_are_monotonic_in_strike(
    bars_market: SyntheticMarket, bars_slices: list[MarketSlice]
) -> None:
    u = bars_market.universe
    for s in bars_slices[::25]:
        opt = u.is_option[s.idx]
        for e in np.unique(u.expiry_ordinal[s.idx[opt]]):
            for code in np.unique(u.underlying_code[s.idx[opt]]):
                m = opt & (u.expiry_ordinal[s.idx] == e) & (u.underlying_code[s.idx] == code)
                for sign in (1, -1):
                    mm = m & (u.option_sign[s.idx] == sign)
                    if not mm.any():
                        continue
                    order = np.argsort(u.strike_paise[s.idx[mm]])
                    ltp = s.ltp_paise[mm][order]
                    mid = (s.bid_paise[mm] + s.ask_paise[mm])[order] / 2
                    tick = u.tick_paise[s.idx[mm]][0]
                    step = np.diff(ltp) if sign > 0 else -np.diff(ltp)
                    mstep = np.diff(mid) if sign > 0 else -np.diff(mid)
                    assert (step <= 0).all(), "calls fall and puts rise with the strike"
                    assert (mstep <= tick).all()


def _two_sided_chain(
    market: SyntheticMarket, s: MarketSlice, name: str, expiry: date
) -> tuple[float, dict[int, tuple[float, float]], dict[int, tuple[float, float]]]:
    """(spot, {strike: (call mid, call spread)}, {strike: (put mid, put spread)})."""
    u = market.universe
    k = next(i for i in range(len(u)) if u[i].underlying == name and not u[i].is_option)
    spot = float(s.ltp_paise[s.idx == k][0])
    calls: dict[int, tuple[float, float]] = {}
    puts: dict[int, tuple[float, float]] = {}
    for r, i in enumerate(s.idx):
        inst = u[int(i)]
        if not inst.is_option or inst.underlying != name or inst.expiry != expiry:
            continue
        if s.bid_paise[r] == 0:
            continue
        mid = (s.bid_paise[r] + s.ask_paise[r]) / 2
        spread = float(s.ask_paise[r] - s.bid_paise[r])
        assert inst.strike_paise is not None
        (calls if inst.option_type == "CE" else puts)[inst.strike_paise] = (mid, spread)
    return spot, calls, puts


def test_put_call_parity_of_mids_holds_within_the_spreads(
    bars_market: SyntheticMarket, bars_slices: list[MarketSlice]
) -> None:
    cfg = bars_market.config
    cal = bars_market.calendar
    checked = 0
    for s in bars_slices[::50]:
        day = next(d for d in bars_market.trading_days if cal.session_close_ns(d) >= s.ts_ns)
        for name in ("NIFTY", "BANKNIFTY"):
            for e in cal.listed_expiries(DEFAULT_CONTRACTS[name], day):
                spot, calls, puts = _two_sided_chain(bars_market, s, name, e)
                T = cal.years_to_expiry(s.ts_ns, e)
                for K in calls.keys() & puts.keys():
                    (c, cs), (p, ps) = calls[K], puts[K]
                    parity = spot * math.exp(-cfg.dividend_yield * T) - K * math.exp(-cfg.rate * T)
                    assert abs((c - p) - parity) <= min((cs + ps) / 2, 5.0) + 1e-6
                    checked += 1
    assert checked > 500


def _oracle_sigma(cfg: SyntheticMarketConfig, name: str, spot: float, K: float, T: float) -> float:
    sm = cfg.smile_for(name)
    atm = DEFAULT_CONTRACTS[name].annual_vol if sm.atm_vol is None else sm.atm_vol
    F = spot * math.exp((cfg.rate - cfg.dividend_yield) * T)
    x = math.log(K / F) / math.sqrt(max(T, sm.min_t_years))
    sigma = atm + sm.term_slope * (math.sqrt(T) - math.sqrt(sm.term_ref_years))
    c = sm.wing_x
    h = x * x if abs(x) <= c else 2 * c * abs(x) - c * c
    return min(max(sigma + sm.skew * x + sm.curvature * h, sm.min_vol), sm.max_vol)


def test_the_chain_view_recovers_the_smile() -> None:
    day = date(2025, 10, 8)
    cfg = SyntheticMarketConfig(
        seed=11,
        smiles=(
            SmileConfig(underlying="NIFTY", atm_vol=0.14, skew=-0.2, curvature=0.4),
            SmileConfig(atm_vol=0.16, skew=-0.05, curvature=0.1, term_slope=-0.1),
        ),
    )
    market = SyntheticMarket(cfg, day, day)
    board = QuoteBoard(market.universe)
    checked = 0
    for n, s in enumerate(market):
        board.apply(s)
        if n not in (0, 200, 374):
            continue
        for name in ("NIFTY", "BANKNIFTY"):
            for e in market.calendar.listed_expiries(DEFAULT_CONTRACTS[name], day):
                chain = ChainView.build(
                    market.universe,
                    board,
                    name,
                    e,
                    s.ts_ns,
                    market.calendar,
                    cfg.rate,
                    max_quote_age_ns=0,  # only what this slice quotes
                )
                T = chain.years_to_expiry
                for j, K in enumerate(chain.strikes_paise):
                    # out of the money, worth Rs 1 or more: rounding to the tick is small then
                    otm_call = chain.forward_paise <= K
                    iv = chain.ce_iv[j] if otm_call else chain.pe_iv[j]
                    mid = chain.ce_mid_paise[j] if otm_call else chain.pe_mid_paise[j]
                    if mid >= 100:
                        want = _oracle_sigma(cfg, name, chain.spot_paise, float(K), T)
                        assert iv == pytest.approx(want, abs=0.002)
                        checked += 1
                # the skew: an OTM put is dearer in vol than the call as far OTM
                atm = chain.atm_strike()
                assert atm is not None
                j = int(np.searchsorted(chain.strikes_paise, atm))
                if 5 <= j < len(chain) - 5:
                    assert chain.pe_iv[j - 5] > chain.ce_iv[j + 5]
    assert checked > 300


# ---- expiry ----------------------------------------------------------------------------------


def test_expiry_settlement_is_intrinsic_at_the_expiry_close(
    bars_market: SyntheticMarket, bars_slices: list[MarketSlice]
) -> None:
    u = bars_market.universe
    expiry = date(2025, 10, 7)
    last = bars_slices[2 * 375 - 1]  # 15:30 on the expiry day
    assert last.ts_ns == bars_market.calendar.session_close_ns(expiry)
    spot = int(last.ltp_paise[last.idx == 0][0])
    assert spot == bars_market.spot_close_paise("NIFTY", expiry)
    n = 0
    for r, i in enumerate(last.idx):
        inst = u[int(i)]
        if inst.expiry != expiry:
            continue
        assert inst.strike_paise is not None
        intrinsic = max(spot - inst.strike_paise, 0)
        if inst.option_type == "PE":
            intrinsic = max(inst.strike_paise - spot, 0)
        assert bars_market.expiry_settlement_paise(inst.token) == intrinsic
        # the last quote is the intrinsic value on the tick grid
        assert abs(int(last.ltp_paise[r]) - max(intrinsic, 5)) <= 2
        n += 1
    assert n == 2 * 41
    later = u.options("NIFTY", date(2025, 10, 14))[0]
    with pytest.raises(ValidationError):
        bars_market.expiry_settlement_paise(u[int(later)].token)
    with pytest.raises(ValidationError):
        bars_market.expiry_settlement_paise("99926000")


def test_expired_options_are_not_quoted_after_their_expiry(
    bars_market: SyntheticMarket, bars_slices: list[MarketSlice]
) -> None:
    u = bars_market.universe
    expiry = date(2025, 10, 7).toordinal()
    day3 = bars_slices[2 * 375 :]
    assert not any((u.expiry_ordinal[s.idx] == expiry).any() for s in day3)
    assert all((u.expiry_ordinal[s.idx] == expiry).any() for s in bars_slices[375 : 2 * 375])


def test_volume_accumulates_within_a_day_and_oi_is_in_lots(
    bars_market: SyntheticMarket, bars_slices: list[MarketSlice]
) -> None:
    u = bars_market.universe
    last_vol: dict[int, int] = {}
    resets = 0
    for n, s in enumerate(bars_slices):
        if n % 375 == 0:
            resets += sum(
                1 for i, v in zip(s.idx, s.volume, strict=True) if last_vol.get(int(i), 0) > v
            )
            last_vol.clear()
        for i, v in zip(s.idx.tolist(), s.volume.tolist(), strict=True):
            assert v >= last_vol.get(i, 0)
            last_vol[i] = v
    assert resets > 0
    idx, oi, vol = rows(bars_slices, "idx"), rows(bars_slices, "oi"), rows(bars_slices, "volume")
    assert (
        (oi >= 0).all() and (oi % u.lot_size[idx] == 0).all() and (vol % u.lot_size[idx] == 0).all()
    )
    assert oi[u.is_option[idx]].mean() > 0


# ---- depth -----------------------------------------------------------------------------------


def test_depth_is_consistent_with_the_quote(
    bars_market: SyntheticMarket, bars_slices: list[MarketSlice]
) -> None:
    s = bars_slices[100]
    u = bars_market.universe
    ex = PaperExchange(instruments=bars_market.instrument_master())
    for r in range(len(s)):
        bids, asks = bars_market.depth(s, r)
        inst = u[int(s.idx[r])]
        if not inst.is_option:
            assert (bids, asks) == ([], [])
            continue
        assert asks[0] == (s.ask_paise[r], s.ask_qty[r]) and len(asks) == 5
        if s.bid_paise[r]:
            assert bids[0] == (s.bid_paise[r], s.bid_qty[r])
        assert all(b[0] - a[0] == inst.tick_paise for a, b in itertools.pairwise(asks))
        assert all(b[1] - a[1] == 5 * inst.lot_size for a, b in itertools.pairwise(asks))
        assert all(p > 0 for p, _ in bids)
        ex.on_depth(inst.token, bids, asks, s.ts_ns)  # the paper exchange accepts it
        got_bids, got_asks = ex.depth(inst.token)
        assert (got_bids, got_asks) == (bids, asks)


def test_depth_levels_stop_above_zero() -> None:
    assert depth_levels(10, 65, 15, 130, tick_paise=5, lot_size=65, growth_lots=1) == (
        [(10, 65), (5, 130)],
        [(15, 130), (20, 195), (25, 260), (30, 325), (35, 390)],
    )
    assert depth_levels(0, 0, 5, 65, tick_paise=5, lot_size=65, levels=2) == (
        [],
        [(5, 65), (10, 390)],
    )


# ---- ticks mode ------------------------------------------------------------------------------


def test_ticks_mode() -> None:
    day = date(2025, 10, 6)
    cfg = SyntheticMarketConfig(seed=3, mode="ticks", tick_interval_s=15)
    market = SyntheticMarket(cfg, day, day)
    slices = list(market)
    again = list(SyntheticMarket(cfg, day, day))
    assert all(same(a, b) for a, b in zip(slices, again, strict=True))
    open_ns = market.calendar.session_open_ns(day)
    ts = [s.ts_ns for s in slices]
    assert ts == sorted(set(ts)) and ts[-1] <= market.calendar.session_close_ns(day)
    assert all((t - open_ns) % (15 * 10**9) == 0 for t in ts)
    assert len(slices) > 0.9 * 375 * 4
    assert all(not s.bar_close and s.open_paise is None for s in slices)
    # the first slice is the whole quoted window, later ones only what changed
    full = 2 + 3 * 41 * 2 + 2 * 41 * 2
    assert len(slices[0]) == full
    assert np.mean([len(s) for s in slices[1:]]) < full
    u = market.universe
    board = QuoteBoard(u)
    board.apply(slices[0])
    for s in slices[1:200]:
        ix = s.idx.astype(np.intp)
        before = np.stack(
            [
                board.ltp[ix],
                board.bid[ix],
                board.ask[ix],
                board.bid_qty[ix],
                board.ask_qty[ix],
                board.volume[ix],
            ]
        )
        after = np.stack([s.ltp_paise, s.bid_paise, s.ask_paise, s.bid_qty, s.ask_qty, s.volume])
        new = board.last_ts_ns[ix] < board.ts_ns  # entered the window (or stale)
        assert ((before != after).any(axis=0) | new).all()
        board.apply(s)
    o = u.is_option[np.concatenate([s.idx for s in slices])]
    bid = rows(slices, "bid_paise")[o]
    ask = rows(slices, "ask_paise")[o]
    assert (ask > bid).all() and (bid >= 0).all() and (ask % 5 == 0).all()
    # ticks and bars share the index path for the same seed and step
    bars = SyntheticMarket(dataclasses.replace(cfg, mode="bars"), day, day)
    assert np.array_equal(bars.spot_path("NIFTY").spot_paise, market.spot_path("NIFTY").spot_paise)


# ---- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"mode": "minutes"}, "mode"),
        ({"tick_interval_s": 7}, "tick_interval_s"),
        ({"seed": -1}, "seed"),
        ({"contracts": ()}, "contracts"),
        ({"contracts": (DEFAULT_CONTRACTS["NIFTY"],) * 2}, "contracts"),
        ({"smiles": (SmileConfig(underlying="FINNIFTY"),)}, "smiles"),
        ({"smiles": (SmileConfig(), SmileConfig())}, "smiles"),
        ({"rate": float("inf")}, "rate"),
        ({"correlation": 1.5}, "correlation"),
        ({"holidays": [date(2025, 10, 2)]}, "holidays"),
    ],
)
def test_bad_configuration_names_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        SyntheticMarketConfig(**change)  # type: ignore[arg-type]
    assert err.value.field == field


def test_bad_ranges() -> None:
    cfg = SyntheticMarketConfig(seed=SEED)
    with pytest.raises(ValidationError) as err:
        SyntheticMarket(cfg, date(2025, 10, 8), date(2025, 10, 6))
    assert err.value.field == "end"
    with pytest.raises(ValidationError, match="no trading day"):
        SyntheticMarket(cfg, date(2025, 10, 4), date(2025, 10, 5))  # a weekend
    holiday = dataclasses.replace(cfg, holidays=(date(2025, 10, 6),))
    assert SyntheticMarket(holiday, START, END).trading_days == [date(2025, 10, 7), END]


def test_prices_stay_monotonic_in_strike_with_an_extreme_smile() -> None:
    day = date(2025, 10, 7)  # NIFTY's expiry day: T runs to 0
    smile = SmileConfig(atm_vol=0.3, skew=-1.5, curvature=4.0, wing_x=2.0, max_vol=3.0)
    market = SyntheticMarket(SyntheticMarketConfig(seed=4, smiles=(smile,)), day, day)
    u = market.universe
    for s in list(market)[::20]:
        for e in np.unique(u.expiry_ordinal[s.idx[u.is_option[s.idx]]]):
            for code in np.unique(u.underlying_code[s.idx]):
                for sign in (1, -1):
                    m = (
                        (u.expiry_ordinal[s.idx] == e)
                        & (u.underlying_code[s.idx] == code)
                        & (u.option_sign[s.idx] == sign)
                    )
                    if not m.any():
                        continue
                    ltp = s.ltp_paise[m][np.argsort(u.strike_paise[s.idx[m]])]
                    assert (sign * np.diff(ltp) <= 0).all()
