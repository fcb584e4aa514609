"""Premium-selling behaviour: iron condor hedge ordering, target, re-entry after a stop,
strangle by premium, delta adjustment, configuration validation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, time
from typing import Any

import pytest

from algoengine.domain.market_data import MarketSlice
from algoengine.domain.orders import Side
from algoengine.engine.engine import Engine, EngineConfig
from algoengine.errors import ValidationError
from algoengine.strategies.premium import PremiumKind, PremiumSelling, PremiumSellingConfig

from ._micro import DAY1, Calendar, bar_slice, exchange, flat, ist_ns, universe

SPOT, CE0, PE0, CE1, PE1, PE_LO, CE2, CE3, PE_LO2, PE_LO3 = range(10)
# strikes:  CE0/PE0 24000, CE1/PE1 24100, PE_LO 23900, CE2 24200, CE3 24300, PE 23800, PE 23700
BASE = {
    CE0: 10_000,
    PE0: 9_000,
    CE1: 6_000,
    PE1: 14_000,
    PE_LO: 5_000,
    CE2: 3_000,
    CE3: 1_500,
    PE_LO2: 2_500,
    PE_LO3: 1_200,
}


def minutes(day: date, start: tuple[int, int], end: tuple[int, int]) -> Iterator[int]:
    t, stop = ist_ns(day, *start), ist_ns(day, *end)
    while t <= stop:
        yield t
        t += 60_000_000_000


def day_of(
    prices: dict[int, int] | None = None,
    spot: int = 2_401_000,
    start: tuple[int, int] = (9, 16),
    end: tuple[int, int] = (15, 29),
) -> list[MarketSlice]:
    p = {**BASE, **(prices or {})}
    return [
        bar_slice(ts, [flat(SPOT, spot)] + [flat(i, v) for i, v in sorted(p.items())])
        for ts in minutes(DAY1, start, end)
    ]


def run(cfg: PremiumSellingConfig, feed: list[MarketSlice]) -> tuple[Engine, PremiumSelling]:
    s = PremiumSelling(cfg)
    u = universe()
    e = Engine(
        universe=u,
        venue=exchange(u),
        strategies=[s],
        calendar=Calendar(),
        config=EngineConfig(run_code="T"),
    )
    e.run(feed)
    return e, s


def test_an_iron_condor_buys_its_wings_first_and_sells_them_last() -> None:
    cfg = PremiumSellingConfig(
        strategy_id="ic",
        kind=PremiumKind.IRON_CONDOR,
        short_delta=None,
        short_premium_paise=5_500,
        wing_delta=None,
        wing_distance_paise=10_000,
        leg_stop_loss_pct=None,
    )
    e, _ = run(cfg, day_of())
    roles = [(f.tag, f.side, f.symbol[-7:]) for f in e.fills]
    assert roles[:2] == [
        ("entry CE_WING", Side.BUY, "24200CE"),
        ("entry PE_WING", Side.BUY, "23800PE"),
    ]
    assert sorted(roles[2:4]) == [
        ("entry CE", Side.SELL, "24100CE"),
        ("entry PE", Side.SELL, "23900PE"),
    ]
    exits = roles[4:]
    assert sorted(t for t, _, _ in exits[:2]) == ["exit CE", "exit PE"]
    assert {t for t, _, _ in exits[2:]} == {"exit CE_WING", "exit PE_WING"}
    # the shorts went out only after both wings had filled, and came back before any wing left
    order = {o.tag: o for o in e.oms.orders.values()}
    assert order["entry CE"].client_order_id > order["entry PE_WING"].client_order_id
    assert not e.portfolio.open_positions()


def test_a_combined_target_exits_everything_with_the_profit() -> None:
    cfg = PremiumSellingConfig(leg_stop_loss_pct=None, target_pct=40.0)
    feed = day_of(end=(9, 40))
    for k, ts in enumerate(minutes(DAY1, (9, 41), (10, 40))):  # premiums decay 1 % a minute
        f = 1 - 0.01 * (k + 1)
        feed.append(
            bar_slice(
                ts,
                [
                    flat(SPOT, 2_401_000),
                    flat(CE0, int(10_000 * f) // 5 * 5),
                    flat(PE0, int(9_000 * f) // 5 * 5),
                ],
            )
        )
    e, s = run(cfg, feed)
    assert any("exit: target" in w for _, w in s.log)
    assert not e.portfolio.open_positions()
    pnl = e.portfolio.pnl("straddle")
    premium = 65 * (9_950 + 8_950)
    assert pnl.gross >= 0.40 * premium
    assert s.entries_today == 1  # no re-entry after a target


def test_after_a_stop_out_it_enters_again_up_to_max_reentries() -> None:
    cfg = PremiumSellingConfig(
        leg_stop_loss_pct=None, combined_stop_loss_paise=65 * 1_000, max_reentries=1
    )
    feed = day_of(end=(9, 40))
    # the call jumps: combined loss > Rs 650 -> exit all, then re-enter at the new ATM
    for ts in minutes(DAY1, (9, 41), (15, 29)):
        feed.append(
            bar_slice(
                ts,
                [
                    flat(SPOT, 2_411_000),
                    flat(CE0, 16_000),
                    flat(PE0, 6_000),
                    flat(CE1, 10_000),
                    flat(PE1, 9_000),
                ],
            )
        )
    e, s = run(cfg, feed)
    entries = [f for f in e.fills if f.tag.startswith("entry")]
    assert s.entries_today == 2
    assert [f.symbol[-7:] for f in entries] == ["24000CE", "24000PE", "24100CE", "24100PE"]
    assert sum("combined stop-loss" in w for _, w in s.log) >= 1
    assert not e.portfolio.open_positions()


def test_a_strangle_by_premium_sells_the_strikes_nearest_the_premium() -> None:
    cfg = PremiumSellingConfig(
        kind=PremiumKind.STRANGLE,
        short_delta=None,
        short_premium_paise=3_000,
        leg_stop_loss_pct=None,
    )
    e, _ = run(cfg, day_of())
    assert {f.symbol[-7:] for f in e.fills if f.tag.startswith("entry")} == {"24200CE", "23800PE"}


def test_a_strangle_by_delta_sells_calls_and_puts_near_the_delta() -> None:
    cfg = PremiumSellingConfig(kind=PremiumKind.STRANGLE, short_delta=0.25, leg_stop_loss_pct=None)
    e, _ = run(cfg, day_of())
    sold = [f for f in e.fills if f.tag.startswith("entry")]
    assert len(sold) == 2 and {f.symbol[-2:] for f in sold} == {"CE", "PE"}
    idx = [e.universe.by_symbol(f.symbol) for f in sold]
    assert all(i.strike_paise != 2_400_000 for i in idx)  # out of the money, not ATM


def test_a_delta_breach_rolls_the_untested_side() -> None:
    cfg = PremiumSellingConfig(
        kind=PremiumKind.STRANGLE,
        short_delta=None,
        short_premium_paise=3_000,
        leg_stop_loss_pct=None,
        adjust_delta=0.45,
    )
    feed = day_of(end=(9, 40))
    # the market rallies 300 points: the 24200 call is now in the money (delta > 0.45)
    rally = {
        CE0: 32_000,
        CE1: 23_000,
        CE2: 15_500,
        CE3: 9_000,
        PE0: 1_000,
        PE1: 1_500,
        PE_LO: 500,
        PE_LO2: 250,
        PE_LO3: 150,
    }
    feed += day_of(rally, spot=2_431_000, start=(9, 41), end=(10, 0))
    e, s = run(cfg, feed)
    assert any(w.startswith("adjust: CE") for _, w in s.log)
    rolled = [f for f in e.fills if "roll" in f.tag]
    assert {(f.tag, f.side) for f in rolled} >= {
        ("exit PE roll", Side.BUY),
        ("entry PE roll", Side.SELL),
    }
    new_pe = next(f for f in rolled if f.tag == "entry PE roll")
    assert e.universe.by_symbol(new_pe.symbol).strike_paise > 2_380_000  # closer to the money


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"lots": 0}, "lots"),
        ({"leg_stop_loss_pct": -5.0}, "leg_stop_loss_pct"),
        ({"short_delta": 1.5}, "short_delta"),
        ({"kind": PremiumKind.STRANGLE, "short_delta": None}, "short_delta"),
        ({"last_entry_time": time(9, 0)}, "last_entry_time"),
        ({"kind": "butterfly"}, "kind"),
    ],
)
def test_bad_strategy_settings_name_the_field(kw: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        PremiumSellingConfig(**kw)
    assert info.value.field == field
